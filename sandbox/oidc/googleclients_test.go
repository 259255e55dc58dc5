package oidc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"golang.org/x/oauth2/google/externalaccount"

	"github.com/ecrpush/ecrpush/sandbox"
	"github.com/ecrpush/ecrpush/sandbox/oidc"
	"github.com/ecrpush/ecrpush/sandbox/world"
)

// pythonSubject builds the subject token google-auth-python's aws.Credentials sends (google/auth/aws.py):
// it signs the GetCallerIdentity request (host, x-amz-date, x-amz-security-token) and only then adds
// x-goog-cloud-target-resource to the headers it serializes, so that header is not signed. The URL has
// no path. region is the credential scope's; host the endpoint's.
func pythonSubject(t *testing.T, s *world.Session, aud, host, region string) string {
	t.Helper()
	u := "https://" + host + "?Action=GetCallerIdentity&Version=2011-06-15"
	req, _ := http.NewRequest(http.MethodPost, u, nil)
	const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey, SessionToken: s.SessionToken},
		req, emptySHA256, "sts", region, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{"host": host, "x-goog-cloud-target-resource": aud}
	for k := range req.Header {
		headers[k] = req.Header.Get(k)
	}
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	type kv struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	var hs []kv
	for _, k := range keys {
		hs = append(hs, kv{k, headers[k]})
	}
	b, _ := json.Marshal(map[string]any{"url": u, "method": "POST", "headers": hs})
	return url.QueryEscape(string(b))
}

func postExchange(t *testing.T, sb *sandbox.Sandbox, aud, subject string) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(sb.Endpoints.GoogleSTS, url.Values{"grant_type": {oidc.TokenExchangeGrant}, "audience": {aud},
		"requested_token_type": {oidc.AccessTokenType}, "subject_token_type": {oidc.AWSSubjectTokenType},
		"scope": {"https://www.googleapis.com/auth/cloud-platform"}, "subject_token": {subject}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// Google accepts the request shape of each of its client libraries: golang.org/x/oauth2 (target header
// signed) and google-auth-python (added after signing); it refuses a credential scope of another region.
func TestGoogleSTSAcceptsEachLibrarysShape(t *testing.T) {
	sb := startSandbox(t)
	aud := sb.GoogleSTS.Audiences()[0]
	ci := session(t, sb, "arn:aws:iam::111122223333:role/ecrpush-ci")
	if _, err := exchange(sb, aud, ci, ""); err != nil {
		t.Fatalf("golang.org/x/oauth2's request: %v", err)
	}
	for _, tc := range []struct {
		name, host, region string
		ok                 bool
		want               string
	}{
		{"python, regional", "sts.us-east-1.amazonaws.com", "us-east-1", true, ""},
		{"python, global", "sts.amazonaws.com", "us-east-1", true, ""},
		{"python, eu-west-1", "sts.eu-west-1.amazonaws.com", "eu-west-1", true, ""},
		{"scope of another region", "sts.us-east-1.amazonaws.com", "eu-west-1", false, "scoped to a valid region"},
	} {
		status, out := postExchange(t, sb, aud, pythonSubject(t, ci, aud, tc.host, tc.region))
		tok, _ := out["access_token"].(string)
		if tc.ok != (status == http.StatusOK) || tc.ok && tok == "" {
			t.Errorf("%s: %d %v", tc.name, status, out)
		}
		if !tc.ok && !strings.Contains(out["error_description"].(string), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, out, tc.want)
		}
		if tc.ok {
			if _, live := sb.GoogleSTS.Check(tok); !live {
				t.Errorf("%s: the token is not live", tc.name)
			}
		}
	}
}

// Impersonation runs end to end with golang.org/x/oauth2: STS exchange, then IAM Credentials
// generateAccessToken with the federated token; the impersonated token opens the registry check.
func TestImpersonationEndToEnd(t *testing.T) {
	sb := startSandbox(t)
	aud := sb.GoogleSTS.Audiences()[0]
	ci := session(t, sb, "arn:aws:iam::111122223333:role/ecrpush-ci")
	impersonate := func(email string) (string, error) {
		ts, err := externalaccount.NewTokenSource(context.Background(), externalaccount.Config{
			Audience: aud, SubjectTokenType: oidc.AWSSubjectTokenType, TokenURL: sb.Endpoints.GoogleSTS,
			ServiceAccountImpersonationURL:             sb.Endpoints.IAMCredentials + "/v1/projects/-/serviceAccounts/" + email + ":generateAccessToken",
			ServiceAccountImpersonationLifetimeSeconds: 1800,
			Scopes: []string{"https://www.googleapis.com/auth/cloud-platform"},
			AwsSecurityCredentialsSupplier: static{region: "us-east-1", creds: externalaccount.AwsSecurityCredentials{
				AccessKeyID: ci.AccessKeyID, SecretAccessKey: ci.SecretAccessKey, SessionToken: ci.SessionToken}},
		})
		if err != nil {
			return "", err
		}
		tok, err := ts.Token()
		if err != nil {
			return "", err
		}
		if d := time.Until(tok.Expiry); d < 29*time.Minute || d > 31*time.Minute {
			t.Errorf("impersonated token lives %s, want the 30m asked", d)
		}
		return tok.AccessToken, nil
	}
	tok, err := impersonate(sb.Config.GCP.ServiceAccountEmail)
	if err != nil {
		t.Fatal(err)
	}
	ft, live := sb.GoogleSTS.Check(tok)
	if !live || ft.Subject != "serviceAccount:"+sb.Config.GCP.ServiceAccountEmail {
		t.Errorf("impersonated token stands for %+v (live %v)", ft, live)
	}
	if _, err := impersonate("other@example-project.iam.gserviceaccount.com"); err == nil || !strings.Contains(err.Error(), "iam.serviceAccounts.getAccessToken") {
		t.Errorf("another service account: %v", err)
	}
	// Without a federated token: 401.
	resp, err := http.Post(sb.Endpoints.IAMCredentials+"/v1/projects/-/serviceAccounts/"+sb.Config.GCP.ServiceAccountEmail+":generateAccessToken", "application/json",
		strings.NewReader(`{"scope":["https://www.googleapis.com/auth/cloud-platform"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no bearer: %d", resp.StatusCode)
	}
}

package oidc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/google/externalaccount"

	"github.com/ecrpush/ecrpush/sandbox"
	"github.com/ecrpush/ecrpush/sandbox/oidc"
	"github.com/ecrpush/ecrpush/sandbox/world"
)

// static supplies fixed AWS credentials to Google's client library.
type static struct {
	creds  externalaccount.AwsSecurityCredentials
	region string
}

func (s static) AwsRegion(context.Context, externalaccount.SupplierOptions) (string, error) {
	return s.region, nil
}

func (s static) AwsSecurityCredentials(context.Context, externalaccount.SupplierOptions) (*externalaccount.AwsSecurityCredentials, error) {
	c := s.creds
	return &c, nil
}

func startSandbox(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); sb.Close() })
	return sb
}

func session(t *testing.T, sb *sandbox.Sandbox, roleARN string) *world.Session {
	t.Helper()
	role, ok := sb.World.Role(roleARN)
	if !ok {
		t.Fatalf("no role %s", roleARN)
	}
	return sb.World.Issue(role, "googlests-test", time.Hour, false)
}

// exchange runs Google's client library (golang.org/x/oauth2/google/externalaccount) against the sandbox.
func exchange(sb *sandbox.Sandbox, audience string, s *world.Session, secret string) (string, error) {
	if secret == "" {
		secret = s.SecretAccessKey
	}
	ts, err := externalaccount.NewTokenSource(context.Background(), externalaccount.Config{
		Audience:         audience,
		SubjectTokenType: oidc.AWSSubjectTokenType,
		TokenURL:         sb.Endpoints.GoogleSTS,
		Scopes:           []string{"https://www.googleapis.com/auth/cloud-platform"},
		AwsSecurityCredentialsSupplier: static{region: "us-east-1", creds: externalaccount.AwsSecurityCredentials{
			AccessKeyID: s.AccessKeyID, SecretAccessKey: secret, SessionToken: s.SessionToken}},
	})
	if err != nil {
		return "", err
	}
	tok, err := ts.Token()
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

func TestGoogleSTSExchangesAWSIdentities(t *testing.T) {
	sb := startSandbox(t)
	aud := sb.GoogleSTS.Audiences()[0]
	ci := session(t, sb, "arn:aws:iam::111122223333:role/ecrpush-ci")
	prod := session(t, sb, "arn:aws:iam::444455556666:role/ecrpush-deploy")

	tok, err := exchange(sb, aud, ci, "")
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	ft, ok := sb.GoogleSTS.Check(tok)
	if !ok || ft.Account != sandbox.CIAccount || !strings.Contains(ft.Subject, ":assumed-role/ecrpush-ci/googlests-test") || ft.Provider != aud {
		t.Errorf("token stands for %+v (live %v)", ft, ok)
	}
	if sb.Log.Count(sandbox.EndpointSTS, "") != 1 {
		t.Errorf("AWS STS saw %d requests, want the one GetCallerIdentity", sb.Log.Count(sandbox.EndpointSTS, ""))
	}

	for _, tc := range []struct {
		name, audience, secret, want string
		s                            *world.Session
	}{
		{"another account", aud, "", "not the account configured", prod},
		{"a forged signature", aud, strings.Repeat("x", 40), "AWS STS answered 403", ci},
		{"an unknown provider", strings.Replace(aud, "/providers/aws", "/providers/nope", 1), "", "invalid_target", ci},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := exchange(sb, tc.audience, tc.s, tc.secret)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}

	// An attribute condition on the role name.
	restricted := oidc.WorkloadProvider("1", "pool", "ci-only")
	sb.GoogleSTS.AddAWSProvider(oidc.AWSProvider{Audience: restricted, Account: sandbox.CIAccount, Roles: []string{"release"}})
	if _, err := exchange(sb, restricted, ci, ""); err == nil || !strings.Contains(err.Error(), "attribute condition") {
		t.Errorf("role outside the condition: %v", err)
	}
}

// subject serializes a request the way the client libraries do (the shape check runs before AWS is asked).
func subject(u string, headers map[string]string) string {
	type kv struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	var hs []kv
	for k, v := range headers {
		hs = append(hs, kv{k, v})
	}
	b, _ := json.Marshal(map[string]any{"url": u, "method": "POST", "headers": hs})
	return url.QueryEscape(string(b))
}

func TestGoogleSTSRefusesMalformedSubjects(t *testing.T) {
	sb := startSandbox(t)
	aud := sb.GoogleSTS.Audiences()[0]
	good := "https://sts.us-east-1.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
	signed := map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20250101/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date;x-goog-cloud-target-resource, Signature=00",
		"host": "sts.us-east-1.amazonaws.com", "x-amz-date": "20250101T000000Z", "x-goog-cloud-target-resource": aud}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range signed {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		params url.Values
		want   string
	}{
		{"another URL", url.Values{"subject_token": {subject("https://attacker.example/?Action=GetCallerIdentity&Version=2011-06-15", with("host", "attacker.example"))}}, "AWS STS endpoint"},
		{"another action", url.Values{"subject_token": {subject("https://sts.amazonaws.com?Action=AssumeRole&Version=2011-06-15", with("host", "sts.amazonaws.com"))}}, "GetCallerIdentity"},
		{"no target header", url.Values{"subject_token": {subject(good, with("x-goog-cloud-target-resource", ""))}}, "does not match the audience"},
		{"scope of another region", url.Values{"subject_token": {subject(good, with("Authorization", "AWS4-HMAC-SHA256 Credential=AKIA/20250101/eu-west-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"))}}, "scoped to a valid region"},
		{"global endpoint, another region's scope", url.Values{"subject_token": {subject("https://sts.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
			map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20250101/eu-west-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
				"host": "sts.amazonaws.com", "x-amz-date": "20250101T000000Z", "x-goog-cloud-target-resource": aud})}}, "not 'eu-west-1'"},
		{"no scope", url.Values{"subject_token": {subject(good, signed)}, "scope": {""}}, "scope"},
		{"unsigned", url.Values{"subject_token": {subject(good, with("Authorization", ""))}}, "not signed"},
		{"not JSON", url.Values{"subject_token": {"hello"}}, "serialized"},
		{"a JWT subject type", url.Values{"subject_token": {subject(good, signed)}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}}, "subject_token_type"},
		{"another grant", url.Values{"subject_token": {subject(good, signed)}, "grant_type": {"client_credentials"}}, "unsupported_grant_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"grant_type": {oidc.TokenExchangeGrant}, "audience": {aud}, "requested_token_type": {oidc.AccessTokenType},
				"subject_token_type": {oidc.AWSSubjectTokenType}, "scope": {"https://www.googleapis.com/auth/cloud-platform"}}
			for k, v := range tc.params {
				form[k] = v
			}
			resp, err := http.PostForm(sb.Endpoints.GoogleSTS, form)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct{ Error, ErrorDescription string }
			var raw map[string]string
			json.NewDecoder(resp.Body).Decode(&raw)
			e.Error, e.ErrorDescription = raw["error"], raw["error_description"]
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error+" "+e.ErrorDescription, tc.want) {
				t.Errorf("%d %+v, want %q", resp.StatusCode, e, tc.want)
			}
		})
	}
	if n := sb.Log.Count(sandbox.EndpointSTS, ""); n != 0 {
		t.Errorf("malformed subjects reached AWS STS %d times", n)
	}
}

func TestRegistryAuth(t *testing.T) {
	sb := startSandbox(t)
	ci := session(t, sb, "arn:aws:iam::111122223333:role/ecrpush-ci")
	reg := httptest.NewServer(sb.GoogleSTS.RegistryAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})))
	defer reg.Close()
	get := func(path string, set func(*http.Request)) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, reg.URL+path, nil)
		set(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	none := func(*http.Request) {}
	if r := get("/v2/", none); r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `Bearer realm="`+reg.URL+"/v2/token") {
		t.Errorf("no token: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	tok, err := exchange(sb, sb.GoogleSTS.Audiences()[0], ci, "")
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+v) }
	}
	if r := get("/v2/", bearer(tok)); r.StatusCode != http.StatusOK {
		t.Errorf("with the token: %d", r.StatusCode)
	}
	if r := get("/v2/", bearer(tok+"x")); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("with another token: %d", r.StatusCode)
	}
	if r := get("/v2/token", func(r *http.Request) { r.SetBasicAuth("oauth2accesstoken", tok) }); r.StatusCode != http.StatusOK {
		t.Errorf("token endpoint with basic oauth2accesstoken: %d", r.StatusCode)
	}
	if r := get("/v2/token", func(r *http.Request) { r.SetBasicAuth("_json_key", tok) }); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("token endpoint with another user: %d", r.StatusCode)
	}
	// Tokens expire after an hour.
	sb.GoogleSTS.SetClock(func() time.Time { return time.Now().Add(time.Hour + time.Second) })
	if r := get("/v2/", bearer(tok)); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("with an expired token: %d", r.StatusCode)
	}
}

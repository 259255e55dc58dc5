package sts_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ecrpush/ecrpush/sandbox/oidc"
	"github.com/ecrpush/ecrpush/sandbox/sts"
)

// post sends a raw Query protocol request, as a client without an SDK would.
func post(t *testing.T, base string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(base+"/", "application/x-www-form-urlencoded; charset=utf-8", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

type xmlError struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

func TestProtocolErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	arwwi := func(kv ...string) url.Values {
		v := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		code   string
		msg    string
	}{
		{"unknown action", url.Values{"Action": {"AssumeRoles"}, "Version": {"2011-06-15"}}, 400, "InvalidAction",
			"Could not find operation AssumeRoles for version 2011-06-15"},
		{"wrong version", url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2010-01-01"}}, 400, "InvalidAction",
			"Could not find operation GetCallerIdentity for version 2010-01-01"},
		{"missing everything", arwwi(), 400, "ValidationError",
			"3 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null; " +
				"Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null; " +
				"Value null at 'webIdentityToken' failed to satisfy constraint: Member must not be null"},
		{"short token", arwwi("RoleArn", ciRoleARN, "RoleSessionName", "s1", "WebIdentityToken", "abc"), 400, "ValidationError",
			"1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length greater than or equal to 4"},
		{"duration not a number", arwwi("RoleArn", ciRoleARN, "RoleSessionName", "s1", "WebIdentityToken", e.ghToken(nil),
			"DurationSeconds", "soon"), 400, "ValidationError",
			"1 validation error detected: Value 'soon' at 'durationSeconds' failed to satisfy constraint: Member must be a valid integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, e.server.URL, tc.form)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			var x xmlError
			if err := xml.Unmarshal(body, &x); err != nil {
				t.Fatalf("not an ErrorResponse: %v\n%s", err, body)
			}
			if x.XMLName.Space != "https://sts.amazonaws.com/doc/2011-06-15/" {
				t.Errorf("namespace %q", x.XMLName.Space)
			}
			if x.Type != "Sender" || x.Code != tc.code || x.Message != tc.msg {
				t.Errorf("got %s %s %q, want Sender %s %q", x.Type, x.Code, x.Message, tc.code, tc.msg)
			}
			if x.RequestID == "" || resp.Header.Get("x-amzn-RequestId") != x.RequestID {
				t.Errorf("request id %q, header %q", x.RequestID, resp.Header.Get("x-amzn-RequestId"))
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/xml" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestProtocolSuccessShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	form := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {ciRoleARN},
		"RoleSessionName": {"raw"}, "WebIdentityToken": {e.ghToken(nil)}, "DurationSeconds": {"900"}}
	// GET with a query string is accepted too, as AWS accepts it.
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(e.server.URL + "/?" + form.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var x struct {
		XMLName    xml.Name `xml:"AssumeRoleWithWebIdentityResponse"`
		Expiration string   `xml:"AssumeRoleWithWebIdentityResult>Credentials>Expiration"`
		Subject    string   `xml:"AssumeRoleWithWebIdentityResult>SubjectFromWebIdentityToken"`
		RequestID  string   `xml:"ResponseMetadata>RequestId"`
	}
	if err := xml.Unmarshal(body, &x); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if x.XMLName.Space != "https://sts.amazonaws.com/doc/2011-06-15/" || x.Subject != ghSubject {
		t.Errorf("namespace %q subject %q", x.XMLName.Space, x.Subject)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(x.Expiration) {
		t.Errorf("Expiration %q is not ISO 8601 UTC seconds", x.Expiration)
	}
	if x.RequestID == "" || resp.Header.Get("x-amzn-RequestId") != x.RequestID {
		t.Errorf("request id %q, header %q", x.RequestID, resp.Header.Get("x-amzn-RequestId"))
	}
}

// TestLogsHoldNoSecrets runs successes and refusals with a logger and checks that no token,
// key or session token reaches it.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	providers := []sts.Provider{{Name: ghProvider, IssuerURL: e.gh.URL(), ClientIDs: []string{"sts.amazonaws.com"}}}
	e.server.Close()
	srv := sts.New(e.world, &oidc.Verifier{}, providers, sts.WithLogger(logger))
	e.server = newServer(t, srv)

	good, bad := e.ghToken(nil), e.ghToken(map[string]any{"aud": "other"})
	out, err := e.webIdentity(ciRoleARN, "logged", good, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = e.webIdentity(ciRoleARN, "logged", bad, 0)
	_, _ = e.client(static(out)).GetCallerIdentity(t.Context(), nil)
	_, _ = e.assumeRole(static(out), replRoleARN, "chained", 0)
	logs := buf.String()
	if !strings.Contains(logs, "AssumeRoleWithWebIdentity") {
		t.Fatalf("nothing logged: %q", logs)
	}
	secrets := []string{good, bad, *out.Credentials.AccessKeyId, *out.Credentials.SecretAccessKey, *out.Credentials.SessionToken}
	for _, s := range e.world.Sessions() {
		secrets = append(secrets, s.AccessKeyID, s.SecretAccessKey)
		if s.SessionToken != "" {
			secrets = append(secrets, s.SessionToken)
		}
	}
	for _, s := range secrets {
		// The token's signature part alone must not appear either.
		part := s[len(s)-16:]
		if strings.Contains(logs, part) {
			t.Errorf("logs contain a secret ending %q", part)
		}
	}
}

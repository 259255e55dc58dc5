package googleauth

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/oauth2"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

func TestIsGoogleRegistry(t *testing.T) {
	for host, want := range map[string]bool{
		"gcr.io": true, "eu.gcr.io": true, "us-docker.pkg.dev": true, "europe-west1-docker.pkg.dev": true, "EU.GCR.IO:443": true,
		"docker.io": false, "ghcr.io": false, "pkg.dev.evil.io": false, "evilgcr.io": false, "127.0.0.1:5000": false,
	} {
		if got := IsGoogleRegistry(host); got != want {
			t.Errorf("IsGoogleRegistry(%q) = %v", host, got)
		}
	}
}

func TestKeychain(t *testing.T) {
	k := NewKeychain(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "ya29.x"}), "127.0.0.1:5000")
	for ref, want := range map[string]bool{
		"us-docker.pkg.dev/p/r/app": true, "gcr.io/p/app": true, "127.0.0.1:5000/x": true,
		"ghcr.io/org/tool": false, "127.0.0.1:6000/x": false,
	} {
		r, _ := name.NewRepository(ref)
		a, err := k.Resolve(r)
		if err != nil {
			t.Fatal(err)
		}
		if (a != authn.Anonymous) != want {
			t.Errorf("%s: %v", ref, a)
			continue
		}
		if want {
			c, err := a.Authorization()
			if err != nil || c.Username != "oauth2accesstoken" || c.Password != "ya29.x" {
				t.Errorf("%s: %+v %v", ref, c, err)
			}
		}
	}
}

func TestTokenSourceRefusesWhatItCannotUse(t *testing.T) {
	aws1 := func(edit func(m map[string]any)) []byte {
		m := map[string]any{"type": "external_account", "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/aws",
			"subject_token_type": AWSSubjectTokenType, "token_url": "https://sts.googleapis.com/v1/token",
			"credential_source": map[string]any{"environment_id": "aws1"}}
		edit(m)
		b, _ := json.Marshal(m)
		return b
	}
	supply := FromAWSConfig(func() (aws.Config, bool) { return aws.Config{}, false })
	for name, data := range map[string][]byte{
		"not JSON":                []byte("{"),
		"unknown type":            []byte(`{"type":"gdch_service_account"}`),
		"no type":                 []byte(`{}`),
		"aws with a JWT subject":  aws1(func(m map[string]any) { m["subject_token_type"] = "urn:ietf:params:oauth:token-type:jwt" }),
		"aws without an audience": aws1(func(m map[string]any) { delete(m, "audience") }),
	} {
		if _, err := TokenSource(context.Background(), data, Options{AWS: supply}); err == nil || !fixable.Is(err) {
			t.Errorf("%s: %v, want a fixable error", name, err)
		}
	}
	if !IsAWS(aws1(func(map[string]any) {})) || IsAWS([]byte(`{"type":"service_account"}`)) {
		t.Error("IsAWS")
	}
	// Without a session the AWS supplier says so, rather than signing with nothing.
	ts, err := TokenSource(context.Background(), aws1(func(map[string]any) {}), Options{AWS: supply, TokenURL: "http://127.0.0.1:1/v1/token"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); err == nil || !strings.Contains(err.Error(), "no AWS session") {
		t.Errorf("token without a session: %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.json")); !fixable.Is(err) {
		t.Errorf("missing file: %v", err)
	}
}

// A configuration with another credential source goes to the library unchanged, except token_url.
func TestTokenURLOverride(t *testing.T) {
	var got map[string]string
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		got = map[string]string{"path": r.URL.Path, "subject_token": r.Form.Get("subject_token"), "audience": r.Form.Get("audience")}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"ya29.file","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}`))
	}))
	defer sts.Close()
	tokenFile := filepath.Join(t.TempDir(), "oidc-token")
	os.WriteFile(tokenFile, []byte("subject.jwt"), 0o600)
	cfg, _ := json.Marshal(map[string]any{"type": "external_account", "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/oidc",
		"subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": "https://sts.googleapis.com/v1/token",
		"credential_source": map[string]any{"file": tokenFile}})
	ts, err := TokenSource(context.Background(), cfg, Options{TokenURL: sts.URL + "/v1/token"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil || tok.AccessToken != "ya29.file" || got["path"] != "/v1/token" || got["subject_token"] != "subject.jwt" {
		t.Errorf("token %v %v; STS saw %v", tok, err, got)
	}
}

// environment_id is read as Google's libraries read it: aws1 only.
func TestEnvironmentID(t *testing.T) {
	cfg := func(id string) []byte {
		b, _ := json.Marshal(map[string]any{"type": "external_account", "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/aws",
			"subject_token_type": AWSSubjectTokenType, "token_url": "https://sts.googleapis.com/v1/token", "credential_source": map[string]any{"environment_id": id}})
		return b
	}
	supply := FromAWSConfig(func() (aws.Config, bool) { return aws.Config{}, false })
	for id, want := range map[string]string{"aws2": "aws version 2 is not supported", "AWS1": "know only aws1", "aws": "know only aws1", "awsx": "know only aws1", "azure1": "know only aws1"} {
		if _, err := TokenSource(context.Background(), cfg(id), Options{AWS: supply}); !fixable.Is(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", id, err, want)
		}
	}
	if _, err := TokenSource(context.Background(), cfg("aws1"), Options{AWS: supply}); err != nil {
		t.Errorf("aws1: %v", err)
	}
}

// One 5xx or 429 from Google's STS does not fail the exchange; the access token is masked before it is
// handed out; a persistent failure stops after the bounded attempts.
func TestRetriesAndMasks(t *testing.T) {
	var calls int
	failFirst := 2
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), "subject_token=subject.jwt") {
			t.Errorf("attempt %d lost the body: %q", calls, body)
		}
		if calls <= failFirst {
			if calls == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
			} else {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"ya29.retried","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}`))
	}))
	defer sts.Close()
	tokenFile := filepath.Join(t.TempDir(), "oidc-token")
	os.WriteFile(tokenFile, []byte("subject.jwt"), 0o600)
	cfg, _ := json.Marshal(map[string]any{"type": "external_account", "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/oidc",
		"subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": sts.URL + "/v1/token", "credential_source": map[string]any{"file": tokenFile}})
	var masked []string
	ts, err := TokenSource(context.Background(), cfg, Options{Mask: func(s string) { masked = append(masked, s) }})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil || tok.AccessToken != "ya29.retried" || calls != 3 {
		t.Fatalf("token %v err %v after %d calls", tok, err, calls)
	}
	if len(masked) != 1 || masked[0] != "ya29.retried" {
		t.Errorf("masked %q", masked)
	}
	calls, failFirst = 0, 100
	ts, _ = TokenSource(context.Background(), cfg, Options{})
	if _, err := ts.Token(); err == nil || calls != attempts {
		t.Errorf("persistent 5xx: err %v after %d calls, want %d", err, calls, attempts)
	}
}

func TestRehost(t *testing.T) {
	got, err := rehost("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken", "http://127.0.0.1:9000")
	if err != nil || got != "http://127.0.0.1:9000/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken" {
		t.Errorf("%q %v", got, err)
	}
	if got, _ := rehost("https://x/y", ""); got != "https://x/y" {
		t.Errorf("no endpoint: %q", got)
	}
}

func TestCheckHost(t *testing.T) {
	for h, ok := range map[string]bool{"europe-docker.pkg.dev": true, "registry.example.com:5000": true, "127.0.0.1:5000": true,
		"https://x": false, "x/y": false, "": false, "a b": false, "user@host": false} {
		if err := CheckHost(h); (err == nil) != ok || err != nil && !fixable.Is(err) {
			t.Errorf("%q: %v", h, err)
		}
	}
}

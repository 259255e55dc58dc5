package oidc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/compute/metadata"
)

const (
	testProject  = "sandbox-project"
	testSA       = "pusher@sandbox-project.iam.gserviceaccount.com"
	testUniqueID = "104817263549012345678"
)

type googleEnv struct {
	g        *Google
	iss      *testIssuer
	metadata *httptest.Server
	iam      *httptest.Server
}

func newGoogleEnv(t *testing.T) *googleEnv {
	t.Helper()
	ti := newTestIssuer(t)
	g := NewGoogle(ti.Issuer, testProject, testSA, testUniqueID)
	e := &googleEnv{g: g, iss: ti, metadata: httptest.NewServer(g.MetadataHandler()), iam: httptest.NewServer(g.IAMCredentialsHandler())}
	t.Cleanup(e.metadata.Close)
	t.Cleanup(e.iam.Close)
	return e
}

func get(t *testing.T, url string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestMetadataServer(t *testing.T) {
	e := newGoogleEnv(t)
	flavor := map[string]string{"Metadata-Flavor": "Google"}
	sa := "/computeMetadata/v1/instance/service-accounts/default/"
	tests := []struct {
		name   string
		path   string
		header map[string]string
		status int
		body   string // substring
	}{
		{"root probe needs no header", "/", nil, 200, ""},
		{"project id", "/computeMetadata/v1/project/project-id", flavor, 200, testProject},
		{"numeric project id", "/computeMetadata/v1/project/numeric-project-id", flavor, 200, e.g.ProjectNumber()},
		{"email", sa + "email", flavor, 200, testSA},
		{"email by account name", "/computeMetadata/v1/instance/service-accounts/" + testSA + "/email", flavor, 200, testSA},
		{"token", sa + "token", flavor, 200, e.g.AccessToken()},
		{"identity", sa + "identity?audience=sts.amazonaws.com", flavor, 200, "."},
		{"no flavor", "/computeMetadata/v1/project/project-id", nil, 403, "Metadata-Flavor"},
		{"wrong flavor", "/computeMetadata/v1/project/project-id", map[string]string{"Metadata-Flavor": "google"}, 403, ""},
		{"proxied", "/computeMetadata/v1/project/project-id", map[string]string{"Metadata-Flavor": "Google", "X-Forwarded-For": "10.0.0.1"}, 403, ""},
		{"identity without audience", sa + "identity", flavor, 400, "audience"},
		{"identity bad format", sa + "identity?audience=a&format=jwt", flavor, 400, "format"},
		{"unknown account", "/computeMetadata/v1/instance/service-accounts/other@x.iam.gserviceaccount.com/email", flavor, 404, ""},
		{"unknown path", "/computeMetadata/v1/instance/nothing", flavor, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := get(t, e.metadata.URL+tt.path, tt.header)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (%s)", status, tt.status, body)
			}
			if h.Get("Metadata-Flavor") != "Google" {
				t.Error("response lacks Metadata-Flavor: Google")
			}
			if !strings.Contains(body, tt.body) {
				t.Errorf("body %q lacks %q", body, tt.body)
			}
		})
	}

	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	_, _, body := get(t, e.metadata.URL+sa+"token", flavor)
	if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.AccessToken != e.g.AccessToken() || tok.ExpiresIn <= 0 || tok.TokenType != "Bearer" {
		t.Fatalf("token = %+v (%v)", tok, err)
	}
	if !strings.HasPrefix(tok.AccessToken, "ya29.") || NewGoogle(e.iss.Issuer, testProject, testSA, testUniqueID).AccessToken() == tok.AccessToken {
		t.Fatal("access token is not random per server")
	}

	e.g.SetIdentityDisabled(true)
	if status, _, _ := get(t, e.metadata.URL+sa+"identity?audience=a", flavor); status != 404 {
		t.Fatalf("identity disabled: status = %d", status)
	}
	e.g.SetIdentityDisabled(false)
	if status, _, _ := get(t, e.metadata.URL+sa+"identity?audience=a", flavor); status != 200 {
		t.Fatalf("identity re-enabled: status = %d", status)
	}
}

func TestGoogleIDTokenClaims(t *testing.T) {
	e := newGoogleEnv(t)
	v := &Verifier{}
	for _, full := range []bool{false, true} {
		tok, err := e.g.IDToken("sts.amazonaws.com", full)
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatal(err)
		}
		if c["aud"] != "sts.amazonaws.com" || c["sub"] != testUniqueID || c["azp"] != testUniqueID || c["iss"] != e.iss.URL() {
			t.Fatalf("claims = %v", c)
		}
		if life := c["exp"].(float64) - c["iat"].(float64); life != 3600 {
			t.Fatalf("lifetime = %vs", life)
		}
		_, hasEmail := c["email"]
		_, hasGoogle := c["google"]
		if hasEmail != full || hasGoogle != full {
			t.Fatalf("full=%v: email %v google %v", full, hasEmail, hasGoogle)
		}
		if full && (c["email"] != testSA || c["email_verified"] != true) {
			t.Fatalf("email claims = %v/%v", c["email"], c["email_verified"])
		}
	}
	if _, err := e.g.IDToken("", false); err == nil {
		t.Fatal("empty audience accepted")
	}
	if n := len(e.g.Issued()); n != 2 {
		t.Fatalf("Issued = %d", n)
	}
}

func TestGenerateIDToken(t *testing.T) {
	e := newGoogleEnv(t)
	post := func(t *testing.T, account, bearer, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.iam.URL+"/v1/projects/-/serviceAccounts/"+account+":generateIdToken", bytes.NewBufferString(body))
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("body is not JSON: %v", err)
		}
		return resp.StatusCode, m
	}
	good := `{"audience":"sts.amazonaws.com","includeEmail":true}`
	tests := []struct {
		name, account, bearer, body string
		status                      int
		errStatus                   string
	}{
		{"by email", testSA, e.g.AccessToken(), good, 200, ""},
		{"by unique id", testUniqueID, e.g.AccessToken(), `{"audience":"a"}`, 200, ""},
		{"wrong bearer", testSA, "ya29.stolen", good, 401, "UNAUTHENTICATED"},
		{"no bearer", testSA, "", good, 401, "UNAUTHENTICATED"},
		{"unknown account", "other@sandbox-project.iam.gserviceaccount.com", e.g.AccessToken(), good, 403, "PERMISSION_DENIED"},
		{"no audience", testSA, e.g.AccessToken(), `{"includeEmail":true}`, 400, "INVALID_ARGUMENT"},
		{"unknown field", testSA, e.g.AccessToken(), `{"audience":"a","lifetime":"1h"}`, 400, "INVALID_ARGUMENT"},
		{"delegates", testSA, e.g.AccessToken(), `{"audience":"a","delegates":["projects/-/serviceAccounts/x"]}`, 403, "PERMISSION_DENIED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, m := post(t, tt.account, tt.bearer, tt.body)
			if status != tt.status {
				t.Fatalf("status = %d, want %d: %v", status, tt.status, m)
			}
			if tt.status != 200 {
				errBody, _ := m["error"].(map[string]any)
				if errBody["status"] != tt.errStatus || errBody["code"] != float64(tt.status) || errBody["message"] == "" {
					t.Fatalf("error = %v", m)
				}
				return
			}
			tok, _ := m["token"].(string)
			c, err := (&Verifier{}).Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if c["sub"] != testUniqueID || c["azp"] != testUniqueID {
				t.Fatalf("claims = %v", c)
			}
			if _, hasEmail := c["email"]; hasEmail != strings.Contains(tt.body, "includeEmail\":true") {
				t.Fatalf("email present = %v", hasEmail)
			}
		})
	}

	e.g.SetTokenCreator(false)
	status, m := post(t, testSA, e.g.AccessToken(), good)
	if status != 403 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "getOpenIdToken") {
		t.Fatalf("token creator off: %d %v", status, m)
	}
}

// TestMetadataClientLibrary reads the metadata server through the Go client library used
// across Google's SDKs, pointed at it the way every GCE emulator is: GCE_METADATA_HOST.
func TestMetadataClientLibrary(t *testing.T) {
	e := newGoogleEnv(t)
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(e.metadata.URL, "http://"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := metadata.NewWithOptions(&metadata.Options{Client: &http.Client{Timeout: 5 * time.Second}})
	if !c.OnGCEWithContext(ctx) {
		t.Fatal("OnGCE = false")
	}
	pid, err := c.ProjectIDWithContext(ctx)
	if err != nil || pid != testProject {
		t.Fatalf("project id = %q, %v", pid, err)
	}
	email, err := c.EmailWithContext(ctx, "default")
	if err != nil || email != testSA {
		t.Fatalf("email = %q, %v", email, err)
	}
	tok, err := c.GetWithContext(ctx, "instance/service-accounts/default/identity?audience=sts.amazonaws.com&format=full")
	if err != nil {
		t.Fatal(err)
	}
	claims, err := (&Verifier{}).Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if claims["aud"] != "sts.amazonaws.com" || claims["email"] != testSA {
		t.Fatalf("claims = %v", claims)
	}

	e.g.SetIdentityDisabled(true)
	_, err = c.GetWithContext(ctx, "instance/service-accounts/default/identity?audience=sts.amazonaws.com")
	var nde metadata.NotDefinedError
	if !errors.As(err, &nde) {
		t.Fatalf("identity disabled: err = %v, want NotDefinedError", err)
	}
}

package oidc

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testIssuer starts iss on a 127.0.0.1 server, sets its URL and counts discovery fetches.
type testIssuer struct {
	*Issuer
	srv        *httptest.Server
	discovered atomic.Int64
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	iss, err := NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	ti := &testIssuer{Issuer: iss}
	h := iss.Handler()
	ti.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, DiscoveryPath) {
			ti.discovered.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ti.srv.Close)
	iss.SetURL(ti.srv.URL)
	return ti
}

// validClaims are claims that pass every time check now.
func validClaims() map[string]any {
	now := time.Now()
	return map[string]any{
		"sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
		"aud": "sts.amazonaws.com",
		"iat": now.Unix(),
		"nbf": now.Add(-5 * time.Minute).Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
	}
}

// decodeSegment decodes one base64url JSON segment of a compact JWT.
func decodeSegment(t *testing.T, token string, n int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	raw, err := b64.DecodeString(parts[n])
	if err != nil {
		t.Fatalf("segment %d: %v", n, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("segment %d: %v", n, err)
	}
	return m
}

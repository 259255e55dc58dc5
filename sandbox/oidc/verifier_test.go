package oidc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestForgeriesRejected(t *testing.T) {
	ti := newTestIssuer(t)
	good, err := ti.Sign(validClaims())
	if err != nil {
		t.Fatal(err)
	}
	escalated := validClaims()
	escalated["sub"] = "repo:octo-org/octo-repo:environment:prod"
	cur, _ := ti.current()

	tests := []struct {
		name   string
		forge  func() (string, error)
		reason string
	}{
		{"unknown key", func() (string, error) { return ti.SignWithUnknownKey(validClaims()) }, "unknown key id"},
		{"wrong key under current kid", func() (string, error) { return ti.SignWithWrongKey(validClaims()) }, "signature"},
		{"alg none", func() (string, error) { return ti.SignNone(validClaims()) }, "alg none"},
		{"HS256 keyed with public key", func() (string, error) { return ti.SignHS256WithPublicKey(validClaims()) }, `"HS256"`},
		{"tampered payload", func() (string, error) { return ti.Tamper(good, escalated) }, "signature"},
		{"RS512 with the real key", func() (string, error) {
			return signJWS(jose.RS512, jose.JSONWebKey{Key: cur.key, KeyID: cur.kid}, withIssuer(validClaims(), ti.URL()))
		}, `"RS512"`},
		{"no kid", func() (string, error) {
			return signJWS(jose.RS256, cur.key, withIssuer(validClaims(), ti.URL()))
		}, "no key id"},
		{"no iss", func() (string, error) { return ti.Tamper(good, map[string]any{"iss": ""}) }, "no iss"},
		{"iss not a URL", func() (string, error) { return ti.Tamper(good, map[string]any{"iss": "token.actions"}) }, "not an http(s) URL"},
		{"iss with query", func() (string, error) { return ti.Tamper(good, map[string]any{"iss": ti.URL() + "?x=1"}) }, "not an http(s) URL"},
		{"signature stripped", func() (string, error) { return good[:strings.LastIndex(good, ".")+1], nil }, ""},
		{"two segments", func() (string, error) { return good[:strings.LastIndex(good, ".")], nil }, "compact JWS"},
		{"empty", func() (string, error) { return "", nil }, "compact JWS"},
		{"garbage header", func() (string, error) { return "!!!." + strings.SplitN(good, ".", 2)[1], nil }, "malformed token header"},
		{"huge", func() (string, error) { return strings.Repeat("a", maxTokenBytes+1), nil }, "too large"},
	}
	v := &Verifier{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := tt.forge()
			if err != nil {
				t.Fatal(err)
			}
			claims, err := v.Verify(context.Background(), tok)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v (claims %v), want ErrInvalidToken", err, claims)
			}
			if claims != nil {
				t.Fatal("claims returned with an error")
			}
			if !strings.Contains(Reason(err), tt.reason) {
				t.Fatalf("reason %q does not mention %q", Reason(err), tt.reason)
			}
		})
	}
}

func TestTimeChecks(t *testing.T) {
	ti := newTestIssuer(t)
	now := time.Now()
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	tests := []struct {
		name   string
		claims map[string]any
		skew   time.Duration
		want   error
	}{
		{"valid", map[string]any{"exp": at(time.Minute), "nbf": at(-time.Minute), "iat": at(0)}, 0, nil},
		{"expired beyond default skew", map[string]any{"exp": at(-2 * time.Minute)}, 0, ErrExpired},
		{"expired within default skew", map[string]any{"exp": at(-30 * time.Second)}, 0, nil},
		{"expired within custom skew", map[string]any{"exp": at(-2 * time.Minute)}, 5 * time.Minute, nil},
		{"no exp", map[string]any{"iat": at(0)}, 0, ErrInvalidToken},
		{"exp not a number", map[string]any{"exp": "tomorrow"}, 0, ErrInvalidToken},
		{"nbf in the future", map[string]any{"exp": at(time.Hour), "nbf": at(10 * time.Minute)}, 0, ErrInvalidToken},
		{"nbf within skew", map[string]any{"exp": at(time.Hour), "nbf": at(30 * time.Second)}, 0, nil},
		{"iat in the future", map[string]any{"exp": at(time.Hour), "iat": at(10 * time.Minute)}, 0, ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := ti.Sign(tt.claims)
			if err != nil {
				t.Fatal(err)
			}
			v := &Verifier{Skew: tt.skew, Now: func() time.Time { return now }}
			_, err = v.Verify(context.Background(), tok)
			if tt.want == nil && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// brokenIDP serves handler as an identity provider and returns a token that names it.
func brokenIDP(t *testing.T, handler http.HandlerFunc) (token string) {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	iss, err := NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	iss.SetURL(srv.URL)
	tok, err := iss.Sign(validClaims())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestIDPCommunication(t *testing.T) {
	// A closed port: connection refused.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	deadIss, err := NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	deadIss.SetURL(deadURL)
	refused, err := deadIss.Sign(validClaims())
	if err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	hanging := brokenIDP(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the server's Close

	mismatch := brokenIDP(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"issuer": "https://other.example", "jwks_uri": "http://" + r.Host + JWKSPath})
	})

	tests := []struct {
		name  string
		token string
	}{
		{"connection refused", refused},
		{"hanging server", hanging},
		{"discovery 500", brokenIDP(t, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		})},
		{"discovery not JSON", brokenIDP(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("<html>"))
		})},
		{"issuer mismatch", mismatch},
		{"jwks missing", brokenIDP(t, func(w http.ResponseWriter, r *http.Request) {
			base := "http://" + r.Host
			if strings.HasSuffix(r.URL.Path, DiscoveryPath) {
				writeJSON(w, http.StatusOK, map[string]string{"issuer": base, "jwks_uri": base + "/nothing"})
				return
			}
			http.NotFound(w, r)
		})},
		{"jwks without RSA keys", brokenIDP(t, func(w http.ResponseWriter, r *http.Request) {
			base := "http://" + r.Host
			if strings.HasSuffix(r.URL.Path, DiscoveryPath) {
				writeJSON(w, http.StatusOK, map[string]string{"issuer": base, "jwks_uri": base + JWKSPath})
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"keys": []any{}})
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &Verifier{Client: &http.Client{Timeout: 300 * time.Millisecond}}
			start := time.Now()
			_, err := v.Verify(context.Background(), tt.token)
			if !errors.Is(err, ErrIDPCommunication) {
				t.Fatalf("err = %v, want ErrIDPCommunication", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}

	// The caller's context bounds a hanging IDP too, with the default client.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := (&Verifier{}).Verify(ctx, hanging); !errors.Is(err, ErrIDPCommunication) {
		t.Fatalf("ctx timeout: err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("ctx timeout took %v", d)
	}
}

package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
)

func TestDiscoveryAndJWKS(t *testing.T) {
	ti := newTestIssuer(t)
	resp, err := http.Get(ti.srv.URL + DiscoveryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != ti.srv.URL || doc["jwks_uri"] != ti.srv.URL+JWKSPath {
		t.Fatalf("issuer/jwks_uri = %v/%v", doc["issuer"], doc["jwks_uri"])
	}
	for _, k := range []string{"response_types_supported", "subject_types_supported", "claims_supported"} {
		if l, _ := doc[k].([]any); len(l) == 0 {
			t.Errorf("%s missing", k)
		}
	}
	if algs, _ := doc["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "RS256" {
		t.Errorf("algs = %v", algs)
	}

	resp2, err := http.Get(ti.srv.URL + JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.NewDecoder(resp2.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("keys = %d", len(set.Keys))
	}
	k := set.Keys[0]
	if k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" || k["kid"] != ti.KeyIDs()[0] || k["d"] != nil {
		t.Fatalf("jwk = %v", k)
	}

	req, _ := http.NewRequest(http.MethodPost, ti.srv.URL+JWKSPath, nil)
	resp3, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp3.Body.Close()
	if resp3.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST jwks = %d", resp3.StatusCode)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	ti := newTestIssuer(t)
	in := validClaims()
	in["custom"] = "value"
	tok, err := ti.Sign(in)
	if err != nil {
		t.Fatal(err)
	}
	h := decodeSegment(t, tok, 0)
	if h["alg"] != "RS256" || h["typ"] != "JWT" || h["kid"] != ti.KeyIDs()[0] {
		t.Fatalf("header = %v", h)
	}
	if _, ok := in["iss"]; ok {
		t.Fatal("Sign mutated the caller's map")
	}
	v := &Verifier{}
	claims, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != ti.URL() || claims["sub"] != in["sub"] || claims["custom"] != "value" {
		t.Fatalf("claims = %v", claims)
	}
	// An explicit iss is kept (and then must match a discovery document to verify).
	tok2, err := ti.Sign(map[string]any{"iss": "https://elsewhere.example", "exp": 1})
	if err != nil {
		t.Fatal(err)
	}
	if decodeSegment(t, tok2, 1)["iss"] != "https://elsewhere.example" {
		t.Fatal("explicit iss overwritten")
	}
}

func TestRotation(t *testing.T) {
	ti := newTestIssuer(t)
	v := &Verifier{}
	ctx := context.Background()
	before, err := ti.Sign(validClaims())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, before); err != nil {
		t.Fatal(err)
	}
	if err := ti.Rotate(); err != nil {
		t.Fatal(err)
	}
	if n := len(ti.KeyIDs()); n != 2 {
		t.Fatalf("published keys after Rotate = %d", n)
	}
	after, err := ti.Sign(validClaims())
	if err != nil {
		t.Fatal(err)
	}
	if decodeSegment(t, after, 0)["kid"] == decodeSegment(t, before, 0)["kid"] {
		t.Fatal("Rotate did not change the signing kid")
	}
	fetches := ti.discovered.Load()
	// The new kid is not in the cached set: exactly one refetch finds it.
	if _, err := v.Verify(ctx, after); err != nil {
		t.Fatalf("token after rotation: %v", err)
	}
	if _, err := v.Verify(ctx, before); err != nil {
		t.Fatalf("token before rotation: %v", err)
	}
	if got := ti.discovered.Load() - fetches; got != 1 {
		t.Fatalf("discovery fetches for rotation = %d, want 1", got)
	}

	ti.RetireOld()
	v.Flush()
	if _, err := v.Verify(ctx, before); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("retired key: err = %v", err)
	}
	if _, err := v.Verify(ctx, after); err != nil {
		t.Fatalf("current key after RetireOld: %v", err)
	}
	// Without a cache, retirement is seen with no Flush.
	nocache := &Verifier{CacheTTL: -1}
	if _, err := nocache.Verify(ctx, before); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("retired key, no cache: err = %v", err)
	}
}

func TestCacheAvoidsRefetch(t *testing.T) {
	ti := newTestIssuer(t)
	v := &Verifier{}
	tok, err := ti.Sign(validClaims())
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := ti.discovered.Load(); n != 1 {
		t.Fatalf("discovery fetches = %d, want 1", n)
	}
	// An unknown kid refetches once per Verify, never more.
	forged, err := ti.SignWithUnknownKey(validClaims())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), forged); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("err = %v", err)
	}
	if n := ti.discovered.Load(); n != 2 {
		t.Fatalf("discovery fetches after unknown kid = %d, want 2", n)
	}
}

// TestConcurrentVerifyDuringRotation exercises the key cache from many goroutines while the
// issuer rotates; run under -race it proves the Verifier is safe to share.
func TestConcurrentVerifyDuringRotation(t *testing.T) {
	ti := newTestIssuer(t)
	v := &Verifier{}
	tok, err := ti.Sign(validClaims())
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8*5)
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 5 {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					errs <- err
				}
			}
		}()
	}
	if err := ti.Rotate(); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(ti.KeyIDs()) != 2 {
		t.Fatal("rotation lost a key")
	}
}

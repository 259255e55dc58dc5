package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	defaultSkew     = time.Minute
	defaultCacheTTL = 5 * time.Second
	defaultTimeout  = 5 * time.Second
	// maxTokenBytes bounds what is decoded before any check; AWS caps WebIdentityToken far lower.
	maxTokenBytes = 64 << 10
)

var defaultClient = &http.Client{Timeout: defaultTimeout}

// Verifier verifies RS256 JWTs by fetching the issuer's discovery document and JWKS over HTTP.
// The zero value is ready to use and safe for concurrent use.
type Verifier struct {
	Client *http.Client     // nil: a client with a 5 s timeout
	Skew   time.Duration    // allowed clock skew for exp/nbf/iat (0: 1 minute)
	Now    func() time.Time // nil: time.Now
	// CacheTTL is how long an issuer's keys are reused without refetching (0: 5 s; negative:
	// never cached). An unknown kid always forces one refetch, so rotation is seen at once;
	// a retired key stays accepted until its cache entry expires or Flush is called.
	CacheTTL time.Duration

	mu    sync.Mutex
	cache map[string]keySet
}

type keySet struct {
	keys    map[string]*jose.JSONWebKey
	fetched time.Time
}

// Flush forgets every cached key set, so the next Verify refetches.
func (v *Verifier) Flush() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cache = nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) skew() time.Duration {
	if v.Skew > 0 {
		return v.Skew
	}
	return defaultSkew
}

func invalid(format string, a ...any) error {
	return &VerifyError{Kind: ErrInvalidToken, Reason: fmt.Sprintf(format, a...)}
}

type tokenHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// timeClaims are decoded apart from the claim map so malformed values are caught.
type timeClaims struct {
	Exp *jwt.NumericDate `json:"exp"`
	Nbf *jwt.NumericDate `json:"nbf"`
	Iat *jwt.NumericDate `json:"iat"`
}

// Verify verifies token and returns its claims; errors wrap one of the Err* values above.
// Nothing in the token is trusted before its signature checks out, except "iss", which only
// chooses where the keys are fetched from.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if len(token) > maxTokenBytes {
		return nil, invalid("token is too large")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, invalid("token is not a compact JWS (header.payload.signature)")
	}
	var h tokenHeader
	if raw, err := b64.DecodeString(parts[0]); err != nil || json.Unmarshal(raw, &h) != nil {
		return nil, invalid("malformed token header")
	}
	switch {
	case strings.EqualFold(h.Alg, "none"):
		return nil, invalid("unsigned token (alg none) is not accepted")
	case h.Alg != string(jose.RS256):
		return nil, invalid("unsupported signing algorithm %q, only RS256 is accepted", h.Alg)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, invalid("malformed token")
	}
	var pre struct {
		Iss any `json:"iss"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &pre); err != nil {
		return nil, invalid("malformed token payload")
	}
	iss, err := checkIssuer(pre.Iss)
	if err != nil {
		return nil, err
	}
	if h.Kid == "" {
		return nil, invalid("token has no key id (kid)")
	}
	key, err := v.key(ctx, iss, h.Kid)
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, invalid("token signature is invalid")
	}
	var claims Claims
	var tc timeClaims
	if json.Unmarshal(payload, &claims) != nil || json.Unmarshal(payload, &tc) != nil {
		return nil, invalid("malformed token claims")
	}
	if err := v.checkTimes(tc); err != nil {
		return nil, err
	}
	return claims, nil
}

// checkIssuer accepts only an absolute http(s) URL without query or fragment, the shape
// OIDC discovery needs.
func checkIssuer(raw any) (string, error) {
	s, ok := raw.(string)
	if !ok || s == "" {
		return "", invalid("token has no iss claim")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", invalid("iss claim %q is not an http(s) URL", s)
	}
	return s, nil
}

func (v *Verifier) checkTimes(tc timeClaims) error {
	now, skew := v.now(), v.skew()
	const layout = time.RFC3339
	if tc.Exp == nil {
		return invalid("token has no exp claim")
	}
	if exp := tc.Exp.Time(); now.After(exp.Add(skew)) {
		return &VerifyError{Kind: ErrExpired, Reason: fmt.Sprintf(
			"token expired: current date/time %s must be before the expiration date/time %s",
			now.UTC().Format(layout), exp.UTC().Format(layout))}
	}
	if tc.Nbf != nil {
		if nbf := tc.Nbf.Time(); nbf.After(now.Add(skew)) {
			return invalid("token is not valid before %s", nbf.UTC().Format(layout))
		}
	}
	if tc.Iat != nil {
		if iat := tc.Iat.Time(); iat.After(now.Add(skew)) {
			return invalid("token was issued in the future (iat %s)", iat.UTC().Format(layout))
		}
	}
	return nil
}

package oidc

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxDocBytes bounds discovery and JWKS bodies; real ones are a few KiB.
const maxDocBytes = 1 << 20

func idpError(format string, a ...any) error {
	return &VerifyError{Kind: ErrIDPCommunication, Reason: fmt.Sprintf(format, a...)}
}

// key returns the issuer's published RSA key for kid. A cached set is used while fresh; a
// miss (no set, stale set, or unknown kid) costs exactly one fetch, so a rotated key is
// found at once and a forged kid cannot make Verify loop.
func (v *Verifier) key(ctx context.Context, iss, kid string) (*rsa.PublicKey, error) {
	ks, ok := v.cached(iss)
	if !ok || ks.keys[kid] == nil {
		var err error
		if ks, err = v.fetch(ctx, iss); err != nil {
			return nil, err
		}
		v.store(iss, ks)
	}
	jwk := ks.keys[kid]
	if jwk == nil {
		return nil, invalid("token signed with an unknown key id %q", kid)
	}
	pub, _ := jwk.Key.(*rsa.PublicKey) // fetch keeps RSA public keys only
	return pub, nil
}

func (v *Verifier) ttl() time.Duration {
	if v.CacheTTL != 0 {
		return v.CacheTTL
	}
	return defaultCacheTTL
}

func (v *Verifier) cached(iss string) (keySet, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ks, ok := v.cache[iss]
	if !ok || time.Since(ks.fetched) >= v.ttl() {
		return keySet{}, false
	}
	return ks, true
}

func (v *Verifier) store(iss string, ks keySet) {
	if v.ttl() < 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cache == nil {
		v.cache = map[string]keySet{}
	}
	v.cache[iss] = ks
}

// fetch reads iss's discovery document and then its JWKS.
func (v *Verifier) fetch(ctx context.Context, iss string) (keySet, error) {
	var doc discoveryDoc
	if err := v.getJSON(ctx, strings.TrimRight(iss, "/")+DiscoveryPath, &doc); err != nil {
		return keySet{}, idpError("fetching the discovery document: %v", err)
	}
	if doc.Issuer != iss {
		return keySet{}, idpError("discovery document names issuer %q, token names %q", doc.Issuer, iss)
	}
	if doc.JWKSURI == "" {
		return keySet{}, idpError("discovery document has no jwks_uri")
	}
	var set jose.JSONWebKeySet
	if err := v.getJSON(ctx, doc.JWKSURI, &set); err != nil {
		return keySet{}, idpError("fetching the JWKS: %v", err)
	}
	ks := keySet{keys: map[string]*jose.JSONWebKey{}, fetched: time.Now()}
	for n := range set.Keys {
		k := &set.Keys[n]
		if _, isRSA := k.Key.(*rsa.PublicKey); !isRSA || k.KeyID == "" {
			continue
		}
		if (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != string(jose.RS256)) {
			continue
		}
		ks.keys[k.KeyID] = k
	}
	if len(ks.keys) == 0 {
		return keySet{}, idpError("the JWKS has no RS256 signing keys")
	}
	return ks, nil
}

func (v *Verifier) getJSON(ctx context.Context, u string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	c := v.Client
	if c == nil {
		c = defaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxDocBytes {
		return fmt.Errorf("GET %s: body larger than %d bytes", u, maxDocBytes)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

package oidc

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
)

// Well-known paths, relative to the issuer URL. The JWKS path is GitHub's.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/.well-known/jwks"
)

const rsaBits = 2048

type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

func newSigningKey() (signingKey, error) {
	k, err := rsa.GenerateKey(randReader, rsaBits)
	if err != nil {
		return signingKey{}, fmt.Errorf("oidc: generate RSA key: %w", err)
	}
	return signingKey{kid: randomHex(20), key: k}, nil
}

// Issuer is an OIDC identity provider: RSA keys with kids (rotation keeps old keys in the JWKS
// until retired), a discovery document and a JWKS, and RS256 signing.
type Issuer struct {
	mu   sync.RWMutex
	url  string
	keys []signingKey // published; the last one is current

	strangerOnce sync.Once
	stranger     signingKey // never published: for SignWithUnknownKey / SignWithWrongKey
	strangerErr  error
}

// NewIssuer creates an issuer with one fresh 2048-bit RSA key. Its URL is set with SetURL once
// the server listens (the sandbox picks a random port first).
func NewIssuer() (*Issuer, error) {
	k, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	return &Issuer{keys: []signingKey{k}}, nil
}

// SetURL sets the issuer URL (the JWT "iss", and the base of the discovery document).
// A trailing slash is dropped so "iss" and the discovery "issuer" always agree.
func (i *Issuer) SetURL(u string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.url = strings.TrimRight(u, "/")
}

// URL returns the issuer URL.
func (i *Issuer) URL() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.url
}

// KeyIDs returns the published key ids, oldest first; the last is the current signing key.
func (i *Issuer) KeyIDs() []string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	ids := make([]string, len(i.keys))
	for n, k := range i.keys {
		ids[n] = k.kid
	}
	return ids
}

// Rotate adds a new current key; earlier keys stay in the JWKS until RetireOld.
func (i *Issuer) Rotate() error {
	k, err := newSigningKey()
	if err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = append(i.keys, k)
	return nil
}

// RetireOld removes every key but the current one from the JWKS.
func (i *Issuer) RetireOld() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = []signingKey{i.keys[len(i.keys)-1]}
}

func (i *Issuer) current() (signingKey, string) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.keys[len(i.keys)-1], i.url
}

// Sign signs claims with the current key (RS256, header kid). "iss" is set to URL() unless present.
func (i *Issuer) Sign(claims map[string]any) (string, error) {
	k, iss := i.current()
	return signJWS(jose.RS256, jose.JSONWebKey{Key: k.key, KeyID: k.kid}, withIssuer(claims, iss))
}

// withIssuer copies claims (callers may reuse their map) and defaults "iss".
func withIssuer(claims map[string]any, iss string) map[string]any {
	c := make(map[string]any, len(claims)+1)
	for k, v := range claims {
		c[k] = v
	}
	if _, ok := c["iss"]; !ok {
		c["iss"] = iss
	}
	return c
}

// signJWS produces a compact JWS with typ JWT; a JSONWebKey key puts its KeyID in "kid".
func signJWS(alg jose.SignatureAlgorithm, key any, claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("oidc: signer: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("oidc: encode claims: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("oidc: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// Handler serves /.well-known/openid-configuration and the JWKS. Paths are matched by
// suffix so the handler works both at the server root and mounted under a prefix.
func (i *Issuer) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, DiscoveryPath):
			writeJSON(w, http.StatusOK, i.discovery())
		case strings.HasSuffix(r.URL.Path, JWKSPath):
			writeJSON(w, http.StatusOK, i.jwks())
		default:
			http.NotFound(w, r)
		}
	})
}

type discoveryDoc struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	ClaimsSupported                  []string `json:"claims_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	ScopesSupported                  []string `json:"scopes_supported"`
}

func (i *Issuer) discovery() discoveryDoc {
	u := i.URL()
	return discoveryDoc{
		Issuer:                           u,
		JWKSURI:                          u + JWKSPath,
		SubjectTypesSupported:            []string{"public", "pairwise"},
		ResponseTypesSupported:           []string{"id_token"},
		ClaimsSupported:                  supportedClaims,
		IDTokenSigningAlgValuesSupported: []string{string(jose.RS256)},
		ScopesSupported:                  []string{"openid"},
	}
}

// supportedClaims is the union of what the GitHub and Google token services here emit.
var supportedClaims = []string{
	"sub", "aud", "exp", "iat", "iss", "jti", "nbf", "azp", "email", "email_verified", "google",
	"ref", "sha", "repository", "repository_id", "repository_owner", "repository_owner_id",
	"repository_visibility", "run_id", "run_number", "run_attempt", "runner_environment",
	"actor", "actor_id", "workflow", "workflow_ref", "workflow_sha", "head_ref", "base_ref",
	"event_name", "ref_type", "ref_protected", "environment", "job_workflow_ref", "job_workflow_sha",
}

func (i *Issuer) jwks() jose.JSONWebKeySet {
	i.mu.RLock()
	defer i.mu.RUnlock()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(i.keys))}
	for _, k := range i.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key: &k.key.PublicKey, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig",
		})
	}
	return set
}

// writeJSON writes v with status; encoding errors cannot happen for the types used here.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

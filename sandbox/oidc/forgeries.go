package oidc

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// The helpers in this file forge tokens a strict verifier must reject. They are exported so
// tests of other packages (STS above all) can replay each attack end to end. Like Sign, each
// defaults "iss" to URL() so the forgery gets past issuer lookup to the check it targets.

var b64 = base64.RawURLEncoding

func (i *Issuer) strangerKey() (signingKey, error) {
	i.strangerOnce.Do(func() { i.stranger, i.strangerErr = newSigningKey() })
	return i.stranger, i.strangerErr
}

// SignWithUnknownKey signs RS256 with a key the JWKS never publishes, under its own kid.
func (i *Issuer) SignWithUnknownKey(claims map[string]any) (string, error) {
	k, err := i.strangerKey()
	if err != nil {
		return "", err
	}
	return signJWS(jose.RS256, jose.JSONWebKey{Key: k.key, KeyID: k.kid}, withIssuer(claims, i.URL()))
}

// SignWithWrongKey signs RS256 with an unpublished key but claims the current key's kid, so
// only the signature check can catch it.
func (i *Issuer) SignWithWrongKey(claims map[string]any) (string, error) {
	k, err := i.strangerKey()
	if err != nil {
		return "", err
	}
	cur, iss := i.current()
	return signJWS(jose.RS256, jose.JSONWebKey{Key: k.key, KeyID: cur.kid}, withIssuer(claims, iss))
}

// SignNone returns an unsigned token (alg "none", empty signature) naming the current kid.
func (i *Issuer) SignNone(claims map[string]any) (string, error) {
	cur, iss := i.current()
	header := map[string]any{"alg": "none", "typ": "JWT", "kid": cur.kid}
	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("oidc: encode header: %w", err)
	}
	p, err := json.Marshal(withIssuer(claims, iss))
	if err != nil {
		return "", fmt.Errorf("oidc: encode claims: %w", err)
	}
	return b64.EncodeToString(h) + "." + b64.EncodeToString(p) + ".", nil
}

// SignHS256WithPublicKey is the classic key-confusion forgery: HMAC-SHA256 keyed with the
// current RSA public key's PEM, which a verifier that trusts the header's alg would accept.
func (i *Issuer) SignHS256WithPublicKey(claims map[string]any) (string, error) {
	cur, iss := i.current()
	der, err := x509.MarshalPKIXPublicKey(&cur.key.PublicKey)
	if err != nil {
		return "", fmt.Errorf("oidc: marshal public key: %w", err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return signJWS(jose.HS256, jose.JSONWebKey{Key: secret, KeyID: cur.kid}, withIssuer(claims, iss))
}

// Tamper swaps token's payload for claims and keeps its header and signature.
func (i *Issuer) Tamper(token string, claims map[string]any) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("oidc: tamper: not a compact JWS")
	}
	p, err := json.Marshal(withIssuer(claims, i.URL()))
	if err != nil {
		return "", fmt.Errorf("oidc: encode claims: %w", err)
	}
	return parts[0] + "." + b64.EncodeToString(p) + "." + parts[2], nil
}

package oidc

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Issuer is an OIDC identity provider: RSA keys with kids (rotation keeps old keys in the JWKS
// until retired), a discovery document and a JWKS, and RS256 signing.
type Issuer struct { /* TODO */
}

// NewIssuer creates an issuer with one fresh 2048-bit RSA key. Its URL is set with SetURL once
// the server listens (the sandbox picks a random port first).
func NewIssuer() (*Issuer, error) { panic("TODO") }

// SetURL sets the issuer URL (the JWT "iss", and the base of the discovery document).
func (i *Issuer) SetURL(u string) { panic("TODO") }

// URL returns the issuer URL.
func (i *Issuer) URL() string { panic("TODO") }

// Handler serves /.well-known/openid-configuration and the JWKS.
func (i *Issuer) Handler() http.Handler { panic("TODO") }

// Sign signs claims with the current key (RS256, header kid). "iss" is set to URL() unless present.
func (i *Issuer) Sign(claims map[string]any) (string, error) { panic("TODO") }

// Rotate adds a new current key; earlier keys stay in the JWKS until RetireOld.
func (i *Issuer) Rotate() error { panic("TODO") }

// RetireOld removes every key but the current one from the JWKS.
func (i *Issuer) RetireOld() { panic("TODO") }

// Verification failures. STS maps them: ErrInvalidToken → InvalidIdentityToken,
// ErrExpired → ExpiredTokenException, ErrIDPCommunication → IDPCommunicationError.
var (
	ErrInvalidToken     = errors.New("invalid identity token")
	ErrExpired          = errors.New("token is expired")
	ErrIDPCommunication = errors.New("could not reach the identity provider")
)

// Claims are a verified token's claims.
type Claims map[string]any

// Verifier verifies RS256 JWTs by fetching the issuer's discovery document and JWKS over HTTP.
type Verifier struct {
	Client *http.Client     // nil: a client with a 5 s timeout
	Skew   time.Duration    // allowed clock skew for exp/nbf/iat (0: 5 minutes? no — see doc)
	Now    func() time.Time // nil: time.Now
}

// Verify verifies token and returns its claims; errors wrap one of the Err* values above.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) { panic("TODO") }

package federate

import (
	"github.com/ecrpush/ecrpush/internal/claims"
)

// Claims are the decoded (unverified) claims of an ID token. They are only used to explain a denial;
// the signature is STS's business. (The type lives in internal/claims, shared with trust-policy.)
type Claims = claims.Claims

// DecodeClaims decodes a JWT's payload without verifying it.
func DecodeClaims(token string) (Claims, error) { return claims.Decode(token) }

// Provider names as AWS trust policies write them.
const (
	GitHubProvider = claims.GitHubProvider
	GoogleProvider = claims.GoogleProvider
)

func shown(s string) string { return claims.Shown(s) }

func sortedKeys(m map[string]string) []string { return claims.SortedKeys(m) }

func parseSubject(sub string) (claims.Subject, bool) { return claims.ParseSubject(sub) }

package federate_test

import (
	"strings"
	"testing"

	"github.com/ecrpush/ecrpush/internal/federate"
)

// An invalid token is diagnosed from what STS said about it: a clock problem, a forged or altered
// token, or a malformed one each get their own fix — not advice to re-check the provider's keys,
// which is right only when the key itself could not be found.
func TestInvalidTokenHints(t *testing.T) {
	claims := federate.Claims{"iss": "https://token.actions.githubusercontent.com", "aud": "sts.amazonaws.com", "sub": "repo:o/r:ref:refs/heads/main"}
	for _, tc := range []struct{ message, want string }{
		{"Token is not valid before 2030-01-01T00:00:00Z", "clock"},
		{"Token was issued in the future (iat 2030-01-01T00:00:00Z)", "clock"},
		{"Token signature is invalid", "not signed by https://token.actions.githubusercontent.com"},
		{"Unsigned token (alg none) is not accepted", "not signed by"},
		{`Unsupported signing algorithm "HS256", only RS256 is accepted`, "not signed by"},
		{"Token has no exp claim", "lacks a claim"},
		{"Couldn't retrieve verification key from your identity provider", "keys are current"},
		{"Incorrect token audience", "--audience"},
		{"No OpenIDConnect provider found in your account for https://x", "create an IAM OIDC identity provider"},
	} {
		e := &federate.DeniedError{Code: "InvalidIdentityToken", RoleARN: "arn:aws:iam::111122223333:role/r", Claims: claims, Message: tc.message}
		if got := e.Error(); !strings.Contains(got, tc.want) || strings.Contains(got, "\n") {
			t.Errorf("%q: %s\nwant one line with %q", tc.message, got, tc.want)
		}
	}
}

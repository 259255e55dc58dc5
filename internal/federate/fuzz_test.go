package federate_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/ecrpush/ecrpush/internal/federate"
)

// FuzzDecodeClaims decodes arbitrary tokens — the claims of a token STS refused are attacker-chosen
// and unverified — and explains them as a denial would: nothing may panic, and every line printed
// must stay one line, so a claim cannot forge a log line or a GitHub workflow command.
func FuzzDecodeClaims(f *testing.F) {
	payload := func(s string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(s)) + ".c2ln"
	}
	for _, s := range []string{
		`{"iss":"https://token.actions.githubusercontent.com","aud":"sts.amazonaws.com","sub":"repo:o/r:ref:refs/heads/main","repository":"o/r"}`,
		`{"iss":"https://accounts.google.com","aud":"x","azp":"100000000000000000001","sub":"100000000000000000001","email":"a@b.c"}`,
		`{"aud":["a",1,null,{"x":true}],"sub":"repo:O/R:environment:prod","exp":1e300}`,
		`{"sub":"repo:o/r:pull_request\n::error::injected","repository":"o/r\r\n::add-mask::x"}`,
		`{"iss":"https://issuer.example\n::error::injected","aud":"sts.amazonaws.com","sub":"s"}`,
		`null`, `[]`, `{"iss":{"a":1}}`, `"string"`,
	} {
		f.Add(payload(s))
	}
	f.Add("a.b.c")
	f.Add("..")
	f.Add("eyJ9.e30.")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := federate.DecodeClaims(token)
		if err != nil {
			return
		}
		keys := c.ConditionKeys()
		for k := range keys {
			if !strings.HasSuffix(k, ":aud") && !strings.HasSuffix(k, ":sub") && !strings.HasSuffix(k, ":oaud") {
				t.Fatalf("condition key %q", k)
			}
		}
		_ = c.Public()
		for _, code := range []string{"AccessDenied", "InvalidIdentityToken", "ExpiredTokenException"} {
			for _, msg := range []string{"Incorrect token audience", "Token signature is invalid", "No OpenIDConnect provider found"} {
				e := &federate.DeniedError{Code: code, RoleARN: "arn:aws:iam::111122223333:role/r", Claims: c, Message: msg}
				if s := e.Error(); strings.ContainsAny(s, "\r\n") {
					t.Fatalf("%s: the error spans lines: %q", code, s)
				}
				for _, line := range e.Details() {
					if strings.ContainsAny(line, "\r\n") {
						t.Fatalf("a detail spans lines: %q", line)
					}
				}
			}
		}
	})
}

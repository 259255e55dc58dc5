package federate

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Claims are the decoded (unverified) claims of an ID token. They are only used to explain a denial;
// the signature is STS's business.
type Claims map[string]any

// DecodeClaims decodes a JWT's payload without verifying it.
func DecodeClaims(token string) (Claims, error) {
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT: want three dot-separated parts")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("JWT payload is not base64url: %w", err)
	}
	var c Claims
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("JWT payload is not a JSON object: %w", err)
	}
	return c, nil
}

// String returns a claim as a string ("" when absent; audiences joined with ",").
func (c Claims) String(name string) string {
	switch v := c[name].(type) {
	case string:
		return v
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return strings.Join(out, ",")
	case nil:
		return ""
	case float64:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprint(v)
	}
}

// publicClaims are the claims that help a user fix a trust policy. None of them is a secret.
var publicClaims = []string{"iss", "aud", "azp", "sub", "repository", "ref", "environment", "event_name", "job_workflow_ref", "email"}

// Public returns the non-secret claims worth showing, in a stable order.
func (c Claims) Public() [][2]string {
	var out [][2]string
	for _, k := range publicClaims {
		if v := c.String(k); v != "" {
			out = append(out, [2]string{k, shown(v)})
		}
	}
	return out
}

// shown is a claim value fit for one log line: quoted when it holds a control character, so the
// claims of an unverified token can never start a line of their own (a forged log line, or a
// GitHub workflow command such as ::add-mask:: or ::error::).
func shown(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// Provider names the AWS identity provider a token belongs to, from its issuer.
func (c Claims) Provider() string {
	iss := c.String("iss")
	switch {
	case strings.Contains(iss, "token.actions.githubusercontent.com"):
		return GitHubProvider
	case iss == "https://accounts.google.com" || iss == "accounts.google.com":
		return GoogleProvider
	case c.String("azp") != "" && c.String("email") != "" || looksGoogleID(c.String("sub")) && c.String("azp") == c.String("sub"):
		// Google ID tokens carry azp = sub = the service account's unique id.
		return GoogleProvider
	case c.String("repository") != "" && strings.HasPrefix(c.String("sub"), "repo:"):
		return GitHubProvider
	}
	return strings.TrimPrefix(strings.TrimPrefix(iss, "https://"), "http://")
}

func looksGoogleID(s string) bool {
	if len(s) < 15 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// ConditionKeys are the condition keys AWS evaluates for this token, as a trust policy names them.
func (c Claims) ConditionKeys() map[string]string {
	p := c.Provider()
	keys := map[string]string{}
	if p == GoogleProvider {
		aud := c.String("azp")
		if aud == "" {
			aud = c.String("aud")
		}
		keys[p+":aud"] = aud
		keys[p+":oaud"] = c.String("aud")
		keys[p+":sub"] = c.String("sub")
		return keys
	}
	keys[p+":aud"] = c.String("aud")
	keys[p+":sub"] = c.String("sub")
	return keys
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

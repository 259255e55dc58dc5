package claims

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Provider names as AWS trust policies write them, and GitHub's public issuer.
const (
	GitHubProvider = "token.actions.githubusercontent.com"
	GoogleProvider = "accounts.google.com"
	GitHubIssuer   = "https://" + GitHubProvider
	GoogleIssuer   = "https://" + GoogleProvider
)

// Claims are the decoded (unverified) claims of an ID token.
type Claims map[string]any

// Decode decodes a JWT's payload without verifying it.
func Decode(token string) (Claims, error) {
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
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

// Audiences returns the aud claim as a list.
func (c Claims) Audiences() []string {
	switch v := c["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// publicClaims are the claims that help a user fix a trust policy. None of them is a secret.
var publicClaims = []string{"iss", "aud", "azp", "sub", "repository", "repository_id", "repository_owner_id", "ref",
	"environment", "event_name", "job_workflow_ref", "email"}

// Public returns the non-secret claims worth showing, in a stable order.
func (c Claims) Public() [][2]string {
	var out [][2]string
	for _, k := range publicClaims {
		if v := c.String(k); v != "" {
			out = append(out, [2]string{k, Shown(v)})
		}
	}
	return out
}

// Shown is a claim value fit for one log line: quoted when it holds a control character, so the
// claims of an unverified token can never start a line of their own (a forged log line, or a
// GitHub workflow command such as ::add-mask:: or ::error::).
func Shown(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// ProviderName is the name IAM gives the OIDC provider of an issuer URL, which is also the prefix of
// its condition keys: the URL without its scheme and trailing slash.
func ProviderName(issuer string) string {
	s := strings.TrimSuffix(issuer, "/")
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	return s
}

// IsGitHub reports whether the token was issued by GitHub Actions (github.com, an enterprise issuer
// on github.com, GitHub Enterprise Server, or a stand-in with GitHub's claims).
func (c Claims) IsGitHub() bool {
	iss := c.String("iss")
	if u, err := url.Parse(iss); err == nil && u.Host != "" {
		if strings.EqualFold(u.Hostname(), GitHubProvider) || strings.HasSuffix(u.Path, "/_services/token") ||
			strings.HasPrefix(strings.ToLower(u.Hostname()), "token.actions.") && strings.HasSuffix(strings.ToLower(u.Hostname()), ".ghe.com") {
			return true
		}
	}
	return c.githubShaped()
}

// githubShaped: every GitHub Actions token carries these, whatever its subject template.
func (c Claims) githubShaped() bool {
	return c.String("repository") != "" && c.String("repository_owner") != "" &&
		(c.String("job_workflow_ref") != "" || strings.HasPrefix(c.String("sub"), "repo:"))
}

// IsGoogle reports whether the token is a Google ID token.
func (c Claims) IsGoogle() bool {
	iss := c.String("iss")
	if iss == GoogleIssuer || iss == GoogleProvider {
		return true
	}
	// Google ID tokens carry azp = sub = the service account's unique id.
	return c.String("azp") != "" && c.String("email") != "" || looksGoogleID(c.String("sub")) && c.String("azp") == c.String("sub")
}

// Provider names the IAM OIDC provider the token is checked against: the issuer URL without its
// scheme. A stand-in issuer served over plain http at the root of a host (the sandbox's) is named
// after the public provider whose tokens it imitates, as the sandbox registers it.
func (c Claims) Provider() string {
	iss := c.String("iss")
	if iss == GoogleIssuer || iss == GoogleProvider {
		return GoogleProvider
	}
	if u, err := url.Parse(iss); err == nil && u.Scheme == "http" && strings.Trim(u.Path, "/") == "" {
		switch {
		case c.IsGoogle():
			return GoogleProvider
		case c.githubShaped():
			return GitHubProvider
		}
	}
	if iss == "" {
		switch {
		case c.IsGoogle():
			return GoogleProvider
		case c.githubShaped():
			return GitHubProvider
		}
	}
	return ProviderName(iss)
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

// SortedKeys returns m's keys in order.
func SortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

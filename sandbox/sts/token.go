package sts

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// peek decodes a JWT's payload without verifying it. STS needs the issuer before it can
// verify anything (it selects the IAM OIDC provider by iss, and an unknown issuer is refused
// without fetching its keys), and the expiry to word ExpiredTokenException as AWS does.
// Nothing read here is trusted: every decision uses the verified claims.
func peek(token string) (map[string]any, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, false
	}
	return claims, true
}

// stringClaim returns a string claim, "" when absent or not a string.
func stringClaim(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return s
}

// audiences returns the aud claim as a list: OIDC allows a string or an array of strings.
func audiences(claims map[string]any) []string {
	switch v := claims["aud"].(type) {
	case string:
		return []string{v}
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// numericClaim returns a NumericDate claim in whole seconds.
func numericClaim(claims map[string]any, name string) (int64, bool) {
	switch v := claims[name].(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n, true
		}
		if f, err := v.Float64(); err == nil {
			return int64(f), true
		}
	case float64:
		return int64(v), true
	case int64:
		return v, true
	case int:
		return int64(v), true
	}
	return 0, false
}

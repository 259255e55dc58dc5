package sigv4

import (
	"fmt"
	"strings"
)

const algorithm = "AWS4-HMAC-SHA256"

// authHeader is a parsed "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." header.
type authHeader struct {
	scope         Scope
	terminator    string
	signedHeaders []string
	signedRaw     string
	signature     string
}

// parseAuthorization parses the header; the error text follows AWS's IncompleteSignature wording.
func parseAuthorization(h string) (authHeader, error) {
	var a authHeader
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if alg != algorithm {
		return a, fmt.Errorf("Unsupported AWS 'algorithm': %q", alg)
	}
	params := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return a, fmt.Errorf("Authorization header requires each component to be of the form 'key=value', not %q", truncate(part))
		}
		if _, dup := params[k]; dup {
			return a, fmt.Errorf("Authorization header has a duplicate %q parameter", k)
		}
		params[k] = v
	}
	var missing []string
	for _, k := range []string{"Credential", "Signature", "SignedHeaders"} {
		if params[k] == "" {
			missing = append(missing, fmt.Sprintf("Authorization header requires '%s' parameter.", k))
		}
	}
	if len(missing) > 0 {
		return a, fmt.Errorf("%s", strings.Join(missing, " "))
	}
	cred := strings.Split(params["Credential"], "/")
	if len(cred) != 5 || cred[0] == "" {
		return a, fmt.Errorf("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got %q", truncate(params["Credential"]))
	}
	a.scope = Scope{AccessKeyID: cred[0], Date: cred[1], Region: cred[2], Service: cred[3]}
	a.terminator = cred[4]
	a.signedRaw = params["SignedHeaders"]
	a.signedHeaders = strings.Split(a.signedRaw, ";")
	a.signature = params["Signature"]
	return a, nil
}

// truncate keeps error messages short when a client sends garbage.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

package federate

import (
	"fmt"
	"strings"
	"unicode"
)

// DeniedError is STS refusing a token: AccessDenied (the trust policy did not admit it),
// InvalidIdentityToken or ExpiredTokenException. Its message is one line saying what to change;
// Details lists the condition keys AWS evaluated and the usual causes.
type DeniedError struct {
	Code    string // STS error code
	RoleARN string
	Claims  Claims // unverified, may be nil
	Message string // STS's message
	Err     error
}

func (e *DeniedError) Unwrap() error { return e.Err }

func (e *DeniedError) Error() string {
	keys := e.Claims.ConditionKeys()
	var kv []string
	for _, k := range sortedKeys(keys) {
		kv = append(kv, fmt.Sprintf("%s=%q", shown(k), keys[k]))
	}
	evaluated := strings.Join(kv, " ")
	switch e.Code {
	case "ExpiredTokenException":
		return fmt.Sprintf("STS refused an expired ID token for %s: the token was issued too long before use; check the runner's clock, or re-run so a fresh token is fetched", e.RoleARN)
	case "InvalidIdentityToken":
		return fmt.Sprintf("STS rejected the ID token for %s (%s): %s", e.RoleARN, shown(strings.TrimSpace(e.Message)), e.invalidHint())
	default:
		return fmt.Sprintf("not authorized to assume %s with this token (sts:AssumeRoleWithWebIdentity denied); AWS evaluated %s; %s",
			e.RoleARN, evaluated, e.fix())
	}
}

func (e *DeniedError) invalidHint() string {
	msg := strings.ToLower(e.Message)
	issuer := shown(e.Claims.String("iss"))
	if issuer == "" {
		issuer = "the issuer"
	}
	switch {
	case strings.Contains(msg, "audience"):
		return fmt.Sprintf("add the audience %q to the IAM OIDC provider's client IDs, or pass --audience with one it lists", e.Claims.String("aud"))
	case strings.Contains(msg, "no openidconnect provider"):
		return fmt.Sprintf("create an IAM OIDC identity provider for %s in the role's account", issuer)
	case strings.Contains(msg, "not valid before"), strings.Contains(msg, "in the future"):
		// A token from the future is a clock problem, not a trust problem.
		return "by AWS's clock the token is not valid yet: check the clock of the machine that minted or stores it, then fetch a fresh token"
	case strings.Contains(msg, "signature"), strings.Contains(msg, "algorithm"), strings.Contains(msg, "alg none"):
		// Forged, altered, or signed with a key or algorithm the issuer does not publish: the
		// provider's configuration is not what needs changing.
		return fmt.Sprintf("the token is not signed by %s's published RS256 keys (altered, forged, or re-signed): present the ID token exactly as the CI system issued it", issuer)
	case strings.Contains(msg, "claim"), strings.Contains(msg, "malformed"):
		return "the token lacks a claim AWS requires (exp, iss) or is malformed: present the ID token exactly as the CI system issued it"
	default:
		return "make sure the IAM OIDC identity provider for the issuer exists in the role's account and its thumbprint/keys are current"
	}
}

// fix names the most likely cause first, from the token itself.
func (e *DeniedError) fix() string {
	c := e.Claims
	p := c.Provider()
	sub := c.String("sub")
	var hints []string
	if p == GoogleProvider {
		hints = append(hints, fmt.Sprintf("for Google tokens AWS compares %s:aud with the service account's unique id (azp %q) and %s:oaud with the audience (%q); "+
			"run ecrpush trust-policy --google-service-account-id %s --audience %s", p, c.String("azp"), p, c.String("aud"), c.String("azp"), c.String("aud")))
		return strings.Join(hints, "; ")
	}
	if c.String("aud") != "sts.amazonaws.com" {
		hints = append(hints, fmt.Sprintf("the token's aud is %q, most trust policies require sts.amazonaws.com (--audience)", c.String("aud")))
	}
	switch {
	case strings.Contains(sub, ":environment:"):
		hints = append(hints, "the job uses a GitHub environment, so sub is repo:OWNER/REPO:environment:NAME, not :ref:")
	case strings.HasSuffix(sub, ":pull_request"):
		hints = append(hints, "pull_request runs have sub repo:OWNER/REPO:pull_request, which branch conditions do not match")
	}
	if hasUpper(sub) {
		hints = append(hints, "sub matching is case-sensitive and this one has upper-case letters")
	}
	if repo := c.String("repository"); repo != "" {
		hints = append(hints, "run ecrpush trust-policy --github-repo "+shown(repo)+" to print a policy that admits this job")
	} else {
		hints = append(hints, "check the trust policy's sub and aud conditions against these values")
	}
	return strings.Join(hints, "; ")
}

// Details are the lines printed before the error: every public claim as the condition key AWS uses.
func (e *DeniedError) Details() []string {
	out := []string{"the ID token presented to STS (claims only; the token is never printed):"}
	for _, kv := range e.Claims.Public() {
		out = append(out, fmt.Sprintf("  %-18s %s", kv[0], kv[1]))
	}
	out = append(out, "condition keys AWS evaluated against the role's trust policy:")
	keys := e.Claims.ConditionKeys()
	for _, k := range sortedKeys(keys) {
		out = append(out, fmt.Sprintf("  %s = %s", shown(k), shown(keys[k])))
	}
	return out
}

func hasUpper(s string) bool {
	for _, r := range s {
		if unicode.IsUpper(r) {
			return true
		}
	}
	return false
}

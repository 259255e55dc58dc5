package federate

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/ecrpush/ecrpush/internal/trustpolicy"
)

// DeniedError is STS refusing a token: AccessDenied (the trust policy did not admit it),
// InvalidIdentityToken, ExpiredTokenException, IDPRejectedClaim or RegionDisabledException. Its
// message is one line saying what to change; Details lists the condition keys AWS evaluated.
type DeniedError struct {
	Code      string // STS error code
	RoleARN   string
	Region    string // the STS region asked
	Claims    Claims // unverified, may be nil
	Message   string // STS's message
	TokenFile string // the web identity token file, when the token came from one
	Attempts  int    // STS calls made (fresh tokens each) before giving up
	Err       error
}

func (e *DeniedError) Unwrap() error { return e.Err }

// arnParts are the partition and account of the role ARN.
func (e *DeniedError) arnParts() (partition, account string) {
	parts := strings.SplitN(e.RoleARN, ":", 6)
	if len(parts) != 6 {
		return "aws", ""
	}
	return parts[1], parts[4]
}

// providerARN is the IAM OIDC provider the role must trust for this token.
func (e *DeniedError) providerARN() string {
	p := e.Claims.Provider()
	if p == GoogleProvider {
		return p
	}
	partition, account := e.arnParts()
	// The provider comes from the unverified iss: never let it break the line.
	return shown(trustpolicy.PrincipalARN(partition, account, p))
}

func (e *DeniedError) Error() string {
	keys := e.Claims.ConditionKeys()
	var kv []string
	for _, k := range sortedKeys(keys) {
		kv = append(kv, fmt.Sprintf("%s=%q", shown(k), keys[k]))
	}
	evaluated := strings.Join(kv, " ")
	msg := shown(strings.TrimSpace(e.Message))
	_, account := e.arnParts()
	switch e.Code {
	case "ExpiredTokenException":
		return fmt.Sprintf("STS refused an expired ID token for %s: the token was issued too long before use; check the runner's clock, or re-run so a fresh token is fetched", e.RoleARN)
	case "InvalidIdentityToken":
		return fmt.Sprintf("STS rejected the ID token for %s (%s): %s", e.RoleARN, msg, e.invalidHint())
	case "IDPRejectedClaim":
		return fmt.Sprintf("the identity provider rejected the token's claims for %s (%s): the token was expired or revoked by its issuer, or a claim is not accepted; re-run so a fresh token is fetched, and if it persists check %s",
			e.RoleARN, msg, e.providerARN())
	case "RegionDisabledException":
		region := e.Region
		if region == "" {
			region = "this region"
		}
		return fmt.Sprintf("STS is not activated in %s for account %s (of %s): an administrator activates it under IAM > Account settings > Security Token Service (STS) > Endpoints, or pass --region of an active region",
			region, account, e.RoleARN)
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
	partition, account := e.arnParts()
	switch {
	case strings.Contains(msg, "audience"):
		return fmt.Sprintf("add the audience %q to the client IDs of %s, or pass --audience with one it lists (usually %s)",
			e.Claims.String("aud"), e.providerARN(), trustpolicy.DefaultAudience(partition))
	case strings.Contains(msg, "no openidconnect provider"):
		// The role's account is the one searched: a role in another account than the provider's lands here.
		return fmt.Sprintf("create an IAM OIDC identity provider for %s in account %s, the role's (aws iam create-open-id-connect-provider --url %s --client-id-list %s), "+
			"or assume a role in the account that has it", issuer, account, issuer, trustpolicy.DefaultAudience(partition))
	case strings.Contains(msg, "not valid before"), strings.Contains(msg, "in the future"):
		// A token from the future is a clock problem, not a trust problem.
		return "by AWS's clock the token is not valid yet: check the clock of the machine that minted or stores it, then fetch a fresh token"
	case verificationKeyMessage(msg):
		if e.Attempts > 1 {
			return fmt.Sprintf("AWS could not fetch %s's verification keys in %d attempts with fresh tokens; it answers so intermittently (re-run the job) and for a token signed with a key the issuer does not publish; "+
				"check that %s's URL is %s and its keys are current", issuer, e.Attempts, e.providerARN(), issuer)
		}
		return fmt.Sprintf("AWS could not find the key that signed this token at %s: present the token exactly as issued (re-run if the issuer just rotated its keys), "+
			"and make sure %s's URL is %s and its keys are current", issuer, e.providerARN(), issuer)
	case strings.Contains(msg, "signature"), strings.Contains(msg, "algorithm"), strings.Contains(msg, "alg none"):
		// Forged, altered, or signed with a key or algorithm the issuer does not publish: the
		// provider's configuration is not what needs changing.
		return fmt.Sprintf("the token is not signed by %s's published RS256 keys (altered, forged, or re-signed): present the ID token exactly as the CI system issued it", issuer)
	case strings.Contains(msg, "claim"), strings.Contains(msg, "malformed"):
		return "the token lacks a claim AWS requires (exp, iss) or is malformed: present the ID token exactly as the CI system issued it"
	default:
		return fmt.Sprintf("make sure the IAM OIDC identity provider %s exists in the role's account and its keys are current", e.providerARN())
	}
}

// fix names the most likely cause first, from the token itself, then the provider the role must trust
// and the command that prints a policy admitting this job.
func (e *DeniedError) fix() string {
	c := e.Claims
	p := c.Provider()
	partition, account := e.arnParts()
	cmd := trustpolicy.Command(c, e.RoleARN, e.TokenFile)
	if p == GoogleProvider {
		return fmt.Sprintf("for Google tokens AWS compares %s:aud with the service account's unique id (azp %q) and %s:oaud with the audience (%q); run %s",
			p, c.String("azp"), p, c.String("aud"), cmd)
	}
	var hints []string
	if aud := c.String("aud"); aud != trustpolicy.DefaultAudience(partition) {
		hints = append(hints, fmt.Sprintf("the token's aud is %q, most trust policies require %s (--audience)", aud, trustpolicy.DefaultAudience(partition)))
	}
	sub := c.String("sub")
	s, defaultTemplate := parseSubject(sub)
	switch {
	case defaultTemplate && s.Environment != "":
		hints = append(hints, "the job uses a GitHub environment, so sub is repo:…:environment:NAME, not :ref:")
	case defaultTemplate && s.PullRequest:
		hints = append(hints, "pull_request runs have sub repo:…:pull_request, which branch conditions do not match")
	case c.IsGitHub() && !defaultTemplate:
		hints = append(hints, "sub comes from a custom subject template (include_claim_keys), not repo:OWNER/REPO:…")
	}
	if defaultTemplate && s.Repo.Immutable() {
		hints = append(hints, "sub is in the immutable form repo:OWNER@OWNER_ID/REPO@REPO_ID (new and renamed repositories), which name-only policies do not match")
	}
	if hasUpper(sub) {
		hints = append(hints, "sub matching is case-sensitive and this one has upper-case letters")
	}
	hints = append(hints, fmt.Sprintf("the role must exist in account %s and trust Federated %s", account, e.providerARN()))
	hints = append(hints, "run "+cmd+" to print a policy that admits this job")
	return strings.Join(hints, "; ")
}

// Details are the lines printed before the error: every public claim as the condition key AWS uses.
func (e *DeniedError) Details() []string {
	out := []string{"the ID token presented to STS (claims only; the token is never printed):"}
	for _, kv := range e.Claims.Public() {
		out = append(out, fmt.Sprintf("  %-20s %s", kv[0], kv[1]))
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

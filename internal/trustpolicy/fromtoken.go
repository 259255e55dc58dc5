package trustpolicy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ecrpush/ecrpush/internal/claims"
	"github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// riskyEvents are the events whose GitHub subject (with the default template) is that of a branch
// although they can act on untrusted pull requests or comments.
var riskyEvents = []string{"pull_request_target", "workflow_run", "issue_comment"}

// FromToken prints the narrowest trust policy that admits exactly the job a token describes: its
// provider (from iss: github.com, an enterprise issuer, GHES, or any other OIDC issuer), its
// audience and its exact subject, whatever template produced it. A Google token gets the service
// account statement.
func FromToken(c claims.Claims, account, partition string) (*Trust, error) {
	if partition == "" {
		partition = "aws"
	}
	if err := checkPartition(partition); err != nil {
		return nil, err
	}
	if !ecr.IsAccount(account) {
		return nil, fixable.New("--account %q must be the role's 12-digit AWS account id (or pass --role-arn)", account)
	}
	if c.IsGoogle() {
		id := c.String("azp")
		if id == "" {
			id = c.String("sub")
		}
		return Spec{Account: account, Partition: partition, GoogleServiceAccountID: id, Audience: c.String("aud")}.Trust()
	}
	sub, auds := c.String("sub"), c.Audiences()
	if sub == "" || len(auds) == 0 || c.String("iss") == "" {
		return nil, fixable.New("--from-token: the token lacks iss, aud or sub, so no trust policy can admit it: pass the ID token exactly as the CI system issued it")
	}
	if strings.ContainsFunc(sub, isControl) {
		return nil, fixable.New("--from-token: the token's sub %s holds control characters: no trust policy should admit it", claims.Shown(sub))
	}
	provider := c.Provider()
	principal := PrincipalARN(partition, account, provider)
	t := &Trust{Principal: principal, Provider: provider, Subjects: []string{sub},
		Document: Document{Statements: []Statement{{
			Principal: map[string]string{"Federated": principal},
			Actions:   []string{"sts:AssumeRoleWithWebIdentity"},
			Conditions: []Condition{
				{Operator: "StringEquals", Key: provider + ":aud", Values: []string{literal(auds[0])}},
				{Operator: "StringEquals", Key: provider + ":sub", Values: []string{literal(sub)}},
			},
		}}}}
	if len(auds) > 1 {
		t.Notes = append(t.Notes, fmt.Sprintf("the token has %d audiences; the policy requires the first, %s (AWS matches the one the IAM OIDC provider lists)", len(auds), auds[0]))
	}
	if !c.IsGitHub() {
		return t, nil
	}
	keys, immutable, ok := c.Template()
	switch {
	case !ok:
		t.Notes = append(t.Notes, "the subject is not one GitHub's templates build from this token's claims: the policy matches it exactly")
	case keys != nil:
		t.Notes = append(t.Notes, fmt.Sprintf("the subject comes from the custom template %s (include_claim_keys); the same policy with scope flags: --sub-template %s",
			strings.Join(keys, ","), strings.Join(keys, ",")))
	case immutable:
		t.Notes = append(t.Notes, "the subject is in the immutable form (owner and repository ids): it survives renames, and a recycled name cannot match it")
	}
	ev := c.String("event_name")
	if slices.Contains(riskyEvents, ev) && !strings.Contains(sub, "event_name:") {
		t.Notes = append(t.Notes, fmt.Sprintf("this token is from a %s run: its subject is also that of every push run on %s, so the policy admits both; "+
			"use a subject template with event_name to tell them apart", ev, c.String("ref")))
	}
	return t, nil
}

// Command is the ecrpush trust-policy command line that prints a policy admitting the token's job
// (roleARN's account and partition), for a denial to suggest. tokenFile is named when the flags
// cannot express the token's subject ("" leaves a placeholder).
func Command(c claims.Claims, roleARN, tokenFile string) string {
	tail := ""
	if roleARN != "" {
		tail += " --role-arn " + shellWord(roleARN)
	}
	tail += " --policy trust"
	if tokenFile == "" {
		tokenFile = "TOKEN_FILE"
	}
	fromToken := "ecrpush trust-policy --from-token " + shellWord(tokenFile) + tail
	if c.IsGoogle() {
		id := c.String("azp")
		if id == "" || !googleIDRe.MatchString(id) {
			return fromToken
		}
		return "ecrpush trust-policy --google-service-account-id " + id + " --audience " + shellWord(c.String("aud")) + tail
	}
	if !c.IsGitHub() {
		return fromToken
	}
	s, ok := claims.ParseSubject(c.String("sub"))
	if !ok {
		return fromToken
	}
	cmd := "ecrpush trust-policy --github-repo " + shellWord(s.Repo.String())
	switch {
	case s.Environment != "":
		cmd += " --environment " + shellWord(s.Environment)
	case s.PullRequest:
		cmd += " --pull-request"
	case s.Branch() != "":
		cmd += " --branch " + shellWord(s.Branch())
	case s.Tag() != "":
		cmd += " --tag " + shellWord(s.Tag())
	default:
		return fromToken
	}
	if p := c.Provider(); p != claims.GitHubProvider {
		cmd += " --github-issuer " + shellWord(c.String("iss"))
	}
	partition := "aws"
	if roleARN != "" {
		partition = PartitionOfARN(roleARN)
	}
	if aud := c.String("aud"); aud != DefaultAudience(partition) {
		cmd += " --audience " + shellWord(aud)
	}
	return cmd + tail
}

// shellWord quotes a value for a POSIX shell when it needs it; control characters are shown quoted
// so an unverified claim can never break the line.
func shellWord(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r))
	}) < 0 {
		return s
	}
	if strings.ContainsFunc(s, isControl) {
		return claims.Shown(s)
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

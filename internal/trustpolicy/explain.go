package trustpolicy

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/ecrpush/ecrpush/internal/claims"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/iam"
)

const actionWebIdentity = "sts:AssumeRoleWithWebIdentity"

// ReadPolicy takes a trust policy as a user has it: the policy document itself, the output of
// aws iam get-role (Role.AssumeRolePolicyDocument, an object or — from the raw API — URL-encoded
// JSON), or an object holding AssumeRolePolicyDocument. It returns the document and the role ARN
// when the input names one.
func ReadPolicy(b []byte) (doc []byte, roleARN string, err error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, "", fixable.New("--policy-file is not JSON (%v): give the trust policy document, or the output of aws iam get-role --role-name NAME", err)
	}
	if raw, ok := top["Role"]; ok {
		var role map[string]json.RawMessage
		if err := json.Unmarshal(raw, &role); err == nil {
			top = role
			_ = json.Unmarshal(role["Arn"], &roleARN)
		}
	}
	raw, ok := top["AssumeRolePolicyDocument"]
	if !ok {
		return b, roleARN, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		// The IAM API returns the document URL-encoded; the AWS CLI decodes it.
		if d, err := url.QueryUnescape(s); err == nil {
			s = d
		}
		return []byte(s), roleARN, nil
	}
	return raw, roleARN, nil
}

// Report is a token evaluated against a trust policy, statement by statement.
type Report struct {
	Provider   string            // the token's IAM OIDC provider
	Principal  string            // the Federated principal STS evaluates the token as
	Context    map[string]string // the condition keys STS fills from the token
	Statements []StatementReport
	Admitted   bool
	Fix        string // the change that would admit the token ("" when admitted)
}

// StatementReport is one statement's verdict and its lines.
type StatementReport struct {
	Trace iam.StatementTrace
	Lines []string
}

// Explain evaluates a token against a trust policy the way STS does: the token's provider (from its
// iss) as the Federated principal in the role's account, the condition keys STS fills from its claims,
// with internal/iam. account is the role's account ("": taken from the policy's Federated principal
// of the token's provider, when there is one).
func Explain(doc []byte, c claims.Claims, roleARN, account, partition string) (*Report, error) {
	p, err := iam.ParseTrust(doc)
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("the trust policy is not one IAM accepts: %v", err))
	}
	if roleARN != "" {
		if parts := strings.SplitN(roleARN, ":", 6); len(parts) == 6 {
			partition, account = parts[1], parts[4]
		}
	}
	if partition == "" {
		partition = "aws"
	}
	provider := c.Provider()
	principal := provider
	if provider != claims.GoogleProvider {
		if account == "" {
			account = federatedAccount(p, provider)
		}
		acct := account
		if acct == "" {
			acct = "ACCOUNT"
		}
		principal = PrincipalARN(partition, acct, provider)
	}
	keys := c.ConditionKeys()
	ctx := map[string][]string{"aws:FederatedProvider": {principal}}
	for k, v := range keys {
		ctx[k] = []string{v}
	}
	if provider == claims.GoogleProvider {
		// :oaud is the token's audience list, as STS sees it.
		ctx[provider+":oaud"] = c.Audiences()
	}
	resource := roleARN
	if resource == "" {
		resource = "*"
	}
	req := iam.Request{Principal: &iam.Principal{Type: "Federated", ID: principal, Account: account}, Action: actionWebIdentity, Resource: resource, Context: ctx}
	r := &Report{Provider: provider, Principal: principal, Context: keys, Admitted: p.Evaluate(req) == iam.Allow}
	traces := p.Trace(req)
	for i, t := range traces {
		r.Statements = append(r.Statements, StatementReport{Trace: t, Lines: statementLines(p.Statement[i], t, principal)})
	}
	if !r.Admitted {
		r.Fix = fix(p, traces, principal, keys)
	}
	return r, nil
}

// federatedAccount is the account of the policy's first Federated principal for provider.
func federatedAccount(p *iam.Policy, provider string) string {
	for _, s := range p.Statement {
		for _, v := range s.Principal["Federated"] {
			if parts := strings.SplitN(v, ":", 6); len(parts) == 6 && parts[5] == "oidc-provider/"+provider {
				return parts[4]
			}
		}
	}
	return ""
}

func mark(ok bool) string {
	if ok {
		return "MATCH"
	}
	return "MISS "
}

func statementLines(s iam.Statement, t iam.StatementTrace, principal string) []string {
	var out []string
	var want []string
	for typ, vals := range s.Principal {
		for _, v := range vals {
			want = append(want, typ+" "+v)
		}
	}
	slices.Sort(want)
	if s.Principal == nil {
		want = append(want, "(none)")
	}
	out = append(out, fmt.Sprintf("%s principal %s (token: Federated %s)", mark(t.Principal), strings.Join(want, ", "), principal))
	act := s.Action
	if act == nil {
		act = []string{"NotAction " + strings.Join(s.NotAction, ",")}
	}
	out = append(out, fmt.Sprintf("%s action %s (request: %s)", mark(t.Action), strings.Join(act, ","), actionWebIdentity))
	for _, c := range t.Conditions {
		actual := "absent"
		if c.Present {
			q := make([]string, len(c.Context))
			for i, v := range c.Context {
				q[i] = fmt.Sprintf("%q", v)
			}
			actual = strings.Join(q, ",")
		}
		out = append(out, fmt.Sprintf("%s %s %s %s (token: %s)", mark(c.Holds), c.Operator, c.Key, quoteJSON(c.Values), actual))
	}
	return out
}

func quoteJSON(v []string) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// fix names the change that admits the token: for a Deny that applies, that statement; otherwise
// the misses of the Allow statement that misses least.
func fix(p *iam.Policy, traces []iam.StatementTrace, principal string, keys map[string]string) string {
	for _, t := range traces {
		if t.Applies && t.Effect == "Deny" {
			return fmt.Sprintf("statement %d%s denies this token explicitly: narrow or remove it", t.Index+1, sid(t))
		}
	}
	best := -1
	for i, t := range traces {
		if t.Effect != "Allow" {
			continue
		}
		if best < 0 || t.Misses() < traces[best].Misses() {
			best = i
		}
	}
	if best < 0 {
		return fmt.Sprintf(`the policy has no Allow statement: add one allowing %s for Federated %s`, actionWebIdentity, principal)
	}
	t := traces[best]
	var changes []string
	if !t.Principal {
		changes = append(changes, fmt.Sprintf(`trust "Federated": %q (and create that IAM OIDC provider in the role's account if it does not exist)`, principal))
	}
	if !t.Action {
		changes = append(changes, fmt.Sprintf("allow %s", actionWebIdentity))
	}
	for _, c := range t.Conditions {
		if c.Holds {
			continue
		}
		changes = append(changes, conditionFix(c, keys))
	}
	n := len(changes)
	what := "the one change that admits it"
	if n > 1 {
		what = fmt.Sprintf("the %d changes that admit it", n)
	}
	return fmt.Sprintf("%s, in statement %d%s: %s", what, t.Index+1, sid(t), strings.Join(changes, "; "))
}

func sid(t iam.StatementTrace) string {
	if t.Sid == "" {
		return ""
	}
	return " (" + t.Sid + ")"
}

func conditionFix(c iam.ConditionTrace, keys map[string]string) string {
	if !c.Present {
		var have []string
		suffix := strings.ToLower(c.Key[max(strings.LastIndex(c.Key, ":"), 0):])
		for _, k := range claims.SortedKeys(keys) {
			if strings.HasSuffix(strings.ToLower(k), suffix) {
				have = append(have, fmt.Sprintf("%s=%q", k, keys[k]))
			}
		}
		if len(have) > 0 {
			return fmt.Sprintf("%s %s is not a key of this token (AWS evaluates it as %s): name the token's provider in the key", c.Operator, c.Key, strings.Join(have, ", "))
		}
		return fmt.Sprintf("%s %s is not a key of this token: remove the condition", c.Operator, c.Key)
	}
	v := c.Context[0]
	if strings.Contains(c.Operator, "Not") {
		return fmt.Sprintf("%s %s excludes %q: remove that value", c.Operator, c.Key, v)
	}
	return fmt.Sprintf("add %q to %s %s", literal(v), c.Operator, c.Key)
}

// Lines renders the report: the condition keys, then each statement's verdict and lines.
func (r *Report) Lines() []string {
	out := []string{"condition keys STS evaluates for this token:", "  aws:FederatedProvider = " + r.Principal}
	for _, k := range claims.SortedKeys(r.Context) {
		out = append(out, fmt.Sprintf("  %s = %s", claims.Shown(k), claims.Shown(r.Context[k])))
	}
	for _, s := range r.Statements {
		verdict := "does not apply"
		if s.Trace.Applies {
			verdict = "APPLIES"
		}
		out = append(out, fmt.Sprintf("statement %d%s (%s): %s", s.Trace.Index+1, sid(s.Trace), s.Trace.Effect, verdict))
		for _, l := range s.Lines {
			out = append(out, "  "+claims.Shown(l))
		}
	}
	return out
}

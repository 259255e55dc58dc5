package iam

import "errors"

// Policy is a parsed IAM policy document (identity, trust or resource policy).
type Policy struct {
	Version   string
	Statement []Statement
}

// Statement is one statement of a policy. Single-string and array forms of
// Action, Resource and principal lists are normalised to slices by Parse.
type Statement struct {
	Sid          string
	Effect       string              // "Allow" | "Deny"
	Principal    map[string][]string // "AWS" | "Federated" | "Service" | "*" → values
	NotPrincipal map[string][]string
	Action       []string
	NotAction    []string
	Resource     []string
	NotResource  []string
	Condition    map[string]map[string][]string // operator → key → values
}

// Principal is who is asking. For AWS principals ID is the role (or user) ARN and
// Account the 12-digit account; for web identity Type is "Federated" and ID the
// provider name (e.g. "token.actions.githubusercontent.com" or an oidc-provider ARN).
type Principal struct {
	Type    string
	ID      string
	Account string
}

// Request is what a policy is evaluated against.
type Request struct {
	Principal *Principal          // nil when evaluating an identity policy
	Action    string              // "sts:AssumeRoleWithWebIdentity", "ecr:PutImage"
	Resource  string              // ARN, "*" when the action has no resource
	Context   map[string][]string // condition keys (case-insensitive names) → values
}

// Decision is the outcome of evaluating one or more policies.
type Decision int

const (
	ImplicitDeny Decision = iota
	Allow
	ExplicitDeny
)

// String names the decision as AWS's policy simulator does.
func (d Decision) String() string {
	switch d {
	case Allow:
		return "allowed"
	case ExplicitDeny:
		return "explicitDeny"
	default:
		return "implicitDeny"
	}
}

// ErrMalformed is returned (wrapped) by Parse for a document AWS would reject.
var ErrMalformed = errors.New("malformed policy document")

// Parse parses an IAM policy JSON document. It accepts every kind of policy; use
// ParseIdentity, ParseResource or ParseTrust to also apply the kind-specific rules.
func Parse(doc []byte) (*Policy, error) { return parse(doc) }

// Evaluate evaluates p against r: ExplicitDeny if a matching statement denies,
// Allow if one allows, ImplicitDeny otherwise. A nil policy denies implicitly.
func (p *Policy) Evaluate(r Request) Decision {
	if p == nil {
		return ImplicitDeny
	}
	return p.evaluate(newEvalContext(r))
}

// Allowed reports whether the policies together allow r: at least one Allow and no explicit Deny.
func Allowed(r Request, policies ...*Policy) bool { return Decide(r, policies...) == Allow }

// Decide combines the decisions of several policies: any explicit Deny wins, then any Allow.
// Nil policies are skipped.
func Decide(r Request, policies ...*Policy) Decision {
	ec := newEvalContext(r)
	out := ImplicitDeny
	for _, p := range policies {
		if p == nil {
			continue
		}
		switch p.evaluate(ec) {
		case ExplicitDeny:
			return ExplicitDeny
		case Allow:
			out = Allow
		}
	}
	return out
}

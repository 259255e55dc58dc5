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

// ErrMalformed is returned (wrapped) by Parse for a document AWS would reject.
var ErrMalformed = errors.New("malformed policy document")

// Parse parses an IAM policy JSON document.
func Parse(doc []byte) (*Policy, error) { panic("TODO") }

// Evaluate evaluates p against r.
func (p *Policy) Evaluate(r Request) Decision { panic("TODO") }

// Allowed reports whether the policies together allow r: at least one Allow and no explicit Deny.
func Allowed(r Request, policies ...*Policy) bool { panic("TODO") }

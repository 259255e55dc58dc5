package iam

import (
	"strings"
)

// evalContext is a Request prepared for evaluation: condition keys folded to lower case
// once, so that key names match case-insensitively.
type evalContext struct {
	r    Request
	keys map[string][]string // lower-case key → values
	vars bool                // policy variables are substituted (Version 2012-10-17)
}

func newEvalContext(r Request) *evalContext {
	ec := &evalContext{r: r, keys: make(map[string][]string, len(r.Context))}
	for k, v := range r.Context {
		lk := strings.ToLower(k)
		ec.keys[lk] = append(ec.keys[lk], v...)
	}
	return ec
}

// value returns the context values of a condition key and whether the key is present;
// a key with no values counts as absent, as an empty multi-valued key does in AWS.
func (ec *evalContext) value(key string) ([]string, bool) {
	v := ec.keys[strings.ToLower(key)]
	return v, len(v) > 0
}

// variable resolves the inside of ${...}: the escapes ${*} ${?} ${$}, a context key, or a
// key with a default (${aws:username, 'nobody'}).
func (ec *evalContext) variable(inner string) (string, bool) {
	switch inner {
	case "*", "?", "$":
		return inner, true
	}
	key, def, hasDef := strings.Cut(inner, ",")
	key = strings.TrimSpace(key)
	if hasDef {
		def = strings.TrimSpace(def)
		if len(def) < 2 || def[0] != '\'' || def[len(def)-1] != '\'' {
			return "", false
		}
		def = def[1 : len(def)-1]
	}
	if v, ok := ec.value(key); ok && len(v) == 1 {
		return v[0], true
	}
	return def, hasDef
}

func (p *Policy) evaluate(ec *evalContext) Decision {
	pc := *ec
	pc.vars = p.Version == Version2012
	out := ImplicitDeny
	for i := range p.Statement {
		s := &p.Statement[i]
		if !s.applies(&pc) {
			continue
		}
		if s.Effect == "Deny" {
			return ExplicitDeny
		}
		if s.Effect == "Allow" {
			out = Allow
		}
	}
	return out
}

// applies reports whether every element of the statement matches the request.
func (s *Statement) applies(ec *evalContext) bool {
	return s.principalMatches(ec.r.Principal) &&
		s.actionMatches(ec.r.Action) &&
		s.resourceMatches(ec) &&
		conditionsHold(s.Condition, ec)
}

func (s *Statement) principalMatches(p *Principal) bool {
	hasP, hasNot := s.Principal != nil, s.NotPrincipal != nil
	if p == nil {
		// Identity-policy evaluation: statements that name a principal belong to
		// resource or trust policies and do not apply.
		return !hasP && !hasNot
	}
	switch {
	case hasP:
		return principalIn(s.Principal, p)
	case hasNot:
		return !principalIn(s.NotPrincipal, p)
	default:
		// An identity policy evaluated for a known caller applies to that caller.
		return true
	}
}

func principalIn(set map[string][]string, p *Principal) bool {
	if _, ok := set["*"]; ok {
		return true
	}
	for typ, vals := range set {
		for _, v := range vals {
			if typ == "AWS" && v == "*" {
				return true // {"AWS": "*"} is documented as equivalent to "*"
			}
			if typ != p.Type {
				continue
			}
			if typ == "AWS" && awsPrincipalMatches(v, p) || typ != "AWS" && v == p.ID {
				return true
			}
		}
	}
	return false
}

// awsPrincipalMatches: an account id or the account's root ARN stands for every principal
// of that account; otherwise the role/user ARN must be equal. A caller identified by its
// assumed-role session ARN also matches its role's ARN.
func awsPrincipalMatches(v string, p *Principal) bool {
	if isAccountID(v) {
		return p.Account != "" && v == p.Account
	}
	if acct, ok := strings.CutSuffix(v, ":root"); ok {
		parts := strings.Split(acct, ":")
		return len(parts) == 5 && p.Account != "" && parts[4] == p.Account
	}
	if v == p.ID {
		return true
	}
	// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION → arn:aws:iam::ACCOUNT:role/ROLE
	parts := strings.SplitN(p.ID, ":", 6)
	if len(parts) == 6 && parts[2] == "sts" && strings.HasPrefix(parts[5], "assumed-role/") {
		role := strings.SplitN(strings.TrimPrefix(parts[5], "assumed-role/"), "/", 2)[0]
		return v == "arn:"+parts[1]+":iam::"+parts[4]+":role/"+role
	}
	return false
}

func (s *Statement) actionMatches(action string) bool {
	if s.Action != nil {
		for _, a := range s.Action {
			if actionMatches(a, action) {
				return true
			}
		}
		return false
	}
	for _, a := range s.NotAction {
		if actionMatches(a, action) {
			return false
		}
	}
	return true
}

func (s *Statement) resourceMatches(ec *evalContext) bool {
	switch {
	case s.Resource != nil:
		for _, res := range s.Resource {
			if arnLike(res, ec.r.Resource, ec) {
				return true
			}
		}
		return false
	case s.NotResource != nil:
		for _, res := range s.NotResource {
			if arnLike(res, ec.r.Resource, ec) {
				return false
			}
		}
		return true
	default:
		// Resource-based and trust policies omit Resource: they apply to the resource
		// they are attached to.
		return true
	}
}

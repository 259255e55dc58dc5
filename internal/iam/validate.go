package iam

import (
	"fmt"
	"strings"
)

// validAction accepts "*" and "vendor:Action" where the action part may hold * and ? wildcards.
func validAction(a string) bool {
	if a == "*" {
		return true
	}
	vendor, name, ok := strings.Cut(a, ":")
	if !ok || vendor == "" || name == "" {
		return false
	}
	for _, c := range vendor {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '*' || c == '?' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

var partitions = map[string]bool{"aws": true, "aws-cn": true, "aws-us-gov": true}

// validatePrincipal applies IAM's rules for principal values: no wildcards except the whole
// value "*" for AWS, account ids or well-formed IAM/STS ARNs for AWS, non-empty names for
// the other types.
func validatePrincipal(typ, val string) error {
	if val == "" {
		return fmt.Errorf("empty principal")
	}
	switch typ {
	case "AWS":
		if val == "*" || isAccountID(val) {
			return nil
		}
		if strings.ContainsAny(val, "*?") {
			return fmt.Errorf("wildcards are not allowed in principal ARNs")
		}
		parts := strings.SplitN(val, ":", 6)
		if len(parts) != 6 || parts[0] != "arn" || !partitions[parts[1]] || parts[3] != "" || !isAccountID(parts[4]) {
			return fmt.Errorf("not an account id or IAM ARN")
		}
		res := parts[5]
		switch parts[2] {
		case "iam":
			if res == "root" || strings.HasPrefix(res, "role/") || strings.HasPrefix(res, "user/") {
				if res == "root" || !strings.HasSuffix(res, "/") {
					return nil
				}
			}
		case "sts":
			if strings.HasPrefix(res, "assumed-role/") && strings.Count(res, "/") == 2 && !strings.HasSuffix(res, "/") ||
				strings.HasPrefix(res, "federated-user/") && len(res) > len("federated-user/") {
				return nil
			}
		}
		return fmt.Errorf("not an account id or IAM ARN")
	case "Federated", "Service", "CanonicalUser":
		if strings.ContainsAny(val, "*?") {
			return fmt.Errorf("wildcards are not allowed in %s principals", typ)
		}
		return nil
	default:
		return fmt.Errorf("unknown principal type %q", typ)
	}
}

// ParseIdentity parses an identity (user or role) policy: no statement may name a
// principal and every statement needs Resource or NotResource.
func ParseIdentity(doc []byte) (*Policy, error) {
	p, err := Parse(doc)
	if err != nil {
		return nil, err
	}
	for i, s := range p.Statement {
		if s.Principal != nil || s.NotPrincipal != nil {
			return nil, malformed("statement %d: policy document should not specify a principal", i)
		}
		if s.Resource == nil && s.NotResource == nil {
			return nil, malformed("statement %d: missing required field Resource", i)
		}
	}
	return p, nil
}

// ParseResource parses a resource-based policy (ECR repository or registry policy):
// every statement must name a Principal or NotPrincipal.
func ParseResource(doc []byte) (*Policy, error) {
	p, err := Parse(doc)
	if err != nil {
		return nil, err
	}
	for i, s := range p.Statement {
		if s.Principal == nil && s.NotPrincipal == nil {
			return nil, malformed("statement %d: missing required field Principal", i)
		}
	}
	return p, nil
}

// trustActions are the only actions IAM accepts in a role trust policy.
var trustActions = []string{
	"sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML",
	"sts:TagSession", "sts:SetSourceIdentity", "sts:SetContext",
}

// ParseTrust parses a role trust policy: a Principal in every statement, no
// Resource/NotResource, and only sts:AssumeRole* / session actions.
func ParseTrust(doc []byte) (*Policy, error) {
	p, err := ParseResource(doc)
	if err != nil {
		return nil, err
	}
	for i, s := range p.Statement {
		if s.Resource != nil || s.NotResource != nil {
			return nil, malformed("statement %d: has prohibited field Resource", i)
		}
		for _, a := range append(append([]string(nil), s.Action...), s.NotAction...) {
			ok := false
			for _, t := range trustActions {
				if actionMatches(a, t) {
					ok = true
					break
				}
			}
			if !ok {
				return nil, malformed("statement %d: AssumeRole policy contained an invalid action %q", i, a)
			}
		}
	}
	return p, nil
}

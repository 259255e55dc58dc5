package iam

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Versions IAM accepts; a missing Version means 2008-10-17 (no policy variables).
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// maxDocument bounds the work Parse does; IAM's largest policies (managed policies,
// resource policies) are well under this.
const maxDocument = 128 << 10

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func parse(doc []byte) (*Policy, error) {
	if len(doc) > maxDocument {
		return nil, malformed("document is %d bytes, larger than %d", len(doc), maxDocument)
	}
	top, err := decodeObject(doc)
	if err != nil {
		return nil, malformed("syntax error: %v", err)
	}
	p := &Policy{}
	for k, raw := range top {
		switch k {
		case "Version":
			if err := json.Unmarshal(raw, &p.Version); err != nil {
				return nil, malformed("Version must be a string")
			}
			if p.Version != Version2012 && p.Version != Version2008 {
				return nil, malformed("the policy must contain a valid version string, not %q", p.Version)
			}
		case "Id":
			var id string
			if err := json.Unmarshal(raw, &id); err != nil {
				return nil, malformed("Id must be a string")
			}
		case "Statement":
		default:
			// IAM element names are case-sensitive and unknown ones are syntax errors.
			return nil, malformed("unknown policy element %q", k)
		}
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, malformed("missing required field Statement")
	}
	stmts, err := objectOrArray(raw)
	if err != nil {
		return nil, malformed("Statement: %v", err)
	}
	if len(stmts) == 0 {
		return nil, malformed("Statement must not be empty")
	}
	sids := map[string]bool{}
	for i, rs := range stmts {
		s, err := parseStatement(rs)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %w", i, err)
		}
		if s.Sid != "" {
			if sids[s.Sid] {
				return nil, malformed("statement IDs (SID) in a single policy must be unique: %q", s.Sid)
			}
			sids[s.Sid] = true
		}
		p.Statement = append(p.Statement, s)
	}
	return p, nil
}

func decodeObject(raw []byte) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("expected a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// objectOrArray accepts a single object or an array of objects.
func objectOrArray(raw json.RawMessage) ([]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		return []json.RawMessage{raw}, nil
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(raw, &arr); err != nil {
		return nil, fmt.Errorf("expected an object or an array of objects")
	}
	for _, a := range arr {
		if a = bytes.TrimSpace(a); len(a) == 0 || a[0] != '{' {
			return nil, fmt.Errorf("expected an object or an array of objects")
		}
	}
	return arr, nil
}

// stringOrList accepts "x" or ["x", "y"]: the shape of Action, Resource and principal values.
func stringOrList(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		return nil, fmt.Errorf("expected a string or an array of strings")
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("must not be an empty array")
	}
	return list, nil
}

func parseStatement(raw json.RawMessage) (Statement, error) {
	var s Statement
	m, err := decodeObject(raw)
	if err != nil {
		return s, malformed("syntax error: %v", err)
	}
	for k, v := range m {
		var err error
		switch k {
		case "Sid":
			if json.Unmarshal(v, &s.Sid) != nil {
				err = malformed("Sid must be a string")
			}
		case "Effect":
			if json.Unmarshal(v, &s.Effect) != nil {
				err = malformed("Effect must be a string")
			} else if s.Effect != "Allow" && s.Effect != "Deny" {
				err = malformed("invalid effect %q: must be Allow or Deny", s.Effect)
			}
		case "Principal":
			s.Principal, err = parsePrincipal(k, v)
		case "NotPrincipal":
			s.NotPrincipal, err = parsePrincipal(k, v)
		case "Action":
			s.Action, err = parseActions(k, v)
		case "NotAction":
			s.NotAction, err = parseActions(k, v)
		case "Resource":
			s.Resource, err = parseResources(k, v)
		case "NotResource":
			s.NotResource, err = parseResources(k, v)
		case "Condition":
			s.Condition, err = parseCondition(v)
		default:
			err = malformed("unknown statement element %q", k)
		}
		if err != nil {
			return s, err
		}
	}
	switch {
	case s.Effect == "":
		return s, malformed("missing required field Effect")
	case s.Action == nil && s.NotAction == nil:
		return s, malformed("missing required field Action")
	case s.Action != nil && s.NotAction != nil:
		return s, malformed("a statement cannot have both Action and NotAction")
	case s.Resource != nil && s.NotResource != nil:
		return s, malformed("a statement cannot have both Resource and NotResource")
	case s.Principal != nil && s.NotPrincipal != nil:
		return s, malformed("a statement cannot have both Principal and NotPrincipal")
	}
	return s, nil
}

func parsePrincipal(elem string, raw json.RawMessage) (map[string][]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || s != "*" {
			return nil, malformed("invalid %s %s: a string principal must be \"*\"", elem, raw)
		}
		return map[string][]string{"*": {"*"}}, nil
	}
	m, err := decodeObject(raw)
	if err != nil {
		return nil, malformed("%s: %v", elem, err)
	}
	if len(m) == 0 {
		return nil, malformed("%s must not be empty", elem)
	}
	out := map[string][]string{}
	for typ, v := range m {
		vals, err := stringOrList(v)
		if err != nil {
			return nil, malformed("%s.%s: %v", elem, typ, err)
		}
		for _, val := range vals {
			if err := validatePrincipal(typ, val); err != nil {
				return nil, malformed("invalid principal in policy: %s.%s %q: %v", elem, typ, val, err)
			}
		}
		out[typ] = vals
	}
	return out, nil
}

func parseActions(elem string, raw json.RawMessage) ([]string, error) {
	vals, err := stringOrList(raw)
	if err != nil {
		return nil, malformed("%s: %v", elem, err)
	}
	for _, a := range vals {
		if !validAction(a) {
			return nil, malformed("%s %q: actions must be \"*\" or prefaced by a vendor, e.g. \"ecr:PutImage\"", elem, a)
		}
	}
	return vals, nil
}

func parseResources(elem string, raw json.RawMessage) ([]string, error) {
	vals, err := stringOrList(raw)
	if err != nil {
		return nil, malformed("%s: %v", elem, err)
	}
	for _, r := range vals {
		if r != "*" && !(strings.HasPrefix(r, "arn:") && strings.Count(r, ":") >= 5) {
			return nil, malformed("%s %q must be in ARN format or \"*\"", elem, r)
		}
	}
	return vals, nil
}

func parseCondition(raw json.RawMessage) (map[string]map[string][]string, error) {
	ops, err := decodeObject(raw)
	if err != nil {
		return nil, malformed("Condition: %v", err)
	}
	out := make(map[string]map[string][]string, len(ops))
	for name, rawKeys := range ops {
		if _, err := parseOperator(name); err != nil {
			return nil, err
		}
		keys, err := decodeObject(rawKeys)
		if err != nil {
			return nil, malformed("Condition %s: %v", name, err)
		}
		if len(keys) == 0 {
			return nil, malformed("Condition %s must have at least one key", name)
		}
		km := make(map[string][]string, len(keys))
		for key, rawVals := range keys {
			if i := strings.Index(key, ":"); i <= 0 || i == len(key)-1 {
				return nil, malformed("condition key %q must be prefaced by a vendor, e.g. \"aws:SourceIp\"", key)
			}
			vals, err := conditionValues(rawVals)
			if err != nil {
				return nil, malformed("Condition %s %s: %v", name, key, err)
			}
			km[key] = vals
		}
		out[name] = km
	}
	return out, nil
}

// conditionValues accepts a scalar or an array of scalars (string, number, bool) and keeps
// numbers in their JSON spelling so that "NumericEquals": 10 and "10" read alike.
func conditionValues(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	var items []json.RawMessage
	if len(raw) > 0 && raw[0] == '[' {
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return nil, fmt.Errorf("must not be an empty array")
		}
	} else {
		items = []json.RawMessage{raw}
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		it = bytes.TrimSpace(it)
		if len(it) == 0 {
			return nil, fmt.Errorf("empty value")
		}
		switch c := it[0]; {
		case c == '"':
			var s string
			if err := json.Unmarshal(it, &s); err != nil {
				return nil, err
			}
			out = append(out, s)
		case c == 't' || c == 'f':
			var b bool
			if err := json.Unmarshal(it, &b); err != nil {
				return nil, err
			}
			out = append(out, fmt.Sprint(b))
		case c == '-' || (c >= '0' && c <= '9'):
			var n json.Number
			if err := json.Unmarshal(it, &n); err != nil {
				return nil, err
			}
			out = append(out, n.String())
		default:
			return nil, fmt.Errorf("values must be strings, numbers or booleans, not %s", it)
		}
	}
	return out, nil
}

package iam

import (
	"sort"
)

// StatementTrace is how one statement met a request: each element (principal, action,
// resource, every condition key) with whether it matched. Applies is what Evaluate used.
type StatementTrace struct {
	Index      int // position in the policy, from 0
	Sid        string
	Effect     string
	Principal  bool // the principal element (or its absence) admits the request's principal
	Action     bool
	Resource   bool
	Conditions []ConditionTrace
	Applies    bool
}

// ConditionTrace is one key of one condition operator evaluated against the request.
type ConditionTrace struct {
	Operator string
	Key      string
	Values   []string // the policy's values (ORed)
	Context  []string // the request's values for Key (nil when absent)
	Present  bool
	Holds    bool
}

// Misses counts the elements of the statement that did not match.
func (t StatementTrace) Misses() int {
	n := 0
	for _, ok := range []bool{t.Principal, t.Action, t.Resource} {
		if !ok {
			n++
		}
	}
	for _, c := range t.Conditions {
		if !c.Holds {
			n++
		}
	}
	return n
}

// Trace evaluates every statement of p against r element by element, with the same rules
// as Evaluate, so a caller can say which element refused a request. Conditions are listed
// in a stable order (operator, then key).
func (p *Policy) Trace(r Request) []StatementTrace {
	if p == nil {
		return nil
	}
	ec := newEvalContext(r)
	ec.vars = p.Version == Version2012
	out := make([]StatementTrace, 0, len(p.Statement))
	for i := range p.Statement {
		s := &p.Statement[i]
		t := StatementTrace{Index: i, Sid: s.Sid, Effect: s.Effect,
			Principal: s.principalMatches(r.Principal), Action: s.actionMatches(r.Action), Resource: s.resourceMatches(ec)}
		ops := make([]string, 0, len(s.Condition))
		for name := range s.Condition {
			ops = append(ops, name)
		}
		sort.Strings(ops)
		for _, name := range ops {
			keys := make([]string, 0, len(s.Condition[name]))
			for k := range s.Condition[name] {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			op, err := parseOperator(name)
			for _, k := range keys {
				vals := s.Condition[name][k]
				ctx, present := ec.value(k)
				holds := err == nil && op.holds(k, vals, ec)
				t.Conditions = append(t.Conditions, ConditionTrace{Operator: name, Key: k, Values: vals, Context: ctx, Present: present, Holds: holds})
			}
		}
		t.Applies = t.Misses() == 0
		out = append(out, t)
	}
	return out
}

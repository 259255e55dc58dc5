package trustpolicy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Document is an IAM policy document in the few shapes this package prints.
type Document struct {
	Statements []Statement
}

// Statement is one statement. Principal is nil for identity policies.
type Statement struct {
	Sid        string
	Effect     string // default Allow
	Principal  map[string]string
	Actions    []string
	Resources  []string
	Conditions []Condition
}

// Condition is one key of one condition operator; Values are ORed.
type Condition struct {
	Operator string
	Key      string
	Values   []string
}

// JSON renders the document as IAM reads it, indented.
func (d Document) JSON() []byte {
	stmts := make([]any, 0, len(d.Statements))
	for _, s := range d.Statements {
		m := map[string]any{"Effect": orDefault(s.Effect, "Allow")}
		if s.Sid != "" {
			m["Sid"] = s.Sid
		}
		if s.Principal != nil {
			m["Principal"] = s.Principal
		}
		m["Action"] = one(s.Actions)
		if len(s.Resources) > 0 {
			m["Resource"] = one(s.Resources)
		}
		if len(s.Conditions) > 0 {
			cond := map[string]map[string]any{}
			for _, c := range s.Conditions {
				if cond[c.Operator] == nil {
					cond[c.Operator] = map[string]any{}
				}
				cond[c.Operator][c.Key] = one(c.Values)
			}
			m["Condition"] = cond
		}
		stmts = append(stmts, m)
	}
	b, _ := json.MarshalIndent(map[string]any{"Version": "2012-10-17", "Statement": stmts}, "", "  ")
	return b
}

// Terraform renders the document as an aws_iam_policy_document data source named name.
func (d Document) Terraform(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "data \"aws_iam_policy_document\" %q {\n", name)
	for i, s := range d.Statements {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("  statement {\n")
		if s.Sid != "" {
			fmt.Fprintf(&b, "    sid     = %q\n", s.Sid)
		}
		fmt.Fprintf(&b, "    effect  = %q\n", orDefault(s.Effect, "Allow"))
		fmt.Fprintf(&b, "    actions = [%s]\n", quoteList(s.Actions))
		if len(s.Resources) > 0 {
			fmt.Fprintf(&b, "    resources = [%s]\n", quoteList(s.Resources))
		}
		types := make([]string, 0, len(s.Principal))
		for t := range s.Principal {
			types = append(types, t)
		}
		sort.Strings(types)
		for _, t := range types {
			fmt.Fprintf(&b, "\n    principals {\n      type        = %q\n      identifiers = [%q]\n    }\n", t, s.Principal[t])
		}
		for _, c := range s.Conditions {
			fmt.Fprintf(&b, "\n    condition {\n      test     = %q\n      variable = %q\n      values   = [%s]\n    }\n", c.Operator, c.Key, quoteList(c.Values))
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func one(v []string) any {
	if len(v) == 1 {
		return v[0]
	}
	return v
}

func quoteList(v []string) string {
	q := make([]string, len(v))
	for i, s := range v {
		// Terraform interpolates ${...} and %{...} inside strings: a literal one is written $${ / %%{.
		s = strings.ReplaceAll(strings.ReplaceAll(s, "${", "$${"), "%{", "%%{")
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

package replicate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// ReplicationActions are what a destination registry policy must allow the source account's root.
var ReplicationActions = []string{"ecr:ReplicateImage", "ecr:CreateRepository"}

// StatementSid names the statement ecrpush adds to a destination registry policy.
func StatementSid(ciAccount string) string { return "EcrpushReplicationFrom" + ciAccount }

func repoResource(d Destination) string {
	return fmt.Sprintf("arn:%s:ecr:%s:%s:repository/*", ecrx.PartitionOf(d.Region), d.Region, d.Account)
}

func principal(ciAccount, region string) string {
	return fmt.Sprintf("arn:%s:iam::%s:root", ecrx.PartitionOf(region), ciAccount)
}

type statement struct {
	Sid       string            `json:"Sid"`
	Effect    string            `json:"Effect"`
	Principal map[string]string `json:"Principal"`
	Action    []string          `json:"Action"`
	Resource  string            `json:"Resource"`
}

func required(ciAccount string, d Destination) statement {
	return statement{Sid: StatementSid(ciAccount), Effect: "Allow", Principal: map[string]string{"AWS": principal(ciAccount, d.Region)},
		Action: append([]string(nil), ReplicationActions...), Resource: repoResource(d)}
}

// RequiredPolicy is the registry policy destination d needs (in its account and region) for the ci account
// to replicate into it, as indented JSON.
func RequiredPolicy(ciAccount string, d Destination) []byte {
	doc := struct {
		Version   string
		Statement []statement
	}{"2012-10-17", []statement{required(ciAccount, d)}}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n')
}

// MergePolicy adds the replication statement for ciAccount to a destination registry policy (""
// for none). Existing statements are kept as they are; when they already allow both actions it returns
// the policy unchanged and false. A statement with ecrpush's Sid is ecrpush's own and is replaced.
func MergePolicy(existing, ciAccount string, d Destination) (string, bool, error) {
	want := required(ciAccount, d)
	if strings.TrimSpace(existing) == "" {
		return string(RequiredPolicy(ciAccount, d)), true, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(existing), &doc); err != nil {
		return "", false, fixable.New("the registry policy of %s is not a JSON object (%v): fix it by hand", d, err)
	}
	var stmts []json.RawMessage
	if raw, ok := doc["Statement"]; ok {
		if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
			if err := json.Unmarshal(raw, &stmts); err != nil {
				return "", false, fixable.New("the registry policy of %s has an unreadable Statement (%v): fix it by hand", d, err)
			}
		} else {
			stmts = []json.RawMessage{raw}
		}
	}
	allowed := map[string]bool{}
	ours := -1
	for i, raw := range stmts {
		var st map[string]any
		if json.Unmarshal(raw, &st) != nil {
			continue
		}
		if sid, _ := st["Sid"].(string); sid == want.Sid {
			ours = i
			continue // ours is judged afresh below
		}
		for _, a := range ReplicationActions {
			if grants(st, ciAccount, d, a) {
				allowed[a] = true
			}
		}
	}
	if allowed[ReplicationActions[0]] && allowed[ReplicationActions[1]] {
		return existing, false, nil
	}
	wantRaw, _ := json.Marshal(want)
	if ours >= 0 {
		var have, w any
		_ = json.Unmarshal(stmts[ours], &have)
		_ = json.Unmarshal(wantRaw, &w)
		if jsonEqual(have, w) {
			return existing, false, nil
		}
		stmts[ours] = wantRaw
	} else {
		stmts = append(stmts, wantRaw)
	}
	sb, _ := json.Marshal(stmts)
	doc["Statement"] = sb
	if _, ok := doc["Version"]; !ok {
		doc["Version"] = json.RawMessage(`"2012-10-17"`)
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return "", false, err
	}
	return string(out) + "\n", true, nil
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// grants reports whether one statement surely allows action to the ci account on every repository of d.
// Anything it cannot judge (conditions, Not* elements) counts as not granting.
func grants(st map[string]any, ciAccount string, d Destination, action string) bool {
	if e, _ := st["Effect"].(string); e != "Allow" {
		return false
	}
	for _, k := range []string{"Condition", "NotPrincipal", "NotAction", "NotResource"} {
		if _, ok := st[k]; ok {
			return false
		}
	}
	okPrincipal := false
	switch p := st["Principal"].(type) {
	case string:
		okPrincipal = p == "*"
	case map[string]any:
		for _, v := range strList(p["AWS"]) {
			if v == "*" || v == ciAccount || v == principal(ciAccount, d.Region) {
				okPrincipal = true
			}
		}
	}
	if !okPrincipal {
		return false
	}
	okAction := false
	for _, a := range strList(st["Action"]) {
		if globMatch(strings.ToLower(a), strings.ToLower(action)) {
			okAction = true
		}
	}
	if !okAction {
		return false
	}
	for _, r := range strList(st["Resource"]) {
		if globMatch(r, repoResource(d)) {
			return true
		}
	}
	return false
}

func strList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// globMatch matches IAM wildcards (* and ?) against s.
func globMatch(pattern, s string) bool {
	// path.Match treats '/' specially and '[' as a class; IAM does neither.
	p := strings.NewReplacer("/", "\x00", "[", `\[`, `\`, `\\`).Replace(pattern)
	ok, err := path.Match(p, strings.ReplaceAll(s, "/", "\x00"))
	return err == nil && ok
}

// PolicyResult is what ApplyPolicies did (or a plan would do) in one destination registry.
type PolicyResult struct {
	Destination Destination
	Changed     bool
	Skipped     string // why nothing was done ("" when applied or already in place)
	Policy      string // the policy now in place (or that should be)
	Before      string // the policy as read ("" when there was none)
	Read        bool   // Before was read (a role was given)

	client PolicyAPI
}

// Undo is the command that restores the registry policy as it was before ecrpush wrote it.
func (r PolicyResult) Undo() string {
	region := " --region " + r.Destination.Region
	if strings.TrimSpace(r.Before) == "" {
		return "aws ecr delete-registry-policy" + region
	}
	var b bytes.Buffer
	if json.Compact(&b, []byte(r.Before)) != nil {
		b.Reset()
		b.WriteString(r.Before)
	}
	return "aws ecr put-registry-policy" + region + " --policy-text '" + b.String() + "'"
}

// PolicyAPI is the part of the ECR client ApplyPolicies uses.
type PolicyAPI interface {
	GetRegistryPolicy(context.Context, *ecr.GetRegistryPolicyInput, ...func(*ecr.Options)) (*ecr.GetRegistryPolicyOutput, error)
	PutRegistryPolicy(context.Context, *ecr.PutRegistryPolicyInput, ...func(*ecr.Options)) (*ecr.PutRegistryPolicyOutput, error)
}

// ApplyPolicies merges the replication statement into the registry policy of every destination in another
// account, with that destination's role. Destinations without a role are skipped with the reason.
func ApplyPolicies(ctx context.Context, sess *federate.Session, dests []Destination) ([]PolicyResult, error) {
	return policies(ctx, sess, dests, true)
}

// PlanPolicies is ApplyPolicies without writing: Changed says the policy would change, Policy is the merged
// one (read with the destination's role), or the required one where no role is given.
func PlanPolicies(ctx context.Context, sess *federate.Session, dests []Destination) ([]PolicyResult, error) {
	return policies(ctx, sess, dests, false)
}

func policies(ctx context.Context, sess *federate.Session, dests []Destination, write bool) ([]PolicyResult, error) {
	dc := newDestClients(sess, nil)
	out, err := planPolicies(ctx, dc, sess.Account, dests)
	if err != nil || !write {
		return out, err
	}
	for i := range out {
		if out[i].Changed {
			if err := writePolicy(ctx, &out[i], sess.Account); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// planPolicies reads and merges every destination's registry policy where a role lets it; the first
// error ends it (they are the user's to fix, and all are named).
func planPolicies(ctx context.Context, dc *destClients, ciAccount string, dests []Destination) ([]PolicyResult, error) {
	var out []PolicyResult
	var errs []string
	var first error
	for _, d := range dests {
		r := PolicyResult{Destination: d, Policy: string(RequiredPolicy(ciAccount, d))}
		switch {
		case d.Account == ciAccount:
			r.Skipped = "same account: no registry policy needed"
		case d.RoleARN == "":
			r.Skipped = "no role for " + d.Account + " (--destination-role-name): apply the policy there yourself"
		default:
			c, err := dc.get(ctx, d)
			if err == nil {
				r, err = planPolicy(ctx, c, ciAccount, d)
			}
			if err != nil {
				errs = append(errs, err.Error())
				if first == nil {
					first = err
				}
			}
		}
		out = append(out, r)
	}
	if first != nil {
		if len(errs) == 1 {
			return out, first
		}
		return out, fixable.Wrap(first, strings.Join(errs, "; "))
	}
	return out, nil
}

// planPolicy reads d's registry policy and merges the replication statement into it.
func planPolicy(ctx context.Context, c PolicyAPI, ciAccount string, d Destination) (PolicyResult, error) {
	r := PolicyResult{Destination: d, client: c, Read: true}
	cur, err := getPolicy(ctx, c, d)
	if err != nil {
		return r, err
	}
	merged, changed, err := MergePolicy(cur, ciAccount, d)
	if err != nil {
		return r, err
	}
	r.Before, r.Policy, r.Changed = cur, merged, changed
	return r, nil
}

// writePolicy writes a planned policy: read-merge-write, read back to confirm, merging again (up to 3
// times) when another writer replaced it meanwhile. r.Before stays what the plan read.
func writePolicy(ctx context.Context, r *PolicyResult, ciAccount string) error {
	c, d := r.client, r.Destination
	for attempt := 1; attempt <= 3; attempt++ {
		cur, err := getPolicy(ctx, c, d)
		if err != nil {
			return err
		}
		merged, changed, err := MergePolicy(cur, ciAccount, d)
		if err != nil {
			return err
		}
		if !changed {
			r.Policy = cur
			return nil
		}
		if _, err := c.PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(merged)}); err != nil {
			if ecrx.Code(err) == "AccessDeniedException" {
				return fixable.Wrap(err, fmt.Sprintf("may not write the registry policy of %s (ecr:PutRegistryPolicy denied for %s): grant it, or apply the policy from ecrpush replication plan there yourself", d, d.RoleARN))
			}
			if ecrx.Code(err) == "InvalidParameterException" {
				return fixable.Wrap(err, fmt.Sprintf("ECR refused the merged registry policy of %s (%s): fix the existing policy by hand", d, ecrx.Message(err)))
			}
			return ecrx.APIError(err, "ecr PutRegistryPolicy in "+d.String())
		}
		r.Changed = true
		after, err := getPolicy(ctx, c, d)
		if err != nil {
			return err
		}
		if _, again, _ := MergePolicy(after, ciAccount, d); !again {
			r.Policy = after
			return nil
		}
		// Another writer replaced the policy after us: merge into theirs.
	}
	return fmt.Errorf("the registry policy of %s kept changing under us: run again", d)
}

func getPolicy(ctx context.Context, c PolicyAPI, d Destination) (string, error) {
	out, err := c.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{})
	switch code := ecrx.Code(err); {
	case err == nil:
		return aws.ToString(out.PolicyText), nil
	case code == "RegistryPolicyNotFoundException":
		return "", nil
	case code == "AccessDeniedException":
		return "", fixable.Wrap(err, fmt.Sprintf("may not read the registry policy of %s (ecr:GetRegistryPolicy denied for %s): grant it", d, d.RoleARN))
	default:
		return "", ecrx.APIError(err, "ecr GetRegistryPolicy in "+d.String())
	}
}

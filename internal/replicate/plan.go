package replicate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// ConfigurePlan is what configuring native replication for a prefix would write, computed from reads
// only: the merged replication rule of the ci registry, the creation template of every destination
// registry (when settings ask for one) and the destination registry policies (with Policies). Apply
// writes it.
type ConfigurePlan struct {
	Prefix       string                          `json:"prefix"`
	Registry     Destination                     `json:"registry"` // the ci registry
	Destinations []Destination                   `json:"destinations"`
	Current      *types.ReplicationConfiguration `json:"-"`
	Merged       *types.ReplicationConfiguration `json:"-"`
	Rule         RuleChange                      `json:"rule"`
	Templates    []*TemplatePlan                 `json:"templates,omitempty"`
	Policies     []PolicyResult                  `json:"-"`
	Notes        []string                        `json:"notes,omitempty"`
	Problems     []string                        `json:"problems,omitempty"` // why it cannot be applied

	// After Apply: the configuration as last read, and how many PutReplicationConfiguration calls it took.
	After  *types.ReplicationConfiguration `json:"-"`
	Writes int                             `json:"-"`

	client ECRAPI
	o      ConfigureOptions
}

// RuleChanged reports whether the replication configuration would change.
func (p *ConfigurePlan) RuleChanged() bool { return p.Rule.Kind != RuleUnchanged }

// Changed reports whether Apply would write anything.
func (p *ConfigurePlan) Changed() bool {
	if p.RuleChanged() {
		return true
	}
	for _, t := range p.Templates {
		if t.Action != TemplateUnchanged {
			return true
		}
	}
	for _, r := range p.Policies {
		if r.Changed && r.Read {
			return true
		}
	}
	return false
}

// PlanConfigure reads the ci registry's replication configuration and, where credentials allow, every
// destination's creation templates and registry policy, and computes what configuring replication of
// repositories starting with prefix to dests would write. It writes nothing. The plan is returned even when
// it cannot be applied; the error then says why (fixable: conflicts, limits, missing credentials).
func PlanConfigure(ctx context.Context, client ECRAPI, prefix string, dests []Destination, o ConfigureOptions) (*ConfigurePlan, error) {
	o = o.withDefaults()
	p := &ConfigurePlan{Prefix: prefix, Destinations: dests, Registry: Destination{Account: o.SourceAccount, Region: o.SourceRegion}, client: client, o: o}
	for _, d := range dests {
		if d.Account == o.SourceAccount && d.Region == o.SourceRegion {
			return nil, fixable.New("destination %s is the ci registry itself: ECR cannot replicate a registry into itself", d)
		}
		if o.SourceRegion != "" {
			if err := ecrx.SamePartition("destination "+d.String()+":", o.SourceRegion, d.Region); err != nil {
				return nil, err
			}
		}
	}
	cur, err := describeRegistry(ctx, client)
	if err != nil {
		return nil, err
	}
	p.Current = cur
	merged, ch, err := MergeRule(cur, prefix, dests)
	if err != nil {
		return p, err
	}
	p.Merged, p.Rule = merged, ch

	dc := newDestClients(o.Session, o.DestinationClient)
	if o.Policies && o.Session != nil {
		if p.Policies, err = planPolicies(ctx, dc, o.SourceAccount, dests); err != nil {
			return p, err
		}
	}
	if o.Settings != nil {
		if err := o.Settings.Validate(); err != nil {
			return p, err
		}
		if o.Settings.wantsTemplate() {
			if err := p.planTemplates(ctx, dc); err != nil {
				return p, err
			}
			if o.Settings.ScanOnPush {
				p.Notes = append(p.Notes, "scan on push: creation templates have no scanning setting; repositories replication creates follow each destination registry's scanning configuration")
			}
		} else {
			p.Notes = append(p.Notes, "repositories ECR replication creates get each destination's creation template for "+TemplatePrefix(prefix)+", or ECR's defaults (MUTABLE, AES256)")
		}
	}
	if len(p.Problems) > 0 {
		return p, fixable.New("cannot configure replication of %s as asked: %s; nothing was written", describePrefix(prefix), strings.Join(p.Problems, "; "))
	}
	return p, nil
}

func (p *ConfigurePlan) planTemplates(ctx context.Context, dc *destClients) error {
	s := *p.o.Settings
	tp := TemplatePrefix(p.Prefix)
	for _, d := range p.Destinations {
		if strings.HasPrefix(d.Region, "cn-") || strings.HasPrefix(d.Region, "us-gov-") {
			p.Problems = append(p.Problems, fmt.Sprintf("%s: ECR's user guide lists %s among the regions without repository creation templates, so replication cannot give new repositories there %s: use --replication copy for it", d, d.Region, s.Describe()))
			continue
		}
		if !dc.can(d) {
			p.Problems = append(p.Problems, fmt.Sprintf("no credentials for %s to give the repositories replication creates there %s (a creation template in %s): pass --destination-role-name ROLE (a role in %s this job may assume) or %s=arn:aws:iam::%s:role/ROLE",
				d, s.Describe(), d, d.Account, d, d.Account))
			continue
		}
		c, err := dc.get(ctx, d)
		if err != nil {
			return err
		}
		t, err := planTemplate(ctx, c, d, tp, p.o.Repository, s)
		if err != nil {
			return err
		}
		if tp == "ROOT" {
			t.Notes = append(t.Notes, "the prefix "+describePrefix(p.Prefix)+" has no directory, so only the ROOT template covers it: it applies to every repository replication creates in "+d.String()+" without a template of its own")
		}
		if needsRole(t.want) && aws.ToString(t.want.CustomRoleArn) == "" {
			p.Problems = append(p.Problems, fmt.Sprintf("%s: a creation template with a KMS key or resource tags needs a role ECR assumes (customRoleArn, in %s): pass --template-role-name ROLE", d, d.Account))
		}
		for _, c := range t.Conflicts {
			p.Problems = append(p.Problems, fmt.Sprintf("the creation template %q in %s: %s — change it yourself (aws ecr update-repository-creation-template --prefix %s --region %s …) or drop the setting",
				tp, d, c, tp, d.Region))
		}
		if p.o.Repository != "" {
			if note := existingRepoNote(ctx, c, d, p.o.Repository, s); note != "" {
				t.Notes = append(t.Notes, note)
			}
		}
		p.Templates = append(p.Templates, t)
	}
	return nil
}

func needsRole(t *types.RepositoryCreationTemplate) bool {
	if t == nil {
		return false
	}
	return len(t.ResourceTags) > 0 || (t.EncryptionConfiguration != nil && aws.ToString(t.EncryptionConfiguration.KmsKey) != "")
}

// existingRepoNote says when d already has the repository with other settings: templates only shape
// repositories ECR creates.
func existingRepoNote(ctx context.Context, c DestinationAPI, d Destination, repo string, s RepositorySettings) string {
	out, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
	if err != nil || len(out.Repositories) == 0 {
		return ""
	}
	r := out.Repositories[0]
	var diff []string
	if s.TagImmutability && r.ImageTagMutability != types.ImageTagMutabilityImmutable {
		diff = append(diff, string(r.ImageTagMutability))
	}
	if s.KMSKey != "" && (r.EncryptionConfiguration == nil || r.EncryptionConfiguration.EncryptionType == types.EncryptionTypeAes256) {
		diff = append(diff, "AES256")
	}
	if len(diff) == 0 {
		return ""
	}
	return fmt.Sprintf("%s already exists in %s (%s): a creation template shapes only repositories ECR creates, so it keeps its settings", repo, d, strings.Join(diff, ", "))
}

// WriteText writes the plan for people: the rule change and its diff, each template's diff, each
// registry policy, notes and problems. applied says whether Apply ran.
func (p *ConfigurePlan) WriteText(w io.Writer, applied bool) {
	what := "repositories starting with " + p.Prefix
	if p.Prefix == "" {
		what = "every repository"
	}
	verb := "would change (ecrpush replication apply, or push --configure-replication)"
	if applied {
		verb = "written"
	}
	fmt.Fprintf(w, "# Replication configuration of the ci registry (%s, %s) for %s\n", p.Registry.Account, p.Registry.Region, what)
	if !p.RuleChanged() {
		if applied {
			fmt.Fprintln(w, "# already covers every destination: nothing written")
		} else {
			fmt.Fprintln(w, "# already covers every destination: nothing to change")
		}
	} else {
		fmt.Fprintf(w, "# %s: %s\n", verb, p.Rule.Text(p.Prefix))
		fmt.Fprint(w, UnifiedDiff("current", "merged", string(ConfigJSON(p.Current)), string(ConfigJSON(p.Merged))))
	}
	for _, t := range p.Templates {
		fmt.Fprintf(w, "\n# Repository creation template %q in %s (applied for REPLICATION): ", t.Prefix, t.Destination)
		switch {
		case len(t.Conflicts) > 0:
			fmt.Fprintf(w, "cannot be merged: %s\n", strings.Join(t.Conflicts, "; "))
		case t.Action == TemplateUnchanged:
			fmt.Fprintln(w, "already gives what was asked: unchanged")
		case applied:
			fmt.Fprintf(w, "%sd\n", t.Action)
			fmt.Fprint(w, t.Diff())
		default:
			fmt.Fprintf(w, "would be %sd\n", t.Action)
			fmt.Fprint(w, t.Diff())
		}
		for _, n := range t.Notes {
			fmt.Fprintf(w, "# note: %s\n", n)
		}
	}
	for _, r := range p.Policies {
		if r.Destination.Account == p.Registry.Account {
			continue
		}
		switch {
		case r.Skipped != "":
			fmt.Fprintf(w, "\n# Registry policy %s needs in %s (merge this statement into it, or pass --destination-role-name and run ecrpush replication apply):\n%s",
				r.Destination.Account, r.Destination.Region, r.Policy)
		case !r.Changed:
			fmt.Fprintf(w, "\n# Registry policy of %s in %s already allows replication from %s: unchanged\n", r.Destination.Account, r.Destination.Region, p.Registry.Account)
		case applied:
			fmt.Fprintf(w, "\n# Registry policy of %s in %s: updated to\n%s", r.Destination.Account, r.Destination.Region, r.Policy)
		default:
			fmt.Fprintf(w, "\n# Registry policy of %s in %s would become (ecrpush replication apply):\n%s", r.Destination.Account, r.Destination.Region, r.Policy)
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "\n# note: %s\n", n)
	}
	for _, pr := range p.Problems {
		fmt.Fprintf(w, "\n# cannot apply: %s\n", pr)
	}
}

// MarshalJSON is the plan for --output json: the configurations in the API's shape, the rule change, the
// templates before and after, and the policies.
func (p *ConfigurePlan) MarshalJSON() ([]byte, error) {
	type policyJSON struct {
		Account string          `json:"account"`
		Region  string          `json:"region"`
		Status  string          `json:"status"`
		Policy  json.RawMessage `json:"policy,omitempty"`
	}
	var pols []policyJSON
	for _, r := range p.Policies {
		if r.Destination.Account == p.Registry.Account {
			continue
		}
		st := "unchanged"
		switch {
		case r.Skipped != "":
			st = "skipped: " + r.Skipped
		case r.Changed:
			st = "changes"
		}
		pols = append(pols, policyJSON{Account: r.Destination.Account, Region: r.Destination.Region, Status: st, Policy: rawOrString(r.Policy)})
	}
	type alias ConfigurePlan
	after := p.After
	if after == nil {
		after = p.Merged
	}
	return json.Marshal(struct {
		*alias
		Current             json.RawMessage `json:"current"`
		Merged              json.RawMessage `json:"merged"`
		Changed             bool            `json:"changed"`
		DestinationPolicies []policyJSON    `json:"destinationPolicies,omitempty"`
	}{(*alias)(p), ConfigJSON(p.Current), ConfigJSON(after), p.Changed(), pols})
}

// ApplyError is a failure of Apply after earlier writes succeeded: Written names each write and how to
// undo it. Those writes are harmless without the ones that did not happen (a policy or template takes
// effect only once a rule sends images there), but they are there.
type ApplyError struct {
	Err     error
	Written []string // "what (undo: command)"
}

func (e *ApplyError) Error() string {
	if len(e.Written) == 0 {
		return e.Err.Error() + "; nothing was written"
	}
	return fmt.Sprintf("%v; already written before this failure (harmless without the replication rule, which was not written): %s",
		e.Err, strings.Join(e.Written, "; "))
}

func (e *ApplyError) Unwrap() error { return e.Err }

// Apply writes the plan in an order where a late failure leaves the earlier writes harmless: destination
// registry policies (they only allow replication in), then creation templates (they only shape repositories
// replication creates), then the replication rule, which is what starts replication. The rule is merged
// again on the configuration as it is then, when another writer changed it since the plan. A failure after
// a write returns an *ApplyError naming what was written and how to undo it.
func (p *ConfigurePlan) Apply(ctx context.Context) error {
	if len(p.Problems) > 0 {
		return fixable.New("cannot configure replication as asked: %s; nothing was written", strings.Join(p.Problems, "; "))
	}
	var written []string
	fail := func(err error) error {
		return &ApplyError{Err: err, Written: written}
	}
	for i := range p.Policies {
		r := &p.Policies[i]
		if !r.Changed || !r.Read {
			continue
		}
		if err := writePolicy(ctx, r, p.Registry.Account); err != nil {
			return fail(err)
		}
		written = append(written, fmt.Sprintf("the registry policy of %s (undo with %s's credentials: %s)", r.Destination, r.Destination.Account, r.Undo()))
	}
	for _, t := range p.Templates {
		if t.Action == TemplateUnchanged {
			continue
		}
		if err := t.apply(ctx); err != nil {
			return fail(err)
		}
		written = append(written, fmt.Sprintf("the creation template %q in %s, %sd (undo with %s's credentials: %s)", t.Prefix, t.Destination, t.Action, t.Destination.Account, t.Undo()))
		p.o.Logger.Info("creation template written", "destination", t.Destination.String(), "prefix", t.Prefix, "action", t.Action)
	}
	if !p.RuleChanged() {
		p.After = p.Current
		return nil
	}
	after, writes, err := p.writeRule(ctx)
	p.Writes = writes
	if err != nil {
		return fail(err)
	}
	p.After = after
	return nil
}

// writeRule is the read-merge-write of the replication configuration: re-read just before writing (the
// window in which another writer's change would be lost is one round trip), write, read back, and once more
// after Settle; another writer's change is merged again, up to Attempts times.
func (p *ConfigurePlan) writeRule(ctx context.Context) (*types.ReplicationConfiguration, int, error) {
	o := p.o
	cur := p.Current
	writes := 0
	for attempt := 1; attempt <= o.Attempts; attempt++ {
		merged, ch, err := MergeRule(cur, p.Prefix, p.Destinations)
		if err != nil {
			return nil, writes, err
		}
		if ch.Kind == RuleUnchanged {
			return cur, writes, nil
		}
		pre, err := describeRegistry(ctx, p.client)
		if err != nil {
			return nil, writes, err
		}
		if !SameConfig(pre, cur) {
			o.Logger.Warn("the replication configuration changed while we merged; merging again", "attempt", attempt)
			cur = pre
			continue
		}
		if _, err := p.client.PutReplicationConfiguration(ctx, &ecr.PutReplicationConfigurationInput{ReplicationConfiguration: merged}); err != nil {
			return nil, writes, putError(err)
		}
		writes++
		p.Rule = ch
		o.Logger.Info("replication configured", "prefix", p.Prefix, "destinations", destList(p.Destinations), "change", ch.Text(p.Prefix))
		after, err := describeRegistry(ctx, p.client)
		if err != nil {
			return nil, writes, err
		}
		if !SameConfig(after, merged) {
			o.Logger.Warn("another writer changed the replication configuration after ours; merging again", "attempt", attempt)
			cur = after
			continue
		}
		if err := sleep(ctx, o.Settle); err != nil {
			return nil, writes, err
		}
		if after, err = describeRegistry(ctx, p.client); err != nil {
			return nil, writes, err
		}
		if !SameConfig(after, merged) {
			o.Logger.Warn("another writer changed the replication configuration after ours; merging again", "attempt", attempt)
			cur = after
			continue
		}
		return after, writes, nil
	}
	return nil, writes, fmt.Errorf("the ci registry's replication configuration kept changing under us (another writer, %d attempts): run again, or coordinate the writers", o.Attempts)
}

func (o ConfigureOptions) withDefaults() ConfigureOptions {
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Settle == 0 {
		o.Settle = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Session != nil {
		if o.SourceAccount == "" {
			o.SourceAccount = o.Session.Account
		}
		if o.SourceRegion == "" {
			o.SourceRegion = o.Session.Config.Region
		}
	}
	return o
}

package pipeline

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/internal/replicate"
)

// Plan is everything a push will write, decided by reading only.
type Plan struct {
	Source      string           `json:"source"`
	Digest      string           `json:"digest"`
	Targets     []Target         `json:"destinations"`
	Replication *ReplicationPlan `json:"replication,omitempty"`
	pubs        []push.Publisher // closed with the plan
}

// Target is one destination's push plan.
type Target struct {
	*push.Plan
	plan *push.Plan
}

// ReplicationPlan is what replication will do: the rule to merge (native) or the destinations to copy to.
type ReplicationPlan struct {
	Mode         string                  `json:"mode"`
	Prefix       string                  `json:"prefix,omitempty"`
	Destinations []replicate.Destination `json:"destinations"`
	// configure is what --configure-replication will write (nil: nothing to write): the rule, and the
	// destinations' creation templates.
	configure *replicate.ConfigurePlan
	// Copies are the copy-mode destinations' push plans (repository to create, tags), per destination.
	Copies map[string]*push.Plan `json:"copies,omitempty"`

	repository string
	ciAccount  string
	ciRegion   string
	timeout    time.Duration
	sess       *federate.Session
	settings   Settings
	// restoreArchived: --restore-archived.
	restoreArchived bool
}

func (p *Plan) close() {
	for _, pub := range p.pubs {
		_ = pub.Close()
	}
}

func (p *Plan) targetNames() string {
	var n []string
	for _, t := range p.Targets {
		n = append(n, t.Destination)
	}
	return strings.Join(n, ", ")
}

// plan reads everything the writes depend on, for every destination, and refuses before the first write.
func (r *run) plan(ctx context.Context) (*Plan, error) {
	p := &Plan{Source: r.sourceString, Digest: r.art.Digest.String()}
	opts := r.pushOptions()
	var repoName string
	switch {
	case r.ecrDest:
		repoName = r.job.Repository
		o := opts
		if len(r.job.Destinations) == 1 {
			repo, _ := name.NewRepository(r.job.Destinations[0])
			repoName = repo.RepositoryStr()
			o = append(o, push.WithRegistryID(r.destAccount))
		}
		// An ECR publisher's plan (PlanPublish below) runs push.CheckECR: before any write, for the ci
		// repository and every copy destination alike.
		pub, err := push.NewECR(ctx, r.sess.Config, repoName, o...)
		if err != nil {
			return p, err
		}
		p.pubs = append(p.pubs, pub)
	default:
		for _, d := range r.job.Destinations {
			repo, err := name.NewRepository(d)
			if err != nil {
				return p, fixable.New("--destination %q is not REGISTRY/REPOSITORY (tags go in --tag)", d)
			}
			pub, err := push.NewRegistry(repo, keychain, opts...)
			if err != nil {
				return p, err
			}
			p.pubs = append(p.pubs, pub)
		}
	}
	// Every destination's tags and blobs at once: a conflict anywhere stops all of them.
	for _, pub := range p.pubs {
		pp, err := push.PlanPublish(ctx, pub, r.art, r.job.Tags)
		if err != nil {
			return p, err
		}
		p.Targets = append(p.Targets, Target{Plan: pp, plan: pp})
	}
	if err := r.checkSupplyChain(p); err != nil {
		return p, err
	}
	if r.ecrDest {
		rp, err := r.planReplication(ctx, repoName)
		if err != nil {
			return p, err
		}
		p.Replication = rp
	}
	return p, nil
}

// planReplication plans the replication of the pushed image (nil when there is none).
func (r *run) planReplication(ctx context.Context, repo string) (*ReplicationPlan, error) {
	return PlanReplication(ctx, r.env, r.sess, r.job.Replication, r.job.Settings, repo, func(ctx context.Context, pub push.Publisher) (*push.Plan, error) {
		return push.PlanPublish(ctx, pub, r.art, r.job.Tags)
	}, r.uploadOptions())
}

// PlanReplication parses the destinations for the ci account and checks, reading only, that they can be
// served: native mode reads the ci registry's rules (and merges the missing one in memory, with
// --configure-replication); copy mode federates into every destination account and, given planPush,
// plans each destination's push (repository settings, tag conflicts). It returns nil when there is
// nothing to replicate.
func PlanReplication(ctx context.Context, env Env, sess *federate.Session, rj Replication, settings Settings, repo string,
	planPush func(context.Context, push.Publisher) (*push.Plan, error), opts []push.Option) (*ReplicationPlan, error) {
	if len(rj.To) == 0 || rj.Mode == "off" {
		return nil, nil
	}
	region := sess.Config.Region
	dests, err := replicate.ParseDestinations(rj.To, sess.Account, region, rj.RoleName)
	if err != nil {
		return nil, err
	}
	rp := &ReplicationPlan{Mode: rj.Mode, Destinations: dests, repository: repo, ciAccount: sess.Account, ciRegion: region,
		timeout: rj.Timeout, sess: sess, settings: settings, restoreArchived: rj.RestoreArchived}
	if rj.Mode == replicate.ModeCopy {
		rp.Copies = map[string]*push.Plan{}
		for _, d := range dests {
			cfg, err := replicate.DestinationConfig(ctx, sess, d)
			if err != nil {
				return nil, err
			}
			if planPush == nil {
				continue
			}
			pub, err := push.NewECR(ctx, cfg, repo, append(append([]push.Option{}, opts...), settings.PushOptions(d)...)...)
			if err != nil {
				return nil, fmt.Errorf("destination %s: %w", d, err)
			}
			pp, err := planPush(ctx, pub)
			_ = pub.Close()
			if err != nil {
				return nil, fmt.Errorf("destination %s: %w", d, err)
			}
			rp.Copies[d.String()] = pp
		}
		return rp, nil
	}
	rp.Prefix = rj.Prefix
	if rp.Prefix == "" {
		rp.Prefix = repo
	}
	o := replicate.ConfigureOptions{Session: sess, Repository: repo, Logger: env.logger()}
	if rj.Configure {
		// Only a run that may write reads (and plans) the destinations' creation templates.
		o.Settings = &settings.RepositorySettings
	}
	plan, err := replicate.PlanConfigure(ctx, ecrClientOf(sess), rp.Prefix, dests, o)
	if err != nil {
		return nil, err
	}
	if plan.RuleChanged() && !rj.Configure {
		var missing []replicate.Destination
		for _, d := range dests {
			if !replicate.Covered(plan.Current, rp.Prefix, d) {
				missing = append(missing, d)
			}
		}
		return nil, fixable.Wrap(&replicate.NotConfiguredError{Prefix: rp.Prefix, Missing: missing, Merged: plan.Merged}, "")
	}
	if plan.Changed() {
		rp.configure = plan
	}
	return rp, nil
}

// Apply writes the planned configuration (destination creation templates, then the rule; a no-op when
// nothing is needed) and returns what it wrote. A failure part-way names every earlier write with its undo.
func (rp *ReplicationPlan) Apply(ctx context.Context) ([]string, error) {
	if rp == nil || rp.configure == nil {
		return nil, nil
	}
	if err := rp.configure.Apply(ctx); err != nil {
		return nil, err
	}
	return []string{fmt.Sprintf("configured replication for %s (rule and creation templates: ecrpush replication plan shows them; they only affect future pushes)", rp.Prefix)}, nil
}

// WriteText prints the plan for --dry-run: what would be created, merged, uploaded and tagged.
func (p *Plan) WriteText(w io.Writer) {
	fmt.Fprintf(w, "plan (dry run, nothing written): %s %s\n", p.Source, p.Digest)
	for _, t := range p.Targets {
		fmt.Fprintf(w, "%s:\n", t.Destination)
		t.Plan.WriteText(w)
	}
	rp := p.Replication
	if rp == nil {
		return
	}
	var ds []string
	for _, d := range rp.Destinations {
		ds = append(ds, d.String())
	}
	fmt.Fprintf(w, "replication (%s) to %s:\n", rp.Mode, strings.Join(ds, ", "))
	switch {
	case rp.Mode == replicate.ModeCopy:
		for _, d := range rp.Destinations {
			fmt.Fprintf(w, "%s (copy):\n", d)
			rp.Copies[d.String()].WriteText(w)
		}
	case rp.configure != nil:
		fmt.Fprintf(w, "  merge a rule for %s into the ci registry's replication configuration:\n", rp.Prefix)
		var b strings.Builder
		rp.configure.WriteText(&b, false)
		fmt.Fprint(w, indent(b.String()))
	default:
		fmt.Fprintf(w, "  the ci registry's rules already cover %s: nothing to configure\n", rp.Prefix)
	}
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString("  " + l)
		}
	}
	return b.String()
}

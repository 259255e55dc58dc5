package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
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
	// Merge is the configuration --configure-replication will write (nil: the rules already cover it).
	Merged  *types.ReplicationConfiguration `json:"-"`
	Current *types.ReplicationConfiguration `json:"-"`
	// Copies are the copy-mode destinations' push plans (repository to create, tags), per destination.
	Copies map[string]*push.Plan `json:"copies,omitempty"`

	merge      bool
	repository string
	ciAccount  string
	ciRegion   string
	timeout    time.Duration
	sess       *federate.Session
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
		if err := push.CheckECR(r.art); err != nil {
			return p, err
		}
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
	return PlanReplication(ctx, r.env, r.sess, r.job.Replication, repo, func(ctx context.Context, pub push.Publisher) (*push.Plan, error) {
		return push.PlanPublish(ctx, pub, r.art, r.job.Tags)
	}, r.pushOptions())
}

// PlanReplication parses the destinations for the ci account and checks, reading only, that they can be
// served: native mode reads the ci registry's rules (and merges the missing one in memory, with
// --configure-replication); copy mode federates into every destination account and, given planPush,
// plans each destination's push (repository settings, tag conflicts). It returns nil when there is
// nothing to replicate.
func PlanReplication(ctx context.Context, env Env, sess *federate.Session, rj Replication, repo string,
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
		timeout: rj.Timeout, sess: sess}
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
			pub, err := push.NewECR(ctx, cfg, repo, opts...)
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
	client := ecrClientOf(sess)
	_, err = replicate.Configure(ctx, client, rp.Prefix, dests, replicate.ConfigureOptions{
		SourceAccount: sess.Account, SourceRegion: region, Logger: env.logger(),
	})
	var nc *replicate.NotConfiguredError
	switch {
	case err == nil:
	case errors.As(err, &nc) && rj.Configure:
		rp.merge, rp.Merged = true, nc.Merged
		if rp.Current, err = replicate.ReadConfiguration(ctx, client); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	return rp, nil
}

// Apply merges the planned rule (a no-op when none is needed); it returns what it wrote.
func (rp *ReplicationPlan) Apply(ctx context.Context, log *slog.Logger) ([]string, error) {
	if rp == nil || !rp.merge {
		return nil, nil
	}
	client := ecrClientOf(rp.sess)
	res, err := replicate.Configure(ctx, client, rp.Prefix, rp.Destinations, replicate.ConfigureOptions{
		Apply: true, SourceAccount: rp.ciAccount, SourceRegion: rp.ciRegion, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	if !res.Changed {
		return nil, nil
	}
	return []string{fmt.Sprintf("merged a replication rule for %s into the ci registry's configuration (ecrpush replication plan shows it; it only affects future pushes)", rp.Prefix)}, nil
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
	case rp.merge:
		fmt.Fprintf(w, "  merge a rule for %s into the ci registry's replication configuration:\n", rp.Prefix)
		fmt.Fprint(w, indent(replicate.UnifiedDiff("current", "merged", string(replicate.ConfigJSON(rp.Current)), string(replicate.ConfigJSON(rp.Merged)))))
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

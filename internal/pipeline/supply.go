package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ecrpush/ecrpush/internal/platform"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/internal/supplychain"
)

// The supply-chain stages: what the source holds beside the image (signatures, SBOMs, attestations)
// travels with it, is verified at every destination, and the scan findings gate the run.

// sourceReferrers finds the referrers the source holds for the image (after the source is read).
func (r *run) sourceReferrers(ctx context.Context, src push.Source) error {
	sc := r.job.SupplyChain
	if w := supplychain.DroppedWarning(r.art, r.job.Platform); w != "" {
		r.log.Warn(w)
	}
	r.supply = &supplychain.Report{DroppedAttestations: supplychain.Dropped(r.art)}
	if sc.Referrers.None() {
		return nil
	}
	refs, err := push.Referrers(ctx, src, r.art)
	if err != nil {
		return fmt.Errorf("source %s: referrers: %w", r.sourceString, err)
	}
	r.refs = supplychain.Select(refs, sc.Referrers)
	if len(r.refs) > 0 {
		r.log.Info("referrers found in the source", "count", len(r.refs))
	}
	return nil
}

// checkSupplyChain refuses, at plan time, supply-chain options that cannot work here.
func (r *run) checkSupplyChain(p *Plan) error {
	creates := false
	for _, t := range p.Targets {
		creates = creates || t.Create != nil
	}
	return r.job.SupplyChain.Check(supplychain.Plan{ECR: r.ecrDest, ScanOnPush: r.job.Settings.ScanOnPush, Creates: creates, Platform: r.job.Platform})
}

// pushReferrers pushes the source's referrers after the image, to one destination.
func (r *run) pushReferrers(ctx context.Context, pub push.Publisher) error {
	if len(r.refs) == 0 {
		return nil
	}
	arts, err := supplychain.Push(ctx, pub, r.refs, r.job.SupplyChain.Referrers)
	r.mu.Lock()
	r.supply.Referrers = append(r.supply.Referrers, arts...)
	r.mu.Unlock()
	return err
}

// afterReplication carries and checks the supply chain beyond the ci registry, once replication is done:
// copy mode copies the referrers to each copied destination; native mode verifies that each destination
// holds every referrer the ci registry holds; then the signature requirement and the findings gate.
// rows are updated in place; the returned error is the first that must fail the run.
func (r *run) afterReplication(ctx context.Context, p *Plan, res *push.Result, rows []platform.Replica) error {
	sc := r.job.SupplyChain
	if !r.ecrDest || r.sess == nil {
		return nil
	}
	if sc.Timeout == 0 {
		// --replication-timeout bounds every wait after the push: replication, referrers, signatures, scan.
		sc.Timeout = r.job.Replication.Timeout
	}
	// Referrers beyond the ci registry are copied or verified when the push carried some, or when a
	// signature (which ECR's managed signing attaches as a referrer) is required; otherwise the ci
	// registry holds none for this digest and every look-up would only cost round trips.
	carry := len(rows) > 0 && !sc.Referrers.None() && (len(r.supply.Referrers) > 0 || sc.RequireSignature || sc.RequireReferrers)
	need := carry || sc.RequireSignature || sc.FailOnSeverity != ""
	if !need {
		return nil
	}
	repo := res.Repository
	ci, err := supplychain.ECR(ctx, r.sess.Config, repo, "ci "+r.sess.Account+"/"+r.sess.Config.Region)
	if err != nil {
		return err
	}
	digest := res.Digest
	pushed := pushedText(res)
	var dests []*supplychain.Registry
	var destRows []int
	if rp := p.Replication; rp != nil {
		for _, d := range rp.Destinations {
			i := rowOf(rows, d)
			if i < 0 {
				continue
			}
			reg, err := r.destinationRegistry(ctx, d, repo)
			if err != nil {
				msg := fmt.Sprintf("referrers and signatures at %s not checked: %v", d, err)
				if sc.RequireReferrers || sc.RequireSignature {
					return fmt.Errorf("%s (the image is pushed: %s)", msg, pushed)
				}
				r.log.Warn(msg)
				continue
			}
			dests, destRows = append(dests, reg), append(destRows, i)
		}
	}
	var errs []error
	if len(dests) > 0 && carry {
		if p.Replication.Mode == replicate.ModeCopy {
			for k, reg := range dests {
				arts, err := supplychain.CopyReferrers(ctx, ci, reg, digest, sc.Referrers)
				if err != nil {
					errs = append(errs, fmt.Errorf("copy referrers to %s: %w", reg.Name, err))
					continue
				}
				rows[destRows[k]].Referrers = &supplychain.Row{Expected: len(arts), Present: len(arts)}
			}
		} else {
			want, err := supplychain.Expected(ctx, ci, sc.Referrers, supplychain.Subjects(r.art)...)
			if err != nil {
				return err
			}
			vrows, err := supplychain.Verify(ctx, want, dests, supplychain.Subjects(r.art), supplychain.VerifyOptions{Require: sc.RequireReferrers, Timeout: sc.Timeout})
			for k := range vrows {
				rows[destRows[k]].Referrers = &vrows[k]
			}
			if err != nil {
				errs = append(errs, err)
			} else {
				for _, w := range supplychain.Warnings(vrows, dests) {
					r.log.Warn(w)
				}
			}
		}
	}
	if sc.RequireSignature {
		checks, err := supplychain.RequireSignature(ctx, ci, dests, digest, supplychain.SignatureOptions{Timeout: sc.Timeout, Pushed: pushed})
		r.supply.Signatures = checks
		if err != nil {
			errs = append(errs, err)
		}
	}
	if sc.FailOnSeverity != "" {
		targets, err := supplychain.Targets(r.art)
		if err != nil {
			return err
		}
		f, err := supplychain.Scan(ctx, ci, digest, targets, supplychain.FindingsOptions{Threshold: sc.FailOnSeverity, Timeout: sc.Timeout, Pushed: pushed})
		if err != nil {
			errs = append(errs, err)
		} else {
			r.supply.Findings = f
			if gate := f.Gate(pushed); gate != nil {
				errs = append(errs, gate)
			}
		}
	}
	return errors.Join(errs...)
}

// destinationRegistry is repo at d, read with d's own credentials (its role, or the ci session in its account).
func (r *run) destinationRegistry(ctx context.Context, d replicate.Destination, repo string) (*supplychain.Registry, error) {
	cfg, err := replicate.DestinationConfig(ctx, r.sess, d)
	if err != nil {
		return nil, err
	}
	return supplychain.ECR(ctx, cfg, repo, d.Account+"/"+d.Region)
}

func rowOf(rows []platform.Replica, d replicate.Destination) int {
	for i, row := range rows {
		if row.Account == d.Account && row.Region == d.Region {
			return i
		}
	}
	return -1
}

// pushedText says what is written, for errors after the push: "host/repo:v1, :latest (sha256:…)".
func pushedText(res *push.Result) string {
	if len(res.Tags) == 0 {
		return res.Ref
	}
	var tags []string
	for i, t := range res.Tags {
		if i == 0 {
			tags = append(tags, t.URI)
		} else {
			tags = append(tags, ":"+t.Tag)
		}
	}
	return strings.Join(tags, ", ") + " (" + res.Digest.String() + ")"
}

package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/platform"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/internal/supplychain"
)

// Push runs the whole pipeline for one image and returns its report (nil for a dry run).
func Push(ctx context.Context, env Env, job Job) (*platform.Report, error) {
	r := &run{env: env, job: job, log: env.logger(), start: time.Now()}
	if err := r.identity(ctx); err != nil {
		return nil, err
	}
	src, err := r.source(ctx)
	if src != nil {
		defer src.Close()
	}
	if err != nil {
		return nil, err
	}
	p, err := r.plan(ctx)
	if p != nil {
		defer p.close()
	}
	if err != nil {
		return nil, err
	}
	if job.DryRun {
		p.WriteText(env.Out)
		return nil, nil
	}
	res, err := r.write(ctx, p)
	if err != nil {
		return nil, err
	}
	report := r.report(res)
	report.Replication, err = r.wait(ctx, p, res)
	if err == nil {
		err = r.afterReplication(ctx, p, res, report.Replication)
	}
	report.Report = r.supply // the supply-chain part, inlined in the JSON
	report.Seconds = time.Since(r.start).Seconds()
	if rerr := env.Platform.Report(report); rerr != nil {
		r.log.Warn("report: " + rerr.Error())
	}
	return report, err
}

// run is one pipeline's state, filled stage by stage.
type run struct {
	env   Env
	job   Job
	log   *slog.Logger
	start time.Time

	ecrDest      bool   // the destination is an ECR registry (federate, ECR checks)
	destAccount  string // from a --destination ECR host, when given
	destRegion   string
	sess         *federate.Session
	art          *push.Artifact
	sourceString string
	mu           sync.Mutex          // guards supply while destinations are written at once
	refs         []*push.Referrer    // the source's referrers that travel with the image
	supply       *supplychain.Report // referrers carried, signatures, findings
}

// identity decides where the image goes and, for ECR, federates the ci identity (masking every secret
// through the platform as it is obtained).
func (r *run) identity(ctx context.Context) error {
	r.ecrDest = len(r.job.Destinations) == 0
	if !r.ecrDest && len(r.job.Destinations) == 1 {
		repo, err := name.NewRepository(r.job.Destinations[0])
		if err != nil {
			return fixable.New("--destination %q is not REGISTRY/REPOSITORY (tags go in --tag)", r.job.Destinations[0])
		}
		if reg, ok := ecrx.ParseHost(repo.RegistryStr()); ok {
			r.ecrDest, r.destAccount, r.destRegion = true, reg.Account, reg.Region
		}
	}
	if !r.ecrDest {
		// Only the source may need AWS (Google credentials from AWS): the default chain is enough.
		return nil
	}
	opts := r.job.Identity
	if r.destRegion != "" {
		opts.Region = r.destRegion
	}
	sess, err := Identity(ctx, r.env, opts)
	if err != nil {
		return err
	}
	r.sess = sess
	if r.destAccount != "" && sess.Account != "" && r.destAccount != sess.Account {
		r.log.Info("pushing into another account's registry", "registry", r.destAccount, "identity", sess.Account)
	}
	return nil
}

// Identity is the pipeline's first stage, for every command that talks to AWS: federate the CI identity
// (or use the AWS chain), masking every token, key and session token through the platform as it is
// obtained.
func Identity(ctx context.Context, env Env, opts federate.Options) (*federate.Session, error) {
	if opts.Mask == nil && env.Platform != nil {
		opts.Mask = env.Platform.Mask
	}
	if env.Platform != nil {
		end := env.Platform.Group("Federate")
		defer end()
	}
	return federate.Federate(ctx, opts)
}

// source opens and reads the image once; every destination shares what it read.
func (r *run) source(ctx context.Context) (push.Source, error) {
	opts := append(append([]push.SourceOption{}, r.job.SourceOptions...), r.job.Upload.SourceOptions()...)
	if r.job.SourceKeychain != nil {
		kc, err := r.job.SourceKeychain(ctx, r.sess)
		if err != nil {
			return nil, err
		}
		opts = append(opts, push.WithSourceKeychain(kc))
	}
	src, err := push.ParseSource(r.job.Source, opts...)
	if err != nil {
		return nil, err
	}
	end := r.env.Platform.Group("Read " + src.String())
	defer end()
	art, err := src.Load(ctx)
	if err != nil {
		return src, err
	}
	r.art, r.sourceString = art, src.String()
	r.log.Info("source loaded", "image", src.String(), "digest", art.Digest.String(), "mediaType", string(art.MediaType))
	return src, r.sourceReferrers(ctx, src)
}

// pushOptions are the ci repository's options: its settings, then the upload options.
func (r *run) pushOptions() []push.Option {
	return append(r.job.Settings.Options(), r.uploadOptions()...)
}

// uploadOptions are every destination's transfer options: upload, logging and progress.
func (r *run) uploadOptions() []push.Option { return uploadOptions(r.env, r.job.Upload) }

func uploadOptions(env Env, u Upload) []push.Option {
	o := append(u.Options(), push.WithLogger(env.logger()))
	if env.Progress != nil {
		o = append(o, push.WithProgress(env.Progress, env.Terminal))
	}
	return o
}

// write makes the plan's writes in the order that keeps an early stop harmless: the repository (an
// empty repository costs nothing and is what a retry needs), then the replication rule (so ECR
// replicates the push that follows), then the image and its tags (last, so no tag ever names a
// partial image).
func (r *run) write(ctx context.Context, p *Plan) (*push.Result, error) {
	var written []string
	for _, t := range p.Targets {
		created := t.Create != nil
		if err := t.plan.CreateRepository(ctx); err != nil {
			return nil, wroteBefore(err, written)
		}
		if created {
			written = append(written, fmt.Sprintf("created the empty repository %s (aws ecr delete-repository --repository-name %s removes it)", t.Create.Repository, t.Create.Repository))
		}
	}
	if p.Replication != nil && p.Replication.configure != nil {
		end := r.env.Platform.Group("Configure replication")
		w, err := p.Replication.Apply(ctx)
		end()
		if err != nil {
			return nil, wroteBefore(err, written)
		}
		written = append(written, w...)
	}
	end := r.env.Platform.Group("Push " + p.targetNames())
	defer end()
	var results []*push.Result
	var errs []error
	// Every destination at once: one read of the source feeds them all, and each was planned already.
	res := make([]*push.Result, len(p.Targets))
	perr := make([]error, len(p.Targets))
	var wg sync.WaitGroup
	for i, t := range p.Targets {
		wg.Go(func() {
			if res[i], perr[i] = t.plan.Publish(ctx); perr[i] == nil {
				perr[i] = r.pushReferrers(ctx, p.pubs[i])
			}
		})
	}
	wg.Wait()
	for i := range p.Targets {
		if res[i] != nil {
			results = append(results, res[i])
			written = append(written, "pushed "+res[i].Ref)
		}
		if perr[i] != nil {
			errs = append(errs, perr[i])
		}
	}
	if len(errs) > 0 {
		return nil, wroteBefore(errors.Join(errs...), written)
	}
	if len(results) == 1 {
		return results[0], nil
	}
	agg := &push.Result{Digest: results[0].Digest, MediaType: results[0].MediaType, Size: results[0].Size, Layers: results[0].Layers,
		Registry: results[0].Registry, Repository: results[0].Repository, Ref: results[0].Ref, Tags: results[0].Tags, Destinations: results}
	for _, res := range results {
		agg.BytesUploaded += res.BytesUploaded
		agg.BytesPresent += res.BytesPresent
	}
	return agg, nil
}

// wroteBefore names what was written before err, so a late failure never leaves the user guessing.
func wroteBefore(err error, written []string) error {
	if len(written) == 0 {
		return err
	}
	return &partialError{err: err, written: written}
}

// partialError is a failure after some writes; it keeps err's exit code.
type partialError struct {
	err     error
	written []string
}

func (e *partialError) Error() string {
	return fmt.Sprintf("%v; already written: %s", e.err, strings.Join(e.written, "; "))
}

func (e *partialError) Unwrap() error { return e.err }

// wait replicates (native: waits for ECR; copy: copies) and returns one row per destination.
func (r *run) wait(ctx context.Context, p *Plan, res *push.Result) ([]platform.Replica, error) {
	if p.Replication == nil {
		return nil, nil
	}
	end := r.env.Platform.Group("Replicate")
	defer end()
	return p.Replication.Replicate(ctx, r.env, p.Replication.repository, r.art, res, r.uploadOptions())
}

// Replicate replicates one pushed image of repo (art nil: read back from the ci registry) and returns
// one row per destination.
func (rp *ReplicationPlan) Replicate(ctx context.Context, env Env, repo string, art *push.Artifact, res *push.Result, opts []push.Option) ([]platform.Replica, error) {
	if rp == nil || len(rp.Destinations) == 0 {
		return nil, nil
	}
	var tags []string
	for _, t := range res.Tags {
		tags = append(tags, t.Tag)
	}
	return replicate.Run(ctx, replicate.Options{
		Mode:            rp.Mode,
		Session:         rp.sess,
		Repository:      repo,
		Digest:          res.Digest.String(),
		Tags:            tags,
		Artifact:        art,
		Existed:         len(res.TagsUnchanged) == len(res.Tags),
		Destinations:    rp.Destinations,
		Timeout:         rp.timeout,
		PushOptions:     opts,
		Settings:        &rp.settings.RepositorySettings,
		RestoreArchived: rp.restoreArchived,
		Logger:          env.logger(),
	})
}

func (r *run) report(res *push.Result) *platform.Report {
	var tags []string
	for _, t := range res.Tags {
		tags = append(tags, t.Tag)
	}
	images := []platform.Image{{URI: res.Ref, Tags: tags}}
	if len(res.Destinations) > 0 {
		images = nil
		for _, d := range res.Destinations {
			var dt []string
			for _, t := range d.Tags {
				dt = append(dt, t.Tag)
			}
			images = append(images, platform.Image{URI: d.Ref, Tags: dt})
		}
	}
	rep := &platform.Report{
		Digest:         res.Digest.String(),
		DigestComputed: r.art.DigestComputed,
		MediaType:      string(res.MediaType),
		Registry:       res.Registry,
		Repository:     res.Repository,
		Images:         images,
		Size:           res.Size,
		Layers:         res.Layers,
		BytesUploaded:  res.BytesUploaded,
		BytesSkipped:   res.BytesPresent,
	}
	if r.sess != nil {
		rep.AccountID, rep.Region = r.sess.Account, r.sess.Config.Region
	}
	return rep
}

// keychain is what non-ECR destinations are written with: the Docker config, as docker itself would.
var keychain authn.Keychain = authn.DefaultKeychain

func ecrClientOf(sess *federate.Session) *ecr.Client { return ecr.NewFromConfig(sess.Config) }

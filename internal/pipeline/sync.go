package pipeline

import (
	"context"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/mirror"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/internal/supplychain"
)

// SyncJob is one `ecrpush sync`: the images of a mirror file, into the ci registry, replicated.
type SyncJob struct {
	Identity federate.Options
	Items    []mirror.Item
	Lock     *mirror.Lock
	Locked   bool // copy the digests the lock recorded
	// Keychain builds the sources' keychain once the ci identity is known.
	Keychain    func(ctx context.Context, sess *federate.Session) (authn.Keychain, error)
	Settings    Settings
	Upload      Upload
	Replication Replication
	// Referrers selects what travels with each image from its source (supplychain.None(): nothing).
	Referrers supplychain.Selection
	// Report is called after each image.
	Report func(mirror.Result)
}

// Sync runs the pipeline for a mirror file: identity, the replication plan (read only), the rule (when
// asked), then every image (pushed with the same settings as push's, replicated as push replicates).
func Sync(ctx context.Context, env Env, job SyncJob) ([]mirror.Result, *mirror.Lock, error) {
	sess, err := Identity(ctx, env, job.Identity)
	if err != nil {
		return nil, nil, err
	}
	kc, err := job.Keychain(ctx, sess)
	if err != nil {
		return nil, nil, err
	}
	prefix := job.Replication.Prefix
	if prefix == "" {
		var repos []string
		for _, it := range job.Items {
			repos = append(repos, it.Repository)
		}
		prefix = mirror.CommonPrefix(repos)
	}
	if prefix == "" && len(job.Replication.To) > 0 && job.Replication.Mode == replicate.ModeNative {
		return nil, nil, fixable.New("the mirrored repositories share no prefix for a replication rule: set --replication-prefix (or a repository rule like mirror/{registry}/{path})")
	}
	rj := job.Replication
	rj.Prefix = prefix
	rp, err := PlanReplication(ctx, env, sess, rj, job.Settings, prefix, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	if _, err := rp.Apply(ctx); err != nil {
		return nil, nil, err
	}
	uploadOpts := uploadOptions(env, job.Upload)
	pushOpts := append(job.Settings.Options(), uploadOpts...)
	o := mirror.Options{
		Session:         sess,
		Keychain:        kc,
		PushOptions:     pushOpts,
		Logger:          env.logger(),
		Report:          job.Report,
		RestoreArchived: job.Replication.RestoreArchived,
	}
	if rp != nil {
		o.Replicate = func(ctx context.Context, repo string, art *push.Artifact, res *push.Result) ([]replicate.Status, error) {
			return rp.Replicate(ctx, env, repo, art, res, uploadOpts)
		}
	}
	if job.Locked {
		o.Pinned = job.Lock
	}
	if !job.Referrers.None() {
		o.Referrers = func(ctx context.Context, src push.Source, art *push.Artifact, pub push.Publisher) error {
			refs, err := push.Referrers(ctx, src, art)
			if err != nil {
				return err
			}
			_, err = supplychain.Push(ctx, pub, refs, job.Referrers)
			return err
		}
	}
	return mirror.Sync(ctx, job.Items, job.Lock, o)
}

package cli

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/platform"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/internal/replicate"
)

// replicationFlags are push's replication flags.
type replicationFlags struct {
	to        listFlag
	mode      string
	configure bool
	prefix    string
	timeout   time.Duration
	roleName  string
}

func (r *replicationFlags) register(fs *flag.FlagSet) {
	fs.Var(&r.to, "replicate-to", "destinations ACCOUNT:REGION or REGION (same account), comma-separated or repeated; copy mode may add =ROLE_ARN")
	fs.StringVar(&r.mode, "replication", replicate.ModeNative, "how images reach the destinations: native (ECR replication), copy, or off")
	fs.BoolVar(&r.configure, "configure-replication", false, "merge the missing replication rule into the ci registry's configuration")
	fs.StringVar(&r.prefix, "replication-prefix", "", "repository prefix of the replication rule (default: the repository)")
	fs.DurationVar(&r.timeout, "replication-timeout", 10*time.Minute, "how long to wait for native replication")
	fs.StringVar(&r.roleName, "destination-role-name", "", "role name to use in every destination account for copying (federated with the same identity)")
}

func (r *replicationFlags) validate(otherRegistry bool) error {
	switch r.mode {
	case replicate.ModeNative, replicate.ModeCopy, "off":
	default:
		return fixable.New("--replication %q is not one of native, copy, off", r.mode)
	}
	if len(r.to) > 0 && otherRegistry {
		return fixable.New("--replicate-to needs an ECR destination: drop it, or push with --repository")
	}
	if r.timeout <= 0 {
		return fixable.New("--replication-timeout %s must be positive, e.g. 10m", r.timeout)
	}
	if r.prefix != "" {
		if err := replicate.ValidatePrefix(r.prefix); err != nil {
			return err
		}
	}
	if len(r.to) > 0 {
		// Syntax only: the ci account and region are known after federation.
		if _, err := replicate.ParseDestinations(r.to, "000000000000", "xx-none-0", r.roleName); err != nil {
			return err
		}
	}
	return nil
}

// replicationPlan is what prepare decided, finished after the push.
type replicationPlan struct {
	f     *replicationFlags
	sess  *federate.Session
	repo  string
	dests []replicate.Destination
	log   *slog.Logger
}

// prepare parses the destinations for the ci account and, in native mode, makes sure the ci registry's
// rules cover them — merging a rule with --configure-replication — before anything is pushed.
func (r *replicationFlags) prepare(ctx context.Context, sess *federate.Session, repo string, stdio IO, log *slog.Logger) (*replicationPlan, error) {
	p := &replicationPlan{f: r, sess: sess, repo: repo, log: log}
	if len(r.to) == 0 || r.mode == "off" {
		return p, nil
	}
	region := sess.Config.Region
	dests, err := replicate.ParseDestinations(r.to, sess.Account, region, r.roleName)
	if err != nil {
		return nil, err
	}
	p.dests = dests
	if r.mode != replicate.ModeNative {
		return p, nil
	}
	prefix := r.prefix
	if prefix == "" {
		prefix = repo
	}
	_, err = replicate.Configure(ctx, ecr.NewFromConfig(sess.Config), prefix, dests, replicate.ConfigureOptions{
		Apply: r.configure, SourceAccount: sess.Account, SourceRegion: region, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// finish replicates the pushed image and returns one row per destination.
func (p *replicationPlan) finish(ctx context.Context, art *push.Artifact, res *push.Result, tags []string) ([]platform.Replica, error) {
	if len(p.dests) == 0 {
		return nil, nil
	}
	existed := len(res.TagsUnchanged) == len(res.Tags)
	sts, err := replicate.Run(ctx, replicate.Options{
		Mode:         p.f.mode,
		Session:      p.sess,
		Repository:   p.repo,
		Digest:       res.Digest.String(),
		Tags:         tags,
		Artifact:     art,
		Existed:      existed,
		Destinations: p.dests,
		Timeout:      p.f.timeout,
		Logger:       p.log,
	})
	return sts, err
}

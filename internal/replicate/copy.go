package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/push"
)

// CopyOptions describe a copy of one image to several registries.
type CopyOptions struct {
	Session *federate.Session
	// Artifact is what to copy; nil reads Repository@Digest from the ci registry (Session.Config's region).
	Artifact   *push.Artifact
	Repository string // the repository name in every destination (and in the ci registry)
	Digest     string // required without Artifact
	Tags       []string
	// Destinations to copy to; each needs a RoleARN unless it is in the session's account.
	Destinations []Destination
	// PushOptions are passed to every push.NewECR (jobs, progress, retries, ...).
	PushOptions []push.Option
	// Settings decide how a missing destination repository is created (mutability, scan on push, KMS key
	// per destination, lifecycle policy, tags) and whether it may be (Create); nil leaves it to
	// PushOptions and push's defaults.
	Settings *RepositorySettings
	// RestoreArchived restores an archived source or destination image instead of failing.
	RestoreArchived bool
	// DestinationClient overrides how destination ECR clients are made (tests).
	DestinationClient DestinationClientFunc
	// SpoolDir is where the source's layers are kept while copying (default os.TempDir()). NoSpool reads
	// the artifact directly from every destination's upload, for artifacts already in local files.
	SpoolDir string
	NoSpool  bool
	Jobs     int // layers read from the source at once (default 4)
	Logger   *slog.Logger
}

// Copy pushes the image to every destination registry in parallel, reading the source once, and returns one
// Status per destination (COPIED, or FAILED with FailureCopy) in order, with an error naming every failure.
func Copy(ctx context.Context, o CopyOptions) ([]Status, error) {
	if o.Session == nil {
		return nil, errors.New("replicate: Copy needs a federated session")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Artifact == nil && o.Digest == "" {
		return nil, errors.New("replicate: Copy needs an Artifact or a Digest")
	}
	digest := o.Digest
	if o.Artifact != nil {
		digest = o.Artifact.Digest.String()
	}
	sts := make([]Status, len(o.Destinations))
	for i, d := range o.Destinations {
		sts[i] = Status{Account: d.Account, Region: d.Region, URI: d.Host() + "/" + o.Repository + "@" + digest, Status: StatusFailed, FailureCode: FailureCopy}
	}
	if len(o.Destinations) == 0 {
		return sts, nil
	}
	start := time.Now()
	errs := make([]error, len(o.Destinations))

	// Credentials and publishers for every destination at once: each is an STS and an ECR round trip.
	dc := newDestClients(o.Session, o.DestinationClient)
	pubs := make([]push.Publisher, len(o.Destinations))
	var wg sync.WaitGroup
	for i, d := range o.Destinations {
		wg.Go(func() {
			pubs[i], errs[i] = o.publisher(ctx, dc, d, digest)
			if errors.As(errs[i], new(*ArchivedError)) {
				sts[i].FailureCode = FailureArchived
			}
		})
	}
	var art *push.Artifact
	var artErr error
	wg.Go(func() {
		art = o.Artifact
		if art == nil {
			ci := ecr.NewFromConfig(o.Session.Config)
			if _, artErr = EnsurePullable(ctx, ci, "the ci registry", "", o.Repository, o.Digest, o.RestoreArchived, 0); artErr != nil {
				return
			}
			art, artErr = readECR(ctx, regionCfg(o.Session.Config), o.Repository, o.Digest)
		}
	})
	wg.Wait()
	defer func() {
		for _, p := range pubs {
			if p != nil {
				_ = p.Close()
			}
		}
	}()
	if artErr != nil {
		return sts, artErr
	}
	if !o.NoSpool {
		spooled, cleanup, err := spoolArtifact(ctx, art, o.SpoolDir, max(o.Jobs, 4))
		if err != nil {
			return sts, err
		}
		defer cleanup()
		art = spooled
	}

	publish(ctx, o, art, digest, pubs, sts, errs)
	var out []error
	for i, err := range errs {
		if err != nil {
			out = append(out, fmt.Errorf("copy to %s: %w", o.Destinations[i], err))
		} else if sts[i].Status == StatusCopied && sts[i].Seconds == 0 {
			sts[i].Seconds = time.Since(start).Seconds()
		}
	}
	return sts, errors.Join(out...)
}

// publisher makes the publisher for one destination: its credentials, a check that the digest is not
// archived there, its repository created with the settings, then push.NewECR.
func (o CopyOptions) publisher(ctx context.Context, dc *destClients, d Destination, digest string) (push.Publisher, error) {
	cfg, err := dc.config(ctx, d)
	if err != nil {
		return nil, err
	}
	c, err := dc.get(ctx, d)
	if err != nil {
		return nil, err
	}
	// A destination holding the digest archived is not served by a push that finds it "there".
	if _, err := EnsurePullable(ctx, c, d.String(), "", o.Repository, digest, o.RestoreArchived, 0); err != nil {
		return nil, err
	}
	opts := append([]push.Option{}, o.PushOptions...)
	if o.Jobs > 0 {
		opts = append(opts, push.WithJobs(o.Jobs))
	}
	if o.Settings != nil {
		if err := EnsureRepository(ctx, c, d, o.Repository, *o.Settings, o.Logger); err != nil {
			return nil, err
		}
		opts = append(opts, o.Settings.PushOptions(d)...)
	}
	opts = append(opts, push.WithLogger(o.Logger.With("destination", d.String())))
	return push.NewECR(ctx, cfg, o.Repository, opts...)
}

// publish pushes art to every destination that has a publisher and records each outcome.
func publish(ctx context.Context, o CopyOptions, art *push.Artifact, digest string, pubs []push.Publisher, sts []Status, errs []error) {
	var live []push.Publisher
	var liveIdx []int
	for i, p := range pubs {
		if p != nil {
			live = append(live, p)
			liveIdx = append(liveIdx, i)
		}
	}
	if len(live) == 0 {
		return
	}
	o.Logger.Info("copying to destinations", "image", o.Repository+"@"+digest, "destinations", len(live))
	res, err := push.MultiPublisher(live...).Publish(ctx, art, o.Tags)
	perDest := splitJoined(err, live)
	for n, i := range liveIdx {
		if res != nil && n < len(res.Destinations) && res.Destinations[n] != nil {
			r := res.Destinations[n]
			sts[i].Status, sts[i].FailureCode, sts[i].URI, sts[i].Seconds = StatusCopied, "", r.Ref, r.Seconds
			continue
		}
		switch {
		case perDest[n] != nil:
			errs[i] = perDest[n]
		case err != nil && res == nil:
			errs[i] = errors.New("not copied: another destination failed its checks, so nothing was written anywhere")
		case err != nil:
			errs[i] = err
		}
	}
}

// regionCfg is cfg unchanged (a copy, so callers may change the region).
func regionCfg(cfg aws.Config) aws.Config { return cfg.Copy() }

// splitJoined maps MultiPublisher's joined error ("DEST: err" per destination) back to its publishers.
func splitJoined(err error, pubs []push.Publisher) []error {
	out := make([]error, len(pubs))
	if err == nil {
		return out
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		for i, p := range pubs {
			s, ok := p.(fmt.Stringer)
			if ok && out[i] == nil && strings.HasPrefix(e.Error(), s.String()+": ") {
				out[i] = e
				break
			}
		}
	}
	return out
}

// EnsureRepository creates repo in d's registry (c holds d's credentials) with the settings when it is
// missing and Create allows it: CreateRepository (mutability, scan on push, d's KMS key, tags), then
// PutLifecyclePolicy. An existing repository is left as it is (its settings are its owner's). Copy mode
// uses it for every destination; it serves the ci repository as well.
func EnsureRepository(ctx context.Context, c DestinationAPI, d Destination, repo string, s RepositorySettings, log *slog.Logger) error {
	_, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
	switch ecrx.Code(err) {
	case "":
		return nil
	case "RepositoryNotFoundException":
	default:
		return ecrx.APIError(err, "ecr DescribeRepositories "+repo+" in "+d.String())
	}
	if !s.Create {
		return fixable.Wrap(err, fmt.Sprintf("ECR repository %s does not exist in %s and creating it is disabled (--create-repository=false): create it there (aws ecr create-repository --repository-name %s --region %s) or allow creation",
			repo, d, repo, d.Region))
	}
	in := &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo), ImageTagMutability: types.ImageTagMutabilityMutable,
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: s.ScanOnPush}}
	if s.TagImmutability {
		in.ImageTagMutability = types.ImageTagMutabilityImmutable
	}
	if k, ok := s.KMSFor(d); ok {
		in.EncryptionConfiguration = &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms}
		if k.Key != "" {
			in.EncryptionConfiguration.KmsKey = aws.String(k.Key)
		}
		if k.Note != "" {
			log.Warn("KMS key for a copy destination", "destination", d.String(), "note", k.Note)
		}
	}
	for _, t := range s.Tags {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
	}
	_, err = c.CreateRepository(ctx, in)
	switch code := ecrx.Code(err); {
	case err == nil:
		log.Info("created ECR repository", "destination", d.String(), "repository", repo, "settings", s.Describe())
	case code == "RepositoryAlreadyExistsException":
		return nil // another job created it first: its settings stand
	case code == "AccessDeniedException":
		return fixable.Wrap(err, fmt.Sprintf("ECR repository %s does not exist in %s and %s may not create it (ecr:CreateRepository denied): grant it, or create the repository there", repo, d, d.RoleARN))
	case code == "InvalidParameterException" || code == "KmsException" || code == "InvalidTagParameterException" || code == "TooManyTagsException":
		return fixable.Wrap(err, fmt.Sprintf("ECR refused to create %s in %s (%s): fix the repository settings (KMS key, tags)", repo, d, ecrx.Message(err)))
	default:
		return ecrx.APIError(err, "ecr CreateRepository "+repo+" in "+d.String())
	}
	if s.LifecyclePolicy != "" {
		if _, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String(repo), LifecyclePolicyText: aws.String(s.LifecyclePolicy)}); err != nil {
			msg := fmt.Sprintf("created %s in %s, but ECR refused its lifecycle policy (%s): fix the policy and set it there (aws ecr put-lifecycle-policy --repository-name %s --region %s --lifecycle-policy-text file://policy.json)",
				repo, d, ecrx.Message(err), repo, d.Region)
			if ecrx.Code(err) == "InvalidParameterException" || ecrx.Code(err) == "AccessDeniedException" {
				return fixable.Wrap(err, msg)
			}
			return fmt.Errorf("%s: %w", msg, err)
		}
	}
	return nil
}

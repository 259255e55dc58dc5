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

	"github.com/ecrpush/ecrpush/internal/federate"
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
	// PushOptions are passed to every push.NewECR (jobs, progress, repository settings, ...).
	PushOptions []push.Option
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
	creds := newCredentials(o.Session)
	pubs := make([]push.Publisher, len(o.Destinations))
	var wg sync.WaitGroup
	for i, d := range o.Destinations {
		wg.Go(func() {
			cfg, err := creds.forDest(ctx, d)
			if err != nil {
				errs[i] = err
				return
			}
			opts := append(append([]push.Option{}, o.PushOptions...), push.WithLogger(o.Logger.With("destination", d.String())))
			pubs[i], errs[i] = push.NewECR(ctx, cfg, o.Repository, opts...)
		})
	}
	var art *push.Artifact
	var artErr error
	wg.Go(func() {
		art = o.Artifact
		if art == nil {
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

	var live []push.Publisher
	var liveIdx []int
	for i, p := range pubs {
		if p != nil {
			live = append(live, p)
			liveIdx = append(liveIdx, i)
		}
	}
	if len(live) > 0 {
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

package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/push"
)

// Modes of --replication.
const (
	ModeNative = "native"
	ModeCopy   = "copy"
	ModeOff    = "off"
)

// Options describe the replication of one pushed image.
type Options struct {
	Mode    string // ModeNative or ModeCopy
	Session *federate.Session
	// Client talks to the ci registry (default ecr.NewFromConfig(Session.Config)).
	Client     ECRAPI
	Repository string
	Digest     string
	Tags       []string
	// Artifact is what was pushed, for copying (nil: read back from the ci registry).
	Artifact *push.Artifact
	// Existed says the digest was in the repository before this push (nothing was written), so no push
	// event replicates it: native mode backfills the destinations ECR does not report.
	Existed      bool
	Destinations []Destination
	Timeout      time.Duration // native: how long to wait for ECR (default DefaultTimeout)
	WaitOptions  []WaitOption
	// PushOptions are the upload options of copy mode (jobs, progress, retries); Settings, when given,
	// decide the settings of the destination repositories copy mode creates.
	PushOptions []push.Option
	Settings    *RepositorySettings
	Jobs        int // copy mode: layers read from the source at once (default 4)
	SpoolDir    string
	NoSpool     bool
	// RestoreArchived restores an archived image (the copy source, or a destination's) instead of failing.
	RestoreArchived bool
	// NoBackfill keeps native mode from starting backfills: an image that predates its rule is then
	// copied where a role allows, else reported.
	NoBackfill bool
	// NoVerify skips reading the destinations back after ECR reports COMPLETE.
	NoVerify bool
	// DestinationClient overrides how destination clients are made (tests).
	DestinationClient DestinationClientFunc
	Logger            *slog.Logger
}

// Run replicates a pushed image and returns one Status per destination in order. Native: wait for ECR
// (tracking the digest and each tag), backfill the destinations an image that predates its rule has not
// reached, then read every destination back (Verify). Copy: push to every destination with its own
// credentials, creating repositories with Settings.
func Run(ctx context.Context, o Options) ([]Status, error) {
	if o.Session == nil {
		return nil, errors.New("replicate: Run needs a federated session")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	copyOpts := CopyOptions{Session: o.Session, Artifact: o.Artifact, Repository: o.Repository, Digest: o.Digest, Tags: o.Tags,
		PushOptions: o.PushOptions, Settings: o.Settings, Jobs: o.Jobs, SpoolDir: o.SpoolDir, NoSpool: o.NoSpool,
		RestoreArchived: o.RestoreArchived, DestinationClient: o.DestinationClient, Logger: o.Logger}
	switch o.Mode {
	case ModeCopy:
		copyOpts.Destinations = o.Destinations
		return Copy(ctx, copyOpts)
	case ModeNative, "":
	default:
		return nil, fixable.New("--replication %q is not one of native, copy, off", o.Mode)
	}
	client := o.Client
	if client == nil {
		client = ecr.NewFromConfig(o.Session.Config)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	start := time.Now()
	wopts := append([]WaitOption{WithExisted(o.Existed), WithBackfill(!o.NoBackfill), WithTags(o.Tags),
		WithSourceAccount(o.Session.Account), WithWaitLogger(o.Logger)}, o.WaitOptions...)
	sts, err := Wait(ctx, client, o.Repository, o.Digest, o.Destinations, o.Timeout, wopts...)
	var we *WaitError
	if errors.As(err, &we) && len(we.Preexisting) > 0 {
		sts, err = fallbackCopy(ctx, o, copyOpts, sts, we)
	}
	if o.NoVerify || ctx.Err() != nil {
		return sts, err
	}
	var wo waitOptions
	for _, opt := range wopts {
		opt(&wo)
	}
	remaining := o.Timeout - time.Since(start)
	verr := verify(ctx, newDestClients(o.Session, o.DestinationClient), o.Repository, o.Digest, o.Tags, o.Destinations, sts,
		VerifyOptions{Timeout: max(remaining, 10*time.Second), Interval: wo.interval, RestoreArchived: o.RestoreArchived})
	return sts, errors.Join(err, verr)
}

// fallbackCopy copies, where credentials allow, an image that predates its rule to the destinations ECR
// never reported (backfill off).
func fallbackCopy(ctx context.Context, o Options, copyOpts CopyOptions, sts []Status, we *WaitError) ([]Status, error) {
	var copyTo, stuck []Destination
	for _, d := range we.Preexisting {
		if CanCopy(d, o.Session.Account) {
			copyTo = append(copyTo, d)
		} else {
			stuck = append(stuck, d)
		}
	}
	var copyErr error
	if len(copyTo) > 0 {
		o.Logger.Warn("ECR will not replicate an image pushed before its rule and backfill is off; copying it", "destinations", destList(copyTo))
		copyOpts.Destinations = copyTo
		if copyOpts.Digest == "" && copyOpts.Artifact == nil {
			copyOpts.Digest = o.Digest
		}
		var copied []Status
		copied, copyErr = Copy(ctx, copyOpts)
		for _, c := range copied {
			for i := range sts {
				if sts[i].Account == c.Account && sts[i].Region == c.Region {
					sts[i] = c
				}
			}
		}
	}
	rest := *we
	rest.Preexisting = stuck
	rest.Statuses = sts
	var errs []error
	if len(rest.Failed)+len(rest.Pending)+len(rest.Missing)+len(rest.Preexisting) > 0 {
		if rest.fixable() {
			errs = append(errs, fixable.Wrap(&rest, ""))
		} else {
			errs = append(errs, &rest)
		}
	}
	if copyErr != nil {
		errs = append(errs, fmt.Errorf("fallback copy of %s@%s: %w", o.Repository, o.Digest, copyErr))
	}
	return sts, errors.Join(errs...)
}

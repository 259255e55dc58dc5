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
	// Existed says the digest was in the repository before this push (nothing was written), so ECR
	// will not replicate it: destinations ECR never reports are copied when credentials allow.
	Existed      bool
	Destinations []Destination
	Timeout      time.Duration // native: how long to wait for ECR (default 10m)
	WaitOptions  []WaitOption
	PushOptions  []push.Option
	SpoolDir     string
	NoSpool      bool
	Logger       *slog.Logger
}

// Run replicates a pushed image: natively (wait for ECR, then copy what ECR will not replicate because the
// image pre-existed) or by copying. It returns one Status per destination in order.
func Run(ctx context.Context, o Options) ([]Status, error) {
	if o.Session == nil {
		return nil, errors.New("replicate: Run needs a federated session")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	copyOpts := CopyOptions{Session: o.Session, Artifact: o.Artifact, Repository: o.Repository, Digest: o.Digest, Tags: o.Tags,
		PushOptions: o.PushOptions, SpoolDir: o.SpoolDir, NoSpool: o.NoSpool, Logger: o.Logger}
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
		o.Timeout = 10 * time.Minute
	}
	wopts := append([]WaitOption{WithExisted(o.Existed), WithSourceAccount(o.Session.Account), WithWaitLogger(o.Logger)}, o.WaitOptions...)
	sts, err := Wait(ctx, client, o.Repository, o.Digest, o.Destinations, o.Timeout, wopts...)
	var we *WaitError
	if err == nil || !errors.As(err, &we) || len(we.Preexisting) == 0 {
		return sts, err
	}
	// Fallback: ECR will never replicate an image that existed before its rule; copy it where we can.
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
		o.Logger.Warn("ECR will not replicate an image pushed before its rule; copying it", "destinations", destList(copyTo))
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

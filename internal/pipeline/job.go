package pipeline

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/platform"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/internal/supplychain"
)

// Settings are the repository settings every ECR repository ecrpush creates or has created gets: the ci
// repository, copy-mode destinations, the creation templates native replication applies, and sync's
// repositories alike, from this one value (create, tag immutability, scan on push, KMS key, and for the
// destinations the lifecycle policy, tags, per-destination keys and the template role).
type Settings struct {
	replicate.RepositorySettings
}

// Options are the push options that create the ci repository with the settings.
func (s Settings) Options() []push.Option {
	return []push.Option{push.WithCreateRepository(s.Create), push.WithTagImmutability(s.TagImmutability),
		push.WithScanOnPush(s.ScanOnPush), push.WithKMSKey(s.KMSKey)}
}

// Upload are the transfer options, the same for every destination (and, for retries, the source).
type Upload struct {
	Jobs    int // parallel blob uploads
	Retries int // sends of one request in all (push.WithRetry); 0: the default
}

// Options are the push options that carry the upload settings.
func (u Upload) Options() []push.Option {
	var o []push.Option
	if u.Jobs > 0 {
		o = append(o, push.WithJobs(u.Jobs))
	}
	if u.Retries > 0 {
		o = append(o, push.WithRetry(u.Retries))
	}
	return o
}

// SourceOptions are the source options that carry the upload settings (reads retry like writes).
func (u Upload) SourceOptions() []push.SourceOption {
	if u.Retries > 0 {
		return []push.SourceOption{push.WithSourceRetry(u.Retries)}
	}
	return nil
}

// Replication is what to do beyond the ci registry.
type Replication struct {
	To        []string // --replicate-to specs, parsed once the ci account is known
	Mode      string   // replicate.ModeNative, ModeCopy or "off"
	Configure bool     // merge a missing rule into the ci registry's configuration
	Prefix    string   // rule prefix (default: the repository)
	Timeout   time.Duration
	RoleName  string // role in every destination account, for copy mode and reading destinations
	// RestoreArchived restores an archived image (copy source, destination) instead of failing.
	RestoreArchived bool
}

// Job is one push: everything the pipeline needs, already validated by the command.
type Job struct {
	Identity      federate.Options
	Source        string
	SourceOptions []push.SourceOption
	// SourceKeychain, when set, builds the keychain registry sources are read with, once the ci
	// identity is known (Google credentials from AWS sign with the same AWS credentials).
	SourceKeychain func(ctx context.Context, sess *federate.Session) (authn.Keychain, error)
	Repository     string   // ECR repository in the ci registry ("" with Destinations)
	Destinations   []string // full REGISTRY/REPOSITORY references (any registry; one ECR at most)
	Tags           []string
	Settings       Settings
	Upload         Upload
	Replication    Replication
	// SupplyChain: which referrers travel, what must be verified, the findings gate.
	SupplyChain supplychain.Options
	Platform    string // --platform, for the warning about attestations it leaves out
	DryRun      bool
}

// Env is the edge the pipeline reports to: set up once per command.
type Env struct {
	Platform platform.Platform
	Log      *slog.Logger
	// Progress, when set, receives the transfer progress (a terminal line, or periodic log lines).
	Progress io.Writer
	Terminal bool
	// Out receives the dry-run plan.
	Out io.Writer
}

func (e *Env) logger() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

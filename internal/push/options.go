package push

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/internal/progress"
)

// DefaultJobs is how many blobs one Publish uploads at once (per destination). BenchmarkJobs
// (bench_test.go) pushes a 16-layer 32 MiB image into an in-process registry on 127.0.0.1 (2
// cores): with no latency jobs 1..16 all land at 340-540 MB/s (CPU-bound, within noise); with a
// 20 ms round trip per request 1/2/4/8/16 give 21/35/54/75/92 MB/s. On a far link every wave of
// uploads costs two round trips (POST, then PUT with the blob; the existence checks are all made up front),
// so jobs should cover a whole image at once: bench/run.sh's 60-small-layer image over a 50 ms
// link takes 1.9 s at 8, 1.3 s at 16 and 0.9 s at 32, and a 16-layer one fits one wave at 16.
// 16 keeps the connections to one registry modest; --jobs raises it for wide images.
const DefaultJobs = 16

// DefaultManifestRate is the manifest PUTs per second per ECR registry host (ECR's PutImage
// quota). Other registries are not held to it unless WithManifestRate says so.
const DefaultManifestRate = 10.0

// Option configures a Publisher. Options validate their argument and NewECR/NewRegistry return
// the first error.
type Option func(*options) error

type options struct {
	jobs          int
	log           *slog.Logger
	progress      *progress.Renderer
	transport     http.RoundTripper
	manifestRate  float64
	rateSet       bool // WithManifestRate was given
	retries       int
	retryBudget   time.Duration
	retryPause    time.Duration // before the second send (×2 for each next one)
	headerTimeout time.Duration
	stallTimeout  time.Duration
	verify        bool
	userAgent     string
	immutable     bool

	// ECR only.
	create          bool
	tagImmutability bool
	scanOnPush      bool
	kmsKey          string
	registryID      string
	now             func() time.Time
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		jobs:          DefaultJobs,
		log:           slog.New(slog.DiscardHandler),
		transport:     remote.DefaultTransport,
		manifestRate:  DefaultManifestRate,
		retries:       DefaultRetries,
		retryBudget:   DefaultRetryBudget,
		retryPause:    500 * time.Millisecond,
		headerTimeout: DefaultHeaderTimeout,
		stallTimeout:  DefaultStallTimeout,
		verify:        true,
		userAgent:     "ecrpush",
		create:        true,
		scanOnPush:    true,
		now:           time.Now,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithJobs sets how many blobs upload at once (1..64; default DefaultJobs).
func WithJobs(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 64 {
			return fmt.Errorf("push: jobs must be between 1 and 64, got %d", n)
		}
		o.jobs = n
		return nil
	}
}

// WithLogger sets the structured logger (default: discard). Credentials are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("push: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithProgress reports upload progress to w: a redrawn one-line bar when terminal is true, else one
// line every 5 seconds (for CI logs). Publishers given the same w share one display.
func WithProgress(w io.Writer, terminal bool) Option {
	return func(o *options) error {
		if w == nil {
			return errors.New("push: nil progress writer")
		}
		o.progress = progress.For(w, terminal)
		return nil
	}
}

// WithTransport sets the base HTTP transport under the retry, auth and rate-limit layers
// (default remote.DefaultTransport).
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) error {
		if rt == nil {
			return errors.New("push: nil transport")
		}
		o.transport = rt
		return nil
	}
}

// WithManifestRate sets manifest PUTs per second per registry host (default: 10 for ECR,
// unlimited elsewhere; 0 = unlimited).
func WithManifestRate(perSecond float64) Option {
	return func(o *options) error {
		if perSecond < 0 {
			return fmt.Errorf("push: manifest rate must be >= 0, got %v", perSecond)
		}
		o.manifestRate, o.rateSet = perSecond, true
		return nil
	}
}

// WithRetry sets how many times one request is sent in all (1..10; default DefaultRetries):
// WithRetry(1) never resends. Only throttles (408, 429), 5xx answers, dropped connections and
// stalls are resent, 0.5 s, 1 s, 2 s, 4 s … apart (±20 %), or after the registry's Retry-After
// when it is longer. A blob upload whose body fails starts over with a new upload session, its
// body request likewise sent at most n times.
func WithRetry(sends int) Option {
	return func(o *options) error {
		if sends < 1 || sends > 10 {
			return fmt.Errorf("push: retries must be between 1 and 10 sends, got %d", sends)
		}
		o.retries = sends
		return nil
	}
}

// WithRetryBudget bounds the time one Publish may spend in trouble — failed sends and the pauses
// before resending, counted once however many requests fail together — (default
// DefaultRetryBudget). A pause (or a Retry-After) that would overrun what is left is not taken:
// the request fails at once, saying so.
func WithRetryBudget(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("push: retry budget must be positive, got %s", d)
		}
		o.retryBudget = d
		return nil
	}
}

// withRetryPause sets the pause before the second send (tests; default 0.5 s).
func withRetryPause(d time.Duration) Option {
	return func(o *options) error { o.retryPause = d; return nil }
}

// withTimeouts sets the header and stall timeouts (tests; defaults DefaultHeaderTimeout and
// DefaultStallTimeout).
func withTimeouts(headers, stall time.Duration) Option {
	return func(o *options) error { o.headerTimeout, o.stallTimeout = headers, stall; return nil }
}

// policy is the retry policy of one Publish at this destination: its budget starts full.
func (o *options) policy() *retryPolicy {
	return newRetryPolicy("destination", o.retries, o.retryPause, o.retryBudget, o.headerTimeout, o.stallTimeout, o.log)
}

// WithVerify turns the read-back of every tag after the push on or off (default on).
func WithVerify(on bool) Option {
	return func(o *options) error { o.verify = on; return nil }
}

// WithUserAgent sets the User-Agent prefix sent to registries.
func WithUserAgent(ua string) Option {
	return func(o *options) error { o.userAgent = ua; return nil }
}

// WithImmutableTags declares that the destination refuses to move a tag (for registries other
// than ECR, which reports it itself): an existing tag with another digest is then an error, raised
// before anything is written.
func WithImmutableTags(on bool) Option {
	return func(o *options) error { o.immutable = on; return nil }
}

// WithCreateRepository lets NewECR create a missing repository (default true).
func WithCreateRepository(on bool) Option {
	return func(o *options) error { o.create = on; return nil }
}

// WithTagImmutability makes a repository NewECR creates IMMUTABLE (default MUTABLE).
func WithTagImmutability(on bool) Option {
	return func(o *options) error { o.tagImmutability = on; return nil }
}

// WithScanOnPush sets scan-on-push for a repository NewECR creates (default true).
func WithScanOnPush(on bool) Option {
	return func(o *options) error { o.scanOnPush = on; return nil }
}

// WithKMSKey encrypts a repository NewECR creates with this KMS key (ARN, ID or alias; default
// AES256).
func WithKMSKey(key string) Option {
	return func(o *options) error { o.kmsKey = key; return nil }
}

// WithRegistryID targets another account's registry (12 digits; default the caller's own).
func WithRegistryID(id string) Option {
	return func(o *options) error {
		if len(id) != 12 || !isDigits(id) {
			return fmt.Errorf("push: registry ID must be 12 digits, got %q", id)
		}
		o.registryID = id
		return nil
	}
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// withClock replaces the clock the ECR keychain measures token age with (tests).
func withClock(now func() time.Time) Option {
	return func(o *options) error { o.now = now; return nil }
}

package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/google"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Source is where an artifact comes from. Load may be called more than once and returns the same
// artifact; files it spools (daemon exports, extracted archives, compressed layers) live until Close.
type Source interface {
	Load(ctx context.Context) (*Artifact, error)
	String() string
	Close() error
}

// SourceOption configures ParseSource.
type SourceOption func(*sourceOptions) error

type sourceOptions struct {
	platform   *v1.Platform
	spoolDir   string
	keychain   authn.Keychain
	transport  http.RoundTripper
	dockerHost string
	jobs       int
	log        *slog.Logger
	level      int // gzip level for layers this process compresses

	retries       int
	retryBudget   time.Duration
	retryPause    time.Duration
	headerTimeout time.Duration
	stallTimeout  time.Duration
}

// policy is the retry policy for one load from a registry source: the same rules as a push's.
func (o *sourceOptions) policy() *retryPolicy {
	return newRetryPolicy("source", o.retries, o.retryPause, o.retryBudget, o.headerTimeout, o.stallTimeout, o.log)
}

// WithPlatform makes Load return the one image for p out of an index (without it an index is
// loaded whole, and pushed with its digest unchanged).
func WithPlatform(p v1.Platform) SourceOption {
	return func(o *sourceOptions) error {
		if p.OS == "" || p.Architecture == "" {
			return fixable.New("platform %q is not OS/ARCH[/VARIANT]", p.String())
		}
		o.platform = &p
		return nil
	}
}

// WithSpoolDir sets where daemon exports, extracted archives and compressed layers are spooled
// (default os.TempDir()). Each source makes its own subdirectory and removes it on Close.
func WithSpoolDir(dir string) SourceOption {
	return func(o *sourceOptions) error { o.spoolDir = dir; return nil }
}

// WithSourceKeychain sets the credentials for a remote source (default: Docker config plus Google).
func WithSourceKeychain(kc authn.Keychain) SourceOption {
	return func(o *sourceOptions) error {
		if kc == nil {
			return errors.New("push: nil keychain")
		}
		o.keychain = kc
		return nil
	}
}

// WithSourceTransport sets the HTTP transport for a remote source.
func WithSourceTransport(rt http.RoundTripper) SourceOption {
	return func(o *sourceOptions) error {
		if rt == nil {
			return errors.New("push: nil transport")
		}
		o.transport = rt
		return nil
	}
}

// WithDockerHost overrides DOCKER_HOST for docker-daemon: sources.
func WithDockerHost(host string) SourceOption {
	return func(o *sourceOptions) error { o.dockerHost = host; return nil }
}

// WithCompressJobs sets how many layers are gzip-compressed at once (default GOMAXPROCS).
func WithCompressJobs(n int) SourceOption {
	return func(o *sourceOptions) error {
		if n < 1 || n > 64 {
			return fmt.Errorf("push: compress jobs must be between 1 and 64, got %d", n)
		}
		o.jobs = n
		return nil
	}
}

// WithSourceRetry sets how many times one request to a registry source is sent in all (1..10;
// default DefaultRetries), by the rules of WithRetry: the same numbers mean the same on both sides.
func WithSourceRetry(sends int) SourceOption {
	return func(o *sourceOptions) error {
		if sends < 1 || sends > 10 {
			return fmt.Errorf("push: retries must be between 1 and 10 sends, got %d", sends)
		}
		o.retries = sends
		return nil
	}
}

// WithSourceRetryBudget bounds the time one load from a registry source may spend in trouble
// (default DefaultRetryBudget), as WithRetryBudget does for a push.
func WithSourceRetryBudget(d time.Duration) SourceOption {
	return func(o *sourceOptions) error {
		if d <= 0 {
			return fmt.Errorf("push: retry budget must be positive, got %s", d)
		}
		o.retryBudget = d
		return nil
	}
}

// withSourceTimeouts sets the source's header and stall timeouts, retry budget and first pause (tests).
func withSourceTimeouts(headers, stall, budget, pause time.Duration) SourceOption {
	return func(o *sourceOptions) error {
		o.headerTimeout, o.stallTimeout, o.retryBudget, o.retryPause = headers, stall, budget, pause
		return nil
	}
}

// WithSourceLogger sets the logger for sources (default: discard).
func WithSourceLogger(l *slog.Logger) SourceOption {
	return func(o *sourceOptions) error {
		if l == nil {
			return errors.New("push: nil logger")
		}
		o.log = l
		return nil
	}
}

// Transports are the source prefixes ParseSource knows; anything else is a registry reference.
var Transports = []string{"docker-daemon:", "oci-layout:", "docker-archive:", "oci-archive:"}

// unsupported are transports other tools (skopeo) accept that ecrpush does not.
var unsupported = []string{"containers-storage", "dir", "ostree", "sif", "tarball"}

// ParseSource reads a source reference:
//
//	docker-daemon:NAME[:TAG]             an image in the local Docker Engine (DOCKER_HOST)
//	oci-layout:DIR[:TAG|@DIGEST]         an OCI image layout directory ("oci:" is an alias)
//	docker-archive:FILE[:TAG]            a `docker save` tar
//	oci-archive:FILE[:TAG|@DIGEST]       a tar of an OCI image layout
//	[docker://]REGISTRY/REPO[:TAG|@DIGEST]  an image in a registry
//
// Bad references, missing files and unknown transports are fixable errors.
func ParseSource(ref string, opts ...SourceOption) (Source, error) {
	o := &sourceOptions{
		keychain:  authn.NewMultiKeychain(authn.DefaultKeychain, google.Keychain),
		transport: remote.DefaultTransport,
		jobs:      runtime.GOMAXPROCS(0),
		log:       slog.New(slog.DiscardHandler),
		level:     DefaultCompressionLevel,

		retries:       DefaultRetries,
		retryBudget:   DefaultRetryBudget,
		retryPause:    500 * time.Millisecond,
		headerTimeout: DefaultHeaderTimeout,
		stallTimeout:  DefaultStallTimeout,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.dockerHost == "" {
		o.dockerHost = os.Getenv("DOCKER_HOST")
	}
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, fixable.New("empty image source: give a registry reference or one of %s", strings.Join(Transports, ", "))
	}
	transport, rest, hasTransport := strings.Cut(ref, ":")
	if hasTransport {
		switch transport {
		case "docker-daemon":
			return newDaemonSource(rest, o)
		case "oci-layout", "oci":
			return newLayoutSource(rest, o)
		case "docker-archive":
			return newArchiveSource(rest, o)
		case "oci-archive":
			return newOCIArchiveSource(rest, o)
		case "docker":
			if r, ok := strings.CutPrefix(rest, "//"); ok {
				return newRemoteSource(r, o)
			}
		}
		for _, u := range unsupported {
			if transport == u {
				return nil, fixable.New("source transport %q is not supported: use one of %s or a registry reference", transport+":", strings.Join(Transports, ", "))
			}
		}
		if strings.HasPrefix(rest, "//") {
			return nil, fixable.New("source %q: unknown transport %q: use one of %s or a registry reference (REGISTRY/REPO:TAG)", ref, transport+"://", strings.Join(Transports, ", "))
		}
		// "docker-deamon:app" would otherwise be read as the Docker Hub image docker-deamon:app.
		for _, t := range Transports {
			if t = strings.TrimSuffix(t, ":"); t != transport && editDistance(t, transport) <= 2 {
				return nil, fixable.New("source %q: unknown transport %q (did you mean %s:?)", ref, transport+":", t)
			}
		}
	}
	return newRemoteSource(ref, o)
}

// pick applies the platform option to a loaded artifact.
func (o *sourceOptions) pick(a *Artifact) (*Artifact, error) {
	if o.platform == nil {
		return a, nil
	}
	return a.SelectPlatform(*o.platform)
}

// spool makes the source's private spool directory.
func (o *sourceOptions) spool(kind string) (string, error) {
	dir, err := os.MkdirTemp(o.spoolDir, "ecrpush-"+kind+"-")
	if err != nil {
		return "", fixable.Wrap(err, fmt.Sprintf("cannot create a spool directory in %q (%v): set TMPDIR or the spool directory to a writable place with room for the image", o.spoolDir, err))
	}
	return dir, nil
}

// remoteSource reads an image or index from a registry.
type remoteSource struct {
	ref   name.Reference
	o     *sourceOptions
	cache cached
}

func newRemoteSource(s string, o *sourceOptions) (Source, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("%q is neither a registry reference (%v) nor TRANSPORT:PATH with a transport among %s", s, err, strings.Join(Transports, ", ")))
	}
	return &remoteSource{ref: ref, o: o}, nil
}

func (s *remoteSource) String() string { return s.ref.String() }
func (s *remoteSource) Close() error   { return nil }

func (s *remoteSource) Load(ctx context.Context) (*Artifact, error) {
	return s.cache.get(func() (*Artifact, error) { return s.load(ctx) })
}

// load reads the manifest now and the blobs later, while they are pushed, all through one retrier
// (go-containerregistry's own retries off): a manifest cut short is read again there, a blob cut
// short makes the upload that reads it start over.
func (s *remoteSource) load(ctx context.Context) (*Artifact, error) {
	rt := &retrier{inner: s.o.transport, p: s.o.policy()}
	opts := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(s.o.keychain), remote.WithTransport(rt)}, noRetry...)
	desc, err := remote.Get(s.ref, opts...)
	if err != nil {
		err = requestError("source", err)
		if isNotFound(err) {
			return nil, fixable.Wrap(err, fmt.Sprintf("source image %s not found: check the repository and tag", s.ref))
		}
		if isDenied(err) {
			return nil, fixable.Wrap(err, fmt.Sprintf("not allowed to read %s (%v): log in to %s (docker login) or fix the credentials", s.ref, err, s.ref.Context().RegistryStr()))
		}
		return nil, fmt.Errorf("read %s: %w", s.ref, err)
	}
	var a *Artifact
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", s.ref, err)
		}
		a, err = IndexArtifact(s.ref.String(), idx)
		if err != nil {
			return nil, err
		}
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", s.ref, err)
		}
		a, err = ImageArtifact(s.ref.String(), img)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fixable.New("%s is a %q, not an image or an image index", s.ref, desc.MediaType)
	}
	if a.Digest != desc.Digest {
		return nil, fmt.Errorf("read %s: manifest digest %s, registry said %s", s.ref, a.Digest, desc.Digest)
	}
	return s.o.pick(a)
}

// editDistance is the Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// spooled owns a source's private spool directory: made on first Load, removed by Close. Sources
// that unpack or spool an image to disk embed it.
type spooled struct {
	mu  sync.Mutex
	dir string
}

// spool makes the spool directory and remembers it for Close.
func (sp *spooled) spool(o *sourceOptions, kind string) (string, error) {
	dir, err := o.spool(kind)
	if err != nil {
		return "", err
	}
	sp.mu.Lock()
	sp.dir = dir
	sp.mu.Unlock()
	return dir, nil
}

// Close removes the spool directory, if one was made.
func (sp *spooled) Close() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.dir == "" {
		return nil
	}
	err := os.RemoveAll(sp.dir)
	sp.dir = ""
	return err
}

package ecr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ecrpush/ecrpush/sandbox/world"
)

// RegistryID names one private registry: an account in a region.
type RegistryID struct{ Account, Region string }

func (id RegistryID) String() string { return id.Account + "/" + id.Region }

// host is the registry's AWS host name, used until SetEndpoint gives the local one.
func (id RegistryID) host() string { return id.Account + ".dkr.ecr." + id.Region + ".amazonaws.com" }

// Options configure a Service.
type Options struct {
	Registries       []RegistryID
	TokenTTL         time.Duration // ECR auth token lifetime (default 12h); also capped by the caller's session expiry
	ReplicationDelay time.Duration // before a replication copy starts (default 1s); also a backfill's PREPARING time
	RestoreDelay     time.Duration // how long a restored image stays ACTIVATING (default DefaultRestoreDelay)
	StorageDir       string        // blobs on disk; "" → a temp dir removed by Close
	// Replication is the initial replicationConfiguration per registry (optional).
	Replication map[RegistryID]json.RawMessage
	// BlobMounting turns on ECR's opt-in cross-repository blob mounting (the BLOB_MOUNTING
	// account setting); off, a mount request starts an ordinary upload as ECR does by default.
	BlobMounting bool
	// ReportTokenTTL makes GetAuthorizationToken report TokenTTL as the token's expiry even when
	// the caller's session ends sooner, as ECR has been seen to do; the token still stops working
	// with the session. Off, the reported expiry is the session's.
	ReportTokenTTL bool
	Now            func() time.Time
	Logger         *slog.Logger
}

// Service is the ECR API plus one OCI registry per RegistryID, with native replication.
type Service struct {
	w      *world.World
	o      Options
	now    func() time.Time
	log    *slog.Logger
	tmpDir string // removed by Close when the service created it

	registries map[RegistryID]*registry
	tokens     *tokenStore
	repl       *replicator
	sc         supplyChain // managed signing and scanning (supplychain.go)
	downloads  *downloads

	closeOnce sync.Once
}

// New builds the service, creating one on-disk blob store per registry.
func New(w *world.World, o Options) (*Service, error) {
	if w == nil {
		return nil, errors.New("ecr: nil world")
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = 12 * time.Hour
	}
	if o.ReplicationDelay <= 0 {
		o.ReplicationDelay = time.Second
	}
	if o.RestoreDelay <= 0 {
		o.RestoreDelay = DefaultRestoreDelay
	}
	now := o.Now
	if now == nil {
		now = w.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{w: w, o: o, now: now, log: log, registries: map[RegistryID]*registry{}, tokens: newTokenStore(), downloads: newDownloads()}
	dir := o.StorageDir
	if dir == "" {
		d, err := os.MkdirTemp("", "ecr-sandbox-")
		if err != nil {
			return nil, fmt.Errorf("ecr: storage dir: %w", err)
		}
		dir, s.tmpDir = d, d
	}
	for _, id := range o.Registries {
		if !accountIDPattern.MatchString(id.Account) || !regionPattern.MatchString(id.Region) {
			s.cleanup()
			return nil, fmt.Errorf("ecr: invalid registry %q", id)
		}
		if _, dup := s.registries[id]; dup {
			s.cleanup()
			return nil, fmt.Errorf("ecr: registry %s listed twice", id)
		}
		store, err := newBlobStore(filepath.Join(dir, id.Account, id.Region))
		if err != nil {
			s.cleanup()
			return nil, fmt.Errorf("ecr: registry %s: %w", id, err)
		}
		s.registries[id] = newRegistry(s, id, store)
	}
	for id, raw := range o.Replication {
		rg, ok := s.registries[id]
		if !ok {
			s.cleanup()
			return nil, fmt.Errorf("ecr: replication configured for unknown registry %s", id)
		}
		var cfg ReplicationConfiguration
		if err := json.Unmarshal(raw, &cfg); err != nil {
			s.cleanup()
			return nil, fmt.Errorf("ecr: replication for %s: %w", id, err)
		}
		if aerr := validateReplication(&cfg, id); aerr != nil {
			s.cleanup()
			return nil, fmt.Errorf("ecr: replication for %s: %w", id, aerr)
		}
		rg.setReplication(cfg)
	}
	s.repl = newReplicator(s)
	return s, nil
}

// SetEndpoint records where a registry listens ("http://127.0.0.1:PORT"): GetAuthorizationToken's
// proxyEndpoint and the host of repositoryUri.
func (s *Service) SetEndpoint(id RegistryID, url string) {
	if rg, ok := s.registries[id]; ok {
		rg.setEndpoint(strings.TrimRight(url, "/"))
	}
}

// RegistryHandler is the OCI distribution endpoint of one registry (nil-safe: an unknown id
// answers 404 to everything).
func (s *Service) RegistryHandler(id RegistryID) http.Handler {
	rg, ok := s.registries[id]
	if !ok {
		return http.NotFoundHandler()
	}
	return rg
}

// Registries lists the registries the service runs, sorted.
func (s *Service) Registries() []RegistryID {
	out := make([]RegistryID, 0, len(s.registries))
	for id := range s.registries {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Passwords returns every registry password issued so far (for leak scans).
func (s *Service) Passwords() []string { return s.tokens.passwords() }

// Close stops the replication workers (waiting a bounded time) and removes a temp storage dir.
func (s *Service) Close() error {
	var err error
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.repl.close(ctx)
		s.cleanup()
	})
	return err
}

func (s *Service) cleanup() {
	if s.tmpDir != "" {
		_ = os.RemoveAll(s.tmpDir)
	}
}

func (s *Service) registry(id RegistryID) (*registry, bool) {
	rg, ok := s.registries[id]
	return rg, ok
}

// allowed evaluates the caller's identity policies with the global condition keys IAM
// supplies for every request.
func (s *Service) allowed(sess *world.Session, action, resource, region string) bool {
	ctx := map[string][]string{
		"aws:RequestedRegion":  {region},
		"aws:PrincipalAccount": {sess.Account},
		"aws:PrincipalArn":     {sess.Principal().ID},
	}
	return s.w.Authorize(sess, action, resource, ctx)
}

package credhelper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/ecrpush/ecrpush/internal/ecr"
)

// Helper answers the docker credential-helper protocol for ECR registries. It implements
// credentials.Helper, so credentials.HandleCommand drives it exactly as it drives docker's own helpers.
type Helper struct {
	// Ctx bounds every fetch (the protocol's interface carries no context).
	Ctx context.Context
	// Hosts are explicit mappings for hosts that are not ECR's own names.
	Hosts ecr.HostMap
	// Cache keeps tokens between runs; nil fetches on every get.
	Cache *Cache
	// Key names the identity a token for r belongs to: the role and region (and the endpoint, when
	// one is configured), so two roles or two sandboxes never share a token.
	Key func(r ecr.Registry) string
	// Fetch returns a new token for r (federating as configured).
	Fetch func(ctx context.Context, r ecr.Registry) (*ecr.Token, error)
	// FetchTimeout bounds one Fetch (default DefaultFetchTimeout): a registry that runs the helper waits
	// for it, often holding a lock, so an unreachable STS fails a get quickly instead of after every retry.
	FetchTimeout time.Duration
	Now          func() time.Time
	Log          *slog.Logger
}

// DefaultFetchTimeout keeps a failing get under 5 seconds, process start included.
const DefaultFetchTimeout = 4 * time.Second

var _ credentials.Helper = (*Helper)(nil)

// ErrStore is the answer to store: ECR tokens are fetched, never stored by docker login.
var ErrStore = errors.New("not implemented: ecrpush fetches ECR tokens itself, so docker login is not needed for this registry")

func (h *Helper) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Helper) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Resolve finds the registry behind what docker asks for: an explicit mapping first, then ECR's own
// host names, then hosts an earlier GetAuthorizationToken named as its proxyEndpoint.
func (h *Helper) Resolve(serverURL string) (ecr.Registry, bool) {
	host := ecr.HostOf(serverURL)
	if host == "" {
		return ecr.Registry{}, false
	}
	if r, ok := h.Hosts[host]; ok {
		return r, true
	}
	if r, ok := ecr.ParseHost(host); ok {
		return r, true
	}
	if h.Cache != nil {
		for _, e := range h.Cache.Entries() {
			if account, ok := e.Hosts[host]; ok && ecr.IsAccount(account) && ecr.CheckRegion("", e.Region) == nil {
				return ecr.Registry{Host: host, Account: account, Region: e.Region, Partition: ecr.PartitionOf(e.Region), Mapped: true}, true
			}
		}
	}
	return ecr.Registry{}, false
}

// Get returns the username and password for serverURL: the cached token while it is in the first half
// of its life, else a new one. When fetching fails and the cached token has not expired, the cached
// one is returned (a registry outage should not break pulls the old token still allows).
func (h *Helper) Get(serverURL string) (string, string, error) {
	r, ok := h.Resolve(serverURL)
	if !ok {
		return "", "", credentials.NewErrCredentialsNotFound()
	}
	e, err := h.Entry(r)
	if err != nil {
		return "", "", err
	}
	return e.Username, e.Secret, nil
}

// Entry returns a usable cache entry for r, fetching (and storing) a new token when needed.
func (h *Helper) Entry(r ecr.Registry) (*Entry, error) {
	key := h.Key(r)
	now := h.now()
	var old *Entry
	if h.Cache != nil {
		old = h.Cache.Load(key)
		if old != nil && old.Fresh(now) {
			return old, nil
		}
	}
	tok, err := h.fetch(r)
	if err != nil {
		if old != nil && old.Valid(now) {
			h.log().Warn("ECR token refresh failed; using the cached token until it expires", "registry", r.Host, "expires", old.ExpiresAt, "err", err)
			return old, nil
		}
		return nil, err
	}
	e := &Entry{Key: key, Region: r.Region, Username: tok.Username, Secret: tok.Password, RequestedAt: now, ExpiresAt: tok.ExpiresAt,
		Hosts: map[string]string{}}
	if !e.ExpiresAt.After(now) {
		// A clock skewed past the expiry: call it a minute, rather than fetching on every request.
		e.ExpiresAt = now.Add(time.Minute)
	}
	if old != nil {
		for k, v := range old.Hosts {
			e.Hosts[k] = v
		}
	}
	if ph := ecr.HostOf(tok.ProxyEndpoint); ph != "" {
		e.Hosts[ph] = r.Account
	}
	if h.Cache != nil {
		if err := h.Cache.Store(e); err != nil {
			h.log().Warn("could not cache the ECR token", "err", err)
		}
	}
	return e, nil
}

// Add refuses: see ErrStore.
func (h *Helper) Add(*credentials.Credentials) error { return ErrStore }

// Delete drops the cached token behind serverURL, so the next get fetches a new one.
func (h *Helper) Delete(serverURL string) error {
	r, ok := h.Resolve(serverURL)
	if !ok || h.Cache == nil {
		return nil
	}
	return h.Cache.Remove(h.Key(r))
}

// List names every registry host a cached, unexpired token is known to serve, each with user AWS.
func (h *Helper) List() (map[string]string, error) {
	out := map[string]string{}
	if h.Cache == nil {
		return out, nil
	}
	now := h.now()
	for _, e := range h.Cache.Entries() {
		if !e.Valid(now) {
			continue
		}
		for host := range e.Hosts {
			out[host] = e.Username
		}
	}
	return out, nil
}

// fetch runs Fetch within FetchTimeout.
func (h *Helper) fetch(r ecr.Registry) (*ecr.Token, error) {
	ctx := h.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	timeout := h.FetchTimeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tok, err := h.Fetch(ctx, r)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, fmt.Errorf("no ECR token for %s within %s (STS or ECR did not answer) and no unexpired cached token: %w", r.Host, timeout, err)
	}
	return tok, err
}

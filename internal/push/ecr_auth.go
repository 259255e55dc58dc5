package push

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
)

// ecrKeychain answers for one ECR registry host with a GetAuthorizationToken token, fetched once
// and fetched again when half its lifetime has passed, so a long push never sends an expired one.
// Other hosts get Anonymous.
type ecrKeychain struct {
	client     *ecr.Client
	registryID string
	now        func() time.Time
	log        *slog.Logger

	mu       sync.Mutex
	host     string // from proxyEndpoint, without scheme
	scheme   string
	user     string
	pass     string
	fetched  time.Time
	expires  time.Time
	requests atomic.Int64 // GetAuthorizationToken calls, for tests
}

func newECRKeychain(c *ecr.Client, registryID string, now func() time.Time, log *slog.Logger) *ecrKeychain {
	return &ecrKeychain{client: c, registryID: registryID, now: now, log: log}
}

func (k *ecrKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), r)
}

func (k *ecrKeychain) ResolveContext(_ context.Context, r authn.Resource) (authn.Authenticator, error) {
	k.mu.Lock()
	host := k.host
	k.mu.Unlock()
	if r.RegistryStr() != host {
		return authn.Anonymous, nil
	}
	return ecrAuthenticator{k}, nil
}

// ecrAuthenticator is asked for credentials on every request (ggcr's basic transport), so the
// token it hands out is always the keychain's current one.
type ecrAuthenticator struct{ k *ecrKeychain }

func (a ecrAuthenticator) Authorization() (*authn.AuthConfig, error) {
	return a.AuthorizationContext(context.Background())
}

func (a ecrAuthenticator) AuthorizationContext(ctx context.Context) (*authn.AuthConfig, error) {
	user, pass, err := a.k.token(ctx)
	if err != nil {
		return nil, err
	}
	return &authn.AuthConfig{Username: user, Password: pass}, nil
}

// token returns the cached token, refreshing it past half-life. A failed refresh while the old
// token is still valid keeps the old one.
func (k *ecrKeychain) token(ctx context.Context) (string, string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if k.pass != "" && now.Before(k.fetched.Add(k.expires.Sub(k.fetched)/2)) {
		return k.user, k.pass, nil
	}
	if err := k.refreshLocked(ctx); err != nil {
		if k.pass != "" && now.Before(k.expires) {
			k.log.Warn("ECR token refresh failed; using the current token until it expires", "err", err, "expires", k.expires)
			return k.user, k.pass, nil
		}
		return "", "", err
	}
	return k.user, k.pass, nil
}

func (k *ecrKeychain) refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.refreshLocked(ctx)
}

func (k *ecrKeychain) refreshLocked(ctx context.Context) error {
	k.requests.Add(1)
	tok, err := ecrx.GetToken(ctx, k.client, k.registryID)
	if err != nil {
		return err
	}
	u, _ := url.Parse(tok.ProxyEndpoint) // GetToken checked it is a URL
	if k.host != "" && k.host != u.Host {
		return fmt.Errorf("ecr: proxyEndpoint changed from %s to %s", k.host, u.Host)
	}
	k.host, k.scheme = u.Host, u.Scheme
	k.user, k.pass = tok.Username, tok.Password
	k.fetched, k.expires = k.now(), tok.ExpiresAt
	if !k.expires.After(k.fetched) {
		// A clock skewed past the expiry: treat the token as good for a minute rather than
		// fetching on every request.
		k.expires = k.fetched.Add(time.Minute)
	}
	k.log.Debug("ECR token fetched", "registry", k.host, "expires", k.expires)
	return nil
}

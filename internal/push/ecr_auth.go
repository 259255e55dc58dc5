package push

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
)

// ecrKeychain answers for one ECR registry host with a GetAuthorizationToken token, fetched once
// and fetched again when half its lifetime has passed, so a long push never sends an expired one.
// Its lifetime is the shorter of what ECR reports (12 h) and what the AWS credentials that
// fetched it have left: ECR's token has been seen to stop working with the role session that
// obtained it (an hour for a federated CI role) although it reports 12 h. A 401 from the
// registry fetches it again once (reauth). Other hosts get Anonymous.
type ecrKeychain struct {
	client     *ecr.Client
	registryID string
	now        func() time.Time
	log        *slog.Logger

	mu        sync.Mutex
	host      string // from proxyEndpoint, without scheme
	scheme    string
	user      string
	pass      string
	fetched   time.Time
	expires   time.Time // when the token stops working, as far as is known
	refreshAt time.Time // half-way to expires
	// The credentials the token was fetched with, when their expiry (not ECR's 12 h) bounds it:
	// a token fetched again with the same ones would die at the same moment.
	boundBy  string
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
	if k.pass != "" && now.Before(k.refreshAt) {
		return k.user, k.pass, nil
	}
	if k.pass != "" && k.boundBy != "" && now.Before(k.expires) {
		// Half-way, but a token fetched now would die with the same credentials: keep this one
		// until the SDK's cache hands out new credentials (at their expiry, less its window).
		if c, err := k.credentials(ctx); err == nil && credentialsKey(c) == k.boundBy {
			k.refreshAt = k.expires
			return k.user, k.pass, nil
		}
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

// credentials are the AWS credentials the ECR client signs with (the SDK caches them, so asking
// costs nothing until they need refreshing anyway).
func (k *ecrKeychain) credentials(ctx context.Context) (aws.Credentials, error) {
	p := k.client.Options().Credentials
	if p == nil {
		return aws.Credentials{}, errors.New("no credentials")
	}
	return p.Retrieve(ctx)
}

// credentialsKey tells one set of credentials from the next (the key ID alone may be reused by a
// provider that only rotates the session token).
func credentialsKey(c aws.Credentials) string {
	return c.AccessKeyID + "/" + c.Expires.UTC().Format(time.RFC3339Nano)
}

// reauth answers the retrier's 401 from host, sent with authorization: the current credentials
// when another request has fetched them since, else freshly fetched ones — unless the current
// ones are fresh already (under reauthQuiet old), when the 401 is a refusal, not an expiry.
func (k *ecrKeychain) reauth(ctx context.Context, host, authorization string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if host != k.host || k.pass == "" {
		return "", false
	}
	if cur := basicAuth(k.user, k.pass); cur != authorization {
		return cur, true
	}
	if k.now().Sub(k.fetched) < reauthQuiet {
		return "", false
	}
	k.log.Info("ECR registry refused the token; fetching a new one", "registry", k.host)
	if err := k.refreshLocked(ctx); err != nil {
		k.log.Warn("ECR token refresh after a 401 failed", "err", err)
		return "", false
	}
	return basicAuth(k.user, k.pass), true
}

// reauthQuiet is how old a token must be before a 401 is taken for its expiry: a token fetched
// a moment ago and refused is refused for another reason, and fetching again would not help.
const reauthQuiet = time.Second

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func (k *ecrKeychain) refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.refreshLocked(ctx)
}

func (k *ecrKeychain) refreshLocked(ctx context.Context) error {
	k.requests.Add(1)
	creds, cerr := k.credentials(ctx)
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
	k.fetched, k.expires, k.boundBy = k.now(), tok.ExpiresAt, ""
	// The SDK's cache hands out credentials with their expiry moved earlier by its refresh
	// window; one already past means credentials shorter-lived than the window, which it renews
	// on every call and whose real end it no longer says. Then only the 401 below helps.
	if cerr == nil && creds.CanExpire && creds.Expires.Before(k.expires) && creds.Expires.After(k.fetched) {
		k.expires, k.boundBy = creds.Expires, credentialsKey(creds)
	}
	if !k.expires.After(k.fetched) {
		// A clock skewed past the expiry: treat the token as good for a minute rather than
		// fetching on every request.
		k.expires = k.fetched.Add(time.Minute)
	}
	k.refreshAt = k.fetched.Add(k.expires.Sub(k.fetched) / 2)
	k.log.Debug("ECR token fetched", "registry", k.host, "expires", k.expires)
	return nil
}

package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// session is one Publish's authenticated transport for one repository. go-containerregistry pings
// the registry (GET /v2/, and the token exchange) once per Puller and once per Pusher; a session
// does it once and both use it, which on a 50 ms link saves two round trips per destination.
// Under the auth: the retrier (the only place anything is resent), the manifest rate limit, and
// the base transport.
func (p *registryPublisher) session(ctx context.Context, pol *retryPolicy) (http.RoundTripper, error) {
	var rt http.RoundTripper = p.o.transport
	if p.plainHTTP {
		rt = plainHTTPOnly{rt}
	}
	rt = &rateLimitTransport{inner: rt, perSecond: p.o.manifestRate}
	rt = &retrier{inner: rt, p: pol, reauth: p.reauth}
	rt = transport.NewUserAgent(rt, p.o.userAgent)
	auth, err := authn.Resolve(ctx, p.kc, p.repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", p.repo.RegistryStr(), err)
	}
	return transport.NewWithContext(ctx, p.repo.Registry, auth, rt, []string{p.repo.Scope(transport.PushScope)})
}

// noRetry keeps go-containerregistry from retrying anything itself (its Pusher retries a
// manifest PUT three times): the retrier under it already has.
var noRetry = []remote.Option{
	remote.WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 1}),
	remote.WithRetryPredicate(func(error) bool { return false }),
}

// warm opens n more connections to the registry (keep-alive, so they wait in the base
// transport's pool) with unauthenticated GET /v2/ requests, the ping's own request. Only when the
// scheme is known up front; failures are ignored (the real requests will meet them).
func (p *registryPublisher) warm(ctx context.Context, n int) {
	scheme := p.repo.Registry.Scheme()
	if p.plainHTTP {
		scheme = "http"
	} else if scheme != "https" {
		return // plain HTTP unless HTTPS works: ggcr's ping finds out
	}
	ctx, cancel := context.WithTimeout(ctx, min(10*time.Second, p.o.headerTimeout))
	defer cancel()
	var wg sync.WaitGroup
	for range max(n, 0) {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+p.repo.RegistryStr()+"/v2/", nil)
			if err != nil {
				return
			}
			req.Header.Set("User-Agent", p.o.userAgent)
			if resp, err := p.o.transport.RoundTrip(req); err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
}

// errPlainHTTP answers the HTTPS probe go-containerregistry's ping makes before falling back to
// HTTP, for a registry known to speak plain HTTP (127.0.0.1, or an ECR endpoint given as http://).
var errPlainHTTP = errors.New("registry speaks plain HTTP")

// plainHTTPOnly fails https requests at once, so the ping falls back to http without a TLS
// handshake against a plain-HTTP server (a round trip or two, more when the handshake stalls).
type plainHTTPOnly struct{ inner http.RoundTripper }

func (t plainHTTPOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "https" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errPlainHTTP
	}
	return t.inner.RoundTrip(req)
}

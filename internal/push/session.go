package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// session is one Publish's authenticated transport for one repository. go-containerregistry pings
// the registry (GET /v2/, and the token exchange) once per Puller and once per Pusher; a session
// does it once and both use it, which on a 50 ms link saves two round trips per destination.
// Under the auth it stacks what remote would (user agent, retry of network flakes and
// 408/429/5xx with ggcr's backoff) on top of stackTransport.
func (p *registryPublisher) session(ctx context.Context, m *meter) (http.RoundTripper, error) {
	var rt http.RoundTripper = stackTransport(p.o.transport, p.o, m)
	if p.plainHTTP {
		rt = plainHTTPOnly{rt}
	}
	rt = &flakeRetry{inner: rt, backoff: p.o.backoff}
	rt = transport.NewUserAgent(rt, p.o.userAgent)
	auth, err := authn.Resolve(ctx, p.kc, p.repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", p.repo.RegistryStr(), err)
	}
	return transport.NewWithContext(ctx, p.repo.Registry, auth, rt, []string{p.repo.Scope(transport.PushScope)})
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
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
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

// retryStatusCodes are the answers go-containerregistry retries by default.
var retryStatusCodes = []int{http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, 499, 522}

// flakeRetry is go-containerregistry's retry transport (transport.NewRetry with remote's defaults)
// except that it resends a request only when its body can be replayed (GetBody) and never a PATCH:
// ggcr resends the same, already consumed, request and relies on marking its own uploads never to
// be retried, a mark this package's uploads cannot set. An upload is retried whole instead.
type flakeRetry struct {
	inner   http.RoundTripper
	backoff remote.Backoff
}

func (t *flakeRetry) RoundTrip(req *http.Request) (*http.Response, error) {
	once := req.Method == http.MethodPatch || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil)
	b := t.backoff
	for try := 1; ; try++ {
		r := req
		if try > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		resp, err := t.inner.RoundTrip(r)
		if once || try >= b.Steps || req.Context().Err() != nil {
			return resp, err
		}
		switch {
		case err != nil && !retryableError(err):
			return resp, err
		case err == nil && !slices.Contains(retryStatusCodes, resp.StatusCode):
			return resp, nil
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := sleep(req.Context(), jitter(b.Duration, b.Jitter)); err != nil {
			return nil, err
		}
		b.Duration = time.Duration(float64(b.Duration) * b.Factor)
	}
}

func jitter(d time.Duration, f float64) time.Duration {
	if f <= 0 {
		return d
	}
	return d + time.Duration(rand.Float64()*f*float64(d))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryableError is go-containerregistry's default retry predicate (remote.defaultRetryPredicate).
func retryableError(err error) bool {
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var t interface{ Temporary() bool }
	return (errors.As(err, &t) && t.Temporary()) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
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

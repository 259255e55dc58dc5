package push

import (
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/time/rate"
)

// retryAfterTransport sleeps for a 429/503 response's Retry-After before handing the response back,
// so ggcr's own retry (which ignores the header) comes only after the server's requested pause.
// The sleep is capped and ends early when the request's context does.
type retryAfterTransport struct {
	inner http.RoundTripper
	max   time.Duration
	log   *slog.Logger
}

func (t *retryAfterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.inner.RoundTrip(req)
	if err != nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return resp, err
	}
	d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if !ok {
		return resp, nil
	}
	if d > t.max {
		d = t.max
	}
	t.log.Info("registry asked to slow down", "status", resp.StatusCode, "host", req.URL.Host, "wait", d.String())
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-req.Context().Done():
	}
	return resp, nil
}

// parseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		d := at.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// manifestLimiters holds one limiter per (registry host, rate), shared by every publisher in the
// process, so several destinations in one registry together stay under the registry's PUT quota.
var manifestLimiters sync.Map // limiterKey → *rate.Limiter

type limiterKey struct {
	host string
	rate float64
}

func manifestLimiter(host string, perSecond float64) *rate.Limiter {
	k := limiterKey{host, perSecond}
	if l, ok := manifestLimiters.Load(k); ok {
		return l.(*rate.Limiter)
	}
	l, _ := manifestLimiters.LoadOrStore(k, rate.NewLimiter(rate.Limit(perSecond), 1))
	return l.(*rate.Limiter)
}

// rateLimitTransport holds manifest PUTs to a per-host rate (ECR's PutImage quota is 10/s).
type rateLimitTransport struct {
	inner     http.RoundTripper
	perSecond float64
}

func (t *rateLimitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.perSecond > 0 && req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/") {
		if err := manifestLimiter(req.URL.Host, t.perSecond).Wait(req.Context()); err != nil {
			return nil, err
		}
	}
	return t.inner.RoundTrip(req)
}

// meter counts what one Publish sent: blob bytes on the wire and blobs the registry already had.
type meter struct {
	uploaded     atomic.Int64
	presentBytes atomic.Int64
	manifest     atomic.Int64 // manifest PUTs
	sizes        map[v1.Hash]int64
	mu           sync.Mutex
	present      map[v1.Hash]bool
	inflight     map[fileOffset]int64 // files being sent → their offset when the request started
}

// sent is the blob bytes on the wire so far, counting the files still being sent.
func (m *meter) sent() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.uploaded.Load()
	for h, start := range m.inflight {
		if off, err := h.Offset(); err == nil && off > start {
			n += off - start
		}
	}
	return n
}

func newMeter() *meter {
	return &meter{present: map[v1.Hash]bool{}, sizes: map[v1.Hash]int64{}, inflight: map[fileOffset]int64{}}
}

// markPresent records a blob the registry already had (once per blob).
func (m *meter) markPresent(h v1.Hash) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.present[h] {
		m.present[h] = true
		m.presentBytes.Add(m.sizes[h])
	}
}

// meterTransport feeds a meter: bodies of blob upload requests are counted as they are read, a
// blob HEAD answered 200 (or a mount answered 201) marks that blob present.
type meterTransport struct {
	inner http.RoundTripper
	m     *meter
}

func (t *meterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	path := req.URL.Path
	upload := strings.Contains(path, "/blobs/uploads/")
	if f, ok := req.Body.(*os.File); ok && upload {
		if h, ok := offsetOf(f); ok {
			return t.sendFile(req, h)
		}
	}
	if upload && req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = &countingBody{rc: req.Body, n: &t.m.uploaded}
		if gb := req.GetBody; gb != nil {
			req.GetBody = func() (io.ReadCloser, error) {
				rc, err := gb()
				if err != nil {
					return nil, err
				}
				return &countingBody{rc: rc, n: &t.m.uploaded}, nil
			}
		}
	}
	if req.Method == http.MethodPut && strings.Contains(path, "/manifests/") {
		t.m.manifest.Add(1)
	}
	resp, err := t.inner.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	switch {
	case req.Method == http.MethodHead && resp.StatusCode == http.StatusOK && strings.Contains(path, "/blobs/sha256:"):
		if h, err := v1.NewHash(path[strings.LastIndex(path, "/")+1:]); err == nil {
			t.m.markPresent(h)
		}
	case req.Method == http.MethodPost && upload && resp.StatusCode == http.StatusCreated:
		if h, err := v1.NewHash(req.URL.Query().Get("mount")); err == nil {
			t.m.markPresent(h)
		}
	}
	return resp, nil
}

// sendFile leaves an upload whose body is a file as it is, so net/http sends it with sendfile(2)
// (only a bare *os.File gets that): the bytes never pass through this process, which copying
// them read by read costs most of the client's CPU — on a 2-core machine pushing to a registry
// on the same host, CPU the registry needs. What went out is read from the file's offset, which
// sendfile advances, through h (net/http closes the file itself): while the request runs, for
// progress, and after it.
func (t *meterTransport) sendFile(req *http.Request, h fileOffset) (*http.Response, error) {
	defer h.Close()
	start, err := h.Offset()
	if err != nil {
		start = 0
	}
	req = req.Clone(req.Context())
	if gb := req.GetBody; gb != nil {
		// net/http rewinds with GetBody only to resend on a dead keep-alive connection.
		req.GetBody = func() (io.ReadCloser, error) {
			rc, err := gb()
			if err != nil {
				return nil, err
			}
			return &countingBody{rc: rc, n: &t.m.uploaded}, nil
		}
	}
	t.m.mu.Lock()
	t.m.inflight[h] = start
	t.m.mu.Unlock()
	resp, err := t.inner.RoundTrip(req)
	t.m.mu.Lock()
	delete(t.m.inflight, h)
	if end, serr := h.Offset(); serr == nil && end > start {
		t.m.uploaded.Add(end - start)
	}
	t.m.mu.Unlock()
	return resp, err
}

type countingBody struct {
	rc io.ReadCloser
	n  *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingBody) Close() error { return c.rc.Close() }

// stackTransport builds the per-Publish transport under ggcr's retry and auth layers:
// the per-request retry outermost, then Retry-After (it must see the throttling response and
// wait before the retry), then the manifest rate limit, then the meter, then the base transport.
func stackTransport(base http.RoundTripper, o *options, m *meter) http.RoundTripper {
	var rt http.RoundTripper = &meterTransport{inner: base, m: m}
	rt = &rateLimitTransport{inner: rt, perSecond: o.manifestRate}
	rt = &retryAfterTransport{inner: rt, max: o.retryAfterMax, log: o.log}
	return &requestRetry{inner: rt, tries: requestTries, base: o.backoff.Duration / 2}
}

// requestTries is how many times requestRetry sends one request in all.
const requestTries = 3

// requestRetry resends one request that failed in a way a resend fixes: a throttle, a 5xx, or
// a connection dropped before an answer. go-containerregistry turns its per-request retries off
// inside a blob upload and restarts the whole upload (HEAD, POST, PATCH, PUT) instead, with the
// same four tries: a steady failure rate of one request in ten then fails one blob in seventy,
// which a copy of a four-blob image to five registries meets about one run in four. Resending
// the one request makes an upload step fail about once in a thousand. A body that cannot be
// replayed is sent once, and a PATCH whose connection dropped is not resent (part of the chunk
// may have landed): both are left to the upload's restart.
type requestRetry struct {
	inner http.RoundTripper
	tries int
	base  time.Duration
}

func (t *requestRetry) RoundTrip(req *http.Request) (*http.Response, error) {
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	pause := t.base
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
		if try >= t.tries || !replayable || req.Context().Err() != nil || !resendable(req.Method, resp, err) {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		timer := time.NewTimer(pause + rand.N(pause/5+1))
		select {
		case <-timer.C:
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		}
		pause *= 3
	}
}

// resendable reports whether a request that got resp or err may be sent again.
func resendable(method string, resp *http.Response, err error) bool {
	if err != nil {
		return method != http.MethodPatch
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

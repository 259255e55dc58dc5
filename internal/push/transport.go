package push

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// ctxKey marks requests for the retrier.
type ctxKey int

const (
	// keyOnce: send once; the caller starts over itself when it fails (a blob upload's body,
	// which a resend would append to what already reached the upload session).
	keyOnce ctxKey = iota
	// keyNotFound: a 404 may be read-after-write lag (the read-back after a push), so it is
	// retried like a 503.
	keyNotFound
	// keySends is set on every send's request: which send of its request it is.
	keySends
)

func sendOnce(ctx context.Context) context.Context { return context.WithValue(ctx, keyOnce, true) }
func retryNotFound(ctx context.Context) context.Context {
	return context.WithValue(ctx, keyNotFound, true)
}

// sendsOf reports which send of its request req was (1 when it was not sent through a retrier).
func sendsOf(req *http.Request) int {
	if req == nil {
		return 1
	}
	if n, ok := req.Context().Value(keySends).(int); ok {
		return n
	}
	return 1
}

// retrier is the only layer that sends a request again. It sits under go-containerregistry's
// auth (whose ping and token exchanges go through it too) and over the rate limit, and asks its
// retryPolicy whether and when to resend. Every send runs under a watchdog: the answer's headers
// must come within the policy's header timeout once the request is sent, and a body (either way)
// must not stand still for the stall timeout. Small GET answers (manifests, tokens) are read
// whole before they are handed back, so one cut short is a failed send, resent here. A 401 from
// a registry whose credentials can be fetched anew (reauth) is sent once more with fresh ones.
type retrier struct {
	inner  http.RoundTripper
	p      *retryPolicy
	reauth func(ctx context.Context, host, authorization string) (string, bool)
}

func (t *retrier) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	once := ctx.Value(keyOnce) != nil || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil)
	notFound := ctx.Value(keyNotFound) != nil
	tr := trouble{b: t.p.budget}
	defer tr.end()
	reauthed := false
	for send, attempt := 1, 1; ; attempt++ {
		r := req.WithContext(context.WithValue(ctx, keySends, send))
		if attempt > 1 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, errors.New("push: cannot resend a request whose body cannot be replayed")
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r.Body = body
		}
		start := time.Now()
		resp, err := t.p.send(t.inner, r)
		// Registries check credentials before they read a body, so even an upload's body may be
		// sent again after a 401.
		if err == nil && resp.StatusCode == http.StatusUnauthorized && t.reauth != nil && !reauthed &&
			(req.Body == nil || req.Body == http.NoBody || req.GetBody != nil) {
			if h, ok := t.reauth(ctx, req.URL.Host, req.Header.Get("Authorization")); ok {
				reauthed = true
				drain(resp)
				req = req.Clone(ctx)
				req.Header.Set("Authorization", h)
				continue // the same send, with fresh credentials
			}
		}
		if err == nil && !retryable(resp, nil, notFound) {
			return resp, nil
		}
		if errors.Is(err, errPlainHTTP) {
			return nil, err // the ping's HTTPS probe, which the HTTP one answers for
		}
		tr.fail(start)
		var wait time.Duration
		again := false
		if !once {
			var stop error
			wait, again, stop = t.p.next(ctx, r, send, resp, err, notFound)
			if stop != nil {
				drain(resp)
				return nil, stop
			}
		}
		if !again {
			if err != nil {
				return nil, &RequestError{Side: t.p.side, Method: req.Method, Host: req.URL.Host, Path: shortPath(req.URL.Path), Sends: send, Err: err}
			}
			return resp, nil
		}
		drain(resp)
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		send++
	}
}

// maxBuffered bounds the GET answers the retrier reads whole (manifests are at most 4 MiB).
const maxBuffered = 4 << 20

// send is one send of req under the policy's watchdog.
func (p *retryPolicy) send(rt http.RoundTripper, req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watch{p: p, cancel: cancel, done: make(chan struct{}), size: req.ContentLength}
	req = req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = w.track(req.Body)
	} else {
		w.phase, w.since = phaseWaiting, time.Now()
	}
	go w.run()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		w.stop()
		var se *stallError
		if cause := context.Cause(ctx); errors.As(cause, &se) {
			err = se
		}
		cancel(nil)
		return nil, err
	}
	w.receiving()
	resp.Body = &watchedBody{rc: resp.Body, w: w, ctx: ctx, cancel: cancel}
	if req.Method == http.MethodGet && resp.StatusCode/100 == 2 && !strings.Contains(req.URL.Path, "/blobs/") && resp.ContentLength <= maxBuffered {
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxBuffered+1))
		if err != nil {
			resp.Body.Close()
			return nil, err
		}
		if len(b) <= maxBuffered {
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(b))
		} else {
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
		}
	}
	return resp, nil
}

// watch phases.
const (
	phaseSending   = iota // the request body is going out
	phaseWaiting          // sent: waiting for the answer's headers
	phaseReceiving        // answered: the body is being read
)

// watch is one send's watchdog. It cancels the send (with a stallError as the cause) when the
// headers are late or a body stops moving. A request body's progress is its file offset for a
// file (which net/http sends with sendfile(2), untouched by this process) and a count of bytes
// read otherwise; time spent waiting for a body's own reader (a source registry feeding a
// destination) is not the link's stall, and is not held against it.
type watch struct {
	p      *retryPolicy
	cancel context.CancelCauseFunc
	done   chan struct{}
	once   sync.Once

	mu        sync.Mutex
	phase     int
	since     time.Time // start of phaseWaiting, or of the current lack of progress
	size      int64     // request body length, -1 unknown
	file      *os.File  // the request body, when it is a file
	fileStart int64
	counted   *countedBody
	last      int64
	readAt    time.Time // receiving: a Read of the answer's body has been blocked since
}

func (w *watch) track(body io.ReadCloser) io.ReadCloser {
	w.phase, w.since = phaseSending, time.Now()
	if f, ok := body.(*os.File); ok {
		w.file = f
		if off, err := f.Seek(0, io.SeekCurrent); err == nil {
			w.fileStart = off
		}
		return f
	}
	w.counted = &countedBody{rc: body}
	return w.counted
}

// sent is how much of the request body went out, and whether the body is still being sent.
func (w *watch) sent() (n int64, open bool, producing bool) {
	if w.file != nil {
		off, err := w.file.Seek(0, io.SeekCurrent)
		if err != nil {
			return w.last, false, false // net/http closed it: all sent (or failed, which RoundTrip says)
		}
		return off - w.fileStart, true, false
	}
	return w.counted.n.Load(), !w.counted.eof.Load(), w.counted.reading.Load()
}

func (w *watch) receiving() {
	w.mu.Lock()
	w.phase = phaseReceiving
	w.mu.Unlock()
}

func (w *watch) stop() { w.once.Do(func() { close(w.done) }) }

func (w *watch) run() {
	tick := min(w.p.headers, w.p.stall) / 8
	tick = min(max(tick, 5*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case now := <-t.C:
			if err := w.check(now); err != nil {
				w.cancel(err)
				return
			}
		}
	}
}

func (w *watch) check(now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.phase {
	case phaseSending:
		n, open, producing := w.sent()
		switch {
		case !open || (w.size >= 0 && n >= w.size):
			w.phase, w.since = phaseWaiting, now
		case n != w.last || producing:
			w.last, w.since = n, now
		case now.Sub(w.since) > w.p.stall:
			return &stallError{what: "request body stalled", d: w.p.stall}
		}
	case phaseWaiting:
		if now.Sub(w.since) > w.p.headers {
			return &stallError{what: "no response headers", d: w.p.headers}
		}
	case phaseReceiving:
		if !w.readAt.IsZero() && now.Sub(w.readAt) > w.p.stall {
			return &stallError{what: "response body stalled", d: w.p.stall}
		}
	}
	return nil
}

// countedBody counts a request body's bytes as net/http reads them, and says when a Read is
// waiting on the body's own source.
type countedBody struct {
	rc      io.ReadCloser
	n       atomic.Int64
	eof     atomic.Bool
	reading atomic.Bool
}

func (c *countedBody) Read(p []byte) (int, error) {
	c.reading.Store(true)
	n, err := c.rc.Read(p)
	c.reading.Store(false)
	c.n.Add(int64(n))
	if err != nil {
		c.eof.Store(true)
	}
	return n, err
}

func (c *countedBody) Close() error {
	c.eof.Store(true)
	return c.rc.Close()
}

// watchedBody is an answer's body under the watchdog: a Read blocked for the stall timeout ends
// the send with a stallError; Close ends the watch.
type watchedBody struct {
	rc     io.ReadCloser
	w      *watch
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.w.mu.Lock()
	b.w.readAt = time.Now()
	b.w.mu.Unlock()
	n, err := b.rc.Read(p)
	b.w.mu.Lock()
	b.w.readAt = time.Time{}
	b.w.mu.Unlock()
	if err != nil && err != io.EOF {
		var se *stallError
		if cause := context.Cause(b.ctx); errors.As(cause, &se) {
			err = se
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.w.stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
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
// It sits under the retrier, so resends keep to the rate too.
type rateLimitTransport struct {
	inner     http.RoundTripper
	perSecond float64
}

func (t *rateLimitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.perSecond > 0 && req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/") {
		if err := manifestLimiter(req.URL.Host, t.perSecond).Wait(req.Context()); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	return t.inner.RoundTrip(req)
}

package push

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Retry defaults. A registry that always answers 503 fails a request after DefaultRetries sends and
// 0.5+1+2+4+8 s of pauses (≈ 16 s, ±20 %); one that never answers fails after two silent sends of
// DefaultHeaderTimeout, when the budget is spent (≈ 61 s). Six sends make a request that fails one
// time in ten (the e2e fault matrix's rate) fail for good once in a million.
const (
	// DefaultRetries is how many times one request is sent in all (WithRetry).
	DefaultRetries = 6
	// DefaultRetryBudget is how long one push may spend in trouble — failed sends and the pauses
	// after them, counted once however many requests fail at the same time (WithRetryBudget).
	DefaultRetryBudget = 60 * time.Second
	// DefaultHeaderTimeout is how long a registry may take to answer once a request is sent.
	DefaultHeaderTimeout = 30 * time.Second
	// DefaultStallTimeout is how long a body (sent or received) may make no progress.
	DefaultStallTimeout = 30 * time.Second
)

// retryPolicy is the one place that decides whether a failed request is sent again: after how
// long, how many times, and whether the push's retry budget still covers it. The transport
// (retrier) asks it for every request; a blob upload whose body failed asks it before starting
// the upload over; neither resends on its own, so resends never stack.
type retryPolicy struct {
	side    string // "source" or "destination", for messages
	sends   int
	pause   time.Duration // before the second send; ×2 for each next one
	headers time.Duration // DefaultHeaderTimeout
	stall   time.Duration // DefaultStallTimeout
	budget  *retryBudget
	log     *slog.Logger
}

func newRetryPolicy(side string, sends int, pause, budget, headers, stall time.Duration, log *slog.Logger) *retryPolicy {
	return &retryPolicy{side: side, sends: max(sends, 1), pause: pause, headers: headers, stall: stall,
		budget: &retryBudget{total: budget}, log: log}
}

// retryable reports whether a send that ended with resp or err may be sent again at all.
func retryable(resp *http.Response, err error, notFoundToo bool) bool {
	if err != nil {
		var se *stallError
		switch {
		case errors.As(err, &se):
			return true
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, errPlainHTTP):
			return false
		}
		var dns *net.DNSError
		if errors.As(err, &dns) && dns.IsNotFound {
			return false // a name that does not resolve is a typo, not a blip
		}
		var cv *tls.CertificateVerificationError
		var rh tls.RecordHeaderError
		var ua x509.UnknownAuthorityError
		var hn x509.HostnameError
		var ci x509.CertificateInvalidError
		if errors.As(err, &cv) || errors.As(err, &rh) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) {
			return false // TLS trouble: a resend meets the same certificate (or plain HTTP)
		}
		return true
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case http.StatusNotFound:
		return notFoundToo
	}
	return false
}

// next decides what follows the send-th failed send of req: another send after wait (again),
// none (the failure is not one a resend fixes, or the sends are used up), or none because the
// budget cannot cover the pause (stop, an error that names the request and says so).
func (p *retryPolicy) next(ctx context.Context, req *http.Request, send int, resp *http.Response, err error, notFoundToo bool) (wait time.Duration, again bool, stop error) {
	if ctx.Err() != nil || !retryable(resp, err, notFoundToo) || send >= p.sends {
		return 0, false, nil
	}
	wait = p.pause
	for range send - 1 {
		wait *= 2
	}
	wait = time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64())) // ±20 % so parallel resends spread out
	asked := false
	if resp != nil {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			asked = true
			wait = max(wait, d)
		}
	}
	if left := p.budget.left(time.Now()); wait > left {
		var reason string
		switch {
		case asked:
			reason = fmt.Sprintf("asked to retry after %s, more than the %s left of the push's %s retry budget",
				wait.Round(time.Second), max(left, 0).Round(time.Second), p.budget.total)
		case left <= 0:
			reason = fmt.Sprintf("the push's %s retry budget is spent", p.budget.total)
		default:
			reason = fmt.Sprintf("the next attempt, in %s, would overrun the %s left of the push's %s retry budget",
				wait.Round(100*time.Millisecond), left.Round(100*time.Millisecond), p.budget.total)
		}
		return 0, false, &RequestError{Side: p.side, Method: req.Method, Host: req.URL.Host, Path: shortPath(req.URL.Path),
			Sends: send, Status: status(resp), Err: err, Reason: reason}
	}
	p.log.Info("retrying", "side", p.side, "request", req.Method+" "+req.URL.Host+shortPath(req.URL.Path),
		"failure", failure(resp, err), "send", send+1, "of", p.sends, "wait", wait.Round(time.Millisecond).String())
	return wait, true, nil
}

func status(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

func failure(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
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

// retryBudget is how much time one push may spend in trouble: the union of the intervals during
// which at least one of its requests is failing or waiting to be sent again. Sixteen uploads that
// fail together for 10 s use 10 s, not 160, and two blips an hour apart each use their own length.
type retryBudget struct {
	total time.Duration

	mu      sync.Mutex
	used    time.Duration // closed intervals
	active  int
	since   time.Time // start of the open interval (active > 0)
	lastEnd time.Time
}

func (b *retryBudget) left(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	used := b.used
	if b.active > 0 {
		used += now.Sub(b.since)
	}
	return b.total - used
}

// enter opens (or joins) a trouble interval that began at from (the failed send's start).
func (b *retryBudget) enter(from time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.active == 0 {
		b.since = from
		if from.Before(b.lastEnd) {
			b.since = b.lastEnd
		}
	}
	b.active++
}

func (b *retryBudget) exit(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.active--
	if b.active == 0 {
		b.used += now.Sub(b.since)
		b.lastEnd = now
	}
}

// trouble is one request's (or one upload's) share of the budget: entered at its first failure,
// left when it ends either way.
type trouble struct {
	b  *retryBudget
	in bool
}

func (t *trouble) fail(sentAt time.Time) {
	if !t.in {
		t.in = true
		t.b.enter(sentAt)
	}
}

func (t *trouble) end() {
	if t.in {
		t.in = false
		t.b.exit(time.Now())
	}
}

// RequestError is a request that failed for good: which side (source or destination), which
// request (method, host, path without its query, which may carry upload state), how many sends,
// and why. Its message is one line without URLs' secrets.
type RequestError struct {
	Side   string
	Method string
	Host   string
	Path   string
	Sends  int
	Status int // the last answer's status, 0 when there was none
	Reason string
	Err    error
}

func (e *RequestError) Error() string {
	var b strings.Builder
	b.WriteString(e.Side)
	if e.Host != "" {
		b.WriteString(" " + e.Host)
	}
	b.WriteString(": " + e.Method)
	if e.Path != "" {
		b.WriteString(" " + e.Path)
	}
	b.WriteString(": ")
	var msg string
	if e.Err != nil {
		msg = oneLine(e.Err.Error())
	}
	switch code := strconv.Itoa(e.Status); {
	case e.Status != 0 && msg != "" && !strings.Contains(msg, code):
		b.WriteString("HTTP " + code + ": " + msg)
	case msg != "":
		b.WriteString(msg)
	case e.Status != 0:
		b.WriteString("HTTP " + code + " " + http.StatusText(e.Status))
	default:
		b.WriteString("failed")
	}
	var notes []string
	if e.Sends > 1 {
		notes = append(notes, fmt.Sprintf("%d attempts", e.Sends))
	}
	if e.Reason != "" {
		notes = append(notes, e.Reason)
	}
	if len(notes) > 0 {
		b.WriteString(" (" + strings.Join(notes, "; ") + ")")
	}
	return b.String()
}

func (e *RequestError) Unwrap() error { return e.Err }

// requestError turns what an http.Client or go-containerregistry returned for a failed request
// into a RequestError: one line, the side named, no URL query (which may carry upload state).
func requestError(side string, err error) error {
	if err == nil {
		return nil
	}
	var re *RequestError
	if errors.As(err, &re) {
		return re
	}
	var terr *transport.Error
	if errors.As(err, &terr) && terr.Request != nil {
		r := terr.Request
		return &RequestError{Side: side, Method: r.Method, Host: r.URL.Host, Path: shortPath(r.URL.Path), Sends: sendsOf(r),
			Status: terr.StatusCode, Err: stripRequest(terr)}
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		u, perr := url.Parse(uerr.URL)
		if perr != nil {
			return uerr.Err
		}
		return &RequestError{Side: side, Method: strings.ToUpper(uerr.Op), Host: u.Host, Path: shortPath(u.Path), Err: uerr.Err}
	}
	return err
}

// stripRequest is a registry's error without the request (whose URL its message would print).
func stripRequest(err error) error {
	if terr, ok := err.(*transport.Error); ok && terr.Request != nil {
		c := *terr
		c.Request = nil
		return &c
	}
	return err
}

// stallError is a send the watchdog gave up on: no response headers in time, or a body that
// stopped moving.
type stallError struct {
	what string // "no response headers", "request body stalled", "response body stalled"
	d    time.Duration
}

func (e *stallError) Error() string {
	d := e.d.Round(time.Second)
	if e.d < 10*time.Second {
		d = e.d.Round(10 * time.Millisecond)
	}
	return fmt.Sprintf("%s for %s", e.what, d)
}

// shortPath is a request path fit for a message: an upload's session id (long, and on some
// registries followed by signed state in the query, which is never shown) is elided.
func shortPath(p string) string {
	if i := strings.Index(p, "/blobs/uploads/"); i >= 0 && len(p) > i+len("/blobs/uploads/") {
		return p[:i+len("/blobs/uploads/")] + "…"
	}
	return p
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// drain reads what is left of a response body (bounded) so the connection can be reused.
func drain(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

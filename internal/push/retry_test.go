package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// requestKinds are the requests of a push, by what a failing registry would refuse.
var requestKinds = []struct {
	name  string
	match func(r *http.Request) bool
}{
	{"ping GET /v2/", func(r *http.Request) bool { return r.Method == http.MethodGet && r.URL.Path == "/v2/" }},
	{"manifest HEAD", func(r *http.Request) bool {
		return r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/")
	}},
	{"blob POST", func(r *http.Request) bool { return r.Method == http.MethodPost }},
	{"blob PUT", func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/")
	}},
	{"manifest PUT", func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
	}},
}

// WithRetry(n) means n sends of one request, never more: a registry that always answers 503 to
// one kind of request gets exactly n of it (jobs 1, so no other upload is in flight when the
// first one fails), and no PATCH is ever sent (an upload is POST then one PUT).
func TestRetryCountsEachRequest(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	a, err := load(t, "oci-layout:"+f.layout+":v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3} {
		for _, k := range requestKinds {
			t.Run(fmt.Sprintf("%s/%d", k.name, n), func(t *testing.T) {
				t.Parallel()
				var failed, patches atomic.Int64
				dst := testRegistry(t, func(h http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if r.Method == http.MethodPatch {
							patches.Add(1)
						}
						// Only the session's requests (go-containerregistry's user agent), not the
						// unauthenticated GETs that open connections ahead of them.
						if k.match(r) && strings.Contains(r.UserAgent(), "go-containerregistry") {
							failed.Add(1)
							_, _ = io.Copy(io.Discard, r.Body)
							w.WriteHeader(http.StatusServiceUnavailable)
							return
						}
						h.ServeHTTP(w, r)
					})
				})
				_, err := newPublisher(t, dst+"/app", WithRetry(n), withRetryPause(time.Millisecond), WithJobs(1)).
					Publish(context.Background(), a, nil)
				if err == nil {
					t.Fatal("push succeeded against a registry refusing every " + k.name)
				}
				if got := failed.Load(); got != int64(n) {
					t.Errorf("%d sends of %s for WithRetry(%d): %v", got, k.name, n, err)
				}
				if patches.Load() != 0 {
					t.Errorf("%d PATCH requests", patches.Load())
				}
				assertOneLine(t, err)
				if !strings.Contains(err.Error(), dst) {
					t.Errorf("error does not name the registry %s: %v", dst, err)
				}
				if n > 1 && !strings.Contains(err.Error(), fmt.Sprintf("%d attempts", n)) {
					t.Errorf("error does not say how many sends: %v", err)
				}
			})
		}
	}
}

func assertOneLine(t *testing.T, err error) {
	t.Helper()
	if strings.ContainsAny(err.Error(), "\r\n") {
		t.Errorf("error spans lines: %q", err)
	}
	if strings.Contains(err.Error(), "_state") || strings.Contains(err.Error(), "?") {
		t.Errorf("error shows a URL query: %v", err)
	}
}

// A registry that always answers 503 fails the push with the default schedule: four sends of the
// first request, 0.5 + 1 + 2 + 4 + 8 s apart (±20 %), one line naming the registry.
func TestAlways503FailsWithinTheSchedule(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	dst := testRegistry(t, func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.UserAgent(), "go-containerregistry") {
				n.Add(1)
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		})
	})
	f := makeFixtures(t)
	a, _ := load(t, "oci-layout:"+f.layout+":v1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound, not a goal
	defer cancel()
	start := time.Now()
	_, err := newPublisher(t, dst+"/app").Publish(ctx, a, []string{"v1"})
	took := time.Since(start)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("push against a dead registry: %v (context: %v)", err, ctx.Err())
	}
	assertOneLine(t, err)
	if !strings.Contains(err.Error(), dst) || !strings.Contains(err.Error(), fmt.Sprintf("%d attempts", DefaultRetries)) || !strings.Contains(err.Error(), "503") {
		t.Errorf("error lacks the registry, the status or the sends: %v", err)
	}
	if n.Load() != DefaultRetries {
		t.Errorf("%d requests, want %d (the ping, sent %d times)", n.Load(), DefaultRetries, DefaultRetries)
	}
	t.Logf("failed after %s and %d requests: %v", took.Round(time.Millisecond), n.Load(), err)
}

// A registry that accepts connections and never answers fails the push once the budget is spent,
// naming the host and the request; so does one that stops reading an upload's body, and one whose
// answer's body stops.
func TestSilentRegistryFails(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	small, _ := load(t, "oci-layout:"+f.layout+":v1")
	// A layer on disk (sent with sendfile, tracked by its file offset) larger than what the
	// kernel's socket buffers hold once the registry's receive buffer is made small.
	img, err := random.Image(8<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeLayout(t, dir, entry{img: img, name: "big"})
	big, err := load(t, "oci-layout:"+dir+":big")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		a    *Artifact
		// stop handles the requests it matches, without answering in time.
		match func(r *http.Request) bool
		stop  func(w http.ResponseWriter, r *http.Request, silent func())
		want  string
	}{
		{"no answer to anything", small, func(*http.Request) bool { return true },
			func(_ http.ResponseWriter, _ *http.Request, silent func()) { silent() }, "no response headers"},
		{"no answer to the manifest PUT", small,
			func(r *http.Request) bool {
				return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
			},
			func(_ http.ResponseWriter, r *http.Request, silent func()) {
				_, _ = io.Copy(io.Discard, r.Body)
				silent()
			}, "PUT /v2/app/manifests/"},
		{"upload body never read", big,
			func(r *http.Request) bool {
				return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && r.ContentLength > 1<<20
			},
			func(_ http.ResponseWriter, _ *http.Request, silent func()) { silent() }, "request body stalled"},
		{"answer body stops", small,
			func(r *http.Request) bool {
				return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/")
			},
			func(w http.ResponseWriter, _ *http.Request, silent func()) {
				w.Header().Set("Content-Length", "4096")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte("{"))
				http.NewResponseController(w).Flush()
				silent()
			}, "response body stalled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stopped := make(chan struct{})
			dst := smallBufferRegistry(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if tc.match(r) {
						tc.stop(w, r, func() {
							select {
							case <-r.Context().Done():
							case <-stopped:
							}
						})
						return
					}
					h.ServeHTTP(w, r)
				})
			})
			t.Cleanup(func() { close(stopped) }) // before the server's Close, which waits for handlers
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p := newPublisher(t, dst+"/app", withTimeouts(300*time.Millisecond, 300*time.Millisecond),
				WithRetryBudget(time.Second), withRetryPause(10*time.Millisecond))
			if tc.name == "answer body stops" {
				// A source's manifest GET is the one whose answer has a body worth cutting.
				if _, err := newPublisher(t, dst+"/app").Publish(ctx, small, []string{"v1"}); err != nil {
					t.Fatal(err)
				}
				src, err := ParseSource(dst+"/app:v1", withSourceTimeouts(300*time.Millisecond, 300*time.Millisecond, time.Second, 10*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				_, err = src.Load(ctx)
				checkSilent(t, ctx, err, "source", dst, tc.want)
				return
			}
			_, err := p.Publish(ctx, tc.a, []string{"v1"})
			checkSilent(t, ctx, err, "destination", dst, tc.want)
		})
	}
}

// smallBufferRegistry is testRegistry with a 64 KiB receive buffer on every connection, so an
// upload the registry does not read stalls after a few MiB instead of vanishing into loopback's
// autotuned buffers (up to tcp_rmem's maximum, 32 MiB here).
func smallBufferRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewUnstartedServer(wrap(h))
	srv.Listener = smallBufferListener{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10)
	}
	return c, err
}

func checkSilent(t *testing.T, ctx context.Context, err error, side, host, want string) {
	t.Helper()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("got %v (context: %v), want a failure before the context's end", err, ctx.Err())
	}
	assertOneLine(t, err)
	for _, w := range []string{side, host, want} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
}

// A Retry-After beyond what is left of the budget fails the request at once, saying so.
func TestLongRetryAfterFailsAtOnce(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	dst := testRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				n.Add(1)
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	f := makeFixtures(t)
	a, _ := load(t, "oci-layout:"+f.layout+":v1")
	start := time.Now()
	_, err := newPublisher(t, dst+"/app").Publish(context.Background(), a, []string{"v1"})
	if err == nil {
		t.Fatal("push succeeded")
	}
	assertOneLine(t, err)
	if !strings.Contains(err.Error(), "retry after 1h0m0s") || !strings.Contains(err.Error(), "retry budget") {
		t.Errorf("error does not say the Retry-After is beyond the budget: %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s: the Retry-After was waited on", d)
	}
	t.Logf("%d POSTs: %v", n.Load(), err)
}

// The budget is the push's time in trouble, not per request: once spent, nothing more is resent.
func TestRetryBudgetIsShared(t *testing.T) {
	t.Parallel()
	b := &retryBudget{total: time.Second}
	t0 := time.Now()
	var a, c trouble
	a.b, c.b = b, b
	a.fail(t0)
	c.fail(t0.Add(100 * time.Millisecond))
	if left := b.left(t0.Add(500 * time.Millisecond)); left != 500*time.Millisecond {
		t.Errorf("two overlapping troubles: %s left, want 500ms", left)
	}
	a.end()
	c.end()
	if left := b.left(time.Now().Add(time.Hour)); left > time.Second-time.Since(t0)+time.Millisecond {
		t.Errorf("after both ended: %s left", left)
	}
}

// A tag the registry does not show yet right after it was written (read-after-write lag) is read
// again within the budget, and the push succeeds.
func TestReadBackToleratesLag(t *testing.T) {
	t.Parallel()
	var lagging sync.Map // tag path → reads refused so far
	var refused atomic.Int64
	dst := testRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/v1") {
				lagging.Store(r.URL.Path, new(atomic.Int64))
			}
			if r.Method == http.MethodHead {
				if v, ok := lagging.Load(r.URL.Path); ok && v.(*atomic.Int64).Add(1) <= 2 {
					refused.Add(1)
					w.WriteHeader(http.StatusNotFound)
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	f := makeFixtures(t)
	a, _ := load(t, "oci-layout:"+f.layout+":v1")
	if _, err := newPublisher(t, dst+"/app", withRetryPause(10*time.Millisecond)).Publish(context.Background(), a, []string{"v1"}); err != nil {
		t.Fatalf("push with read-after-write lag: %v", err)
	}
	if refused.Load() != 2 {
		t.Errorf("%d lagging reads, want 2: the test did not exercise the lag", refused.Load())
	}
}

// Source reads are retried like destination writes: a manifest GET cut short and a blob GET cut
// short are read again, and the copy succeeds; a source that keeps failing is named as the source.
func TestSourceReadsRetried(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	a, _ := load(t, "oci-layout:"+f.layout+":v1")
	for _, always := range []bool{false, true} {
		t.Run(fmt.Sprintf("always=%v", always), func(t *testing.T) {
			t.Parallel()
			var cut atomic.Int64
			seen := sync.Map{}
			src := testRegistry(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method != http.MethodGet || !(strings.Contains(r.URL.Path, "/manifests/") || strings.Contains(r.URL.Path, "/blobs/")) {
						h.ServeHTTP(w, r)
						return
					}
					if _, again := seen.LoadOrStore(r.URL.Path, true); again && !always {
						h.ServeHTTP(w, r)
						return
					}
					// Cut the answer short: the headers and half the body, then the connection drops.
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, r)
					body := rec.Body.Bytes()
					for k, v := range rec.Header() {
						w.Header()[k] = v
					}
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
					w.WriteHeader(rec.Code)
					_, _ = w.Write(body[:len(body)/2])
					http.NewResponseController(w).Flush()
					cut.Add(1)
					if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
						conn.Close()
					}
				})
			})
			if _, err := newPublisher(t, src+"/app").Publish(context.Background(), a, []string{"v1"}); err != nil {
				t.Fatal(err)
			}
			dst := testRegistry(t, nil)
			s, err := ParseSource(src+"/app:v1", withSourceTimeouts(time.Minute, time.Minute, time.Minute, time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			cut.Store(0)
			seen = sync.Map{}
			got, err := s.Load(context.Background())
			if err == nil {
				_, err = newPublisher(t, dst+"/copy", withRetryPause(time.Millisecond)).Publish(context.Background(), got, []string{"v1"})
			}
			if always {
				if err == nil {
					t.Fatal("copy from a source that always cuts answers short succeeded")
				}
				assertOneLine(t, err)
				if !strings.Contains(err.Error(), "source") {
					t.Errorf("error does not name the source: %v", err)
				}
				t.Logf("%v", err)
				return
			}
			if err != nil {
				t.Fatalf("copy through cut answers: %v", err)
			}
			if cut.Load() < 2 {
				t.Errorf("only %d answers cut: the test did not exercise the retries", cut.Load())
			}
			if fetchDigest(t, dst+"/copy:v1") != a.Digest {
				t.Error("wrong digest in the copy")
			}
		})
	}
}

// A 401 answered by the retrier's reauth is sent once more with the fresh credentials, never more.
func TestReauthOnce(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.Header.Get("Authorization") == "Basic new" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	var asked atomic.Int64
	rt := &retrier{inner: http.DefaultTransport,
		p: newRetryPolicy("destination", 4, time.Millisecond, time.Minute, time.Minute, time.Minute, slog.New(slog.DiscardHandler)),
		reauth: func(_ context.Context, _, old string) (string, bool) {
			asked.Add(1)
			return "Basic new", old != "Basic new"
		}}
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v2/app/manifests/v1", bytes.NewReader([]byte("{}")))
	req.Header.Set("Authorization", "Basic old")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || n.Load() != 2 || asked.Load() != 1 {
		t.Errorf("status %d after %d sends and %d reauths; want 200 after 2 and 1", resp.StatusCode, n.Load(), asked.Load())
	}
	n.Store(0)
	rt.reauth = func(context.Context, string, string) (string, bool) { return "Basic other", true }
	req, _ = http.NewRequest(http.MethodHead, srv.URL+"/v2/", nil)
	resp, err = rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || n.Load() != 2 {
		t.Errorf("a refusal that fresh credentials do not fix: status %d after %d sends, want 401 after 2", resp.StatusCode, n.Load())
	}
}

var _ = errors.New

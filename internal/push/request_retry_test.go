package push

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// With go-containerregistry's own retries down to one try, a push still gets through a registry
// that fails the first attempt of every request — with a 503, or (except for a PATCH) by dropping
// the connection before answering: each request is resent on its own, and no blob upload has to
// start over.
func TestRequestRetryResendsOneRequest(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	var mu sync.Mutex
	seen := map[string]bool{}
	var failed atomic.Int64
	dst := testRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := r.Method + " " + r.URL.String()
			mu.Lock()
			first := !seen[key]
			seen[key] = true
			mu.Unlock()
			if first {
				failed.Add(1)
				if r.Method == http.MethodPatch || failed.Load()%2 == 0 {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	a, err := load(t, "oci-layout:"+f.layout+":v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newPublisher(t, dst+"/app", WithRetry(1, 10*time.Millisecond, time.Second)).Publish(context.Background(), a, []string{"v1"}); err != nil {
		t.Fatalf("push through first-attempt failures: %v", err)
	}
	if fetchDigest(t, dst+"/app:v1") != a.Digest {
		t.Error("wrong digest after resends")
	}
	if failed.Load() < 8 {
		t.Errorf("only %d requests failed once: the test registry did not exercise the resends", failed.Load())
	}
}

// A body that cannot be replayed is sent once; a PATCH whose connection dropped is never resent.
func TestRequestRetryLimits(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	rt := &requestRetry{inner: http.DefaultTransport, tries: 3, base: time.Millisecond}

	req, _ := http.NewRequest(http.MethodPatch, srv.URL, io.NopCloser(strings.NewReader("chunk")))
	req.GetBody = nil
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n.Load() != 1 || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("unreplayable body: %d sends, status %d; want 1 send and the 503 handed back", n.Load(), resp.StatusCode)
	}

	n.Store(0)
	req, _ = http.NewRequest(http.MethodPut, srv.URL, strings.NewReader("manifest"))
	resp, err = rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n.Load() != 3 {
		t.Errorf("replayable PUT answered 503: %d sends, want 3", n.Load())
	}

	if resendable(http.MethodPatch, nil, io.ErrUnexpectedEOF) {
		t.Error("a PATCH whose connection dropped would be resent")
	}
	if !resendable(http.MethodPut, nil, io.ErrUnexpectedEOF) || !resendable(http.MethodPatch, &http.Response{StatusCode: 429}, nil) {
		t.Error("a dropped PUT or a throttled PATCH would not be resent")
	}
	if resendable(http.MethodPut, &http.Response{StatusCode: 400}, nil) {
		t.Error("a 400 would be resent")
	}
}

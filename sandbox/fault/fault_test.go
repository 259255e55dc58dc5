package fault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"sigs.k8s.io/yaml"
)

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	_, _ = io.WriteString(w, "ok")
})

// newServer serves h on 127.0.0.1 and returns a client that opens a fresh connection per
// request, so the transport never replays a request after a reset on a reused connection.
func newServer(t *testing.T, h http.Handler) (*httptest.Server, *http.Client) {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// run sends n sequential requests and returns the injector's events.
func run(t *testing.T, seed int64, n int) []Event {
	t.Helper()
	in := New(seed)
	mux := http.NewServeMux()
	cfg := Config{ErrorRate: 0.15, ThrottleRate: 0.15, ResetRate: 0.1, RetryAfter: D(time.Second)}
	mux.Handle("/sts/", in.Wrap("sts", AWSQuery, cfg, ok))
	mux.Handle("/ecr/", in.Wrap("ecr", AWSJSON, cfg, ok))
	srv, client := newServer(t, mux)
	for i := 0; i < n; i++ {
		path := []string{"/sts/", "/ecr/"}[i%2]
		resp, err := client.Post(srv.URL+path, "text/plain", strings.NewReader("Action=GetCallerIdentity"))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	return in.Events()
}

func TestReplay(t *testing.T) {
	a, b := run(t, 42, 80), run(t, 42, 80)
	if len(a) == 0 {
		t.Fatal("no faults injected at 40% fault rate over 80 requests")
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different events:\n%v\n%v", a, b)
	}
	kinds := map[Kind]bool{}
	for _, e := range a {
		kinds[e.Kind] = true
	}
	if len(kinds) < 3 {
		t.Errorf("expected a mix of kinds, got %v", a)
	}
	if c := run(t, 43, 80); reflect.DeepEqual(a, c) {
		t.Fatalf("different seeds, same events: %v", c)
	}
}

func TestDecisionsArePerEndpointSequence(t *testing.T) {
	// Interleaving across endpoints must not change any endpoint's decisions.
	cfg := Config{ErrorRate: 0.3, ThrottleRate: 0.3}
	for seq := int64(1); seq <= 50; seq++ {
		first := decide(rngFor(7, "sts", seq), cfg)
		if again := decide(rngFor(7, "sts", seq), cfg); first != again {
			t.Fatal("decision is not a function of (seed, endpoint, seq)")
		}
	}
}

func TestKinds(t *testing.T) {
	tests := []struct {
		name       string
		protocol   Protocol
		cfg        Config
		status     int
		retryAfter string
		body       string
	}{
		{"registry 5xx", Registry, Config{ErrorRate: 1}, 0, "", `"errors":[{"code":"`},
		{"registry throttle", Registry, Config{ThrottleRate: 1, RetryAfter: D(1500 * time.Millisecond)}, 429, "2", `"code":"TOOMANYREQUESTS"`},
		{"registry throttle default Retry-After", Registry, Config{ThrottleRate: 1}, 429, "1", `TOOMANYREQUESTS`},
		{"aws json 5xx", AWSJSON, Config{ErrorRate: 1}, 0, "", `"__type":"`},
		{"aws json throttle", AWSJSON, Config{ThrottleRate: 1}, 400, "", `{"__type":"ThrottlingException","message":"Rate exceeded"}`},
		{"aws query 5xx", AWSQuery, Config{ErrorRate: 1}, 0, "", `<ErrorResponse xmlns=`},
		{"aws query throttle", AWSQuery, Config{ThrottleRate: 1}, 400, "", `<Code>Throttling</Code><Message>Rate exceeded</Message>`},
		{"plain 5xx", Plain, Config{ErrorRate: 1}, 0, "", ``},
		{"plain throttle", Plain, Config{ThrottleRate: 1, RetryAfter: D(3 * time.Second)}, 429, "3", "too many requests"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := New(1)
			srv, client := newServer(t, in.Wrap("ep", tc.protocol, tc.cfg, ok))
			seen := map[int]bool{}
			for i := 0; i < 20; i++ {
				resp, err := client.Get(srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				seen[resp.StatusCode] = true
				if tc.status != 0 && resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				if tc.status == 0 && resp.StatusCode != 500 && resp.StatusCode != 503 {
					t.Fatalf("status %d, want 500 or 503", resp.StatusCode)
				}
				if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
					t.Fatalf("Retry-After %q, want %q", got, tc.retryAfter)
				}
				if !strings.Contains(string(body), tc.body) {
					t.Fatalf("body %q does not contain %q", body, tc.body)
				}
			}
			if tc.status == 0 && !(seen[500] && seen[503]) {
				t.Errorf("20 errors were not a mix of 500 and 503: %v", seen)
			}
			if n := len(in.Events()); n != 20 {
				t.Errorf("%d events, want 20", n)
			}
		})
	}
}

func TestRegistryErrorsParseInGGCR(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		code transport.ErrorCode
	}{
		{Config{ThrottleRate: 1}, transport.TooManyRequestsErrorCode},
	} {
		in := New(1)
		srv, client := newServer(t, in.Wrap("registry", Registry, tc.cfg, ok))
		resp, err := client.Get(srv.URL + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		err = transport.CheckError(resp, http.StatusOK)
		resp.Body.Close()
		var te *transport.Error
		if !errors.As(err, &te) || len(te.Errors) != 1 || te.Errors[0].Code != tc.code || !te.Temporary() {
			t.Fatalf("CheckError = %#v", err)
		}
	}
}

// isReset accepts only RST-caused errors: a plain close (FIN) would show up as
// io.ErrUnexpectedEOF, which would mean SO_LINGER 0 was lost.
// isReset: the reset as the client meets it — ECONNRESET or EPIPE on the socket, or, while the client is
// still writing a large body, its own write on the connection net/http closed when the read side saw the
// reset first ("use of closed network connection"; seen under load in CI).
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

func TestReset(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   int
		method string
	}{{"no body", 0, "PUT"}, {"small body", 1000, "PUT"}, {"large body", 4 << 20, "PATCH"}, {"HEAD", 0, "HEAD"}, {"GET", 0, "GET"}} {
		t.Run(tc.name, func(t *testing.T) {
			in := New(1)
			var inner atomic.Int32
			srv, client := newServer(t, in.Wrap("blobs", Registry, Config{ResetRate: 1}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inner.Add(1)
			})))
			var body io.Reader = http.NoBody
			if tc.body > 0 {
				body = strings.NewReader(strings.Repeat("b", tc.body))
			}
			req, _ := http.NewRequest(tc.method, srv.URL+"/v2/x/blobs/uploads/1", body)
			resp, err := client.Do(req)
			if err == nil {
				// Only a GET may see a status line before the reset (and then a cut body): for any
				// other request headers alone would read as a complete answer, a success for a
				// write that never ran.
				if tc.method != "GET" {
					t.Fatalf("%s got a response (%s) before the reset", tc.method, resp.Status)
				}
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if err == nil || !isReset(err) {
				t.Fatalf("err = %v, want a connection reset", err)
			}
			if inner.Load() != 0 {
				t.Fatal("the wrapped handler ran for a reset request")
			}
			if ev := in.Events(); len(ev) != 1 || ev[0] != (Event{Endpoint: "blobs", Seq: 1, Kind: Reset}) {
				t.Fatalf("events %v", ev)
			}
		})
	}
}

func TestLatency(t *testing.T) {
	in := New(1)
	srv, client := newServer(t, in.Wrap("slow", Plain, Config{Latency: D(60 * time.Millisecond)}, ok))
	start := time.Now()
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Fatalf("request took %v, want at least the 60ms latency", d)
	}
}

func TestLatencyHonoursContext(t *testing.T) {
	in := New(1)
	done := make(chan time.Duration, 1)
	innerRan := make(chan struct{}, 1)
	wrapped := in.Wrap("slow", AWSJSON, Config{Latency: D(10 * time.Second), ErrorRate: 1}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		innerRan <- struct{}{}
	}))
	srv, client := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		wrapped.ServeHTTP(w, r)
		done <- time.Since(start)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	if _, err := client.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	select {
	case d := <-done:
		if d > 5*time.Second {
			t.Fatalf("handler returned after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler kept sleeping after the client went away")
	}
	select {
	case <-innerRan:
		t.Fatal("inner handler ran")
	default:
	}
	if ev := in.Events(); len(ev) != 0 {
		t.Fatalf("a fault was recorded for an abandoned request: %v", ev)
	}
}

func TestRateZeroNeverInjects(t *testing.T) {
	in := New(99)
	srv, client := newServer(t, in.Wrap("quiet", Registry, Config{}, ok))
	for i := 0; i < 200; i++ {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if ev := in.Events(); len(ev) != 0 {
		t.Fatalf("events %v", ev)
	}
}

func TestSetLive(t *testing.T) {
	in := New(5)
	srv, client := newServer(t, in.Wrap("ecr", AWSJSON, Config{ThrottleRate: 1}, ok))
	status := func() int {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status(); s != 400 {
		t.Fatalf("throttled status %d", s)
	}
	in.Set("ecr", Config{})
	if s := status(); s != 200 {
		t.Fatalf("after Set off: %d", s)
	}
	in.Set("ecr", Config{ErrorRate: 1})
	if s := status(); s < 500 {
		t.Fatalf("after Set errors: %d", s)
	}
	want := []Event{{"ecr", 1, Throttle}, {"ecr", 3, in.Events()[1].Kind}}
	if got := in.Events(); !reflect.DeepEqual(got, want) || (want[1].Kind != Error500 && want[1].Kind != Error503) {
		t.Fatalf("events %v", got)
	}
	if cfg, ok := in.Config("ecr"); !ok || cfg.ErrorRate != 1 {
		t.Fatalf("Config = %+v %v", cfg, ok)
	}
}

func TestNilInjector(t *testing.T) {
	var in *Injector
	if h := in.Wrap("x", Plain, Config{ErrorRate: 1}, ok); fmt.Sprintf("%p", h) != fmt.Sprintf("%p", ok) {
		t.Fatal("nil injector must return the handler unchanged")
	}
	if in.Events() != nil {
		t.Fatal("nil injector has events")
	}
}

func TestDurationEncoding(t *testing.T) {
	cfg := Config{ErrorRate: 0.1, Latency: D(150 * time.Millisecond), RetryAfter: D(2 * time.Second)}
	j, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), "latency: 150ms") || !strings.Contains(string(j), "retryAfter: 2s") {
		t.Fatalf("yaml:\n%s", j)
	}
	var back Config
	if err := yaml.Unmarshal([]byte("errorRate: 0.1\nlatency: 150ms\nretryAfter: \"2s\"\n"), &back); err != nil {
		t.Fatal(err)
	}
	if back != cfg {
		t.Fatalf("round trip %+v, want %+v", back, cfg)
	}
	var c Config
	if err := yaml.Unmarshal([]byte(`{"latency":"1h2m3.5s"}`), &c); err != nil || c.Latency.Duration != time.Hour+2*time.Minute+3500*time.Millisecond {
		t.Fatalf("json form: %v %v", c.Latency, err)
	}
	for _, bad := range []string{"latency: 150", "latency: fast", "latency: -1s", "latency: [1]"} {
		if err := yaml.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

// A truncated GET answer promises its body and delivers half of it, then closes cleanly: the
// client reads an unexpected EOF. Other methods pass untouched (and are not recorded).
func TestTruncate(t *testing.T) {
	in := New(1)
	body := strings.Repeat("m", 4000)
	srv, client := newServer(t, in.Wrap("registry", Registry, Config{TruncateRate: 1}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = io.WriteString(w, body)
	})))
	resp, err := client.Get(srv.URL + "/v2/x/manifests/v1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != len(body)/2 {
		t.Fatalf("read %d bytes, err %v; want %d and an unexpected EOF", len(got), err, len(body)/2)
	}
	resp, err = client.Post(srv.URL+"/v2/x/blobs/uploads/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(got) != len(body) {
		t.Fatalf("a POST was cut: %d bytes, %v", len(got), err)
	}
	if ev := in.Events(); len(ev) != 1 || ev[0].Kind != Truncate {
		t.Fatalf("events %v", ev)
	}
}

// A stalled request is never answered: the client's own deadline ends it, and Release lets the
// handler go (the server's Close would otherwise wait for it).
func TestStall(t *testing.T) {
	in := New(1)
	var inner atomic.Int32
	srv, _ := newServer(t, in.Wrap("registry", Registry, Config{StallRate: 1}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		inner.Add(1)
	})))
	client := &http.Client{Timeout: 200 * time.Millisecond}
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v2/x/manifests/v1", strings.NewReader(strings.Repeat("m", 1<<20)))
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a stalled PUT was answered %s", resp.Status)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("the stall ended after %s, before the client's deadline", d)
	}
	in.Release()
	if inner.Load() != 0 {
		t.Fatal("the wrapped handler ran for a stalled request")
	}
	// StallFor bounds a stall the client waits out.
	in2 := New(1)
	srv2, _ := newServer(t, in2.Wrap("registry", Registry, Config{StallRate: 1, StallFor: D(100 * time.Millisecond)}, ok))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(srv2.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a stall ended with an answer")
	}
	if ev := in2.Events(); len(ev) != 1 || ev[0].Kind != Stall {
		t.Fatalf("events %v", ev)
	}
}

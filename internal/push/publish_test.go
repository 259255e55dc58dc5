package push

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/testenv"
)

// Every source kind pushes, reads back digest-identical under every tag, and a second push of the
// same artifact uploads nothing.
func TestPublishEachSourceKind(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	for i, ref := range []string{
		"oci-layout:" + f.layout + ":v1",
		"oci-layout:" + f.layout + ":multi",
		"oci-archive:" + f.archive,
		"docker-archive:" + f.save,
		"docker-archive:" + f.saveGz,
		f.registry + "/src:multi",
	} {
		t.Run(ref, func(t *testing.T) {
			a, err := load(t, ref)
			if err != nil {
				t.Fatal(err)
			}
			repo := testRegistry(t, nil) + "/dst" + string(rune('a'+i))
			p := newPublisher(t, repo)
			res, err := p.Publish(context.Background(), a, []string{"one", "two"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Digest != a.Digest || len(res.Tags) != 2 || res.Tags[0].URI != repo+":one" || res.Tags[1].Ref != repo+"@"+a.Digest.String() {
				t.Errorf("result %+v", res)
			}
			if res.BytesUploaded == 0 || res.BytesPresent != 0 || res.Layers == 0 || res.Size == 0 {
				t.Errorf("first push: uploaded %d, present %d, layers %d, size %d", res.BytesUploaded, res.BytesPresent, res.Layers, res.Size)
			}
			for _, tag := range []string{"one", "two"} {
				if got := fetchDigest(t, repo+":"+tag); got != a.Digest {
					t.Errorf("%s: %s, want %s", tag, got, a.Digest)
				}
			}
			again, err := p.Publish(context.Background(), a, []string{"one", "two"})
			if err != nil {
				t.Fatal(err)
			}
			if again.BytesUploaded != 0 || again.BytesPresent != res.BytesUploaded+res.BytesPresent || len(again.TagsUnchanged) != 2 {
				t.Errorf("re-push: uploaded %d, present %d (first push uploaded %d), unchanged %v", again.BytesUploaded, again.BytesPresent, res.BytesUploaded, again.TagsUnchanged)
			}
		})
	}
}

// A new tag on an image whose blobs are all there uploads no blob bytes, and HEAD finds them.
func TestPublishCountsPresentBlobs(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	dst := testRegistry(t, nil)
	a, _ := load(t, "oci-layout:"+f.layout+":v1")
	p := newPublisher(t, dst+"/app")
	first, err := p.Publish(context.Background(), a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Tags) != 0 || first.Ref == "" {
		t.Errorf("untagged push: %+v", first)
	}
	// Another image sharing no layers but pushed into a second repo that already has the blobs of
	// the first: only the new blobs go up.
	other := newPublisher(t, dst+"/app2")
	if _, err := other.Publish(context.Background(), a, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	res, err := p.Publish(context.Background(), a, []string{"latest"})
	if err != nil {
		t.Fatal(err)
	}
	if res.BytesUploaded != 0 || res.BytesPresent == 0 {
		t.Errorf("tag-only push: %+v", res)
	}
}

func TestIndexKeepsDigestAndPlatformPicksOne(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	dst := testRegistry(t, nil)
	idx, err := load(t, "oci-layout:"+f.layout+":multi")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newPublisher(t, dst+"/multi").Publish(context.Background(), idx, []string{"all"}); err != nil {
		t.Fatal(err)
	}
	if got := fetchDigest(t, dst+"/multi:all"); got != digestOf(t, f.idx) {
		t.Errorf("index digest %s, want %s", got, digestOf(t, f.idx))
	}
	for _, p := range testPlatforms {
		if got := fetchDigest(t, dst+"/multi@"+childDigest(t, f.idx, p).String()); got != childDigest(t, f.idx, p) {
			t.Errorf("child %s: %s", p, got)
		}
	}
	one, err := load(t, "oci-layout:"+f.layout+":multi", WithPlatform(v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}))
	if err != nil {
		t.Fatal(err)
	}
	res, err := newPublisher(t, dst+"/single").Publish(context.Background(), one, []string{"arm"})
	if err != nil {
		t.Fatal(err)
	}
	want := childDigest(t, f.idx, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"})
	if res.Digest != want || fetchDigest(t, dst+"/single:arm") != want || !res.MediaType.IsImage() {
		t.Errorf("platform push: %+v, want %s", res, want)
	}
}

func TestImmutableConflictWritesNothing(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	var writes atomic.Int64
	dst := testRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				writes.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})
	repo := dst + "/app"
	img, _ := load(t, "oci-layout:"+f.layout+":v1")
	idx, _ := load(t, "oci-layout:"+f.layout+":multi")
	p := newPublisher(t, repo, WithImmutableTags(true))
	if _, err := p.Publish(context.Background(), img, []string{"stable"}); err != nil {
		t.Fatal(err)
	}
	// Same digest again: a no-op, not a conflict.
	if res, err := p.Publish(context.Background(), img, []string{"stable"}); err != nil || len(res.TagsUnchanged) != 1 {
		t.Fatalf("identical re-push: %+v %v", res, err)
	}
	before := writes.Load()
	_, err := p.Publish(context.Background(), idx, []string{"new", "stable"})
	if err == nil || !fixable.Is(err) {
		t.Fatalf("want fixable conflict, got %v", err)
	}
	for _, w := range []string{"stable", img.Digest.String(), "nothing was written"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if n := writes.Load() - before; n != 0 {
		t.Errorf("%d writes after the conflict was known", n)
	}
	if _, err := remote.Head(mustRef(t, repo+":new")); err == nil {
		t.Error("tag new was created")
	}
	if got := fetchDigest(t, repo+":stable"); got != img.Digest {
		t.Errorf("stable moved to %s", got)
	}
	// Without immutability the tag moves.
	res, err := newPublisher(t, repo).Publish(context.Background(), idx, []string{"stable"})
	if err != nil || fetchDigest(t, repo+":stable") != idx.Digest || len(res.TagsUnchanged) != 0 {
		t.Errorf("mutable move: %+v %v", res, err)
	}
}

func TestBadTagIsFixable(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	a, _ := load(t, "oci-layout:"+f.layout+":v1")
	for _, tag := range []string{"", "-x", "a b", strings.Repeat("x", 129)} {
		_, err := newPublisher(t, testRegistry(t, nil)+"/app").Publish(context.Background(), a, []string{tag})
		if !fixable.Is(err) {
			t.Errorf("tag %q: %v", tag, err)
		}
	}
}

// A 429 with Retry-After: 1 on the first blob upload is waited out, then the push succeeds.
func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	var once sync.Once
	var throttledAt time.Time
	var retriedAt atomic.Value
	dst := testRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
				throttled := false
				once.Do(func() {
					throttled = true
					throttledAt = time.Now()
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusTooManyRequests)
				})
				if throttled {
					return
				}
				if retriedAt.Load() == nil {
					retriedAt.Store(time.Now())
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	a, _ := load(t, "oci-layout:"+f.layout+":v1")
	var logs bytes.Buffer
	p := newPublisher(t, dst+"/app", WithJobs(1), WithLogger(slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))))
	if _, err := p.Publish(context.Background(), a, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	if throttledAt.IsZero() || retriedAt.Load() == nil {
		t.Fatal("no throttled upload happened")
	}
	if gap := retriedAt.Load().(time.Time).Sub(throttledAt); gap < time.Second {
		t.Errorf("retried after %s, before the 1s Retry-After", gap)
	}
	if !strings.Contains(logs.String(), "retrying") || !strings.Contains(logs.String(), "429") {
		t.Errorf("no log of the throttle: %s", logs.String())
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"1": time.Second, "0": 0, "120": 2 * time.Minute,
		now.Add(3 * time.Second).Format(http.TimeFormat): 3 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):      0,
	} {
		if got, ok := parseRetryAfter(in, now); !ok || got != want {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "-1", "soon"} {
		if _, ok := parseRetryAfter(bad, now); ok {
			t.Errorf("parseRetryAfter(%q) accepted", bad)
		}
	}
}

// A context ending during a Retry-After wait ends the wait.
func TestRetryAfterIsContextAware(t *testing.T) {
	t.Parallel()
	dst := testRegistry(t, func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		})
	})
	rt := &retrier{inner: http.DefaultTransport, p: newRetryPolicy("destination", 4, time.Millisecond, time.Hour, time.Minute, time.Minute, slog.New(slog.DiscardHandler))}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+dst+"/v2/", nil)
	start := time.Now()
	resp, err := rt.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a 429 answered until the context ended came back as a success")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("waited %s despite the context", d)
	}
}

// Manifest PUTs to one host are spaced at the configured rate: an index with 3 children and 3
// tags is 7 PUTs, which at 10/s take at least 0.6 s and never come closer than ~100 ms.
func TestManifestRateLimit(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	var mu sync.Mutex
	var puts []time.Time
	dst := testRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
				mu.Lock()
				puts = append(puts, time.Now())
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	})
	a, _ := load(t, "oci-layout:"+f.layout+":multi")
	if _, err := newPublisher(t, dst+"/app", WithManifestRate(DefaultManifestRate)).Publish(context.Background(), a, []string{"a", "b", "c"}); err != nil {
		t.Fatal(err)
	}
	if len(puts) != 7 {
		t.Fatalf("%d manifest PUTs, want 7", len(puts))
	}
	// Only a lower bound on the whole span: arrival gaps jitter on a loaded machine (requests leave the
	// limiter 100 ms apart but can arrive bunched), while no load can make 7 limited PUTs faster.
	if span := puts[6].Sub(puts[0]); span < 550*time.Millisecond {
		t.Errorf("7 PUTs in %s: not limited to 10/s", span)
	}
}

func TestMultiPublisher(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	a, _ := load(t, "oci-layout:"+f.layout+":multi")
	r1, r2 := testRegistry(t, nil), testRegistry(t, nil)
	m := MultiPublisher(newPublisher(t, r1+"/app"), newPublisher(t, r2+"/app"))
	res, err := m.Publish(context.Background(), a, []string{"v1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Destinations) != 2 || res.Destinations[0].Registry != r1 || res.Destinations[1].Registry != r2 || len(res.Tags) != 2 {
		t.Fatalf("aggregate %+v", res)
	}
	if res.BytesUploaded != res.Destinations[0].BytesUploaded+res.Destinations[1].BytesUploaded {
		t.Errorf("bytes not summed")
	}
	for _, r := range []string{r1, r2} {
		if fetchDigest(t, r+"/app:v1") != a.Digest {
			t.Errorf("%s: wrong digest", r)
		}
	}

	// A conflict at one immutable destination stops every destination before any write.
	img, _ := load(t, "oci-layout:"+f.layout+":v1")
	r3 := testRegistry(t, nil)
	imm := newPublisher(t, r2+"/app", WithImmutableTags(true))
	_, err = MultiPublisher(newPublisher(t, r3+"/app"), imm).Publish(context.Background(), img, []string{"v1"})
	if !fixable.Is(err) || !strings.Contains(err.Error(), r2+"/app") {
		t.Fatalf("want fixable conflict naming %s, got %v", r2, err)
	}
	if _, err := remote.Head(mustRef(t, r3+"/app:v1")); err == nil {
		t.Error("the other destination was written")
	}
}

func TestProgressLines(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	a, _ := load(t, "docker-archive:"+f.save)
	var out syncWriter
	var buf bytes.Buffer
	out.w = &buf
	dst := testRegistry(t, nil)
	if _, err := newPublisher(t, dst+"/app", WithProgress(&out, false)).Publish(context.Background(), a, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, dst+"/app: done") {
		t.Errorf("progress output %q", s)
	}
}

// Against distribution with htpasswd: every source kind, read back by skopeo byte-identical;
// the password never reaches the logs.
func TestDistributionHtpasswd(t *testing.T) {
	t.Parallel()
	d := startDistribution(t)
	f := makeFixtures(t)
	var logs syncWriter
	var buf bytes.Buffer
	logs.w = &buf
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for i, ref := range []string{
		"oci-layout:" + f.layout + ":v1",
		"oci-layout:" + f.layout + ":multi",
		"oci-archive:" + f.archive,
		"docker-archive:" + f.save,
		f.registry + "/src:multi",
	} {
		t.Run(ref, func(t *testing.T) {
			a, err := load(t, ref)
			if err != nil {
				t.Fatal(err)
			}
			repo := d.host + "/team/app" + string(rune('a'+i))
			p, err := NewRegistry(mustRepo(t, repo), d.keychain(), WithLogger(log))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			res, err := p.Publish(context.Background(), a, []string{"v1", "latest"})
			if err != nil {
				t.Fatal(err)
			}
			raw := skopeoRaw(t, repo+":v1", d)
			h, _, _ := v1.SHA256(bytes.NewReader(raw))
			want, _ := a.RawManifest()
			if h != a.Digest || !bytes.Equal(raw, want) || res.Digest != a.Digest {
				t.Errorf("skopeo reads %s, pushed %s", h, a.Digest)
			}
			again, err := p.Publish(context.Background(), a, []string{"v1", "latest"})
			if err != nil || again.BytesUploaded != 0 {
				t.Errorf("re-push: %+v %v", again, err)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		a, _ := load(t, "oci-layout:"+f.layout+":v1")
		p, _ := NewRegistry(mustRepo(t, d.host+"/x"), staticKeychain{d.host, d.user, "wrong"})
		_, err := p.Publish(context.Background(), a, []string{"v1"})
		if !fixable.Is(err) {
			t.Errorf("want fixable auth error, got %v", err)
		}
	})
	testenv.NoSecrets(t, []string{d.pass}, map[string]string{"logs": logs.String()})
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

var _ = errors.New
var _ = name.NewTag
var _ = transport.Error{}

// 5xx answers without Retry-After are retried with backoff, for blob checks and manifest PUTs alike.
func TestRetriesServerErrors(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	var heads, puts atomic.Int64
	dst := testRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/blobs/") && heads.Add(1) <= 2:
				w.WriteHeader(http.StatusInternalServerError)
				return
			case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") && puts.Add(1) == 1:
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	a, _ := load(t, "oci-layout:"+f.layout+":v1")
	if _, err := newPublisher(t, dst+"/app", WithRetry(4), withRetryPause(10*time.Millisecond)).Publish(context.Background(), a, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	if fetchDigest(t, dst+"/app:v1") != a.Digest {
		t.Error("wrong digest after retries")
	}
}

// A registry source behind htpasswd is read with the source keychain.
func TestRemoteSourceWithCredentials(t *testing.T) {
	t.Parallel()
	d := startDistribution(t)
	f := makeFixtures(t)
	a, _ := load(t, "oci-layout:"+f.layout+":multi")
	p, err := NewRegistry(mustRepo(t, d.host+"/src"), d.keychain())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(context.Background(), a, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, d.host+"/src:v1", WithSourceKeychain(staticKeychain{d.host, d.user, "wrong"})); !fixable.Is(err) {
		t.Errorf("wrong password: %v", err)
	}
	got, err := load(t, d.host+"/src:v1", WithSourceKeychain(d.keychain()))
	if err != nil {
		t.Fatal(err)
	}
	dst := testRegistry(t, nil) + "/copy"
	if _, err := newPublisher(t, dst).Publish(context.Background(), got, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	if fetchDigest(t, dst+":v1") != a.Digest {
		t.Error("copy changed the digest")
	}
}

package credhelper

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/ecrpush/ecrpush/internal/ecr"
)

// fetcher hands out numbered tokens valid for ttl, or fails when told to.
type fetcher struct {
	calls int
	ttl   time.Duration
	now   *time.Time
	fail  error
}

func (f *fetcher) fetch(_ context.Context, r ecr.Registry) (*ecr.Token, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	f.calls++
	return &ecr.Token{Username: "AWS", Password: "pw" + string(rune('0'+f.calls)), ProxyEndpoint: "https://" + r.Account + ".dkr.ecr." + r.Region + ".amazonaws.com",
		ExpiresAt: f.now.Add(f.ttl)}, nil
}

func newHelper(t *testing.T, f *fetcher) (*Helper, *time.Time) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.now = &now
	return &Helper{
		Cache: &Cache{Dir: filepath.Join(t.TempDir(), "cache")},
		Key:   func(r ecr.Registry) string { return "role|" + r.Region },
		Fetch: f.fetch,
		Now:   func() time.Time { return now },
	}, &now
}

func TestHelperRefreshesAtHalfLife(t *testing.T) {
	f := &fetcher{ttl: 12 * time.Hour}
	h, now := newHelper(t, f)
	host := "111122223333.dkr.ecr.us-east-1.amazonaws.com"
	for _, step := range []struct {
		advance time.Duration
		pw      string
		calls   int
	}{
		{0, "pw1", 1},
		{5*time.Hour + 59*time.Minute, "pw1", 1}, // under half of 12h: cached
		{2 * time.Minute, "pw2", 2},              // past 6h: a new token
		{time.Hour, "pw2", 2},
	} {
		*now = now.Add(step.advance)
		user, pw, err := h.Get(host)
		if err != nil || user != "AWS" || pw != step.pw || f.calls != step.calls {
			t.Fatalf("after +%s: %s %s %v, %d fetches; want %s, %d", step.advance, user, pw, err, f.calls, step.pw, step.calls)
		}
	}
	// Another account in the same region shares the role's token (ECR honours it on every registry).
	if _, pw, _ := h.Get("444455556666.dkr.ecr.us-east-1.amazonaws.com"); pw != "pw2" || f.calls != 2 {
		t.Errorf("same role and region: %s after %d fetches", pw, f.calls)
	}
	// Another region is another key.
	if _, pw, _ := h.Get("111122223333.dkr.ecr.eu-west-1.amazonaws.com"); pw != "pw3" {
		t.Errorf("another region: %s", pw)
	}
}

func TestHelperFallsBackToAValidCachedToken(t *testing.T) {
	f := &fetcher{ttl: 2 * time.Hour}
	h, now := newHelper(t, f)
	host := "111122223333.dkr.ecr.us-east-1.amazonaws.com"
	if _, _, err := h.Get(host); err != nil {
		t.Fatal(err)
	}
	f.fail = errors.New("ECR is down")
	*now = now.Add(90 * time.Minute) // stale, not expired
	if _, pw, err := h.Get(host); err != nil || pw != "pw1" {
		t.Errorf("stale token during an outage: %s %v", pw, err)
	}
	*now = now.Add(time.Hour) // expired
	if _, _, err := h.Get(host); err == nil || !strings.Contains(err.Error(), "down") {
		t.Errorf("expired token during an outage: %v", err)
	}
}

func TestHelperResolve(t *testing.T) {
	f := &fetcher{ttl: time.Hour}
	h, _ := newHelper(t, f)
	h.Hosts, _ = ecr.ParseHostMap("127.0.0.1:5000=111122223333:us-east-1")
	if r, ok := h.Resolve("http://127.0.0.1:5000"); !ok || r.Account != "111122223333" || !r.Mapped {
		t.Errorf("mapped: %+v %v", r, ok)
	}
	if _, _, err := h.Get("registry.example"); !credentials.IsErrCredentialsNotFound(err) {
		t.Errorf("unknown host: %v", err)
	}
	if f.calls != 0 {
		t.Error("resolving fetched")
	}
	// A proxyEndpoint seen once is recognised afterwards, even without the mapping.
	h.Fetch = func(_ context.Context, r ecr.Registry) (*ecr.Token, error) {
		return &ecr.Token{Username: "AWS", Password: "p", ProxyEndpoint: "http://127.0.0.1:7000", ExpiresAt: h.Now().Add(time.Hour)}, nil
	}
	if _, _, err := h.Get("127.0.0.1:5000"); err != nil {
		t.Fatal(err)
	}
	h.Hosts = nil
	if r, ok := h.Resolve("127.0.0.1:7000"); !ok || r.Account != "111122223333" || r.Region != "us-east-1" {
		t.Errorf("learned host: %+v %v", r, ok)
	}
	if l, _ := h.List(); l["127.0.0.1:7000"] != "AWS" {
		t.Errorf("list: %v", l)
	}
	if err := h.Add(&credentials.Credentials{}); !errors.Is(err, ErrStore) {
		t.Errorf("store: %v", err)
	}
}

func TestCacheFiles(t *testing.T) {
	c := &Cache{Dir: filepath.Join(t.TempDir(), "c")}
	e := &Entry{Key: "arn:aws:iam::111122223333:role/x|us-east-1||", Region: "us-east-1", Username: "AWS", Secret: "s",
		RequestedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := c.Store(e); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(c.Dir, "*"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	for p, want := range map[string]os.FileMode{c.Dir: 0o700, files[0]: 0o600} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != want {
			t.Errorf("%s: %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	if got := c.Load(e.Key); got == nil || got.Secret != "s" {
		t.Errorf("load: %+v", got)
	}
	// A file someone made readable to others is not trusted.
	os.Chmod(files[0], 0o644)
	if c.Load(e.Key) != nil {
		t.Error("a 0644 cache file was used")
	}
	os.Chmod(files[0], 0o600)
	os.WriteFile(files[0], []byte("{not json"), 0o600)
	if c.Load(e.Key) != nil {
		t.Error("a corrupt cache file was used")
	}
	if err := c.Remove(e.Key); err != nil || c.Remove(e.Key) != nil {
		t.Errorf("remove: %v", err)
	}
}

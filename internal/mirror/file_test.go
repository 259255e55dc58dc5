package mirror

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

func TestMapRepository(t *testing.T) {
	for _, tc := range []struct {
		rule, src, want string
	}{
		{DefaultRule, "alpine", "mirror/docker.io/library/alpine"},
		{DefaultRule, "docker.io/bitnami/redis", "mirror/docker.io/bitnami/redis"},
		{DefaultRule, "ghcr.io/org/tool", "mirror/ghcr.io/org/tool"},
		{DefaultRule, "quay.io/prometheus/node-exporter", "mirror/quay.io/prometheus/node-exporter"},
		{DefaultRule, "europe-docker.pkg.dev/proj/repo/app", "mirror/europe-docker.pkg.dev/proj/repo/app"},
		{DefaultRule, "127.0.0.1:5000/x/y", "mirror/127.0.0.1-5000/x/y"},
		{"third-party/{name}", "ghcr.io/org/tool", "third-party/tool"},
		{"{path}", "alpine", "library/alpine"},
		{"tools/renamed", "ghcr.io/org/tool", "tools/renamed"},
		{"/lead/{name}/", "alpine", "lead/alpine"},
	} {
		repo, _ := name.NewRepository(tc.src)
		got, err := MapRepository(tc.rule, repo)
		if err != nil || got != tc.want {
			t.Errorf("MapRepository(%q, %s) = %q %v, want %q", tc.rule, tc.src, got, err, tc.want)
		}
	}
	repo, _ := name.NewRepository("alpine")
	for _, bad := range []string{"mirror/{host}/{path}", "Mirror/{path}", "a", "mirror//{path}", "m/{path}" + strings.Repeat("x", 260)} {
		if got, err := MapRepository(bad, repo); err == nil {
			t.Errorf("MapRepository(%q) = %q, want an error", bad, got)
		}
	}
}

func TestParseSource(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		in, ref, tag string
	}{
		{"alpine", "index.docker.io/library/alpine:latest", "latest"},
		{"alpine:3.20", "index.docker.io/library/alpine:3.20", "3.20"},
		{"alpine:3.20@" + d, "index.docker.io/library/alpine@" + d, "3.20"},
		{"ghcr.io/org/tool@" + d, "ghcr.io/org/tool@" + d, ""},
		{"127.0.0.1:5000/x@" + d, "127.0.0.1:5000/x@" + d, ""},
		{"127.0.0.1:5000/x:v1@" + d, "127.0.0.1:5000/x@" + d, "v1"},
	} {
		ref, tag, err := ParseSource(tc.in)
		if err != nil || ref.Name() != tc.ref || tag != tc.tag {
			t.Errorf("ParseSource(%q) = %v %q %v, want %s %q", tc.in, ref, tag, err, tc.ref, tc.tag)
		}
	}
	if _, _, err := ParseSource("UPPER/case"); err == nil {
		t.Error("an invalid reference was accepted")
	}
}

func TestCommonPrefix(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"mirror/docker.io/library/alpine", "mirror/ghcr.io/org/tool"}, "mirror/"},
		{[]string{"mirror/docker.io/library/alpine", "mirror/docker.io/library/redis"}, "mirror/docker.io/library/"},
		{[]string{"mirror/a"}, "mirror/a"},
		{[]string{"a/x", "b/x"}, ""},
		{[]string{"mirrorx/a", "mirrory/b"}, ""},
		{nil, ""},
	} {
		if got := CommonPrefix(tc.in); got != tc.want {
			t.Errorf("CommonPrefix(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestItems(t *testing.T) {
	f, err := Parse([]byte(`
repository: mirror/{registry}/{path}
platforms: [linux/amd64]
images:
  - source: alpine:3.20
  - source: docker://ghcr.io/org/tool:v1
    repository: tools/{name}
    tags: [v1, stable]
    platforms: [linux/arm64, linux/amd64]
    google: true
`))
	if err != nil {
		t.Fatal(err)
	}
	items, err := f.Items()
	if err != nil {
		t.Fatal(err)
	}
	a, b := items[0], items[1]
	if a.Repository != "mirror/docker.io/library/alpine" || strings.Join(a.Tags, ",") != "3.20" || len(a.Platforms) != 1 || a.Platforms[0].Architecture != "amd64" {
		t.Errorf("%+v", a)
	}
	if b.Repository != "tools/tool" || strings.Join(b.Tags, ",") != "v1,stable" || len(b.Platforms) != 2 || !b.Google || b.Ref.Context().RegistryStr() != "ghcr.io" {
		t.Errorf("%+v", b)
	}
	for _, bad := range []string{
		"images: []",
		"images:\n  - source: ''",
		"images:\n  - source: a:1\n    tags: ['-x']",
		"images:\n  - source: a:1\n    platforms: [amd64]",
		"images:\n  - source: a:1\n    unknown: 1",
		"imgs:\n  - source: a:1",
		"images:\n  - source: a:1\n  - source: a:1",
		"images: {source: a}",
	} {
		f, err := Parse([]byte(bad))
		if err == nil {
			_, err = f.Items()
		}
		if err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func TestLockRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "images.lock.json")
	if l, err := ReadLock(p); err != nil || len(l.Images) != 0 {
		t.Fatalf("missing lock: %+v %v", l, err)
	}
	l := &Lock{Version: LockVersion, Images: map[string]LockEntry{"b:1": {Digest: "sha256:b"}, "a:1": {Digest: "sha256:a", Tags: []string{"1"}}}}
	if err := l.Write(p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if strings.Index(string(b), `"a:1"`) > strings.Index(string(b), `"b:1"`) {
		t.Errorf("keys are not sorted:\n%s", b)
	}
	got, err := ReadLock(p)
	if err != nil || got.Images["a:1"].Tags[0] != "1" || got.Images["b:1"].Digest != "sha256:b" {
		t.Errorf("%+v %v", got, err)
	}
	os.WriteFile(p, []byte(`{"version": 9}`), 0o644)
	if _, err := ReadLock(p); err == nil {
		t.Error("a future lock version was read")
	}
	if got := LockPath("/x/images.yaml"); got != "/x/images.lock.json" {
		t.Errorf("LockPath = %s", got)
	}
}

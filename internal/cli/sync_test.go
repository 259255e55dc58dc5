package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/internal/mirror"
	"github.com/ecrpush/ecrpush/sandbox"
)

// hub is a plain registry on 127.0.0.1 standing in for Docker Hub, GHCR or quay.
func hub(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(nilLogger())))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// multiArch writes an index of linux/amd64, linux/arm64/v8 and linux/arm/v7 images to ref and returns
// the index digest and each platform's manifest digest.
func multiArch(t *testing.T, ref string) (string, map[string]string) {
	t.Helper()
	idx := v1.ImageIndex(empty.Index)
	children := map[string]string{}
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}, {OS: "linux", Architecture: "arm", Variant: "v7"}} {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		children[p.String()] = d.String()
		plat := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &plat}})
	}
	r, _ := name.ParseReference(ref)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	return d.String(), children
}

func single(t *testing.T, ref string) string {
	t.Helper()
	img, _ := random.Image(4096, 3)
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// ecrAuth is the ci registry's credentials, from the credential helper.
func ecrAuth(t *testing.T, sb *sandbox.Sandbox) authn.Authenticator {
	t.Helper()
	helperEnv(t, sb)
	r := runAs(t, "docker-credential-ecrpush", ciHost(sb), "get")
	var c struct{ Username, Secret string }
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatalf("credential helper: %v %s", err, r.errLine)
	}
	return &authn.Basic{Username: c.Username, Password: c.Secret}
}

func readLock(t *testing.T, p string) *mirror.Lock {
	t.Helper()
	l := &mirror.Lock{}
	if err := json.Unmarshal([]byte(readFile(t, p)), l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestSync(t *testing.T) {
	sb := start(t, nil)
	src := hub(t)
	index, children := multiArch(t, src+"/library/alpine:3.20")
	multiArch(t, src+"/library/alpine:3.19")
	tool := single(t, src+"/org/tool:v1")
	dir := t.TempDir()
	file := filepath.Join(dir, "images.yaml")
	os.WriteFile(file, fmt.Appendf(nil, `repository: mirror/{registry}/{path}
images:
  - source: %[1]s/library/alpine:3.20
  - source: %[1]s/org/tool:v1
    repository: tools/{name}
    tags: [v1, stable]
  - source: %[1]s/library/alpine:3.20@%[2]s
    repository: slim/alpine
    platforms: [linux/amd64, linux/arm64]
  - source: %[1]s/library/alpine:3.20@%[2]s
    repository: arm/alpine
    tags: [v7]
    platforms: [linux/arm/v7]
`, src, index), 0o644)
	// The same source twice is refused; write distinct sources (the digest-pinned ones differ by platform filter).
	items, err := mustItems(file)
	if err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate sources: %v %v", items, err)
	}
	os.WriteFile(file, fmt.Appendf(nil, `repository: mirror/{registry}/{path}
images:
  - source: %[1]s/library/alpine:3.20
  - source: %[1]s/org/tool:v1
    repository: tools/{name}
    tags: [v1, stable]
  - source: %[1]s/library/alpine@%[2]s
    repository: slim/alpine
    tags: [3.20-slim]
    platforms: [linux/amd64, linux/arm64]
  - source: %[1]s/library/alpine:3.20@%[2]s
    repository: arm/alpine
    platforms: [linux/arm/v7]
`, src, index), 0o644)
	args := []string{"sync", "--role-arn", ciRole, "--identity", "github", "--file", file}

	r := run(t, args...)
	if r.code != 0 {
		t.Fatalf("sync: %s\n%s\n%s", r.errLine, r.stdout, r.stderr)
	}
	if n := strings.Count(r.stdout, "copied "); n != 4 {
		t.Errorf("first run copied %d images:\n%s", n, r.stdout)
	}
	lockPath := filepath.Join(dir, "images.lock.json")
	lockBytes := readFile(t, lockPath)
	lock := readLock(t, lockPath)
	host := ciHost(sb)
	srcReg := strings.ReplaceAll(src, ":", "-")
	alpine, slim := src+"/library/alpine:3.20", src+"/library/alpine@"+index
	want := map[string]mirror.LockEntry{
		alpine:               {Source: alpine, SourceDigest: index, Digest: index, URI: host + "/mirror/" + srcReg + "/library/alpine@" + index, Tags: []string{"3.20"}},
		src + "/org/tool:v1": {Source: src + "/org/tool:v1", SourceDigest: tool, Digest: tool, URI: host + "/tools/tool@" + tool, Tags: []string{"v1", "stable"}},
		src + "/library/alpine:3.20@" + index: {Source: src + "/library/alpine@" + index, SourceDigest: index, Digest: children["linux/arm/v7"],
			URI: host + "/arm/alpine@" + children["linux/arm/v7"], Tags: []string{"3.20"}, Platforms: []string{"linux/arm/v7"}},
	}
	for k, w := range want {
		if got, ok := lock.Images[k]; !ok || fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("lock[%s] = %+v\nwant %+v", k, got, w)
		}
	}
	s := lock.Images[slim]
	if len(lock.Images) != 4 || s.SourceDigest != index || s.Digest == index || s.URI != host+"/slim/alpine@"+s.Digest {
		t.Errorf("lock %+v", lock.Images)
	}

	// What ECR holds: the same digests, read back by tag and by the lock's URI.
	auth := ecrAuth(t, sb)
	for _, e := range lock.Images {
		if got, err := pull(e.URI, auth); err != nil || got != e.Digest {
			t.Errorf("%s: %s %v", e.URI, got, err)
		}
		repo, _, _ := strings.Cut(e.URI, "@")
		for _, tag := range e.Tags {
			if got, err := pull(repo+":"+tag, auth); err != nil || got != e.Digest {
				t.Errorf("%s:%s: %s %v", repo, tag, got, err)
			}
		}
	}
	ref, _ := name.ParseReference(s.URI)
	slimIdx, err := remote.Index(ref, remote.WithAuth(auth))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := slimIdx.IndexManifest()
	if len(im.Manifests) != 2 || im.Manifests[0].Digest.String() != children["linux/amd64"] || im.Manifests[1].Digest.String() != children["linux/arm64/v8"] {
		t.Errorf("filtered index %+v", im.Manifests)
	}

	// A second run copies nothing and writes nothing, and the lock stays byte for byte.
	sb.Log.Reset()
	r = run(t, args...)
	if r.code != 0 || strings.Contains(r.stdout, "copied ") || strings.Count(r.stdout, "present ") != 4 {
		t.Fatalf("second sync: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}
	if w := sb.Log.Writes(); len(w) != 0 {
		t.Errorf("second run wrote: %+v", w)
	}
	if readFile(t, lockPath) != lockBytes {
		t.Error("second run changed the lock file")
	}

	// Upstream moves 3.20: --locked keeps the recorded digest (nothing copied); a plain run follows the tag.
	moved, _ := multiArch(t, src+"/library/alpine:3.20")
	r = run(t, append(args, "--locked")...)
	if r.code != 0 || strings.Contains(r.stdout, "copied ") || readFile(t, lockPath) != lockBytes {
		t.Fatalf("--locked: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}
	r = run(t, append(args, "--output", "json")...)
	if r.code != 0 {
		t.Fatalf("sync after the move: %s", r.errLine)
	}
	var out struct {
		Images []struct {
			Source, Status string
		} `json:"images"`
	}
	json.Unmarshal([]byte(r.stdout), &out)
	if len(out.Images) != 4 || out.Images[0].Status != "copied" || out.Images[1].Status != "present" {
		t.Errorf("json report %s", r.stdout)
	}
	if e := readLock(t, lockPath).Images[alpine]; e.Digest != moved || e.URI != host+"/mirror/"+srcReg+"/library/alpine@"+moved {
		t.Errorf("lock after the move: %+v (want %s)", e, moved)
	}
	if got, _ := pull(host+"/mirror/"+srcReg+"/library/alpine:3.20", auth); got != moved {
		t.Errorf("ECR 3.20 is %s, want %s", got, moved)
	}
}

func mustItems(file string) ([]mirror.Item, error) {
	f, err := mirror.Load(file)
	if err != nil {
		return nil, err
	}
	return f.Items()
}

func TestSyncReplicatesAndRefusesBadInput(t *testing.T) {
	sb := start(t, nil)
	src := hub(t)
	index, _ := multiArch(t, src+"/library/redis:7")
	file := filepath.Join(t.TempDir(), "images.yaml")
	os.WriteFile(file, []byte("images:\n  - source: "+src+"/library/redis:7\n"), 0o644)
	r := run(t, "sync", "--role-arn", ciRole, "--identity", "github", "--file", file,
		"--replicate-to", "eu-west-1", "--replication", "copy")
	if r.code != 0 || !strings.Contains(r.stdout, "COPIED") {
		t.Fatalf("sync with replication: exit %d %s\n%s\n%s", r.code, r.errLine, r.stdout, r.stderr)
	}
	eu := strings.TrimPrefix(sb.Endpoints.Registries[sandbox.RegistryID{Account: sandbox.CIAccount, Region: "eu-west-1"}], "http://")
	t.Setenv("ECRPUSH_REGISTRY_HOSTS", eu+"="+sandbox.CIAccount+":eu-west-1")
	t.Setenv("ECRPUSH_CACHE_DIR", t.TempDir())
	c := runAs(t, "docker-credential-ecrpush", eu, "get")
	var creds struct{ Username, Secret string }
	json.Unmarshal([]byte(c.stdout), &creds)
	repo := "mirror/" + strings.ReplaceAll(src, ":", "-") + "/library/redis"
	if got, err := pull(eu+"/"+repo+":7", &authn.Basic{Username: creds.Username, Password: creds.Secret}); err != nil || got != index {
		t.Errorf("replica in eu-west-1: %s %v (want %s)", got, err, index)
	}

	sb.Log.Reset()
	for _, body := range []string{
		"images: []\n",
		"images:\n  - source: " + src + "/x:1\n    tgas: [a]\n",
		"repository: Mirror/{path}\nimages:\n  - source: " + src + "/x:1\n",
		"repository: m/{host}\nimages:\n  - source: " + src + "/x:1\n",
		"images:\n  - source: " + src + "/x:1\n    platforms: [linux]\n",
		"images:\n  - source: " + src + "/x:1\n    google: true\n",
	} {
		os.WriteFile(file, []byte(body), 0o644)
		if r := run(t, "sync", "--role-arn", ciRole, "--identity", "github", "--file", file); r.code != 2 {
			t.Errorf("%q: exit %d %s", body, r.code, r.errLine)
		}
	}
	if n := len(sb.Log.Writes()); n != 0 {
		t.Errorf("bad input wrote %d times", n)
	}
}

func nilLogger() *log.Logger { return log.New(io.Discard, "", 0) }

package push

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/ecrpush/ecrpush/internal/testenv"
)

// testRegistry serves go-containerregistry's in-memory registry on 127.0.0.1. wrap (optional)
// sits in front of it, to count or disturb requests.
func testRegistry(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func mustRepo(t testing.TB, s string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newPublisher(t testing.TB, repo string, opts ...Option) Publisher {
	t.Helper()
	p, err := NewRegistry(mustRepo(t, repo), authn.DefaultKeychain, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// platformImage is a random image whose config names p.
func platformImage(t testing.TB, p v1.Platform, size int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

var testPlatforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64", Variant: "v8"},
	{OS: "linux", Architecture: "arm", Variant: "v7"},
}

// platformIndex is an OCI index of one small image per testPlatforms entry.
func platformIndex(t testing.TB) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, p := range testPlatforms {
		p := p
		adds = append(adds, mutate.IndexAddendum{
			Add:        platformImage(t, p, 1024, 2),
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
}

// entry is one image or index for a layout, with an optional ref.name annotation.
type entry struct {
	img  v1.Image
	idx  v1.ImageIndex
	name string
}

func writeLayout(t testing.TB, dir string, es ...entry) {
	t.Helper()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		var opts []layout.Option
		if e.name != "" {
			opts = append(opts, layout.WithAnnotations(map[string]string{annotationRefName: e.name}))
		}
		if e.img != nil {
			err = lp.AppendImage(e.img, opts...)
		} else {
			err = lp.AppendIndex(e.idx, opts...)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// tarDir writes dir as a tar (an oci-archive when dir is a layout).
func tarDir(t testing.TB, dir, file string) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			_, err = io.Copy(tw, in)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeDockerSave writes img like `docker save`: manifest.json, the config, and UNCOMPRESSED
// layer tars under <n>/layer.tar.
func writeDockerSave(t testing.TB, file string, img v1.Image, repoTags ...string) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, size int64, r io.Reader) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, r); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfgName, _ := img.ConfigName()
	add(cfgName.Hex+".json", int64(len(cfg)), bytes.NewReader(cfg))
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for i, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		p := fmt.Sprintf("%d/layer.tar", i)
		add(p, int64(len(b)), bytes.NewReader(b))
		paths = append(paths, p)
	}
	m, _ := json.Marshal([]map[string]any{{"Config": cfgName.Hex + ".json", "RepoTags": repoTags, "Layers": paths}})
	add("manifest.json", int64(len(m)), bytes.NewReader(m))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// fetchDigest reads ref back from a registry and returns the digest of its raw manifest.
func fetchDigest(t testing.TB, ref string, opts ...remote.Option) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Get(r, opts...)
	if err != nil {
		t.Fatalf("get %s: %v", ref, err)
	}
	h, _, err := v1.SHA256(bytes.NewReader(d.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	if h != d.Digest {
		t.Fatalf("%s: manifest hashes to %s, registry says %s", ref, h, d.Digest)
	}
	return h
}

// staticKeychain answers one host with basic credentials.
type staticKeychain struct {
	host, user, pass string
}

func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.host {
		return &authn.Basic{Username: k.user, Password: k.pass}, nil
	}
	return authn.Anonymous, nil
}

// distribution is Debian's docker-registry (distribution 2.8) with htpasswd auth on 127.0.0.1.
type distribution struct {
	host, user, pass string
}

func (d distribution) keychain() authn.Keychain { return staticKeychain(d) }

func startDistribution(t testing.TB) distribution {
	t.Helper()
	bin := testenv.Tool(t, "docker-registry", "apt-get install docker-registry")
	dir := t.TempDir()
	pass := randomHex(t, 12)
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte("ci:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %s
auth:
  htpasswd:
    realm: ecrpush-test
    path: %s
`, filepath.Join(dir, "data"), addr, randomHex(t, 16), filepath.Join(dir, "htpasswd"))
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				break
			}
		}
		select {
		case <-done:
			t.Fatalf("docker-registry exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not come up on %s: %s", addr, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return distribution{host: addr, user: "ci", pass: pass}
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// skopeoRaw returns the raw manifest skopeo reads for ref (docker://HOST/REPO:TAG).
func skopeoRaw(t testing.TB, ref string, d distribution) []byte {
	t.Helper()
	bin := testenv.Tool(t, "skopeo", "apt-get install skopeo")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "inspect", "--raw", "--tls-verify=false",
		"--creds", d.user+":"+d.pass, "docker://"+ref).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("skopeo inspect %s: %v: %s", ref, err, stderr)
	}
	return out
}

func nameTag(s string) (name.Tag, error) { return name.NewTag(s) }

func mustRef(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

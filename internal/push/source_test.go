package push

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// fixtures builds one file or directory per source kind in dir.
type fixtures struct {
	img      v1.Image      // in layout, oci-archive, both docker archives, remote
	idx      v1.ImageIndex // in layout as "multi", remote as :multi
	layout   string
	archive  string // oci-archive
	save     string // docker-archive, uncompressed layers
	saveGz   string // docker-archive written by tarball.Write, compressed layers
	registry string // host with repo "src" holding :v1 (img) and :multi (idx)
}

func makeFixtures(t testing.TB) *fixtures {
	t.Helper()
	dir := t.TempDir()
	f := &fixtures{
		img: platformImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}, 4096, 3),
		idx: platformIndex(t),
	}
	f.layout = filepath.Join(dir, "layout")
	writeLayout(t, f.layout, entry{img: f.img, name: "v1"}, entry{idx: f.idx, name: "example.com/app:multi"})
	f.archive = filepath.Join(dir, "image.oci.tar")
	single := filepath.Join(dir, "single")
	writeLayout(t, single, entry{img: f.img})
	tarDir(t, single, f.archive)
	f.save = filepath.Join(dir, "save.tar")
	writeDockerSave(t, f.save, f.img, "example.com/app:v1")
	f.saveGz = filepath.Join(dir, "save-gz.tar")
	tag, _ := nameTag("example.com/app:v1")
	if err := tarball.WriteToFile(f.saveGz, tag, f.img); err != nil {
		t.Fatal(err)
	}
	f.registry = testRegistry(t, nil)
	if err := remote.Write(mustRef(t, f.registry+"/src:v1"), f.img); err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(mustRef(t, f.registry+"/src:multi"), f.idx); err != nil {
		t.Fatal(err)
	}
	return f
}

func digestOf(t testing.TB, x interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	d, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func load(t testing.TB, ref string, opts ...SourceOption) (*Artifact, error) {
	t.Helper()
	src, err := ParseSource(ref, opts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = src.Close() })
	return src.Load(context.Background())
}

func TestSourcesKeepDigests(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	imgD, idxD := digestOf(t, f.img), digestOf(t, f.idx)
	arm := v1.Platform{OS: "linux", Architecture: "arm64"}
	for _, tc := range []struct {
		ref   string
		opts  []SourceOption
		want  v1.Hash
		index bool
	}{
		{ref: "oci-layout:" + f.layout + ":v1", want: imgD},
		{ref: "oci-layout:" + f.layout + ":multi", want: idxD, index: true},
		{ref: "oci:" + f.layout + "@" + idxD.String(), want: idxD, index: true},
		{ref: "oci-archive:" + f.archive, want: imgD},
		{ref: f.registry + "/src:v1", want: imgD},
		{ref: "docker://" + f.registry + "/src:multi", want: idxD, index: true},
		{ref: f.registry + "/src@" + idxD.String(), want: idxD, index: true},
		{ref: "oci-layout:" + f.layout + ":multi", opts: []SourceOption{WithPlatform(arm)}, want: childDigest(t, f.idx, arm)},
		{ref: f.registry + "/src:multi", opts: []SourceOption{WithPlatform(arm)}, want: childDigest(t, f.idx, arm)},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			a, err := load(t, tc.ref, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if a.Digest != tc.want {
				t.Errorf("digest %s, want %s", a.Digest, tc.want)
			}
			if (a.Index != nil) != tc.index {
				t.Errorf("index = %v, want %v", a.Index != nil, tc.index)
			}
		})
	}
}

func childDigest(t testing.TB, idx v1.ImageIndex, p v1.Platform) v1.Hash {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Platform.Satisfies(p) {
			return d.Digest
		}
	}
	t.Fatalf("no child for %s", p)
	return v1.Hash{}
}

// A docker archive's layers come out gzip-compressed, with the archive's config byte for byte and
// diff IDs unchanged, and the same archive gives the same digest every time (so re-pushes are no-ops).
func TestDockerArchiveCompressesOnce(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	wantCfg, _ := f.img.RawConfigFile()
	var digests []v1.Hash
	for _, ref := range []string{"docker-archive:" + f.save, "docker-archive:" + f.save + ":example.com/app:v1", "docker-archive:" + f.saveGz} {
		a, err := load(t, ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		cfg, _ := a.Image.RawConfigFile()
		if string(cfg) != string(wantCfg) {
			t.Errorf("%s: config changed", ref)
		}
		ls, _ := a.Image.Layers()
		wantDiff, _ := f.img.ConfigFile()
		for i, l := range ls {
			mt, _ := l.MediaType()
			if mt != types.DockerLayer {
				t.Errorf("%s: layer %d media type %s", ref, i, mt)
			}
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			head := make([]byte, 2)
			_, _ = io.ReadFull(rc, head)
			rc.Close()
			if head[0] != 0x1f || head[1] != 0x8b {
				t.Errorf("%s: layer %d is not gzip", ref, i)
			}
			if d, _ := l.DiffID(); d != wantDiff.RootFS.DiffIDs[i] {
				t.Errorf("%s: layer %d diff id %s, want %s", ref, i, d, wantDiff.RootFS.DiffIDs[i])
			}
		}
		if err := validateImage(a.Image); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
		digests = append(digests, a.Digest)
	}
	if digests[0] != digests[1] {
		t.Errorf("same archive, two digests: %s %s", digests[0], digests[1])
	}
}

// validateImage re-reads every layer and checks digest and size against the manifest.
func validateImage(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	for _, d := range m.Layers {
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		h, n, err := v1.SHA256(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if h != d.Digest || n != d.Size {
			return &mismatch{d.Digest.String(), h.String()}
		}
	}
	return nil
}

type mismatch struct{ want, got string }

func (m *mismatch) Error() string { return "layer " + m.want + " reads as " + m.got }

func TestSourceErrorsAreFixable(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	missing := filepath.Join(t.TempDir(), "nope")
	notLayout := t.TempDir()
	junk := filepath.Join(t.TempDir(), "junk.tar")
	if err := os.WriteFile(junk, []byte("not a tar at all, just some words"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref, want string
		opts      []SourceOption
	}{
		{ref: "containers-storage:foo", want: "not supported"},
		{ref: "oci-layout:" + missing, want: "does not exist"},
		{ref: "docker-archive:" + missing, want: "does not exist"},
		{ref: "oci-archive:" + missing, want: "does not exist"},
		{ref: "oci-layout:" + notLayout, want: "no index.json"},
		{ref: "oci-layout:" + f.layout, want: "add :TAG or @DIGEST"},
		{ref: "oci-layout:" + f.layout + ":nope", want: "has no tag nope"},
		{ref: "oci-archive:" + junk, want: "tar"},
		{ref: "docker-archive:" + junk, want: "docker save"},
		{ref: "docker-archive:" + f.save + ":other", want: "example.com/app:v1"},
		{ref: "oci-layout:" + f.layout + ":multi", opts: []SourceOption{WithPlatform(v1.Platform{OS: "windows", Architecture: "amd64"})}, want: "linux/amd64, linux/arm/v7, linux/arm64/v8"},
		{ref: "oci-layout:" + f.layout + ":v1", opts: []SourceOption{WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"})}, want: "single image for linux/amd64"},
		{ref: f.registry + "/missing:v1", want: "not found"},
		{ref: "UPPER CASE", want: "neither a registry reference"},
		{ref: "", want: "empty"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := load(t, tc.ref, tc.opts...)
			if err == nil {
				t.Fatal("no error")
			}
			if !fixable.Is(err) {
				t.Errorf("not fixable: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

func TestParsePlatform(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"linux/amd64": "linux/amd64", "linux/arm64/v8": "linux/arm64/v8"} {
		p, err := ParsePlatform(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePlatform(%q) = %v, %v", in, p, err)
		}
	}
	for _, bad := range []string{"", "linux", "a/b/c/d"} {
		if _, err := ParsePlatform(bad); !fixable.Is(err) {
			t.Errorf("ParsePlatform(%q): %v, want fixable error", bad, err)
		}
	}
}

// The archive fixture via random.Image is small; make sure a layer-less corner does not panic.
func TestArtifactConstructors(t *testing.T) {
	t.Parallel()
	img, _ := random.Image(10, 1)
	a, err := ImageArtifact("x", img)
	if err != nil || a.Image == nil || a.Index != nil || a.MediaType == "" {
		t.Fatalf("ImageArtifact: %+v %v", a, err)
	}
	if _, err := ImageArtifact("x", nil); err == nil {
		t.Error("nil image accepted")
	}
	if err := (&Artifact{}).validate(); err == nil {
		t.Error("empty artifact valid")
	}
}

// Sources that unpack or spool to disk leave nothing behind once closed.
func TestSourcesRemoveTheirSpoolOnClose(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	for _, ref := range []string{"docker-archive:" + f.save, "oci-archive:" + f.archive} {
		spool := t.TempDir()
		src, err := ParseSource(ref, WithSpoolDir(spool))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Load(context.Background()); err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if entries, _ := os.ReadDir(spool); len(entries) == 0 {
			t.Fatalf("%s: nothing spooled in %s", ref, spool)
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if entries, _ := os.ReadDir(spool); len(entries) != 0 {
			t.Errorf("%s: %d entries left in the spool after Close", ref, len(entries))
		}
		if err := src.Close(); err != nil {
			t.Errorf("%s: second Close: %v", ref, err)
		}
	}
}

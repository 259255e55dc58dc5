package push

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// withAttestation adds a BuildKit-style attestation manifest for the first image of idx, as `docker
// buildx build` with provenance on (the containerd image store keeps it).
func withAttestation(t testing.TB, idx v1.ImageIndex) v1.ImageIndex {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	statement := static.NewLayer([]byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2"}`), "application/vnd.in-toto+json")
	att, err := mutate.Append(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON),
		mutate.Addendum{Layer: statement, Annotations: map[string]string{"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}})
	if err != nil {
		t.Fatal(err)
	}
	return mutate.AppendManifests(idx, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
		Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
		Annotations: map[string]string{
			"vnd.docker.reference.type":   "attestation-manifest",
			"vnd.docker.reference.digest": im.Manifests[0].Digest.String(),
		},
	}})
}

// docker25Save writes a tar as Docker 25+ with the containerd image store writes `docker save` (containerd's
// core/images/archive Export): an OCI layout whose index.json names the image's index, its blobs as the
// content store holds them (compressed), and a manifest.json for the first platform's image. drop lists
// platforms whose blobs are missing, as for an image pulled for one platform (WithSkipMissing).
func docker25Save(t testing.TB, file string, idx v1.ImageIndex, ref string, drop ...string) {
	t.Helper()
	dir := t.TempDir()
	tag := ref[strings.LastIndex(ref, ":")+1:]
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{annotationContainerdName: ref, annotationRefName: tag})); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	first, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := first.Manifest()
	var layers []string
	for _, l := range m.Layers {
		layers = append(layers, "blobs/sha256/"+l.Digest.Hex)
	}
	mj, _ := json.Marshal([]map[string]any{{"Config": "blobs/sha256/" + m.Config.Digest.Hex, "RepoTags": []string{strings.TrimPrefix(ref, "docker.io/library/")}, "Layers": layers}})
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), mj, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Platform == nil || !containsPlatform(drop, d.Platform.String()) {
			continue
		}
		img, _ := idx.Image(d.Digest)
		dm, _ := img.Manifest()
		for _, h := range append([]v1.Hash{d.Digest, dm.Config.Digest}, layerDigests(dm)...) {
			if err := os.Remove(filepath.Join(dir, "blobs", "sha256", h.Hex)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tarDir(t, dir, file)
}

func containsPlatform(list []string, p string) bool {
	for _, x := range list {
		if x == p {
			return true
		}
	}
	return false
}

func layerDigests(m *v1.Manifest) []v1.Hash {
	var out []v1.Hash
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// classicSave writes a tar as Docker 25+ with the classic image store writes `docker save` (moby's
// tarexport): index.json names an OCI manifest made at save time whose layers are the uncompressed tars,
// stored under blobs/sha256/<diffID>, and manifest.json points at the same blobs.
func classicSave(t testing.TB, file string, img v1.Image, ref string) v1.Hash {
	t.Helper()
	dir := t.TempDir()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(b []byte) v1.Hash {
		h, _, _ := v1.SHA256(bytes.NewReader(b))
		if err := os.WriteFile(filepath.Join(blobs, h.Hex), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return h
	}
	cfg, _ := img.RawConfigFile()
	ch := put(cfg)
	ls, _ := img.Layers()
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: ch, Size: int64(len(cfg))}}
	var paths []string
	for _, l := range ls {
		rc, _ := l.Uncompressed()
		b, _ := io.ReadAll(rc)
		rc.Close()
		h := put(b)
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCIUncompressedLayer, Digest: h, Size: int64(len(b))})
		paths = append(paths, "blobs/sha256/"+h.Hex)
	}
	mb, _ := json.Marshal(m)
	mh := put(mb)
	index, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{{
		MediaType: types.OCIManifestSchema1, Digest: mh, Size: int64(len(mb)),
		Annotations: map[string]string{annotationContainerdName: ref, annotationRefName: ref[strings.LastIndex(ref, ":")+1:]},
	}}})
	mj, _ := json.Marshal([]map[string]any{{"Config": "blobs/sha256/" + ch.Hex, "RepoTags": []string{ref}, "Layers": paths}})
	for name, b := range map[string][]byte{"index.json": index, "manifest.json": mj, "oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tarDir(t, dir, file)
	return mh
}

func TestDocker25ArchiveKeepsItsDigest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	idx := withAttestation(t, platformIndex(t))
	want := digestOf(t, idx)
	file := filepath.Join(dir, "save.tar")
	docker25Save(t, file, idx, "docker.io/library/app:v1")

	for _, ref := range []string{"docker-archive:" + file, "docker-archive:" + file + ":app:v1", "docker-archive:" + file + ":docker.io/library/app:v1"} {
		a, err := load(t, ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if a.Digest != want || a.Index == nil || a.DigestComputed != "" {
			t.Errorf("%s: %s index=%v computed=%q; want the archive's index %s, kept", ref, a.Digest, a.Index != nil, a.DigestComputed, want)
		}
	}
	// The same file read as oci-archive: agrees.
	if a, err := load(t, "oci-archive:"+file); err != nil || a.Digest != want {
		t.Errorf("oci-archive: %v %v", a, err)
	}

	// Pushed: the registry holds the index by its digest, with every platform and the attestation.
	reg := testRegistry(t, nil)
	a, err := load(t, "docker-archive:"+file)
	if err != nil {
		t.Fatal(err)
	}
	res, err := newPublisher(t, reg+"/app").Publish(context.Background(), a, []string{"v1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != want || fetchDigest(t, reg+"/app:v1") != want {
		t.Errorf("pushed %s, registry has %s; want %s", res.Digest, fetchDigest(t, reg+"/app:v1"), want)
	}
	pushed, err := remote.Index(mustRef(t, reg+"/app@"+want.String()))
	if err != nil {
		t.Fatal(err)
	}
	pm, _ := pushed.IndexManifest()
	attestations := 0
	for _, d := range pm.Manifests {
		if isAttestation(d) {
			attestations++
			if _, err := remote.Image(mustRef(t, reg+"/app@"+d.Digest.String())); err != nil {
				t.Errorf("attestation manifest %s is not in the registry: %v", d.Digest, err)
			}
		}
	}
	if len(pm.Manifests) != len(testPlatforms)+1 || attestations != 1 {
		t.Errorf("pushed index has %d manifests (%d attestations), want %d platforms and the attestation", len(pm.Manifests), attestations, len(testPlatforms))
	}

	// --platform picks the platform's own manifest out of the archive's index, digest kept.
	im, _ := idx.IndexManifest()
	a, err = load(t, "docker-archive:"+file, WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}))
	if err != nil || a.Digest != im.Manifests[1].Digest {
		t.Errorf("--platform linux/arm64: %v %v, want %s", a, err, im.Manifests[1].Digest)
	}
}

func TestDocker25PartialArchive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	idx := withAttestation(t, platformIndex(t))
	im, _ := idx.IndexManifest()
	file := filepath.Join(dir, "save.tar")
	// Pulled for linux/amd64 only: the other platforms' blobs are not in the content store.
	docker25Save(t, file, idx, "docker.io/library/app:v1", "linux/arm64/v8", "linux/arm/v7")

	var logs bytes.Buffer
	a, err := load(t, "docker-archive:"+file, WithSourceLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != im.Manifests[0].Digest || a.Image == nil || a.DigestComputed != "" {
		t.Errorf("partial index: %s (image=%v computed=%q), want the amd64 image's own %s", a.Digest, a.Image != nil, a.DigestComputed, im.Manifests[0].Digest)
	}
	if !strings.Contains(logs.String(), "holds only part of its image index") {
		t.Errorf("no warning that the index could not be pushed: %s", logs.String())
	}
	_, err = load(t, "docker-archive:"+file, WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}))
	if !fixable.Is(err) || !strings.Contains(err.Error(), "not its linux/arm64 image (it has: linux/amd64)") {
		t.Errorf("--platform of a missing image: %v", err)
	}
}

func TestDockerArchiveComputedDigests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	img := platformImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}, 2048, 2)

	classic := filepath.Join(dir, "classic.tar")
	saveTime := classicSave(t, classic, img, "app:v1")
	a, err := load(t, "docker-archive:"+classic)
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest == saveTime || !strings.Contains(a.DigestComputed, "uncompressed") {
		t.Errorf("classic-store archive: %s computed=%q; the save-time manifest %s has uncompressed layers and must not be pushed", a.Digest, a.DigestComputed, saveTime)
	}
	m, _ := a.Image.Manifest()
	for _, l := range m.Layers {
		if l.MediaType != types.DockerLayer {
			t.Errorf("layer %s pushed as %s, want gzip", l.Digest, l.MediaType)
		}
	}
	// The config is the archive's, byte for byte: the image ID docker shows is kept.
	if cn, _ := a.Image.ConfigName(); cn != digestOf(t, configDigester{img}) {
		t.Errorf("config %s, want %s", cn, digestOf(t, configDigester{img}))
	}

	legacy := filepath.Join(dir, "legacy.tar")
	writeDockerSave(t, legacy, img, "app:v1")
	a, err = load(t, "docker-archive:"+legacy)
	if err != nil || !strings.Contains(a.DigestComputed, "no OCI index.json") {
		t.Errorf("pre-25 archive: %v computed=%q", err, a.DigestComputed)
	}
}

// configDigester is an image's config digest as a Digest() method.
type configDigester struct{ v1.Image }

func (c configDigester) Digest() (v1.Hash, error) { return c.ConfigName() }

func TestDaemonExportFromContainerdStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	idx := withAttestation(t, platformIndex(t))
	file := filepath.Join(dir, "export.tar")
	docker25Save(t, file, idx, "docker.io/library/app:v1")
	var calls atomic.Int64
	host := unixServer(t, fakeEngine(t, file, "app:v1", &calls))
	a, err := load(t, "docker-daemon:app:v1", WithDockerHost(host))
	if err != nil {
		t.Fatal(err)
	}
	if want := digestOf(t, idx); a.Digest != want || a.DigestComputed != "" {
		t.Errorf("daemon export: %s computed=%q, want the engine's image digest %s", a.Digest, a.DigestComputed, want)
	}
}

package ship_test

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// writeDocker25Archive writes path as `docker save` writes it on Docker 25+ with the containerd image store:
// an OCI layout (index.json naming the image's index, annotated as containerd does) plus manifest.json for
// the first platform, and returns the index digest Docker shows for the image.
func writeDocker25Archive(t *testing.T, path, ref string) string {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(1024, 2)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	tag := ref[strings.LastIndex(ref, ":")+1:]
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
	img, _ := adds[0].Add.(v1.Image)
	m, _ := img.Manifest()
	var layers []string
	for _, l := range m.Layers {
		layers = append(layers, "blobs/sha256/"+l.Digest.Hex)
	}
	mj, _ := json.Marshal([]map[string]any{{"Config": "blobs/sha256/" + m.Config.Digest.Hex, "RepoTags": []string{"app:" + tag}, "Layers": layers}})
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), mj, 0o644); err != nil {
		t.Fatal(err)
	}
	tarTree(t, dir, path)
	d, _ := idx.Digest()
	return d.String()
}

func tarTree(t *testing.T, dir, file string) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil || !fi.Mode().IsRegular() {
			return err
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.Copy(tw, in)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestStepPushesDocker25ArchivesWithTheirDigest: the Action pushes a `docker save` from Docker 25+ with the
// image's own digest (the index the archive's index.json names), and says when a pre-25 archive's digest
// is ecrpush's.
func TestStepPushesDocker25ArchivesWithTheirDigest(t *testing.T) {
	sb := startSandbox(t, nil)
	with := map[string]string{"role-to-assume": "arn:aws:iam::111122223333:role/ecrpush-ci", "aws-region": "us-east-1",
		"source": "docker-archive:image.tar", "repository": "team/app", "tags": "v1"}
	s := newContainerStep(t, sb, with, nil)
	want := writeDocker25Archive(t, filepath.Join(s.workspace, "image.tar"), "docker.io/library/app:v1")
	r := s.run(t)
	if r.code != 0 {
		t.Fatalf("exit %d: %s\n%s", r.code, r.errLine, r.stderr)
	}
	if got := githubOutputs(t, readFile(t, s.output))["digest"]; got != want {
		t.Errorf("pushed %s, want the archive's index digest %s", got, want)
	}
	if strings.Contains(r.stderr, "digest computed by ecrpush") {
		t.Errorf("a kept digest was reported as computed:\n%s", r.stderr)
	}

	s = newContainerStep(t, sb, map[string]string{"role-to-assume": with["role-to-assume"], "aws-region": "us-east-1",
		"source": "docker-archive:old.tar", "repository": "team/app", "tags": "old"}, nil)
	writeSource(t, s.workspace, "docker-archive:old.tar")
	r = s.run(t)
	if r.code != 0 || !strings.Contains(r.stderr, "digest computed by ecrpush, not the archive's own: it has no OCI index.json") {
		t.Errorf("pre-25 archive: exit %d, the log does not say the digest is ecrpush's:\n%s", r.code, r.stderr)
	}
}

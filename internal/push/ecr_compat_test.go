package push

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/sandbox"
)

// noMediaType is an image whose manifest omits the top-level mediaType, as OCI allows.
type noMediaType struct {
	v1.Image
	raw []byte
}

func withoutMediaType(t testing.TB, img v1.Image) v1.Image {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	m = m.DeepCopy()
	m.MediaType = ""
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return noMediaType{Image: img, raw: raw}
}

func (n noMediaType) RawManifest() ([]byte, error) { return n.raw, nil }
func (n noMediaType) Size() (int64, error)         { return int64(len(n.raw)), nil }
func (n noMediaType) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(n.raw))
	return h, err
}
func (n noMediaType) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// indexWithoutMediaType is an index whose raw manifest omits the top-level mediaType.
type indexWithoutMediaType struct {
	anIndex // not v1.ImageIndex: that name would hide the ImageIndex method
	raw     []byte
}

type anIndex = v1.ImageIndex

func (n indexWithoutMediaType) RawManifest() ([]byte, error) { return n.raw, nil }
func (n indexWithoutMediaType) Size() (int64, error)         { return int64(len(n.raw)), nil }
func (n indexWithoutMediaType) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(n.raw))
	return h, err
}

// ecrCompatCases are images ECR refuses and other registries take, and one both take.
func ecrCompatCases(t *testing.T) map[string]struct {
	a    *Artifact
	want string // in CheckECR's error; "" for none
} {
	t.Helper()
	good, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	oci := mutate.MediaType(mutate.ConfigMediaType(good, types.OCIConfigJSON), types.OCIManifestSchema1)
	zero, err := mutate.AppendLayers(good, static.NewLayer([]byte{}, types.DockerLayer))
	if err != nil {
		t.Fatal(err)
	}
	child := withoutMediaType(t, oci)
	d, _ := child.Digest()
	sz, _ := child.Size()
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: child, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: d, Size: sz}})
	im, err := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: oci}), types.OCIImageIndex).IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	im = im.DeepCopy()
	im.MediaType = ""
	rawIdx, _ := json.Marshal(im)
	goodIdx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: oci}), types.OCIImageIndex)
	bareIdx := indexWithoutMediaType{anIndex: goodIdx, raw: rawIdx}

	mk := func(name string, img v1.Image, ix v1.ImageIndex) *Artifact {
		var a *Artifact
		var err error
		if img != nil {
			a, err = ImageArtifact(name, img)
		} else {
			a, err = IndexArtifact(name, ix)
		}
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	return map[string]struct {
		a    *Artifact
		want string
	}{
		"good":                     {mk("good", oci, nil), ""},
		"zero-byte layer":          {mk("zero", zero, nil), "zero-byte layer"},
		"manifest without type":    {mk("bare", withoutMediaType(t, oci), nil), "no top-level mediaType"},
		"index without type":       {mk("bare-index", nil, bareIdx), "the index sha256:"},
		"child without media type": {mk("bare-child", nil, idx), "child manifest " + d.String()},
	}
}

// CheckECR refuses what ECR would refuse half-way, with one fixable line; a plain registry takes
// the same images.
func TestCheckECR(t *testing.T) {
	t.Parallel()
	for name, tc := range ecrCompatCases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := CheckECR(tc.a)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !fixable.Is(err) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want a fixable error with %q", err, tc.want)
			case err != nil && (strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "nothing was written")):
				t.Errorf("not one line that says nothing was written: %q", err)
			}
			if _, err := newPublisher(t, testRegistry(t, nil)+"/app").Publish(context.Background(), tc.a, []string{"v1"}); err != nil {
				t.Errorf("a plain registry refused it: %v", err)
			}
		})
	}
}

// Against the sandbox's ECR, which refuses both as ECR does, the push fails before any write.
func TestECRRefusesIncompatibleImagesBeforeWriting(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, 0)
	p, err := NewECR(t.Context(), awsConfig(t, sb, ciRole), "compat")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range ecrCompatCases(t) {
		if tc.want == "" {
			continue
		}
		_, err := p.Publish(context.Background(), tc.a, []string{"v1"})
		if !fixable.Is(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, r := range sb.Log.Entries() {
		if strings.HasPrefix(r.Endpoint, "registry/") && r.Write() {
			t.Errorf("written to the registry: %s %s", r.Method, r.Path)
		}
	}
	_ = sandbox.CIAccount
}

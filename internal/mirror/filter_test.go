package mirror

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ecrpush/ecrpush/internal/push"
)

// index builds a three-platform index with a buildx-style attestation for each image.
func index(t *testing.T) (*push.Artifact, map[string]v1.Hash) {
	t.Helper()
	idx := v1.ImageIndex(empty.Index)
	digests := map[string]v1.Hash{}
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}, {OS: "linux", Architecture: "arm", Variant: "v7"}} {
		img, _ := random.Image(256, 1)
		att, _ := random.Image(64, 1)
		d, _ := img.Digest()
		digests[p.String()] = d
		plat := p
		idx = mutate.AppendManifests(idx,
			mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &plat}},
			mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{attestationRef: d.String(), "vnd.docker.reference.type": "attestation-manifest"}}})
	}
	a, err := push.IndexArtifact("test", idx)
	if err != nil {
		t.Fatal(err)
	}
	return a, digests
}

func TestFilter(t *testing.T) {
	a, digests := index(t)
	same, _ := Filter(a, nil)
	if same != a {
		t.Error("no filter changed the artifact")
	}
	one, err := Filter(a, []v1.Platform{{OS: "linux", Architecture: "arm64"}})
	if err != nil || one.Image == nil || one.Digest != digests["linux/arm64/v8"] {
		t.Fatalf("one platform: %+v %v", one, err)
	}
	two, err := Filter(a, []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm", Variant: "v7"}})
	if err != nil || two.Index == nil || two.Digest == a.Digest {
		t.Fatalf("two platforms: %+v %v", two, err)
	}
	im, _ := two.Index.IndexManifest()
	kept := map[v1.Hash]bool{}
	for _, d := range im.Manifests {
		kept[d.Digest] = true
		if ref := d.Annotations[attestationRef]; ref != "" && ref != digests["linux/amd64"].String() && ref != digests["linux/arm/v7"].String() {
			t.Errorf("the attestation of a dropped image was kept: %s", ref)
		}
	}
	if len(im.Manifests) != 4 || !kept[digests["linux/amd64"]] || !kept[digests["linux/arm/v7"]] || kept[digests["linux/arm64/v8"]] {
		t.Errorf("kept %d manifests: %v", len(im.Manifests), kept)
	}
	if _, err := Filter(a, []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "windows", Architecture: "amd64"}}); err == nil {
		t.Error("a missing platform was not reported")
	}
	img, _ := random.Image(64, 1)
	single, _ := push.ImageArtifact("single", img)
	if _, err := Filter(single, []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}); err == nil {
		t.Error("two platforms of a single image")
	}
}

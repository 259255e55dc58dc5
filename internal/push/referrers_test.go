package push

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/internal/ocitest"
)

// supplyFixture is a BuildKit-style index with attestation manifests, a signature and an SBOM of the
// index, a signature of the SBOM, and a cosign tag-scheme signature.
type supplyFixture struct {
	idx                               v1.ImageIndex
	imgs                              map[string]v1.Image
	sig, sbom, sbomSig, cosign        v1.Image
	idxD, sigD, sbomD, sbomSigD, cosD v1.Hash
}

func newSupplyFixture(t testing.TB) *supplyFixture {
	t.Helper()
	idx, imgs, err := ocitest.BuildxIndex("linux/amd64", "linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	subj, err := ocitest.Describe(idx)
	if err != nil {
		t.Fatal(err)
	}
	f := &supplyFixture{idx: idx, imgs: imgs, sig: ocitest.Signature(subj), sbom: ocitest.SBOM(subj)}
	sbomDesc, _ := ocitest.Describe(f.sbom)
	f.sbomSig = ocitest.Signature(sbomDesc)
	if f.cosign, err = ocitest.CosignSignature(subj); err != nil {
		t.Fatal(err)
	}
	f.idxD, f.sigD, f.sbomD, f.sbomSigD, f.cosD = subj.Digest, digestOf(t, f.sig), sbomDesc.Digest, digestOf(t, f.sbomSig), digestOf(t, f.cosign)
	return f
}

func (f *supplyFixture) layout(t testing.TB, dir string) {
	t.Helper()
	_, err := ocitest.WriteLayout(dir, f.idx, "v1", []v1.Image{f.sig, f.sbom, f.sbomSig, f.cosign},
		[]map[string]string{nil, nil, nil, {annotationRefName: CosignTag(f.idxD, ".sig")}})
	if err != nil {
		t.Fatal(err)
	}
}

func referrerDigests(t testing.TB, rs []*Referrer) map[v1.Hash]*Referrer {
	t.Helper()
	m := map[v1.Hash]*Referrer{}
	for _, r := range rs {
		m[r.Digest] = r
	}
	return m
}

func (f *supplyFixture) check(t *testing.T, a *Artifact, rs []*Referrer) {
	t.Helper()
	if a.Digest != f.idxD || a.Index == nil {
		t.Fatalf("loaded %s, want the index %s", a.Digest, f.idxD)
	}
	got := referrerDigests(t, rs)
	want := map[v1.Hash]struct {
		subject v1.Hash
		at, tag string
	}{
		f.sigD:     {f.idxD, ocitest.NotarySignature, ""},
		f.sbomD:    {f.idxD, ocitest.SPDX, ""},
		f.sbomSigD: {f.sbomD, ocitest.NotarySignature, ""},
		f.cosD:     {f.idxD, "application/vnd.oci.image.config.v1+json", CosignTag(f.idxD, ".sig")},
	}
	if len(got) != len(want) || len(rs) != len(want) {
		t.Fatalf("referrers %v, want %v", got, want)
	}
	for d, w := range want {
		r := got[d]
		if r == nil || r.Subject != w.subject || r.ArtifactType != w.at || r.Tag != w.tag {
			t.Fatalf("referrer %s: %+v, want %+v", d, r, w)
		}
	}
	// Every referrer comes after its subject.
	pos := map[v1.Hash]int{f.idxD: -1}
	for i, r := range rs {
		if _, ok := pos[r.Subject]; !ok {
			t.Fatalf("referrer %s listed before its subject %s", r.Digest, r.Subject)
		}
		pos[r.Digest] = i
	}
}

func TestLayoutReferrers(t *testing.T) {
	f := newSupplyFixture(t)
	dir := filepath.Join(t.TempDir(), "layout")
	f.layout(t, dir)
	ctx := context.Background()
	// No :TAG: the signatures and SBOMs beside the index do not make the layout ambiguous.
	for _, ref := range []string{"oci-layout:" + dir, "oci-layout:" + dir + ":v1"} {
		src, err := ParseSource(ref)
		if err != nil {
			t.Fatal(err)
		}
		a, err := src.Load(ctx)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		rs, err := Referrers(ctx, src, a)
		if err != nil {
			t.Fatal(err)
		}
		f.check(t, a, rs)
		// The attestation manifests stay inside the index: pushed as its children, digests unchanged.
		c, err := a.contents()
		if err != nil {
			t.Fatal(err)
		}
		if len(c.children) != 4 {
			t.Fatalf("index children: %d, want 2 images + 2 attestation manifests", len(c.children))
		}
	}

	archive := filepath.Join(t.TempDir(), "image.oci.tar")
	tarDir(t, dir, archive)
	src, err := ParseSource("oci-archive:" + archive)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	a, err := src.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Referrers(ctx, src, a)
	if err != nil {
		t.Fatal(err)
	}
	f.check(t, a, rs)
}

func TestPlatformDropsAttestations(t *testing.T) {
	f := newSupplyFixture(t)
	dir := filepath.Join(t.TempDir(), "layout")
	f.layout(t, dir)
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	a, err := load(t, "oci-layout:"+dir+":v1", WithPlatform(amd64))
	if err != nil {
		t.Fatal(err)
	}
	want := digestOf(t, f.imgs["linux/amd64"])
	if a.Digest != want || len(a.DroppedAttestations) != 1 ||
		a.DroppedAttestations[0].Annotations["vnd.docker.reference.digest"] != want.String() {
		t.Fatalf("picked %s, dropped %+v", a.Digest, a.DroppedAttestations)
	}
}

func TestRegistryReferrers(t *testing.T) {
	for _, tc := range []struct {
		name string
		api  bool
	}{{"referrers API", true}, {"tag schema fallback", false}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSupplyFixture(t)
			srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(tc.api)))
			t.Cleanup(srv.Close)
			host := strings.TrimPrefix(srv.URL, "http://")
			if err := remote.WriteIndex(mustRef(t, host+"/src:v1"), f.idx); err != nil {
				t.Fatal(err)
			}
			// ggcr writes the sha256-<hex> index itself when the registry has no referrers API.
			for _, x := range []v1.Image{f.sig, f.sbom, f.sbomSig} {
				if err := remote.Write(mustRef(t, host+"/src@"+digestOf(t, x).String()), x); err != nil {
					t.Fatal(err)
				}
			}
			if err := remote.Write(mustRef(t, host+"/src:"+CosignTag(f.idxD, ".sig")), f.cosign); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			src, err := ParseSource(host + "/src:v1")
			if err != nil {
				t.Fatal(err)
			}
			a, err := src.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := Referrers(ctx, src, a)
			if err != nil {
				t.Fatal(err)
			}
			f.check(t, a, rs)
		})
	}
}

func TestDaemonAndDockerArchiveHoldNoReferrers(t *testing.T) {
	fx := makeFixtures(t)
	src, err := ParseSource("docker-archive:" + fx.save)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	a, err := src.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := Referrers(context.Background(), src, a); err != nil || len(rs) != 0 {
		t.Fatalf("docker-archive referrers: %v, %v", rs, err)
	}
}

package push

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Docker 25+ writes `docker save` (and the Engine's GET /images/{name}/get) as an OCI image layout with a
// manifest.json beside it for older readers:
//   - with the containerd image store (containerd's core/images/archive Export): index.json lists the
//     image's own descriptor, usually its OCI index with BuildKit's attestation manifests, annotated
//     io.containerd.image.name and org.opencontainers.image.ref.name; blobs/sha256/ holds the layers as
//     the content store has them (compressed), but only for the platforms present locally (WithSkipMissing);
//     manifest.json's Layers point at those compressed blobs;
//   - with the classic store (moby daemon/internal/image/tarexport/save.go): index.json lists an OCI
//     manifest written at save time, whose layers are the uncompressed tars (application/vnd.oci.image.layer.v1.tar).
// Reading index.json keeps the image's digest (the one `docker images --digests` and the registry it came
// from know) and its attestations. A manifest whose layers are uncompressed is not one any registry has
// seen: pushing it would upload every layer uncompressed, so such archives, and archives without
// index.json, are read through manifest.json and compressed, and the digest is ecrpush's.

// tarBlobs reads the blobs of an OCI image layout inside a tar, where indexTar found them.
type tarBlobs struct {
	file    string
	entries map[string]tarEntry
}

func (b *tarBlobs) entry(h v1.Hash) (tarEntry, bool) {
	return resolveEntry(b.entries, path.Join("blobs", h.Algorithm, h.Hex))
}

// manifestBlob reads a manifest or index blob and checks it hashes to h.
func (b *tarBlobs) manifestBlob(h v1.Hash) ([]byte, error) {
	e, ok := b.entry(h)
	if !ok {
		return nil, fmt.Errorf("blob %s is not in the archive", h)
	}
	raw, err := readEntry(b.file, e, 16<<20)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	if got, _, _ := v1.SHA256(bytes.NewReader(raw)); got != h {
		return nil, fixable.New("blob %s hashes to %s: the archive is corrupt", h, got)
	}
	return raw, nil
}

// archiveWalk is what walking a descriptor found: blobs it lacks and layers stored uncompressed.
type archiveWalk struct {
	missing      []string
	uncompressed bool
}

// walk visits everything under d (indexes nested at most 4 deep).
func (b *tarBlobs) walk(d v1.Descriptor, depth int, w *archiveWalk) error {
	if depth > 4 {
		return fixable.New("index nested more than 4 deep")
	}
	if _, ok := b.entry(d.Digest); !ok {
		w.missing = append(w.missing, describeDescriptor(d))
		return nil
	}
	raw, err := b.manifestBlob(d.Digest)
	if err != nil {
		return err
	}
	switch {
	case d.MediaType.IsIndex():
		im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return fixable.Wrap(err, fmt.Sprintf("index %s is not valid (%v)", d.Digest, err))
		}
		for _, c := range im.Manifests {
			if err := b.walk(c, depth+1, w); err != nil {
				return err
			}
		}
	case d.MediaType.IsImage():
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return fixable.Wrap(err, fmt.Sprintf("manifest %s is not valid (%v)", d.Digest, err))
		}
		if _, ok := b.entry(m.Config.Digest); !ok {
			w.missing = append(w.missing, "config "+m.Config.Digest.String()+" of "+describeDescriptor(d))
		}
		for _, l := range m.Layers {
			if !l.MediaType.IsDistributable() {
				continue // foreign layers live elsewhere
			}
			if l.MediaType == types.OCIUncompressedLayer || l.MediaType == types.DockerUncompressedLayer {
				w.uncompressed = true
			}
			if e, ok := b.entry(l.Digest); !ok {
				w.missing = append(w.missing, "layer "+l.Digest.String()+" of "+describeDescriptor(d))
			} else if e.size != l.Size {
				return fixable.New("layer %s is %d bytes in the archive, %d in its manifest: the archive is corrupt", l.Digest, e.size, l.Size)
			}
		}
	default:
		return fixable.New("%s is a %q, not an image or an index", d.Digest, d.MediaType)
	}
	return nil
}

func describeDescriptor(d v1.Descriptor) string {
	if d.Platform != nil {
		return d.Platform.String() + " (" + d.Digest.String() + ")"
	}
	return d.Digest.String()
}

// image is the image whose manifest blob is h, read in place from the tar.
func (b *tarBlobs) image(h v1.Hash) (v1.Image, error) {
	raw, err := b.manifestBlob(h)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("manifest %s is not valid (%v)", h, err))
	}
	ce, ok := b.entry(m.Config.Digest)
	if !ok {
		return nil, fmt.Errorf("config %s is not in the archive", m.Config.Digest)
	}
	cfg, err := readEntry(b.file, ce, 16<<20)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	mt := m.MediaType
	if mt == "" {
		mt = types.OCIManifestSchema1
	}
	return partial.CompressedToImage(&tarImage{b: b, raw: raw, cfg: cfg, mt: mt, m: m})
}

// index is the index whose blob is h.
func (b *tarBlobs) index(h v1.Hash) (v1.ImageIndex, error) {
	raw, err := b.manifestBlob(h)
	if err != nil {
		return nil, err
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("index %s is not valid (%v)", h, err))
	}
	mt := im.MediaType
	if mt == "" {
		mt = types.OCIImageIndex
	}
	return &tarIndex{b: b, raw: raw, im: im, mt: mt, digest: h}, nil
}

// tarImage is an image whose blobs are entries of the tar (partial.CompressedImageCore).
type tarImage struct {
	b   *tarBlobs
	raw []byte
	cfg []byte
	mt  types.MediaType
	m   *v1.Manifest
}

func (i *tarImage) RawConfigFile() ([]byte, error)      { return i.cfg, nil }
func (i *tarImage) MediaType() (types.MediaType, error) { return i.mt, nil }
func (i *tarImage) RawManifest() ([]byte, error)        { return i.raw, nil }

func (i *tarImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.m.Config.Digest {
		raw := i.cfg
		return &fileLayer{open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
			digest: h, size: int64(len(raw)), mt: i.m.Config.MediaType}, nil
	}
	for _, l := range i.m.Layers {
		if l.Digest != h {
			continue
		}
		e, ok := i.b.entry(h)
		if !ok {
			return nil, fmt.Errorf("layer %s is not in the archive", h)
		}
		return &fileLayer{open: sectionOpener(i.b.file, e), digest: h, size: e.size, mt: l.MediaType}, nil
	}
	return nil, fmt.Errorf("blob %s is not part of this image", h)
}

// tarIndex is an index whose blobs are entries of the tar (v1.ImageIndex).
type tarIndex struct {
	b      *tarBlobs
	raw    []byte
	im     *v1.IndexManifest
	mt     types.MediaType
	digest v1.Hash
}

func (x *tarIndex) MediaType() (types.MediaType, error)       { return x.mt, nil }
func (x *tarIndex) Digest() (v1.Hash, error)                  { return x.digest, nil }
func (x *tarIndex) Size() (int64, error)                      { return int64(len(x.raw)), nil }
func (x *tarIndex) IndexManifest() (*v1.IndexManifest, error) { return x.im.DeepCopy(), nil }
func (x *tarIndex) RawManifest() ([]byte, error)              { return x.raw, nil }
func (x *tarIndex) Image(h v1.Hash) (v1.Image, error)         { return x.b.image(h) }
func (x *tarIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return x.b.index(h)
}

// archiveNameMatches reports whether an index.json entry is the image tag names (docker-archive:FILE:TAG):
// its containerd name (docker.io/library/app:v1) as a reference, or its ref.name annotation (v1).
func archiveNameMatches(d v1.Descriptor, tag string) bool {
	if v := d.Annotations[annotationRefName]; v != "" && v == tag {
		return true
	}
	full := d.Annotations[annotationContainerdName]
	if full == "" {
		return false
	}
	have, err1 := name.NewTag(full)
	want, err2 := name.NewTag(tag)
	return full == tag || (err1 == nil && err2 == nil && have.Name() == want.Name())
}

// loadArchiveIndex reads a docker archive through its index.json. It returns nil and the reason when the
// archive must be read through manifest.json instead (its layers are uncompressed, or index.json does not
// name the image asked for).
func loadArchiveIndex(display, file string, entries map[string]tarEntry, ie tarEntry, tag string, o *sourceOptions) (*Artifact, string, error) {
	var idx v1.IndexManifest
	if err := readJSON(file, ie, &idx); err != nil {
		return nil, "", fixable.Wrap(err, fmt.Sprintf("%s: index.json is not valid (%v)", display, err))
	}
	b := &tarBlobs{file: file, entries: entries}
	// index.json may also list referrers of the image (containerd exports them beside it); those are
	// never the image itself, and have no name.
	var candidates []v1.Descriptor
	seen := map[v1.Hash]bool{}
	for _, d := range idx.Manifests {
		if !d.MediaType.IsImage() && !d.MediaType.IsIndex() {
			continue
		}
		named := d.Annotations[annotationContainerdName] != "" || d.Annotations[annotationRefName] != ""
		if tag != "" && !archiveNameMatches(d, tag) {
			continue
		}
		if tag == "" && !named && len(idx.Manifests) > 1 {
			continue
		}
		if !seen[d.Digest] {
			seen[d.Digest] = true
			candidates = append(candidates, d)
		}
	}
	switch {
	case len(candidates) == 0:
		return nil, "index.json names no image " + tag, nil
	case len(candidates) > 1:
		var names []string
		for _, d := range candidates {
			names = append(names, describeLayoutEntry(d))
		}
		sort.Strings(names)
		return nil, "", fixable.New("%s holds %d images: add :TAG to pick one of %s", display, len(candidates), strings.Join(names, ", "))
	}
	d := candidates[0]
	w := &archiveWalk{}
	if err := b.walk(d, 0, w); err != nil {
		return nil, "", fmt.Errorf("%s: %w", display, err)
	}
	if w.uncompressed {
		return nil, "its layers are stored uncompressed (Docker's classic image store), so no registry has that manifest: ecrpush compressed them", nil
	}
	if len(w.missing) == 0 {
		if d.MediaType.IsIndex() {
			ix, err := b.index(d.Digest)
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", display, err)
			}
			a, err := IndexArtifact(display, ix)
			return a, "", err
		}
		img, err := b.image(d.Digest)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", display, err)
		}
		a, err := ImageArtifact(display, img)
		return a, "", err
	}
	if !d.MediaType.IsIndex() {
		return nil, "", fixable.New("%s is incomplete: %s missing", display, strings.Join(w.missing, ", "))
	}
	return loadPartialIndex(display, b, d, w, o)
}

// loadPartialIndex handles an index some of whose platforms the archive lacks (`docker save` of an image
// pulled for one platform): the index cannot be pushed, the one complete image can, with its own digest.
func loadPartialIndex(display string, b *tarBlobs, d v1.Descriptor, w *archiveWalk, o *sourceOptions) (*Artifact, string, error) {
	ix, err := b.index(d.Digest)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", display, err)
	}
	im, _ := ix.IndexManifest()
	var complete []v1.Descriptor
	var have []string
	for _, c := range im.Manifests {
		if !c.MediaType.IsImage() || c.Platform == nil || isAttestation(c) {
			continue
		}
		cw := &archiveWalk{}
		if err := b.walk(c, 1, cw); err != nil {
			return nil, "", fmt.Errorf("%s: %w", display, err)
		}
		if len(cw.missing) == 0 && !cw.uncompressed {
			complete = append(complete, c)
			have = append(have, c.Platform.String())
		}
	}
	sort.Strings(have)
	pick := -1
	switch {
	case o.platform != nil:
		for i, c := range complete {
			if c.Platform.Satisfies(*o.platform) {
				pick = i
			}
		}
		if pick < 0 {
			return nil, "", fixable.New("%s holds index %s but not its %s image (it has: %s): save the image for that platform (docker save --platform)",
				display, d.Digest, o.platform, strings.Join(have, ", "))
		}
	case len(complete) == 1:
		pick = 0
	default:
		return nil, "", fixable.New("%s holds only part of index %s (%s missing), so the index cannot be pushed with its digest: pick one of its complete images with --platform (%s)",
			display, d.Digest, strings.Join(w.missing, ", "), strings.Join(have, ", "))
	}
	c := complete[pick]
	img, err := b.image(c.Digest)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", display, err)
	}
	a, err := ImageArtifact(fmt.Sprintf("%s (%s)", display, c.Platform), img)
	if err != nil {
		return nil, "", err
	}
	o.log.Warn("the archive holds only part of its image index (docker save of an image pulled for one platform): pushing that platform's own manifest, not the index",
		"source", display, "index", d.Digest.String(), "platform", c.Platform.String(), "digest", c.Digest.String())
	return a, "", nil
}

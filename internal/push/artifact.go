package push

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Artifact is what a Source loads and a Publisher pushes: exactly one of Image or Index, with the
// digest of its manifest (which pushing preserves: the raw manifest bytes are sent unchanged).
type Artifact struct {
	Name      string // human name, e.g. "oci-layout:/tmp/x:v1"
	Digest    v1.Hash
	MediaType types.MediaType
	Image     v1.Image
	Index     v1.ImageIndex
	// DroppedAttestations are the index's BuildKit attestation manifests for the image SelectPlatform
	// picked: they describe it but live only in the index, so a single-platform push leaves them out.
	DroppedAttestations []v1.Descriptor
	// DigestComputed says why the digest is one ecrpush computed rather than the source's own (a docker
	// archive without an OCI index.json, or with uncompressed layers); empty when the source's is kept.
	DigestComputed string
}

// ImageArtifact wraps an image.
func ImageArtifact(name string, img v1.Image) (*Artifact, error) {
	if img == nil {
		return nil, errors.New("push: nil image")
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("%s: manifest digest: %w", name, err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, fmt.Errorf("%s: media type: %w", name, err)
	}
	if mt.IsSchema1() {
		return nil, fixable.New("%s is a Docker schema 1 image, which registries no longer accept: rebuild or re-pull it", name)
	}
	return &Artifact{Name: name, Digest: d, MediaType: mt, Image: img}, nil
}

// IndexArtifact wraps an image index (manifest list).
func IndexArtifact(name string, idx v1.ImageIndex) (*Artifact, error) {
	if idx == nil {
		return nil, errors.New("push: nil index")
	}
	d, err := idx.Digest()
	if err != nil {
		return nil, fmt.Errorf("%s: manifest digest: %w", name, err)
	}
	mt, err := idx.MediaType()
	if err != nil {
		return nil, fmt.Errorf("%s: media type: %w", name, err)
	}
	return &Artifact{Name: name, Digest: d, MediaType: mt, Index: idx}, nil
}

func (a *Artifact) validate() error {
	if a == nil || (a.Image == nil) == (a.Index == nil) {
		return errors.New("push: an Artifact holds exactly one of Image and Index")
	}
	return nil
}

// taggable is what ggcr PUTs: the image or index, whose RawManifest is the original bytes.
func (a *Artifact) taggable() remote.Taggable {
	if a.Index != nil {
		return a.Index
	}
	return a.Image
}

// RawManifest returns the top-level manifest bytes.
func (a *Artifact) RawManifest() ([]byte, error) { return a.taggable().RawManifest() }

// blobInfo is one blob the destination must hold.
type blobInfo struct {
	layer  v1.Layer
	digest v1.Hash
	size   int64
	config bool
}

// contents is everything under an artifact: unique blobs (configs and distributable layers),
// manifests below the top one, and the number of unique layers.
type contents struct {
	blobs     []blobInfo
	manifests int
	manifestB int64
	layers    int
	children  []childManifest // manifests below the top one, deepest first
}

// childManifest is an image or index inside an index, pushed by digest before its parent.
type childManifest struct {
	digest v1.Hash
	t      remote.Taggable
	depth  int // 1: listed by the top index
}

func (c *contents) blobBytes() int64 {
	var n int64
	for _, b := range c.blobs {
		n += b.size
	}
	return n
}

func (a *Artifact) contents() (*contents, error) {
	c := &contents{}
	seen := map[v1.Hash]bool{}
	walkImage := func(img v1.Image) error {
		cl, err := partial.ConfigLayer(img)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := c.add(seen, cl, true); err != nil {
			return err
		}
		ls, err := img.Layers()
		if err != nil {
			return fmt.Errorf("layers: %w", err)
		}
		for _, l := range ls {
			if err := c.add(seen, l, false); err != nil {
				return err
			}
		}
		return nil
	}
	var walkIndex func(idx v1.ImageIndex, depth int) error
	walkIndex = func(idx v1.ImageIndex, depth int) error {
		if depth > 4 {
			return errors.New("index nested more than 4 deep")
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		for _, d := range im.Manifests {
			c.manifests++
			c.manifestB += d.Size
			switch {
			case d.MediaType.IsIndex():
				child, err := idx.ImageIndex(d.Digest)
				if err != nil {
					return fmt.Errorf("child index %s: %w", d.Digest, err)
				}
				if err := walkIndex(child, depth+1); err != nil {
					return err
				}
				c.children = append(c.children, childManifest{digest: d.Digest, t: child, depth: depth + 1})
			case d.MediaType.IsImage():
				child, err := idx.Image(d.Digest)
				if err != nil {
					return fmt.Errorf("child image %s: %w", d.Digest, err)
				}
				if err := walkImage(child); err != nil {
					return fmt.Errorf("child image %s: %w", d.Digest, err)
				}
				c.children = append(c.children, childManifest{digest: d.Digest, t: child, depth: depth + 1})
			default:
				return fmt.Errorf("child %s has media type %q, which is neither an image nor an index", d.Digest, d.MediaType)
			}
		}
		return nil
	}
	var err error
	if a.Index != nil {
		err = walkIndex(a.Index, 0)
	} else {
		err = walkImage(a.Image)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Name, err)
	}
	sort.SliceStable(c.children, func(i, j int) bool { return c.children[i].depth > c.children[j].depth })
	return c, nil
}

func (c *contents) add(seen map[v1.Hash]bool, l v1.Layer, config bool) error {
	d, err := l.Digest()
	if err != nil {
		return fmt.Errorf("layer digest: %w", err)
	}
	if seen[d] {
		return nil
	}
	seen[d] = true
	if !config {
		c.layers++
		mt, err := l.MediaType()
		if err != nil {
			return err
		}
		if !mt.IsDistributable() {
			return nil // foreign layer: the registry never holds it
		}
	}
	size, err := l.Size()
	if err != nil {
		return fmt.Errorf("layer %s size: %w", d, err)
	}
	c.blobs = append(c.blobs, blobInfo{layer: l, digest: d, size: size, config: config})
	return nil
}

// ParsePlatform reads OS/ARCH[/VARIANT] (e.g. linux/arm64/v8).
func ParsePlatform(s string) (v1.Platform, error) {
	s = strings.TrimSpace(s)
	p, err := v1.ParsePlatform(s)
	// go-containerregistry keeps blanks and control characters inside ("linux/ :1" has architecture " ",
	// "0/\f" has "\f"): no platform has any.
	if err != nil || p.OS == "" || p.Architecture == "" || strings.Count(s, "/") > 2 ||
		strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return v1.Platform{}, fixable.New("platform %q is not OS/ARCH[/VARIANT]: use e.g. linux/amd64 or linux/arm64/v8", s)
	}
	return *p, nil
}

// SelectPlatform returns the single image of a for platform p: from an index the one child that
// satisfies p (a missing variant in p matches any), from an image itself if its config matches.
func (a *Artifact) SelectPlatform(p v1.Platform) (*Artifact, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	if a.Image != nil {
		cf, err := a.Image.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("%s: config: %w", a.Name, err)
		}
		have := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		if !have.Satisfies(p) {
			return nil, fixable.New("%s is a single image for %s, not %s: drop --platform or pick another image", a.Name, have, p)
		}
		return a, nil
	}
	im, err := a.Index.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Name, err)
	}
	var match []v1.Descriptor
	var avail []string
	for _, d := range im.Manifests {
		if d.Platform == nil || !d.MediaType.IsImage() {
			continue
		}
		if isAttestation(d) {
			continue
		}
		avail = append(avail, d.Platform.String())
		if d.Platform.Satisfies(p) {
			match = append(match, d)
		}
	}
	sort.Strings(avail)
	switch len(match) {
	case 0:
		return nil, fixable.New("%s has no image for platform %s; it has: %s", a.Name, p, strings.Join(avail, ", "))
	case 1:
	default:
		var got []string
		for _, d := range match {
			got = append(got, d.Platform.String())
		}
		return nil, fixable.New("platform %s matches several images of %s (%s): add the variant", p, a.Name, strings.Join(got, ", "))
	}
	img, err := a.Index.Image(match[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("%s: image %s: %w", a.Name, match[0].Digest, err)
	}
	out, err := ImageArtifact(fmt.Sprintf("%s (%s)", a.Name, match[0].Platform), img)
	if err != nil {
		return nil, err
	}
	if out.Digest != match[0].Digest {
		return nil, fmt.Errorf("%s: image for %s has digest %s, the index says %s", a.Name, p, out.Digest, match[0].Digest)
	}
	for _, d := range im.Manifests {
		if isAttestation(d) && d.Annotations["vnd.docker.reference.digest"] == out.Digest.String() {
			out.DroppedAttestations = append(out.DroppedAttestations, d)
		}
	}
	return out, nil
}

// isAttestation spots BuildKit's attestation manifests (platform unknown/unknown).
func isAttestation(d v1.Descriptor) bool {
	return d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" ||
		(d.Platform != nil && d.Platform.OS == "unknown")
}

package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Referrer is an artifact found next to an image in its source that refers to it: an OCI 1.1
// referrer (a manifest whose subject is the image, or one of an index's images), or a cosign
// tag-scheme artifact (tag sha256-<hex>.sig, .att, .sbom). It is pushed like any Artifact, after its
// subject, with its digest unchanged; Tag is set for the tag scheme (the artifact must be pushed
// under it, since nothing else finds it).
type Referrer struct {
	*Artifact
	Subject      v1.Hash
	ArtifactType string // the manifest's artifactType, else its config media type
	Annotations  map[string]string
	Tag          string
}

// referrerLister is implemented by the sources that can hold referrers: OCI layouts and archives,
// and registries. A Docker daemon and a docker-save archive hold none.
type referrerLister interface {
	referrersOf(ctx context.Context, subjects map[v1.Hash]bool) ([]*Referrer, error)
}

// Referrer limits: how deep referrers of referrers are followed (a signature of an SBOM of an image
// is depth 2) and how many are carried at most.
const (
	referrerDepth = 4
	maxReferrers  = 256
)

// cosignSuffixes are the cosign tag scheme's artifact kinds.
var cosignSuffixes = []string{".sig", ".att", ".sbom"}

// CosignTag is the cosign tag-scheme tag of subject's artifact of kind suffix (".sig", ".att", ".sbom").
func CosignTag(subject v1.Hash, suffix string) string {
	return subject.Algorithm + "-" + subject.Hex + suffix
}

// Referrers returns what src holds that refers to a (the artifact src loaded): referrers of a's
// digest and of every manifest under it, then referrers of those (to a bounded depth), each after
// its subject. Sources that cannot hold referrers return none.
func Referrers(ctx context.Context, src Source, a *Artifact) ([]*Referrer, error) {
	rl, ok := src.(referrerLister)
	if !ok || a == nil {
		return nil, nil
	}
	subjects := map[v1.Hash]bool{a.Digest: true}
	if a.Index != nil {
		c, err := a.contents()
		if err != nil {
			return nil, err
		}
		for _, ch := range c.children {
			subjects[ch.digest] = true
		}
	}
	seen := map[v1.Hash]bool{}
	for d := range subjects {
		seen[d] = true
	}
	var out []*Referrer
	for depth := 0; len(subjects) > 0 && depth < referrerDepth; depth++ {
		found, err := rl.referrersOf(ctx, subjects)
		if err != nil {
			return nil, fmt.Errorf("%s: referrers: %w", src, err)
		}
		next := map[v1.Hash]bool{}
		for _, r := range found {
			if seen[r.Digest] {
				continue
			}
			seen[r.Digest] = true
			next[r.Digest] = true
			out = append(out, r)
		}
		if len(out) > maxReferrers {
			return nil, fixable.New("%s holds more than %d artifacts referring to %s: select fewer with --referrers (signatures, sboms, attestations) or none", src, maxReferrers, a.Digest)
		}
		subjects = next
	}
	return out, nil
}

// manifestFields are the fields of a manifest that make it a referrer.
type manifestFields struct {
	MediaType    types.MediaType `json:"mediaType"`
	ArtifactType string          `json:"artifactType"`
	Config       *struct {
		MediaType string `json:"mediaType"`
	} `json:"config"`
	Subject     *v1.Descriptor    `json:"subject"`
	Annotations map[string]string `json:"annotations"`
}

func parseFields(raw []byte) (manifestFields, error) {
	var m manifestFields
	err := json.Unmarshal(raw, &m)
	return m, err
}

func (m manifestFields) artifactType() string {
	if m.ArtifactType != "" || m.Config == nil {
		return m.ArtifactType
	}
	return m.Config.MediaType
}

// newReferrer wraps a loaded image or index as a Referrer of subject.
func newReferrer(display string, desc v1.Descriptor, img v1.Image, idx v1.ImageIndex, subject v1.Hash, tag string) (*Referrer, error) {
	var a *Artifact
	var raw []byte
	var err error
	if idx != nil {
		if a, err = IndexArtifact(display, idx); err != nil {
			return nil, err
		}
		raw, err = idx.RawManifest()
	} else {
		if a, err = ImageArtifact(display, img); err != nil {
			return nil, err
		}
		raw, err = img.RawManifest()
	}
	if err != nil {
		return nil, err
	}
	if a.Digest != desc.Digest {
		return nil, fmt.Errorf("%s: manifest %s hashes to %s", display, desc.Digest, a.Digest)
	}
	m, err := parseFields(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", display, err)
	}
	return &Referrer{Artifact: a, Subject: subject, ArtifactType: m.artifactType(), Annotations: m.Annotations, Tag: tag}, nil
}

// layoutReferrers reads the referrers of subjects from the OCI layout at dir: index.json entries
// whose manifest has one of them as subject, entries named with a cosign tag (sha256-<hex>.sig …),
// and entries `cosign save` marks as the signatures or attestations of an image it saved.
func layoutReferrers(display, dir string, subjects map[v1.Hash]bool) ([]*Referrer, error) {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	top, err := lp.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := top.IndexManifest()
	if err != nil {
		return nil, err
	}
	// cosign save: one image (kind dev.cosignproject.cosign/image or /imageIndex) and its sigs/atts.
	var saved v1.Hash
	for _, d := range im.Manifests {
		if k := d.Annotations["kind"]; k == "dev.cosignproject.cosign/image" || k == "dev.cosignproject.cosign/imageIndex" {
			saved = d.Digest
		}
	}
	var out []*Referrer
	for _, d := range im.Manifests {
		var subject v1.Hash
		tag := ""
		if subj, suffix, ok := cosignName(d); ok && subjects[subj] {
			subject, tag = subj, CosignTag(subj, suffix)
		}
		switch d.Annotations["kind"] {
		case "dev.cosignproject.cosign/sigs":
			if subjects[saved] {
				subject, tag = saved, CosignTag(saved, ".sig")
			}
		case "dev.cosignproject.cosign/atts":
			if subjects[saved] {
				subject, tag = saved, CosignTag(saved, ".att")
			}
		}
		var img v1.Image
		var idx v1.ImageIndex
		var raw []byte
		switch {
		case d.MediaType.IsIndex():
			if idx, err = top.ImageIndex(d.Digest); err == nil {
				raw, err = idx.RawManifest()
			}
		case d.MediaType.IsImage():
			if img, err = top.Image(d.Digest); err == nil {
				raw, err = img.RawManifest()
			}
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", display, d.Digest, err)
		}
		if tag == "" {
			m, err := parseFields(raw)
			if err != nil || m.Subject == nil || !subjects[m.Subject.Digest] {
				continue
			}
			subject = m.Subject.Digest
		}
		r, err := newReferrer(fmt.Sprintf("%s (@%s)", display, d.Digest), d, img, idx, subject, tag)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// cosignName reads a layout entry's name as a cosign tag-scheme tag: sha256-<hex>.sig|.att|.sbom.
func cosignName(d v1.Descriptor) (v1.Hash, string, bool) {
	n := d.Annotations[annotationRefName]
	if n == "" {
		n = d.Annotations[annotationContainerdName]
	}
	if i := strings.LastIndexAny(n, ":/"); i >= 0 {
		n = n[i+1:]
	}
	for _, s := range cosignSuffixes {
		rest, ok := strings.CutSuffix(n, s)
		if !ok {
			continue
		}
		alg, hex, ok := strings.Cut(rest, "-")
		if !ok {
			continue
		}
		h, err := v1.NewHash(alg + ":" + hex)
		if err != nil {
			continue
		}
		return h, s, true
	}
	return v1.Hash{}, "", false
}

func (s *layoutSource) referrersOf(_ context.Context, subjects map[v1.Hash]bool) ([]*Referrer, error) {
	return layoutReferrers(s.String(), s.r.path, subjects)
}

func (s *ociArchiveSource) referrersOf(_ context.Context, subjects map[v1.Hash]bool) ([]*Referrer, error) {
	s.mu.Lock()
	dir := s.dir
	s.mu.Unlock()
	if dir == "" {
		return nil, errors.New("the archive is not extracted: Load it first")
	}
	return layoutReferrers(s.String(), dir, subjects)
}

// referrersOf asks the source registry: the referrers API (ggcr falls back to the referrers tag
// schema, sha256-<hex>, where the registry has no API), then the cosign tag-scheme tags.
func (s *remoteSource) referrersOf(ctx context.Context, subjects map[v1.Hash]bool) ([]*Referrer, error) {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(s.o.keychain), remote.WithTransport(s.o.transport)}
	repo := s.ref.Context()
	var out []*Referrer
	for subject := range subjects {
		idx, err := remote.Referrers(repo.Digest(subject.String()), opts...)
		if err != nil {
			if isDenied(err) {
				return nil, fixable.Wrap(err, fmt.Sprintf("not allowed to list the referrers of %s@%s (%v): grant pull access, or pass --referrers none", repo, subject, err))
			}
			return nil, fmt.Errorf("list referrers of %s@%s: %w", repo, subject, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, d := range im.Manifests {
			r, err := s.fetchReferrer(repo.Digest(d.Digest.String()), subject, "", opts)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		for _, suffix := range cosignSuffixes {
			tag := CosignTag(subject, suffix)
			desc, err := remote.Head(repo.Tag(tag), opts...)
			if err != nil {
				if isNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("look up %s:%s: %w", repo, tag, err)
			}
			r, err := s.fetchReferrer(repo.Digest(desc.Digest.String()), subject, tag, opts)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *remoteSource) fetchReferrer(ref name.Digest, subject v1.Hash, tag string, opts []remote.Option) (*Referrer, error) {
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("read referrer %s: %w", ref, err)
	}
	display := ref.String()
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		return newReferrer(display, desc.Descriptor, nil, idx, subject, tag)
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return nil, err
		}
		return newReferrer(display, desc.Descriptor, img, nil, subject, tag)
	}
	return nil, fmt.Errorf("referrer %s is a %q, neither an image manifest nor an index", ref, desc.MediaType)
}

// isReferrerEntry reports whether a layout index.json entry is a supply-chain artifact rather than an
// image to push: an OCI referrer (it has a subject), a cosign tag-scheme artifact, or what `cosign
// save` stores beside the image. An untagged layout holding an image and its referrers thus still
// names one image.
func isReferrerEntry(top v1.ImageIndex, d v1.Descriptor) bool {
	if _, _, ok := cosignName(d); ok {
		return true
	}
	switch d.Annotations["kind"] {
	case "dev.cosignproject.cosign/sigs", "dev.cosignproject.cosign/atts":
		return true
	}
	var raw []byte
	var err error
	switch {
	case d.MediaType.IsImage():
		var img v1.Image
		if img, err = top.Image(d.Digest); err == nil {
			raw, err = img.RawManifest()
		}
	case d.MediaType.IsIndex():
		var idx v1.ImageIndex
		if idx, err = top.ImageIndex(d.Digest); err == nil {
			raw, err = idx.RawManifest()
		}
	default:
		return false
	}
	if err != nil {
		return false
	}
	m, err := parseFields(raw)
	return err == nil && m.Subject != nil
}

package supplychain

import (
	"context"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/internal/push"
)

// Select keeps the referrers sel carries, in order. A referrer of a referrer goes only with its
// subject: a signature of an SBOM is dropped when SBOMs are.
func Select(refs []*push.Referrer, sel Selection) []*push.Referrer {
	kept := map[v1.Hash]bool{}
	var out []*push.Referrer
	for _, r := range refs {
		k := Classify(r.ArtifactType, r.Annotations, r.Tag)
		if !sel.Includes(k, r.ArtifactType) {
			continue
		}
		if isReferrer(refs, r.Subject) && !kept[r.Subject] {
			continue
		}
		kept[r.Digest] = true
		out = append(out, r)
	}
	return out
}

func isReferrer(refs []*push.Referrer, d v1.Hash) bool {
	for _, r := range refs {
		if r.Digest == d {
			return true
		}
	}
	return false
}

// Describe is the report's line for a referrer.
func Describe(r *push.Referrer) Artifact {
	return Artifact{Digest: r.Digest.String(), Kind: Classify(r.ArtifactType, r.Annotations, r.Tag),
		ArtifactType: r.ArtifactType, Subject: r.Subject.String(), Tag: r.Tag, Annotations: r.Annotations}
}

// Push publishes the selected referrers after the image (call it once Publish of the image
// returned), one after another so each lands after its subject, with their digests unchanged and a
// cosign tag-scheme artifact under its tag. It returns what it pushed; on failure the error names what
// was pushed and what was not.
func Push(ctx context.Context, pub push.Publisher, refs []*push.Referrer, sel Selection) ([]Artifact, error) {
	var done []Artifact
	for _, r := range Select(refs, sel) {
		var tags []string
		if r.Tag != "" {
			tags = []string{r.Tag}
		}
		if _, err := pub.Publish(ctx, r.Artifact, tags); err != nil {
			return done, fmt.Errorf("the image is pushed%s, but %s failed: %w", pushedList(done), Describe(r), err)
		}
		done = append(done, Describe(r))
	}
	return done, nil
}

func pushedList(done []Artifact) string {
	if len(done) == 0 {
		return ""
	}
	var s []string
	for _, a := range done {
		s = append(s, string(a.Kind)+" "+a.Digest)
	}
	return " with " + strings.Join(s, ", ")
}

// CopyReferrers copies the referrers of digest that sel carries from src to dst — read with src's
// credentials, written with dst's — digests unchanged, cosign tag-scheme artifacts under their tags,
// each after its subject; artifacts dst already holds are not sent again. Copy mode and sync call it
// after the image itself is at dst. It returns every selected artifact now at dst.
func CopyReferrers(ctx context.Context, src, dst *Registry, digest v1.Hash, sel Selection) ([]Artifact, error) {
	if sel.None() {
		return nil, nil
	}
	all, err := src.Referrers(ctx, digest)
	if err != nil {
		return nil, err
	}
	kept := map[string]bool{digest.String(): true}
	var out []Artifact
	for _, a := range all {
		if !sel.Includes(a.Kind, a.ArtifactType) || !kept[a.Subject] {
			continue
		}
		if err := copyOne(ctx, src, dst, a); err != nil {
			return out, fmt.Errorf("copy %s from %s to %s: %w", a, src.Name, dst.Name, err)
		}
		kept[a.Digest] = true
		out = append(out, a)
	}
	return out, nil
}

func copyOne(ctx context.Context, src, dst *Registry, a Artifact) error {
	target := dst.Repo.Digest(a.Digest)
	if d, err := remote.Head(target, dst.options(ctx)...); err == nil && d.Digest.String() == a.Digest && a.Tag == "" {
		return nil
	}
	desc, err := remote.Get(src.Repo.Digest(a.Digest), src.options(ctx)...)
	if err != nil {
		return src.readError(err, "read "+a.Digest)
	}
	var put remote.Taggable
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		if err := remote.WriteIndex(target, idx, dst.options(ctx)...); err != nil {
			return dst.writeError(err, a)
		}
		put = idx
	default:
		img, err := desc.Image()
		if err != nil {
			return err
		}
		if err := remote.Write(target, img, dst.options(ctx)...); err != nil {
			return dst.writeError(err, a)
		}
		put = img
	}
	if a.Tag != "" {
		if err := remote.Tag(dst.Repo.Tag(a.Tag), put, dst.options(ctx)...); err != nil {
			return dst.writeError(err, a)
		}
	}
	return nil
}

// Subjects are the digests referrers of a may name: a itself and, for an index, every manifest in it
// (cosign sign --recursive signs each platform image).
func Subjects(a *push.Artifact) []v1.Hash {
	out := []v1.Hash{a.Digest}
	if a.Index == nil {
		return out
	}
	if im, err := a.Index.IndexManifest(); err == nil {
		for _, d := range im.Manifests {
			out = append(out, d.Digest)
		}
	}
	return out
}

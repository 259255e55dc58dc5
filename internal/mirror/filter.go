package mirror

import (
	"fmt"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/push"
)

// attestationRef is the annotation buildx puts on an attestation manifest, naming the image it describes.
const attestationRef = "vnd.docker.reference.digest"

// Filter narrows an artifact to platforms. No platforms: unchanged (the source digest is kept). One:
// that platform's image manifest, whose digest is the source's own for it. Several: an index of just
// those (a new digest, since the index is rewritten), with the attestations of the images kept.
func Filter(a *push.Artifact, platforms []v1.Platform) (*push.Artifact, error) {
	switch {
	case len(platforms) == 0:
		return a, nil
	case len(platforms) == 1:
		return a.SelectPlatform(platforms[0])
	case a.Index == nil:
		return nil, fixable.New("%s is a single image, not an index: list at most one platform for it", a.Name)
	}
	im, err := a.Index.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Name, err)
	}
	keep := map[v1.Hash]bool{}
	var avail []string
	for _, d := range im.Manifests {
		if d.Platform == nil || d.Annotations[attestationRef] != "" {
			continue
		}
		avail = append(avail, d.Platform.String())
		for _, p := range platforms {
			if d.Platform.Satisfies(p) {
				keep[d.Digest] = true
			}
		}
	}
	for _, p := range platforms {
		found := false
		for _, d := range im.Manifests {
			if keep[d.Digest] && d.Platform != nil && d.Platform.Satisfies(p) {
				found = true
			}
		}
		if !found {
			sort.Strings(avail)
			return nil, fixable.New("%s has no image for platform %s; it has: %s", a.Name, p, strings.Join(avail, ", "))
		}
	}
	idx := mutate.RemoveManifests(a.Index, func(d v1.Descriptor) bool {
		if ref := d.Annotations[attestationRef]; ref != "" {
			h, err := v1.NewHash(ref)
			return err != nil || !keep[h]
		}
		return !keep[d.Digest]
	})
	return push.IndexArtifact(a.Name, idx)
}

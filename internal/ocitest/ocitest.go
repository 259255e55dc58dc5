package ocitest

import (
	"bytes"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media and artifact types the tests use (the values the tools that write them use).
const (
	EmptyConfig        = "application/vnd.oci.empty.v1+json"
	NotarySignature    = "application/vnd.cncf.notary.signature"
	SPDX               = "application/spdx+json"
	CycloneDX          = "application/vnd.cyclonedx+json"
	InToto             = "application/vnd.in-toto+json"
	CosignSimpleSig    = "application/vnd.dev.cosign.simplesigning.v1+json"
	AttestationRefType = "attestation-manifest" // BuildKit's vnd.docker.reference.type
)

// Layer is one blob of an artifact.
type Layer struct {
	MediaType   types.MediaType
	Data        []byte
	Annotations map[string]string
}

// artifact is an image whose manifest is written as given (so it can carry artifactType).
type artifact struct {
	manifest []byte
	config   []byte
	layers   map[v1.Hash]Layer
}

func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	l, ok := a.layers[h]
	if !ok {
		return nil, fmt.Errorf("ocitest: no layer %s", h)
	}
	return static.NewLayer(l.Data, l.MediaType), nil
}

// Artifact is an OCI 1.1 artifact: artifactType, the empty config, one layer per Layer, and subject
// (nil: none).
func Artifact(artifactType string, subject *v1.Descriptor, annotations map[string]string, layers ...Layer) v1.Image {
	cfg := []byte("{}")
	cd, _, _ := v1.SHA256(bytes.NewReader(cfg))
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     types.OCIManifestSchema1,
		"artifactType":  artifactType,
		"config":        map[string]any{"mediaType": EmptyConfig, "digest": cd.String(), "size": len(cfg)},
	}
	a := &artifact{config: cfg, layers: map[v1.Hash]Layer{}}
	ls := []map[string]any{}
	for _, l := range layers {
		h, n, _ := v1.SHA256(bytes.NewReader(l.Data))
		a.layers[h] = l
		d := map[string]any{"mediaType": l.MediaType, "digest": h.String(), "size": n}
		if len(l.Annotations) > 0 {
			d["annotations"] = l.Annotations
		}
		ls = append(ls, d)
	}
	m["layers"] = ls
	if subject != nil {
		m["subject"] = map[string]any{"mediaType": subject.MediaType, "digest": subject.Digest.String(), "size": subject.Size}
	}
	if len(annotations) > 0 {
		m["annotations"] = annotations
	}
	a.manifest, _ = json.Marshal(m)
	img, err := partial.CompressedToImage(a)
	if err != nil {
		panic(err) // cannot happen: every method above is defined
	}
	return img
}

// Signature is a Notary Project-shaped signature artifact for subject (not a real signature).
func Signature(subject v1.Descriptor) v1.Image {
	env := []byte(`{"payload":"e30","protected":"e30","signature":"` + subject.Digest.Hex[:16] + `"}`)
	return Artifact(NotarySignature, &subject, map[string]string{"io.cncf.notary.x509chain.thumbprint#S256": `["00"]`},
		Layer{MediaType: "application/jose+json", Data: env})
}

// SBOM is an SPDX SBOM artifact for subject.
func SBOM(subject v1.Descriptor) v1.Image {
	doc := []byte(`{"spdxVersion":"SPDX-2.3","name":"` + subject.Digest.String() + `","packages":[]}`)
	return Artifact(SPDX, &subject, map[string]string{"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
		Layer{MediaType: SPDX, Data: doc})
}

// CosignSignature is a cosign tag-scheme signature image (pushed under sha256-<hex>.sig): an image
// config and one simple-signing layer whose annotation holds the signature.
func CosignSignature(subject v1.Descriptor) (v1.Image, error) {
	payload := []byte(`{"critical":{"identity":{"docker-reference":"example"},"image":{"docker-manifest-digest":"` +
		subject.Digest.String() + `"},"type":"cosign container image signature"},"optional":null}`)
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:       static.NewLayer(payload, CosignSimpleSig),
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": "MEUCIQ"},
	})
	if err != nil {
		return nil, err
	}
	return mutate.MediaType(mutate.ConfigMediaType(img, types.OCIConfigJSON), types.OCIManifestSchema1), nil
}

// Describe is the descriptor of an image or index (for a subject).
func Describe(t partial.Describable) (v1.Descriptor, error) {
	d, err := partial.Descriptor(t)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, nil
}

// LabeledImage is a random OCI image whose config carries labels (e.g. the sandbox's findings label).
func LabeledImage(labels map[string]string) (v1.Image, error) {
	img, err := random.Image(512, 1)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = labels
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.MediaType(mutate.ConfigMediaType(img, types.OCIConfigJSON), types.OCIManifestSchema1), nil
}

// BuildxIndex is an OCI index the way `docker buildx build --provenance --sbom` writes it: one image per
// platform and, for each, an attestation manifest (platform unknown/unknown, annotations
// vnd.docker.reference.type=attestation-manifest and vnd.docker.reference.digest) holding in-toto
// provenance and SPDX statements. It returns the index and the images by platform.
func BuildxIndex(platforms ...string) (v1.ImageIndex, map[string]v1.Image, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	imgs := map[string]v1.Image{}
	var adds []mutate.IndexAddendum
	for _, ps := range platforms {
		p, err := v1.ParsePlatform(ps)
		if err != nil {
			return nil, nil, err
		}
		img, err := LabeledImage(nil)
		if err != nil {
			return nil, nil, err
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return nil, nil, err
		}
		imgs[ps] = img
		d, err := Describe(img)
		if err != nil {
			return nil, nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{MediaType: d.MediaType, Platform: p}})
		att, err := attestation(d.Digest)
		if err != nil {
			return nil, nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1,
			Platform:  &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{
				"vnd.docker.reference.type":   AttestationRefType,
				"vnd.docker.reference.digest": d.Digest.String(),
			},
		}})
	}
	return mutate.AppendManifests(idx, adds...), imgs, nil
}

func attestation(subject v1.Hash) (v1.Image, error) {
	stmt := func(pred string) []byte {
		return []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"` + pred +
			`","subject":[{"name":"pkg:docker/example/app","digest":{"sha256":"` + subject.Hex + `"}}],"predicate":{}}`)
	}
	img, err := mutate.Append(empty.Image,
		mutate.Addendum{Layer: static.NewLayer(stmt("https://slsa.dev/provenance/v0.2"), InToto),
			Annotations: map[string]string{"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}},
		mutate.Addendum{Layer: static.NewLayer(stmt("https://spdx.dev/Document"), InToto),
			Annotations: map[string]string{"in-toto.io/predicate-type": "https://spdx.dev/Document"}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "unknown", "unknown"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	return mutate.MediaType(mutate.ConfigMediaType(img, types.OCIConfigJSON), types.OCIManifestSchema1), nil
}

// WriteLayout writes an OCI layout at dir holding idx under ref name tag, and every extra image as an
// index.json entry of its own (how oras and buildx export referrers: untagged, found by subject), with
// the given annotations per extra (may be nil).
func WriteLayout(dir string, idx v1.ImageIndex, tag string, extras []v1.Image, extraAnnotations []map[string]string) (layout.Path, error) {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		return "", err
	}
	for i, x := range extras {
		var opts []layout.Option
		if i < len(extraAnnotations) && extraAnnotations[i] != nil {
			opts = append(opts, layout.WithAnnotations(extraAnnotations[i]))
		}
		if err := p.AppendImage(x, opts...); err != nil {
			return "", err
		}
	}
	return p, nil
}

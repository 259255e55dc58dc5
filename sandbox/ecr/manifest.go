package ecr

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Manifest media types ECR accepts on push.
const (
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex       = "application/vnd.oci.image.index.v1+json"
	maxManifestSize  = 4 << 20 // ImageManifest max length in the service model
)

func isIndexType(mt string) bool { return mt == mtDockerList || mt == mtOCIIndex }

func isManifestType(mt string) bool {
	return mt == mtDockerManifest || mt == mtDockerList || mt == mtOCIManifest || mt == mtOCIIndex
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// rawManifest is the union of image manifest and index fields we need.
type rawManifest struct {
	SchemaVersion *int         `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	ArtifactType  string       `json:"artifactType"`
	Config        *descriptor  `json:"config"`
	Layers        []descriptor `json:"layers"`
	Manifests     []descriptor `json:"manifests"`
	Subject       *descriptor  `json:"subject"`
}

// parsedManifest is a validated manifest ready to store.
type parsedManifest struct {
	mediaType    string
	artifactType string
	digest       string
	body         []byte
	blobs        []descriptor // config + distributable layers (images)
	children     []descriptor // child manifests (indexes)
}

// msgNoMediaType is ECR's constraint message for a manifest without a top-level mediaType.
const msgNoMediaType = "Invalid JSON syntax"

// parseManifest validates body as a manifest of the given media type ("" → from the body).
// It returns a human message on failure (the caller picks the protocol's error code).
func parseManifest(body []byte, contentType string) (*parsedManifest, string) {
	if len(body) == 0 {
		return nil, "manifest is empty"
	}
	if len(body) > maxManifestSize {
		return nil, fmt.Sprintf("manifest exceeds %d bytes", maxManifestSize)
	}
	var m rawManifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, "manifest is not valid JSON: " + err.Error()
	}
	if m.MediaType == "" {
		// OCI allows omitting mediaType; ECR does not, whatever the Content-Type says.
		return nil, msgNoMediaType
	}
	mt := strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0])
	switch {
	case mt == "":
		mt = m.MediaType
	case m.MediaType != mt:
		return nil, fmt.Sprintf("manifest mediaType %q does not match %q", m.MediaType, mt)
	}
	if !isManifestType(mt) {
		return nil, fmt.Sprintf("unsupported manifest media type %q", mt)
	}
	if m.SchemaVersion == nil || *m.SchemaVersion != 2 {
		return nil, "manifest schemaVersion must be 2"
	}
	sum := sha256.Sum256(body)
	p := &parsedManifest{mediaType: mt, artifactType: m.ArtifactType, digest: "sha256:" + hex.EncodeToString(sum[:]), body: body}
	if isIndexType(mt) {
		if m.Config != nil || m.Layers != nil {
			return nil, "an index must not have config or layers"
		}
		for i, d := range m.Manifests {
			if !anyDigestPattern.MatchString(d.Digest) {
				return nil, fmt.Sprintf("manifests[%d] has an invalid digest %q", i, d.Digest)
			}
			p.children = append(p.children, d)
		}
		return p, ""
	}
	if m.Manifests != nil {
		return nil, "an image manifest must not have manifests"
	}
	if m.Config == nil {
		return nil, "image manifest has no config"
	}
	if !anyDigestPattern.MatchString(m.Config.Digest) {
		return nil, fmt.Sprintf("config has an invalid digest %q", m.Config.Digest)
	}
	if p.artifactType == "" { // ECR reports the config media type as artifactMediaType
		p.artifactType = m.Config.MediaType
	}
	p.blobs = append(p.blobs, *m.Config)
	for i, l := range m.Layers {
		if !anyDigestPattern.MatchString(l.Digest) {
			return nil, fmt.Sprintf("layers[%d] has an invalid digest %q", i, l.Digest)
		}
		if nonDistributable(l.MediaType) {
			continue // foreign layers live elsewhere; registries never hold them
		}
		p.blobs = append(p.blobs, l)
	}
	return p, ""
}

func nonDistributable(mt string) bool {
	return strings.Contains(mt, ".foreign.") || strings.Contains(mt, ".nondistributable.")
}

package push

import (
	"encoding/json"
	"fmt"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// CheckECR refuses, before anything is written, an artifact that ECR would refuse half-way through a
// push although other registries take it:
//   - a zero-byte blob: ECR cannot complete an upload that has no parts (400 BLOB_UPLOAD_INVALID);
//   - an OCI manifest or index without its top-level mediaType: ECR answers 405 UNSUPPORTED
//     ("Invalid JSON syntax") on the PUT.
//
// Both are ECR's documented or observed behaviour (see sandbox/ecr/doc.go for the sources); a plain
// registry gets the same image unchanged.
func CheckECR(a *Artifact) error {
	if err := a.validate(); err != nil {
		return err
	}
	c, err := a.contents()
	if err != nil {
		return err
	}
	for _, b := range c.blobs {
		if b.size == 0 {
			what := "layer"
			if b.config {
				what = "config"
			}
			return fixable.New("%s has an empty (zero-byte) %s blob %s, which ECR cannot store (an upload with no data is refused): rebuild the image without the empty layer (e.g. drop the empty COPY/RUN step), or push it to another registry; nothing was written", a.Name, what, b.digest)
		}
	}
	check := func(digest string, raw []byte) error {
		var m struct {
			SchemaVersion int             `json:"schemaVersion"`
			MediaType     types.MediaType `json:"mediaType"`
			Config        json.RawMessage `json:"config"`
			Manifests     json.RawMessage `json:"manifests"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("%s: manifest %s: %w", a.Name, digest, err)
		}
		if m.MediaType == "" {
			return fixable.New("%s: the OCI manifest %s has no top-level mediaType, which ECR refuses (405 Invalid JSON syntax): rebuild it with a tool that writes mediaType (docker buildx, buildah, ko, crane all do) — re-encoding it would change its digest; nothing was written", a.Name, digest)
		}
		return nil
	}
	raw, err := a.RawManifest()
	if err != nil {
		return err
	}
	if err := check(a.Digest.String(), raw); err != nil {
		return err
	}
	for _, ch := range c.children {
		raw, err := ch.t.RawManifest()
		if err != nil {
			return err
		}
		if err := check(ch.digest.String(), raw); err != nil {
			return err
		}
	}
	return nil
}

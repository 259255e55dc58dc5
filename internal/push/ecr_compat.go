package push

import (
	"encoding/json"
	"fmt"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// CheckECR refuses, before anything is written, an artifact ECR would refuse half-way: a
// zero-byte blob (ECR cannot complete an upload without data: 400 BLOB_UPLOAD_INVALID "does not
// have any parts") and an OCI manifest or index without a top-level mediaType (which the OCI spec
// allows and ECR answers with 405 UNSUPPORTED "Invalid JSON syntax"), children of an index
// included. The error is one fixable line saying which and what to do. Other registries take both;
// call it for ECR destinations only (sandbox/ecr's doc.go has the sources).
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
			what := "a zero-byte layer"
			if b.config {
				what = "a zero-byte config"
			}
			return fixable.New("%s has %s (%s), which ECR cannot store (an upload without data is refused): rebuild it without the empty blob — an empty config is the 2-byte {} of OCI's empty descriptor, not zero bytes; nothing was written", a.Name, what, b.digest)
		}
	}
	check := func(what string, raw []byte) error {
		var m struct {
			MediaType *string `json:"mediaType"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("%s: %s: %w", a.Name, what, err)
		}
		if m.MediaType == nil || *m.MediaType == "" {
			return fixable.New("%s: %s has no top-level mediaType, which ECR refuses (\"Invalid JSON syntax\") though OCI allows it: rebuild or convert the image with a tool that writes it (for example docker buildx, or skopeo copy to an OCI layout), then push that — its digest will change; nothing was written", a.Name, what)
		}
		return nil
	}
	raw, err := a.RawManifest()
	if err != nil {
		return fmt.Errorf("%s: manifest: %w", a.Name, err)
	}
	what := "the manifest"
	if a.Index != nil {
		what = "the index"
	}
	if err := check(what+" "+a.Digest.String(), raw); err != nil {
		return err
	}
	for _, ch := range c.children {
		raw, err := ch.t.RawManifest()
		if err != nil {
			return fmt.Errorf("%s: manifest %s: %w", a.Name, ch.digest, err)
		}
		if err := check("child manifest "+ch.digest.String(), raw); err != nil {
			return err
		}
	}
	return nil
}

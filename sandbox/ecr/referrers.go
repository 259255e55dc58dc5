package ecr

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
)

// OCI 1.1 referrers: the registry's GET /v2/<name>/referrers/<digest> (distribution spec "Listing
// Referrers") and the API's ListImageReferrers. Both are computed from the stored manifests: a
// manifest refers to the image its "subject" names. Sources and assumptions are in doc.go.

// referrer is one manifest whose subject is the image being asked about, as a descriptor.
type referrer struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// manifestMeta is what the referrers listings read from a stored manifest.
type manifestMeta struct {
	ArtifactType string `json:"artifactType"`
	Config       *struct {
		MediaType string `json:"mediaType"`
	} `json:"config"`
	Subject *struct {
		Digest string `json:"digest"`
	} `json:"subject"`
	Annotations map[string]string `json:"annotations"`
}

// subjectOf returns the subject digest of a manifest ("" when it has none or is not JSON).
func subjectOf(manifest []byte) string {
	var m manifestMeta
	if json.Unmarshal(manifest, &m) != nil || m.Subject == nil {
		return ""
	}
	return m.Subject.Digest
}

// referrersLocked lists the images of r whose subject is digest, sorted by digest. The
// descriptor's artifactType is the manifest's artifactType, else its config's media type, as
// the distribution spec says. Callers hold rg.mu.
func (r *repository) referrersLocked(digest string) []referrer {
	out := []referrer{}
	for _, img := range r.images {
		var m manifestMeta
		if json.Unmarshal(img.manifest, &m) != nil || m.Subject == nil || m.Subject.Digest != digest {
			continue
		}
		at := m.ArtifactType
		if at == "" && m.Config != nil {
			at = m.Config.MediaType
		}
		out = append(out, referrer{MediaType: img.mediaType, Digest: img.digest, Size: int64(len(img.manifest)),
			ArtifactType: at, Annotations: m.Annotations})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out
}

// referrers lists the referrers of digest in repo (ok is false when the repository is missing).
func (rg *registry) referrers(repo, digest string) ([]referrer, bool) {
	rg.mu.RLock()
	defer rg.mu.RUnlock()
	r, ok := rg.repos[repo]
	if !ok {
		return nil, false
	}
	return r.referrersLocked(digest), true
}

// serveReferrers is GET /v2/<name>/referrers/<digest>[?artifactType=…]: an OCI image index of
// the referrers, 200 even when the subject does not exist (the spec's rule), filtered by
// artifactType with OCI-Filters-Applied saying so.
func (rg *registry) serveReferrers(w http.ResponseWriter, r *http.Request, rt route) *regError {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return newRegError(http.StatusMethodNotAllowed, "UNSUPPORTED", "The operation is unsupported.")
	}
	if !digestPattern.MatchString(rt.ref) {
		return newRegError(http.StatusBadRequest, "DIGEST_INVALID", "Invalid digest '%s'", rt.ref)
	}
	refs, ok := rg.referrers(rt.repo, rt.ref)
	if !ok {
		return newRegError(http.StatusNotFound, "NAME_UNKNOWN",
			"The repository with name '%s' does not exist in the registry with id '%s'", rt.repo, rg.id.Account)
	}
	h := w.Header()
	if want, filtered := r.URL.Query()["artifactType"]; filtered && len(want) > 0 {
		kept := []referrer{}
		for _, d := range refs {
			if contains(want, d.ArtifactType) {
				kept = append(kept, d)
			}
		}
		refs = kept
		h.Set("OCI-Filters-Applied", "artifactType")
	}
	body, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex, "manifests": refs})
	h.Set("Content-Type", mtOCIIndex)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
	return nil
}

// imageReferrer is ListImageReferrers' ImageReferrer shape.
type imageReferrer struct {
	Digest         string            `json:"digest"`
	MediaType      string            `json:"mediaType"`
	ArtifactType   string            `json:"artifactType,omitempty"`
	Size           int64             `json:"size"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	ArtifactStatus string            `json:"artifactStatus"`
}

// opListImageReferrers lists the artifacts whose subject is subjectId.imageDigest. It needs
// ecr:BatchGetImage on the repository (the SDK's documentation of the operation). A subject
// that does not exist lists nothing: the operation's error list has no ImageNotFoundException.
func opListImageReferrers(c *call) (any, *apiError) {
	var in struct {
		RegistryID     string `json:"registryId"`
		RepositoryName string `json:"repositoryName"`
		SubjectID      *struct {
			ImageDigest string `json:"imageDigest"`
		} `json:"subjectId"`
		Filter *struct {
			ArtifactTypes  []string `json:"artifactTypes"`
			ArtifactStatus string   `json:"artifactStatus"`
		} `json:"filter"`
		NextToken  string `json:"nextToken"`
		MaxResults *int   `json:"maxResults"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.SubjectID == nil || in.SubjectID.ImageDigest == "" {
		return nil, invalidParam("subjectId.imageDigest", "Member must not be null")
	}
	if !digestPattern.MatchString(in.SubjectID.ImageDigest) {
		return nil, invalidParam("subjectId.imageDigest", "Invalid image digest")
	}
	status := "ACTIVE"
	var types []string
	if in.Filter != nil {
		types = in.Filter.ArtifactTypes
		if in.Filter.ArtifactStatus != "" {
			status = in.Filter.ArtifactStatus
		}
	}
	if len(types) > 5 {
		return nil, invalidParam("filter.artifactTypes", "Member must have length less than or equal to 5")
	}
	switch status {
	case "ACTIVE", "ARCHIVED", "ACTIVATING", "ANY":
	default:
		return nil, invalidParam("filter.artifactStatus", "Member must satisfy enum value set: [ACTIVE, ARCHIVED, ACTIVATING, ANY]")
	}
	max := 20
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 50 {
			return nil, invalidParam("maxResults", "Member must have value between 1 and 50")
		}
		max = *in.MaxResults
	}
	rg, aerr := c.repoAccessAs("ecr:BatchGetImage", in.RegistryID, in.RepositoryName)
	if aerr != nil {
		return nil, aerr
	}
	refs, ok := rg.referrers(in.RepositoryName, in.SubjectID.ImageDigest)
	if !ok {
		return nil, repoNotFound(in.RepositoryName, rg.id.Account)
	}
	out := []imageReferrer{}
	for _, d := range refs {
		// Every stored image is ACTIVE: the sandbox has no archive storage class.
		if status == "ARCHIVED" || status == "ACTIVATING" || (len(types) > 0 && !contains(types, d.ArtifactType)) {
			continue
		}
		out = append(out, imageReferrer{Digest: d.Digest, MediaType: d.MediaType, ArtifactType: d.ArtifactType,
			Size: d.Size, Annotations: d.Annotations, ArtifactStatus: "ACTIVE"})
	}
	span, next, aerr := paginate(len(out), in.NextToken, &max)
	if aerr != nil {
		return nil, aerr
	}
	resp := map[string]any{"referrers": out[span[0]:span[1]]}
	if next != "" {
		resp["nextToken"] = next
	}
	return resp, nil
}

// repoAccessAs is repoAccess for operations whose IAM action is not ecr:<operation>.
func (c *call) repoAccessAs(action, registryID, repo string) (*registry, *apiError) {
	op := c.op
	c.op = action[len("ecr:"):]
	defer func() { c.op = op }()
	return c.repoAccess(registryID, repo)
}

// supplyChainOps are the operations of referrers.go, signing.go and findings.go, added to the
// dispatch table by APIHandler.
func supplyChainOps(ops map[string]opFunc) map[string]opFunc {
	for k, v := range map[string]opFunc{
		"ListImageReferrers":               opListImageReferrers,
		"PutSigningConfiguration":          opPutSigningConfiguration,
		"GetSigningConfiguration":          opGetSigningConfiguration,
		"DeleteSigningConfiguration":       opDeleteSigningConfiguration,
		"DescribeImageSigningStatus":       opDescribeImageSigningStatus,
		"DescribeImageScanFindings":        opDescribeImageScanFindings,
		"PutRegistryScanningConfiguration": opPutRegistryScanningConfiguration,
		"GetRegistryScanningConfiguration": opGetRegistryScanningConfiguration,
		"PutImageScanningConfiguration":    opPutImageScanningConfiguration,
	} {
		if _, taken := ops[k]; !taken { // an operation another file implements wins
			ops[k] = v
		}
	}
	return ops
}

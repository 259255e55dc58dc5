package ecr

import (
	"strings"
	"time"
)

// Image statuses (the model's ImageStatus enum) and storage classes (TargetStorageClass).
const (
	imageActive     = "ACTIVE"
	imageArchived   = "ARCHIVED"
	imageActivating = "ACTIVATING"

	storageStandard = "STANDARD"
	storageArchive  = "ARCHIVE"
)

// DefaultRestoreDelay is how long a restore (UpdateImageStorageClass to STANDARD) stays ACTIVATING
// in the sandbox; ECR says "within 20 minutes".
const DefaultRestoreDelay = time.Second

// pullable finds an image the registry may serve by tag or digest: archived and activating
// images are not pullable ("Requests to pull the archived image will fail with a 404 error").
func (r *repository) pullable(ref string) *image {
	var img *image
	if strings.Contains(ref, ":") {
		img = r.images[ref]
	} else {
		img = r.images[r.tags[ref]]
	}
	if img == nil || img.status != imageActive {
		return nil
	}
	return img
}

// statusMatches applies DescribeImages' filter.imageStatus ("" means ACTIVE, as ECR's default).
func statusMatches(filter, status string) bool {
	switch filter {
	case "ANY":
		return true
	case "":
		return status == imageActive
	}
	return filter == status
}

func opUpdateImageStorageClass(c *call) (any, *apiError) {
	var in struct {
		RegistryID         string           `json:"registryId"`
		RepositoryName     string           `json:"repositoryName"`
		ImageID            *ImageIdentifier `json:"imageId"`
		TargetStorageClass string           `json:"targetStorageClass"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.ImageID == nil {
		return nil, invalidParam("imageId", "Member must not be null")
	}
	if code, _ := checkImageID(*in.ImageID); code != "" {
		return nil, invalidParam("imageId", "Invalid image identifier: "+code)
	}
	if in.TargetStorageClass != storageStandard && in.TargetStorageClass != storageArchive {
		return nil, invalidParam("targetStorageClass", "Member must satisfy enum value set: [STANDARD, ARCHIVE]")
	}
	rg, aerr := c.repoAccess(in.RegistryID, in.RepositoryName)
	if aerr != nil {
		return nil, aerr
	}
	now := c.s.now()
	rg.mu.Lock()
	r, ok := rg.repos[in.RepositoryName]
	if !ok {
		rg.mu.Unlock()
		return nil, repoNotFound(in.RepositoryName, rg.id.Account)
	}
	img, _ := r.resolve(*in.ImageID)
	if img == nil {
		rg.mu.Unlock()
		return nil, imageNotFound(*in.ImageID, in.RepositoryName, rg.id.Account)
	}
	// [assumed] only ACTIVE → ARCHIVE and ARCHIVED → STANDARD are transitions; anything else is the
	// model's ImageStorageClassUpdateNotSupportedException.
	switch {
	case in.TargetStorageClass == storageArchive && img.status == imageActive:
		img.status, img.lastArchivedAt = imageArchived, now
	case in.TargetStorageClass == storageStandard && img.status == imageArchived:
		img.status = imageActivating
		digest, tags := img.digest, r.tagsOf(img.digest)
		c.s.repl.after(c.s.o.RestoreDelay, func() { rg.finishRestore(in.RepositoryName, digest, tags) })
	default:
		st := img.status
		rg.mu.Unlock()
		return nil, newAPIError(excStorageClassUnsupported,
			"The requested image storage class update is not supported. Image status: %s, target storage class: %s", st, in.TargetStorageClass)
	}
	out := map[string]any{"registryId": rg.id.Account, "repositoryName": in.RepositoryName,
		"imageId": ImageIdentifier{ImageDigest: img.digest, ImageTag: in.ImageID.ImageTag}, "imageStatus": img.status}
	rg.mu.Unlock()
	return out, nil
}

// finishRestore makes an ACTIVATING image ACTIVE; "restored images behave like newly pushed images"
// and "are subject to scanning, replication, and repository lifecycle policies", so it replicates
// like a push of its digest and of each tag.
func (rg *registry) finishRestore(repo, digest string, tags []string) {
	rg.mu.Lock()
	r, ok := rg.repos[repo]
	var img *image
	if ok {
		img = r.images[digest]
	}
	if img == nil || img.status != imageActivating {
		rg.mu.Unlock()
		return
	}
	img.status, img.lastActivatedAt = imageActive, rg.s.now()
	rg.mu.Unlock()
	rg.s.repl.onPush(rg, repo, digest, "")
	for _, t := range tags {
		rg.s.repl.onPush(rg, repo, digest, t)
	}
}

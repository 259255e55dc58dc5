package ecr

import (
	"fmt"
	"sort"
	"strings"
)

// apiTagPattern is the tag grammar the API accepts (the registry's, up to the model's 300).
var apiTagPattern = lazyRegexp(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,299}$`)

// checkImageID classifies an identifier the way BatchGetImage/BatchDeleteImage report it.
func checkImageID(id ImageIdentifier) (code, reason string) {
	switch {
	case id.ImageDigest == "" && id.ImageTag == "":
		return "MissingDigestAndTag", "Invalid request parameters: both tag and digest cannot be null"
	case id.ImageDigest != "" && !digestPattern.MatchString(id.ImageDigest):
		return "InvalidImageDigest", "Invalid image digest"
	case id.ImageTag != "" && !apiTagPattern.MatchString(id.ImageTag):
		return "InvalidImageTag", "Invalid image tag"
	}
	return "", ""
}

func validateImageIDs(field string, ids []ImageIdentifier, required bool) *apiError {
	if ids == nil && !required {
		return nil
	}
	if len(ids) < 1 || len(ids) > 100 {
		return invalidParam(field, "Member must have length between 1 and 100")
	}
	for i, id := range ids {
		if aerr := validateImageTag(fmt.Sprintf("%s.%d.member.imageTag", field, i+1), id.ImageTag); aerr != nil {
			return aerr
		}
	}
	return nil
}

func (rg *registry) detailLocked(r *repository, img *image) ImageDetail {
	mt := img.artifactType
	if isIndexType(img.mediaType) {
		mt = ""
	}
	d := ImageDetail{RegistryID: rg.id.Account, RepositoryName: r.name, ImageDigest: img.digest,
		ImageTags: r.tagsOf(img.digest), ImageSizeInBytes: img.size, ImagePushedAt: epochTime(img.pushedAt),
		ImageManifestMediaType: img.mediaType, ArtifactMediaType: mt, ImageStatus: img.status}
	if !img.lastArchivedAt.IsZero() {
		t := epochTime(img.lastArchivedAt)
		d.LastArchivedAt = &t
	}
	if !img.lastActivatedAt.IsZero() {
		t := epochTime(img.lastActivatedAt)
		d.LastActivatedAt = &t
	}
	return d
}

func opDescribeImages(c *call) (any, *apiError) {
	var in struct {
		RegistryID     string            `json:"registryId"`
		RepositoryName string            `json:"repositoryName"`
		ImageIDs       []ImageIdentifier `json:"imageIds"`
		NextToken      string            `json:"nextToken"`
		MaxResults     *int              `json:"maxResults"`
		Filter         *struct {
			TagStatus   string `json:"tagStatus"`
			ImageStatus string `json:"imageStatus"`
		} `json:"filter"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if aerr := validateImageIDs("imageIds", in.ImageIDs, false); aerr != nil {
		return nil, aerr
	}
	tagStatus := "ANY"
	if in.Filter != nil && in.Filter.TagStatus != "" {
		tagStatus = in.Filter.TagStatus
		if tagStatus != "TAGGED" && tagStatus != "UNTAGGED" && tagStatus != "ANY" {
			return nil, invalidParam("filter.tagStatus", "Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]")
		}
	}
	imageStatus := ""
	if in.Filter != nil && in.Filter.ImageStatus != "" {
		imageStatus = in.Filter.ImageStatus
		switch imageStatus {
		case imageActive, imageArchived, imageActivating, "ANY":
		default:
			return nil, invalidParam("filter.imageStatus", "Member must satisfy enum value set: [ACTIVE, ARCHIVED, ACTIVATING, ANY]")
		}
	}
	rg, aerr := c.repoAccess(in.RegistryID, in.RepositoryName)
	if aerr != nil {
		return nil, aerr
	}
	rg.mu.RLock()
	r, ok := rg.repos[in.RepositoryName]
	if !ok {
		rg.mu.RUnlock()
		return nil, repoNotFound(in.RepositoryName, rg.id.Account)
	}
	var details []ImageDetail
	if len(in.ImageIDs) > 0 {
		seen := map[string]bool{}
		for _, id := range in.ImageIDs {
			if code, _ := checkImageID(id); code != "" {
				rg.mu.RUnlock()
				return nil, invalidParam("imageIds", "Invalid image identifier: "+code)
			}
			img, _ := r.resolve(id)
			// [doc] "If not specified, only images with ACTIVE status are returned"; [assumed] that holds
			// for imageIds too: an archived image asked for by id without the filter is not found.
			if img == nil || !statusMatches(imageStatus, img.status) {
				rg.mu.RUnlock()
				return nil, imageNotFound(id, r.name, rg.id.Account)
			}
			if !seen[img.digest] {
				seen[img.digest] = true
				details = append(details, rg.detailLocked(r, img))
			}
		}
	} else {
		for _, img := range r.images {
			d := rg.detailLocked(r, img)
			if !statusMatches(imageStatus, img.status) {
				continue
			}
			if (tagStatus == "TAGGED" && len(d.ImageTags) == 0) || (tagStatus == "UNTAGGED" && len(d.ImageTags) > 0) {
				continue
			}
			details = append(details, d)
		}
		sort.Slice(details, func(i, j int) bool {
			ti, tj := details[i].ImagePushedAt, details[j].ImagePushedAt
			if !ptime(ti).Equal(ptime(tj)) {
				return ptime(ti).Before(ptime(tj))
			}
			return details[i].ImageDigest < details[j].ImageDigest
		})
	}
	rg.mu.RUnlock()
	page, next, aerr := paginate(len(details), in.NextToken, in.MaxResults)
	if aerr != nil {
		return nil, aerr
	}
	out := map[string]any{"imageDetails": append([]ImageDetail{}, details[page[0]:page[1]]...)}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func opBatchGetImage(c *call) (any, *apiError) {
	var in struct {
		RegistryID         string            `json:"registryId"`
		RepositoryName     string            `json:"repositoryName"`
		ImageIDs           []ImageIdentifier `json:"imageIds"`
		AcceptedMediaTypes []string          `json:"acceptedMediaTypes"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if aerr := validateImageIDs("imageIds", in.ImageIDs, true); aerr != nil {
		return nil, aerr
	}
	if in.AcceptedMediaTypes != nil && (len(in.AcceptedMediaTypes) < 1 || len(in.AcceptedMediaTypes) > 100) {
		return nil, invalidParam("acceptedMediaTypes", "Member must have length between 1 and 100")
	}
	rg, aerr := c.repoAccess(in.RegistryID, in.RepositoryName)
	if aerr != nil {
		return nil, aerr
	}
	rg.mu.RLock()
	defer rg.mu.RUnlock()
	r, ok := rg.repos[in.RepositoryName]
	if !ok {
		return nil, repoNotFound(in.RepositoryName, rg.id.Account)
	}
	images, failures := []Image{}, []ImageFailure{}
	for _, id := range in.ImageIDs {
		if code, reason := checkImageID(id); code != "" {
			failures = append(failures, ImageFailure{ImageID: id, FailureCode: code, FailureReason: reason})
			continue
		}
		img, mismatch := r.resolve(id)
		switch {
		case mismatch:
			failures = append(failures, ImageFailure{ImageID: id, FailureCode: "ImageTagDoesNotMatchDigest", FailureReason: "Invalid image tag for provided digest"})
			continue
		case img == nil, img.status != imageActive: // [assumed] archived images are not pullable through the API either
			failures = append(failures, ImageFailure{ImageID: id, FailureCode: "ImageNotFound", FailureReason: "Requested image not found"})
			continue
		}
		if len(in.AcceptedMediaTypes) > 0 && !contains(in.AcceptedMediaTypes, img.mediaType) {
			failures = append(failures, ImageFailure{ImageID: id, FailureCode: "ImageNotFound", FailureReason: "Requested image not found"})
			continue
		}
		images = append(images, Image{RegistryID: rg.id.Account, RepositoryName: r.name,
			ImageID:       ImageIdentifier{ImageDigest: img.digest, ImageTag: id.ImageTag},
			ImageManifest: string(img.manifest), ImageManifestMediaType: img.mediaType})
	}
	return map[string]any{"images": images, "failures": failures}, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func opPutImage(c *call) (any, *apiError) {
	var in struct {
		RegistryID             string  `json:"registryId"`
		RepositoryName         string  `json:"repositoryName"`
		ImageManifest          *string `json:"imageManifest"`
		ImageManifestMediaType string  `json:"imageManifestMediaType"`
		ImageTag               *string `json:"imageTag"`
		ImageDigest            string  `json:"imageDigest"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.ImageManifest == nil {
		return nil, invalidParam("imageManifest", "Member must not be null")
	}
	tag := ""
	if in.ImageTag != nil {
		tag = *in.ImageTag
		if len(tag) < 1 || len(tag) > 300 {
			return nil, invalidParam("imageTag", "Member must have length between 1 and 300")
		}
		if !apiTagPattern.MatchString(tag) {
			return nil, invalidParam("imageTag", "Invalid image tag")
		}
	}
	if in.ImageDigest != "" && !digestPattern.MatchString(in.ImageDigest) {
		return nil, invalidParam("imageDigest", "Invalid image digest")
	}
	rg, aerr := c.repoAccess(in.RegistryID, in.RepositoryName)
	if aerr != nil {
		return nil, aerr
	}
	if !rg.hasRepo(in.RepositoryName) {
		return nil, repoNotFound(in.RepositoryName, rg.id.Account)
	}
	p, msg := parseManifest([]byte(*in.ImageManifest), in.ImageManifestMediaType)
	if msg != "" {
		return nil, invalidParam("imageManifest", msg)
	}
	if in.ImageDigest != "" && in.ImageDigest != p.digest {
		return nil, newAPIError(excImageDigestMismatch,
			"Invalid parameter at 'imageDigest' failed to satisfy constraint: 'Provided digest %s does not match the digest of the image manifest %s'", in.ImageDigest, p.digest)
	}
	res := rg.putManifest(in.RepositoryName, p, tag, c.s.now())
	switch res.failure {
	case putRepoNotFound:
		return nil, repoNotFound(in.RepositoryName, rg.id.Account)
	case putBlobsMissing:
		return nil, newAPIError(excLayersNotFound,
			"Layers with digests '[%s]' required for pushing image into repository with name '%s' in the registry with id '%s' do not exist",
			strings.Join(res.missing, ", "), in.RepositoryName, rg.id.Account)
	case putChildrenMissing:
		return nil, newAPIError(excReferencedImages,
			"Some of the referenced images [%s] do not exist in the repository with name '%s' in the registry with id '%s'",
			strings.Join(res.missing, ", "), in.RepositoryName, rg.id.Account)
	case putTagImmutable:
		return nil, newAPIError(excImageTagAlreadyExists,
			"The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the tag is immutable.", tag, in.RepositoryName)
	}
	if res.existed && !res.changed {
		return nil, newAPIError(excImageAlreadyExists,
			"Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in registry with id '%s'",
			p.digest, nullIfEmpty(tag), in.RepositoryName, rg.id.Account)
	}
	c.s.repl.onPush(rg, in.RepositoryName, p.digest, tag)
	return map[string]any{"image": Image{RegistryID: rg.id.Account, RepositoryName: in.RepositoryName,
		ImageID: ImageIdentifier{ImageDigest: p.digest, ImageTag: tag}, ImageManifest: *in.ImageManifest,
		ImageManifestMediaType: p.mediaType}}, nil
}

func opBatchDeleteImage(c *call) (any, *apiError) {
	var in struct {
		RegistryID     string            `json:"registryId"`
		RepositoryName string            `json:"repositoryName"`
		ImageIDs       []ImageIdentifier `json:"imageIds"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if aerr := validateImageIDs("imageIds", in.ImageIDs, true); aerr != nil {
		return nil, aerr
	}
	rg, aerr := c.repoAccess(in.RegistryID, in.RepositoryName)
	if aerr != nil {
		return nil, aerr
	}
	if !rg.hasRepo(in.RepositoryName) {
		return nil, repoNotFound(in.RepositoryName, rg.id.Account)
	}
	deleted, failures := []ImageIdentifier{}, []ImageFailure{}
	for _, id := range in.ImageIDs {
		if code, reason := checkImageID(id); code != "" {
			failures = append(failures, ImageFailure{ImageID: id, FailureCode: code, FailureReason: reason})
			continue
		}
		ids, code, reason := rg.deleteImage(in.RepositoryName, id)
		if code != "" {
			failures = append(failures, ImageFailure{ImageID: id, FailureCode: code, FailureReason: reason})
			continue
		}
		deleted = append(deleted, ids...)
	}
	return map[string]any{"imageIds": deleted, "failures": failures}, nil
}

func opDescribeImageReplicationStatus(c *call) (any, *apiError) {
	var in struct {
		RegistryID     string           `json:"registryId"`
		RepositoryName string           `json:"repositoryName"`
		ImageID        *ImageIdentifier `json:"imageId"`
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
	rg, aerr := c.repoAccess(in.RegistryID, in.RepositoryName)
	if aerr != nil {
		return nil, aerr
	}
	rg.mu.RLock()
	r, ok := rg.repos[in.RepositoryName]
	var img *image
	if ok {
		img, _ = r.resolve(*in.ImageID)
	}
	rg.mu.RUnlock()
	if !ok {
		return nil, repoNotFound(in.RepositoryName, rg.id.Account)
	}
	if img == nil {
		return nil, imageNotFound(*in.ImageID, in.RepositoryName, rg.id.Account)
	}
	return map[string]any{
		"repositoryName":      in.RepositoryName,
		"imageId":             ImageIdentifier{ImageDigest: img.digest, ImageTag: in.ImageID.ImageTag},
		"replicationStatuses": rg.replStatuses(in.RepositoryName, img.digest, in.ImageID.ImageTag),
	}, nil
}

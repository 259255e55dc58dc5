package replicate

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// ImageAPI is the part of an ECR client that reads an image's storage state and restores it.
type ImageAPI interface {
	DescribeImages(context.Context, *ecr.DescribeImagesInput, ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
	UpdateImageStorageClass(context.Context, *ecr.UpdateImageStorageClassInput, ...func(*ecr.Options)) (*ecr.UpdateImageStorageClassOutput, error)
}

// Image statuses (ECR's ImageStatus): only ACTIVE images can be pulled.
const (
	ImageActive     = "ACTIVE"
	ImageArchived   = "ARCHIVED"
	ImageActivating = "ACTIVATING"
)

// RestoreTimeout is how long a restore may take: ECR says it restores an archived image "within 20 minutes".
const RestoreTimeout = 20 * time.Minute

// ImageState is an image as a registry holds it.
type ImageState struct {
	Exists bool
	Status string   // ImageActive, ImageArchived, ImageActivating
	Tags   []string // the tags that name it
}

// Pullable reports whether the image can be pulled (and copied from): it exists and is ACTIVE.
func (s ImageState) Pullable() bool { return s.Exists && s.Status == ImageActive }

// ReadImage describes repo@digest in a registry (registryID "" for the caller's) whatever its storage
// class: DescribeImages shows only ACTIVE images unless asked for ANY. A missing repository or image
// is Exists false, not an error.
func ReadImage(ctx context.Context, c ImageAPI, registryID, repo, digest string) (ImageState, error) {
	in := &ecr.DescribeImagesInput{RepositoryName: aws.String(repo), ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(digest)}},
		Filter: &types.DescribeImagesFilter{ImageStatus: types.ImageStatusFilterAny}}
	if registryID != "" {
		in.RegistryId = aws.String(registryID)
	}
	out, err := c.DescribeImages(ctx, in)
	switch ecrx.Code(err) {
	case "":
	case "ImageNotFoundException", "RepositoryNotFoundException":
		return ImageState{}, nil
	default:
		return ImageState{}, ecrx.APIError(err, "ecr DescribeImages "+repo+"@"+digest)
	}
	if len(out.ImageDetails) == 0 {
		return ImageState{}, nil
	}
	d := out.ImageDetails[0]
	st := string(d.ImageStatus)
	if st == "" {
		st = ImageActive // registries that predate the archive storage class say nothing
	}
	return ImageState{Exists: true, Status: st, Tags: d.ImageTags}, nil
}

// ArchivedError says an image is archived (or being restored) where it must be pulled.
type ArchivedError struct {
	Where, Repository, Digest, Status string
}

func (e *ArchivedError) Error() string {
	if e.Status == ImageActivating {
		return fmt.Sprintf("%s@%s in %s is being restored from the archive (ACTIVATING) and cannot be pulled yet: wait (ECR restores within 20 minutes) and run again",
			e.Repository, e.Digest, e.Where)
	}
	return fmt.Sprintf("%s@%s in %s is archived (ECR's archive storage class: describable, not pullable): pass --restore-archived to restore it first, "+
		"or restore it yourself (aws ecr update-image-storage-class --repository-name %s --image-id imageDigest=%s --target-storage-class STANDARD) and run again",
		e.Repository, e.Digest, e.Where, e.Repository, e.Digest)
}

// EnsurePullable makes sure repo@digest can be pulled from a registry: an ACTIVE image passes; an
// archived one is an *ArchivedError (fixable) unless restore is set, in which case it is restored
// (UpdateImageStorageClass to STANDARD) and waited for until ACTIVE or until timeout. A missing image
// passes (the caller decides what absence means). It reports whether it restored.
func EnsurePullable(ctx context.Context, c ImageAPI, where, registryID, repo, digest string, restore bool, timeout time.Duration) (bool, error) {
	st, err := ReadImage(ctx, c, registryID, repo, digest)
	if ecrx.Code(err) == "AccessDeniedException" {
		// Without ecr:DescribeImages the storage class cannot be told; the pull itself will say.
		return false, nil
	}
	if err != nil || !st.Exists || st.Status == ImageActive {
		return false, err
	}
	if !restore && st.Status == ImageArchived {
		return false, fixable.Wrap(&ArchivedError{Where: where, Repository: repo, Digest: digest, Status: st.Status}, "")
	}
	if st.Status == ImageArchived {
		in := &ecr.UpdateImageStorageClassInput{RepositoryName: aws.String(repo), ImageId: &types.ImageIdentifier{ImageDigest: aws.String(digest)},
			TargetStorageClass: types.TargetStorageClassStandard}
		if registryID != "" {
			in.RegistryId = aws.String(registryID)
		}
		if _, err := c.UpdateImageStorageClass(ctx, in); err != nil && ecrx.Code(err) != "ImageStorageClassUpdateNotSupportedException" {
			if ecrx.Code(err) == "AccessDeniedException" {
				return false, fixable.Wrap(err, fmt.Sprintf("may not restore %s@%s in %s (ecr:UpdateImageStorageClass denied): grant it on the repository", repo, digest, where))
			}
			return false, ecrx.APIError(err, "ecr UpdateImageStorageClass "+repo+"@"+digest)
		}
	}
	if timeout <= 0 {
		timeout = RestoreTimeout
	}
	deadline := time.Now().Add(timeout)
	interval := MinPollInterval
	for {
		if err := sleep(ctx, min(interval, time.Until(deadline))); err != nil {
			return true, err
		}
		st, err := ReadImage(ctx, c, registryID, repo, digest)
		if err != nil {
			return true, err
		}
		if st.Status == ImageActive {
			return true, nil
		}
		if !time.Now().Before(deadline) {
			return true, fmt.Errorf("%s@%s in %s is still %s after %s: ECR restores within 20 minutes; run again later", repo, digest, where, st.Status, timeout)
		}
		interval = min(interval*3/2, maxPollInterval)
	}
}

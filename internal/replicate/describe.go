package replicate

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// ReadConfiguration returns the ci registry's replication configuration (DescribeRegistry).
func ReadConfiguration(ctx context.Context, client ECRAPI) (*types.ReplicationConfiguration, error) {
	return describeRegistry(ctx, client)
}

// ParseImage reads REPO:TAG or REPO@sha256:DIGEST into the repository and the tag or digest.
func ParseImage(image string) (repo, ref string, err error) {
	if r, d, ok := strings.Cut(image, "@"); ok {
		if !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
			return "", "", fixable.New("image %q: %q is not a sha256 digest (sha256: and 64 hex digits)", image, d)
		}
		return r, d, validRepo(image, r)
	}
	i := strings.LastIndex(image, ":")
	if i < 0 || i < strings.LastIndex(image, "/") {
		return "", "", fixable.New("image %q needs a tag or digest: REPOSITORY:TAG or REPOSITORY@sha256:DIGEST", image)
	}
	return image[:i], image[i+1:], validRepo(image, image[:i])
}

func validRepo(image, repo string) error {
	if strings.Contains(repo, ".dkr.ecr.") || strings.Contains(repo, ":") {
		return fixable.New("image %q: give the repository name without the registry host (e.g. team/app:v1)", image)
	}
	if repo == "" {
		return fixable.New("image %q has no repository", image)
	}
	return nil
}

// Describe reads the replication status of repo at ref (a tag or a sha256 digest) once: the image digest and
// one Status per destination ECR reports, in ECR's order, followed by every destination of expect that ECR does
// not report (FAILED, FailureNoStatus).
func Describe(ctx context.Context, client ECRAPI, repo, ref string, expect []Destination) (string, []Status, error) {
	id := &types.ImageIdentifier{}
	if strings.HasPrefix(ref, "sha256:") {
		id.ImageDigest = aws.String(ref)
	} else {
		id.ImageTag = aws.String(ref)
	}
	out, err := client.DescribeImageReplicationStatus(ctx, &ecr.DescribeImageReplicationStatusInput{RepositoryName: aws.String(repo), ImageId: id})
	if err != nil {
		switch ecrx.Code(err) {
		case "ImageNotFoundException", "RepositoryNotFoundException":
			return "", nil, fixable.Wrap(err, fmt.Sprintf("%s:%s is not in the ci registry (%s)", repo, ref, ecrx.Message(err)))
		case "AccessDeniedException":
			return "", nil, fixable.Wrap(err, "may not read replication status (ecr:DescribeImageReplicationStatus denied): grant it on repository "+repo)
		}
		return "", nil, ecrx.APIError(err, "ecr DescribeImageReplicationStatus")
	}
	digest := ref
	if out.ImageId != nil && aws.ToString(out.ImageId.ImageDigest) != "" {
		digest = aws.ToString(out.ImageId.ImageDigest)
	}
	var sts []Status
	seen := map[string]bool{}
	for _, r := range out.ReplicationStatuses {
		d := Destination{Account: aws.ToString(r.RegistryId), Region: aws.ToString(r.Region)}
		seen[d.String()] = true
		sts = append(sts, Status{Account: d.Account, Region: d.Region, URI: d.Host() + "/" + repo + "@" + digest,
			Status: string(r.Status), FailureCode: aws.ToString(r.FailureCode)})
	}
	for _, d := range expect {
		if !seen[d.String()] {
			sts = append(sts, Status{Account: d.Account, Region: d.Region, URI: d.Host() + "/" + repo + "@" + digest,
				Status: StatusFailed, FailureCode: FailureNoStatus})
		}
	}
	return digest, sts, nil
}

// Failures is an error naming every FAILED status with its likely cause (nil when none failed); fixable when
// a policy or repository is the cause.
func Failures(repo, digest, sourceAccount string, sts []Status) error {
	e := &WaitError{Repository: repo, Digest: digest, Statuses: sts, SourceAccount: sourceAccount}
	for _, s := range sts {
		if s.Status == StatusFailed {
			e.Failed = append(e.Failed, s)
		}
	}
	if len(e.Failed) == 0 {
		return nil
	}
	if e.fixable() {
		return fixable.Wrap(e, "")
	}
	return e
}

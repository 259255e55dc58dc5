package replicate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// FailureNotAtDestination: ECR reported COMPLETE, but reading the destination does not find the image.
const FailureNotAtDestination = "ImageNotAtDestination"

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Timeout bounds the reads: a tag's replication may land after the digest's (default 1m).
	Timeout time.Duration
	// Interval is the pause between reads of a destination still catching up (default MinPollInterval).
	Interval time.Duration
	// RestoreArchived restores an image found archived at a destination instead of failing it.
	RestoreArchived bool
	// DestinationClient overrides how destination clients are made (tests).
	DestinationClient DestinationClientFunc
	// Unreported also reads destinations ECR reports no status for (FailureNoStatus): an image a backfill
	// carried there shows only in the backfill's results. Found, such a destination becomes COMPLETE.
	Unreported bool
}

// destRead is what one read of a destination found.
type destRead struct {
	image     ImageState
	tags      []TagStatus
	immutable bool
	settled   bool // nothing more can change: every tag applied, or kept by an immutable repository
}

// Verify reads every COMPLETE or COPIED destination of sts (one per dests, in order) back — DescribeImages by digest and by each
// tag, with the destination's own credentials (its role, or the session in its own account) — and records
// per destination whether every tag names the digest. A destination ecrpush has no credentials for is
// left as ECR's status says it (Verified "status", tags UNVERIFIED). It waits up to Timeout for tags still
// on their way. The error names every destination where the image is missing or archived, or a tag names
// another image; fixable when the user must act (an immutable repository kept its tag, an archived image).
func Verify(ctx context.Context, sess *federate.Session, repo, digest string, tags []string, dests []Destination, sts []Status, o VerifyOptions) error {
	return verify(ctx, newDestClients(sess, o.DestinationClient), repo, digest, tags, dests, sts, o)
}

func verify(ctx context.Context, dc *destClients, repo, digest string, tags []string, dests []Destination, sts []Status, o VerifyOptions) error {
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	if o.Interval <= 0 {
		o.Interval = MinPollInterval
	}
	deadline := time.Now().Add(o.Timeout)
	reads := make([]*destRead, len(sts))
	clients := make([]DestinationAPI, len(sts))
	var errs []error
	for i := range sts {
		s := &sts[i]
		unreported := o.Unreported && s.Status == StatusFailed && (s.FailureCode == FailureNoStatus || s.FailureCode == FailureExistedBeforeRule)
		if s.Status != StatusComplete && s.Status != StatusCopied && !unreported {
			continue
		}
		d := Destination{Account: s.Account, Region: s.Region}
		for _, x := range dests {
			if x.Account == d.Account && x.Region == d.Region {
				d.RoleARN = x.RoleARN
			}
		}
		if !dc.can(d) {
			if unreported {
				continue
			}
			s.Verified = VerifiedStatus
			for _, t := range tags {
				s.Tags = append(s.Tags, TagStatus{Tag: t, Status: TagUnverified})
			}
			continue
		}
		c, err := dc.get(ctx, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("verify %s: %w", d, err))
			continue
		}
		clients[i] = c
	}
	interval := o.Interval
	for {
		pending := 0
		for i, c := range clients {
			if c == nil || (reads[i] != nil && reads[i].settled) {
				continue
			}
			r, err := readDestination(ctx, c, repo, digest, tags)
			if err != nil {
				errs = append(errs, fmt.Errorf("verify %s:%s: %w", sts[i].Account, sts[i].Region, err))
				clients[i] = nil
				continue
			}
			if r.image.Exists && r.image.Status == ImageArchived && o.RestoreArchived {
				d := Destination{Account: sts[i].Account, Region: sts[i].Region}
				if _, err := EnsurePullable(ctx, c, d.String(), "", repo, digest, true, time.Until(deadline)); err != nil {
					errs = append(errs, fmt.Errorf("restore at %s: %w", d, err))
					clients[i] = nil
					continue
				}
				if r, err = readDestination(ctx, c, repo, digest, tags); err != nil {
					errs = append(errs, err)
					clients[i] = nil
					continue
				}
			}
			if sts[i].Status == StatusFailed {
				r.settled = true // unreported by ECR: one look is enough
			}
			reads[i] = r
			if !r.settled {
				pending++
			}
		}
		if pending == 0 || !time.Now().Add(interval).Before(deadline) {
			break
		}
		if err := sleep(ctx, interval); err != nil {
			return err
		}
		interval = min(interval*3/2, maxPollInterval)
	}
	var problems []string
	needsFix := false
	for i, r := range reads {
		if r == nil {
			continue
		}
		s := &sts[i]
		where := s.Account + ":" + s.Region
		if s.Status == StatusFailed {
			// Unreported by ECR: only what is there counts, and its absence is already the status.
			if !r.image.Exists {
				continue
			}
			s.Status, s.FailureCode = StatusComplete, ""
			s.Detail = "ECR reports no replication status for it, but the destination holds it (a backfill's copies show only in its results)"
		}
		s.Verified, s.Tags = VerifiedRead, r.tags
		switch {
		case !r.image.Exists:
			s.Status, s.FailureCode = StatusFailed, FailureNotAtDestination
			s.Detail = "ECR reported it replicated, but the destination does not hold the digest"
			problems = append(problems, fmt.Sprintf("%s: %s@%s is not there although ECR reported %s: check later with ecrpush replication status", where, repo, digest, StatusComplete))
			continue
		case r.image.Status != ImageActive:
			s.Status, s.FailureCode = StatusFailed, FailureArchived
			ae := &ArchivedError{Where: where, Repository: repo, Digest: digest, Status: r.image.Status}
			s.Detail = ae.Error()
			problems = append(problems, ae.Error())
			needsFix = true
			continue
		}
		for _, t := range r.tags {
			switch t.Status {
			case TagElsewhere:
				why := "the tag names another image there"
				if r.immutable {
					why = "the repository there has immutable tags and " + t.Tag + " already names " + t.Digest + ", so ECR replicated the image without it"
					needsFix = true
				}
				s.Detail = fmt.Sprintf("tag %s not applied: %s", t.Tag, why)
				problems = append(problems, fmt.Sprintf("%s: %s@%s is there, but tag %s was not applied: %s; push under a new tag, or delete the old tag there "+
					"(aws ecr batch-delete-image --registry-id %s --region %s --repository-name %s --image-ids imageTag=%s) and push again",
					where, repo, digest, t.Tag, why, s.Account, s.Region, repo, t.Tag))
			case TagMissing:
				s.Detail = "tag " + t.Tag + " is not there yet"
				problems = append(problems, fmt.Sprintf("%s: %s@%s is there, but tag %s is not (yet): check later with ecrpush replication status %s:%s", where, repo, digest, t.Tag, repo, t.Tag))
			}
		}
	}
	if len(problems) > 0 {
		e := errors.New("verifying the destinations: " + strings.Join(problems, "; "))
		if needsFix {
			e = fixable.Wrap(e, "")
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// readDestination reads repo@digest and each tag in one destination registry.
func readDestination(ctx context.Context, c DestinationAPI, repo, digest string, tags []string) (*destRead, error) {
	img, err := ReadImage(ctx, c, "", repo, digest)
	if err != nil {
		return nil, err
	}
	r := &destRead{image: img}
	if !img.Exists || img.Status != ImageActive {
		r.settled = img.Exists // an archived image stays so; a missing one may still arrive
		return r, nil
	}
	have := map[string]bool{}
	for _, t := range img.Tags {
		have[t] = true
	}
	r.settled = true
	for _, t := range tags {
		if have[t] {
			r.tags = append(r.tags, TagStatus{Tag: t, Status: TagApplied})
			continue
		}
		other, err := tagDigest(ctx, c, repo, t)
		if err != nil {
			return nil, err
		}
		if other == "" {
			r.tags = append(r.tags, TagStatus{Tag: t, Status: TagMissing})
			r.settled = false
			continue
		}
		r.tags = append(r.tags, TagStatus{Tag: t, Status: TagElsewhere, Digest: other})
		if !r.immutable {
			if r.immutable, err = immutableTag(ctx, c, repo, t); err != nil {
				return nil, err
			}
		}
		if !r.immutable {
			r.settled = false // a mutable tag may still move when its replication lands
		}
	}
	return r, nil
}

// tagDigest is the digest a tag names in a repository ("" when it names none).
func tagDigest(ctx context.Context, c DestinationAPI, repo, tag string) (string, error) {
	out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String(tag)}},
		Filter: &types.DescribeImagesFilter{ImageStatus: types.ImageStatusFilterAny}})
	switch ecrx.Code(err) {
	case "":
	case "ImageNotFoundException", "RepositoryNotFoundException":
		return "", nil
	default:
		return "", ecrx.APIError(err, "ecr DescribeImages "+repo+":"+tag)
	}
	if len(out.ImageDetails) == 0 {
		return "", nil
	}
	return aws.ToString(out.ImageDetails[0].ImageDigest), nil
}

// immutableTag reports whether the repository refuses to move tag (IMMUTABLE, or its exclusions say so).
func immutableTag(ctx context.Context, c DestinationAPI, repo, tag string) (bool, error) {
	out, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
	if err != nil {
		return false, ecrx.APIError(err, "ecr DescribeRepositories "+repo)
	}
	if len(out.Repositories) == 0 {
		return false, nil
	}
	r := out.Repositories[0]
	excluded := false
	for _, f := range r.ImageTagMutabilityExclusionFilters {
		if wildcard(aws.ToString(f.Filter), tag) {
			excluded = true
		}
	}
	switch r.ImageTagMutability {
	case types.ImageTagMutabilityImmutable:
		return true, nil
	case types.ImageTagMutabilityImmutableWithExclusion:
		return !excluded, nil
	case types.ImageTagMutabilityMutableWithExclusion:
		return excluded, nil
	}
	return false, nil
}

// wildcard matches ECR's WILDCARD exclusion filters ('*' = any run of characters).
func wildcard(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

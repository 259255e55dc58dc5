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

// verifier is one Verify run.
type verifier struct {
	dc           *destClients
	repo, digest string
	tags         []string
	sts          []Status
	o            VerifyOptions
	deadline     time.Time
	clients      []DestinationAPI
	reads        []*destRead
	errs         []error
	problems     []string
	needsFix     bool
}

func verify(ctx context.Context, dc *destClients, repo, digest string, tags []string, dests []Destination, sts []Status, o VerifyOptions) error {
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	if o.Interval <= 0 {
		o.Interval = MinPollInterval
	}
	v := &verifier{dc: dc, repo: repo, digest: digest, tags: tags, sts: sts, o: o, deadline: time.Now().Add(o.Timeout),
		clients: make([]DestinationAPI, len(sts)), reads: make([]*destRead, len(sts))}
	v.connect(ctx, dests)
	interval := o.Interval
	for {
		pending := 0
		for i := range v.clients {
			if v.readOnce(ctx, i) {
				pending++
			}
		}
		if pending == 0 || !time.Now().Add(interval).Before(v.deadline) {
			break
		}
		if err := sleep(ctx, interval); err != nil {
			return err
		}
		interval = min(interval*3/2, maxPollInterval)
	}
	for i, r := range v.reads {
		if r != nil {
			v.record(&sts[i], r)
		}
	}
	if len(v.problems) > 0 {
		e := errors.New("verifying the destinations: " + strings.Join(v.problems, "; "))
		if v.needsFix {
			e = fixable.Wrap(e, "")
		}
		v.errs = append(v.errs, e)
	}
	return errors.Join(v.errs...)
}

// unreported reports whether s is a destination ECR gave no status for, worth one look (Unreported).
func (v *verifier) unreported(s Status) bool {
	return v.o.Unreported && s.Status == StatusFailed && (s.FailureCode == FailureNoStatus || s.FailureCode == FailureExistedBeforeRule)
}

// connect makes a client for every destination to read; one without credentials is marked verified by
// ECR's status only.
func (v *verifier) connect(ctx context.Context, dests []Destination) {
	for i := range v.sts {
		s := &v.sts[i]
		if s.Status != StatusComplete && s.Status != StatusCopied && !v.unreported(*s) {
			continue
		}
		d := Destination{Account: s.Account, Region: s.Region}
		for _, x := range dests {
			if x.Account == d.Account && x.Region == d.Region {
				d.RoleARN = x.RoleARN
			}
		}
		if !v.dc.can(d) {
			if !v.unreported(*s) {
				s.Verified = VerifiedStatus
				for _, t := range v.tags {
					s.Tags = append(s.Tags, TagStatus{Tag: t, Status: TagUnverified})
				}
			}
			continue
		}
		c, err := v.dc.get(ctx, d)
		if err != nil {
			v.errs = append(v.errs, fmt.Errorf("verify %s: %w", d, err))
			continue
		}
		v.clients[i] = c
	}
}

// readOnce reads destination i unless it is settled (restoring an archived image when asked), and
// reports whether it is still catching up.
func (v *verifier) readOnce(ctx context.Context, i int) bool {
	c := v.clients[i]
	if c == nil || (v.reads[i] != nil && v.reads[i].settled) {
		return false
	}
	where := v.sts[i].Account + ":" + v.sts[i].Region
	r, err := readDestination(ctx, c, v.repo, v.digest, v.tags)
	if err == nil && r.image.Exists && r.image.Status == ImageArchived && v.o.RestoreArchived {
		if _, err = EnsurePullable(ctx, c, where, "", v.repo, v.digest, true, time.Until(v.deadline)); err == nil {
			r, err = readDestination(ctx, c, v.repo, v.digest, v.tags)
		}
	}
	if err != nil {
		v.errs = append(v.errs, fmt.Errorf("verify %s: %w", where, err))
		v.clients[i] = nil
		return false
	}
	if v.sts[i].Status == StatusFailed {
		r.settled = true // unreported by ECR: one look is enough
	}
	v.reads[i] = r
	return !r.settled
}

// record writes what a destination's last read found into its status, and the problems into v.
func (v *verifier) record(s *Status, r *destRead) {
	where := s.Account + ":" + s.Region
	if s.Status == StatusFailed {
		// Unreported by ECR: only what is there counts, and its absence is already the status.
		if !r.image.Exists {
			return
		}
		s.Status, s.FailureCode = StatusComplete, ""
		s.Detail = "ECR reports no replication status for it, but the destination holds it (a backfill's copies show only in its results)"
	}
	s.Verified, s.Tags = VerifiedRead, r.tags
	switch {
	case !r.image.Exists:
		s.Status, s.FailureCode = StatusFailed, FailureNotAtDestination
		s.Detail = "ECR reported it replicated, but the destination does not hold the digest"
		v.problems = append(v.problems, fmt.Sprintf("%s: %s@%s is not there although ECR reported %s: check later with ecrpush replication status", where, v.repo, v.digest, StatusComplete))
		return
	case r.image.Status != ImageActive:
		s.Status, s.FailureCode = StatusFailed, FailureArchived
		ae := &ArchivedError{Where: where, Repository: v.repo, Digest: v.digest, Status: r.image.Status}
		s.Detail = ae.Error()
		v.problems = append(v.problems, ae.Error())
		v.needsFix = true
		return
	}
	for _, t := range r.tags {
		switch t.Status {
		case TagElsewhere:
			why := "the tag names another image there"
			if r.immutable {
				why = "the repository there has immutable tags and " + t.Tag + " already names " + t.Digest + ", so ECR replicated the image without it"
				v.needsFix = true
			}
			s.Detail = fmt.Sprintf("tag %s not applied: %s", t.Tag, why)
			v.problems = append(v.problems, fmt.Sprintf("%s: %s@%s is there, but tag %s was not applied: %s; push under a new tag, or delete the old tag there "+
				"(aws ecr batch-delete-image --registry-id %s --region %s --repository-name %s --image-ids imageTag=%s) and push again",
				where, v.repo, v.digest, t.Tag, why, s.Account, s.Region, v.repo, t.Tag))
		case TagMissing:
			s.Detail = "tag " + t.Tag + " is not there yet"
			v.problems = append(v.problems, fmt.Sprintf("%s: %s@%s is there, but tag %s is not (yet): check later with ecrpush replication status %s:%s", where, v.repo, v.digest, t.Tag, v.repo, t.Tag))
		}
	}
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

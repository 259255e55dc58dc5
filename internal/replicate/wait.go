package replicate

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// MinPollInterval is the least time between two DescribeImageReplicationStatus calls for one image.
const MinPollInterval = 2 * time.Second

const maxPollInterval = 15 * time.Second

// WaitOption tunes Wait.
type WaitOption func(*waitOptions)

type waitOptions struct {
	existed       bool
	interval      time.Duration
	grace         time.Duration
	sourceAccount string
	log           *slog.Logger
}

// WithExisted tells Wait the digest was already in the repository before this push: ECR replicates only
// new pushes, so destinations it never reports are not waited for past the grace period.
func WithExisted(existed bool) WaitOption { return func(o *waitOptions) { o.existed = existed } }

// WithPollInterval sets the first pause between polls (default MinPollInterval); pauses then grow by half
// up to 15 s. Below MinPollInterval only for tests against a local sandbox.
func WithPollInterval(d time.Duration) WaitOption { return func(o *waitOptions) { o.interval = d } }

// WithAppearGrace sets how long, for an image that existed before, ECR gets to report a destination
// before it is declared not replicated (default 6 s).
func WithAppearGrace(d time.Duration) WaitOption { return func(o *waitOptions) { o.grace = d } }

// WithSourceAccount names the ci account in failure causes (the principal destination policies must allow).
func WithSourceAccount(account string) WaitOption {
	return func(o *waitOptions) { o.sourceAccount = account }
}

// WithWaitLogger logs progress.
func WithWaitLogger(l *slog.Logger) WaitOption { return func(o *waitOptions) { o.log = l } }

// WaitError is why Wait did not see every destination COMPLETE.
type WaitError struct {
	Repository, Digest string
	Statuses           []Status      // every destination, in order
	Failed             []Status      // FAILED as ECR reported it
	Pending            []Status      // still IN_PROGRESS at the deadline
	Missing            []Status      // never reported by the deadline
	Preexisting        []Destination // never reported because the image existed before the rule
	Timeout            time.Duration
	SourceAccount      string
}

func (e *WaitError) Error() string {
	var parts []string
	for _, s := range e.Failed {
		parts = append(parts, fmt.Sprintf("%s:%s FAILED (%s): %s", s.Account, s.Region, orUnknown(s.FailureCode), Cause(s.FailureCode, s.Account, s.Region, e.SourceAccount)))
	}
	if len(e.Preexisting) > 0 {
		parts = append(parts, fmt.Sprintf("ECR did not replicate it to %s: the image was already in the repository before the replication rule existed and ECR replicates only new pushes; "+
			"pass --destination-role-name (or ACCOUNT:REGION=ROLE_ARN) so ecrpush copies it, push it under a new tag, or use --replication copy", destList(e.Preexisting)))
	}
	if len(e.Pending) > 0 || len(e.Missing) > 0 {
		var p []string
		if len(e.Pending) > 0 {
			p = append(p, "still IN_PROGRESS at "+statusList(e.Pending))
		}
		if len(e.Missing) > 0 {
			p = append(p, "never reported for "+statusList(e.Missing)+" (does a replication rule cover "+e.Repository+" for it?)")
		}
		parts = append(parts, fmt.Sprintf("not finished within %s: %s; raise --replication-timeout or check later with ecrpush replication status", e.Timeout, strings.Join(p, "; ")))
	}
	return fmt.Sprintf("replication of %s@%s: %s", e.Repository, e.Digest, strings.Join(parts, "; "))
}

func orUnknown(s string) string {
	if s == "" {
		return "no failure code"
	}
	return s
}

func statusList(sts []Status) string {
	var s []string
	for _, x := range sts {
		s = append(s, x.Account+":"+x.Region)
	}
	return strings.Join(s, ", ")
}

// fixableFailure reports whether the user must change something (a policy, a repository) rather than wait.
func (e *WaitError) fixable() bool {
	if len(e.Preexisting) > 0 {
		return true
	}
	for _, s := range e.Failed {
		switch s.FailureCode {
		case "ReplicationAccessDenied", "RepositoryCreationDenied", "ImageTagImmutable", "DestinationRegistryNotFound", FailureNoStatus, FailureExistedBeforeRule:
			return true
		}
	}
	return false
}

// Cause is the likely reason for a replication failure code, and what to change.
func Cause(code, account, region, source string) string {
	principal := "the ci account's root (arn:aws:iam::SOURCE:root)"
	if source != "" {
		principal = "arn:aws:iam::" + source + ":root"
	}
	l := strings.ToLower(code)
	switch {
	case code == FailureNoStatus || code == FailureExistedBeforeRule:
		return fmt.Sprintf("ECR reports no replication of this image to %s in %s: no rule covered the repository when it was pushed, or the image was already there before the rule (ECR replicates only new pushes): check ecrpush replication plan, then push a new tag or copy it (--replication copy)", account, region)
	case strings.Contains(l, "creation"), strings.Contains(l, "createrepository"):
		return fmt.Sprintf("the repository does not exist in %s (%s) and its registry policy does not allow ecr:CreateRepository for %s: add it (ecrpush replication apply) or create the repository there", account, region, principal)
	case strings.Contains(l, "accessdenied"), strings.Contains(l, "permission"):
		return fmt.Sprintf("the registry policy of %s in %s does not allow ecr:ReplicateImage (and ecr:CreateRepository) for %s: add the statement from ecrpush replication plan (or run ecrpush replication apply --destination-role-name ROLE)", account, region, principal)
	case strings.Contains(l, "immutable"):
		return fmt.Sprintf("the repository in %s (%s) has immutable tags and the tag already names another image there: push under a new tag", account, region)
	case strings.Contains(l, "notfound") && strings.Contains(l, "registry"):
		return fmt.Sprintf("there is no registry for %s in %s (a region not enabled for the account?): enable the region or drop the destination", account, region)
	case strings.Contains(l, "sourceimage"):
		return "the image was deleted from the ci repository before it was copied"
	}
	return fmt.Sprintf("likely the registry policy of %s in %s lacks ecr:ReplicateImage / ecr:CreateRepository for %s, or the repository is missing there; ECR may also have failed transiently: check ecrpush replication status, then push again", account, region, principal)
}

// Wait polls DescribeImageReplicationStatus for repo@digest, no more than once per MinPollInterval, until
// ECR reports every destination COMPLETE, or FAILED, or timeout passes. It returns one Status per destination
// in dests' order and, unless all are COMPLETE, a *WaitError (fixable when a policy, a repository or a
// pre-existing image is the cause).
func Wait(ctx context.Context, client ECRAPI, repo, digest string, dests []Destination, timeout time.Duration, opts ...WaitOption) ([]Status, error) {
	o := waitOptions{interval: MinPollInterval, grace: 6 * time.Second, log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if o.interval <= 0 {
		o.interval = MinPollInterval
	}
	start := time.Now()
	deadline := start.Add(timeout)
	sts := make([]Status, len(dests))
	for i, d := range dests {
		sts[i] = Status{Account: d.Account, Region: d.Region, URI: d.Host() + "/" + repo + "@" + digest}
	}
	if len(dests) == 0 {
		return sts, nil
	}
	interval := o.interval
	failures := 0
	for poll := 1; ; poll++ {
		last := time.Now()
		out, err := client.DescribeImageReplicationStatus(ctx, &ecr.DescribeImageReplicationStatusInput{
			RepositoryName: aws.String(repo), ImageId: &types.ImageIdentifier{ImageDigest: aws.String(digest)}})
		if err != nil {
			switch ecrx.Code(err) {
			case "AccessDeniedException":
				return sts, fixable.Wrap(err, "may not read replication status (ecr:DescribeImageReplicationStatus denied): grant it on repository "+repo+" to the ci role")
			case "ImageNotFoundException", "RepositoryNotFoundException":
				return sts, fixable.Wrap(err, fmt.Sprintf("%s@%s is not in the ci registry (%s): push it first", repo, digest, ecrx.Message(err)))
			}
			if ctx.Err() != nil {
				return sts, ctx.Err()
			}
			failures++
			if failures >= 5 {
				return sts, ecrx.APIError(err, "ecr DescribeImageReplicationStatus")
			}
			o.log.Warn("replication status unavailable, retrying", "err", err)
		} else {
			failures = 0
			update(sts, out.ReplicationStatuses, start)
		}
		pending, reported := 0, 0
		for _, s := range sts {
			if s.Status != "" {
				reported++
			}
			if s.Status != StatusComplete && s.Status != StatusFailed {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		now := time.Now()
		if o.existed && err == nil && now.Sub(start) >= o.grace && onlyUnreported(sts) {
			break
		}
		if !now.Before(deadline) {
			break
		}
		o.log.Info("waiting for ECR replication", "repository", repo, "complete", len(dests)-pending, "reported", reported, "of", len(dests))
		next := last.Add(interval)
		if next.After(deadline) {
			// Not enough time left for another poll at the allowed rate: wait out the deadline.
			if err := sleep(ctx, time.Until(deadline)); err != nil {
				return sts, err
			}
			break
		}
		if err := sleep(ctx, time.Until(next)); err != nil {
			return sts, err
		}
		interval = min(interval*3/2, maxPollInterval)
	}
	return finish(sts, dests, repo, digest, timeout, o)
}

// update records ECR's statuses; Seconds is when a destination was first seen finished.
func update(sts []Status, rs []types.ImageReplicationStatus, start time.Time) {
	for _, r := range rs {
		for i := range sts {
			if sts[i].Account != aws.ToString(r.RegistryId) || sts[i].Region != aws.ToString(r.Region) {
				continue
			}
			prev := sts[i].Status
			sts[i].Status = string(r.Status)
			sts[i].FailureCode = aws.ToString(r.FailureCode)
			if (r.Status == types.ReplicationStatusComplete || r.Status == types.ReplicationStatusFailed) && prev != string(r.Status) {
				sts[i].Seconds = time.Since(start).Seconds()
			}
		}
	}
}

func onlyUnreported(sts []Status) bool {
	for _, s := range sts {
		if s.Status == StatusInProgress {
			return false
		}
	}
	return true
}

func finish(sts []Status, dests []Destination, repo, digest string, timeout time.Duration, o waitOptions) ([]Status, error) {
	e := &WaitError{Repository: repo, Digest: digest, Timeout: timeout, SourceAccount: o.sourceAccount}
	for i := range sts {
		switch sts[i].Status {
		case StatusComplete:
		case StatusFailed:
			e.Failed = append(e.Failed, sts[i])
		case StatusInProgress:
			e.Pending = append(e.Pending, sts[i])
		default:
			sts[i].Status = StatusFailed
			if o.existed {
				sts[i].FailureCode = FailureExistedBeforeRule
				e.Preexisting = append(e.Preexisting, dests[i])
			} else {
				sts[i].FailureCode = FailureNoStatus
				e.Missing = append(e.Missing, sts[i])
			}
		}
	}
	e.Statuses = sts
	if len(e.Failed)+len(e.Pending)+len(e.Missing)+len(e.Preexisting) == 0 {
		return sts, nil
	}
	if e.fixable() {
		return sts, fixable.Wrap(e, "")
	}
	return sts, e
}

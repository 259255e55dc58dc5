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

// DefaultTimeout is how long native replication is waited for (--replication-timeout): ECR says "the
// majority of images replicate in less than 30 minutes, but in rare cases the replication might take
// longer" (userguide/replication.html).
const DefaultTimeout = 30 * time.Minute

// MinPollInterval is the least time between two rounds of DescribeImageReplicationStatus calls for one image.
const MinPollInterval = 2 * time.Second

const maxPollInterval = 15 * time.Second

// maxStatusFailures is how many DescribeImageReplicationStatus failures in a row end the wait.
const maxStatusFailures = 5

// WaitOption tunes Wait.
type WaitOption func(*waitOptions)

type waitOptions struct {
	existed       bool
	backfill      bool
	tags          []string
	interval      time.Duration
	grace         time.Duration
	sourceAccount string
	log           *slog.Logger
	progress      func(Progression)
}

// WithExisted tells Wait the digest was already in the repository before this push, so no push event
// will replicate it: destinations ECR does not report within the grace period are backfilled (with
// WithBackfill) or declared not replicated.
func WithExisted(existed bool) WaitOption { return func(o *waitOptions) { o.existed = existed } }

// WithBackfill lets Wait start a replication backfill to every destination an image that existed
// before its rule has not reached (one per destination, as ECR requires), and wait for it.
func WithBackfill(on bool) WaitOption { return func(o *waitOptions) { o.backfill = on } }

// WithTags makes Wait track each tag's replication too: the digest and every tag push are separate
// replication events, which ECR may complete at different times. A destination is done when the
// digest's status and every tag's are.
func WithTags(tags []string) WaitOption { return func(o *waitOptions) { o.tags = tags } }

// WithPollInterval sets the first pause between polls (default MinPollInterval); pauses then grow by half
// up to 15 s. Below MinPollInterval only for tests against a local sandbox.
func WithPollInterval(d time.Duration) WaitOption { return func(o *waitOptions) { o.interval = d } }

// WithAppearGrace sets how long, for an image that existed before, ECR gets to report a destination
// before it is backfilled or declared not replicated (default 6 s).
func WithAppearGrace(d time.Duration) WaitOption { return func(o *waitOptions) { o.grace = d } }

// WithSourceAccount names the ci account in failure causes (the principal destination policies must allow).
func WithSourceAccount(account string) WaitOption {
	return func(o *waitOptions) { o.sourceAccount = account }
}

// WithWaitLogger logs progress: one line per poll.
func WithWaitLogger(l *slog.Logger) WaitOption { return func(o *waitOptions) { o.log = l } }

// WithProgress calls fn after every poll (for a progress line of the caller's own).
func WithProgress(fn func(Progression)) WaitOption { return func(o *waitOptions) { o.progress = fn } }

// Progression is where a wait stands after one poll.
type Progression struct {
	Complete, InProgress, Failed, Unreported, Backfilling, Total int
	Elapsed, Timeout                                             time.Duration
}

func (p Progression) String() string {
	s := fmt.Sprintf("%d/%d COMPLETE", p.Complete, p.Total)
	if p.InProgress > 0 {
		s += fmt.Sprintf(", %d IN_PROGRESS", p.InProgress)
	}
	if p.Backfilling > 0 {
		s += fmt.Sprintf(", %d backfilling", p.Backfilling)
	}
	if p.Failed > 0 {
		s += fmt.Sprintf(", %d FAILED", p.Failed)
	}
	if p.Unreported > 0 {
		s += fmt.Sprintf(", %d not reported yet", p.Unreported)
	}
	return s + fmt.Sprintf(" (%s of %s)", p.Elapsed.Truncate(time.Second), p.Timeout)
}

// WaitError is why Wait did not see every destination COMPLETE.
type WaitError struct {
	Repository, Digest string
	Statuses           []Status      // every destination, in order
	Failed             []Status      // FAILED as ECR reported it (or a backfill did)
	Pending            []Status      // still IN_PROGRESS (or backfilling) at the deadline
	Missing            []Status      // never reported by the deadline
	Preexisting        []Destination // never reported because the image existed before the rule (no backfill)
	Timeout            time.Duration
	SourceAccount      string
	// APIErr is the last DescribeImageReplicationStatus error when the status could not be read.
	APIErr error
}

func (e *WaitError) Error() string {
	var parts []string
	if e.APIErr != nil {
		parts = append(parts, fmt.Sprintf("ECR's replication status could not be read (%v): nothing is known about %s; check later with ecrpush replication status",
			e.APIErr, statusList(e.Missing)))
	}
	for _, s := range e.Failed {
		msg := fmt.Sprintf("%s:%s FAILED (%s): %s", s.Account, s.Region, orUnknown(s.FailureCode), Cause(s.FailureCode, s.Account, s.Region, e.SourceAccount))
		if s.Detail != "" {
			msg += " (" + s.Detail + ")"
		}
		parts = append(parts, msg)
	}
	if len(e.Preexisting) > 0 {
		parts = append(parts, fmt.Sprintf("ECR did not replicate it to %s: the image was already in the repository before the replication rule covered it, and a push that writes nothing "+
			"triggers no replication: backfill it (ecrpush replication status %s@%s --backfill), push it under a new tag, or use --replication copy", destList(e.Preexisting), e.Repository, e.Digest))
	}
	if len(e.Pending) > 0 || (len(e.Missing) > 0 && e.APIErr == nil) {
		var p []string
		if len(e.Pending) > 0 {
			p = append(p, "still IN_PROGRESS at "+statusList(e.Pending))
		}
		if len(e.Missing) > 0 && e.APIErr == nil {
			p = append(p, "never reported for "+statusList(e.Missing)+" (does a replication rule cover "+e.Repository+" for it?)")
		}
		parts = append(parts, fmt.Sprintf("not finished within %s: %s; raise --replication-timeout or check later with ecrpush replication status", e.Timeout, strings.Join(p, "; ")))
	}
	return fmt.Sprintf("replication of %s@%s: %s", e.Repository, e.Digest, strings.Join(parts, "; "))
}

// Unwrap is the API error, when the status could not be read.
func (e *WaitError) Unwrap() error { return e.APIErr }

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

// fixable reports whether the user must change something (a policy, a template, a tag, a rule) rather
// than wait: any FAILED destination (ECR's codes are undocumented; the guidance says what to check), an
// image that predates its rule. Timeouts and unreadable statuses are the cloud's (exit 1).
func (e *WaitError) fixable() bool {
	return len(e.Preexisting) > 0 || len(e.Failed) > 0
}

// Cause is what to check for a replication failure code. ECR publishes no failure codes, so an ECR code
// gets the general guidance (registry policy, repository creation, creation template and KMS, CloudTrail),
// with the code quoted verbatim by the caller; ecrpush's own codes get their specific cause.
func Cause(code, account, region, source string) string {
	principal := "the ci account's root (arn:aws:iam::SOURCE:root)"
	if source != "" {
		principal = "arn:aws:iam::" + source + ":root"
	}
	switch code {
	case FailureNoStatus, FailureExistedBeforeRule:
		return fmt.Sprintf("ECR reports no replication of this image to %s in %s: no rule covered the repository when it was pushed, or the image was already there before the rule: check ecrpush replication plan, then backfill it (ecrpush replication status IMAGE --backfill), push a new tag, or copy it (--replication copy)", account, region)
	case FailureNotBackfilled:
		return "the backfill to " + account + ":" + region + " did not include the image: it takes only images the replication rules cover when it prepares; check ecrpush replication plan and ecrpush replication backfill list"
	case FailureStatusUnavailable:
		return "ECR's replication status could not be read: check later with ecrpush replication status"
	case FailureCopy:
		return "ecrpush could not copy the image there: see the copy error"
	case FailureArchived:
		return "the image is archived there (not pullable): pass --restore-archived, or restore it with aws ecr update-image-storage-class --target-storage-class STANDARD"
	case FailureTagNotApplied:
		return "the image arrived, but a tag names another image there (an immutable repository keeps its tags): push under a new tag, or remove the old tag there and push again"
	}
	return fmt.Sprintf("ECR does not document its replication failure codes; check that the registry policy of %s in %s allows ecr:ReplicateImage and ecr:CreateRepository for %s "+
		"(ecrpush replication plan shows the statement), that a repository replication creates there can be created (the creation template for its prefix; a KMS key or tags in a template need a custom role; "+
		"a KMS key must let ECR use it), and look for the failed CreateRepository or ReplicateImage call in %s's CloudTrail in %s; then push again (or backfill)", account, region, principal, account, region)
}

// destState is one destination while waiting.
type destState struct {
	digest string            // the digest's status: ECR's word, "" unreported
	code   string            // its failure code
	tags   map[string]string // each requested tag's status
	bf     *bfState          // the backfill, once one is wanted
	seen   time.Time         // when it was first seen finished
}

// outcome is the destination's state: COMPLETE, FAILED (with a code and a detail), IN_PROGRESS (with
// a detail), or "" when ECR has not reported it. Done says nothing more will change.
func (d *destState) outcome(tags []string) (status, code, detail string, done bool) {
	if d.digest == StatusComplete {
		var pending []string
		for _, t := range tags {
			switch d.tags[t] {
			case StatusFailed:
				return StatusFailed, d.code, "the replication of tag " + t + " FAILED", true
			case StatusComplete:
			default:
				pending = append(pending, t)
			}
		}
		if len(pending) == 0 {
			return StatusComplete, "", "", true
		}
		if d.bf == nil || !d.bf.done {
			return StatusInProgress, "", "tag " + strings.Join(pending, ", ") + " not replicated yet", false
		}
	}
	if d.bf != nil {
		if d.bf.done {
			return d.bf.result, d.bf.code, d.bf.note, true
		}
		detail = "backfill"
		if d.bf.id != "" {
			detail += " " + d.bf.id
		}
		if d.bf.status != "" {
			detail += " " + d.bf.status
		}
		if d.bf.blocked != "" {
			detail += ": " + d.bf.blocked
		}
		return StatusInProgress, "", detail, false
	}
	switch d.digest {
	case StatusFailed:
		return StatusFailed, d.code, "", true
	case StatusInProgress:
		return StatusInProgress, "", "", false
	}
	return "", "", "", false
}

// Wait polls DescribeImageReplicationStatus for repo@digest (and, WithTags, for each tag), no more than one
// round per MinPollInterval, until ECR reports every destination done, or timeout passes. WithExisted and
// WithBackfill, an image that predates its rule is backfilled to every destination ECR does not report. It
// returns one Status per destination in dests' order and, unless all are COMPLETE, a *WaitError: fixable
// when something must be changed (a FAILED destination, an image no rule replicated), not when time ran out
// or ECR's status could not be read (the last API error is then in it).
func Wait(ctx context.Context, client ECRAPI, repo, digest string, dests []Destination, timeout time.Duration, opts ...WaitOption) ([]Status, error) {
	o := waitOptions{interval: MinPollInterval, grace: 6 * time.Second, log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if o.interval <= 0 {
		o.interval = MinPollInterval
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if len(dests) == 0 {
		return []Status{}, nil
	}
	w := &waiter{client: client, repo: repo, digest: digest, dests: dests, o: o, start: time.Now(), timeout: timeout}
	w.states = make([]*destState, len(dests))
	for i := range dests {
		w.states[i] = &destState{tags: map[string]string{}}
	}
	if err := w.run(ctx); err != nil {
		return w.statuses(), err
	}
	var apiErr error
	if w.okPolls == 0 || w.failures >= maxStatusFailures {
		apiErr = ecrx.APIError(w.lastErr, "ecr DescribeImageReplicationStatus")
	}
	return finish(dests, w.states, repo, digest, w.start, timeout, apiErr, o)
}

// waiter is one Wait.
type waiter struct {
	client       ECRAPI
	repo, digest string
	dests        []Destination
	o            waitOptions
	start        time.Time
	timeout      time.Duration
	states       []*destState

	failures, okPolls int
	lastErr           error
}

func (w *waiter) statuses() []Status {
	return statuses(w.dests, w.states, w.o.tags, w.repo, w.digest, w.start)
}

// run polls until every destination is done, the deadline, or too many failed polls; an error is final
// (a denial, a missing image, a refused backfill, the context).
func (w *waiter) run(ctx context.Context) error {
	deadline := w.start.Add(w.timeout)
	interval := w.o.interval
	for {
		last := time.Now()
		ok, err := w.pollOnce(ctx)
		if err != nil {
			return err
		}
		if w.failures >= maxStatusFailures {
			return nil
		}
		if ok && w.o.existed && time.Since(w.start) >= w.o.grace {
			// An image that predates its rule: what ECR does not report is backfilled (or, without
			// backfill, declared not replicated).
			if !w.o.backfill && onlyUnreported(w.states) {
				return nil
			}
			w.wantBackfills()
		}
		if err := w.stepBackfills(ctx); err != nil {
			return err
		}
		now := time.Now()
		w.markSeen(now)
		pr := progression(w.states, w.o.tags, now.Sub(w.start), w.timeout)
		if pr.Complete+pr.Failed == pr.Total || !now.Before(deadline) {
			return nil
		}
		w.o.log.Info("waiting for ECR replication", "repository", w.repo, "progress", pr.String())
		if w.o.progress != nil {
			w.o.progress(pr)
		}
		next := last.Add(interval)
		if next.After(deadline) {
			// Not enough time left for another poll at the allowed rate: wait out the deadline.
			return sleep(ctx, time.Until(deadline))
		}
		if err := sleep(ctx, time.Until(next)); err != nil {
			return err
		}
		interval = min(interval*3/2, maxPollInterval)
	}
}

// pollOnce reads the statuses once; a transient failure is counted, not returned.
func (w *waiter) pollOnce(ctx context.Context) (bool, error) {
	err := poll(ctx, w.client, w.repo, w.digest, w.dests, w.states, w.o.tags)
	switch {
	case err == nil:
		w.failures = 0
		w.okPolls++
		w.markSeen(time.Now())
		return true, nil
	case fixable.Is(err):
		return false, err
	case ctx.Err() != nil:
		return false, ctx.Err()
	}
	w.failures++
	w.lastErr = err
	w.o.log.Warn("replication status unavailable, retrying", "err", err)
	return false, nil
}

func (w *waiter) markSeen(now time.Time) {
	for _, s := range w.states {
		if _, _, _, done := s.outcome(w.o.tags); done && s.seen.IsZero() {
			s.seen = now
		}
	}
}

// wantBackfills marks every destination ECR does not report (or reports FAILED) for a backfill.
func (w *waiter) wantBackfills() {
	if !w.o.backfill {
		return
	}
	for i, s := range w.states {
		if s.bf == nil && (s.digest == "" || s.digest == StatusFailed) {
			s.bf = &bfState{d: w.dests[i]}
			w.o.log.Info("the image predates the replication rule: backfilling", "destination", w.dests[i].String())
		}
	}
}

func (w *waiter) stepBackfills(ctx context.Context) error {
	for _, s := range w.states {
		if _, _, _, done := s.outcome(w.o.tags); s.bf != nil && !done {
			if err := s.bf.step(ctx, w.client, w.repo, w.digest); err != nil {
				return err
			}
		}
	}
	return nil
}

// poll reads the digest's statuses and, once the digest reached a destination, each tag's.
func poll(ctx context.Context, client ECRAPI, repo, digest string, dests []Destination, states []*destState, tags []string) error {
	rs, err := readStatus(ctx, client, repo, &types.ImageIdentifier{ImageDigest: aws.String(digest)}, digest)
	if err != nil {
		return err
	}
	for i, d := range dests {
		if r, ok := rs[d.String()]; ok {
			states[i].digest, states[i].code = string(r.Status), aws.ToString(r.FailureCode)
		}
	}
	for _, t := range tags {
		need := false
		for _, s := range states {
			if s.digest == StatusComplete && s.tags[t] != StatusComplete && s.tags[t] != StatusFailed {
				need = true
			}
		}
		if !need {
			continue
		}
		rs, err := readStatus(ctx, client, repo, &types.ImageIdentifier{ImageDigest: aws.String(digest), ImageTag: aws.String(t)}, digest)
		if err != nil {
			return err
		}
		for i, d := range dests {
			if r, ok := rs[d.String()]; ok {
				states[i].tags[t] = string(r.Status)
			}
		}
	}
	return nil
}

func readStatus(ctx context.Context, client ECRAPI, repo string, id *types.ImageIdentifier, digest string) (map[string]types.ImageReplicationStatus, error) {
	out, err := client.DescribeImageReplicationStatus(ctx, &ecr.DescribeImageReplicationStatusInput{RepositoryName: aws.String(repo), ImageId: id})
	if err != nil {
		switch ecrx.Code(err) {
		case "AccessDeniedException":
			return nil, fixable.Wrap(err, "may not read replication status (ecr:DescribeImageReplicationStatus denied): grant it on repository "+repo+" to the ci role")
		case "ImageNotFoundException", "RepositoryNotFoundException":
			return nil, fixable.Wrap(err, fmt.Sprintf("%s@%s is not in the ci registry (%s): push it first", repo, digest, ecrx.Message(err)))
		}
		return nil, err
	}
	m := map[string]types.ImageReplicationStatus{}
	for _, r := range out.ReplicationStatuses {
		m[aws.ToString(r.RegistryId)+":"+aws.ToString(r.Region)] = r
	}
	return m, nil
}

func progression(states []*destState, tags []string, elapsed, timeout time.Duration) Progression {
	p := Progression{Total: len(states), Elapsed: elapsed, Timeout: timeout}
	for _, s := range states {
		st, _, _, done := s.outcome(tags)
		switch {
		case done && st == StatusComplete:
			p.Complete++
		case done:
			p.Failed++
		case s.bf != nil:
			p.Backfilling++
		case st == "":
			p.Unreported++
		default:
			p.InProgress++
		}
	}
	return p
}

func onlyUnreported(states []*destState) bool {
	for _, s := range states {
		if s.digest == StatusInProgress {
			return false
		}
	}
	return true
}

// statuses renders the states as one Status per destination.
func statuses(dests []Destination, states []*destState, tags []string, repo, digest string, start time.Time) []Status {
	sts := make([]Status, len(dests))
	for i, d := range dests {
		s := states[i]
		st := Status{Account: d.Account, Region: d.Region, URI: d.Host() + "/" + repo + "@" + digest}
		st.Status, st.FailureCode, st.Detail, _ = s.outcome(tags)
		if s.bf != nil {
			st.Backfill = s.bf.id
		}
		if !s.seen.IsZero() {
			st.Seconds = s.seen.Sub(start).Seconds()
		}
		sts[i] = st
	}
	return sts
}

func finish(dests []Destination, states []*destState, repo, digest string, start time.Time, timeout time.Duration, apiErr error, o waitOptions) ([]Status, error) {
	sts := statuses(dests, states, o.tags, repo, digest, start)
	e := &WaitError{Repository: repo, Digest: digest, Timeout: timeout, SourceAccount: o.sourceAccount, APIErr: apiErr}
	for i := range sts {
		switch sts[i].Status {
		case StatusComplete:
		case StatusFailed:
			e.Failed = append(e.Failed, sts[i])
		case StatusInProgress:
			e.Pending = append(e.Pending, sts[i])
		default:
			sts[i].Status = StatusFailed
			switch {
			case apiErr != nil:
				sts[i].FailureCode = FailureStatusUnavailable
				e.Missing = append(e.Missing, sts[i])
			case o.existed:
				sts[i].FailureCode = FailureExistedBeforeRule
				e.Preexisting = append(e.Preexisting, dests[i])
			default:
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

func nopLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

package replicate

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// BackfillAPI is the part of the ci registry's ECR client replication backfill uses.
type BackfillAPI interface {
	StartReplicationBackfill(context.Context, *ecr.StartReplicationBackfillInput, ...func(*ecr.Options)) (*ecr.StartReplicationBackfillOutput, error)
	ListReplicationBackfills(context.Context, *ecr.ListReplicationBackfillsInput, ...func(*ecr.Options)) (*ecr.ListReplicationBackfillsOutput, error)
	DescribeReplicationBackfillResults(context.Context, *ecr.DescribeReplicationBackfillResultsInput, ...func(*ecr.Options)) (*ecr.DescribeReplicationBackfillResultsOutput, error)
	StopReplicationBackfill(context.Context, *ecr.StopReplicationBackfillInput, ...func(*ecr.Options)) (*ecr.StopReplicationBackfillOutput, error)
}

// Backfill statuses (ECR's ReplicationBackfillStatus).
const (
	BackfillPreparing  = "PREPARING"
	BackfillInProgress = "IN_PROGRESS"
	BackfillComplete   = "COMPLETE"
	BackfillFailed     = "FAILED"
	BackfillStopping   = "STOPPING"
	BackfillStopped    = "STOPPED"
)

// Bounds on reading backfills: list pages (50 each) and result pages (1000 each).
const (
	backfillListPages   = 20
	backfillResultPages = 20
	// backfillStarts bounds how many backfills Wait starts (or adopts) for one destination.
	backfillStarts = 2
)

// Backfill is one replication backfill of the ci registry to one destination.
type Backfill struct {
	ID           string      `json:"replicationBackfillId"`
	Destination  Destination `json:"destination"`
	Status       string      `json:"status"`
	StartedAt    time.Time   `json:"startedAt"`
	EndedAt      *time.Time  `json:"endedAt,omitempty"`
	FailureCode  string      `json:"failureCode,omitempty"`
	Progress     *Progress   `json:"progress,omitempty"` // nil while PREPARING
	ResultsFound int         `json:"-"`
}

// Progress is a backfill's replication counts; each image and tag combination is one replication.
type Progress struct {
	Total        int      `json:"totalReplicationCount"`
	Completed    int      `json:"completedReplicationCount"`
	Failed       int      `json:"failedReplicationCount"`
	FailureCodes []string `json:"failureCodes,omitempty"`
}

// BackfillResult is one image and tag of a finished backfill.
type BackfillResult struct {
	Repository  string   `json:"repositoryName"`
	Digest      string   `json:"imageDigest"`
	Tag         string   `json:"imageTag,omitempty"`
	Status      string   `json:"status"`
	FailureCode string   `json:"failureCode,omitempty"`
	SubImages   []string `json:"subImageFailureCodes,omitempty"`
}

// Terminal reports whether a backfill status is final.
func Terminal(status string) bool {
	return status == BackfillComplete || status == BackfillFailed || status == BackfillStopped
}

func progressOf(p *types.ReplicationBackfillProgress) *Progress {
	if p == nil {
		return nil
	}
	return &Progress{Total: int(aws.ToInt32(p.TotalReplicationCount)), Completed: int(aws.ToInt32(p.CompletedReplicationCount)),
		Failed: int(aws.ToInt32(p.FailedReplicationCount)), FailureCodes: p.FailureCodes}
}

func destOf(d *types.ReplicationDestination) Destination {
	if d == nil {
		return Destination{}
	}
	return Destination{Account: aws.ToString(d.RegistryId), Region: aws.ToString(d.Region)}
}

func backfillError(err error, what string) error {
	switch ecrx.Code(err) {
	case "AccessDeniedException":
		return fixable.Wrap(err, fmt.Sprintf("%s: access denied (%s): grant ecr:StartReplicationBackfill, ecr:ListReplicationBackfills, ecr:DescribeReplicationBackfillResults and ecr:StopReplicationBackfill on * to the ci role", what, ecrx.Message(err)))
	case "ReplicationBackfillNotFoundException":
		return fixable.Wrap(err, fmt.Sprintf("%s: no such backfill in the ci registry (%s): list them with ecrpush replication backfill list", what, ecrx.Message(err)))
	case "ReplicationBackfillInvalidStatusException":
		return fixable.Wrap(err, fmt.Sprintf("%s: %s (only PREPARING or IN_PROGRESS backfills can be stopped)", what, ecrx.Message(err)))
	case "InvalidParameterException", "ValidationException":
		return fixable.Wrap(err, fmt.Sprintf("%s: ECR refused it: %s", what, ecrx.Message(err)))
	}
	return ecrx.APIError(err, what)
}

// ListBackfills lists the ci registry's backfills (ECR keeps finished ones for 90 days), newest as ECR
// orders them, reading at most 1,000.
func ListBackfills(ctx context.Context, c BackfillAPI) ([]Backfill, error) {
	var out []Backfill
	in := &ecr.ListReplicationBackfillsInput{MaxResults: aws.Int32(50)}
	for range backfillListPages {
		page, err := c.ListReplicationBackfills(ctx, in)
		if err != nil {
			return out, backfillError(err, "ecr ListReplicationBackfills")
		}
		for _, b := range page.Backfills {
			out = append(out, Backfill{ID: aws.ToString(b.ReplicationBackfillId), Destination: destOf(b.Destination), Status: string(b.Status),
				StartedAt: aws.ToTime(b.StartedAt), EndedAt: b.EndedAt, FailureCode: aws.ToString(b.FailureCode), Progress: progressOf(b.Progress)})
		}
		if page.NextToken == nil {
			break
		}
		in.NextToken = page.NextToken
	}
	return out, nil
}

// DescribeBackfill reads one backfill and, once it is terminal, its results (filter "" for all,
// COMPLETE or FAILED), at most 20,000.
func DescribeBackfill(ctx context.Context, c BackfillAPI, id, filter string) (Backfill, []BackfillResult, error) {
	in := &ecr.DescribeReplicationBackfillResultsInput{ReplicationBackfillId: aws.String(id), MaxResults: aws.Int32(1000)}
	if filter != "" {
		in.ResultStatusFilter = types.ReplicationBackfillResultStatus(filter)
	}
	var b Backfill
	var results []BackfillResult
	for page := 0; page < backfillResultPages; page++ {
		out, err := c.DescribeReplicationBackfillResults(ctx, in)
		if err != nil {
			return b, results, backfillError(err, "ecr DescribeReplicationBackfillResults "+id)
		}
		b = Backfill{ID: aws.ToString(out.ReplicationBackfillId), Destination: destOf(out.Destination), Status: string(out.Status),
			StartedAt: aws.ToTime(out.StartedAt), EndedAt: out.EndedAt, FailureCode: aws.ToString(out.FailureCode), Progress: progressOf(out.Progress)}
		for _, r := range out.Results {
			br := BackfillResult{Repository: aws.ToString(r.RepositoryName), Status: string(r.Status), FailureCode: aws.ToString(r.FailureCode), SubImages: r.SubImageFailureCodes}
			if r.ImageId != nil {
				br.Digest, br.Tag = aws.ToString(r.ImageId.ImageDigest), aws.ToString(r.ImageId.ImageTag)
			}
			results = append(results, br)
		}
		if out.NextToken == nil || !Terminal(b.Status) {
			break
		}
		in.NextToken = out.NextToken
	}
	b.ResultsFound = len(results)
	return b, results, nil
}

// StopBackfill stops a PREPARING or IN_PROGRESS backfill: STOPPED at once, or STOPPING while the
// replications in flight finish (images already replicated stay).
func StopBackfill(ctx context.Context, c BackfillAPI, id string) (Backfill, error) {
	out, err := c.StopReplicationBackfill(ctx, &ecr.StopReplicationBackfillInput{ReplicationBackfillId: aws.String(id)})
	if err != nil {
		return Backfill{}, backfillError(err, "ecr StopReplicationBackfill "+id)
	}
	return Backfill{ID: aws.ToString(out.ReplicationBackfillId), Destination: destOf(out.Destination), Status: string(out.Status), StartedAt: aws.ToTime(out.StartedAt)}, nil
}

// WriteBackfills writes one aligned row per backfill.
func WriteBackfills(w io.Writer, bs []Backfill) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDESTINATION\tSTATUS\tPROGRESS\tSTARTED\tENDED")
	for _, b := range bs {
		prog := "-"
		if p := b.Progress; p != nil {
			prog = fmt.Sprintf("%d/%d", p.Completed, p.Total)
			if p.Failed > 0 {
				prog += fmt.Sprintf(" (%d failed: %s)", p.Failed, strings.Join(p.FailureCodes, ", "))
			}
		}
		st := b.Status
		if b.FailureCode != "" {
			st += " (" + b.FailureCode + ")"
		}
		ended := "-"
		if b.EndedAt != nil {
			ended = b.EndedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.Destination, st, prog, b.StartedAt.UTC().Format(time.RFC3339), ended)
	}
	return tw.Flush()
}

// bfState is Wait's backfill of one destination.
type bfState struct {
	d       Destination
	id      string
	status  string
	adopted bool // an already running backfill to d, which may have prepared before the rule
	starts  int
	blocked string // why a start is deferred (another backfill in the region, the registry's limit)
	done    bool
	result  string // COMPLETE or FAILED
	code    string // failure code: ECR's (verbatim) or ecrpush's
	note    string
}

// StartBackfill starts one backfill of the ci registry to d.
func StartBackfill(ctx context.Context, c BackfillAPI, d Destination) (Backfill, error) {
	out, err := c.StartReplicationBackfill(ctx, &ecr.StartReplicationBackfillInput{
		Destination: &types.ReplicationDestination{RegistryId: aws.String(d.Account), Region: aws.String(d.Region)}})
	if err != nil {
		return Backfill{}, err
	}
	return Backfill{ID: aws.ToString(out.ReplicationBackfillId), Destination: d, Status: string(out.Status), StartedAt: aws.ToTime(out.StartedAt)}, nil
}

// startOrAdopt starts a backfill to d. ECR runs one per destination Region at a time: one already running
// to d itself is adopted (adopted true); one to another destination in the region, or the registry's limit
// of 10, defers the start (blocked says why, the caller tries again later). A refusal the user must fix
// is an error.
func startOrAdopt(ctx context.Context, c BackfillAPI, d Destination) (bf Backfill, adopted bool, blocked string, err error) {
	bf, err = StartBackfill(ctx, c, d)
	switch code := ecrx.Code(err); {
	case err == nil:
		return bf, false, "", nil
	case code == "ReplicationBackfillInProgressException":
		list, lerr := ListBackfills(ctx, c)
		if lerr != nil {
			return Backfill{}, false, "", lerr
		}
		for _, x := range list {
			if Terminal(x.Status) || x.Destination.Region != d.Region {
				continue
			}
			if x.Destination == d {
				return x, true, "", nil
			}
			return Backfill{}, false, fmt.Sprintf("backfill %s to %s holds the region", x.ID, x.Destination), nil
		}
		return Backfill{}, false, "another backfill holds " + d.Region, nil
	case code == "LimitExceededException":
		return Backfill{}, false, "the ci registry has 10 backfills in progress, ECR's maximum", nil
	case code == "InvalidParameterException" || code == "ValidationException":
		return Backfill{}, false, "", fixable.Wrap(err, fmt.Sprintf("ECR refused to backfill %s (%s): the destination must be in the ci registry's replication configuration: pass --configure-replication (or run ecrpush replication apply)", d, ecrx.Message(err)))
	case code == "AccessDeniedException":
		return Backfill{}, false, "", backfillError(err, "ecr StartReplicationBackfill to "+d.String())
	}
	return Backfill{}, false, "StartReplicationBackfill failed: " + ecrx.Message(err), nil
}

// step advances one destination's backfill by one poll: start (or adopt) one, read its status, and
// once it is terminal find repo@digest in its results. A returned error ends the wait (a denial, a
// destination outside the configuration); transient failures are left for the next poll.
func (b *bfState) step(ctx context.Context, c BackfillAPI, repo, digest string) error {
	if b.done {
		return nil
	}
	if b.id == "" {
		if b.starts >= backfillStarts {
			b.done, b.result, b.code = true, StatusFailed, FailureNotBackfilled
			b.note = fmt.Sprintf("%d backfills to %s did not include %s@%s: is the repository covered by a rule for it?", b.starts, b.d, repo, digest)
			return nil
		}
		bf, adopted, blocked, err := startOrAdopt(ctx, c, b.d)
		if err != nil {
			return err
		}
		b.blocked = blocked
		if bf.ID != "" {
			b.id, b.status, b.adopted, b.starts = bf.ID, bf.Status, adopted, b.starts+1
		}
		return nil
	}
	bf, results, err := DescribeBackfill(ctx, c, b.id, "")
	if err != nil {
		if fixable.Is(err) {
			return err
		}
		b.blocked = err.Error()
		return nil
	}
	b.status, b.blocked = bf.Status, ""
	if Terminal(bf.Status) {
		b.settle(bf, results, repo, digest)
	}
	return nil
}

// settle reads a terminal backfill's results for repo@digest.
func (b *bfState) settle(bf Backfill, results []BackfillResult, repo, digest string) {
	found := false
	for _, r := range results {
		if r.Repository != repo || r.Digest != digest {
			continue
		}
		found = true
		if r.Status == StatusFailed && b.code == "" {
			b.code = r.FailureCode
			if b.code == "" {
				b.code = strings.Join(r.SubImages, ",")
			}
		}
	}
	switch {
	case found:
		b.done, b.result = true, StatusComplete
		if b.code != "" {
			b.result = StatusFailed
		}
	case b.adopted || bf.Status == BackfillStopped:
		// Prepared before our rule, or stopped before it reached the image: start another.
		b.id, b.adopted = "", false
	default:
		b.done, b.result, b.code = true, StatusFailed, FailureNotBackfilled
		b.note = fmt.Sprintf("backfill %s to %s ended %s without %s@%s (it takes only images the rules cover when it prepares; %d results read)", bf.ID, b.d, bf.Status, repo, digest, bf.ResultsFound)
	}
}

// BackfillAll starts one backfill per destination (one per destination Region at a time, as ECR allows:
// the others wait their turn; a backfill already running to the same destination is adopted) and waits
// until every one is terminal or timeout passes. It returns the backfills in dests' order (ID "" for one
// never started) and an error naming every destination whose backfill did not end COMPLETE.
func BackfillAll(ctx context.Context, c BackfillAPI, dests []Destination, timeout time.Duration, opts ...WaitOption) ([]Backfill, error) {
	o := waitOptions{interval: MinPollInterval, log: nopLogger()}
	for _, opt := range opts {
		opt(&o)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	start := time.Now()
	deadline := start.Add(timeout)
	out := make([]Backfill, len(dests))
	blocked := make([]string, len(dests))
	for i, d := range dests {
		out[i].Destination = d
	}
	interval := o.interval
	for {
		pending := 0
		for i, d := range dests {
			b := &out[i]
			if b.ID == "" {
				bf, adopted, why, err := startOrAdopt(ctx, c, d)
				if err != nil {
					return out, err
				}
				blocked[i] = why
				if bf.ID != "" {
					*b = bf
					o.log.Info("backfill started", "destination", d.String(), "id", bf.ID, "adopted", adopted)
				}
			}
			if b.ID != "" && !Terminal(b.Status) {
				bf, _, err := DescribeBackfill(ctx, c, b.ID, "")
				if err != nil {
					return out, err
				}
				*b = bf
			}
			if !Terminal(b.Status) {
				pending++
			}
		}
		if pending == 0 || !time.Now().Add(interval).Before(deadline) {
			break
		}
		o.log.Info("waiting for backfills", "pending", pending, "of", len(dests), "elapsed", time.Since(start).Truncate(time.Second).String())
		if err := sleep(ctx, interval); err != nil {
			return out, err
		}
		interval = min(interval*3/2, maxPollInterval)
	}
	return out, backfillProblems(out, blocked, timeout)
}

// backfillProblems is BackfillAll's error: every destination whose backfill did not end COMPLETE without
// failures.
func backfillProblems(out []Backfill, blocked []string, timeout time.Duration) error {
	var problems []string
	fix := false
	for i, b := range out {
		switch {
		case b.ID == "":
			problems = append(problems, fmt.Sprintf("%s: not started within %s (%s)", b.Destination, timeout, blocked[i]))
		case b.Status == BackfillComplete && (b.Progress == nil || b.Progress.Failed == 0):
		case b.Status == BackfillComplete || b.Status == BackfillFailed:
			fix = true
			codes := ""
			if b.Progress != nil {
				codes = fmt.Sprintf("%d of %d replications failed (%s); ", b.Progress.Failed, b.Progress.Total, strings.Join(b.Progress.FailureCodes, ", "))
			}
			problems = append(problems, fmt.Sprintf("%s: backfill %s ended %s: %s%s", b.Destination, b.ID, b.Status, codes, Cause(b.FailureCode, b.Destination.Account, b.Destination.Region, "")))
		case b.Status == BackfillStopped || b.Status == BackfillStopping:
			problems = append(problems, fmt.Sprintf("%s: backfill %s was stopped", b.Destination, b.ID))
		default:
			problems = append(problems, fmt.Sprintf("%s: backfill %s still %s after %s: check later with ecrpush replication backfill list", b.Destination, b.ID, b.Status, timeout))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	err := fmt.Errorf("replication backfill: %s", strings.Join(problems, "; "))
	if fix {
		return fixable.Wrap(err, "")
	}
	return err
}

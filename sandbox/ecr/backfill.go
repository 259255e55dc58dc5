package ecr

import (
	"context"
	"regexp"
	"sort"
	"time"
)

// Replication backfill statuses (ReplicationBackfillStatus) and result statuses
// (ReplicationBackfillResultStatus).
const (
	BackfillPreparing  = "PREPARING"
	BackfillInProgress = "IN_PROGRESS"
	BackfillComplete   = "COMPLETE"
	BackfillFailed     = "FAILED"
	BackfillStopping   = "STOPPING"
	BackfillStopped    = "STOPPED"
)

// Backfill limits from the API reference (StartReplicationBackfill, ListReplicationBackfills) and the
// user guide (replication-backfill.html).
const (
	maxBackfillsInProgress = 10                  // per registry: LimitExceededException beyond
	backfillRetention      = 90 * 24 * time.Hour // terminal backfills are listed this long
	backfillFailMinimum    = 100                 // the 50% failure threshold is evaluated after this many
)

var backfillIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// backfill is one replication backfill of a registry to one destination; guarded by the source
// registry's mutex.
type backfill struct {
	id          string
	dest        ReplicationDestination
	status      string
	startedAt   time.Time
	endedAt     time.Time
	failureCode string
	prepared    bool // progress is reported once preparation finished
	total       int
	completed   int
	failed      int
	codes       []string
	results     []backfillResult
	stop        bool
}

type backfillResult struct {
	RepositoryName string          `json:"repositoryName"`
	ImageID        ImageIdentifier `json:"imageId"`
	Status         string          `json:"status"`
	FailureCode    string          `json:"failureCode,omitempty"`
}

type backfillProgress struct {
	TotalReplicationCount     int      `json:"totalReplicationCount"`
	CompletedReplicationCount int      `json:"completedReplicationCount"`
	FailedReplicationCount    int      `json:"failedReplicationCount"`
	FailureCodes              []string `json:"failureCodes"`
}

type backfillSummary struct {
	ReplicationBackfillID string                 `json:"replicationBackfillId"`
	Destination           ReplicationDestination `json:"destination"`
	Status                string                 `json:"status"`
	StartedAt             epochTime              `json:"startedAt"`
	EndedAt               *epochTime             `json:"endedAt,omitempty"`
	FailureCode           string                 `json:"failureCode,omitempty"`
	Progress              *backfillProgress      `json:"progress,omitempty"`
}

func terminal(status string) bool {
	return status == BackfillComplete || status == BackfillFailed || status == BackfillStopped
}

func (b *backfill) summaryLocked() backfillSummary {
	s := backfillSummary{ReplicationBackfillID: b.id, Destination: b.dest, Status: b.status, StartedAt: epochTime(b.startedAt), FailureCode: b.failureCode}
	if !b.endedAt.IsZero() {
		e := epochTime(b.endedAt)
		s.EndedAt = &e
	}
	if b.prepared {
		s.Progress = &backfillProgress{TotalReplicationCount: b.total, CompletedReplicationCount: b.completed,
			FailedReplicationCount: b.failed, FailureCodes: append([]string{}, b.codes...)}
	}
	return s
}

// backfillRegistry is the caller's registry for a backfill operation: registryId, when given, must
// be the caller's own (the sandbox has no cross-account registry access).
func backfillRegistry(c *call, registryID string) (*registry, *apiError) {
	if aerr := validateRegistryID("registryId", registryID); aerr != nil {
		return nil, aerr
	}
	rg, aerr := c.ownRegistry()
	if aerr != nil {
		return nil, aerr
	}
	if registryID != "" && registryID != c.sess.Account {
		return nil, newAPIError(excAccessDenied, "%s", accessDenied(c.sess.ARN(), c.action(), "arn:aws:ecr:"+c.region+":"+registryID+":registry", true))
	}
	return rg, nil
}

// configured reports whether the replication configuration names dest in any rule.
func configured(cfg ReplicationConfiguration, dest ReplicationDestination) bool {
	for _, r := range cfg.Rules {
		for _, d := range r.Destinations {
			if d == dest {
				return true
			}
		}
	}
	return false
}

func opStartReplicationBackfill(c *call) (any, *apiError) {
	var in struct {
		RegistryID  string                  `json:"registryId"`
		Destination *ReplicationDestination `json:"destination"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.Destination == nil {
		return nil, invalidParam("destination", "Member must not be null")
	}
	d := *in.Destination
	if !regionShapePattern.MatchString(d.Region) {
		return nil, invalidParam("destination.region", "Member must satisfy regular expression pattern: [0-9a-z-]{2,25}")
	}
	if !accountIDPattern.MatchString(d.RegistryID) {
		return nil, invalidParam("destination.registryId", "Member must satisfy regular expression pattern: [0-9]{12}")
	}
	rg, aerr := backfillRegistry(c, in.RegistryID)
	if aerr != nil {
		return nil, aerr
	}
	now := c.s.now()
	rg.mu.Lock()
	rg.pruneBackfillsLocked(now)
	// [doc] "The destination must already be configured in the registry's replication configuration."
	// [assumed] the error is InvalidParameterException with this wording.
	if !configured(rg.replication, d) {
		rg.mu.Unlock()
		return nil, invalidParam("destination", "The destination "+d.RegistryID+"/"+d.Region+" is not in the registry's replication configuration")
	}
	running := 0
	for _, b := range rg.backfills {
		if terminal(b.status) {
			continue
		}
		running++
		if b.dest.Region == d.Region {
			rg.mu.Unlock()
			return nil, newAPIError(excBackfillInProgress, "A replication backfill (%s) is already in progress for destination Region %s. Wait for it to reach a terminal status, or stop it, before starting another one.", b.id, d.Region)
		}
	}
	if running >= maxBackfillsInProgress {
		rg.mu.Unlock()
		return nil, newAPIError(excLimitExceeded, "The registry already has %d replication backfills in progress, the maximum.", maxBackfillsInProgress)
	}
	b := &backfill{id: randomUUID(), dest: d, status: BackfillPreparing, startedAt: now}
	rg.backfills = append(rg.backfills, b)
	rg.mu.Unlock()
	c.s.repl.goAfter(c.s.o.ReplicationDelay, func(ctx context.Context) { rg.runBackfill(ctx, b) })
	return map[string]any{"replicationBackfillId": b.id, "registryId": rg.id.Account, "destination": d,
		"status": BackfillPreparing, "startedAt": epochTime(now)}, nil
}

// backfillItem is one replication: an image and one of its tags ("" for an untagged image).
type backfillItem struct{ repo, digest, tag string }

// qualifyingLocked lists what a backfill to dest replicates: "each image and tag combination" of
// every repository whose rules name dest. [assumed] only ACTIVE images count (archived ones are not
// pullable), and the children of an index travel with it rather than as images of their own.
func (rg *registry) qualifyingLocked(dest ReplicationDestination) []backfillItem {
	var names []string
	for n := range rg.repos {
		for _, d := range destinationsFor(rg.replication, rg.id, n) {
			if d == dest {
				names = append(names, n)
				break
			}
		}
	}
	sort.Strings(names)
	var out []backfillItem
	for _, n := range names {
		r := rg.repos[n]
		child := map[string]bool{}
		for _, img := range r.images {
			for _, c := range img.children {
				child[c] = true
			}
		}
		var imgs []*image
		for _, img := range r.images {
			if img.status == imageActive && !child[img.digest] {
				imgs = append(imgs, img)
			}
		}
		sort.Slice(imgs, func(i, j int) bool {
			if !imgs[i].pushedAt.Equal(imgs[j].pushedAt) {
				return imgs[i].pushedAt.Before(imgs[j].pushedAt)
			}
			return imgs[i].digest < imgs[j].digest
		})
		for _, img := range imgs {
			tags := r.tagsOf(img.digest)
			if len(tags) == 0 {
				tags = []string{""}
			}
			for _, t := range tags {
				out = append(out, backfillItem{repo: n, digest: img.digest, tag: t})
			}
		}
	}
	return out
}

// runBackfill prepares (after ReplicationDelay) and replicates one item at a time, honouring stop
// requests between items. [doc] It fails when 50% or more of its replications fail, evaluated once at
// least 100 have been processed. [assumed] a backfill whose every item was processed otherwise ends
// COMPLETE, its failed items counted in its progress and results. Backfill copies are reported in
// DescribeReplicationBackfillResults only, not in the image's DescribeImageReplicationStatus
// ([assumed]: AWS documents the results as the place to read per-image outcomes).
func (rg *registry) runBackfill(ctx context.Context, b *backfill) {
	rg.mu.Lock()
	if b.status != BackfillPreparing {
		rg.mu.Unlock()
		return
	}
	items := rg.qualifyingLocked(b.dest)
	b.status, b.prepared, b.total = BackfillInProgress, true, len(items)
	rg.mu.Unlock()
	dst, ok := rg.s.registry(RegistryID{Account: b.dest.RegistryID, Region: b.dest.Region})
	for _, it := range items {
		if ctx.Err() != nil {
			return
		}
		rg.mu.Lock()
		stop := b.stop
		rg.mu.Unlock()
		if stop {
			break
		}
		code := FailureDestinationNotFound
		if ok {
			code = rg.s.repl.copyImage(replJob{src: rg, dest: dst, repo: it.repo, digest: it.digest, tag: it.tag})
		}
		rg.mu.Lock()
		res := backfillResult{RepositoryName: it.repo, ImageID: ImageIdentifier{ImageDigest: it.digest, ImageTag: it.tag}, Status: BackfillComplete}
		if code != "" {
			res.Status, res.FailureCode = BackfillFailed, code
			b.failed++
			if !contains(b.codes, code) {
				b.codes = append(b.codes, code)
			}
		} else {
			b.completed++
		}
		b.results = append(b.results, res)
		done := b.completed + b.failed
		if done >= backfillFailMinimum && 2*b.failed >= done {
			b.status, b.endedAt = BackfillFailed, rg.s.now()
			rg.mu.Unlock()
			return
		}
		rg.mu.Unlock()
	}
	rg.mu.Lock()
	if b.stop {
		b.status = BackfillStopped
	} else {
		b.status = BackfillComplete
	}
	b.endedAt = rg.s.now()
	rg.mu.Unlock()
	rg.s.log.Info("ecr replication backfill", "source", rg.id.String(), "id", b.id, "status", b.status, "completed", b.completed, "failed", b.failed)
}

func (rg *registry) pruneBackfillsLocked(now time.Time) {
	kept := rg.backfills[:0]
	for _, b := range rg.backfills {
		if terminal(b.status) && now.Sub(b.endedAt) > backfillRetention {
			continue
		}
		kept = append(kept, b)
	}
	rg.backfills = kept
}

func (rg *registry) findBackfillLocked(id string) *backfill {
	for _, b := range rg.backfills {
		if b.id == id {
			return b
		}
	}
	return nil
}

func backfillNotFound(id, account string) *apiError {
	return newAPIError(excBackfillNotFound, "The replication backfill with id '%s' does not exist in the registry with id '%s'", id, account)
}

func validateBackfillID(id string) *apiError {
	if !backfillIDPattern.MatchString(id) {
		return invalidParam("replicationBackfillId", "Member must satisfy regular expression pattern: [0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
	}
	return nil
}

func opListReplicationBackfills(c *call) (any, *apiError) {
	var in struct {
		RegistryID string `json:"registryId"`
		MaxResults *int   `json:"maxResults"`
		NextToken  string `json:"nextToken"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	size := 25
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 50 {
			return nil, invalidParam("maxResults", "Member must have value between 1 and 50")
		}
		size = *in.MaxResults
	}
	rg, aerr := backfillRegistry(c, in.RegistryID)
	if aerr != nil {
		return nil, aerr
	}
	rg.mu.Lock()
	rg.pruneBackfillsLocked(c.s.now())
	list := make([]backfillSummary, 0, len(rg.backfills))
	for i := len(rg.backfills) - 1; i >= 0; i-- { // [assumed] newest first
		list = append(list, rg.backfills[i].summaryLocked())
	}
	rg.mu.Unlock()
	page, next, aerr := paginate(len(list), in.NextToken, &size)
	if aerr != nil {
		return nil, aerr
	}
	out := map[string]any{"registryId": rg.id.Account, "backfills": list[page[0]:page[1]]}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func opDescribeReplicationBackfillResults(c *call) (any, *apiError) {
	var in struct {
		RegistryID            string `json:"registryId"`
		ReplicationBackfillID string `json:"replicationBackfillId"`
		ResultStatusFilter    string `json:"resultStatusFilter"`
		MaxResults            *int   `json:"maxResults"`
		NextToken             string `json:"nextToken"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if aerr := validateBackfillID(in.ReplicationBackfillID); aerr != nil {
		return nil, aerr
	}
	if in.ResultStatusFilter != "" && in.ResultStatusFilter != BackfillComplete && in.ResultStatusFilter != BackfillFailed {
		return nil, invalidParam("resultStatusFilter", "Member must satisfy enum value set: [COMPLETE, FAILED]")
	}
	rg, aerr := backfillRegistry(c, in.RegistryID)
	if aerr != nil {
		return nil, aerr
	}
	rg.mu.Lock()
	b := rg.findBackfillLocked(in.ReplicationBackfillID)
	if b == nil {
		rg.mu.Unlock()
		return nil, backfillNotFound(in.ReplicationBackfillID, rg.id.Account)
	}
	sum := b.summaryLocked()
	// [doc] per-image results "after it reaches a terminal status".
	var results []backfillResult
	if terminal(b.status) {
		for _, r := range b.results {
			if in.ResultStatusFilter == "" || r.Status == in.ResultStatusFilter {
				results = append(results, r)
			}
		}
	}
	rg.mu.Unlock()
	page, next, aerr := paginate(len(results), in.NextToken, in.MaxResults)
	if aerr != nil {
		return nil, aerr
	}
	out := map[string]any{"registryId": rg.id.Account, "replicationBackfillId": sum.ReplicationBackfillID,
		"destination": sum.Destination, "status": sum.Status, "startedAt": sum.StartedAt,
		"results": append([]backfillResult{}, results[page[0]:page[1]]...)}
	if sum.EndedAt != nil {
		out["endedAt"] = sum.EndedAt
	}
	if sum.FailureCode != "" {
		out["failureCode"] = sum.FailureCode
	}
	if sum.Progress != nil {
		out["progress"] = sum.Progress
	}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func opStopReplicationBackfill(c *call) (any, *apiError) {
	var in struct {
		RegistryID            string `json:"registryId"`
		ReplicationBackfillID string `json:"replicationBackfillId"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if aerr := validateBackfillID(in.ReplicationBackfillID); aerr != nil {
		return nil, aerr
	}
	rg, aerr := backfillRegistry(c, in.RegistryID)
	if aerr != nil {
		return nil, aerr
	}
	rg.mu.Lock()
	defer rg.mu.Unlock()
	b := rg.findBackfillLocked(in.ReplicationBackfillID)
	if b == nil {
		return nil, backfillNotFound(in.ReplicationBackfillID, rg.id.Account)
	}
	// [doc] only PREPARING or IN_PROGRESS may be stopped: STOPPED at once when nothing is in flight,
	// STOPPING while in-flight replications finish.
	switch b.status {
	case BackfillPreparing:
		b.status, b.endedAt, b.stop = BackfillStopped, c.s.now(), true
	case BackfillInProgress:
		b.status, b.stop = BackfillStopping, true
	default:
		return nil, newAPIError(excBackfillInvalidStatus, "The replication backfill with id '%s' is %s and can't be stopped.", b.id, b.status)
	}
	return map[string]any{"registryId": rg.id.Account, "replicationBackfillId": b.id, "destination": b.dest,
		"status": b.status, "startedAt": epochTime(b.startedAt)}, nil
}

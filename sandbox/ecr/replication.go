package ecr

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ecrpush/ecrpush/internal/iam"
)

// Replication failure codes. ECR documents failureCode only as "a string" and publishes no values:
// every code below is the sandbox's own invention, one per way a copy can fail (see doc.go), and
// the product must not depend on them.
const (
	FailureAccessDenied             = "ReplicationAccessDenied"     // destination registry policy does not allow ecr:ReplicateImage
	FailureRepositoryCreationDenied = "RepositoryCreationDenied"    // repository missing and policy does not allow ecr:CreateRepository
	FailureDestinationNotFound      = "DestinationRegistryNotFound" // the sandbox runs no such registry
	FailureTemplateRoleRequired     = "TemplateCustomRoleRequired"  // a creation template with a KMS key or tags but no customRoleArn
	FailureSourceImageNotFound      = "SourceImageNotFound"         // image deleted before the copy ran
	FailureQueueFull                = "ReplicationQueueFull"        // the destination's bounded queue overflowed
	FailureInternal                 = "InternalError"               // storage error while copying
)

const replicationQueueSize = 1024

// validateReplication applies the service model's constraints and ECR's rules to a
// replicationConfiguration for the registry src (InvalidParameterException, as ECR).
func validateReplication(cfg *ReplicationConfiguration, src RegistryID) *apiError {
	const base = "replicationConfiguration"
	if cfg.Rules == nil {
		return invalidParam(base+".rules", "Member must not be null")
	}
	if len(cfg.Rules) > 10 {
		return invalidParam(base+".rules", "Member must have length less than or equal to 10")
	}
	unique := map[ReplicationDestination]bool{}
	for i, rule := range cfg.Rules {
		rf := fmt.Sprintf("%s.rules.%d.member", base, i+1)
		if len(rule.Destinations) < 1 {
			return invalidParam(rf+".destinations", "Member must have length greater than or equal to 1")
		}
		if len(rule.Destinations) > 25 {
			return invalidParam(rf+".destinations", "Member must have length less than or equal to 25")
		}
		inRule := map[ReplicationDestination]bool{}
		for j, d := range rule.Destinations {
			df := fmt.Sprintf("%s.destinations.%d.member", rf, j+1)
			if !regionShapePattern.MatchString(d.Region) {
				return invalidParam(df+".region", "Member must satisfy regular expression pattern: [0-9a-z-]{2,25}")
			}
			if !regionPattern.MatchString(d.Region) {
				return invalidParam(df+".region", "Invalid region '"+d.Region+"'")
			}
			if !accountIDPattern.MatchString(d.RegistryID) {
				return invalidParam(df+".registryId", "Member must satisfy regular expression pattern: [0-9]{12}")
			}
			if d.Region == src.Region && d.RegistryID == src.Account {
				return invalidParam(base, "Replication destination cannot be the same as the source registry")
			}
			if inRule[d] {
				return invalidParam(base, "Rules cannot contain duplicate destinations")
			}
			inRule[d], unique[d] = true, true
		}
		if rule.RepositoryFilters != nil && len(rule.RepositoryFilters) < 1 {
			return invalidParam(rf+".repositoryFilters", "Member must have length greater than or equal to 1")
		}
		if len(rule.RepositoryFilters) > 100 {
			return invalidParam(rf+".repositoryFilters", "Member must have length less than or equal to 100")
		}
		for j, f := range rule.RepositoryFilters {
			ff := fmt.Sprintf("%s.repositoryFilters.%d.member", rf, j+1)
			if f.FilterType != "PREFIX_MATCH" {
				return invalidParam(ff+".filterType", "Member must satisfy enum value set: [PREFIX_MATCH]")
			}
			switch {
			case len(f.Filter) < 2:
				return invalidParam(ff+".filter", "Member must have length greater than or equal to 2")
			case len(f.Filter) > 256:
				return invalidParam(ff+".filter", "Member must have length less than or equal to 256")
			case !filterValuePattern.MatchString(f.Filter):
				return invalidParam(ff+".filter", "Member must satisfy regular expression pattern: "+filterValueRE)
			}
		}
	}
	if len(unique) > 25 {
		return invalidParam(base, "A replication configuration may contain at most 25 unique destinations across all rules")
	}
	return nil
}

// destinationsFor lists the unique destinations whose rule matches repo (PREFIX_MATCH; a
// rule without filters matches every repository), in configuration order.
func destinationsFor(cfg ReplicationConfiguration, src RegistryID, repo string) []ReplicationDestination {
	var out []ReplicationDestination
	seen := map[ReplicationDestination]bool{}
	for _, rule := range cfg.Rules {
		match := len(rule.RepositoryFilters) == 0
		for _, f := range rule.RepositoryFilters {
			if f.FilterType == "PREFIX_MATCH" && strings.HasPrefix(repo, f.Filter) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		for _, d := range rule.Destinations {
			if seen[d] || (d.RegistryID == src.Account && d.Region == src.Region) {
				continue
			}
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// replicator copies pushed images to their destinations: one worker goroutine and one bounded
// FIFO queue per destination registry, so copies into a registry land in push order. Every push
// (the digest, then each tag) is its own replication event with its own status: the image's status
// for a destination is the last event's, so it may read COMPLETE while a later tag's copy is still
// queued (ECR promises no more).
type replicator struct {
	s      *Service
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	queues map[RegistryID]chan replJob

	mu     sync.Mutex
	closed bool
}

type replJob struct {
	src       *registry
	dest      *registry
	repo      string
	digest    string
	tag       string
	notBefore time.Time
}

func newReplicator(s *Service) *replicator {
	ctx, cancel := context.WithCancel(context.Background())
	rp := &replicator{s: s, ctx: ctx, cancel: cancel, queues: map[RegistryID]chan replJob{}}
	for id := range s.registries {
		q := make(chan replJob, replicationQueueSize)
		rp.queues[id] = q
		rp.wg.Add(1)
		go rp.worker(q)
	}
	return rp
}

// goAfter runs fn in a goroutine the replicator waits for on close, after d unless it closes first.
func (rp *replicator) goAfter(d time.Duration, fn func(ctx context.Context)) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.closed {
		return
	}
	rp.wg.Add(1)
	go func() {
		defer rp.wg.Done()
		if !sleepCtx(rp.ctx, d) {
			return
		}
		fn(rp.ctx)
	}()
}

// after runs fn after d (a restore finishing, a backfill moving on) unless the service closes first.
func (rp *replicator) after(d time.Duration, fn func()) {
	rp.goAfter(d, func(context.Context) { fn() })
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// onPush starts replication of a manifest that just landed in src (registry PUT or PutImage).
func (rp *replicator) onPush(src *registry, repo, digest, tag string) {
	defer rp.s.afterPush(src, repo, digest) // scan on push and managed signing (supplychain.go)
	dests := destinationsFor(src.replicationConfig(), src.id, repo)
	for _, d := range dests {
		st := ImageReplicationStatus{Region: d.Region, RegistryID: d.RegistryID, Status: StatusInProgress}
		src.setReplStatus(repo, digest, tag, st)
		dest, ok := rp.s.registry(RegistryID{Account: d.RegistryID, Region: d.Region})
		if !ok {
			rp.finish(src, repo, digest, tag, st, FailureDestinationNotFound)
			continue
		}
		job := replJob{src: src, dest: dest, repo: repo, digest: digest, tag: tag,
			notBefore: time.Now().Add(rp.s.o.ReplicationDelay)}
		select {
		case rp.queues[dest.id] <- job:
		default:
			rp.finish(src, repo, digest, tag, st, FailureQueueFull)
		}
	}
}

func (rp *replicator) worker(q chan replJob) {
	defer rp.wg.Done()
	for {
		select {
		case <-rp.ctx.Done():
			return
		case j := <-q:
			if !sleepCtx(rp.ctx, time.Until(j.notBefore)) {
				return
			}
			st := ImageReplicationStatus{Region: j.dest.id.Region, RegistryID: j.dest.id.Account}
			rp.finish(j.src, j.repo, j.digest, j.tag, st, rp.copyImage(j))
		}
	}
}

// finish records one event's outcome: COMPLETE when code is "", FAILED with code otherwise.
func (rp *replicator) finish(src *registry, repo, digest, tag string, st ImageReplicationStatus, code string) {
	st.Status, st.FailureCode = StatusComplete, ""
	if code != "" {
		st.Status, st.FailureCode = StatusFailed, code
	}
	src.setReplStatus(repo, digest, tag, st)
	rp.s.log.Info("ecr replication", "source", src.id.String(), "repository", repo, "digest", digest,
		"destination", st.RegistryID+"/"+st.Region, "status", st.Status, "failure_code", st.FailureCode)
}

// copyImage copies blobs, children and the manifest into the destination, byte-identical,
// after the cross-account permission checks ECR makes against the destination's registry
// policy. A repository it creates takes its settings from the destination registry's creation
// template for REPLICATION (templates.go). When the destination repository has immutable tags and
// the tag already names another image, the image is replicated without the tag, as AWS documents
// ("the image is replicated but won't contain the duplicated tag"), and the copy is COMPLETE.
// It returns a failure code, or "" on success.
func (rp *replicator) copyImage(j replJob) string {
	src, dst := j.src, j.dest
	now := rp.s.now()
	if dst.id.Account != src.id.Account {
		pol, _, ok := rp.s.w.RegistryPolicy(dst.id.Account, dst.id.Region)
		if !ok || !policyAllows(pol, src.id.Account, "ecr:ReplicateImage", dst.repoARN(j.repo)) {
			return FailureAccessDenied
		}
		if !dst.hasRepo(j.repo) && !policyAllows(pol, src.id.Account, "ecr:CreateRepository", dst.repoARN(j.repo)) {
			return FailureRepositoryCreationDenied
		}
	}
	if !dst.hasRepo(j.repo) {
		spec, code := dst.replicationSpec(j.repo)
		if code != "" {
			return code
		}
		dst.createRepository(spec, now)
	}
	snap, ok := src.snapshotImage(j.repo, j.digest)
	if !ok {
		return FailureSourceImageNotFound
	}
	for _, b := range snap.blobs {
		if err := dst.store.importBlob(src.store, b); err != nil {
			rp.s.log.Warn("ecr replication copy failed", "digest", b, "error", err)
			return FailureInternal
		}
		if !dst.linkBlob(j.repo, b) {
			return FailureInternal
		}
	}
	for i, p := range snap.parsed {
		tag := ""
		if i == len(snap.parsed)-1 {
			tag = j.tag
		}
		res := dst.putManifest(j.repo, p, tag, now)
		if res.failure == putTagImmutable {
			rp.s.log.Info("ecr replication: immutable tag kept at the destination", "destination", dst.id.String(),
				"repository", j.repo, "tag", tag, "digest", p.digest)
			res = dst.putManifest(j.repo, p, "", now)
		}
		if res.failure != putOK {
			return FailureInternal
		}
	}
	return ""
}

// policyAllows evaluates a destination registry policy for the source account's root principal.
func policyAllows(p *iam.Policy, srcAccount, action, resource string) bool {
	principal := &iam.Principal{Type: "AWS", ID: "arn:aws:iam::" + srcAccount + ":root", Account: srcAccount}
	return p.Evaluate(iam.Request{Principal: principal, Action: action, Resource: resource}) == iam.Allow
}

// close stops the workers, waiting at most until ctx ends.
func (rp *replicator) close(ctx context.Context) error {
	rp.mu.Lock()
	rp.closed = true
	rp.mu.Unlock()
	rp.cancel()
	done := make(chan struct{})
	go func() { rp.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("ecr: replication workers did not stop: %w", ctx.Err())
	}
	for _, rg := range rp.s.registries {
		rg.store.closeUploads()
	}
	return nil
}

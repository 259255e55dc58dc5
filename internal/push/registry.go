package push

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// registryPublisher pushes to one repository of an OCI registry through go-containerregistry.
type registryPublisher struct {
	repo name.Repository
	kc   authn.Keychain
	o    *options
	// immutable reports whether the destination refuses to move tag (ECR reads it from the
	// repository; elsewhere WithImmutableTags decides).
	immutable func(tag string) bool
	// deniedHint says what to grant when the registry answers 401/403 to a write.
	deniedHint string
	// plainHTTP: the registry is known to speak HTTP, so the HTTPS probe is skipped.
	plainHTTP bool
	closed    atomic.Bool
}

// NewRegistry returns a Publisher for repo in any OCI registry, authenticating with kc
// (e.g. authn.DefaultKeychain). Registries on 127.0.0.1/localhost are spoken to over plain HTTP,
// others over HTTPS unless repo was parsed with name.Insecure.
func NewRegistry(repo name.Repository, kc authn.Keychain, opts ...Option) (Publisher, error) {
	if repo.RepositoryStr() == "" {
		return nil, fixable.New("destination needs a repository: REGISTRY/REPOSITORY")
	}
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	if !o.rateSet {
		// ECR's PutImage quota is ECR's: each image costs two PUTs (digest, tag), which at
		// 10/s would add 100 ms to every push to a registry that has no such limit.
		o.manifestRate = 0
	}
	p := &registryPublisher{repo: repo, kc: kc, o: o, plainHTTP: isLoopback(repo.RegistryStr()),
		deniedHint: "check the credentials for " + repo.RegistryStr() + " (docker login) and that they may push to " + repo.RepositoryStr()}
	p.immutable = func(string) bool { return o.immutable }
	return p, nil
}

func (p *registryPublisher) String() string { return p.repo.String() }

// Close makes later Publish calls fail; the shared HTTP transport stays up for other publishers.
func (p *registryPublisher) Close() error {
	p.closed.Store(true)
	return nil
}

// plan is everything decided before the first write.
type plan struct {
	a       *Artifact
	c       *contents
	tags    []string // to write, in order
	same    []string // already at a.Digest
	all     []string // every requested tag, deduplicated, in order
	exists  bool     // the manifest is already in the repository
	meter   *meter
	pol     *retryPolicy
	ropts   []remote.Option
	puller  *remote.Puller
	started time.Time
	moved   map[string]v1.Hash
	blobs   *blobClient
	missing []bool // per c.blobs: the registry does not have it (or could not say)
}

// lookupJobs bounds the HEAD requests one plan sends at once.
const lookupJobs = 32

func (p *registryPublisher) Publish(ctx context.Context, a *Artifact, tags []string) (*Result, error) {
	pl, err := p.plan(ctx, a, tags)
	if err != nil {
		return nil, err
	}
	return p.push(ctx, pl)
}

// remoteOptions hand ggcr the session's transport (already authenticated: ggcr neither pings
// again nor wraps it further).
func (p *registryPublisher) remoteOptions(ctx context.Context, rt http.RoundTripper) []remote.Option {
	return append([]remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(rt),
		remote.WithJobs(p.o.jobs),
	}, noRetry...)
}

func (p *registryPublisher) plan(ctx context.Context, a *Artifact, tags []string) (*plan, error) {
	if p.closed.Load() {
		return nil, errors.New("push: Publish after Close")
	}
	if err := a.validate(); err != nil {
		return nil, err
	}
	if _, ok := p.kc.(*ecrKeychain); ok {
		// The pipeline checks this before any write; a Publisher used on its own checks too.
		if err := CheckECR(a); err != nil {
			return nil, err
		}
	}
	all, err := p.checkTags(tags)
	if err != nil {
		return nil, err
	}
	c, err := a.contents()
	if err != nil {
		return nil, err
	}
	m := newMeter()
	for _, b := range c.blobs {
		m.sizes[b.digest] = b.size
	}
	pl := &plan{a: a, c: c, all: all, meter: m, pol: p.o.policy(), started: time.Now(), moved: map[string]v1.Hash{}}
	// The look-ups below go out at once, each on a connection of its own: open those while the
	// ping runs, so they cost no extra round trip (or TLS handshake) of their own.
	warmed := make(chan struct{})
	wctx, stopWarming := context.WithCancel(ctx)
	defer stopWarming()
	go func() { defer close(warmed); p.warm(wctx, min(lookupJobs, 1+len(all)+len(c.blobs))-1) }()
	rt, err := p.session(ctx, pl.pol)
	if err != nil {
		stopWarming()
		<-warmed
		return nil, p.wrap(err, "connect")
	}
	<-warmed
	pl.ropts = p.remoteOptions(ctx, rt)
	if pl.puller, err = remote.NewPuller(pl.ropts...); err != nil {
		return nil, err
	}

	// Resolve every tag before any write: a conflict must leave the repository untouched. The
	// tags, the digest and every blob are looked up at once: one round trip, not one per
	// reference, and the connections the uploads need are open by the time they start.
	refs := []name.Reference{p.repo.Digest(a.Digest.String())}
	for _, t := range all {
		refs = append(refs, p.repo.Tag(t))
	}
	heads := make([]*v1.Descriptor, len(refs))
	errs := make([]error, len(refs))
	pl.blobs = p.blobClient(rt, pl.pol, m)
	pl.missing = make([]bool, len(c.blobs))
	sem := make(chan struct{}, lookupJobs)
	var wg sync.WaitGroup
	for i, r := range refs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			heads[i], errs[i] = pl.puller.Head(ctx, r)
		})
	}
	for i, b := range c.blobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			// An error here is not fatal: the upload will meet it again and say what it is.
			ok, err := pl.blobs.exists(ctx, b.digest)
			pl.missing[i] = !ok || err != nil
			if !pl.missing[i] {
				m.markPresent(b.digest)
			}
		})
	}
	wg.Wait()
	var conflicts []string
	for i, t := range all {
		d, err := heads[i+1], errs[i+1]
		switch {
		case isNotFound(err):
			pl.tags = append(pl.tags, t)
		case err != nil:
			return nil, p.wrap(err, "resolve tag "+t)
		case d.Digest == a.Digest:
			pl.same = append(pl.same, t)
		case p.immutable(t):
			conflicts = append(conflicts, fmt.Sprintf("%s:%s is %s", p.repo, t, d.Digest))
		default:
			pl.moved[t] = d.Digest
			pl.tags = append(pl.tags, t)
		}
	}
	if len(conflicts) > 0 {
		return nil, fixable.New("tags are immutable in %s and already point elsewhere (%s; pushing %s): push under a new tag, or delete the old image first; nothing was written",
			p.repo, strings.Join(conflicts, "; "), a.Digest)
	}
	switch d, err := heads[0], errs[0]; {
	case err == nil && d.Digest == a.Digest:
		pl.exists = true
	case err != nil && !isNotFound(err):
		return nil, p.wrap(err, "look up "+a.Digest.String())
	}
	return pl, nil
}

func (p *registryPublisher) checkTags(tags []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, t := range tags {
		if seen[t] {
			continue
		}
		seen[t] = true
		if err := ecrx.CheckTag("tag", t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func (p *registryPublisher) push(ctx context.Context, pl *plan) (res *Result, err error) {
	a := pl.a
	log := p.o.log.With("destination", p.repo.String(), "digest", a.Digest.String())
	total := pl.c.blobBytes()
	if pl.exists {
		// The registry accepted this manifest earlier, so it holds every blob it references.
		for _, b := range pl.c.blobs {
			pl.meter.markPresent(b.digest)
		}
	}
	if p.o.progress != nil {
		task := p.o.progress.Start(p.repo.String(), total, func() int64 {
			return min(pl.meter.sent()+pl.meter.presentBytes.Load(), total)
		})
		defer func() { task.Finish(err) }()
	}
	pusher, err := remote.NewPusher(pl.ropts...)
	if err != nil {
		return nil, err
	}

	if !pl.exists {
		// Every missing blob first (one POST + PUT each), so no manifest is written while
		// any blob could still fail.
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(p.o.jobs)
		for i, b := range pl.c.blobs {
			if !pl.missing[i] {
				continue
			}
			g.Go(func() error {
				if err := pl.blobs.upload(gctx, b); err != nil {
					return p.wrap(err, "upload blob "+b.digest.String())
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		// Then manifests by digest: an index's children first, deepest first, each level at
		// once (a child the registry holds already is written again: same bytes, same digest).
		for i := 0; i < len(pl.c.children); {
			j := i
			for j < len(pl.c.children) && pl.c.children[j].depth == pl.c.children[i].depth {
				j++
			}
			g, gctx := errgroup.WithContext(ctx)
			for _, ch := range pl.c.children[i:j] {
				g.Go(func() error {
					if err := pusher.Put(gctx, p.repo.Digest(ch.digest.String()), ch.t); err != nil {
						return p.wrap(err, "put manifest "+ch.digest.String())
					}
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				return nil, err
			}
			i = j
		}
		if err := pusher.Put(ctx, p.repo.Digest(a.Digest.String()), a.taggable()); err != nil {
			return nil, p.wrap(err, "put manifest "+a.Digest.String())
		}
	}
	// Tags last, all at once.
	tg, tctx := errgroup.WithContext(ctx)
	for _, t := range pl.tags {
		if old, ok := pl.moved[t]; ok {
			log.Info("moving tag", "tag", t, "from", old.String())
		}
		tg.Go(func() error {
			if err := pusher.Put(tctx, p.repo.Tag(t), a.taggable()); err != nil {
				if isImmutableRejection(err) {
					return fixable.Wrap(err, fmt.Sprintf("%s refused to move tag %s because its tags are immutable: push under a new tag", p.repo, t))
				}
				return p.wrap(err, "tag "+t)
			}
			return nil
		})
	}
	if err := tg.Wait(); err != nil {
		return nil, err
	}
	// Nothing written (every tag already there): the plan's look-ups were the read-back.
	if p.o.verify && !(pl.exists && len(pl.tags) == 0) {
		if err := p.verify(ctx, pl); err != nil {
			return nil, err
		}
	}
	res = p.result(pl)
	log.Info("pushed", "tags", len(pl.tags), "unchanged", len(pl.same), "uploaded", res.BytesUploaded, "present", res.BytesPresent, "seconds", res.Seconds)
	return res, nil
}

// verify reads every tag back (or the digest, when there are none) and compares digests. A 404 is
// resent like a 503 (within the same count and budget): registries whose reads lag their writes
// (ECR's among them) may not show a tag the moment it is written.
func (p *registryPublisher) verify(ctx context.Context, pl *plan) error {
	refs := []name.Reference{}
	for _, t := range pl.all {
		refs = append(refs, p.repo.Tag(t))
	}
	if len(refs) == 0 {
		refs = append(refs, p.repo.Digest(pl.a.Digest.String()))
	}
	g, gctx := errgroup.WithContext(retryNotFound(ctx))
	for _, r := range refs {
		g.Go(func() error {
			d, err := pl.puller.Head(gctx, r)
			if err != nil {
				return p.wrap(err, "verify "+r.String())
			}
			if d.Digest != pl.a.Digest {
				return fmt.Errorf("verify %s: registry answers %s, pushed %s (another writer moved it?)", r, d.Digest, pl.a.Digest)
			}
			return nil
		})
	}
	return g.Wait()
}

func (p *registryPublisher) result(pl *plan) *Result {
	host := p.repo.RegistryStr()
	ref := p.repo.String() + "@" + pl.a.Digest.String()
	size := pl.c.blobBytes() + pl.c.manifestB
	if raw, err := pl.a.RawManifest(); err == nil {
		size += int64(len(raw))
	}
	r := &Result{
		Destination: p.repo.String(), Registry: host, Repository: p.repo.RepositoryStr(),
		Digest: pl.a.Digest, Ref: ref, MediaType: pl.a.MediaType,
		Size: size, Layers: pl.c.layers, Tags: []TagRef{}, TagsUnchanged: pl.same,
		BytesUploaded: pl.meter.uploaded.Load(), BytesPresent: pl.meter.presentBytes.Load(),
		Seconds: time.Since(pl.started).Seconds(),
	}
	for _, t := range pl.all {
		r.Tags = append(r.Tags, TagRef{Tag: t, URI: p.repo.String() + ":" + t, Ref: ref})
	}
	return r
}

// wrap names the operation and the repository, and turns a registry refusal into a fixable error
// that says what to grant.
func (p *registryPublisher) wrap(err error, what string) error {
	err = requestError("destination", err)
	if isDenied(err) {
		return fixable.Wrap(err, fmt.Sprintf("%s: %s refused (%v): %s", what, p.repo, err, p.deniedHint))
	}
	return fmt.Errorf("%s in %s: %w", what, p.repo, err)
}

// reauth hands the retrier fresh credentials for a 401, when the keychain can fetch them (ECR).
func (p *registryPublisher) reauth(ctx context.Context, host, authorization string) (string, bool) {
	if r, ok := p.kc.(interface {
		reauth(ctx context.Context, host, authorization string) (string, bool)
	}); ok {
		return r.reauth(ctx, host, authorization)
	}
	return "", false
}

// MultiPublisher publishes to every destination in parallel. When all of them are this package's
// publishers, every destination is checked (tags resolved, immutability enforced) before any is
// written. The aggregate Result sums the byte counts and lists one Result per destination; on
// error it still holds the destinations that succeeded.
func MultiPublisher(ps ...Publisher) Publisher { return &multiPublisher{ps: ps} }

type multiPublisher struct{ ps []Publisher }

func (m *multiPublisher) Close() error {
	var errs []error
	for _, p := range m.ps {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

func (m *multiPublisher) Publish(ctx context.Context, a *Artifact, tags []string) (*Result, error) {
	if len(m.ps) == 0 {
		return nil, errors.New("push: MultiPublisher with no destinations")
	}
	start := time.Now()
	results := make([]*Result, len(m.ps))
	errs := make([]error, len(m.ps))
	planners := make([]planner, len(m.ps))
	all := true
	for i, p := range m.ps {
		pl, ok := p.(planner)
		planners[i], all = pl, all && ok
	}
	if all {
		plans := make([]*plan, len(m.ps))
		var wg sync.WaitGroup
		for i, p := range planners {
			wg.Go(func() { plans[i], errs[i] = p.plan(ctx, a, tags) })
		}
		wg.Wait()
		if err := joinDest(m.ps, errs); err != nil {
			return nil, err
		}
		for i, p := range planners {
			wg.Go(func() { results[i], errs[i] = p.push(ctx, plans[i]) })
		}
		wg.Wait()
	} else {
		var wg sync.WaitGroup
		for i, p := range m.ps {
			wg.Go(func() { results[i], errs[i] = p.Publish(ctx, a, tags) })
		}
		wg.Wait()
	}
	agg := &Result{Digest: a.Digest, MediaType: a.MediaType, Tags: []TagRef{}, Seconds: time.Since(start).Seconds()}
	for _, r := range results {
		agg.Destinations = append(agg.Destinations, r)
		if r == nil {
			continue
		}
		agg.Size, agg.Layers = r.Size, r.Layers
		agg.Tags = append(agg.Tags, r.Tags...)
		agg.BytesUploaded += r.BytesUploaded
		agg.BytesPresent += r.BytesPresent
	}
	return agg, joinDest(m.ps, errs)
}

func joinDest(ps []Publisher, errs []error) error {
	var out []error
	for i, err := range errs {
		if err != nil {
			out = append(out, fmt.Errorf("%s: %w", destName(ps[i]), err))
		}
	}
	return errors.Join(out...)
}

func destName(p Publisher) string {
	if s, ok := p.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("destination %T", p)
}

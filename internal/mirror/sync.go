package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/internal/replicate"
)

// ECRAPI is what Sync asks ECR before copying (an *ecr.Client).
type ECRAPI interface {
	DescribeRepositories(context.Context, *ecr.DescribeRepositoriesInput, ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
	replicate.ImageAPI // DescribeImages, UpdateImageStorageClass
}

// ReplicateFunc replicates one mirrored image. art is nil when nothing was copied (the image was in
// ECR already): replication then reads it back from the ci registry, never from the source.
type ReplicateFunc func(ctx context.Context, repo string, art *push.Artifact, res *push.Result) ([]replicate.Status, error)

// Options configure Sync.
type Options struct {
	Session *federate.Session
	// Keychain reads the sources (default: Docker config plus Google's application default credentials).
	Keychain  authn.Keychain
	Transport http.RoundTripper // for the sources
	// PushOptions go to every push.NewECR (jobs, progress, repository settings).
	PushOptions []push.Option
	// Pinned makes each source resolve to the digest this lock recorded for it (--locked).
	Pinned *Lock
	// Replicate runs after each image (nil: no replication).
	Replicate ReplicateFunc
	// Referrers, when set, pushes what travels with each copied image (the source's signatures, SBOMs,
	// attestations) after it, through the same publisher.
	Referrers func(ctx context.Context, src push.Source, art *push.Artifact, pub push.Publisher) error
	// ECR is asked whether an image is already there (default ecr.NewFromConfig(Session.Config)).
	ECR ECRAPI
	// Report is called after each image, in order.
	Report func(Result)
	// RestoreArchived restores an image ECR holds archived (not pullable) instead of failing the item.
	RestoreArchived bool
	Logger          *slog.Logger
}

// Result is what happened to one image.
type Result struct {
	Item          Item
	Entry         LockEntry // valid when Err is nil
	Copied        bool      // false: ECR had the digest under every tag, nothing was written
	BytesUploaded int64
	Replication   []replicate.Status
	Seconds       float64
	Err           error
}

// Sync mirrors every item, one after another, and returns one Result per item plus lock, updated:
// entries of items mirrored now are replaced, entries of items that failed are kept as they were, and
// entries of sources no longer listed are dropped. The error names every failed item; the others are
// mirrored regardless.
func Sync(ctx context.Context, items []Item, lock *Lock, o Options) ([]Result, *Lock, error) {
	if o.Session == nil {
		return nil, nil, errors.New("mirror: no AWS session")
	}
	if o.ECR == nil {
		o.ECR = ecr.NewFromConfig(o.Session.Config)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if lock == nil {
		lock = &Lock{}
	}
	out := &Lock{Version: LockVersion, Images: map[string]LockEntry{}}
	var results []Result
	var failed []string
	for _, it := range items {
		start := time.Now()
		r := syncOne(ctx, it, o)
		r.Seconds = time.Since(start).Seconds()
		if r.Err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", it.Source, r.Err))
			if prev, ok := lock.Images[it.Source]; ok {
				out.Images[it.Source] = prev
			}
		} else {
			out.Images[it.Source] = r.Entry
		}
		results = append(results, r)
		if o.Report != nil {
			o.Report(r)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(failed) > 0 {
		err := fmt.Errorf("%d of %d images failed: %s", len(failed), len(items), strings.Join(failed, "; "))
		for _, r := range results {
			if r.Err != nil && fixable.Is(r.Err) {
				err = fixable.Wrap(err, err.Error())
				break
			}
		}
		return results, out, err
	}
	return results, out, nil
}

func syncOne(ctx context.Context, it Item, o Options) Result {
	r := Result{Item: it}
	ref := it.Ref
	if o.Pinned != nil {
		e, ok := o.Pinned.Images[it.Source]
		if !ok || e.SourceDigest == "" {
			r.Err = fixable.New("not in the lock file: run without --locked once to record it")
			return r
		}
		d, err := name.NewDigest(it.Ref.Context().String() + "@" + e.SourceDigest)
		if err != nil {
			r.Err = fixable.New("the lock file's digest %q is not a digest: %v", e.SourceDigest, err)
			return r
		}
		ref = d
	}
	srcOpts := []push.SourceOption{push.WithSourceLogger(o.Logger)}
	if o.Keychain != nil {
		srcOpts = append(srcOpts, push.WithSourceKeychain(o.Keychain))
	}
	if o.Transport != nil {
		srcOpts = append(srcOpts, push.WithSourceTransport(o.Transport))
	}
	src, err := push.ParseSource(ref.String(), srcOpts...)
	if err != nil {
		r.Err = err
		return r
	}
	defer src.Close()
	art, err := src.Load(ctx)
	if err != nil {
		r.Err = err
		return r
	}
	sourceDigest := art.Digest
	if art, err = Filter(art, it.Platforms); err != nil {
		r.Err = err
		return r
	}
	uri, present, err := inECR(ctx, o.ECR, it.Repository, art.Digest.String(), it.Tags, o.RestoreArchived)
	if err != nil {
		r.Err = err
		return r
	}
	var res *push.Result
	copied := art
	if present {
		o.Logger.Info("already in ECR", "source", it.Source, "image", uri+"@"+art.Digest.String())
		res = &push.Result{Repository: it.Repository, Digest: art.Digest, MediaType: art.MediaType, Ref: uri + "@" + art.Digest.String(),
			TagsUnchanged: it.Tags}
		if host, _, ok := strings.Cut(uri, "/"); ok {
			res.Registry = host
		}
		for _, t := range it.Tags {
			res.Tags = append(res.Tags, push.TagRef{Tag: t, URI: uri + ":" + t, Ref: res.Ref})
		}
		copied = nil
	} else {
		pub, err := push.NewECR(ctx, o.Session.Config, it.Repository, o.PushOptions...)
		if err != nil {
			r.Err = err
			return r
		}
		res, err = pub.Publish(ctx, art, it.Tags)
		if err == nil && o.Referrers != nil {
			if err = o.Referrers(ctx, src, art, pub); err != nil {
				err = fmt.Errorf("%s is pushed, but its referrers are not: %w", res.Ref, err)
			}
		}
		pub.Close()
		if err != nil {
			r.Err = err
			return r
		}
		r.Copied, r.BytesUploaded = true, res.BytesUploaded
	}
	r.Entry = LockEntry{Source: it.Ref.Context().Name() + refSuffix(it.Ref), SourceDigest: sourceDigest.String(), URI: res.Ref,
		Digest: res.Digest.String(), Tags: it.Tags}
	for _, p := range it.Platforms {
		r.Entry.Platforms = append(r.Entry.Platforms, p.String())
	}
	if o.Replicate != nil {
		r.Replication, r.Err = o.Replicate(ctx, it.Repository, copied, res)
	}
	return r
}

// refSuffix is ":TAG" or "@DIGEST" of a reference.
func refSuffix(ref name.Reference) string {
	if d, ok := ref.(name.Digest); ok {
		return "@" + d.DigestStr()
	}
	return ":" + ref.Identifier()
}

// inECR reports whether repo holds digest, pullable, under every tag, and the repository's URI (when it
// exists). An archived digest is not pullable: it is an error (restore) unless restore is set, when it is
// restored first (a push would restore it too, unasked).
func inECR(ctx context.Context, api ECRAPI, repo, digest string, tags []string, restore bool) (string, bool, error) {
	rs, err := api.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
	var nf *ecrtypes.RepositoryNotFoundException
	if errors.As(err, &nf) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("ecr: DescribeRepositories %s: %w", repo, err)
	}
	if len(rs.Repositories) == 0 || rs.Repositories[0].RepositoryUri == nil {
		return "", false, nil
	}
	uri := *rs.Repositories[0].RepositoryUri
	if _, err := replicate.EnsurePullable(ctx, api, "ECR", "", repo, digest, restore, 0); err != nil {
		return "", false, err
	}
	is, err := api.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo),
		ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(digest)}}})
	var inf *ecrtypes.ImageNotFoundException
	if errors.As(err, &inf) {
		return uri, false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("ecr: DescribeImages %s@%s: %w", repo, digest, err)
	}
	if len(is.ImageDetails) == 0 {
		return uri, false, nil
	}
	have := map[string]bool{}
	for _, t := range is.ImageDetails[0].ImageTags {
		have[t] = true
	}
	for _, t := range tags {
		if !have[t] {
			return uri, false, nil
		}
	}
	return uri, true, nil
}

package push

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Plan is one Publish decided before anything is written: every tag resolved (a conflict with an
// immutable tag is refused here), every blob looked up, and the repository to create named. The
// pipeline plans every destination first and writes only when all plans hold.
type Plan struct {
	p  planner
	pl *plan

	Destination string              `json:"destination"`
	Create      *RepositoryCreation `json:"createRepository,omitempty"` // nil: the repository exists (or is not ECR)
	Digest      string              `json:"digest"`
	Exists      bool                `json:"manifestExists"` // the manifest is already there: nothing to upload
	Tags        []string            `json:"tags"`           // to write
	Moved       map[string]string   `json:"moved,omitempty"`
	Unchanged   []string            `json:"unchanged,omitempty"`
	Blobs       int                 `json:"blobs"`
	Upload      int                 `json:"blobsToUpload"`
	UploadBytes int64               `json:"bytesToUpload"`
}

// PlanPublish plans pub's Publish of a under tags, reading only. pub must come from NewECR or
// NewRegistry.
func PlanPublish(ctx context.Context, pub Publisher, a *Artifact, tags []string) (*Plan, error) {
	pp, ok := pub.(planner)
	if !ok {
		return nil, fmt.Errorf("push: %T cannot plan", pub)
	}
	pl, err := pp.plan(ctx, a, tags)
	if err != nil {
		return nil, err
	}
	out := &Plan{p: pp, pl: pl, Digest: a.Digest.String(), Exists: pl.exists, Tags: pl.tags, Unchanged: pl.same, Blobs: len(pl.c.blobs)}
	if s, ok := pub.(fmt.Stringer); ok {
		out.Destination = s.String()
	}
	if e, ok := pub.(*ecrPublisher); ok {
		out.Create = e.creation()
	}
	if len(pl.moved) > 0 {
		out.Moved = map[string]string{}
		for t, d := range pl.moved {
			out.Moved[t] = d.String()
		}
	}
	if !pl.exists {
		for i, b := range pl.c.blobs {
			if pl.missing[i] {
				out.Upload++
				out.UploadBytes += b.size
			}
		}
	}
	return out, nil
}

// CreateRepository creates the repository the plan found missing (a no-op otherwise), so a pipeline
// can make that first, cheap, harmless write before the others.
func (p *Plan) CreateRepository(ctx context.Context) error {
	if e, ok := p.p.(*ecrPublisher); ok {
		return e.ecr.create(ctx)
	}
	return nil
}

// Publish carries the plan out: creates the repository when it was missing, uploads, tags.
func (p *Plan) Publish(ctx context.Context) (*Result, error) { return p.p.push(ctx, p.pl) }

// WriteText describes the plan in a few lines, for --dry-run.
func (p *Plan) WriteText(w io.Writer) {
	if c := p.Create; c != nil {
		kms := "AES256"
		if c.KMSKey != "" {
			kms = "KMS " + c.KMSKey
		}
		fmt.Fprintf(w, "  create repository %s in %s: %s, scan on push %v, %s\n", c.Repository, c.Region, c.TagMutability, c.ScanOnPush, kms)
	}
	if p.Exists {
		fmt.Fprintf(w, "  %s@%s is already there: nothing to upload\n", p.Destination, p.Digest)
	} else {
		fmt.Fprintf(w, "  upload %d of %d blobs (%d bytes), then put %s@%s\n", p.Upload, p.Blobs, p.UploadBytes, p.Destination, p.Digest)
	}
	for _, t := range p.Tags {
		if old, ok := p.Moved[t]; ok {
			fmt.Fprintf(w, "  move tag %s from %s\n", t, old)
		} else {
			fmt.Fprintf(w, "  tag %s\n", t)
		}
	}
	if len(p.Unchanged) > 0 {
		fmt.Fprintf(w, "  unchanged (already at the digest): %s\n", strings.Join(p.Unchanged, ", "))
	}
}

// Command ggcrpush is the benchmark's go-containerregistry contender: the image of an OCI layout
// pushed with remote.MultiWrite — every destination in one call, 16 jobs, one shared HTTP
// transport — which is go-containerregistry configured as ecrpush configures its own uploads
// (crane push writes one destination at a time with the default 4 jobs). It is the baseline the
// hand-written upload path in internal/push must beat to be kept (bench/RESULTS.md, Analysis).
//
//	ggcrpush --layout DIR --dest 127.0.0.1:5000/repo:tag [--dest …] [--jobs 16]
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var dests listFlag
	dir := flag.String("layout", "", "OCI image layout holding exactly one image")
	jobs := flag.Int("jobs", 16, "blobs uploaded at once")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Var(&dests, "dest", "HOST:PORT/REPO:TAG (repeatable)")
	flag.Parse()
	if *dir == "" || len(dests) == 0 {
		fmt.Fprintln(os.Stderr, "usage: ggcrpush --layout DIR --dest HOST:PORT/REPO:TAG [--dest …] [--jobs N]")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *dir, dests, *jobs); err != nil {
		fmt.Fprintln(os.Stderr, "ggcrpush:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string, dests []string, jobs int) error {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return err
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	if len(im.Manifests) != 1 {
		return fmt.Errorf("%s: index.json lists %d manifests, want 1", dir, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return err
	}
	m := map[name.Reference]remote.Taggable{}
	for _, d := range dests {
		ref, err := name.NewTag(d)
		if err != nil {
			return err
		}
		m[ref] = img
	}
	// One transport for every destination and job, as ecrpush shares one.
	shared := remote.DefaultTransport.(*http.Transport).Clone()
	shared.MaxIdleConnsPerHost = 2 * jobs
	return remote.MultiWrite(m, remote.WithContext(ctx), remote.WithJobs(jobs), remote.WithTransport(shared))
}

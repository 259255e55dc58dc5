package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ecrpush/ecrpush/internal/platform"
	"github.com/ecrpush/ecrpush/sandbox"
)

// TestConcurrentPush runs 20 pushes into one repository at once, each its own tag and image, all
// images sharing the same base layers (as builds of one Dockerfile do): every push must succeed and
// every tag resolve to its own, whole image — shared blobs uploaded by one push while another
// checks or uploads them must not break either.
func TestConcurrentPush(t *testing.T) {
	const n = 20
	h := newHarness(t, nil)
	base, err := random.Image(256<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	imgs := map[string]v1.Image{}
	digests := map[string]string{}
	for i := range n {
		top, err := random.Layer(8<<10, "application/vnd.docker.image.rootfs.diff.tar.gzip")
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(base, top)
		if err != nil {
			t.Fatal(err)
		}
		tag := fmt.Sprintf("build-%02d", i)
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		imgs[tag], digests[tag] = img, d.String()
	}
	dir := layoutOf(t, imgs)

	results := make(map[string]result, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for tag := range imgs {
		wg.Go(func() {
			r := h.run("push "+tag, h.local(), "push", "--identity", "github", "--role-arn", ciRole, "--source", "oci-layout:"+dir+":"+tag,
				"--repository", "team/shared", "--tag", tag, "--output", "json")
			mu.Lock()
			results[tag] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(start)

	var uploaded, skipped int64
	ctx := context.Background()
	for tag, r := range results {
		if r.code != 0 {
			t.Errorf("push %s: exit %d: %s\n%s", tag, r.code, r.errLine, r.stderr)
			continue
		}
		var rep platform.Report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Errorf("push %s: report: %v\n%s", tag, err, r.stdout)
			continue
		}
		if rep.Digest != digests[tag] {
			t.Errorf("push %s reported %s, pushed %s", tag, rep.Digest, digests[tag])
		}
		uploaded += rep.BytesUploaded
		skipped += rep.BytesSkipped
	}
	for tag, d := range digests {
		if err := h.verify(ctx, sandbox.CIAccount, ciRegion, "team/shared", tag, d); err != nil {
			t.Error(err)
		}
	}
	tags, err := h.tagsWhole(ctx, sandbox.CIAccount, ciRegion, "team/shared")
	if err != nil || len(tags) != n {
		t.Errorf("repository holds %d tags (%v), want %d: %v", len(tags), tags, n, err)
	}
	t.Logf("%d concurrent pushes in %s: %d bytes uploaded, %d bytes already there", n, took.Round(time.Millisecond), uploaded, skipped)
}

package push

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// The wire protocol of one push of an index: per missing blob one POST and one monolithic PUT
// carrying the whole blob and its digest (no PATCH), every blob committed before the first
// manifest, every child before the index, and tags only after the index is in by digest.
func TestWriteOrderAndMonolithicUploads(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	a, _ := load(t, "oci-layout:"+f.layout+":multi")
	type req struct {
		method, path string
		length       int64
	}
	var mu sync.Mutex
	var log []req
	dst := testRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				mu.Lock()
				log = append(log, req{r.Method, r.URL.Path, r.ContentLength})
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	})
	c, err := a.contents()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newPublisher(t, dst+"/app").Publish(context.Background(), a, []string{"x", "y"}); err != nil {
		t.Fatal(err)
	}
	sizes := map[int64]int{}
	for _, b := range c.blobs {
		sizes[b.size]++
	}
	var puts, lastBlob, firstManifest, indexAt int
	firstManifest, indexAt = -1, -1
	children := map[string]bool{}
	im, _ := a.Index.IndexManifest()
	for _, d := range im.Manifests {
		children[d.Digest.String()] = true
	}
	for i, r := range log {
		switch {
		case r.method == http.MethodPatch:
			t.Errorf("PATCH %s: uploads are POST then one PUT", r.path)
		case r.method == http.MethodPut && strings.Contains(r.path, "/blobs/uploads/"):
			puts++
			lastBlob = i
			if sizes[r.length] == 0 {
				t.Errorf("blob PUT of %d bytes matches no blob size (chunked?)", r.length)
			}
			sizes[r.length]--
		case strings.Contains(r.path, "/blobs/"):
			lastBlob = i
		case r.method == http.MethodPut && strings.Contains(r.path, "/manifests/"):
			ref := r.path[strings.LastIndex(r.path, "/")+1:]
			if firstManifest < 0 {
				firstManifest = i
			}
			switch {
			case children[ref]:
				if indexAt >= 0 {
					t.Errorf("child %s after the index", ref)
				}
			case ref == a.Digest.String():
				indexAt = i
			default: // a tag
				if indexAt < 0 {
					t.Errorf("tag %s before the index", ref)
				}
			}
		}
	}
	if puts != len(c.blobs) {
		t.Errorf("%d blob PUTs for %d blobs", puts, len(c.blobs))
	}
	if firstManifest < lastBlob {
		t.Errorf("manifest PUT (#%d) before the last blob write (#%d)", firstManifest, lastBlob)
	}
	if indexAt < 0 {
		t.Error("index never PUT by digest")
	}
}

package replicate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/ecrpush/ecrpush/internal/push"
)

// spool holds every distributable layer of an artifact on disk, read from the source once, so that
// several destinations uploading in parallel never go back to the source. The config blob stays in
// memory (RawConfigFile), where every v1.Image keeps it already.
type spool struct {
	dir   string
	mu    sync.Mutex
	files map[v1.Hash]string
}

// spoolArtifact downloads a's layers into a fresh directory under parent (jobs at once) and returns an
// artifact with the same digest whose layers read from there. cleanup removes the directory.
func spoolArtifact(ctx context.Context, a *push.Artifact, parent string, jobs int) (*push.Artifact, func(), error) {
	dir, err := os.MkdirTemp(parent, "ecrpush-replicate-")
	if err != nil {
		return nil, nil, fmt.Errorf("spool %s: %w", a.Name, err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	s := &spool{dir: dir, files: map[v1.Hash]string{}}
	out := &push.Artifact{Name: a.Name, Digest: a.Digest, MediaType: a.MediaType}
	if a.Index != nil {
		out.Index = newSpooledIndex(a.Index, s)
	} else {
		out.Image = &spooledImage{Image: a.Image, s: s}
	}
	// Walk the wrapper, whose children are memoized: a remote child fetched again would fetch its config again.
	layers := map[v1.Hash]v1.Layer{}
	if err := collect(out.Image, out.Index, layers, 0); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("%s: %w", a.Name, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(jobs, 1))
	for h, l := range layers {
		g.Go(func() error { return s.fetch(gctx, h, l) })
	}
	if err := g.Wait(); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("read %s: %w", a.Name, err)
	}
	return out, cleanup, nil
}

// collect lists the distributable layers under an image or index.
func collect(img v1.Image, idx v1.ImageIndex, into map[v1.Hash]v1.Layer, depth int) error {
	if depth > 4 {
		return errors.New("index nested more than 4 deep")
	}
	if img != nil {
		ls, err := img.Layers()
		if err != nil {
			return fmt.Errorf("layers: %w", err)
		}
		for _, l := range ls {
			mt, err := l.MediaType()
			if err != nil {
				return err
			}
			if !mt.IsDistributable() {
				continue
			}
			h, err := l.Digest()
			if err != nil {
				return err
			}
			into[h] = l
		}
		return nil
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return fmt.Errorf("child index %s: %w", d.Digest, err)
			}
			if err := collect(nil, child, into, depth+1); err != nil {
				return err
			}
		case d.MediaType.IsImage():
			child, err := idx.Image(d.Digest)
			if err != nil {
				return fmt.Errorf("child image %s: %w", d.Digest, err)
			}
			if err := collect(child, nil, into, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// fetch copies one layer to disk, checking its digest.
func (s *spool) fetch(ctx context.Context, h v1.Hash, l v1.Layer) error {
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", h, err)
	}
	defer rc.Close()
	path := filepath.Join(s.dir, h.Hex)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	sum := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, sum), ctxReader{ctx, rc})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("layer %s: %w", h, err)
	}
	if h.Algorithm == "sha256" && hex.EncodeToString(sum.Sum(nil)) != h.Hex {
		return fmt.Errorf("layer %s: the source sent bytes with digest sha256:%x", h, sum.Sum(nil))
	}
	s.mu.Lock()
	s.files[h] = path
	s.mu.Unlock()
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// layer returns the spooled form of l (l itself when it was not spooled, e.g. a foreign layer).
func (s *spool) layer(l v1.Layer) (v1.Layer, error) {
	h, err := l.Digest()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	path, ok := s.files[h]
	s.mu.Unlock()
	if !ok {
		return l, nil
	}
	return partial.CompressedToLayer(&fileLayer{inner: l, digest: h, path: path})
}

// fileLayer is a layer whose compressed bytes are a spooled file; the rest comes from the original.
type fileLayer struct {
	inner  v1.Layer
	digest v1.Hash
	path   string
}

func (f *fileLayer) Digest() (v1.Hash, error)            { return f.digest, nil }
func (f *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(f.path) }
func (f *fileLayer) Size() (int64, error)                { return f.inner.Size() }
func (f *fileLayer) MediaType() (types.MediaType, error) { return f.inner.MediaType() }
func (f *fileLayer) DiffID() (v1.Hash, error)            { return f.inner.DiffID() }

type spooledImage struct {
	v1.Image
	s *spool
}

func (i *spooledImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for n, l := range ls {
		if out[n], err = i.s.layer(l); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (i *spooledImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return i.s.layer(l)
}

func (i *spooledImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDiffID(h)
	if err != nil {
		return nil, err
	}
	return i.s.layer(l)
}

// spooledIndex memoizes its children so each is read from the source once (with its config).
type spooledIndex struct {
	inner   v1.ImageIndex
	s       *spool
	mu      sync.Mutex
	images  map[v1.Hash]v1.Image
	indexes map[v1.Hash]v1.ImageIndex
}

func newSpooledIndex(inner v1.ImageIndex, s *spool) *spooledIndex {
	return &spooledIndex{inner: inner, s: s, images: map[v1.Hash]v1.Image{}, indexes: map[v1.Hash]v1.ImageIndex{}}
}

func (x *spooledIndex) MediaType() (types.MediaType, error)       { return x.inner.MediaType() }
func (x *spooledIndex) Digest() (v1.Hash, error)                  { return x.inner.Digest() }
func (x *spooledIndex) Size() (int64, error)                      { return x.inner.Size() }
func (x *spooledIndex) IndexManifest() (*v1.IndexManifest, error) { return x.inner.IndexManifest() }
func (x *spooledIndex) RawManifest() ([]byte, error)              { return x.inner.RawManifest() }

func (x *spooledIndex) Image(h v1.Hash) (v1.Image, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if img, ok := x.images[h]; ok {
		return img, nil
	}
	img, err := x.inner.Image(h)
	if err != nil {
		return nil, err
	}
	out := &spooledImage{Image: img, s: x.s}
	x.images[h] = out
	return out, nil
}

func (x *spooledIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if idx, ok := x.indexes[h]; ok {
		return idx, nil
	}
	idx, err := x.inner.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	out := newSpooledIndex(idx, x.s)
	x.indexes[h] = out
	return out, nil
}

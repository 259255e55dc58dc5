package push

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// archiveSource is docker-archive:FILE[:TAG], the `docker save` format.
type archiveSource struct {
	r     pathRef
	o     *sourceOptions
	cache cached
	spooled
}

func newArchiveSource(s string, o *sourceOptions) (Source, error) {
	r, err := parsePathRef("docker-archive:", s)
	if err != nil {
		return nil, err
	}
	if r.digest != (v1.Hash{}) {
		return nil, fixable.New("docker-archive:%s: a docker archive is picked by :TAG, not @DIGEST", s)
	}
	if err := mustExist("docker-archive:", r.path, false); err != nil {
		return nil, err
	}
	return &archiveSource{r: r, o: o}, nil
}

func (s *archiveSource) String() string { return "docker-archive:" + s.r.String() }

func (s *archiveSource) Load(ctx context.Context) (*Artifact, error) {
	return s.cache.get(func() (*Artifact, error) {
		dir, err := s.spool(s.o, "layers")
		if err != nil {
			return nil, err
		}
		return loadDockerArchive(ctx, s.String(), s.r.path, s.r.tag, dir, s.o)
	})
}

// tarEntry locates one regular file inside a tar.
type tarEntry struct {
	off, size int64
	link      string // for symlinks and hard links: the target, resolved later
}

// indexTar lists a tar's files with their data offsets in one pass. archive/tar reads headers
// block by block and seeks over data, so the file position after Next is the data's offset.
func indexTar(f *os.File) (map[string]tarEntry, error) {
	entries := map[string]tarEntry{}
	tr := tar.NewReader(f)
	for n := 0; ; n++ {
		if n > 1_000_000 {
			return nil, errors.New("more than a million entries")
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			return nil, err
		}
		p := path.Clean(h.Name)
		switch h.Typeflag {
		case tar.TypeReg:
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, err
			}
			entries[p] = tarEntry{off: off, size: h.Size}
		case tar.TypeSymlink:
			entries[p] = tarEntry{link: path.Join(path.Dir(p), h.Linkname)}
		case tar.TypeLink:
			entries[p] = tarEntry{link: path.Clean(h.Linkname)}
		}
	}
}

func resolveEntry(entries map[string]tarEntry, p string) (tarEntry, bool) {
	p = path.Clean(p)
	for hops := 0; hops < 8; hops++ {
		e, ok := entries[p]
		if !ok {
			return tarEntry{}, false
		}
		if e.link == "" {
			return e, true
		}
		p = e.link
	}
	return tarEntry{}, false
}

// sectionOpener opens one tar entry as its own file handle, so parallel readers never share an offset.
func sectionOpener(file string, e tarEntry) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{io.NewSectionReader(f, e.off, e.size), f}, nil
	}
}

// loadDockerArchive reads a docker-save tar. An archive with an OCI index.json (Docker 25+) is read
// through it and keeps its digest and attestations (source_archive_index.go). Otherwise, or when its
// layers are stored uncompressed, manifest.json is read: uncompressed layers are gzipped once, in
// parallel, into dir; already compressed ones are used where they lie. The result is then a new Docker
// schema 2 image whose config is the archive's, byte for byte, and whose digest is ecrpush's
// (Artifact.DigestComputed says why).
func loadDockerArchive(ctx context.Context, display, file, tag, dir string, o *sourceOptions) (*Artifact, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("cannot open %s (%v): check the path and permissions", display, err))
	}
	entries, err := indexTar(f)
	f.Close()
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("%s is not a readable tar (%v): it must be the output of docker save", display, err))
	}
	computed := "it has no OCI index.json (docker save before Docker 25): ecrpush wrote the manifest"
	if ie, ok := resolveEntry(entries, "index.json"); ok {
		a, why, err := loadArchiveIndex(display, file, entries, ie, tag, o)
		if err != nil {
			return nil, err
		}
		if a != nil {
			o.log.Debug("docker archive read through index.json", "source", display, "digest", a.Digest.String())
			return o.pick(a)
		}
		computed = why
	}
	me, ok := resolveEntry(entries, "manifest.json")
	if !ok {
		return nil, fixable.New("%s has no manifest.json: it must be the output of docker save (for an OCI layout tar use oci-archive:)", display)
	}
	var m tarball.Manifest
	if err := readJSON(file, me, &m); err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("%s: manifest.json is not valid (%v)", display, err))
	}
	desc, err := pickArchiveImage(display, m, tag)
	if err != nil {
		return nil, err
	}
	ce, ok := resolveEntry(entries, desc.Config)
	if !ok {
		return nil, fixable.New("%s: config %s named in manifest.json is missing: the archive is incomplete", display, desc.Config)
	}
	rawConfig, err := readEntry(file, ce, 16<<20)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", display, err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("%s: image config is not valid (%v)", display, err))
	}
	if len(cf.RootFS.DiffIDs) != len(desc.Layers) {
		return nil, fixable.New("%s: manifest.json lists %d layers but the config %d: the archive is inconsistent", display, len(desc.Layers), len(cf.RootFS.DiffIDs))
	}

	located := make([]tarEntry, len(desc.Layers))
	for i, lp := range desc.Layers {
		e, ok := resolveEntry(entries, lp)
		if !ok {
			return nil, fixable.New("%s: layer %s named in manifest.json is missing: the archive is incomplete", display, lp)
		}
		located[i] = e
	}
	budget := newGzipBudget(o.level)
	layers := make([]*fileLayer, len(desc.Layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.jobs)
	for i, lp := range desc.Layers {
		e := located[i]
		g.Go(func() error {
			l, err := spoolLayer(gctx, file, e, cf.RootFS.DiffIDs[i], filepath.Join(dir, fmt.Sprintf("layer-%03d.tar.gz", i)), budget)
			if err != nil {
				return fmt.Errorf("%s: layer %d (%s): %w", display, i+1, lp, err)
			}
			layers[i] = l
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	o.log.Debug("layers ready", "source", display, "layers", len(layers))
	img, err := newSpooledImage(rawConfig, layers)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", display, err)
	}
	a, err := ImageArtifact(display, img)
	if err != nil {
		return nil, err
	}
	a.DigestComputed = computed
	o.log.Info("digest computed by ecrpush, not the archive's own: "+computed, "source", display, "digest", a.Digest.String())
	return o.pick(a)
}

func pickArchiveImage(display string, m tarball.Manifest, tag string) (*tarball.Descriptor, error) {
	var all []string
	for _, d := range m {
		if len(d.RepoTags) == 0 {
			all = append(all, "(untagged "+d.Config+")")
		}
		all = append(all, d.RepoTags...)
	}
	sort.Strings(all)
	if len(m) == 0 {
		return nil, fixable.New("%s holds no images", display)
	}
	if tag == "" {
		if len(m) != 1 {
			return nil, fixable.New("%s holds %d images: add :TAG to pick one of %s", display, len(m), strings.Join(all, ", "))
		}
		return &m[0], nil
	}
	want, err := name.NewTag(tag)
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("%s: %q is not a valid tag (%v)", display, tag, err))
	}
	for i, d := range m {
		for _, rt := range d.RepoTags {
			have, err := name.NewTag(rt)
			if err == nil && (have.Name() == want.Name() || rt == tag || have.TagStr() == tag) {
				return &m[i], nil
			}
		}
	}
	return nil, fixable.New("%s has no image tagged %s; it holds: %s", display, tag, strings.Join(all, ", "))
}

func readEntry(file string, e tarEntry, limit int64) ([]byte, error) {
	if e.size > limit {
		return nil, fmt.Errorf("%d bytes is more than the %d allowed", e.size, limit)
	}
	rc, err := sectionOpener(file, e)()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func readJSON(file string, e tarEntry, v any) error {
	b, err := readEntry(file, e, 16<<20)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// spoolLayer makes one archive layer pushable: gzip-compressed layers are hashed where they lie,
// uncompressed ones are compressed into out while both digests are computed in the same pass.
func spoolLayer(ctx context.Context, file string, e tarEntry, diffID v1.Hash, out string, budget gzipBudget) (*fileLayer, error) {
	open := sectionOpener(file, e)
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 1<<20)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, zstdMagic):
		return nil, fixable.New("zstd-compressed layers in a docker archive are not supported: export with gzip or use an OCI layout")
	case bytes.HasPrefix(head, gzipMagic):
		h := sha256.New()
		n, err := io.Copy(h, &ctxReader{ctx: ctx, r: br})
		if err != nil {
			return nil, err
		}
		return &fileLayer{open: open, digest: sum(h), size: n, mt: types.DockerLayer}, nil
	}

	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("cannot write to the spool directory (%v): give it a writable place with room for the compressed image", err))
	}
	defer f.Close()
	hc, hu := sha256.New(), sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, hc), 1<<20)
	cw := &countWriter{w: bw}
	// At the source's level (DefaultCompressionLevel: docker's, within 2 % of skopeo's size). Blocks
	// of a layer compress in parallel (one large layer is the common case); the output is
	// deterministic, so the same archive always yields the same digests and a re-push finds every
	// layer already present.
	if _, err := parallelGzip(ctx, cw, hu, br, budget); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if got := sum(hu); got != diffID {
		return nil, fixable.New("layer content hashes to %s but the image config says %s: the archive is corrupt", got, diffID)
	}
	return &fileLayer{
		open:   func() (io.ReadCloser, error) { return os.Open(out) },
		digest: sum(hc), size: cw.n, mt: types.DockerLayer,
	}, nil
}

func sum(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// fileLayer is a compressed layer on disk with known digest and size (partial.CompressedLayer).
type fileLayer struct {
	open   func() (io.ReadCloser, error)
	digest v1.Hash
	size   int64
	mt     types.MediaType
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return l.open() }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mt, nil }

// spooledImage is a Docker schema 2 image over fileLayers (partial.CompressedImageCore).
type spooledImage struct {
	rawConfig   []byte
	rawManifest []byte
	layers      map[v1.Hash]*fileLayer
}

func newSpooledImage(rawConfig []byte, layers []*fileLayer) (v1.Image, error) {
	ch, csize, err := v1.SHA256(bytes.NewReader(rawConfig))
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: csize, Digest: ch},
		Layers:        []v1.Descriptor{},
	}
	s := &spooledImage{rawConfig: rawConfig, layers: map[v1.Hash]*fileLayer{}}
	for _, l := range layers {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: l.mt, Size: l.size, Digest: l.digest})
		s.layers[l.digest] = l
	}
	if s.rawManifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(s)
}

func (s *spooledImage) RawConfigFile() ([]byte, error)      { return s.rawConfig, nil }
func (s *spooledImage) MediaType() (types.MediaType, error) { return types.DockerManifestSchema2, nil }
func (s *spooledImage) RawManifest() ([]byte, error)        { return s.rawManifest, nil }

func (s *spooledImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := s.layers[h]; ok {
		return l, nil
	}
	ch, size, err := v1.SHA256(bytes.NewReader(s.rawConfig))
	if err == nil && ch == h {
		raw := s.rawConfig
		return &fileLayer{
			open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
			digest: ch, size: size, mt: types.DockerConfigJSON,
		}, nil
	}
	return nil, fmt.Errorf("blob %s is not part of this image", h)
}

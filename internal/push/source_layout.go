package push

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Annotations naming an image in an OCI layout's index.json.
const (
	annotationRefName        = "org.opencontainers.image.ref.name"
	annotationContainerdName = "io.containerd.image.name"
)

// pathRef is FILE-or-DIR plus an optional :TAG or @DIGEST.
type pathRef struct {
	path   string
	tag    string
	digest v1.Hash
}

func (r pathRef) String() string {
	switch {
	case r.digest != (v1.Hash{}):
		return r.path + "@" + r.digest.String()
	case r.tag != "":
		return r.path + ":" + r.tag
	}
	return r.path
}

// parsePathRef splits PATH[:TAG|@DIGEST]. A path that exists as given wins, so a file whose name
// holds a colon still works.
func parsePathRef(transport, s string) (pathRef, error) {
	if s == "" {
		return pathRef{}, fixable.New("%s needs a path, e.g. %s./image", transport, transport)
	}
	if _, err := os.Stat(s); err == nil {
		return pathRef{path: s}, nil
	}
	// The first prefix before a ':' or '@' that exists is the path; the rest names the image
	// (so docker-archive:save.tar:example.com/app:v1 works).
	for i, c := range s {
		if c != ':' && c != '@' || i == 0 {
			continue
		}
		if _, err := os.Stat(s[:i]); err != nil {
			continue
		}
		rest := s[i+1:]
		if c == '@' {
			h, err := v1.NewHash(rest)
			if err != nil {
				return pathRef{}, fixable.Wrap(err, fmt.Sprintf("%s%s: %q is not a sha256 digest", transport, s, rest))
			}
			return pathRef{path: s[:i], digest: h}, nil
		}
		return pathRef{path: s[:i], tag: rest}, nil
	}
	if i := strings.LastIndex(s, "@"); i > 0 && strings.HasPrefix(s[i+1:], "sha256:") {
		h, err := v1.NewHash(s[i+1:])
		if err != nil {
			return pathRef{}, fixable.Wrap(err, fmt.Sprintf("%s%s: %q is not a sha256 digest", transport, s, s[i+1:]))
		}
		return pathRef{path: s[:i], digest: h}, nil
	}
	if i := strings.LastIndex(s, ":"); i > 0 && !strings.ContainsAny(s[i+1:], `/\`) {
		return pathRef{path: s[:i], tag: s[i+1:]}, nil
	}
	return pathRef{path: s}, nil
}

func mustExist(transport, path string, dir bool) error {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fixable.Wrap(err, fmt.Sprintf("%s%s does not exist: check the path", transport, path))
	case err != nil:
		return fixable.Wrap(err, fmt.Sprintf("%s%s is not readable (%v): check the path and its permissions", transport, path, err))
	case dir && !st.IsDir():
		return fixable.New("%s%s is a file, not an OCI layout directory: use oci-archive: for a tar", transport, path)
	case !dir && st.IsDir():
		return fixable.New("%s%s is a directory, not a tar file: use oci-layout: for a layout directory", transport, path)
	}
	return nil
}

// loadLayout picks one image or index out of the layout at dir.
func loadLayout(display, dir string, r pathRef, o *sourceOptions) (*Artifact, error) {
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("%s is not an OCI image layout (no index.json): point at the directory holding oci-layout and index.json", display))
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", display, err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("%s: index.json: %w", display, err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("%s: index.json is not valid JSON (%v)", display, err))
	}
	var match []v1.Descriptor
	for _, d := range im.Manifests {
		switch {
		case r.digest != (v1.Hash{}):
			if d.Digest == r.digest {
				match = append(match, d)
			}
		case r.tag != "":
			if refNameMatches(d, r.tag) {
				match = append(match, d)
			}
		default:
			if !isReferrerEntry(top, d) { // signatures, SBOMs beside the image (referrers.go)
				match = append(match, d)
			}
		}
	}
	if len(match) != 1 {
		var list []string
		for _, d := range im.Manifests {
			list = append(list, describeLayoutEntry(d))
		}
		sort.Strings(list)
		what := "an image"
		switch {
		case r.digest != (v1.Hash{}):
			what = "digest " + r.digest.String()
		case r.tag != "":
			what = "tag " + r.tag
		}
		if len(im.Manifests) == 0 {
			return nil, fixable.New("%s holds no images", display)
		}
		if len(match) == 0 {
			return nil, fixable.New("%s has no %s; it holds: %s", display, what, strings.Join(list, ", "))
		}
		return nil, fixable.New("%s holds %d images matching %s: add :TAG or @DIGEST to pick one of %s", display, len(match), what, strings.Join(list, ", "))
	}
	d := match[0]
	var a *Artifact
	switch {
	case d.MediaType.IsIndex():
		idx, err := top.ImageIndex(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", display, err)
		}
		a, err = IndexArtifact(display, idx)
		if err != nil {
			return nil, err
		}
	case d.MediaType.IsImage():
		img, err := top.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", display, err)
		}
		a, err = ImageArtifact(display, img)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fixable.New("%s: %s is a %q, not an image or an index", display, d.Digest, d.MediaType)
	}
	if a.Digest != d.Digest {
		return nil, fmt.Errorf("%s: manifest blob %s hashes to %s: the layout is corrupt", display, d.Digest, a.Digest)
	}
	return o.pick(a)
}

func refNameMatches(d v1.Descriptor, tag string) bool {
	for _, k := range []string{annotationRefName, annotationContainerdName} {
		v := d.Annotations[k]
		if v != "" && (v == tag || strings.HasSuffix(v, ":"+tag)) {
			return true
		}
	}
	return false
}

func describeLayoutEntry(d v1.Descriptor) string {
	n := d.Annotations[annotationRefName]
	if n == "" {
		n = d.Annotations[annotationContainerdName]
	}
	if n == "" {
		return "@" + d.Digest.String()
	}
	return n + " (@" + d.Digest.String() + ")"
}

// cached runs a load once and keeps its result (and error) for later calls.
type cached struct {
	mu   sync.Mutex
	done bool
	a    *Artifact
	err  error
}

func (c *cached) get(load func() (*Artifact, error)) (*Artifact, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done {
		c.a, c.err = load()
		c.done = true
	}
	return c.a, c.err
}

// layoutSource is oci-layout:DIR[:TAG|@DIGEST].
type layoutSource struct {
	r     pathRef
	o     *sourceOptions
	cache cached
}

func newLayoutSource(s string, o *sourceOptions) (Source, error) {
	r, err := parsePathRef("oci-layout:", s)
	if err != nil {
		return nil, err
	}
	if err := mustExist("oci-layout:", r.path, true); err != nil {
		return nil, err
	}
	return &layoutSource{r: r, o: o}, nil
}

func (s *layoutSource) String() string { return "oci-layout:" + s.r.String() }
func (s *layoutSource) Close() error   { return nil }

func (s *layoutSource) Load(context.Context) (*Artifact, error) {
	return s.cache.get(func() (*Artifact, error) { return loadLayout(s.String(), s.r.path, s.r, s.o) })
}

// ociArchiveSource is oci-archive:FILE: the tar is extracted to the spool once, then read as a layout.
type ociArchiveSource struct {
	r     pathRef
	o     *sourceOptions
	cache cached
	spooled
}

func newOCIArchiveSource(s string, o *sourceOptions) (Source, error) {
	r, err := parsePathRef("oci-archive:", s)
	if err != nil {
		return nil, err
	}
	if err := mustExist("oci-archive:", r.path, false); err != nil {
		return nil, err
	}
	return &ociArchiveSource{r: r, o: o}, nil
}

func (s *ociArchiveSource) String() string { return "oci-archive:" + s.r.String() }

func (s *ociArchiveSource) Load(ctx context.Context) (*Artifact, error) {
	return s.cache.get(func() (*Artifact, error) {
		dir, err := s.spool(s.o, "oci-archive")
		if err != nil {
			return nil, err
		}
		if err := extractTar(ctx, s.r.path, dir); err != nil {
			return nil, fmt.Errorf("%s: %w", s, err)
		}
		return loadLayout(s.String(), dir, s.r, s.o)
	})
}

// extractTar unpacks regular files and directories of a tar into dir, refusing any entry that would
// land outside it. Links are refused too: an OCI layout has none.
func extractTar(ctx context.Context, file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return fixable.Wrap(err, fmt.Sprintf("cannot open %s (%v): check the path and permissions", file, err))
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n > 1_000_000 {
			return errors.New("more than a million entries: not an OCI layout")
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return fixable.New("%s is empty or not a tar file", file)
			}
			return nil
		}
		if err != nil {
			return fixable.Wrap(err, fmt.Sprintf("%s is not a readable tar (%v): it must be a tar of an OCI image layout", file, err))
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if name == "." {
			continue
		}
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return fmt.Errorf("tar entry %q escapes the archive", h.Name)
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := writeFile(target, tr); err != nil {
				return err
			}
		default:
			// Links, devices, PAX globals: nothing an OCI layout needs.
		}
	}
}

func writeFile(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

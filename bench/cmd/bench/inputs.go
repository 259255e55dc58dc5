package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// genVersion changes whenever the generated inputs would; a work directory made by another version
// is regenerated.
const genVersion = 3

// spec is the size of every input; --quick shrinks it.
type spec struct {
	Version      int    `json:"version"`
	Layers       int    `json:"layers"`       // OCI layout: incompressible layers
	LayerBytes   int64  `json:"layerBytes"`   // payload of each
	SmallLayers  int    `json:"smallLayers"`  // the many-small-layers image
	SmallBytes   int64  `json:"smallBytes"`   // payload of each
	GoLayerCap   int64  `json:"goLayerCap"`   // docker archive: at most this many file bytes per layer (0: all)
	GoRoot       string `json:"goRoot"`       // where the archive's files come from
	GoVersion    string `json:"goVersion"`    // …and which toolchain that is
	BigArchive   bool   `json:"bigArchive"`   // also a docker archive of the layout's layers (P4)
	ArchiveLayer string `json:"archiveLayer"` // how the Go tree is split into layers
}

func specFor(quick bool) (spec, error) {
	// The toolchain that runs the benchmark supplies the compressible files.
	out, err := exec.Command("go", "env", "GOROOT", "GOVERSION").Output()
	f := strings.Fields(string(out))
	if err != nil || len(f) != 2 {
		return spec{}, fmt.Errorf("go env GOROOT GOVERSION: %v", err)
	}
	s := spec{Version: genVersion, Layers: 16, LayerBytes: 64 << 20, SmallLayers: 60, SmallBytes: 256 << 10,
		GoRoot: f[0], GoVersion: f[1], BigArchive: true, ArchiveLayer: "base,toolchain,src,app"}
	if quick {
		s.Layers, s.LayerBytes, s.GoLayerCap, s.SmallLayers = 8, 32<<20, 24<<20, 20
	}
	return s, nil
}

// inputs are the generated images, reused across invocations while the spec is unchanged.
type inputs struct {
	Layout       string `json:"layout"`       // OCI layout, tag "bench": Layers × LayerBytes, incompressible
	LayoutBytes  int64  `json:"layoutBytes"`  // sum of its compressed layers
	Archive      string `json:"archive"`      // docker-save archive of the Go toolchain, uncompressed layers
	ArchiveBytes int64  `json:"archiveBytes"` // sum of its layer tars
	ArchiveFiles int    `json:"archiveFiles"`
	BigArchive   string `json:"bigArchive"` // docker-save archive of the layout's layers, uncompressed
	BigBytes     int64  `json:"bigBytes"`
	Small        string `json:"small"` // OCI layout, tag "bench": SmallLayers × SmallBytes
	SmallBytes   int64  `json:"smallBytes"`
	Spec         spec   `json:"spec"`
}

// makeInputs returns the inputs in dir, generating them unless dir/inputs.json says they match s.
func makeInputs(dir string, s spec, logf func(string, ...any)) (*inputs, error) {
	stamp := filepath.Join(dir, "inputs.json")
	if b, err := os.ReadFile(stamp); err == nil {
		var have inputs
		if json.Unmarshal(b, &have) == nil && have.Spec == s {
			logf("inputs: reusing %s", dir)
			return &have, nil
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "raw"), 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	in := &inputs{Spec: s, Layout: filepath.Join(dir, "layout"), Archive: filepath.Join(dir, "go.tar"),
		Small: filepath.Join(dir, "small")}

	// The incompressible image: one file of random bytes per layer (seeded, so every run pushes the
	// same digests), gzip at level 0 as a build of incompressible content would store it.
	var big []rawLayer
	for i := range s.Layers {
		l, err := writeRawLayer(filepath.Join(dir, "raw", fmt.Sprintf("big-%02d.tar", i)), randomFill(uint64(i), s.LayerBytes))
		if err != nil {
			return nil, err
		}
		big = append(big, l)
	}
	var err error
	if in.LayoutBytes, err = writeOCILayout(in.Layout, big, gzip.NoCompression, "incompressible"); err != nil {
		return nil, err
	}
	if s.BigArchive {
		in.BigArchive = filepath.Join(dir, "big.tar")
		if err := writeDockerArchive(in.BigArchive, big, "incompressible"); err != nil {
			return nil, err
		}
		for _, l := range big {
			in.BigBytes += l.size
		}
	}
	logf("inputs: layout %d×%d MiB in %s", s.Layers, s.LayerBytes>>20, time.Since(start).Round(time.Millisecond))

	var small []rawLayer
	for i := range s.SmallLayers {
		l, err := writeRawLayer(filepath.Join(dir, "raw", fmt.Sprintf("small-%02d.tar", i)), randomFill(uint64(1000+i), s.SmallBytes))
		if err != nil {
			return nil, err
		}
		small = append(small, l)
	}
	if in.SmallBytes, err = writeOCILayout(in.Small, small, gzip.NoCompression, "small"); err != nil {
		return nil, err
	}

	// The compressible image: the Go toolchain under /usr/local/go, split the way a real image is
	// (a base, the toolchain binaries, the sources, a small application layer).
	top, err := topFiles(s.GoRoot)
	if err != nil {
		return nil, err
	}
	groups := [][]string{
		append([]string{"api", "doc", "lib", "misc", "test"}, top...),
		{"bin", "pkg"},
		{"src"},
	}
	var golayers []rawLayer
	for i, g := range groups {
		l, err := writeRawLayer(filepath.Join(dir, "raw", fmt.Sprintf("go-%d.tar", i)), gorootFill(s.GoRoot, g, s.GoLayerCap, &in.ArchiveFiles))
		if err != nil {
			return nil, err
		}
		golayers = append(golayers, l)
	}
	app, err := writeRawLayer(filepath.Join(dir, "raw", "go-app.tar"), func(tw *tar.Writer) error {
		return writeFile(tw, "app/config.json", []byte(`{"bench": true}`+"\n"), 0o644)
	})
	if err != nil {
		return nil, err
	}
	golayers = append(golayers, app)
	if err := writeDockerArchive(in.Archive, golayers, "go"); err != nil {
		return nil, err
	}
	for _, l := range golayers {
		in.ArchiveBytes += l.size
	}
	if err := os.RemoveAll(filepath.Join(dir, "raw")); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(in, "", "  ")
	if err := os.WriteFile(stamp, b, 0o644); err != nil {
		return nil, err
	}
	logf("inputs: generated in %s (layout %d MiB, archive %d MiB of layers, %d files)", time.Since(start).Round(time.Millisecond),
		in.LayoutBytes>>20, in.ArchiveBytes>>20, in.ArchiveFiles)
	return in, nil
}

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// rawLayer is an uncompressed layer tar on disk with its diffID.
type rawLayer struct {
	path   string
	diffID string
	size   int64
}

func writeRawLayer(path string, fill func(*tar.Writer) error) (rawLayer, error) {
	f, err := os.Create(path)
	if err != nil {
		return rawLayer{}, err
	}
	defer f.Close()
	h := sha256.New()
	cw := &counter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	tw := tar.NewWriter(bw)
	if err := fill(tw); err != nil {
		return rawLayer{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := tw.Close(); err != nil {
		return rawLayer{}, err
	}
	if err := bw.Flush(); err != nil {
		return rawLayer{}, err
	}
	return rawLayer{path: path, diffID: "sha256:" + hex.EncodeToString(h.Sum(nil)), size: cw.n}, f.Close()
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeFile(tw *tar.Writer, name string, data []byte, mode int64) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// randomFill writes one file of n seeded random bytes.
func randomFill(seed uint64, n int64) func(*tar.Writer) error {
	return func(tw *tar.Writer) error {
		var key [32]byte
		binary.LittleEndian.PutUint64(key[:], seed)
		copy(key[8:], "ecrpush-bench")
		rng := rand.NewChaCha8(key)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("bench/blob-%04d.bin", seed), Mode: 0o644, Size: n, ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.CopyN(tw, rng, n)
		return err
	}
}

func topFiles(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// gorootFill writes root's entries under usr/local/go/ in lexical order, with fixed owners and
// times so the tar is the same on every run; after capBytes of file data (0: no cap) it stops.
func gorootFill(root string, paths []string, capBytes int64, files *int) func(*tar.Writer) error {
	return func(tw *tar.Writer) error {
		for _, d := range []string{"usr/", "usr/local/", "usr/local/go/"} {
			if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
				return err
			}
		}
		var written int64
		errFull := fmt.Errorf("full")
		for _, p := range paths {
			err := filepath.WalkDir(filepath.Join(root, p), func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(root, path)
				name := "usr/local/go/" + filepath.ToSlash(rel)
				info, err := d.Info()
				if err != nil {
					return err
				}
				h := &tar.Header{Name: name, Mode: int64(info.Mode().Perm()), ModTime: epoch}
				switch {
				case d.IsDir():
					h.Typeflag, h.Name = tar.TypeDir, name+"/"
					return tw.WriteHeader(h)
				case d.Type()&fs.ModeSymlink != 0:
					target, err := os.Readlink(path)
					if err != nil {
						return err
					}
					h.Typeflag, h.Linkname = tar.TypeSymlink, target
					return tw.WriteHeader(h)
				case !d.Type().IsRegular():
					return nil
				}
				if capBytes > 0 && written+info.Size() > capBytes {
					return errFull
				}
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				defer f.Close()
				h.Typeflag, h.Size = tar.TypeReg, info.Size()
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				if _, err := io.CopyN(tw, f, info.Size()); err != nil {
					return err
				}
				written += info.Size()
				*files++
				return nil
			})
			if err == errFull {
				return nil
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
}

func imageConfig(name string, layers []rawLayer) []byte {
	type history struct {
		Created   time.Time `json:"created"`
		CreatedBy string    `json:"created_by"`
	}
	cfg := map[string]any{
		"architecture": "amd64", "os": "linux", "created": epoch,
		"config": map[string]any{"Env": []string{"PATH=/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin"}, "Labels": map[string]string{"bench": name}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": func() []string {
			var ids []string
			for _, l := range layers {
				ids = append(ids, l.diffID)
			}
			return ids
		}()},
		"history": func() []history {
			var hs []history
			for i := range layers {
				hs = append(hs, history{Created: epoch, CreatedBy: fmt.Sprintf("bench %s layer %d", name, i)})
			}
			return hs
		}(),
	}
	b, _ := json.Marshal(cfg)
	return b
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// writeOCILayout compresses layers at level into an OCI layout at dir tagged "bench" and returns the
// sum of the compressed layer sizes.
func writeOCILayout(dir string, layers []rawLayer, level int, name string) (int64, error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return 0, err
	}
	var descs []descriptor
	var total int64
	for _, l := range layers {
		d, err := gzipBlob(blobs, l.path, level)
		if err != nil {
			return 0, err
		}
		descs = append(descs, d)
		total += d.Size
	}
	cfg := imageConfig(name, layers)
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: digestOf(cfg), Size: int64(len(cfg))},
		"layers": descs,
	})
	for _, b := range [][]byte{cfg, m} {
		if err := os.WriteFile(filepath.Join(blobs, strings.TrimPrefix(digestOf(b), "sha256:")), b, 0o644); err != nil {
			return 0, err
		}
	}
	idx, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []descriptor{{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: digestOf(m), Size: int64(len(m)),
			Annotations: map[string]string{"org.opencontainers.image.ref.name": "bench"}}},
	})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		return 0, err
	}
	return total, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

func gzipBlob(blobs, src string, level int) (descriptor, error) {
	in, err := os.Open(src)
	if err != nil {
		return descriptor{}, err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(blobs, "tmp-")
	if err != nil {
		return descriptor{}, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	cw := &counter{w: io.MultiWriter(tmp, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, level)
	if err != nil {
		return descriptor{}, err
	}
	if _, err := io.Copy(zw, in); err != nil {
		return descriptor{}, err
	}
	if err := zw.Close(); err != nil {
		return descriptor{}, err
	}
	if err := bw.Flush(); err != nil {
		return descriptor{}, err
	}
	if err := tmp.Close(); err != nil {
		return descriptor{}, err
	}
	hexd := hex.EncodeToString(h.Sum(nil))
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return descriptor{}, err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(blobs, hexd)); err != nil {
		return descriptor{}, err
	}
	return descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: "sha256:" + hexd, Size: cw.n}, nil
}

// writeDockerArchive writes what `docker save bench:latest` writes (Docker 25+): an OCI layout
// whose layers are uncompressed tars, plus the legacy manifest.json and repositories.
func writeDockerArchive(path string, layers []rawLayer, name string) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(path + ".tmp")
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	cfg := imageConfig(name, layers)
	var descs []descriptor
	var paths []string
	for _, l := range layers {
		p := "blobs/sha256/" + strings.TrimPrefix(l.diffID, "sha256:")
		descs = append(descs, descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: l.diffID, Size: l.size})
		paths = append(paths, p)
		src, err := os.Open(l.path)
		if err != nil {
			return err
		}
		err = tw.WriteHeader(&tar.Header{Name: p, Mode: 0o444, Size: l.size, ModTime: epoch, Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.CopyN(tw, src, l.size)
		}
		src.Close()
		if err != nil {
			return err
		}
	}
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: digestOf(cfg), Size: int64(len(cfg))},
		"layers": descs,
	})
	idx, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []descriptor{{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: digestOf(m), Size: int64(len(m)),
			Annotations: map[string]string{"io.containerd.image.name": "docker.io/library/bench:latest", "org.opencontainers.image.ref.name": "latest"}}},
	})
	legacy, _ := json.Marshal([]map[string]any{{
		"Config": "blobs/sha256/" + strings.TrimPrefix(digestOf(cfg), "sha256:"), "RepoTags": []string{"bench:latest"}, "Layers": paths}})
	repos, _ := json.Marshal(map[string]any{"bench": map[string]string{"latest": strings.TrimPrefix(layers[len(layers)-1].diffID, "sha256:")}})
	for _, e := range []struct {
		name string
		data []byte
	}{
		{"blobs/sha256/" + strings.TrimPrefix(digestOf(cfg), "sha256:"), cfg},
		{"blobs/sha256/" + strings.TrimPrefix(digestOf(m), "sha256:"), m},
		{"index.json", idx},
		{"manifest.json", legacy},
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"repositories", repos},
	} {
		if err := writeFile(tw, e.name, e.data, 0o444); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

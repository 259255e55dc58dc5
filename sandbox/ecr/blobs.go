package ecr

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// blobStore keeps one registry's blobs on disk, content-addressed like ggcr's
// registry.NewDiskBlobHandler (<dir>/blobs/sha256/<hex>), and its in-flight uploads as temp
// files, so GiB-sized layers never sit in memory. Digests are verified while the bytes stream
// in (a running sha256 per upload), never by re-reading a finished blob.
type blobStore struct {
	dir string

	mu      sync.Mutex
	sizes   map[string]int64 // committed blobs: digest → size
	uploads map[string]*upload
}

// upload is one blob upload session (POST … PATCH* … PUT).
type upload struct {
	id      string
	repo    string
	mu      sync.Mutex // serialises chunks of one session
	f       *os.File
	h       hash.Hash
	size    int64
	parts   int   // PATCHes (and a PUT's body) written, ECR's UploadLayerPart calls
	last    int64 // size of the last part
	started time.Time
	done    bool
}

var errDigestMismatch = errors.New("digest mismatch")

func newBlobStore(dir string) (*blobStore, error) {
	for _, d := range []string{filepath.Join(dir, "blobs", "sha256"), filepath.Join(dir, "uploads")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
	}
	return &blobStore{dir: dir, sizes: map[string]int64{}, uploads: map[string]*upload{}}, nil
}

func (b *blobStore) path(digest string) string {
	return filepath.Join(b.dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

// stat reports a committed blob's size.
func (b *blobStore) stat(digest string) (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.sizes[digest]
	return n, ok
}

// open returns a committed blob for reading.
func (b *blobStore) open(digest string) (*os.File, int64, error) {
	n, ok := b.stat(digest)
	if !ok {
		return nil, 0, os.ErrNotExist
	}
	f, err := os.Open(b.path(digest))
	if err != nil {
		return nil, 0, fmt.Errorf("open blob %s: %w", digest, err)
	}
	return f, n, nil
}

// start opens a new upload session for repo.
func (b *blobStore) start(repo string, now time.Time) (*upload, error) {
	f, err := os.CreateTemp(filepath.Join(b.dir, "uploads"), "upload-*")
	if err != nil {
		return nil, fmt.Errorf("start upload: %w", err)
	}
	u := &upload{id: randomUUID(), repo: repo, f: f, h: sha256.New(), started: now}
	b.mu.Lock()
	b.uploads[u.id] = u
	b.mu.Unlock()
	return u, nil
}

// session finds an open upload of repo.
func (b *blobStore) session(repo, id string) (*upload, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, ok := b.uploads[id]
	if !ok || u.repo != repo {
		return nil, false
	}
	return u, true
}

// write appends r to the upload as one part (caller holds u.mu); an empty body is no part.
func (u *upload) write(r io.Reader) (int64, error) {
	n, err := io.Copy(io.MultiWriter(u.f, u.h), r)
	u.size += n
	if n > 0 {
		u.parts++
		u.last = n
	}
	if err != nil {
		return n, fmt.Errorf("upload %s: %w", u.id, err)
	}
	return n, nil
}

// finish commits the upload as digest (caller holds u.mu), or discards it on mismatch.
func (b *blobStore) finish(u *upload, digest string) (int64, error) {
	defer b.drop(u)
	got := "sha256:" + hex.EncodeToString(u.h.Sum(nil))
	if got != digest {
		return 0, fmt.Errorf("%w: computed %s, expected %s", errDigestMismatch, got, digest)
	}
	if err := u.f.Close(); err != nil {
		return 0, fmt.Errorf("upload %s: %w", u.id, err)
	}
	if err := b.commit(u.f.Name(), digest, u.size); err != nil {
		return 0, err
	}
	return u.size, nil
}

// cancel discards an upload session.
func (b *blobStore) cancel(u *upload) { b.drop(u) }

func (b *blobStore) drop(u *upload) {
	b.mu.Lock()
	delete(b.uploads, u.id)
	b.mu.Unlock()
	if !u.done {
		u.done = true
		_ = u.f.Close()
		_ = os.Remove(u.f.Name()) // already renamed away when committed
	}
}

// commit moves a verified temp file into place; an existing blob wins (same bytes).
func (b *blobStore) commit(tmp, digest string, size int64) error {
	if _, ok := b.stat(digest); ok {
		_ = os.Remove(tmp)
		return nil
	}
	if err := os.Rename(tmp, b.path(digest)); err != nil {
		return fmt.Errorf("commit blob %s: %w", digest, err)
	}
	b.mu.Lock()
	b.sizes[digest] = size
	b.mu.Unlock()
	return nil
}

// importBlob copies a committed blob from another store (replication): a hard link when both
// stores share a file system, a verified copy otherwise.
func (b *blobStore) importBlob(src *blobStore, digest string) error {
	if _, ok := b.stat(digest); ok {
		return nil
	}
	size, ok := src.stat(digest)
	if !ok {
		return fmt.Errorf("import blob %s: %w", digest, os.ErrNotExist)
	}
	tmp := filepath.Join(b.dir, "uploads", "import-"+randomUUID())
	if err := os.Link(src.path(digest), tmp); err != nil {
		if err := copyVerified(src.path(digest), tmp, digest); err != nil {
			return err
		}
	}
	return b.commit(tmp, digest, size)
}

func copyVerified(from, to, digest string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("copy blob: %w", err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return fmt.Errorf("copy blob: %w", err)
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && "sha256:"+hex.EncodeToString(h.Sum(nil)) != digest {
		err = errDigestMismatch
	}
	if err != nil {
		_ = os.Remove(to)
		return fmt.Errorf("copy blob %s: %w", digest, err)
	}
	return nil
}

// closeUploads discards every open upload (Close).
func (b *blobStore) closeUploads() {
	b.mu.Lock()
	us := make([]*upload, 0, len(b.uploads))
	for _, u := range b.uploads {
		us = append(us, u)
	}
	b.mu.Unlock()
	for _, u := range us {
		u.mu.Lock()
		b.drop(u)
		u.mu.Unlock()
	}
}

// randomUUID returns a random RFC 4122 v4 UUID (upload ids, request ids).
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

package mirror

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// LockVersion is the lock file format written.
const LockVersion = 1

// Lock maps each source reference, as the images file writes it, to what is in ECR.
type Lock struct {
	Version int                  `json:"version"`
	Images  map[string]LockEntry `json:"images"`
}

// LockEntry is one mirrored image.
type LockEntry struct {
	Source       string   `json:"source"`       // the full source reference (registry/repository:tag)
	SourceDigest string   `json:"sourceDigest"` // what the source resolved to
	URI          string   `json:"uri"`          // ECR host/repository@digest
	Digest       string   `json:"digest"`       // the digest in ECR: sourceDigest unless platforms were filtered
	Tags         []string `json:"tags,omitempty"`
	Platforms    []string `json:"platforms,omitempty"` // the filter, when there was one
}

// LockPath is where the lock of an images file goes by default: images.yaml → images.lock.json.
func LockPath(file string) string {
	ext := filepath.Ext(file)
	return file[:len(file)-len(ext)] + ".lock.json"
}

// ReadLock reads a lock file; a missing file is an empty lock.
func ReadLock(p string) (*Lock, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &Lock{Version: LockVersion, Images: map[string]LockEntry{}}, nil
	}
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("cannot read the lock file %q: %v", p, err))
	}
	var l Lock
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("the lock file %q is not valid JSON (%v): fix or delete it", p, err))
	}
	if l.Version != LockVersion {
		return nil, fixable.New("the lock file %q has version %d; this ecrpush writes version %d: delete it to start over", p, l.Version, LockVersion)
	}
	if l.Images == nil {
		l.Images = map[string]LockEntry{}
	}
	return &l, nil
}

// Write writes the lock atomically (keys sorted, so it diffs well under version control).
func (l *Lock) Write(p string) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".lock-*.tmp")
	if err != nil {
		return fixable.Wrap(err, fmt.Sprintf("cannot write the lock file next to %q: %v", p, err))
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

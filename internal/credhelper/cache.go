package credhelper

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Entry is one cached registry token: what GetAuthorizationToken returned for a role in a region.
// ECR honours a token on every registry of the region the role may read, so one entry serves them all.
type Entry struct {
	Key         string    `json:"key"`
	Region      string    `json:"region"`
	Username    string    `json:"username"`
	Secret      string    `json:"secret"`
	RequestedAt time.Time `json:"requestedAt"`
	ExpiresAt   time.Time `json:"expiresAt"`
	// Hosts are the registry hosts ECR named as proxyEndpoint for this key, each with its account,
	// so a host seen once is recognised later even when it is not ECR's own name (a custom endpoint).
	Hosts map[string]string `json:"hosts,omitempty"`
}

// Fresh reports whether the token is still in the first half of its lifetime, as
// amazon-ecr-credential-helper judges it: a client handed it then has hours left to use it.
func (e *Entry) Fresh(now time.Time) bool {
	return now.Before(e.RequestedAt.Add(e.ExpiresAt.Sub(e.RequestedAt) / 2))
}

// Valid reports whether the token has not expired yet.
func (e *Entry) Valid(now time.Time) bool { return now.Before(e.ExpiresAt) }

// Cache keeps entries on disk, one file per key, so concurrent helpers (docker pulls layers in
// parallel and asks for every one) never rewrite each other's entries. Files are 0600 in a 0700
// directory; a file anyone else can read is never trusted or reused.
type Cache struct {
	Dir string
}

// file is the entry's path: a hash of the key, which may hold an ARN with characters a file name
// should not.
func (c *Cache) file(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(c.Dir, "ecr-"+hex.EncodeToString(sum[:16])+".json")
}

// Load returns the entry for key, or nil when there is none (or it is unreadable, corrupt, or has
// lost its 0600 mode — all of which just mean "fetch a new token").
func (c *Cache) Load(key string) *Entry {
	e, err := readEntry(c.file(key))
	if err != nil || e.Key != key {
		return nil
	}
	return e
}

func readEntry(path string) (*Entry, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: not a regular 0600 file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Store writes e atomically (a temporary file renamed over the old one), mode 0600.
func (c *Cache) Store(e *Entry) error {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.Dir, ".ecr-*.tmp")
	if err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("token cache: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("token cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.file(e.Key)); err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	return nil
}

// Remove deletes the entry for key (no error when there is none).
func (c *Cache) Remove(key string) error {
	if err := os.Remove(c.file(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("token cache: %w", err)
	}
	return nil
}

// Entries returns every readable entry, ordered by key.
func (c *Cache) Entries() []*Entry {
	des, err := os.ReadDir(c.Dir)
	if err != nil {
		return nil
	}
	var out []*Entry
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), "ecr-") || !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		if e, err := readEntry(filepath.Join(c.Dir, de.Name())); err == nil {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

package ecr

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// supplyChain is the sandbox's managed-signing and image-scanning state, one per Service (the
// zero value is ready). Signing and scanning start from afterPush, which the replicator's onPush
// calls for every manifest a client pushes (registry PUT or PutImage) — not for replicated ones.
type supplyChain struct {
	mu        sync.Mutex
	signing   map[RegistryID]SigningConfiguration
	signState map[string][]ImageSigningStatus // imageKey → one status per signing profile
	failing   map[string]signingFailure       // signing profile ARN → how its signing fails
	scanning  map[RegistryID]RegistryScanningConfiguration
	scans     map[string]scanRecord // imageKey → the scan started on push
	// signingDelay is how long a signature takes (0: signed before the push returns); scanDelay how
	// long a scan stays IN_PROGRESS (basic) or PENDING (enhanced).
	signingDelay time.Duration
	scanDelay    time.Duration
}

type signingFailure struct{ code, reason string }

// scanRecord is one image's scan: its type and when it started.
type scanRecord struct {
	scanType  string // BASIC or ENHANCED
	frequency string // SCAN_ON_PUSH or CONTINUOUS_SCAN (enhanced)
	started   time.Time
}

func imageKey(id RegistryID, repo, digest string) string {
	return id.String() + "|" + repo + "|" + digest
}

// SetSupplyChainDelays sets how long managed signing takes (0: the signature exists before the push
// returns) and how long a scan on push runs before its findings are there.
func (s *Service) SetSupplyChainDelays(signing, scan time.Duration) {
	s.sc.mu.Lock()
	s.sc.signingDelay, s.sc.scanDelay = max(signing, 0), max(scan, 0)
	s.sc.mu.Unlock()
}

// FailSigning makes every signature with profileARN fail with code and reason from now on (code ""
// lets it sign again): the sandbox has no AWS Signer, so a revoked profile or a pusher without
// signer:SignPayload is modelled this way.
func (s *Service) FailSigning(profileARN, code, reason string) {
	s.sc.mu.Lock()
	defer s.sc.mu.Unlock()
	if code == "" {
		delete(s.sc.failing, profileARN)
		return
	}
	if s.sc.failing == nil {
		s.sc.failing = map[string]signingFailure{}
	}
	s.sc.failing[profileARN] = signingFailure{code: code, reason: reason}
}

// afterPush starts what ECR does after a client pushes a manifest: scan on push and managed
// signing. Referrers (manifests with a subject) are neither scanned nor signed, so a signature
// never signs itself.
func (s *Service) afterPush(rg *registry, repo, digest string) {
	rg.mu.RLock()
	r, ok := rg.repos[repo]
	var img *image
	scanOnPush := false
	if ok {
		img = r.images[digest]
		scanOnPush = r.scanOnPush
	}
	rg.mu.RUnlock()
	if img == nil || subjectOf(img.manifest) != "" {
		return
	}
	s.startScan(rg.id, repo, digest, scanOnPush)
	s.startSigning(rg, repo, img)
}

// writeBlob stores data as a committed blob of repo (what an upload would have done).
func (rg *registry) writeBlob(repo string, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if _, ok := rg.store.stat(digest); !ok {
		tmp := filepath.Join(rg.store.dir, "uploads", "sandbox-"+randomUUID())
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return "", fmt.Errorf("write blob: %w", err)
		}
		if err := rg.store.commit(tmp, digest, int64(len(data))); err != nil {
			return "", err
		}
	}
	if !rg.linkBlob(repo, digest) {
		return "", fmt.Errorf("repository %s is gone", repo)
	}
	return digest, nil
}

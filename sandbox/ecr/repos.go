package ecr

import (
	"sort"
	"strings"
	"sync"
	"time"
)

// registry is one private registry (account + region): its repositories, blobs, replication
// configuration and replication statuses. One RWMutex guards the metadata; blob bytes are
// read and written outside it.
type registry struct {
	s     *Service
	id    RegistryID
	store *blobStore

	mu          sync.RWMutex
	endpoint    string
	repos       map[string]*repository
	replication ReplicationConfiguration
	replStatus  map[string][]ImageReplicationStatus    // replKey(repo, digest) → one per destination
	templates   map[string]*RepositoryCreationTemplate // by templateKey(prefix)
	backfills   []*backfill                            // in start order (backfill.go)
}

// repository is one ECR repository.
type repository struct {
	name         string
	createdAt    time.Time
	mutability   string
	exclusions   []ImageTagMutabilityExclusionFilter
	scanOnPush   bool
	encryption   EncryptionConfiguration
	resourceTags []Tag
	lifecycle    string // lifecycle policy text ("" none)
	policy       string // repository policy text ("" none)

	images map[string]*image // by digest
	tags   map[string]string // tag → digest
	blobs  map[string]bool   // blobs uploaded to (or mounted/replicated into) this repository
}

// image is one manifest stored in a repository.
type image struct {
	digest       string
	mediaType    string
	artifactType string
	manifest     []byte
	size         int64
	pushedAt     time.Time
	blobs        []string // config + layers
	children     []string // child manifests of an index

	// Storage class (archive.go): ACTIVE, ARCHIVED or ACTIVATING; only ACTIVE images are pullable.
	status          string
	lastArchivedAt  time.Time
	lastActivatedAt time.Time
}

func newRegistry(s *Service, id RegistryID, store *blobStore) *registry {
	return &registry{s: s, id: id, store: store, repos: map[string]*repository{},
		replication: ReplicationConfiguration{Rules: []ReplicationRule{}}, replStatus: map[string][]ImageReplicationStatus{},
		templates: map[string]*RepositoryCreationTemplate{}}
}

func (rg *registry) setEndpoint(url string) {
	rg.mu.Lock()
	rg.endpoint = url
	rg.mu.Unlock()
}

func (rg *registry) hostLocked() string {
	if rg.endpoint != "" {
		h := strings.TrimPrefix(strings.TrimPrefix(rg.endpoint, "http://"), "https://")
		return h
	}
	return rg.id.host()
}

func (rg *registry) proxyEndpoint() string {
	rg.mu.RLock()
	defer rg.mu.RUnlock()
	if rg.endpoint != "" {
		return rg.endpoint
	}
	return "https://" + rg.id.host()
}

func (rg *registry) repoARN(name string) string {
	return "arn:aws:ecr:" + rg.id.Region + ":" + rg.id.Account + ":repository/" + name
}

func (rg *registry) setReplication(cfg ReplicationConfiguration) {
	if cfg.Rules == nil {
		cfg.Rules = []ReplicationRule{}
	}
	rg.mu.Lock()
	rg.replication = cfg
	rg.mu.Unlock()
}

func (rg *registry) replicationConfig() ReplicationConfiguration {
	rg.mu.RLock()
	defer rg.mu.RUnlock()
	return rg.replication
}

// repoSpec is what CreateRepository (or replication) asks for.
type repoSpec struct {
	name       string
	mutability string
	exclusions []ImageTagMutabilityExclusionFilter
	scanOnPush bool
	encryption EncryptionConfiguration
	tags       []Tag
	lifecycle  string
	policy     string
}

// createRepository adds a repository; ok is false when it already exists.
func (rg *registry) createRepository(spec repoSpec, now time.Time) (Repository, bool) {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if r, exists := rg.repos[spec.name]; exists {
		return rg.describeLocked(r), false
	}
	if spec.mutability == "" {
		spec.mutability = "MUTABLE"
	}
	if spec.encryption.EncryptionType == "" {
		spec.encryption.EncryptionType = "AES256"
	}
	r := &repository{name: spec.name, createdAt: now, mutability: spec.mutability, exclusions: spec.exclusions,
		scanOnPush: spec.scanOnPush, encryption: spec.encryption, resourceTags: spec.tags,
		lifecycle: spec.lifecycle, policy: spec.policy,
		images: map[string]*image{}, tags: map[string]string{}, blobs: map[string]bool{}}
	rg.repos[spec.name] = r
	return rg.describeLocked(r), true
}

func (rg *registry) describeLocked(r *repository) Repository {
	return Repository{
		RepositoryArn:                      rg.repoARN(r.name),
		RegistryID:                         rg.id.Account,
		RepositoryName:                     r.name,
		RepositoryURI:                      rg.hostLocked() + "/" + r.name,
		CreatedAt:                          epochTime(r.createdAt),
		ImageTagMutability:                 r.mutability,
		ImageTagMutabilityExclusionFilters: r.exclusions,
		ImageScanningConfiguration:         ImageScanningConfiguration{ScanOnPush: r.scanOnPush},
		EncryptionConfiguration:            r.encryption,
	}
}

func (rg *registry) hasRepo(name string) bool {
	rg.mu.RLock()
	defer rg.mu.RUnlock()
	_, ok := rg.repos[name]
	return ok
}

// describeRepos returns the named repositories (all when names is empty), sorted by name;
// missing is the first requested name that does not exist.
func (rg *registry) describeRepos(names []string) (out []Repository, missing string) {
	rg.mu.RLock()
	defer rg.mu.RUnlock()
	if len(names) == 0 {
		for _, r := range rg.repos {
			out = append(out, rg.describeLocked(r))
		}
		sort.Slice(out, func(i, j int) bool { return out[i].RepositoryName < out[j].RepositoryName })
		return out, ""
	}
	for _, n := range names {
		r, ok := rg.repos[n]
		if !ok {
			return nil, n
		}
		out = append(out, rg.describeLocked(r))
	}
	return out, ""
}

// setMutability implements PutImageTagMutability.
func (rg *registry) setMutability(name, mutability string, exclusions []ImageTagMutabilityExclusionFilter) bool {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	r, ok := rg.repos[name]
	if !ok {
		return false
	}
	r.mutability, r.exclusions = mutability, exclusions
	return true
}

// tagImmutable applies the repository's mutability setting (and exclusion filters) to a tag.
func (r *repository) tagImmutable(tag string) bool {
	excluded := false
	for _, f := range r.exclusions {
		if wildcardMatch(f.Filter, tag) {
			excluded = true
			break
		}
	}
	switch r.mutability {
	case "IMMUTABLE":
		return true
	case "IMMUTABLE_WITH_EXCLUSION":
		return !excluded
	case "MUTABLE_WITH_EXCLUSION":
		return excluded
	}
	return false
}

// tagsOf lists an image's tags, sorted.
func (r *repository) tagsOf(digest string) []string {
	var out []string
	for t, d := range r.tags {
		if d == digest {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// resolve finds an image by digest and/or tag; mismatch reports a tag that names another digest.
func (r *repository) resolve(id ImageIdentifier) (img *image, mismatch bool) {
	digest := id.ImageDigest
	if id.ImageTag != "" {
		d, ok := r.tags[id.ImageTag]
		if !ok {
			return nil, false
		}
		if digest != "" && d != digest {
			return nil, true
		}
		digest = d
	}
	return r.images[digest], false
}

// referencedBy lists the indexes in r that reference digest.
func (r *repository) referencedBy(digest string) []string {
	var out []string
	for _, img := range r.images {
		for _, c := range img.children {
			if c == digest {
				out = append(out, img.digest)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// linkBlob records that repo holds a committed blob (after an upload, mount or replication).
func (rg *registry) linkBlob(repo, digest string) bool {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	r, ok := rg.repos[repo]
	if !ok {
		return false
	}
	r.blobs[digest] = true
	return true
}

// repoHasBlob reports whether a blob is visible in a repository, and its size.
func (rg *registry) repoHasBlob(repo, digest string) (int64, bool) {
	rg.mu.RLock()
	r, ok := rg.repos[repo]
	linked := ok && r.blobs[digest]
	rg.mu.RUnlock()
	if !linked {
		return 0, false
	}
	return rg.store.stat(digest)
}

// Outcomes of putManifest other than success.
type putFailure int

const (
	putOK putFailure = iota
	putRepoNotFound
	putTagImmutable
	putBlobsMissing
	putChildrenMissing
)

type putResult struct {
	failure putFailure
	missing []string // blob or child digests
	changed bool     // a new image, or a tag that now points here
	existed bool     // the image was already stored
}

// putManifest stores a validated manifest under an optional tag, enforcing ECR's rules: every
// blob (or child manifest) present in this repository, and immutable tags never rewritten, not
// even to the digest they already name.
func (rg *registry) putManifest(repo string, p *parsedManifest, tag string, now time.Time) putResult {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	r, ok := rg.repos[repo]
	if !ok {
		return putResult{failure: putRepoNotFound}
	}
	var missing []string
	var size int64
	for i, b := range p.blobs {
		n, ok := rg.store.stat(b.Digest)
		if !r.blobs[b.Digest] || !ok {
			missing = append(missing, b.Digest)
			continue
		}
		if i > 0 { // imageSizeInBytes counts layers, as ECR does, not the config
			size += n
		}
	}
	if len(missing) > 0 {
		return putResult{failure: putBlobsMissing, missing: missing}
	}
	for _, c := range p.children {
		child, ok := r.images[c.Digest]
		if !ok {
			missing = append(missing, c.Digest)
			continue
		}
		size += child.size
	}
	if len(missing) > 0 {
		return putResult{failure: putChildrenMissing, missing: missing}
	}
	cur, tagged := r.tags[tag]
	if tag != "" && tagged && r.tagImmutable(tag) {
		return putResult{failure: putTagImmutable}
	}
	res := putResult{}
	if img, ok := r.images[p.digest]; ok {
		res.existed = true
		if img.status != imageActive {
			// Pushing an archived image again restores it (archive-image.md); the sandbox makes it
			// ACTIVE at once, and the push replicates like any other.
			img.status, img.lastActivatedAt = imageActive, now
			res.changed = true
		}
	} else {
		img := &image{digest: p.digest, mediaType: p.mediaType, artifactType: p.artifactType,
			manifest: p.body, size: size, pushedAt: now, status: imageActive}
		for _, b := range p.blobs {
			img.blobs = append(img.blobs, b.Digest)
		}
		for _, c := range p.children {
			img.children = append(img.children, c.Digest)
		}
		r.images[p.digest] = img
		res.changed = true
	}
	if tag != "" && (!tagged || cur != p.digest) {
		r.tags[tag] = p.digest
		res.changed = true
	}
	return res
}

// snapshotImage copies what replication needs of an image: the manifest, its blobs and, for
// an index, its children (recursively), in push order (children first).
type imageCopy struct {
	parsed []*parsedManifest
	blobs  []string
}

func (rg *registry) snapshotImage(repo, digest string) (*imageCopy, bool) {
	rg.mu.RLock()
	defer rg.mu.RUnlock()
	r, ok := rg.repos[repo]
	if !ok {
		return nil, false
	}
	out := &imageCopy{}
	seen := map[string]bool{}
	var walk func(d string, depth int) bool
	walk = func(d string, depth int) bool {
		img, ok := r.images[d]
		if !ok || depth > 8 { // indexes of indexes are legal; cycles are not possible, depth bounds it anyway
			return false
		}
		if seen[d] {
			return true
		}
		seen[d] = true
		for _, c := range img.children {
			if !walk(c, depth+1) {
				return false
			}
		}
		out.blobs = append(out.blobs, img.blobs...)
		p, msg := parseManifest(img.manifest, img.mediaType)
		if msg != "" {
			return false
		}
		out.parsed = append(out.parsed, p)
		return true
	}
	if !walk(digest, 0) {
		return nil, false
	}
	return out, true
}

// deleteImage removes an image by digest, or one tag (and the image with its last tag).
// It returns the identifiers deleted, or a failure code and reason.
func (rg *registry) deleteImage(repo string, id ImageIdentifier) ([]ImageIdentifier, string, string) {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	r, ok := rg.repos[repo]
	if !ok {
		return nil, "ImageNotFound", "Requested image not found"
	}
	img, mismatch := r.resolve(id)
	if mismatch {
		return nil, "ImageTagDoesNotMatchDigest", "Invalid image tag for provided digest"
	}
	if img == nil {
		return nil, "ImageNotFound", "Requested image not found"
	}
	if id.ImageDigest == "" { // by tag: untag, and delete the image when it was the last tag
		delete(r.tags, id.ImageTag)
		if len(r.tagsOf(img.digest)) > 0 || len(r.referencedBy(img.digest)) > 0 {
			return []ImageIdentifier{{ImageDigest: img.digest, ImageTag: id.ImageTag}}, "", ""
		}
		delete(r.images, img.digest)
		return []ImageIdentifier{{ImageDigest: img.digest, ImageTag: id.ImageTag}}, "", ""
	}
	if refs := r.referencedBy(img.digest); len(refs) > 0 {
		return nil, "ImageReferencedByManifestList", "Requested image referenced by manifest list: [" + strings.Join(refs, ", ") + "]"
	}
	var out []ImageIdentifier
	tags := r.tagsOf(img.digest)
	for _, t := range tags {
		delete(r.tags, t)
		out = append(out, ImageIdentifier{ImageDigest: img.digest, ImageTag: t})
	}
	if len(tags) == 0 {
		out = append(out, ImageIdentifier{ImageDigest: img.digest})
	}
	delete(r.images, img.digest)
	return out, "", ""
}

func replKey(repo, digest string) string { return repo + "@" + digest }

// setReplStatus records one replication event's status for a destination: under the image (its
// latest event) and, for a tag push, under the tag as well.
func (rg *registry) setReplStatus(repo, digest, tag string, st ImageReplicationStatus) {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	keys := []string{replKey(repo, digest)}
	if tag != "" {
		keys = append(keys, replKey(repo, digest)+"#"+tag)
	}
	for _, k := range keys {
		list := rg.replStatus[k]
		found := false
		for i := range list {
			if list[i].Region == st.Region && list[i].RegistryID == st.RegistryID {
				list[i], found = st, true
			}
		}
		if !found {
			rg.replStatus[k] = append(list, st)
		}
	}
}

// replStatuses is what DescribeImageReplicationStatus reports: by digest, each destination's latest
// event; by tag, the tag's own event where it had one ([assumed]: AWS does not say how separate events
// show; replication.go).
func (rg *registry) replStatuses(repo, digest, tag string) []ImageReplicationStatus {
	rg.mu.RLock()
	defer rg.mu.RUnlock()
	out := append([]ImageReplicationStatus{}, rg.replStatus[replKey(repo, digest)]...)
	if tag == "" {
		return out
	}
	for _, t := range rg.replStatus[replKey(repo, digest)+"#"+tag] {
		for i := range out {
			if out[i].Region == t.Region && out[i].RegistryID == t.RegistryID {
				out[i] = t
			}
		}
	}
	return out
}

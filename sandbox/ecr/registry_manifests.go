package ecr

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

func (rg *registry) serveManifest(w http.ResponseWriter, r *http.Request, rt route) *regError {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return rg.getManifest(w, r, rt)
	case http.MethodPut:
		return rg.putManifestHTTP(w, r, rt)
	case http.MethodDelete:
		return rg.deleteManifest(w, rt)
	}
	return newRegError(http.StatusMethodNotAllowed, "UNSUPPORTED", "The operation is unsupported.")
}

func (rg *registry) getManifest(w http.ResponseWriter, r *http.Request, rt route) *regError {
	rg.mu.RLock()
	var img *image
	if repo, ok := rg.repos[rt.repo]; ok {
		img = repo.pullable(rt.ref) // archived images answer 404 (archive.go)
	}
	rg.mu.RUnlock()
	if img == nil {
		return newRegError(http.StatusNotFound, "MANIFEST_UNKNOWN", "Requested image not found")
	}
	h := w.Header()
	h.Set("Content-Type", img.mediaType)
	h.Set("Docker-Content-Digest", img.digest)
	h.Set("Content-Length", strconv.Itoa(len(img.manifest)))
	h.Set("ETag", `"`+img.digest+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(img.manifest)
	}
	return nil
}

func (rg *registry) putManifestHTTP(w http.ResponseWriter, r *http.Request, rt route) *regError {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestSize+1))
	if err != nil {
		return newRegError(http.StatusBadRequest, "MANIFEST_INVALID", "failed to read manifest")
	}
	p, msg := parseManifest(body, r.Header.Get("Content-Type"))
	if msg == msgNoMediaType {
		// ECR's answer to an OCI manifest or index without a top-level mediaType, which the OCI
		// spec allows and ECR does not.
		return newRegError(http.StatusMethodNotAllowed, "UNSUPPORTED", "Invalid parameter at 'ImageManifest' failed to satisfy constraint: '%s'", msg)
	}
	if msg != "" {
		return newRegError(http.StatusBadRequest, "MANIFEST_INVALID", "%s", msg)
	}
	tag := ""
	if strings.Contains(rt.ref, ":") {
		if !digestPattern.MatchString(rt.ref) {
			return newRegError(http.StatusBadRequest, "DIGEST_INVALID", "Invalid digest '%s'", rt.ref)
		}
		if rt.ref != p.digest {
			return newRegError(http.StatusBadRequest, "DIGEST_INVALID",
				"The provided digest %s does not match the digest of the manifest %s", rt.ref, p.digest)
		}
	} else {
		if !ociTagPattern.MatchString(rt.ref) {
			return newRegError(http.StatusBadRequest, "TAG_INVALID", "Invalid tag '%s'", rt.ref)
		}
		tag = rt.ref
	}
	res := rg.putManifest(rt.repo, p, tag, rg.s.now())
	switch res.failure {
	case putRepoNotFound:
		return newRegError(http.StatusNotFound, "NAME_UNKNOWN",
			"The repository with name '%s' does not exist in the registry with id '%s'", rt.repo, rg.id.Account)
	case putBlobsMissing:
		return newRegError(http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN",
			"The manifest references blobs that do not exist in the repository: %s", strings.Join(res.missing, ", "))
	case putChildrenMissing:
		return newRegError(http.StatusBadRequest, "MANIFEST_UNKNOWN",
			"The index references manifests that do not exist in the repository: %s", strings.Join(res.missing, ", "))
	case putTagImmutable:
		return newRegError(http.StatusBadRequest, "TAG_INVALID",
			"The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the repository is immutable.", tag, rt.repo)
	}
	if res.changed {
		rg.s.repl.onPush(rg, rt.repo, p.digest, tag)
	}
	h := w.Header()
	if s := subjectOf(p.body); s != "" { // the distribution spec's MUST for registries with the referrers API
		h.Set("OCI-Subject", s)
	}
	h.Set("Location", "/v2/"+rt.repo+"/manifests/"+p.digest)
	h.Set("Docker-Content-Digest", p.digest)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (rg *registry) deleteManifest(w http.ResponseWriter, rt route) *regError {
	id := ImageIdentifier{ImageTag: rt.ref}
	if strings.Contains(rt.ref, ":") {
		id = ImageIdentifier{ImageDigest: rt.ref}
	}
	_, code, reason := rg.deleteImage(rt.repo, id)
	switch code {
	case "":
		w.WriteHeader(http.StatusAccepted)
		return nil
	case "ImageNotFound":
		return newRegError(http.StatusNotFound, "MANIFEST_UNKNOWN", "Requested image not found")
	}
	return newRegError(http.StatusBadRequest, "UNSUPPORTED", "%s", reason)
}

// serveTags is GET /v2/<name>/tags/list with the spec's n/last pagination.
func (rg *registry) serveTags(w http.ResponseWriter, r *http.Request, rt route) *regError {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return newRegError(http.StatusMethodNotAllowed, "UNSUPPORTED", "The operation is unsupported.")
	}
	rg.mu.RLock()
	tags := []string{}
	if repo, ok := rg.repos[rt.repo]; ok {
		for t := range repo.tags {
			tags = append(tags, t)
		}
	}
	rg.mu.RUnlock()
	sort.Strings(tags)
	q := r.URL.Query()
	if last := q.Get("last"); last != "" {
		i := sort.SearchStrings(tags, last)
		if i < len(tags) && tags[i] == last {
			i++
		}
		tags = tags[i:]
	}
	next := ""
	if ns := q.Get("n"); ns != "" {
		n, err := strconv.Atoi(ns)
		if err != nil || n < 0 {
			return newRegError(http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "Invalid number of results requested")
		}
		if n < len(tags) {
			tags = tags[:n]
			if n > 0 {
				next = "/v2/" + rt.repo + "/tags/list?" + url.Values{"n": {ns}, "last": {tags[n-1]}}.Encode()
			}
		}
	}
	body, _ := json.Marshal(map[string]any{"name": rt.repo, "tags": tags})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if next != "" {
		h.Set("Link", "<"+next+`>; rel="next"`)
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
	return nil
}

package ecr

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// serveBlob is HEAD/GET /v2/<name>/blobs/<digest>: only blobs pushed to (or mounted or
// replicated into) this repository are visible in it, as in ECR.
func (rg *registry) serveBlob(w http.ResponseWriter, r *http.Request, rt route) *regError {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return newRegError(http.StatusMethodNotAllowed, "UNSUPPORTED", "The operation is unsupported.")
	}
	if !digestPattern.MatchString(rt.ref) {
		return newRegError(http.StatusBadRequest, "DIGEST_INVALID", "Invalid digest '%s'", rt.ref)
	}
	if _, ok := rg.repoHasBlob(rt.repo, rt.ref); !ok {
		return newRegError(http.StatusNotFound, "BLOB_UNKNOWN", "Blob %s not found in repository '%s'", rt.ref, rt.repo)
	}
	if r.Method == http.MethodGet {
		// ECR answers a layer GET with a redirect to a pre-signed S3 URL on another host.
		if loc, ok := rg.s.downloads.url(rg.id, rt.ref, rg.s.now()); ok {
			w.Header().Set("Location", loc)
			w.Header().Set("Docker-Content-Digest", rt.ref)
			w.WriteHeader(http.StatusTemporaryRedirect)
			return nil
		}
	}
	f, _, err := rg.store.open(rt.ref)
	if err != nil {
		return newRegError(http.StatusNotFound, "BLOB_UNKNOWN", "Blob %s not found in repository '%s'", rt.ref, rt.repo)
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", rt.ref)
	h.Set("ETag", `"`+rt.ref+`"`)
	// ServeContent answers HEAD and Range requests and streams from disk.
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil
}

// serveUploadStart is POST /v2/<name>/blobs/uploads/: a cross-repository mount (when blob
// mounting is on), a monolithic upload (?digest=), or a new upload session.
func (rg *registry) serveUploadStart(w http.ResponseWriter, r *http.Request, rt route, tok *token) *regError {
	if r.Method != http.MethodPost {
		return newRegError(http.StatusMethodNotAllowed, "UNSUPPORTED", "The operation is unsupported.")
	}
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" && rg.tryMount(rt.repo, mount, q.Get("from"), tok) {
		rg.blobCreated(w, rt.repo, mount)
		return nil
	}
	u, err := rg.store.start(rt.repo, rg.s.now())
	if err != nil {
		return newRegError(http.StatusInternalServerError, "UNKNOWN", "failed to start upload")
	}
	if digest := q.Get("digest"); digest != "" {
		u.mu.Lock()
		defer u.mu.Unlock()
		return rg.complete(w, r, rt.repo, u, digest)
	}
	rg.uploadAccepted(w, rt.repo, u, http.StatusAccepted)
	return nil
}

// tryMount links a blob from another repository of this registry, as ECR's opt-in blob
// mounting does; the caller needs ecr:GetDownloadUrlForLayer on the source repository.
func (rg *registry) tryMount(repo, digest, from string, tok *token) bool {
	if !rg.s.o.BlobMounting || !digestPattern.MatchString(digest) || !repositoryNamePattern.MatchString(from) {
		return false
	}
	if _, ok := rg.repoHasBlob(from, digest); !ok {
		return false
	}
	if rg.authorize(tok.session, "ecr:GetDownloadUrlForLayer", from) != nil {
		return false
	}
	return rg.linkBlob(repo, digest)
}

// serveUpload handles one upload session: PATCH (chunk), PUT (finish), GET (status), DELETE.
func (rg *registry) serveUpload(w http.ResponseWriter, r *http.Request, rt route) *regError {
	u, ok := rg.store.session(rt.repo, rt.ref)
	if !ok {
		return newRegError(http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "Upload %s does not exist", rt.ref)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return newRegError(http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "Upload %s does not exist", rt.ref)
	}
	switch r.Method {
	case http.MethodGet:
		rg.uploadAccepted(w, rt.repo, u, http.StatusNoContent)
		return nil
	case http.MethodDelete:
		rg.store.cancel(u)
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodPatch:
		if cr := r.Header.Get("Content-Range"); cr != "" {
			var start, end int64
			if _, err := fmt.Sscanf(cr, "%d-%d", &start, &end); err != nil || start != u.size || end < start {
				w.Header().Set("Range", uploadRange(u.size))
				w.Header().Set("Location", uploadLocation(rt.repo, u))
				return newRegError(http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID",
					"Content-Range %q does not continue the upload at offset %d", cr, u.size)
			}
		}
		body := bufio.NewReader(r.Body)
		if rerr := rg.checkPart(u, body); rerr != nil {
			return rerr
		}
		if _, err := u.write(body); err != nil {
			rg.store.cancel(u)
			return newRegError(http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "failed to read the layer part")
		}
		// 201, not the spec's 202: ECR's answer to every PATCH.
		rg.uploadAccepted(w, rt.repo, u, http.StatusCreated)
		return nil
	case http.MethodPut:
		return rg.complete(w, r, rt.repo, u, r.URL.Query().Get("digest"))
	}
	return newRegError(http.StatusMethodNotAllowed, "UNSUPPORTED", "The operation is unsupported.")
}

// complete appends the request body to u and commits it as digest (caller holds u.mu).
func (rg *registry) complete(w http.ResponseWriter, r *http.Request, repo string, u *upload, digest string) *regError {
	if !digestPattern.MatchString(digest) {
		rg.store.cancel(u)
		return newRegError(http.StatusBadRequest, "DIGEST_INVALID", "Invalid or missing digest '%s' (sha256 only)", digest)
	}
	body := bufio.NewReader(r.Body)
	if rerr := rg.checkPart(u, body); rerr != nil {
		return rerr
	}
	if _, err := u.write(body); err != nil {
		rg.store.cancel(u)
		return newRegError(http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "failed to read the layer")
	}
	if u.size == 0 {
		// ECR's CompleteLayerUpload refuses an upload without parts (EmptyUploadException).
		rg.store.cancel(u)
		return newRegError(http.StatusBadRequest, "BLOB_UPLOAD_INVALID",
			"The upload with id '%s' in the repository with name '%s' in registry with id '%s' cannot be completed because it does not have any parts",
			u.id, repo, rg.id.Account)
	}
	if _, err := rg.store.finish(u, digest); err != nil {
		if errors.Is(err, errDigestMismatch) {
			return newRegError(http.StatusBadRequest, "DIGEST_INVALID", "The uploaded content does not match digest %s", digest)
		}
		return newRegError(http.StatusInternalServerError, "UNKNOWN", "failed to store the layer")
	}
	if !rg.linkBlob(repo, digest) {
		return newRegError(http.StatusNotFound, "NAME_UNKNOWN",
			"The repository with name '%s' does not exist in the registry with id '%s'", repo, rg.id.Account)
	}
	rg.blobCreated(w, repo, digest)
	return nil
}

// minPartSize is ECR's smallest layer part but the last (S3 multipart's 5 MiB).
const minPartSize = 5 << 20

// checkPart refuses a part (a PATCH, or a PUT with a body) that follows a part under minPartSize:
// that part turned out not to be the last, which ECR refuses (LayerPartTooSmallException).
func (rg *registry) checkPart(u *upload, body *bufio.Reader) *regError {
	if u.parts == 0 || u.last >= minPartSize {
		return nil
	}
	if _, err := body.Peek(1); err != nil {
		return nil // no more data: the small part was the last
	}
	return newRegError(http.StatusBadRequest, "BLOB_UPLOAD_INVALID",
		"LayerPartTooSmallException: All layer parts except the last part should be at least 5MB (part %d was %d bytes)", u.parts, u.last)
}

func (rg *registry) blobCreated(w http.ResponseWriter, repo, digest string) {
	h := w.Header()
	h.Set("Location", "/v2/"+repo+"/blobs/"+digest)
	h.Set("Docker-Content-Digest", digest)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func (rg *registry) uploadAccepted(w http.ResponseWriter, repo string, u *upload, status int) {
	h := w.Header()
	h.Set("Location", uploadLocation(repo, u))
	h.Set("Range", uploadRange(u.size))
	h.Set("Docker-Upload-UUID", u.id)
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

func uploadLocation(repo string, u *upload) string { return "/v2/" + repo + "/blobs/uploads/" + u.id }

// uploadRange is the Range header of an upload holding n bytes ("0-0" when empty, as
// distribution answers).
func uploadRange(n int64) string {
	if n == 0 {
		return "0-0"
	}
	return "0-" + strconv.FormatInt(n-1, 10)
}

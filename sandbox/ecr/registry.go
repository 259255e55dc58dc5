package ecr

import (
	"encoding/base64"
	"io"
	"net/http"
	"strings"

	"github.com/ecrpush/ecrpush/sandbox/world"
)

// route is a parsed distribution-API path.
type route struct {
	kind   string // "base", "catalog", "tags", "manifest", "blob", "uploads", "upload"
	repo   string
	ref    string // manifest reference, blob digest or upload id
	action string // the IAM action the request needs
}

// parseRoute classifies a /v2/ path; segments are matched from the end because repository
// names contain slashes.
func parseRoute(r *http.Request) (route, bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2")
	if !ok {
		return route{}, false
	}
	if rest == "" || rest == "/" {
		return route{kind: "base"}, true
	}
	rest = strings.TrimPrefix(rest, "/")
	if rest == "_catalog" {
		return route{kind: "catalog"}, true
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	name := func(k int) string { return strings.Join(segs[:n-k], "/") }
	switch {
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		return route{kind: "tags", repo: name(2), action: "ecr:ListImages"}, true
	case n >= 3 && segs[n-2] == "manifests":
		rt := route{kind: "manifest", repo: name(2), ref: segs[n-1]}
		switch r.Method {
		case http.MethodPut:
			rt.action = "ecr:PutImage"
		case http.MethodDelete:
			rt.action = "ecr:BatchDeleteImage"
		default:
			rt.action = "ecr:BatchGetImage"
		}
		return rt, true
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads" && segs[n-1] == "":
		return route{kind: "uploads", repo: name(3), action: "ecr:InitiateLayerUpload"}, true
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] == "uploads":
		return route{kind: "uploads", repo: name(2), action: "ecr:InitiateLayerUpload"}, true
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		action := "ecr:UploadLayerPart"
		if r.Method == http.MethodPut {
			action = "ecr:CompleteLayerUpload"
		}
		return route{kind: "upload", repo: name(3), ref: segs[n-1], action: action}, true
	case n >= 3 && segs[n-2] == "referrers": // OCI 1.1 referrers (referrers.go)
		return route{kind: "referrers", repo: name(2), ref: segs[n-1], action: "ecr:BatchGetImage"}, true
	case n >= 3 && segs[n-2] == "blobs":
		action := "ecr:GetDownloadUrlForLayer"
		if r.Method == http.MethodHead {
			action = "ecr:BatchCheckLayerAvailability"
		}
		return route{kind: "blob", repo: name(2), ref: segs[n-1], action: action}, true
	}
	return route{}, false
}

// ServeHTTP is the registry: ECR's authentication and authorization in front of an OCI
// distribution implementation whose repositories are the ECR repositories of this registry.
func (rg *registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	sw := &statusWriter{ResponseWriter: w}
	if rerr := rg.serve(sw, r); rerr != nil {
		if rerr.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+rg.proxyEndpoint()+`/",service="ecr.amazonaws.com"`)
		}
		rerr.write(sw, r)
	}
	rg.s.log.Debug("ecr registry", "registry", rg.id.String(), "method", r.Method, "path", r.URL.Path, "status", sw.status)
}

func (rg *registry) serve(w http.ResponseWriter, r *http.Request) *regError {
	rt, ok := parseRoute(r)
	if !ok {
		return newRegError(http.StatusNotFound, "NOT_FOUND", "Requested resource not found")
	}
	tok, rerr := rg.authenticate(r)
	if rerr != nil {
		return rerr
	}
	switch rt.kind {
	case "base":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte("{}"))
		}
		return nil
	case "catalog":
		return newRegError(http.StatusMethodNotAllowed, "UNSUPPORTED", "The operation is unsupported.")
	}
	if !repositoryNamePattern.MatchString(rt.repo) || len(rt.repo) > 256 {
		return newRegError(http.StatusBadRequest, "NAME_INVALID", "Invalid repository name '%s'", rt.repo)
	}
	if rerr := rg.authorize(tok.session, rt.action, rt.repo); rerr != nil {
		return rerr
	}
	if !rg.hasRepo(rt.repo) {
		return newRegError(http.StatusNotFound, "NAME_UNKNOWN",
			"The repository with name '%s' does not exist in the registry with id '%s'", rt.repo, rg.id.Account)
	}
	switch rt.kind {
	case "tags":
		return rg.serveTags(w, r, rt)
	case "manifest":
		return rg.serveManifest(w, r, rt)
	case "blob":
		return rg.serveBlob(w, r, rt)
	case "uploads":
		return rg.serveUploadStart(w, r, rt, tok)
	case "referrers":
		return rg.serveReferrers(w, r, rt)
	default:
		return rg.serveUpload(w, r, rt)
	}
}

// authenticate checks "Authorization: Basic base64(AWS:<password>)" against issued tokens.
// A password issued in another region is unknown here, as ECR tokens are regional.
func (rg *registry) authenticate(r *http.Request) (*token, *regError) {
	notAuthorized := newRegError(http.StatusUnauthorized, "DENIED", "Not Authorized")
	h := r.Header.Get("Authorization")
	enc, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return nil, notAuthorized
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return nil, notAuthorized
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user != "AWS" {
		return nil, notAuthorized
	}
	tok, ok := rg.s.tokens.lookup(pass)
	if !ok || tok.region != rg.id.Region {
		return nil, notAuthorized
	}
	if !rg.s.now().Before(tok.expires) {
		return nil, newRegError(http.StatusUnauthorized, "DENIED", "Your authorization token has expired. Reauthenticate and try again.")
	}
	return tok, nil
}

// authorize applies the caller's identity policy to the operation; another account's
// registry is always denied (the sandbox has no repository policies to grant it).
func (rg *registry) authorize(sess *world.Session, action, repo string) *regError {
	resource := rg.repoARN(repo)
	if !rg.s.allowed(sess, action, resource, rg.id.Region) {
		return newRegError(http.StatusForbidden, "DENIED", "%s", accessDenied(sess.ARN(), action, resource, false))
	}
	if sess.Account != rg.id.Account {
		return newRegError(http.StatusForbidden, "DENIED", "%s", accessDenied(sess.ARN(), action, resource, true))
	}
	return nil
}

// statusWriter remembers the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// ReadFrom keeps the server's sendfile path for large blobs.
func (s *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return io.Copy(s.ResponseWriter, r)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

package oidc

import (
	"net/http"
	"strings"
)

const (
	metadataPrefix = "/computeMetadata/v1/"
	accessTokenTTL = 3599 // seconds, what a freshly refreshed metadata token reports
)

// MetadataHandler serves the GCE metadata server. Like the real one it insists on
// "Metadata-Flavor: Google" for every /computeMetadata/v1/ request (the header a browser or
// SSRF cannot add), refuses proxied requests, and stamps every response with the flavor
// header, which is what client libraries probe at "/" to detect GCE.
func (g *Google) MetadataHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Metadata-Flavor", "Google")
		w.Header().Set("Server", "Metadata Server for VM")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			metadataText(w, http.StatusMethodNotAllowed, "Method not allowed\n")
			return
		}
		if r.URL.Path == "/" {
			metadataText(w, http.StatusOK, "computeMetadata/\n")
			return
		}
		if r.Header.Get("X-Forwarded-For") != "" {
			metadataText(w, http.StatusForbidden, "Your client does not have permission to get URL "+r.URL.Path+" from this server. Request included X-Forwarded-For header.\n")
			return
		}
		if r.Header.Get("Metadata-Flavor") != "Google" {
			metadataText(w, http.StatusForbidden, "Your client does not have permission to get URL "+r.URL.Path+" from this server. Missing Metadata-Flavor:Google header.\n")
			return
		}
		if r.URL.Path == "/computeMetadata/" || r.URL.Path == "/computeMetadata/v1" {
			metadataText(w, http.StatusOK, "v1/\n")
			return
		}
		p, ok := strings.CutPrefix(r.URL.Path, metadataPrefix)
		if !ok {
			metadataNotFound(w)
			return
		}
		g.serveMetadata(w, r, p)
	})
}

func (g *Google) serveMetadata(w http.ResponseWriter, r *http.Request, p string) {
	switch p {
	case "":
		metadataText(w, http.StatusOK, "instance/\nproject/\n")
	case "project/project-id":
		metadataText(w, http.StatusOK, g.projectID)
	case "project/numeric-project-id":
		metadataText(w, http.StatusOK, g.numericProjectID)
	case "instance/id":
		metadataText(w, http.StatusOK, g.instanceID)
	case "instance/name":
		metadataText(w, http.StatusOK, g.instanceName)
	case "instance/hostname":
		metadataText(w, http.StatusOK, g.instanceName+"."+g.zone+".c."+g.projectID+".internal")
	case "instance/zone":
		metadataText(w, http.StatusOK, "projects/"+g.numericProjectID+"/zones/"+g.zone)
	case "instance/service-accounts", "instance/service-accounts/":
		metadataText(w, http.StatusOK, "default/\n"+g.email+"/\n")
	default:
		rest, ok := strings.CutPrefix(p, "instance/service-accounts/")
		if !ok {
			metadataNotFound(w)
			return
		}
		account, item, _ := strings.Cut(rest, "/")
		if account != "default" && account != g.email {
			metadataNotFound(w)
			return
		}
		g.serveServiceAccount(w, r, item)
	}
}

func (g *Google) serveServiceAccount(w http.ResponseWriter, r *http.Request, item string) {
	switch item {
	case "":
		metadataText(w, http.StatusOK, "aliases\nemail\nidentity\nscopes\ntoken\n")
	case "email":
		metadataText(w, http.StatusOK, g.email)
	case "aliases":
		metadataText(w, http.StatusOK, "default\n")
	case "scopes":
		metadataText(w, http.StatusOK, "https://www.googleapis.com/auth/cloud-platform\n")
	case "token":
		writeJSON(w, http.StatusOK, map[string]any{
			"access_token": g.accessToken, "expires_in": accessTokenTTL, "token_type": "Bearer",
		})
	case "identity":
		g.serveIdentity(w, r)
	default:
		metadataNotFound(w)
	}
}

func (g *Google) serveIdentity(w http.ResponseWriter, r *http.Request) {
	if disabled, _ := g.flags(); disabled {
		metadataNotFound(w)
		return
	}
	q := r.URL.Query()
	audience := q.Get("audience")
	if audience == "" {
		metadataText(w, http.StatusBadRequest, "non-empty audience parameter required\n")
		return
	}
	var full bool
	switch q.Get("format") {
	case "", "standard":
	case "full":
		full = true
	default:
		metadataText(w, http.StatusBadRequest, "format must be one of: standard, full\n")
		return
	}
	tok, err := g.IDToken(audience, full)
	if err != nil {
		metadataText(w, http.StatusInternalServerError, "internal error\n")
		return
	}
	metadataText(w, http.StatusOK, tok)
}

func metadataText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/text")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func metadataNotFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte("<!DOCTYPE html>\n<html lang=en>\n<title>Error 404 (Not Found)!!1</title>\n<p><b>404.</b> That’s an error.\n<p>The requested URL was not found on this server.\n</html>\n"))
}

package oidc

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

const (
	generateIDTokenVerb = ":generateIdToken"
	getOpenIDTokenPerm  = "iam.serviceAccounts.getOpenIdToken"
	maxIAMBody          = 64 << 10
)

type googleError struct {
	Error googleErrorBody `json:"error"`
}

type googleErrorBody struct {
	Code    int              `json:"code"`
	Message string           `json:"message"`
	Status  string           `json:"status"`
	Details []map[string]any `json:"details,omitempty"`
}

func writeGoogleError(w http.ResponseWriter, code int, status, message string, details ...map[string]any) {
	writeJSON(w, code, googleError{Error: googleErrorBody{Code: code, Message: message, Status: status, Details: details}})
}

// IAMCredentialsHandler serves POST /v1/projects/-/serviceAccounts/{email-or-id}:generateIdToken
// of iamcredentials.googleapis.com. The caller authenticates with the metadata access token.
// Checks run in Google's order: authentication, then the request's shape, then permission,
// and an unknown service account looks exactly like a denied one.
func (g *Google) IAMCredentialsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, generateAccessTokenVerb) {
			if h := g.accessTokens(); h != nil {
				h.ServeHTTP(w, r)
				return
			}
		}
		i := strings.Index(r.URL.Path, "/v1/projects/")
		if i < 0 || !strings.HasSuffix(r.URL.Path, generateIDTokenVerb) {
			writeGoogleError(w, http.StatusNotFound, "NOT_FOUND", "The requested URL was not found on this server.")
			return
		}
		if r.Method != http.MethodPost {
			writeGoogleError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Method "+r.Method+" is not allowed for "+generateIDTokenVerb+".")
			return
		}
		if !g.bearerOK(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
			writeGoogleError(w, http.StatusUnauthorized, "UNAUTHENTICATED",
				"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
			return
		}
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path[i:], "/v1/"), generateIDTokenVerb)
		project, account, ok := strings.Cut(strings.TrimPrefix(name, "projects/"), "/serviceAccounts/")
		if !ok || project == "" || account == "" || strings.Contains(account, "/") {
			writeGoogleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid resource name "+name+".")
			return
		}
		var req struct {
			Audience     string   `json:"audience"`
			IncludeEmail bool     `json:"includeEmail"`
			Delegates    []string `json:"delegates"`
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxIAMBody))
		if err == nil {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			err = dec.Decode(&req)
		}
		if err != nil {
			writeGoogleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.")
			return
		}
		if req.Audience == "" {
			writeGoogleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid value for \"audience\": must not be empty.")
			return
		}
		_, allowed := g.flags()
		known := (project == "-" || project == g.projectID) && (account == g.email || account == g.uniqueID)
		if !known || !allowed || len(req.Delegates) > 0 {
			writeGoogleError(w, http.StatusForbidden, "PERMISSION_DENIED",
				"Permission '"+getOpenIDTokenPerm+"' denied on resource (or it may not exist).",
				map[string]any{
					"@type":    "type.googleapis.com/google.rpc.ErrorInfo",
					"reason":   "IAM_PERMISSION_DENIED",
					"domain":   "iam.googleapis.com",
					"metadata": map[string]string{"permission": getOpenIDTokenPerm},
				})
			return
		}
		tok, err := g.mint(req.Audience, req.IncludeEmail, false)
		if err != nil {
			writeGoogleError(w, http.StatusInternalServerError, "INTERNAL", "Internal error encountered.")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"token": tok})
	})
}

// SetAccessTokenHandler makes the IAM Credentials endpoint answer generateAccessToken with h (a
// GoogleSTS's GenerateAccessTokenHandler, for federated identities impersonating a service account).
func (g *Google) SetAccessTokenHandler(h http.Handler) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.generateAccessToken = h
}

func (g *Google) accessTokens() http.Handler {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.generateAccessToken
}

func (g *Google) bearerOK(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(g.accessToken)) == 1
}

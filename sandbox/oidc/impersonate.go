package oidc

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	generateAccessTokenVerb = ":generateAccessToken"
	getAccessTokenPerm      = "iam.serviceAccounts.getAccessToken"
	maxImpersonation        = 12 * time.Hour
)

// AllowImpersonation lets every federated identity of this STS impersonate the service account email
// (as granting the pool's principals roles/iam.workloadIdentityUser on it does).
func (g *GoogleSTS) AllowImpersonation(email string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.impersonable == nil {
		g.impersonable = map[string]bool{}
	}
	g.impersonable[strings.ToLower(email)] = true
}

// GenerateAccessTokenHandler serves IAM Credentials'
// POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken for federated access tokens (the
// service_account_impersonation_url of a workload identity federation configuration): the bearer must
// be a live token of this STS, scope is required, lifetime defaults to 3600s (at most 12h), and the
// answer is {"accessToken", "expireTime"} — a token the registry check accepts like the federated one.
// (Shapes: the IAM Credentials REST reference; golang.org/x/oauth2's impersonate client.)
func (g *GoogleSTS) GenerateAccessTokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := strings.Index(r.URL.Path, "/v1/projects/")
		if i < 0 || !strings.HasSuffix(r.URL.Path, generateAccessTokenVerb) {
			writeGoogleError(w, http.StatusNotFound, "NOT_FOUND", "The requested URL was not found on this server.")
			return
		}
		if r.Method != http.MethodPost {
			writeGoogleError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Method "+r.Method+" is not allowed for "+generateAccessTokenVerb+".")
			return
		}
		scheme, bearer, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		src, live := g.Check(strings.TrimSpace(bearer))
		if !strings.EqualFold(scheme, "bearer") || !live {
			w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
			writeGoogleError(w, http.StatusUnauthorized, "UNAUTHENTICATED",
				"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
			return
		}
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path[i:], "/v1/"), generateAccessTokenVerb)
		_, account, ok := strings.Cut(strings.TrimPrefix(name, "projects/"), "/serviceAccounts/")
		if !ok || account == "" || strings.Contains(account, "/") {
			writeGoogleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid resource name "+name+".")
			return
		}
		var req struct {
			Delegates []string `json:"delegates"`
			Scope     []string `json:"scope"`
			Lifetime  string   `json:"lifetime"`
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxIAMBody))
		if err != nil || json.Unmarshal(body, &req) != nil {
			writeGoogleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.")
			return
		}
		if len(req.Scope) == 0 {
			writeGoogleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Scope required.")
			return
		}
		lifetime := time.Hour
		if req.Lifetime != "" {
			d, err := time.ParseDuration(req.Lifetime)
			if err != nil || !strings.HasSuffix(req.Lifetime, "s") || d <= 0 || d > maxImpersonation {
				writeGoogleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid value at 'lifetime' ("+req.Lifetime+").")
				return
			}
			lifetime = d
		}
		g.mu.Lock()
		allowed := g.impersonable[strings.ToLower(account)]
		g.mu.Unlock()
		if !allowed || len(req.Delegates) > 0 {
			writeGoogleError(w, http.StatusForbidden, "PERMISSION_DENIED",
				"Permission '"+getAccessTokenPerm+"' denied on resource (or it may not exist).",
				map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
					"domain": "iam.googleapis.com", "metadata": map[string]string{"permission": getAccessTokenPerm}})
			return
		}
		tok := "ya29.c.sandbox-" + randomHex(40)
		g.mu.Lock()
		exp := g.now().Add(lifetime)
		g.tokens[tok] = FederatedToken{Subject: "serviceAccount:" + account, Account: src.Account, Provider: src.Provider, Expires: exp}
		g.mu.Unlock()
		g.issued.add(tok)
		writeJSON(w, http.StatusOK, map[string]string{"accessToken": tok, "expireTime": exp.UTC().Format(time.RFC3339)})
	})
}

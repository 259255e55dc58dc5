package oidc

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// idTokenPath is where the GitHub token service answers. Real runners get a long
// pipelines URL ending in ".../idtoken?api-version=2.0"; clients only ever append
// "&audience=X", so the shape of the path before it does not matter to them.
const idTokenPath = "/_apis/idtoken"

// GitHub's token timing as observed in issued tokens: nbf is set before iat to absorb
// clock skew, and exp is iat plus the lifetime.
const (
	defaultGitHubLifetime = 5 * time.Minute
	githubNotBeforeSlack  = 5 * time.Minute
)

// GitHubContext is the workflow run a GitHub token describes. Empty fields get defaults
// (see NewGitHub); HeadRef, BaseRef and RunNumber were added to the contract for
// pull_request tokens and run_number.
type GitHubContext struct {
	Repository, Ref, SHA, Actor, Workflow, EventName, Environment, RunID, RunAttempt, JobWorkflowRef string

	HeadRef, BaseRef string // pull_request only (default "feature" and "main")
	RunNumber        string // default "1"
}

// GitHub is the Actions ID-token service that ACTIONS_ID_TOKEN_REQUEST_URL points at: a GET
// with the job's request token as bearer returns a JWT signed by the GitHub issuer.
type GitHub struct {
	iss          *Issuer
	requestToken string
	issued       ledger

	mu       sync.Mutex
	ctx      GitHubContext
	lifetime time.Duration
}

// NewGitHub returns a token service signing with iss for the run described by ctx, accepting
// requestToken as bearer. An empty requestToken accepts nobody.
func NewGitHub(iss *Issuer, requestToken string, ctx GitHubContext) *GitHub {
	return &GitHub{iss: iss, requestToken: requestToken, ctx: ctx, lifetime: defaultGitHubLifetime}
}

// SetContext replaces the run the tokens describe (tests switch repository, branch, event).
func (g *GitHub) SetContext(ctx GitHubContext) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ctx = ctx
}

// Context returns the run the tokens describe, as set (defaults not applied).
func (g *GitHub) Context() GitHubContext {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ctx
}

// SetLifetime sets how long after iat tokens expire (default 5 minutes); d ≤ 0 restores it.
func (g *GitHub) SetLifetime(d time.Duration) {
	if d <= 0 {
		d = defaultGitHubLifetime
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lifetime = d
}

// RequestPath is the path and query of ACTIONS_ID_TOKEN_REQUEST_URL relative to the server.
func (g *GitHub) RequestPath() string { return idTokenPath + "?api-version=2.0" }

// Issued returns every token this service has minted (the newest maxIssued), for leak scans.
func (g *GitHub) Issued() []string { return g.issued.list() }

// Token mints a token for audience ("" means the default, https://github.com/OWNER).
func (g *GitHub) Token(audience string) (string, error) {
	g.mu.Lock()
	c, lifetime := g.ctx, g.lifetime
	g.mu.Unlock()
	claims, err := githubClaims(withGitHubDefaults(c), audience, time.Now(), lifetime)
	if err != nil {
		return "", err
	}
	tok, err := g.iss.Sign(claims)
	if err != nil {
		return "", err
	}
	g.issued.add(tok)
	return tok, nil
}

func withGitHubDefaults(c GitHubContext) GitHubContext {
	owner, _, _ := strings.Cut(c.Repository, "/")
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&c.EventName, "push")
	if c.EventName == "pull_request" {
		def(&c.Ref, "refs/pull/1/merge")
		def(&c.HeadRef, "feature")
		def(&c.BaseRef, "main")
	}
	def(&c.Ref, "refs/heads/main")
	sum := sha1.Sum([]byte(c.Repository + "@" + c.Ref))
	def(&c.SHA, hex.EncodeToString(sum[:]))
	def(&c.Actor, owner)
	def(&c.Workflow, "CI")
	def(&c.RunID, stableNumber("run:"+c.Repository, 10))
	def(&c.RunAttempt, "1")
	def(&c.RunNumber, "1")
	def(&c.JobWorkflowRef, c.Repository+"/.github/workflows/"+workflowFile(c.Workflow)+"@"+c.Ref)
	return c
}

// workflowFile turns a workflow name into a plausible file name ("Release CI" → "release-ci.yml").
func workflowFile(name string) string {
	f := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, name)
	return f + ".yml"
}

// githubSubject follows GitHub's default subject template: environment wins over
// pull_request, which wins over the ref.
func githubSubject(c GitHubContext) string {
	switch {
	case c.Environment != "":
		return "repo:" + c.Repository + ":environment:" + c.Environment
	case c.EventName == "pull_request":
		return "repo:" + c.Repository + ":pull_request"
	default:
		return "repo:" + c.Repository + ":ref:" + c.Ref
	}
}

func refType(ref string) string {
	if strings.HasPrefix(ref, "refs/tags/") {
		return "tag"
	}
	return "branch"
}

// githubClaims lays out claims as GitHub does: every value a string except the times, head_ref
// and base_ref always present (empty outside pull_request), environment only when set.
func githubClaims(c GitHubContext, audience string, now time.Time, lifetime time.Duration) (map[string]any, error) {
	owner, name, ok := strings.Cut(c.Repository, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("oidc: github: repository %q must look like OWNER/REPO", c.Repository)
	}
	if audience == "" {
		audience = "https://github.com/" + owner
	}
	claims := map[string]any{
		"jti":                   randomUUID(),
		"sub":                   githubSubject(c),
		"aud":                   audience,
		"ref":                   c.Ref,
		"sha":                   c.SHA,
		"repository":            c.Repository,
		"repository_owner":      owner,
		"repository_owner_id":   stableNumber("owner:"+owner, 8),
		"repository_id":         stableNumber("repo:"+c.Repository, 9),
		"repository_visibility": "private",
		"run_id":                c.RunID,
		"run_number":            c.RunNumber,
		"run_attempt":           c.RunAttempt,
		"runner_environment":    "github-hosted",
		"actor":                 c.Actor,
		"actor_id":              stableNumber("actor:"+c.Actor, 8),
		"workflow":              c.Workflow,
		"workflow_ref":          c.JobWorkflowRef,
		"workflow_sha":          c.SHA,
		"job_workflow_ref":      c.JobWorkflowRef,
		"job_workflow_sha":      c.SHA,
		"head_ref":              c.HeadRef,
		"base_ref":              c.BaseRef,
		"event_name":            c.EventName,
		"ref_type":              refType(c.Ref),
		"ref_protected":         "false",
		"iat":                   now.Unix(),
		"nbf":                   now.Add(-githubNotBeforeSlack).Unix(),
		"exp":                   now.Add(lifetime).Unix(),
	}
	if c.Environment != "" {
		claims["environment"] = c.Environment
	}
	return claims, nil
}

type githubTokenResponse struct {
	Count int    `json:"count"`
	Value string `json:"value"`
}

// Handler serves GET .../_apis/idtoken?api-version=2.0[&audience=X].
func (g *GitHub) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, idTokenPath) {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
			return
		}
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "method not allowed"})
			return
		}
		if !g.authorized(r) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
			return
		}
		q := r.URL.Query()
		if q.Get("api-version") == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "No api-version was supplied for the request."})
			return
		}
		tok, err := g.Token(q.Get("audience"))
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, githubTokenResponse{Count: len(tok), Value: tok})
	})
}

func (g *GitHub) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || g.requestToken == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(g.requestToken)) == 1
}

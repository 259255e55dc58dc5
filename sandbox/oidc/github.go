package oidc

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
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

	HeadRef, BaseRef string // pull_request and pull_request_target (default "feature" and "main")
	RunNumber        string // default "1"

	// OwnerID and RepositoryID are repository_owner_id and repository_id (default: stable numbers
	// derived from the names).
	OwnerID, RepositoryID string
	// ImmutableSubject gives the default subject the immutable form repo:OWNER@OWNER_ID/REPO@REPO_ID:…,
	// as github.com does for repositories created or renamed since 15 July 2026 or opted in. GitHub
	// Enterprise Server issuers (…/_services/token) never do.
	ImmutableSubject bool
	// SubjectTemplate is the repository's custom subject template (include_claim_keys); nil is GitHub's
	// default template.
	SubjectTemplate []string
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
	faults   githubFaults
}

// githubFaults makes the token service answer as GitHub's does when a job is not yet marked in
// progress: 403 "Can't issue ID_TOKEN for job in 'Pending' state." (a race GitHub's runner and
// toolkit threads describe; retrying a second later succeeds).
type githubFaults struct {
	pendingRate float64
	rng         *rand.Rand
	pending     int // answered so far
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

// SetPendingRate makes a fraction of token requests fail with GitHub's 403 "Can't issue ID_TOKEN for
// job in 'Pending' state.", drawn from seed so a run replays; rate ≤ 0 turns it off.
func (g *GitHub) SetPendingRate(rate float64, seed int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.faults = githubFaults{pendingRate: rate, rng: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))}
}

// Pending returns how many requests were answered with the Pending 403.
func (g *GitHub) Pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.faults.pending
}

func (g *GitHub) drawPending() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.faults.pendingRate <= 0 || g.faults.rng.Float64() >= g.faults.pendingRate {
		return false
	}
	g.faults.pending++
	return true
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
	claims, err := githubClaims(withGitHubDefaults(c), audience, time.Now(), lifetime, isServerIssuer(g.iss.URL()))
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
	}
	if c.EventName == "pull_request" || c.EventName == "pull_request_target" {
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
	def(&c.OwnerID, stableNumber("owner:"+owner, 8))
	def(&c.RepositoryID, stableNumber("repo:"+c.Repository, 9))
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

// subjectValue writes a claim value into a subject as GitHub does: "Any : within the metadata values
// will be replaced with %3A in the subject claim" (OpenID Connect reference, "Filtering for metadata
// containing :").
func subjectValue(v string) string { return strings.ReplaceAll(v, ":", "%3A") }

// githubContext is the context part of the default subject: environment wins over pull_request,
// which wins over the ref. Every other event (pull_request_target, workflow_run, issue_comment
// included) carries its ref.
func githubContext(c GitHubContext) string {
	switch {
	case c.Environment != "":
		return "environment:" + subjectValue(c.Environment)
	case c.EventName == "pull_request":
		return "pull_request"
	default:
		return "ref:" + c.Ref
	}
}

// githubRepo is the repository part of a subject: OWNER/REPO, or OWNER@OWNER_ID/REPO@REPO_ID on
// immutable subject claims (never on GitHub Enterprise Server).
func githubRepo(c GitHubContext, server bool) string {
	if !c.ImmutableSubject || server {
		return c.Repository
	}
	owner, name, _ := strings.Cut(c.Repository, "/")
	return owner + "@" + c.OwnerID + "/" + name + "@" + c.RepositoryID
}

// githubSubject follows GitHub's default template, or the custom one (include_claim_keys): each key
// in order as KEY:VALUE of the token's claim, where "repo" stands for repo:REPO and "context" for the
// context part.
func githubSubject(c GitHubContext, claims map[string]any, server bool) string {
	if c.SubjectTemplate == nil {
		return "repo:" + githubRepo(c, server) + ":" + githubContext(c)
	}
	parts := make([]string, 0, len(c.SubjectTemplate))
	for _, k := range c.SubjectTemplate {
		switch k {
		case "repo":
			parts = append(parts, "repo:"+githubRepo(c, server))
		case "context":
			parts = append(parts, githubContext(c))
		default:
			v, _ := claims[k].(string)
			parts = append(parts, k+":"+subjectValue(v))
		}
	}
	return strings.Join(parts, ":")
}

// isServerIssuer reports whether an issuer URL is a GitHub Enterprise Server's (https://HOST/_services/token).
func isServerIssuer(iss string) bool {
	return strings.HasSuffix(strings.TrimSuffix(iss, "/"), "/_services/token")
}

func refType(ref string) string {
	if strings.HasPrefix(ref, "refs/tags/") {
		return "tag"
	}
	return "branch"
}

// githubClaims lays out claims as GitHub does: every value a string except the times, head_ref
// and base_ref always present (empty outside pull_request), environment only when set.
func githubClaims(c GitHubContext, audience string, now time.Time, lifetime time.Duration, server bool) (map[string]any, error) {
	owner, name, ok := strings.Cut(c.Repository, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("oidc: github: repository %q must look like OWNER/REPO", c.Repository)
	}
	if audience == "" {
		audience = "https://github.com/" + owner
	}
	claims := map[string]any{
		"jti":                   randomUUID(),
		"aud":                   audience,
		"ref":                   c.Ref,
		"sha":                   c.SHA,
		"repository":            c.Repository,
		"repository_owner":      owner,
		"repository_owner_id":   c.OwnerID,
		"repository_id":         c.RepositoryID,
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
	claims["sub"] = githubSubject(c, claims, server)
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
		if g.drawPending() {
			// The envelope is the Azure DevOps-style error the runner's token service answers with
			// (assumed); the message is GitHub's, verbatim.
			writeJSON(w, http.StatusForbidden, map[string]any{"$id": "1", "innerException": nil,
				"message": "Can't issue ID_TOKEN for job in 'Pending' state.", "typeName": "GitHub.Services.WebApi.VssServiceException, GitHub.Services.WebApi",
				"typeKey": "VssServiceException", "errorCode": 0, "eventId": 3000})
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

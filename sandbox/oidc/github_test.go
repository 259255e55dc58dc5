package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-githubactions"
)

func newTestGitHub(t *testing.T, ctx GitHubContext) (*GitHub, *testIssuer, *httptest.Server) {
	t.Helper()
	ti := newTestIssuer(t)
	gh := NewGitHub(ti.Issuer, "request-token-123", ctx)
	srv := httptest.NewServer(gh.Handler())
	t.Cleanup(srv.Close)
	return gh, ti, srv
}

func TestGitHubSubjects(t *testing.T) {
	gh, _, _ := newTestGitHub(t, GitHubContext{})
	v := &Verifier{}
	tests := []struct {
		name string
		ctx  GitHubContext
		sub  string
		want map[string]any
	}{
		{"branch push", GitHubContext{Repository: "octo-org/app", Ref: "refs/heads/main"},
			"repo:octo-org/app:ref:refs/heads/main",
			map[string]any{"ref_type": "branch", "event_name": "push", "head_ref": "", "base_ref": ""}},
		{"tag", GitHubContext{Repository: "octo-org/app", Ref: "refs/tags/v1.2.3"},
			"repo:octo-org/app:ref:refs/tags/v1.2.3", map[string]any{"ref_type": "tag"}},
		{"environment", GitHubContext{Repository: "octo-org/app", Ref: "refs/heads/main", Environment: "prod"},
			"repo:octo-org/app:environment:prod", map[string]any{"environment": "prod"}},
		{"pull request", GitHubContext{Repository: "octo-org/app", EventName: "pull_request", HeadRef: "fix", BaseRef: "main"},
			"repo:octo-org/app:pull_request",
			map[string]any{"ref": "refs/pull/1/merge", "head_ref": "fix", "base_ref": "main"}},
		{"environment beats pull request", GitHubContext{Repository: "octo-org/app", EventName: "pull_request", Environment: "staging"},
			"repo:octo-org/app:environment:staging", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh.SetContext(tt.ctx)
			tok, err := gh.Token("")
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if c["sub"] != tt.sub {
				t.Errorf("sub = %v, want %s", c["sub"], tt.sub)
			}
			if c["aud"] != "https://github.com/octo-org" || c["repository_owner"] != "octo-org" {
				t.Errorf("aud/owner = %v/%v", c["aud"], c["repository_owner"])
			}
			if _, has := c["environment"]; has != (tt.ctx.Environment != "") {
				t.Errorf("environment present = %v", has)
			}
			for k, want := range tt.want {
				if c[k] != want {
					t.Errorf("%s = %v, want %v", k, c[k], want)
				}
			}
			for _, k := range []string{"jti", "sha", "repository_id", "repository_owner_id", "run_id", "run_number",
				"run_attempt", "actor", "actor_id", "workflow", "workflow_ref", "job_workflow_ref", "iss", "nbf", "exp", "iat"} {
				if _, ok := c[k]; !ok {
					t.Errorf("claim %s missing", k)
				}
			}
		})
	}
}

func TestGitHubLifetime(t *testing.T) {
	gh, _, _ := newTestGitHub(t, GitHubContext{Repository: "octo-org/app"})
	for _, d := range []time.Duration{0, 90 * time.Second} {
		gh.SetLifetime(d)
		tok, err := gh.Token("sts.amazonaws.com")
		if err != nil {
			t.Fatal(err)
		}
		c := decodeSegment(t, tok, 1)
		want := d
		if want == 0 {
			want = 5 * time.Minute
		}
		if got := time.Duration(c["exp"].(float64)-c["iat"].(float64)) * time.Second; got != want {
			t.Errorf("lifetime = %v, want %v", got, want)
		}
		if c["nbf"].(float64) > c["iat"].(float64) {
			t.Error("nbf after iat")
		}
	}
	if _, err := (NewGitHub(gh.iss, "x", GitHubContext{Repository: "noslash"})).Token(""); err == nil {
		t.Error("bad repository accepted")
	}
}

func TestGitHubHandler(t *testing.T) {
	gh, _, srv := newTestGitHub(t, GitHubContext{Repository: "octo-org/app"})
	u := srv.URL + gh.RequestPath()
	tests := []struct {
		name, url, auth string
		status          int
	}{
		{"ok", u + "&audience=sts.amazonaws.com", "Bearer request-token-123", 200},
		{"lowercase scheme", u, "bearer request-token-123", 200},
		{"wrong token", u, "Bearer nope", 401},
		{"missing", u, "", 401},
		{"basic", u, "Basic request-token-123", 401},
		{"no api-version", srv.URL + idTokenPath, "Bearer request-token-123", 400},
		{"wrong path", srv.URL + "/other", "Bearer request-token-123", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, tt.url, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != 200 {
				return
			}
			var body struct {
				Count int    `json:"count"`
				Value string `json:"value"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if body.Count != len(body.Value) || strings.Count(body.Value, ".") != 2 {
				t.Fatalf("body = %+v", body)
			}
		})
	}
	if n := len(gh.Issued()); n != 2 {
		t.Fatalf("Issued = %d tokens, want 2", n)
	}
}

// TestGitHubActionsClient drives the service with the client library ecrpush uses, from the
// environment a runner provides.
func TestGitHubActionsClient(t *testing.T) {
	gh, ti, srv := newTestGitHub(t, GitHubContext{Repository: "octo-org/app", Ref: "refs/heads/release"})
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", srv.URL+gh.RequestPath())
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token-123")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tok, err := githubactions.New().GetIDToken(ctx, "sts.amazonaws.com")
	if err != nil {
		t.Fatal(err)
	}
	c, err := (&Verifier{}).Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if c["aud"] != "sts.amazonaws.com" || c["sub"] != "repo:octo-org/app:ref:refs/heads/release" || c["iss"] != ti.URL() {
		t.Fatalf("claims = %v", c)
	}

	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "stolen")
	if _, err := githubactions.New().GetIDToken(ctx, "sts.amazonaws.com"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong request token: err = %v", err)
	}
}

// TestGitHubSubjectShapes covers the documented subject shapes: the immutable form (github.com, never
// GHES), custom templates, ':' written %3A, and events whose subject is their branch's.
func TestGitHubSubjectShapes(t *testing.T) {
	base := GitHubContext{Repository: "octo-org/app", Ref: "refs/heads/main", OwnerID: "123456", RepositoryID: "789012"}
	with := func(f func(*GitHubContext)) GitHubContext { c := base; f(&c); return c }
	cases := []struct {
		name   string
		ctx    GitHubContext
		server bool
		sub    string
	}{
		{"immutable", with(func(c *GitHubContext) { c.ImmutableSubject = true }), false, "repo:octo-org@123456/app@789012:ref:refs/heads/main"},
		{"immutable environment", with(func(c *GitHubContext) { c.ImmutableSubject = true; c.Environment = "prod" }), false, "repo:octo-org@123456/app@789012:environment:prod"},
		{"GHES has no immutable form", with(func(c *GitHubContext) { c.ImmutableSubject = true }), true, "repo:octo-org/app:ref:refs/heads/main"},
		{"colon in an environment", with(func(c *GitHubContext) { c.Environment = "Production:V1" }), false, "repo:octo-org/app:environment:Production%3AV1"},
		{"pull_request_target carries the base branch", with(func(c *GitHubContext) { c.EventName = "pull_request_target" }), false, "repo:octo-org/app:ref:refs/heads/main"},
		{"template owner id and context", with(func(c *GitHubContext) {
			c.SubjectTemplate = []string{"repository_owner_id", "context"}
			c.Environment = "prod"
		}), false, "repository_owner_id:123456:environment:prod"},
		{"template with the event", with(func(c *GitHubContext) { c.SubjectTemplate = []string{"repo", "context", "event_name"} }), false,
			"repo:octo-org/app:ref:refs/heads/main:event_name:push"},
		{"template with an immutable repo", with(func(c *GitHubContext) {
			c.SubjectTemplate = []string{"repo", "context", "event_name"}
			c.ImmutableSubject = true
			c.EventName = "pull_request_target"
		}), false, "repo:octo-org@123456/app@789012:ref:refs/heads/main:event_name:pull_request_target"},
		{"template with job_workflow_ref", with(func(c *GitHubContext) {
			c.SubjectTemplate = []string{"job_workflow_ref"}
			c.JobWorkflowRef = "octo-org/ci/.github/workflows/push.yml@refs/heads/main"
		}), false, "job_workflow_ref:octo-org/ci/.github/workflows/push.yml@refs/heads/main"},
	}
	for _, tc := range cases {
		ti := newTestIssuer(t)
		if tc.server {
			ti.SetURL(ti.srv.URL + "/_services/token")
		}
		gh := NewGitHub(ti.Issuer, "x", tc.ctx)
		tok, err := gh.Token("sts.amazonaws.com")
		if err != nil {
			t.Fatal(err)
		}
		c, err := (&Verifier{}).Verify(context.Background(), tok)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c["sub"] != tc.sub || c["repository_owner_id"] != "123456" || c["repository_id"] != "789012" {
			t.Errorf("%s: sub %v (ids %v %v), want %s", tc.name, c["sub"], c["repository_owner_id"], c["repository_id"], tc.sub)
		}
	}
}

// TestGitHubPending: the Pending 403 reaches the client library as the status and GitHub's message.
func TestGitHubPending(t *testing.T) {
	gh, _, srv := newTestGitHub(t, GitHubContext{Repository: "octo-org/app"})
	gh.SetPendingRate(1, 1)
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", srv.URL+gh.RequestPath())
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token-123")
	_, err := githubactions.New().GetIDToken(context.Background(), "sts.amazonaws.com")
	var rf *githubactions.RequestFailedError
	if !errors.As(err, &rf) || rf.StatusCode != 403 || !strings.Contains(rf.Body, "Can't issue ID_TOKEN for job in 'Pending' state") {
		t.Fatalf("err = %v", err)
	}
	gh.SetPendingRate(0.5, 7)
	ok := 0
	for i := 0; i < 40; i++ {
		if _, err := githubactions.New().GetIDToken(context.Background(), "sts.amazonaws.com"); err == nil {
			ok++
		}
	}
	if ok == 0 || ok == 40 || gh.Pending() != 40-ok+0 {
		t.Errorf("%d of 40 succeeded, %d pending", ok, gh.Pending())
	}
}

package trustpolicy_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/ecrpush/ecrpush/internal/claims"
	"github.com/ecrpush/ecrpush/internal/iam"
	"github.com/ecrpush/ecrpush/internal/sandboxtest"
	"github.com/ecrpush/ecrpush/internal/trustpolicy"
	"github.com/ecrpush/ecrpush/sandbox"
	"github.com/ecrpush/ecrpush/sandbox/oidc"
	sbsts "github.com/ecrpush/ecrpush/sandbox/sts"
)

const (
	account = sandbox.CIAccount
	roleARN = "arn:aws:iam::" + account + ":role/ecrpush-ci"
)

// issuer is a GitHub token service on its own issuer, registered with the sandbox's STS as its own
// IAM OIDC provider (as a GitHub Enterprise Server or an enterprise issuer is).
type issuer struct {
	url string // for --github-issuer
	gh  *oidc.GitHub
}

// github.com's issuer is the sandbox's own; path "" is it, other paths are new issuers.
func newIssuer(t *testing.T, sb *sandbox.Sandbox, path string) issuer {
	t.Helper()
	if path == "" {
		return issuer{url: "", gh: sb.GitHub}
	}
	iss, err := oidc.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss.Handler())
	t.Cleanup(srv.Close)
	iss.SetURL(srv.URL + path)
	sb.STS.AddProvider(sbsts.Provider{Name: claims.ProviderName(iss.URL()), IssuerURL: iss.URL(), ClientIDs: []string{"sts.amazonaws.com"}})
	return issuer{url: iss.URL(), gh: oidc.NewGitHub(iss, "unused", oidc.GitHubContext{})}
}

// setTrust makes doc the ci role's trust policy.
func setTrust(t *testing.T, sb *sandbox.Sandbox, doc []byte) {
	t.Helper()
	old, ok := sb.World.Role(roleARN)
	if !ok {
		t.Fatal("no ci role")
	}
	p, err := iam.ParseTrust(doc)
	if err != nil {
		t.Fatalf("the printed policy does not parse as a trust policy: %v\n%s", err, doc)
	}
	r := *old
	r.Trust, r.TrustText = p, string(doc)
	if err := sb.World.AddRole(&r); err != nil {
		t.Fatal(err)
	}
}

// assume presents tok to the sandbox's STS; it reports whether STS admitted it (any other error fails).
func assume(t *testing.T, sb *sandbox.Sandbox, tok string) bool {
	t.Helper()
	c := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(sb.Endpoints.STS), Credentials: aws.AnonymousCredentials{}})
	_, err := c.AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("trust-test"), WebIdentityToken: aws.String(tok)})
	var ae smithy.APIError
	switch {
	case err == nil:
		return true
	case errors.As(err, &ae) && ae.ErrorCode() == "AccessDenied":
		return false
	}
	t.Fatalf("STS: %v", err)
	return false
}

// TestPrintedPoliciesAdmitExactlyTheIntendedJobs prints a trust policy for each documented subject shape
// and issuer, installs it on the sandbox's role, and presents the sandbox GitHub issuer's tokens: the
// intended job is admitted, the near misses (another repository id, another branch, a pull request,
// pull_request_target where the template can tell it apart, another issuer) are refused. --explain
// against the same policy, and the --from-token policy of each token, must agree with STS.
func TestPrintedPoliciesAdmitExactlyTheIntendedJobs(t *testing.T) {
	sb := sandboxtest.Start(t, nil)
	ghes := newIssuer(t, sb, "/_services/token")
	ghec := newIssuer(t, sb, "/octo-ent")
	github := newIssuer(t, sb, "")

	base := oidc.GitHubContext{Repository: "octo-org/app", Ref: "refs/heads/main", OwnerID: "123456", RepositoryID: "789012"}
	with := func(f func(*oidc.GitHubContext)) oidc.GitHubContext { c := base; f(&c); return c }
	immutable := func(c *oidc.GitHubContext) { c.ImmutableSubject = true }
	type job struct {
		name string
		iss  issuer
		ctx  oidc.GitHubContext
	}
	cases := []struct {
		name   string
		spec   trustpolicy.Spec
		iss    issuer
		admit  []job
		refuse []job
	}{
		{"immutable branch", trustpolicy.Spec{GitHubRepo: "octo-org@123456/app@789012", Branches: []string{"main"}}, github,
			[]job{{"main", github, with(immutable)}},
			[]job{
				{"name-only form", github, base},
				{"another repository id", github, with(func(c *oidc.GitHubContext) { immutable(c); c.RepositoryID = "789013" })},
				{"another owner id", github, with(func(c *oidc.GitHubContext) { immutable(c); c.OwnerID = "123457" })},
				{"another branch", github, with(func(c *oidc.GitHubContext) { immutable(c); c.Ref = "refs/heads/dev" })},
				{"pull request", github, with(func(c *oidc.GitHubContext) { immutable(c); c.EventName = "pull_request" })},
				{"an environment", github, with(func(c *oidc.GitHubContext) { immutable(c); c.Environment = "prod" })},
				{"GHES issuer", ghes, with(immutable)},
			}},
		{"both forms", trustpolicy.Spec{GitHubRepo: "octo-org/app", ImmutableIDs: "123456,789012", BothForms: true, Branches: []string{"main"}}, github,
			[]job{{"immutable", github, with(immutable)}, {"name-only", github, base}},
			[]job{{"another repository id", github, with(func(c *oidc.GitHubContext) { immutable(c); c.RepositoryID = "1" })},
				{"another branch", github, with(func(c *oidc.GitHubContext) { c.Ref = "refs/heads/dev" })}}},
		{"branch list with a wildcard and a tag", trustpolicy.Spec{GitHubRepo: "octo-org/app", Branches: []string{"main", "release/*"}, Tags: []string{"v*"}}, github,
			[]job{{"main", github, base}, {"release/1.2", github, with(func(c *oidc.GitHubContext) { c.Ref = "refs/heads/release/1.2" })},
				{"tag v1", github, with(func(c *oidc.GitHubContext) { c.Ref = "refs/tags/v1" })}},
			[]job{{"dev", github, with(func(c *oidc.GitHubContext) { c.Ref = "refs/heads/dev" })},
				{"branch v1", github, with(func(c *oidc.GitHubContext) { c.Ref = "refs/heads/v1" })},
				{"pull request", github, with(func(c *oidc.GitHubContext) { c.EventName = "pull_request" })}}},
		{"environment with a colon", trustpolicy.Spec{GitHubRepo: "octo-org/app", Environments: []string{"Production:V1"}}, github,
			[]job{{"Production:V1", github, with(func(c *oidc.GitHubContext) { c.Environment = "Production:V1" })}},
			[]job{{"no environment", github, base}, {"Production", github, with(func(c *oidc.GitHubContext) { c.Environment = "Production" })}}},
		{"template pins the event", trustpolicy.Spec{GitHubRepo: "octo-org/app", SubTemplate: []string{"repo", "context", "event_name"}, Branches: []string{"main"}}, github,
			[]job{{"push", github, with(func(c *oidc.GitHubContext) { c.SubjectTemplate = []string{"repo", "context", "event_name"} })}},
			[]job{{"pull_request_target", github, with(func(c *oidc.GitHubContext) {
				c.SubjectTemplate = []string{"repo", "context", "event_name"}
				c.EventName = "pull_request_target"
			})}, {"workflow_run", github, with(func(c *oidc.GitHubContext) {
				c.SubjectTemplate = []string{"repo", "context", "event_name"}
				c.EventName = "workflow_run"
			})}, {"default template", github, base}}},
		{"owner id template", trustpolicy.Spec{GitHubRepo: "octo-org/app", ImmutableIDs: "123456,789012", SubTemplate: []string{"repository_owner_id", "context"},
			Environments: []string{"prod"}}, github,
			[]job{{"prod in any repository of the owner", github, with(func(c *oidc.GitHubContext) {
				c.SubjectTemplate = []string{"repository_owner_id", "context"}
				c.Environment = "prod"
				c.Repository, c.RepositoryID = "octo-org/other", "1"
			})}},
			[]job{{"another owner", github, with(func(c *oidc.GitHubContext) {
				c.SubjectTemplate = []string{"repository_owner_id", "context"}
				c.Environment = "prod"
				c.OwnerID = "999"
			})}}},
		{"pull requests", trustpolicy.Spec{GitHubRepo: "octo-org/app", PullRequest: true}, github,
			[]job{{"pull request", github, with(func(c *oidc.GitHubContext) { c.EventName = "pull_request" })}},
			[]job{{"main", github, base}}},
		{"GHES", trustpolicy.Spec{GitHubRepo: "octo-org/app", Branches: []string{"main"}}, ghes,
			[]job{{"main", ghes, base}, {"immutable asked, GHES never issues it", ghes, with(immutable)}},
			[]job{{"github.com", github, base}, {"enterprise issuer", ghec, base}, {"another branch", ghes, with(func(c *oidc.GitHubContext) { c.Ref = "refs/heads/dev" })}}},
		{"GHEC enterprise issuer", trustpolicy.Spec{GitHubRepo: "octo-org@123456/app@789012", Branches: []string{"main"}}, ghec,
			[]job{{"main", ghec, with(immutable)}},
			[]job{{"github.com", github, with(immutable)}, {"name-only", ghec, base}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Account, tc.spec.Issuer = account, tc.iss.url
			tr, err := tc.spec.Trust()
			if err != nil {
				t.Fatal(err)
			}
			doc := tr.Document.JSON()
			setTrust(t, sb, doc)
			try := func(j job, want bool) {
				j.iss.gh.SetContext(j.ctx)
				tok, err := j.iss.gh.Token("sts.amazonaws.com")
				if err != nil {
					t.Fatal(err)
				}
				c, _ := claims.Decode(tok)
				if got := assume(t, sb, tok); got != want {
					t.Errorf("%s (sub %s): STS admitted=%v, want %v\n%s", j.name, c.String("sub"), got, want, doc)
				}
				r, err := trustpolicy.Explain(doc, c, roleARN, "", "")
				if err != nil {
					t.Fatal(err)
				}
				if r.Admitted != want {
					t.Errorf("%s: --explain says admitted=%v, STS %v:\n%s", j.name, r.Admitted, want, strings.Join(r.Lines(), "\n"))
				}
				if !want && r.Fix == "" {
					t.Errorf("%s: no change suggested", j.name)
				}
				// The --from-token policy of this token admits it (and, below, refuses every other job).
				ft, err := trustpolicy.FromToken(c, account, "aws")
				if err != nil {
					t.Fatal(err)
				}
				setTrust(t, sb, ft.Document.JSON())
				if !assume(t, sb, tok) {
					t.Errorf("%s: the --from-token policy refuses its own token:\n%s", j.name, ft.Document.JSON())
				}
				setTrust(t, sb, doc)
			}
			for _, j := range tc.admit {
				try(j, true)
			}
			for _, j := range tc.refuse {
				try(j, false)
			}
		})
	}
	github.gh.SetContext(oidc.GitHubContext{})
}

// A --from-token policy admits exactly the job of its token: the next-closest jobs are refused.
func TestFromTokenIsNarrowest(t *testing.T) {
	sb := sandboxtest.Start(t, nil)
	ghes := newIssuer(t, sb, "/_services/token")
	ctx := oidc.GitHubContext{Repository: "octo-org/app", Ref: "refs/heads/main", SubjectTemplate: []string{"repo", "context", "job_workflow_ref"},
		JobWorkflowRef: "octo-org/app/.github/workflows/release.yml@refs/heads/main"}
	ghes.gh.SetContext(ctx)
	tok, _ := ghes.gh.Token("sts.amazonaws.com")
	c, _ := claims.Decode(tok)
	tr, err := trustpolicy.FromToken(c, account, "aws")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(tr.Notes, "\n"), "--sub-template repo,context,job_workflow_ref") {
		t.Errorf("notes %q do not name the template", tr.Notes)
	}
	if want := "arn:aws:iam::" + account + ":oidc-provider/" + claims.ProviderName(ghes.url); tr.Principal != want {
		t.Errorf("principal %s, want %s", tr.Principal, want)
	}
	setTrust(t, sb, tr.Document.JSON())
	if !assume(t, sb, tok) {
		t.Fatal("refused its own token")
	}
	for name, f := range map[string]func(*oidc.GitHubContext){
		"another workflow": func(c *oidc.GitHubContext) {
			c.JobWorkflowRef = "octo-org/app/.github/workflows/pr.yml@refs/heads/main"
		},
		"another branch":   func(c *oidc.GitHubContext) { c.Ref = "refs/heads/dev" },
		"default template": func(c *oidc.GitHubContext) { c.SubjectTemplate = nil },
	} {
		c := ctx
		f(&c)
		ghes.gh.SetContext(c)
		tok, _ := ghes.gh.Token("sts.amazonaws.com")
		if assume(t, sb, tok) {
			t.Errorf("%s was admitted", name)
		}
	}
	// A github.com token with the very same subject is another provider's.
	sb.GitHub.SetContext(ctx)
	tok, _ = sb.GitHub.Token("sts.amazonaws.com")
	if assume(t, sb, tok) {
		t.Error("github.com's token was admitted by the GHES policy")
	}
}

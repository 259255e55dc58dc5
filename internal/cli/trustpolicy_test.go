package cli_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecrpush/ecrpush/internal/claims"
	"github.com/ecrpush/ecrpush/sandbox"
	"github.com/ecrpush/ecrpush/sandbox/oidc"
)

// The first "done when": the immutable form is printed as asked.
func TestTrustPolicyImmutableSubject(t *testing.T) {
	r := run(t, "trust-policy", "--github-repo", "octo-org@123456/app@789012", "--branch", "main", "--account", "111122223333", "--policy", "trust")
	if r.code != 0 {
		t.Fatalf("exit %d %s", r.code, r.errLine)
	}
	var doc struct {
		Statement []struct {
			Condition map[string]map[string]any
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.stdout)
	}
	if got := doc.Statement[0].Condition["StringEquals"]["token.actions.githubusercontent.com:sub"]; got != "repo:octo-org@123456/app@789012:ref:refs/heads/main" {
		t.Errorf("sub %v", got)
	}
	// The warnings go to stderr, one line each, so stdout stays a policy.
	if !strings.Contains(r.stderr, "ecrpush: note: --branch also admits pull_request_target, workflow_run and issue_comment runs") {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestTrustPolicyFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string // in stdout, or the error line for code 2
		not  []string
	}{
		{"partition from the role", []string{"--github-repo", "o/r", "--tag", "v1", "--role-arn", "arn:aws-cn:iam::111122223333:role/ci", "--policy", "trust"}, 0,
			[]string{`"arn:aws-cn:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"`, `"sts.amazonaws.com.cn"`, "refs/tags/v1"}, nil},
		{"GHEC issuer", []string{"--github-repo", "o/r", "--branch", "main", "--account", "111122223333", "--github-issuer", "https://token.actions.githubusercontent.com/octo-ent", "--policy", "trust"}, 0,
			[]string{`oidc-provider/token.actions.githubusercontent.com/octo-ent"`, `"token.actions.githubusercontent.com/octo-ent:sub"`}, nil},
		{"repeated branches", []string{"--github-repo", "o/r", "--branch", "main", "--branch", "refs/heads/dev,release/*", "--account", "111122223333", "--policy", "trust"}, 0,
			[]string{`"StringLike"`, `"repo:o/r:ref:refs/heads/main"`, `"repo:o/r:ref:refs/heads/dev"`, `"repo:o/r:ref:refs/heads/release/*"`}, nil},
		{"sub template", []string{"--github-repo", "o/r", "--immutable-ids", "1,2", "--sub-template", "repository_owner_id,context", "--environment", "prod", "--account", "111122223333", "--policy", "trust"}, 0,
			[]string{`"repository_owner_id:1:environment:prod"`}, nil},
		{"push policy scoped to the repository", []string{"--github-repo", "Octo-Org/App", "--branch", "main", "--account", "111122223333", "--policy", "push"}, 0,
			[]string{`"arn:aws:ecr:*:111122223333:repository/octo-org/app"`}, []string{"repository/*", "repository/octo-org/app*"}},
		{"prefix covers P and P/*", []string{"--repository-prefix", "example/app", "--account", "111122223333", "--policy", "push"}, 0,
			[]string{`"arn:aws:ecr:*:111122223333:repository/example/app"`, `"arn:aws:ecr:*:111122223333:repository/example/app/*"`}, []string{"repository/example/app*\""}},
		{"terraform honours --policy", []string{"--repository", "team/app", "--account", "111122223333", "--policy", "push", "--format", "terraform"}, 0,
			[]string{`data "aws_iam_policy_document" "ecrpush_push"`, `"arn:aws:ecr:*:111122223333:repository/team/app"`}, []string{"ecrpush_trust", "Federated"}},
		{"terraform all", []string{"--github-repo", "o/r", "--branch", "main", "--account", "111122223333", "--format", "terraform"}, 0,
			[]string{`"ecrpush_trust"`, `"ecrpush_push"`, `"ecrpush_replication"`}, nil},
		{"a tag given to --branch", []string{"--github-repo", "o/r", "--branch", "refs/tags/v1.0", "--account", "111122223333"}, 2, []string{"--tag v1.0"}, nil},
		{"push without a repository", []string{"--google-service-account-id", "100000000000000000001", "--account", "111122223333", "--policy", "push"}, 2, []string{"--repository"}, nil},
		{"immutable on GHES", []string{"--github-repo", "o@1/r@2", "--branch", "main", "--account", "111122223333", "--github-issuer", "https://ghes.example.com/_services/token"}, 2,
			[]string{"Enterprise Server"}, nil},
		{"--policy-file alone", []string{"--policy-file", "x.json", "--account", "111122223333"}, 2, []string{"--explain"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, append([]string{"trust-policy"}, tc.args...)...)
			out := r.stdout
			if tc.code != 0 {
				out = r.errLine
			}
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %s", r.code, tc.code, r.errLine)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("no %s in\n%s", w, out)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out, w) {
					t.Errorf("%s in\n%s", w, out)
				}
			}
		})
	}
}

// --explain --policy-file reads a role's real policy (aws iam get-role output, decoded or URL-encoded)
// and refuses a GitHub Enterprise token that github.com's policy can never admit — principal and keys
// are another provider's — where the old check of conditions alone said it satisfied every condition.
func TestTrustPolicyExplainPolicyFile(t *testing.T) {
	iss, err := oidc.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss.Handler())
	defer srv.Close()
	iss.SetURL(srv.URL + "/_services/token")
	gh := oidc.NewGitHub(iss, "x", oidc.GitHubContext{Repository: "example/app", Ref: "refs/heads/main"})
	tok, _ := gh.Token("sts.amazonaws.com")
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	os.WriteFile(tokFile, []byte(tok), 0o600)

	r := run(t, "trust-policy", "--github-repo", "example/app", "--branch", "main", "--account", "111122223333", "--policy", "trust")
	if r.code != 0 {
		t.Fatal(r.errLine)
	}
	policy := r.stdout
	getRole, _ := json.Marshal(map[string]any{"Role": map[string]any{"RoleName": "ecrpush-ci", "Arn": "arn:aws:iam::111122223333:role/ecrpush-ci",
		"AssumeRolePolicyDocument": json.RawMessage(policy)}})
	rawAPI, _ := json.Marshal(map[string]any{"Role": map[string]any{"Arn": "arn:aws:iam::111122223333:role/ecrpush-ci",
		"AssumeRolePolicyDocument": url.QueryEscape(policy)}})
	name := claims.ProviderName(iss.URL())
	for label, content := range map[string][]byte{"plain": []byte(policy), "get-role": getRole, "raw API": rawAPI} {
		f := filepath.Join(dir, "policy-"+strings.ReplaceAll(label, " ", "-")+".json")
		os.WriteFile(f, content, 0o600)
		r := run(t, "trust-policy", "--explain", tokFile, "--policy-file", f, "--account", "111122223333")
		if r.code != 2 {
			t.Fatalf("%s: exit %d, want 2 (refused)\n%s", label, r.code, r.stdout)
		}
		for _, w := range []string{"MISS  principal Federated arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com (token: Federated arn:aws:iam::111122223333:oidc-provider/" + name + ")",
			"MISS  StringEquals token.actions.githubusercontent.com:sub", "absent"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%s: no %q in\n%s", label, w, r.stdout)
			}
		}
		if !strings.Contains(r.errLine, `trust "Federated": "arn:aws:iam::111122223333:oidc-provider/`+name+`"`) || !strings.Contains(r.errLine, name+`:sub="repo:example/app:ref:refs/heads/main"`) {
			t.Errorf("%s: fix %s", label, r.errLine)
		}
		if strings.Contains(r.allCaptured, tok) {
			t.Error("the token was printed")
		}
	}
	// The policy for that issuer admits it; --from-token prints one too.
	r = run(t, "trust-policy", "--explain", tokFile, "--github-repo", "example/app", "--branch", "main", "--github-issuer", iss.URL(), "--account", "111122223333")
	if r.code != 0 || !strings.Contains(r.stdout, "ADMITTED") {
		t.Errorf("GHES policy: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}
	r = run(t, "trust-policy", "--from-token", tokFile, "--account", "111122223333", "--policy", "trust")
	if r.code != 0 || !strings.Contains(r.stdout, `"`+name+`:sub": "repo:example/app:ref:refs/heads/main"`) {
		t.Errorf("--from-token: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}
}

// The acceptance check, end to end through the sandbox: the printed immutable policy admits a
// token of that form and refuses the name-only form, unless both forms were asked for.
func TestImmutablePolicyThroughFederate(t *testing.T) {
	for _, tc := range []struct {
		both, immutable, admit bool
	}{
		{false, true, true}, {false, false, false}, {true, false, true}, {true, true, true},
	} {
		args := []string{"trust-policy", "--github-repo", "octo-org@123456/app@789012", "--branch", "main", "--account", "111122223333", "--policy", "trust"}
		if tc.both {
			args = append(args, "--both-subject-forms")
		}
		r := run(t, args...)
		if r.code != 0 {
			t.Fatal(r.errLine)
		}
		cfg := sandbox.DefaultConfig()
		cfg.Accounts[0].Roles[0].TrustPolicy = json.RawMessage(r.stdout)
		cfg.GitHub.Repository, cfg.GitHub.OwnerID, cfg.GitHub.RepositoryID, cfg.GitHub.ImmutableSubject = "octo-org/app", "123456", "789012", tc.immutable
		start(t, cfg)
		res := run(t, "federate", "--role-arn", ciRole)
		if (res.code == 0) != tc.admit {
			t.Errorf("both=%v immutable token=%v: exit %d %s", tc.both, tc.immutable, res.code, res.errLine)
		}
		if !tc.admit && !strings.Contains(res.errLine, "repo:octo-org/app:ref:refs/heads/main") {
			t.Errorf("the denial does not show the token's sub: %s", res.errLine)
		}
	}
}

package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ecrpush/ecrpush/internal/cli"
	"github.com/ecrpush/ecrpush/internal/sandboxtest"
	"github.com/ecrpush/ecrpush/internal/testenv"
	"github.com/ecrpush/ecrpush/sandbox"
)

const ciRole = "arn:aws:iam::111122223333:role/ecrpush-ci"

// start runs a sandbox and points the process environment at it, as `eval $(ecrpush sandbox)` would.
func start(t *testing.T, cfg *sandbox.Config) *sandbox.Sandbox {
	return sandboxtest.StartExported(t, cfg)
}

type result struct {
	code        int
	stdout      string
	stderr      string
	errLine     string
	allCaptured string
}

// run runs the command line in-process, as main does.
func run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	err := cli.Run(context.Background(), "ecrpush", args, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb, Getenv: os.Getenv})
	r := result{code: cli.ExitCode(err), stdout: out.String(), stderr: errb.String()}
	if err != nil {
		r.errLine = cli.Message(err)
	}
	r.allCaptured = r.stdout + r.stderr + r.errLine
	return r
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds ecrpush once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ecrpush-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ecrpush")
		out, err := exec.Command("go", "build", "-o", binPath, "../..").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestFederateExitCodes(t *testing.T) {
	sb := start(t, nil)
	cases := []struct {
		name string
		args []string
		prep func()
		code int
		want string
	}{
		{"export", []string{"federate", "--role-arn", ciRole}, nil, 0, "export AWS_SESSION_TOKEN="},
		{"json", []string{"federate", "--role-arn", ciRole, "--format", "json"}, nil, 0, `"Account": "111122223333"`},
		{"bad identity", []string{"federate", "--role-arn", ciRole, "--identity", "azure"}, nil, 2, "not one of auto, github, gcp, file, aws"},
		{"bad format", []string{"federate", "--role-arn", ciRole, "--format", "yaml"}, nil, 2, "--format"},
		{"bad duration", []string{"federate", "--role-arn", ciRole, "--role-duration", "1m"}, nil, 2, "15m to 12h"},
		{"bad region", []string{"federate", "--role-arn", ciRole, "--region", "mars"}, nil, 2, "not an AWS region"},
		{"bad session name", []string{"federate", "--role-arn", ciRole, "--role-session-name", "a b"}, nil, 2, "--role-session-name"},
		{"env flag", []string{"federate"}, func() { t.Setenv("ECRPUSH_ROLE_ARN", "arn:aws:iam::111122223333:role/nope") }, 2, "not authorized to assume arn:aws:iam::111122223333:role/nope"},
		{"wrong sub", []string{"federate", "--role-arn", ciRole}, func() {
			c := sb.GitHub.Context()
			c.Repository = "example/other"
			sb.GitHub.SetContext(c)
		}, 2, "trust-policy --github-repo example/other"},
		{"unknown command", []string{"pusj"}, nil, 2, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prep != nil {
				tc.prep()
			}
			r := run(t, tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s\nerror: %s", r.code, tc.code, r.stdout, r.stderr, r.errLine)
			}
			if !strings.Contains(r.allCaptured, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, r.allCaptured)
			}
			if tc.code != 0 {
				testenv.NoSecrets(t, sb.Secrets(), map[string]string{"output": r.allCaptured})
				if strings.Count(r.errLine, "\n") > 0 {
					t.Errorf("error is not one line: %q", r.errLine)
				}
			} else {
				testenv.NoSecrets(t, sb.Secrets(), map[string]string{"stderr": r.stderr})
			}
		})
	}
	// Denials print the evaluated claims on stderr before the error line, never the token.
	r := run(t, "federate", "--role-arn", ciRole)
	if !strings.Contains(r.stderr, "token.actions.githubusercontent.com:sub = repo:example/other:ref:refs/heads/main") {
		t.Errorf("stderr lacks the diagnosis:\n%s", r.stderr)
	}
}

func TestCredentialProcessDrivesAWSCLI(t *testing.T) {
	aws := testenv.Tool(t, "aws", "the aws CLI (pip install awscli)")
	sb := start(t, nil)
	bin := binary(t)
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".aws"), 0o700)
	conf := "[profile sandbox]\nregion = us-east-1\ncredential_process = " + bin + " federate --format credential-process --role-arn " + ciRole + "\n"
	os.WriteFile(filepath.Join(home, ".aws", "config"), []byte(conf), 0o600)
	cmd := exec.Command(aws, "sts", "get-caller-identity", "--profile", "sandbox", "--output", "json")
	cmd.Env = append(os.Environ(), "HOME="+home, "AWS_CONFIG_FILE="+filepath.Join(home, ".aws", "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, ".aws", "credentials"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("aws sts get-caller-identity: %v\n%s", err, errb.String())
	}
	var id map[string]string
	if err := json.Unmarshal(out.Bytes(), &id); err != nil {
		t.Fatal(err)
	}
	if id["Account"] != "111122223333" || !strings.Contains(id["Arn"], "assumed-role/ecrpush-ci/") {
		t.Errorf("caller identity %v", id)
	}
	testenv.NoSecrets(t, sb.Secrets(), map[string]string{"aws stdout": out.String(), "aws stderr": errb.String()})
}

// TestTrustPolicyAdmitsExactlyIntended loads the printed policy into the sandbox and federates with tokens
// from the intended job and from jobs it must refuse.
func TestTrustPolicyAdmitsExactlyIntended(t *testing.T) {
	cases := []struct {
		scope  []string
		admits map[string]func(*sandbox.GitHubConfig)
		denies map[string]func(*sandbox.GitHubConfig)
	}{
		{[]string{"--branch", "main"},
			map[string]func(*sandbox.GitHubConfig){"main": func(*sandbox.GitHubConfig) {}},
			map[string]func(*sandbox.GitHubConfig){
				"another branch":     func(c *sandbox.GitHubConfig) { c.Ref = "refs/heads/feature" },
				"a pull request":     func(c *sandbox.GitHubConfig) { c.EventName = "pull_request"; c.Ref = "refs/pull/7/merge" },
				"another repository": func(c *sandbox.GitHubConfig) { c.Repository = "example/other" },
				"an environment":     func(c *sandbox.GitHubConfig) { c.Environment = "production" },
			}},
		{[]string{"--environment", "production"},
			map[string]func(*sandbox.GitHubConfig){"production": func(c *sandbox.GitHubConfig) { c.Environment = "production" }},
			map[string]func(*sandbox.GitHubConfig){
				"no environment":    func(*sandbox.GitHubConfig) {},
				"staging":           func(c *sandbox.GitHubConfig) { c.Environment = "staging" },
				"other repo in env": func(c *sandbox.GitHubConfig) { c.Repository = "example/other"; c.Environment = "production" },
			}},
		{[]string{"--pull-request"},
			map[string]func(*sandbox.GitHubConfig){"pr": func(c *sandbox.GitHubConfig) { c.EventName = "pull_request"; c.Ref = "refs/pull/7/merge" }},
			map[string]func(*sandbox.GitHubConfig){"main": func(*sandbox.GitHubConfig) {}}},
	}
	for _, tc := range cases {
		r := run(t, append([]string{"trust-policy", "--github-repo", "example/app", "--account", "111122223333", "--policy", "trust"}, tc.scope...)...)
		if r.code != 0 {
			t.Fatalf("trust-policy %v: %s", tc.scope, r.errLine)
		}
		try := func(label string, mod func(*sandbox.GitHubConfig), admit bool) {
			cfg := sandbox.DefaultConfig()
			cfg.Accounts[0].Roles[0].TrustPolicy = json.RawMessage(r.stdout)
			mod(&cfg.GitHub)
			start(t, cfg)
			res := run(t, "federate", "--role-arn", ciRole)
			if admit && res.code != 0 {
				t.Errorf("%v: %s was refused: %s", tc.scope, label, res.errLine)
			}
			if !admit && (res.code != 2 || !strings.Contains(res.errLine, "denied")) {
				t.Errorf("%v: %s: exit %d %s, want a denial", tc.scope, label, res.code, res.errLine)
			}
		}
		for label, mod := range tc.admits {
			try(label, mod, true)
		}
		for label, mod := range tc.denies {
			try(label, mod, false)
		}
	}

	// Google: the policy for the build's service account admits its tokens through the metadata server.
	r := run(t, "trust-policy", "--google-service-account-id", sandbox.DefaultServiceAccountID, "--account", "111122223333", "--policy", "trust")
	for _, id := range []string{sandbox.DefaultServiceAccountID, "100000000000000000002"} {
		cfg := sandbox.DefaultConfig()
		cfg.Accounts[0].Roles[0].TrustPolicy = json.RawMessage(r.stdout)
		cfg.GCP.UniqueID = id
		start(t, cfg)
		t.Setenv("GITHUB_ACTIONS", "")
		res := run(t, "federate", "--role-arn", ciRole, "--identity", "gcp")
		if admit := id == sandbox.DefaultServiceAccountID; admit != (res.code == 0) {
			t.Errorf("google service account %s: exit %d %s", id, res.code, res.errLine)
		}
	}
}

func TestTrustPolicyExplain(t *testing.T) {
	sb := start(t, nil)
	c := sb.GitHub.Context()
	c.Ref = "refs/heads/feature"
	sb.GitHub.SetContext(c)
	tok, err := sb.GitHub.Token("sts.amazonaws.com")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "token")
	os.WriteFile(f, []byte(tok), 0o600)
	r := run(t, "trust-policy", "--github-repo", "example/app", "--branch", "main", "--account", "111122223333", "--explain", f)
	if r.code != 2 || !strings.Contains(r.stdout, `MISS  StringEquals token.actions.githubusercontent.com:sub ["repo:example/app:ref:refs/heads/main"] (token: "repo:example/app:ref:refs/heads/feature")`) ||
		!strings.Contains(r.stdout, "MATCH StringEquals token.actions.githubusercontent.com:aud") ||
		!strings.Contains(r.errLine, `the one change that admits it, in statement 1: add "repo:example/app:ref:refs/heads/feature" to StringEquals token.actions.githubusercontent.com:sub`) {
		t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.errLine)
	}
	if strings.Contains(r.allCaptured, tok) {
		t.Error("the token was printed")
	}
	r = run(t, "trust-policy", "--github-repo", "example/app", "--any-ref", "--account", "111122223333", "--explain", f)
	if r.code != 0 || !strings.Contains(r.stdout, "ADMITTED") {
		t.Errorf("any-ref: exit %d\n%s%s", r.code, r.stdout, r.errLine)
	}
	r = run(t, "trust-policy", "--github-repo", "example/app", "--account", "111122223333")
	if r.code != 2 || !strings.Contains(r.errLine, "choose exactly one of --branch") {
		t.Errorf("no scope: %d %s", r.code, r.errLine)
	}
	r = run(t, "trust-policy", "--github-repo", "example/app", "--branch", "main", "--account", "111122223333", "--format", "terraform")
	if r.code != 0 || !strings.Contains(r.stdout, `data "aws_iam_policy_document"`) || !strings.Contains(r.stdout, `"repo:example/app:ref:refs/heads/main"`) {
		t.Errorf("terraform: %s %s", r.stdout, r.errLine)
	}
}

func TestSandboxCommandPrintsExports(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error, 1)
	w := &syncWriter{w: &out}
	go func() {
		done <- cli.Run(ctx, "ecrpush", []string{"sandbox"}, cli.IO{Out: w, Err: w, Getenv: func(string) string { return "" }})
	}()
	for i := 0; i < 100 && !strings.Contains(w.String(), "serving until interrupted"); i++ {
		<-timeAfter(50)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"export AWS_ENDPOINT_URL_STS=http://127.0.0.1:", "export AWS_ENDPOINT_URL_ECR=", "export ACTIONS_ID_TOKEN_REQUEST_URL=",
		"export GCE_METADATA_HOST=127.0.0.1:", "export GITHUB_ACTIONS=true", "export AWS_REGION=us-east-1", "# registry 444455556666 (prod) in eu-west-1"} {
		if !strings.Contains(w.String(), want) {
			t.Errorf("sandbox output lacks %q:\n%s", want, w.String())
		}
	}
}

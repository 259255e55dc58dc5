package ship_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ecrpush/ecrpush/internal/cli"
	"github.com/ecrpush/ecrpush/sandbox"
)

// containerStep is the environment GitHub's runner gives the Action's container, built from
// actions/runner's ContainerActionHandler (not from our own contract): every input action.yml declares as
// INPUT_<NAME> (empty when the step does not set it; GitHub keeps the dashes), the workflow's and job's
// env, the GitHub and runner contexts with the mapped paths translated (GITHUB_WORKSPACE=/github/workspace,
// RUNNER_TEMP=/github/runner_temp) and RUNNER_WORKSPACE left as the runner's host path, GITHUB_ACTIONS and
// CI, and the file commands. The working directory stands for /github/workspace.
type containerStep struct {
	env       map[string]string
	workspace string
	output    string
}

func newContainerStep(t *testing.T, sb *sandbox.Sandbox, with, jobEnv map[string]string) containerStep {
	t.Helper()
	a := loadAction(t)
	env := baseEnv(t, sb, func(k string) bool { return k == "ECRPUSH_ROLE_ARN" })
	for k, v := range jobEnv {
		env[k] = v
	}
	for _, name := range a.inputNames() {
		env[cli.InputName(name)] = with[name]
	}
	for k := range with {
		if _, ok := a.Inputs[k]; !ok {
			t.Fatalf("the step passes input %q, which action.yml does not declare", k)
		}
	}
	s := containerStep{env: env, workspace: t.TempDir(), output: filepath.Join(t.TempDir(), "output")}
	if err := os.WriteFile(s.output, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env["GITHUB_ACTIONS"], env["CI"] = "true", "true"
	env["GITHUB_WORKSPACE"] = "/github/workspace"
	env["RUNNER_TEMP"] = "/github/runner_temp"
	env["RUNNER_WORKSPACE"] = "/home/runner/work/app"
	env["GITHUB_OUTPUT"] = s.output
	return s
}

func (s containerStep) run(t *testing.T) result {
	t.Helper()
	return run(t, s.workspace, s.env, loadAction(t).Runs.Args...)
}

// TestStepInputsWinOverJobEnv: a job-wide ECRPUSH_REPOSITORY (or ECRPUSH_ROLE_ARN, which the README's
// sandbox recipe exports) must never silently replace what the step says.
func TestStepInputsWinOverJobEnv(t *testing.T) {
	sb := startSandbox(t, nil)
	role := "arn:aws:iam::" + sandbox.CIAccount + ":role/ecrpush-ci"
	with := map[string]string{"role-to-assume": role, "aws-region": "us-east-1", "source": "oci-layout:image:v1", "repository": "team/b", "tags": "v1"}
	s := newContainerStep(t, sb, with, map[string]string{
		"ECRPUSH_REPOSITORY": "team/a",
		"ECRPUSH_ROLE_ARN":   "arn:aws:iam::" + sandbox.CIAccount + ":role/somebody-else",
	})
	digest := writeSource(t, s.workspace, with["source"])
	r := s.run(t)
	if r.code != 0 {
		t.Fatalf("exit %d: %s\n%s", r.code, r.errLine, r.stderr)
	}
	outputs := githubOutputs(t, readFile(t, s.output))
	if !strings.Contains(outputs["image-uri"], "/team/b:v1") || outputs["digest"] != digest {
		t.Errorf("pushed %s (%s), want team/b:v1 at %s", outputs["image-uri"], outputs["digest"], digest)
	}
	all := r.stdout + r.stderr
	for _, want := range []string{
		"::warning title=ecrpush::input repository (team/b) overrides ECRPUSH_REPOSITORY (team/a)",
		"::warning title=ecrpush::input role-to-assume (" + role + ") overrides ECRPUSH_ROLE_ARN (",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no warning %q in\n%s", want, all)
		}
	}
	if strings.Contains(all, "team/a:") || strings.Contains(all, "team/a@") {
		t.Errorf("something was pushed to team/a:\n%s", all)
	}

	// The same value in both places is no conflict.
	s = newContainerStep(t, sb, with, map[string]string{"ECRPUSH_REPOSITORY": "team/b"})
	writeSource(t, s.workspace, with["source"])
	if r := s.run(t); r.code != 0 || strings.Contains(r.stdout+r.stderr, "::warning") {
		t.Errorf("same value: exit %d, output:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestStepErrorsInTheWorkflowsWords: errors name what the workflow author wrote.
func TestStepErrorsInTheWorkflowsWords(t *testing.T) {
	sb := startSandbox(t, nil)
	for _, tc := range []struct {
		name   string
		with   map[string]string
		jobEnv map[string]string
		want   []string
	}{
		{"no region", map[string]string{"role-to-assume": "arn:aws:iam::111122223333:role/ecrpush-ci", "source": "oci-layout:image:v1", "repository": "team/app", "tags": "v1"},
			nil, []string{"input aws-region"}},
		{"no tags", map[string]string{"role-to-assume": "arn:aws:iam::111122223333:role/ecrpush-ci", "aws-region": "us-east-1", "source": "oci-layout:image:v1", "repository": "team/app"},
			nil, []string{"input tags is required"}},
		{"region from the job's env", map[string]string{"role-to-assume": "arn:aws:iam::111122223333:role/ecrpush-ci", "source": "oci-layout:image:v1", "repository": "team/app", "tags": "v1"},
			map[string]string{"ECRPUSH_REGION": "mars-north"}, []string{`ECRPUSH_REGION "mars-north" is not an AWS region`}},
		{"keys without a role", map[string]string{"aws-region": "us-east-1", "source": "oci-layout:image:v1", "repository": "team/app", "tags": "v1"},
			map[string]string{"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
			[]string{"input role-to-assume is required", "set identity: aws"}},
		{"role-duration over the role's maximum", map[string]string{"role-to-assume": "arn:aws:iam::111122223333:role/ecrpush-ci", "aws-region": "us-east-1", "source": "oci-layout:image:v1", "repository": "team/app", "tags": "v1", "role-duration": "12h"},
			nil, []string{"DurationSeconds (input role-duration)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newContainerStep(t, sb, tc.with, tc.jobEnv)
			writeSource(t, s.workspace, "oci-layout:image:v1")
			sb.Log.Reset()
			r := s.run(t)
			t.Log(r.errLine)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2: %s\n%s", r.code, r.errLine, r.stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(r.errLine, want) {
					t.Errorf("error %q lacks %q", r.errLine, want)
				}
			}
			if strings.Contains(r.errLine, " --") {
				t.Errorf("error %q names a flag the workflow never wrote", r.errLine)
			}
			if w := sb.Log.Writes(); len(w) != 0 {
				t.Errorf("%d writes before the error", len(w))
			}
		})
	}
}

// TestStepSourcesOnTheRunner: what the Action's container cannot see is explained.
func TestStepSourcesOnTheRunner(t *testing.T) {
	sb := startSandbox(t, nil)
	base := map[string]string{"role-to-assume": "arn:aws:iam::111122223333:role/ecrpush-ci", "aws-region": "us-east-1", "repository": "team/app", "tags": "v1"}
	withSource := func(src string) map[string]string {
		m := map[string]string{"source": src}
		for k, v := range base {
			m[k] = v
		}
		return m
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer auth.Close()
	private := strings.TrimPrefix(auth.URL, "http://") + "/team/base:v1"

	for _, tc := range []struct {
		name   string
		source string
		jobEnv map[string]string
		want   string
	}{
		// source: docker-archive:${{ github.workspace }}/image.tar, as a workflow author writes it.
		{"host workspace path", "docker-archive:/home/runner/work/app/app/image.tar", nil,
			"is the runner's path: inside the Action's container the workspace is /github/workspace, so use a relative path: source: docker-archive:image.tar"},
		{"unreachable DOCKER_HOST", "docker-daemon:app:v1", map[string]string{"DOCKER_HOST": "tcp://" + closedAddr},
			"inside the Action's container 127.0.0.1 is the container itself"},
		{"runner's docker login", private, nil,
			`echo "DOCKER_CONFIG=$RUNNER_TEMP/docker-config" >> "$GITHUB_ENV"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newContainerStep(t, sb, withSource(tc.source), tc.jobEnv)
			sb.Log.Reset()
			r := s.run(t)
			t.Log(r.errLine)
			if r.code != 2 || !strings.Contains(r.errLine, tc.want) {
				t.Errorf("exit %d, error %q; want exit 2 and %q\n%s", r.code, r.errLine, tc.want, r.stderr)
			}
			if w := sb.Log.Writes(); len(w) != 0 {
				t.Errorf("%d writes before the error", len(w))
			}
		})
	}

	// With DOCKER_CONFIG pointing where the container sees it (the runner translates RUNNER_TEMP paths), the
	// login made in an earlier step is used: the registry receives the credentials.
	var gotAuth string
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		gotAuth = r.Header.Get("Authorization")
		w.WriteHeader(http.StatusNotFound)
	}))
	defer reg.Close()
	cfgDir := t.TempDir()
	host := strings.TrimPrefix(reg.URL, "http://")
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"`+host+`":{"auth":"dXNlcjpzZWNyZXQ="}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newContainerStep(t, sb, withSource(host+"/team/base:v1"), map[string]string{"DOCKER_CONFIG": cfgDir})
	r := s.run(t)
	if gotAuth != "Basic dXNlcjpzZWNyZXQ=" || !strings.Contains(r.errLine, "not found") {
		t.Errorf("DOCKER_CONFIG's login was not used (Authorization %q): %s", gotAuth, r.errLine)
	}
}

// TestReadmeDockerStepRuns runs the README's `uses: docker://…` snippet as the runner runs a docker:// step
// (ContainerActionHandler with no action.yml): only the inputs the step sets become INPUT_* variables, and the
// args input is the container's arguments. Nothing declares defaults, so the region must be in the snippet.
func TestReadmeDockerStepRuns(t *testing.T) {
	var step map[string]any
	for _, block := range fencedBlocks(readFile(t, filepath.Join(root, "README.md")), "yaml") {
		if !strings.Contains(block, "uses: docker://ghcr.io/ecrpush/ecrpush@") {
			continue
		}
		var steps []map[string]any
		if err := yaml.Unmarshal([]byte(block), &steps); err != nil || len(steps) != 1 {
			t.Fatalf("the docker:// snippet is not one step: %v", err)
		}
		step = steps[0]
	}
	if step == nil {
		t.Fatal("README: no uses: docker://ghcr.io/ecrpush/ecrpush@… snippet")
	}
	sb := startSandbox(t, nil)
	with, _ := step["with"].(map[string]any)
	env := baseEnv(t, sb, func(k string) bool { return k == "ECRPUSH_ROLE_ARN" })
	workspace, output := t.TempDir(), filepath.Join(t.TempDir(), "output")
	env["GITHUB_WORKSPACE"], env["RUNNER_WORKSPACE"], env["GITHUB_OUTPUT"], env["CI"] = "/github/workspace", "/home/runner/work/app", output, "true"
	var args []string
	for k, v := range with {
		value := expressionRe.ReplaceAllStringFunc(inputValue(v), func(expr string) string {
			if strings.TrimSpace(expressionRe.FindStringSubmatch(expr)[1]) == "github.sha" {
				return sb.Config.GitHub.SHA
			}
			t.Fatalf("input %s: the test knows no value for %s", k, expr)
			return ""
		})
		if k == "args" {
			args = strings.Fields(value)
			continue
		}
		env[cli.InputName(k)] = value
	}
	if env["INPUT_AWS-REGION"] == "" {
		t.Error("the docker:// snippet sets no aws-region: the step has no AWS_REGION and fails")
	}
	env["INPUT_ROLE-TO-ASSUME"] = "arn:aws:iam::" + sandbox.CIAccount + ":role/ecrpush-ci" // the sandbox's role
	digest := writeSource(t, workspace, env["INPUT_SOURCE"])
	r := run(t, workspace, env, args...)
	if r.code != 0 {
		t.Fatalf("the docker:// step exited %d: %s\n%s", r.code, r.errLine, r.stderr)
	}
	if got := githubOutputs(t, readFile(t, output))["digest"]; got != digest {
		t.Errorf("digest output %q, want %s", got, digest)
	}
}

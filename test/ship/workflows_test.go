package ship_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ecrpush/ecrpush/internal/testenv"
)

const actionlintInstall = "go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.7"

// TestActionlint lints the workflows and the README's workflow example with actionlint.
func TestActionlint(t *testing.T) {
	actionlint := testenv.Tool(t, "actionlint", actionlintInstall)
	files, err := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if err != nil || len(files) < 2 {
		t.Fatalf(".github/workflows: want ci.yml and release.yml, found %v (%v)", files, err)
	}
	block, _ := readmeWorkflow(t)
	example := filepath.Join(t.TempDir(), "readme-example.yml")
	if err := os.WriteFile(example, []byte(block), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, example) {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		// From the repository root, so that actionlint finds action.yml for `uses: ./`.
		cmd := exec.Command(actionlint, "-no-color", abs)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("actionlint %s: %v\n%s", filepath.Base(f), err, out)
		}
	}
}

// TestWorkflowsMirrorCI checks ci.yml runs what .ci/run runs, and that .ci/run lints the workflows.
func TestWorkflowsMirrorCI(t *testing.T) {
	ci := readFile(t, filepath.Join(root, ".github", "workflows", "ci.yml"))
	for _, want := range []string{"go test ./...", "go vet ./...", "staticcheck ./...", "actionlint", "uses: ./", "sandbox"} {
		if !strings.Contains(ci, want) {
			t.Errorf("ci.yml does not run %q", want)
		}
	}
	run := readFile(t, filepath.Join(root, ".ci", "run"))
	if !strings.Contains(run, actionlintInstall) || !regexp.MustCompile(`(?m)^actionlint\b`).MatchString(run) {
		t.Errorf(".ci/run must install (%s) and run actionlint", actionlintInstall)
	}
	release := readFile(t, filepath.Join(root, ".github", "workflows", "release.yml"))
	for _, want := range []string{"linux/amd64,linux/arm64", " push ", "docker://ghcr.io/ecrpush/ecrpush@", "sha256:<digest>"} {
		if !strings.Contains(release, want) {
			t.Errorf("release.yml lacks %q (multi-arch, pushed with ecrpush, pinned by digest, README placeholder filled in)", want)
		}
	}
}

// TestDockerfile checks what the image promises without a docker engine: the build the tests run is the
// Dockerfile's, the final stage is distroless static running ecrpush as root, and the binary leaves room
// for the 20 MB image budget.
func TestDockerfile(t *testing.T) {
	df := readFile(t, filepath.Join(root, "Dockerfile"))
	for _, want := range []string{
		"golang:1.26",
		" AS build\n",
		"CGO_ENABLED=0",
		"-trimpath",
		`-ldflags "` + dockerfileLDFlags + `${VERSION}"`,
		"FROM gcr.io/distroless/static-debian12:latest@sha256:",
		`ENTRYPOINT ["/ecrpush"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// Cloud Build's docker socket is root's: the final stage must not switch to a non-root user.
	final := df[strings.LastIndex(df, "\nFROM "):]
	for _, line := range strings.Split(final, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "USER" && f[1] != "0:0" && f[1] != "root" && f[1] != "0" {
			t.Errorf("the final stage runs as %s, want root", f[1])
		}
	}
	if strings.Contains(final, ":nonroot") {
		t.Error("the final stage is a nonroot distroless variant")
	}
	ignore := readFile(t, filepath.Join(root, ".dockerignore"))
	if !regexp.MustCompile(`(?m)^\.git$`).MatchString(ignore) {
		t.Error(".dockerignore does not keep .git out of the build context")
	}

	fi, err := os.Stat(binary)
	if err != nil {
		t.Fatal(err)
	}
	// distroless/static-debian12 adds about 2 MB; the binary must leave the image under 20 MB.
	const budget = 18 << 20
	if fi.Size() > budget {
		t.Errorf("the Dockerfile's build is %.1f MiB; with distroless (~2 MB) the image exceeds 20 MB", float64(fi.Size())/(1<<20))
	}
	t.Logf("binary as the Dockerfile builds it: %.1f MiB", float64(fi.Size())/(1<<20))
	r := run(t, t.TempDir(), map[string]string{}, "version")
	if r.code != 0 || !strings.Contains(r.stdout, testVersion) {
		t.Errorf("ecrpush version does not print the stamped %s: %q %s", testVersion, r.stdout, r.errLine)
	}
}

// TestCISandboxStep runs `ecrpush sandbox --host` the way ci.yml's action job does, and checks what that
// step relies on: the `# serving` line it waits for, export lines it can load, and every endpoint on the
// requested host (there, the docker bridge that the action's container can reach).
func TestCISandboxStep(t *testing.T) {
	ci := readFile(t, filepath.Join(root, ".github", "workflows", "ci.yml"))
	for _, want := range []string{`sandbox --host "$host"`, "'^# serving'", `s/^export \([A-Z0-9_]*\)=.*/\1/p`} {
		if !strings.Contains(ci, want) {
			t.Fatalf("ci.yml's sandbox step no longer has %q: update this test with it", want)
		}
	}
	const host = "127.0.0.1" // tests use loopback only; CI passes the bridge address
	cmd := exec.Command(binary, "sandbox", "--host", host)
	cmd.Env = []string{"HOME=" + t.TempDir()}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		buf := make([]byte, 64<<10)
		var text string
		for {
			n, err := stdout.Read(buf)
			text += string(buf[:n])
			for {
				i := strings.IndexByte(text, '\n')
				if i < 0 {
					break
				}
				lines <- text[:i]
				text = text[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	exports := map[string]string{}
	timeout := time.After(time.Minute)
	for serving := false; !serving; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("ecrpush sandbox exited before printing # serving")
			}
			if strings.HasPrefix(line, "# serving") {
				serving = true
			}
			if kv, ok := strings.CutPrefix(line, "export "); ok {
				k, v, _ := strings.Cut(kv, "=")
				exports[k] = strings.Trim(v, "'")
			}
		case <-timeout:
			t.Fatal("no # serving line within a minute")
		}
	}
	for _, k := range []string{"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_ECR", "ACTIONS_ID_TOKEN_REQUEST_URL", "GCE_METADATA_HOST"} {
		if !strings.Contains(exports[k], host+":") {
			t.Errorf("%s=%q is not on %s", k, exports[k], host)
		}
	}
	if exports["ECRPUSH_ROLE_ARN"] == "" || exports["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] == "" {
		t.Errorf("the exports lack the role or the token service credential: %v", exports)
	}

	r := run(t, t.TempDir(), map[string]string{}, "sandbox", "--host", "not-an-ip")
	if r.code == 0 || !strings.Contains(r.errLine, "not-an-ip") {
		t.Errorf("sandbox --host not-an-ip: exit %d %s", r.code, r.errLine)
	}
}

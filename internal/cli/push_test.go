package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ecrpush/ecrpush/internal/platform"
	"github.com/ecrpush/ecrpush/internal/testenv"
	"github.com/ecrpush/ecrpush/sandbox"
)

// layoutSource writes a random image as an OCI layout and returns its --source and digest.
func layoutSource(t *testing.T) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return "oci-layout:" + dir + ":v1", d.String()
}

func TestPushCommand(t *testing.T) {
	sb := start(t, nil)
	t.Setenv("GITHUB_ACTIONS", "") // a terminal: text/JSON reports
	src, digest := layoutSource(t)
	base := []string{"push", "--role-arn", ciRole, "--identity", "github", "--source", src}

	r := run(t, append(base, "--repository", "team/app", "--tag", "v1,latest", "--output", "json")...)
	if r.code != 0 {
		t.Fatalf("push: %s\n%s", r.errLine, r.stderr)
	}
	var rep platform.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("json report: %v\n%s", err, r.stdout)
	}
	if rep.Digest != digest || rep.AccountID != sandbox.CIAccount || len(rep.Images) != 1 || len(rep.Images[0].Tags) != 2 || rep.BytesUploaded == 0 {
		t.Errorf("report %+v", rep)
	}
	testenv.NoSecrets(t, sb.Secrets(), map[string]string{"push": r.allCaptured})

	// A re-run is a no-op success that uploads nothing.
	r = run(t, append(base, "--repository", "team/app", "--tag", "v1,latest", "--output", "json")...)
	if r.code != 0 {
		t.Fatalf("re-push: %s", r.errLine)
	}
	json.Unmarshal([]byte(r.stdout), &rep)
	if rep.BytesUploaded != 0 {
		t.Errorf("re-push uploaded %d bytes", rep.BytesUploaded)
	}

	// An immutable tag pointing at another digest: exit 2, nothing written.
	r = run(t, append(base, "--repository", "team/frozen", "--tag", "v1", "--tag-immutability")...)
	if r.code != 0 {
		t.Fatalf("push frozen: %s", r.errLine)
	}
	other, _ := layoutSource(t)
	sb.Log.Reset()
	r = run(t, "push", "--role-arn", ciRole, "--identity", "github", "--source", other, "--repository", "team/frozen", "--tag", "v1")
	if r.code != 2 || !strings.Contains(r.errLine, "v1") || !strings.Contains(strings.ToLower(r.errLine), "immutable") {
		t.Errorf("immutable conflict: exit %d %s", r.code, r.errLine)
	}
	for _, w := range sb.Log.Writes() {
		if strings.HasPrefix(w.Endpoint, "registry/") && strings.Contains(w.Path, "/manifests/") {
			t.Errorf("a manifest was written despite the conflict: %s %s", w.Method, w.Path)
		}
	}

	// A missing repository with --create-repository=false: exit 2, nothing written.
	sb.Log.Reset()
	r = run(t, append(base, "--repository", "team/missing", "--tag", "v1", "--create-repository=false")...)
	if r.code != 2 || !strings.Contains(r.errLine, "team/missing") {
		t.Errorf("missing repository: exit %d %s", r.code, r.errLine)
	}
	if w := sb.Log.Writes(); len(w) != 0 {
		t.Errorf("writes despite the missing repository: %+v", w)
	}
}

func TestPushGitHubInputs(t *testing.T) {
	sb := start(t, nil)
	src, digest := layoutSource(t)
	dir := t.TempDir()
	out, summary := filepath.Join(dir, "output"), filepath.Join(dir, "summary")
	t.Setenv("GITHUB_OUTPUT", out)
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	// Inputs as GitHub passes them to a docker action, stray whitespace and newlines included.
	t.Setenv("INPUT_ROLE-TO-ASSUME", " "+ciRole+"\n")
	t.Setenv("INPUT_AWS-REGION", "us-east-1")
	t.Setenv("INPUT_SOURCE", src)
	t.Setenv("INPUT_REPOSITORY", "team/app ")
	t.Setenv("INPUT_TAGS", "v1\nlatest\n")
	t.Setenv("INPUT_REPLICATE-TO", "444455556666:us-east-1,\n777788889999:eu-west-1")
	t.Setenv("INPUT_CONFIGURE-REPLICATION", "true")
	r := run(t, "push")
	if r.code != 0 {
		t.Fatalf("push with inputs: %s\n%s", r.errLine, r.stderr)
	}
	outputs := readFile(t, out)
	for _, want := range []string{"digest", "image-uri", "image-uris", "registry", "aws-account-id", "replication"} {
		if !strings.Contains(outputs, want+"<<") {
			t.Errorf("output %s not set:\n%s", want, outputs)
		}
	}
	if !strings.Contains(outputs, digest) || !strings.Contains(outputs, `"status":"COMPLETE"`) {
		t.Errorf("outputs:\n%s", outputs)
	}
	if s := readFile(t, summary); !strings.Contains(s, "| 444455556666 | us-east-1 |") {
		t.Errorf("step summary:\n%s", s)
	}
	// Every secret handled was masked first (workflow commands go to stderr, which the runner reads
	// for commands too); none appears anywhere else.
	if len(testenv.Masked(r.stderr)) == 0 {
		t.Error("nothing was masked")
	}
	if strings.Contains(r.stdout, "::") {
		t.Errorf("a workflow command on stdout:\n%s", r.stdout)
	}
	testenv.NoSecrets(t, sb.Secrets(), map[string]string{"stdout": r.stdout, "stderr": r.stderr,
		"GITHUB_OUTPUT": outputs, "GITHUB_STEP_SUMMARY": readFile(t, summary)})
}

func TestPushBadInputWritesNothing(t *testing.T) {
	sb := start(t, nil)
	src, _ := layoutSource(t)
	cases := map[string][]string{
		"no tag":          {"--source", src, "--repository", "app"},
		"bad repository":  {"--source", src, "--repository", "App!", "--tag", "v1"},
		"long tag":        {"--source", src, "--repository", "app", "--tag", strings.Repeat("a", 129)},
		"bad destination": {"--source", src, "--repository", "app", "--tag", "v1", "--replicate-to", "prod:us-east-1"},
		"both dests":      {"--source", src, "--repository", "app", "--destination", "127.0.0.1:5000/app", "--tag", "v1"},
		"unknown source":  {"--source", "ftp://x", "--repository", "app", "--tag", "v1"},
		"missing layout":  {"--source", "oci-layout:/nonexistent", "--repository", "app", "--tag", "v1"},
		"bad mode":        {"--source", src, "--repository", "app", "--tag", "v1", "--replication", "fast"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			sb.Log.Reset()
			r := run(t, append([]string{"push", "--role-arn", ciRole}, args...)...)
			if r.code != 2 {
				t.Fatalf("exit %d: %s", r.code, r.errLine)
			}
			if strings.Contains(strings.TrimSpace(r.errLine), "\n") {
				t.Errorf("not one line: %q", r.errLine)
			}
			if w := sb.Log.Writes(); len(w) != 0 {
				t.Errorf("writes: %+v", w)
			}
		})
	}
}

func TestDemo(t *testing.T) {
	r := run(t, "demo")
	if r.code != 0 {
		t.Fatalf("demo: %s\n%s", r.errLine, r.stderr)
	}
	if n := strings.Count(r.stdout, "COMPLETE"); n != 4 {
		t.Errorf("%d COMPLETE destinations, want 4:\n%s", n, r.stdout)
	}
	if !strings.Contains(r.stdout, "Every copy has the pushed digest") {
		t.Errorf("demo output:\n%s", r.stdout)
	}
}

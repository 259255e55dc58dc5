package ship_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"sigs.k8s.io/yaml"

	"github.com/ecrpush/ecrpush/internal/testenv"
	"github.com/ecrpush/ecrpush/sandbox"
)

// root is the repository root, where action.yml, README.md and the Dockerfile live.
const root = "../.."

// binary is ecrpush built as the Dockerfile builds it (see TestMain).
var binary string

// testVersion is stamped into the binary like the Dockerfile's VERSION build argument.
const testVersion = "v0.0.0-ship"

// dockerfileLDFlags must stay the Dockerfile's -ldflags (TestDockerfile checks it).
const dockerfileLDFlags = "-s -w -X github.com/ecrpush/ecrpush/internal/cli.Version="

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ecrpush-ship-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "ecrpush")
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ship: the go command is not on PATH:", err)
		return 1
	}
	// The Dockerfile's build: static, trimmed, stripped, version stamped.
	cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags", dockerfileLDFlags+testVersion, "-o", binary, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "ship: go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readYAML(t testing.TB, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(readFile(t, path)), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// fencedBlocks returns the bodies of the markdown code blocks fenced with ```lang.
func fencedBlocks(markdown, lang string) []string {
	var out []string
	var cur []string
	in := false
	for _, line := range strings.Split(markdown, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```"+lang:
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			out = append(out, strings.Join(cur, "\n")+"\n")
		case in:
			cur = append(cur, line)
		}
	}
	return out
}

// startSandbox starts the default sandbox, with replication quick enough for tests, edited by edit.
func startSandbox(t *testing.T, edit func(*sandbox.Config)) *sandbox.Sandbox {
	t.Helper()
	cfg := sandbox.DefaultConfig()
	cfg.ReplicationDelay = sandbox.Dur(100 * time.Millisecond)
	cfg.StorageDir = t.TempDir()
	if edit != nil {
		edit(cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		sb.Close()
	})
	return sb
}

// baseEnv is the environment a CI step gets, pointed at the sandbox: nothing inherited from this machine
// (no AWS profile, no docker config), a HOME of its own, and no AWS region (neither GitHub nor Cloud Build
// sets one: the examples must).
func baseEnv(t *testing.T, sb *sandbox.Sandbox, drop func(key string) bool) map[string]string {
	t.Helper()
	home := t.TempDir()
	env := map[string]string{
		"HOME":                        home,
		"TMPDIR":                      t.TempDir(),
		"AWS_CONFIG_FILE":             filepath.Join(home, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "no-aws-credentials"),
	}
	for _, kv := range sb.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if k == "AWS_REGION" || k == "AWS_DEFAULT_REGION" || (drop != nil && drop(k)) {
			continue
		}
		env[k] = v
	}
	return env
}

type result struct {
	code           int
	stdout, stderr string
	errLine        string // the last "ecrpush: " line of stderr, the one-line error
}

// run runs the built binary with exactly env in dir.
func run(t *testing.T, dir string, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run %v: %v", args, err)
		}
		r.code = ee.ExitCode()
	}
	for _, line := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(line, "ecrpush: ") {
			r.errLine = line
		}
	}
	return r
}

// writeSource writes a small random image where an image reference like docker-archive:FILE or
// oci-layout:DIR[:TAG] points (relative paths under dir), and returns the digest a push of it must report.
func writeSource(t *testing.T, dir, source string) string {
	t.Helper()
	transport, ref, _ := strings.Cut(source, ":")
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	switch transport {
	case "docker-archive":
		tag, _ := name.NewTag("app:latest")
		path := abs(ref)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := tarball.WriteToFile(path, tag, img); err != nil {
			t.Fatal(err)
		}
	case "oci-layout":
		path, tag, _ := strings.Cut(ref, ":")
		p, err := layout.Write(abs(path), empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		var opts []layout.Option
		if tag != "" {
			opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag}))
		}
		if err := p.AppendImage(img, opts...); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("source %q: the tests generate docker-archive: and oci-layout: sources only", source)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// githubOutputs parses a GITHUB_OUTPUT file: name=value lines and name<<DELIMITER blocks.
func githubOutputs(t *testing.T, text string) map[string]string {
	t.Helper()
	out := map[string]string{}
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" {
			continue
		}
		if k, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(k, "=") {
			var val []string
			j := i + 1
			for ; j < len(lines) && lines[j] != delim; j++ {
				val = append(val, lines[j])
			}
			if j == len(lines) {
				t.Fatalf("GITHUB_OUTPUT: %s<<%s is never closed", k, delim)
			}
			out[k] = strings.Join(val, "\n")
			i = j
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("GITHUB_OUTPUT: line %q is neither name=value nor name<<DELIMITER", line)
		}
		out[k] = v
	}
	return out
}

// pushReport is the documented JSON result of a push (CLI.md): what GitHub outputs and Cloud Build's
// $BUILDER_OUTPUT/output carry.
type pushReport struct {
	Digest string `json:"digest"`
	Images []struct {
		URI  string   `json:"uri"`
		Tags []string `json:"tags"`
	} `json:"images"`
	Replication []replicationRow `json:"replication"`
}

type replicationRow struct {
	Account     string  `json:"account"`
	Region      string  `json:"region"`
	URI         string  `json:"uri"`
	Status      string  `json:"status"`
	FailureCode string  `json:"failureCode"`
	Seconds     float64 `json:"seconds"`
}

func decodeJSON(t *testing.T, what, text string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(text), v); err != nil {
		t.Fatalf("%s is not the documented JSON: %v\n%s", what, err, text)
	}
}

// destinations expands a --replicate-to value into ACCOUNT:REGION keys (a bare REGION is the ci account).
func destinations(list, ciAccount string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == '\n' }) {
		p = strings.TrimSpace(p)
		p, _, _ = strings.Cut(p, "=")
		if p == "" {
			continue
		}
		if !strings.Contains(p, ":") {
			p = ciAccount + ":" + p
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// checkReplication checks one finished row per destination.
func checkReplication(t *testing.T, rows []replicationRow, want []string, digest string) {
	t.Helper()
	var got []string
	for _, r := range rows {
		got = append(got, r.Account+":"+r.Region)
		if r.Status != "COMPLETE" && r.Status != "COPIED" {
			t.Errorf("replication to %s:%s is %s %s, want COMPLETE or COPIED", r.Account, r.Region, r.Status, r.FailureCode)
		}
		if !strings.HasSuffix(r.URI, "@"+digest) {
			t.Errorf("replica URI %q does not carry the digest %s", r.URI, digest)
		}
	}
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("replication rows for %v, want %v", got, want)
	}
}

// noSecrets fails when a secret the sandbox issued appears in stdout or another output. In stdout, the lines
// that register a mask (::add-mask::SECRET) are how GitHub learns a secret, and the only place one may appear.
func noSecrets(t *testing.T, secrets []string, stdout string, others map[string]string) {
	t.Helper()
	var lines []string
	for _, line := range strings.Split(stdout, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") {
			lines = append(lines, line)
		}
	}
	outputs := map[string]string{"stdout (mask lines aside)": strings.Join(lines, "\n")}
	for k, v := range others {
		outputs[k] = v
	}
	testenv.NoSecrets(t, secrets, outputs)
}

var expressionRe = regexp.MustCompile(`\$\{\{\s*([^}]*?)\s*\}\}`)

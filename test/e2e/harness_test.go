package e2e_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/ecrpush/ecrpush/internal/cli"
	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/sandboxtest"
	"github.com/ecrpush/ecrpush/internal/testenv"
	"github.com/ecrpush/ecrpush/sandbox"
	"github.com/ecrpush/ecrpush/sandbox/fault"
)

const (
	ciRole     = "arn:aws:iam::" + sandbox.CIAccount + ":role/ecrpush-ci"
	deployRole = "ecrpush-deploy"
	ciRegion   = "us-east-1"
)

// long reports whether the long variants run (ECRPUSH_LONG=1).
func long() bool { return os.Getenv("ECRPUSH_LONG") == "1" }

// scanned adds up every secret scan in the package, for the figures -v prints at the end.
var scanned struct{ tests, outputs, bytes, secrets, hits atomic.Int64 }

func TestMain(m *testing.M) {
	code := m.Run()
	if testing.Verbose() {
		fmt.Printf("secret scan: %d tests, %d outputs, %d bytes, %d secrets checked, %d hits\n",
			scanned.tests.Load(), scanned.outputs.Load(), scanned.bytes.Load(), scanned.secrets.Load(), scanned.hits.Load())
	}
	os.Exit(code)
}

// harness is one sandbox with the process environment pointed at it, as `eval $(ecrpush sandbox)`
// leaves a shell. Everything a run prints or writes is kept and scanned for secrets when the test
// ends, so no test can leak without failing.
type harness struct {
	t  *testing.T
	sb *sandbox.Sandbox

	mu      sync.Mutex
	outputs []captured
	extra   []string // secrets the sandbox does not know it issued (forged tokens)
	sess    *federate.Session
	configs map[string]aws.Config
}

type captured struct{ name, text string }

// fastConfig is the default sandbox with a replication lag short enough for tests.
func fastConfig() *sandbox.Config {
	cfg := sandbox.DefaultConfig()
	cfg.ReplicationDelay = sandbox.Dur(100 * time.Millisecond)
	return cfg
}

func newHarness(t *testing.T, cfg *sandbox.Config) *harness {
	t.Helper()
	if cfg == nil {
		cfg = fastConfig()
	}
	sb := sandboxtest.Start(t, cfg)
	// Nothing from the developer's or runner's environment may reach a run: besides what
	// sandboxtest.Export clears, every ecrpush flag variable, GitHub input and AWS setting.
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ECRPUSH_") && k != "ECRPUSH_LONG" || strings.HasPrefix(k, "INPUT_") || strings.HasPrefix(k, "GITHUB_") ||
			strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "ACTIONS_") || k == "DOCKER_HOST" {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	sandboxtest.Export(t, sb)
	h := &harness{t: t, sb: sb, configs: map[string]aws.Config{}}
	t.Cleanup(h.scan)
	return h
}

// secret adds a value the scan must not find (e.g. a forged token written to a token file).
func (h *harness) secret(s string) {
	h.mu.Lock()
	h.extra = append(h.extra, s)
	h.mu.Unlock()
}

// keep records an output for the scan.
func (h *harness) keep(name, text string) {
	h.mu.Lock()
	h.outputs = append(h.outputs, captured{name, text})
	h.mu.Unlock()
}

// secrets are every secret the sandbox issued, in every form a client handles it: ECR passwords
// also as the base64 USER:PASSWORD token GetAuthorizationToken returns and Basic auth sends.
func (h *harness) secrets() []string {
	s := h.sb.Secrets()
	for _, p := range h.sb.ECR.Passwords() {
		s = append(s, base64.StdEncoding.EncodeToString([]byte("AWS:"+p)))
	}
	h.mu.Lock()
	s = append(s, h.extra...)
	h.mu.Unlock()
	return s
}

// scan fails the test when any kept output holds a secret. It runs at cleanup, after every run.
func (h *harness) scan() {
	t := h.t
	secrets := h.secrets()
	h.mu.Lock()
	outs := append([]captured(nil), h.outputs...)
	h.mu.Unlock()
	var n int64
	for _, o := range outs {
		n += int64(len(o.text))
	}
	leaks := findLeaks(outs, secrets)
	for _, l := range leaks {
		t.Error(l)
	}
	hits := len(leaks)
	scanned.tests.Add(1)
	scanned.outputs.Add(int64(len(outs)))
	scanned.bytes.Add(n)
	scanned.secrets.Add(int64(len(secrets)))
	scanned.hits.Add(int64(hits))
	t.Logf("secret scan: %d outputs, %d bytes, %d secrets, %d hits", len(outs), n, len(secrets), hits)
}

// findLeaks returns one line per secret found in an output, naming the output and only the
// secret's length and first characters.
func findLeaks(outs []captured, secrets []string) []string {
	var leaks []string
	for _, o := range outs {
		for _, s := range secrets {
			if len(s) >= 8 && strings.Contains(o.text, s) {
				leaks = append(leaks, fmt.Sprintf("a secret (%d chars, starting %q) leaked into %s", len(s), s[:4], o.name))
			}
		}
	}
	return leaks
}

// result is one command line run.
type result struct {
	code    int
	err     error
	stdout  string
	stderr  string
	errLine string // cli.Message(err), the one line main prints
	output  string // GITHUB_OUTPUT
	summary string // GITHUB_STEP_SUMMARY
	builder string // $BUILDER_OUTPUT/output
}

// env is a run's environment on top of the process's: a key set to "" is unset.
type env map[string]string

// github is the environment of a GitHub Actions step with its own output files.
func (h *harness) github() env {
	d := h.t.TempDir()
	return env{"GITHUB_OUTPUT": filepath.Join(d, "output"), "GITHUB_STEP_SUMMARY": filepath.Join(d, "summary")}
}

// local is a terminal outside any CI (identity comes from flags).
func (h *harness) local() env { return env{"GITHUB_ACTIONS": ""} }

// cloudBuild is a Cloud Build step: BUILDER_OUTPUT set, the metadata server answering.
func (h *harness) cloudBuild() env {
	return env{"GITHUB_ACTIONS": "", "BUILDER_OUTPUT": h.t.TempDir()}
}

// run runs the command line in-process, as main does, and keeps everything it printed or wrote.
func (h *harness) run(label string, e env, args ...string) result {
	return h.runCtx(context.Background(), label, e, false, args...)
}

// runCtx is run with a context; secretStdout marks stdout as holding credentials by design
// (federate --format json|export), which a user sends to a file: it is not scanned.
func (h *harness) runCtx(ctx context.Context, label string, e env, secretStdout bool, args ...string) result {
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		if v, ok := e[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	err := cli.Run(ctx, "ecrpush", args, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb, Getenv: getenv})
	r := result{code: cli.ExitCode(err), err: err, stdout: out.String(), stderr: errb.String()}
	if err != nil {
		r.errLine = cli.Message(err)
	}
	read := func(p string) string {
		if p == "" {
			return ""
		}
		b, _ := os.ReadFile(p)
		return string(b)
	}
	r.output, r.summary = read(e["GITHUB_OUTPUT"]), read(e["GITHUB_STEP_SUMMARY"])
	if d := e["BUILDER_OUTPUT"]; d != "" {
		r.builder = read(filepath.Join(d, "output"))
	}
	if !secretStdout {
		h.keep(label+": stdout (without ::add-mask:: lines)", unmasked(r.stdout))
	}
	h.keep(label+": stderr (without ::add-mask:: lines)", unmasked(r.stderr))
	h.keep(label+": error line", r.errLine)
	h.keep(label+": GITHUB_OUTPUT", r.output)
	h.keep(label+": GITHUB_STEP_SUMMARY", r.summary)
	h.keep(label+": BUILDER_OUTPUT/output", r.builder)
	return r
}

// unmasked drops the ::add-mask:: lines, the one place a secret is meant to appear (GitHub hides it
// from the rest of the log).
func unmasked(out string) string { return testenv.Unmasked(out) }

// noFaults turns fault injection off on every endpoint, so the test's own checks read reliably.
func (h *harness) noFaults() { h.setFaults(fault.Config{}) }

// setFaults sets one fault profile on STS, the ECR API, every registry and the layer bucket.
func (h *harness) setFaults(c fault.Config) {
	h.sb.Faults.Set(sandbox.EndpointSTS, c)
	h.sb.Faults.Set(sandbox.EndpointECR, c)
	h.sb.Faults.Set(sandbox.EndpointS3, c)
	for _, id := range h.sb.RegistryIDs() {
		h.sb.Faults.Set(sandbox.RegistryEndpoint(id), c)
	}
}

// config returns credentials of account (the ci role, or the account's deploy role) in region,
// federated the way a user would.
func (h *harness) config(ctx context.Context, account, region string) aws.Config {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.configs[account]; ok {
		c = c.Copy()
		c.Region = region
		return c
	}
	if h.sess == nil {
		s, err := federate.Federate(ctx, federate.Options{RoleARN: ciRole, Identity: federate.IdentityGitHub, Region: ciRegion})
		if err != nil {
			h.t.Fatalf("federate for checks: %v", err)
		}
		h.sess = s
		h.configs[sandbox.CIAccount] = s.Config
	}
	c := h.sess.Config
	if account != sandbox.CIAccount {
		var err error
		c, err = h.sess.Role(ctx, "arn:aws:iam::"+account+":role/"+deployRole)
		if err != nil {
			h.t.Fatalf("federate into %s: %v", account, err)
		}
		h.configs[account] = c
	}
	c = c.Copy()
	c.Region = region
	return c
}

// registry returns the host of account's registry in region and a Basic authenticator from that
// account's own GetAuthorizationToken.
func (h *harness) registry(ctx context.Context, account, region string) (string, authn.Authenticator) {
	h.t.Helper()
	out, err := ecr.NewFromConfig(h.config(ctx, account, region)).GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		h.t.Fatalf("GetAuthorizationToken in %s/%s: %v", account, region, err)
	}
	ad := out.AuthorizationData[0]
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(ad.AuthorizationToken))
	user, pass, _ := strings.Cut(string(raw), ":")
	return strings.TrimPrefix(aws.ToString(ad.ProxyEndpoint), "http://"), &authn.Basic{Username: user, Password: pass}
}

// verify checks that repo:tag in account's registry in region is digest and that the image (or
// index) is whole: go-containerregistry's validate reads every blob and checks its digest and size.
func (h *harness) verify(ctx context.Context, account, region, repo, tag, digest string) error {
	host, auth := h.registry(ctx, account, region)
	ref, err := name.ParseReference(host + "/" + repo + ":" + tag)
	if err != nil {
		return err
	}
	desc, err := remote.Get(ref, remote.WithAuth(auth), remote.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%s/%s %s:%s: %w", account, region, repo, tag, err)
	}
	if desc.Digest.String() != digest {
		return fmt.Errorf("%s/%s %s:%s is %s, want %s", account, region, repo, tag, desc.Digest, digest)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		if err := validate.Index(idx); err != nil {
			return fmt.Errorf("%s/%s %s:%s: validate.Index: %w", account, region, repo, tag, err)
		}
		return nil
	}
	img, err := desc.Image()
	if err != nil {
		return err
	}
	if err := validate.Image(img); err != nil {
		return fmt.Errorf("%s/%s %s:%s: validate.Image: %w", account, region, repo, tag, err)
	}
	return nil
}

// tagsWhole lists every tag of repo in account's registry in region and validates each image: a
// tag must never point at missing blobs. It returns the tags found (none when the repository is
// missing).
func (h *harness) tagsWhole(ctx context.Context, account, region, repo string) ([]string, error) {
	host, auth := h.registry(ctx, account, region)
	r, err := name.NewRepository(host + "/" + repo)
	if err != nil {
		return nil, err
	}
	tags, err := remote.List(r, remote.WithAuth(auth), remote.WithContext(ctx))
	if err != nil {
		if strings.Contains(err.Error(), "NAME_UNKNOWN") || strings.Contains(err.Error(), "RepositoryNotFound") {
			return nil, nil
		}
		return nil, err
	}
	for _, tag := range tags {
		desc, err := remote.Get(r.Tag(tag), remote.WithAuth(auth), remote.WithContext(ctx))
		if err != nil {
			return tags, fmt.Errorf("tag %s: %w", tag, err)
		}
		if err := h.verify(ctx, account, region, repo, tag, desc.Digest.String()); err != nil {
			return tags, err
		}
	}
	return tags, nil
}

// layoutOf writes images as an OCI layout, each under its tag, and returns the layout directory.
func layoutOf(t testing.TB, imgs map[string]v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for tag, img := range imgs {
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// randomSource writes a random image as an OCI layout and returns its --source and digest.
func randomSource(t testing.TB, size, layers int64) (string, string) {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return "oci-layout:" + layoutOf(t, map[string]v1.Image{"v1": img}) + ":v1", d.String()
}

// oneLine fails unless msg is a single line.
func oneLine(t testing.TB, msg string) {
	t.Helper()
	if strings.Contains(strings.TrimSpace(msg), "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
}

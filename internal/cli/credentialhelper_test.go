package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/internal/cli"
	"github.com/ecrpush/ecrpush/internal/testenv"
	"github.com/ecrpush/ecrpush/sandbox"
)

// runAs runs a command line in-process under program name argv0, with stdin.
func runAs(t *testing.T, argv0, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	err := cli.Run(context.Background(), argv0, args, cli.IO{In: strings.NewReader(stdin), Out: &out, Err: &errb, Getenv: os.Getenv})
	r := result{code: cli.ExitCode(err), stdout: out.String(), stderr: errb.String()}
	if err != nil {
		r.errLine = cli.Message(err)
	}
	r.allCaptured = r.stdout + r.stderr + r.errLine
	return r
}

// ciHost is the sandbox ci registry in us-east-1 as docker names it (host:port).
func ciHost(sb *sandbox.Sandbox) string {
	return strings.TrimPrefix(sb.Endpoints.Registries[sandbox.RegistryID{Account: sandbox.CIAccount, Region: "us-east-1"}], "http://")
}

// pushed pushes a random image to the ci registry as repo:v1 and returns its digest.
func pushed(t *testing.T, repo string) string {
	t.Helper()
	src, digest := layoutSource(t)
	if r := run(t, "push", "--role-arn", ciRole, "--identity", "github", "--source", src, "--repository", repo, "--tag", "v1"); r.code != 0 {
		t.Fatalf("push: %s\n%s", r.errLine, r.stderr)
	}
	return digest
}

// pull reads ref's digest with auth.
func pull(ref string, auth authn.Authenticator) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	d, err := remote.Get(r, remote.WithAuth(auth))
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}

// helperEnv points the helper at the sandbox registry and a fresh cache directory.
func helperEnv(t *testing.T, sb *sandbox.Sandbox) string {
	t.Helper()
	cache := filepath.Join(t.TempDir(), "cache")
	t.Setenv("ECRPUSH_CACHE_DIR", cache)
	t.Setenv("ECRPUSH_REGISTRY_HOSTS", ciHost(sb)+"="+sandbox.CIAccount+":us-east-1")
	return cache
}

func TestCredentialHelperGet(t *testing.T) {
	sb := start(t, nil)
	host := ciHost(sb)
	digest := pushed(t, "team/app")
	cache := helperEnv(t, sb)

	sb.Log.Reset()
	r := runAs(t, "/usr/local/bin/docker-credential-ecrpush", "https://"+host+"\n", "get")
	if r.code != 0 {
		t.Fatalf("get: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}
	var creds credentials.Credentials
	if err := json.Unmarshal([]byte(r.stdout), &creds); err != nil {
		t.Fatalf("get answered %q: %v", r.stdout, err)
	}
	if creds.Username != "AWS" || creds.Secret == "" || creds.ServerURL != "https://"+host {
		t.Fatalf("credentials %+v", creds)
	}
	if sb.Log.Count(sandbox.EndpointSTS, "") == 0 || sb.Log.Count(sandbox.EndpointECR, "GetAuthorizationToken") != 1 {
		t.Errorf("first get: %d STS calls, %d GetAuthorizationToken", sb.Log.Count(sandbox.EndpointSTS, ""), sb.Log.Count(sandbox.EndpointECR, "GetAuthorizationToken"))
	}
	// The credentials pull; nothing else does.
	if got, err := pull(host+"/team/app:v1", &authn.Basic{Username: creds.Username, Password: creds.Secret}); err != nil || got != digest {
		t.Errorf("pull with the helper's credentials: %s, %v (want %s)", got, err, digest)
	}
	if _, err := pull(host+"/team/app:v1", authn.Anonymous); err == nil {
		t.Error("an anonymous pull worked: the test proves nothing")
	}

	// Within half-life: the cached token, no STS (nor ECR) call at all.
	sts, ecrCalls := sb.Log.Count(sandbox.EndpointSTS, ""), sb.Log.Count(sandbox.EndpointECR, "")
	r2 := runAs(t, "ecrpush", host, "credential-helper", "get")
	if r2.code != 0 || !strings.Contains(r2.stdout, creds.Secret) {
		t.Fatalf("second get: exit %d %s", r2.code, r2.errLine)
	}
	if n := sb.Log.Count(sandbox.EndpointSTS, ""); n != sts {
		t.Errorf("second get made %d STS calls", n-sts)
	}
	if n := sb.Log.Count(sandbox.EndpointECR, ""); n != ecrCalls {
		t.Errorf("second get made %d ECR API calls", n-ecrCalls)
	}

	// The cache: one 0600 file in a 0700 directory.
	files, _ := filepath.Glob(filepath.Join(cache, "*"))
	if len(files) != 1 {
		t.Fatalf("cache holds %v", files)
	}
	for p, want := range map[string]os.FileMode{cache: 0o700, files[0]: 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (%v)", p, fi.Mode().Perm(), want, err)
		}
	}

	// list names the registry; erase drops the token, so the next get fetches a new one.
	if r := runAs(t, cli.HelperName, "", "list"); r.code != 0 || !strings.Contains(r.stdout, host) {
		t.Errorf("list: exit %d %q", r.code, r.stdout)
	}
	if r := runAs(t, cli.HelperName, host, "erase"); r.code != 0 {
		t.Errorf("erase: %s", r.errLine)
	}
	if r := runAs(t, cli.HelperName, host, "get"); r.code != 0 || sb.Log.Count(sandbox.EndpointECR, "GetAuthorizationToken") != 2 {
		t.Errorf("get after erase: exit %d, %d GetAuthorizationToken", r.code, sb.Log.Count(sandbox.EndpointECR, "GetAuthorizationToken"))
	}

	// A registry that is not ECR: the protocol's "not found", exit 1, no network.
	sts = sb.Log.Count(sandbox.EndpointSTS, "")
	for _, other := range []string{"https://index.docker.io/v1/", "ghcr.io", "127.0.0.1:1"} {
		r := runAs(t, cli.HelperName, other, "get")
		if r.code != 1 || strings.TrimSpace(r.stdout) != "credentials not found in native keychain" {
			t.Errorf("get %s: exit %d stdout %q", other, r.code, r.stdout)
		}
	}
	if sb.Log.Count(sandbox.EndpointSTS, "") != sts {
		t.Error("a non-ECR host made an STS call")
	}
	// store is refused (docker login is not needed), and no secret leaked anywhere but stdout of get.
	if r := runAs(t, cli.HelperName, `{"ServerURL":"`+host+`","Username":"AWS","Secret":"x"}`, "store"); r.code == 0 {
		t.Error("store succeeded")
	}
	testenv.NoSecrets(t, sb.Secrets(), map[string]string{"second get stderr": r2.stderr, "first get stderr": r.stderr})

	// A mapping that does not parse: exit 2, the reason on stdout where docker shows it.
	t.Setenv("ECRPUSH_REGISTRY_HOSTS", host+"=111122223333")
	if r := runAs(t, cli.HelperName, host, "get"); r.code != 2 || !strings.Contains(r.stdout, "HOST=ACCOUNT:REGION") {
		t.Errorf("bad ECRPUSH_REGISTRY_HOSTS: exit %d %q", r.code, r.stdout)
	}
}

// BenchmarkCredentialHelperCachedGet is one `get` answered from the cache (in-process: no fork/exec).
func BenchmarkCredentialHelperCachedGet(b *testing.B) {
	sb, err := sandbox.Start(context.Background(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	// The AWS SDK reads its endpoints from the process environment, so the benchmark sets it as start does.
	for _, kv := range append(sb.Environ(), "ECRPUSH_CACHE_DIR="+b.TempDir(), "ECRPUSH_REGISTRY_HOSTS="+ciHost(sb)+"="+sandbox.CIAccount+":us-east-1",
		"AWS_CONFIG_FILE="+filepath.Join(b.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(b.TempDir(), "none")) {
		k, v, _ := strings.Cut(kv, "=")
		b.Setenv(k, v)
	}
	getenv := os.Getenv
	get := func() {
		var out bytes.Buffer
		if err := cli.Run(context.Background(), cli.HelperName, []string{"get"}, cli.IO{In: strings.NewReader(ciHost(sb)), Out: &out, Err: &out, Getenv: getenv}); err != nil {
			b.Fatalf("%v: %s", err, out.String())
		}
	}
	get()
	sts := sb.Log.Count(sandbox.EndpointSTS, "")
	b.ResetTimer()
	for range b.N {
		get()
	}
	b.StopTimer()
	if sb.Log.Count(sandbox.EndpointSTS, "") != sts {
		b.Fatal("a cached get called STS")
	}
}

// TestCredentialHelperClients drives the helper as docker's own clients do: the built binary under the
// docker-credential-ecrpush name through docker-credential-helpers' client, go-containerregistry's
// default keychain (crane, ko) and skopeo, each reading a docker config's credHelpers.
func TestCredentialHelperClients(t *testing.T) {
	sb := start(t, nil)
	host := ciHost(sb)
	digest := pushed(t, "team/app")
	helperEnv(t, sb)
	bin := binary(t)
	dir := t.TempDir()
	link := filepath.Join(dir, cli.HelperName)
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	// docker's client library.
	creds, err := client.Get(client.NewShellProgramFunc(link), "https://"+host)
	if err != nil || creds.Username != "AWS" || creds.Secret == "" {
		t.Fatalf("docker client get: %+v %v", creds, err)
	}
	if _, err := client.Get(client.NewShellProgramFunc(link), "https://index.docker.io/v1/"); !credentials.IsErrCredentialsNotFound(err) {
		t.Errorf("docker client get for Docker Hub: %v, want credentials not found", err)
	}
	if out, err := exec.Command(link, "version").Output(); err != nil || !strings.HasPrefix(string(out), cli.HelperName) {
		t.Errorf("version: %q %v", out, err)
	}

	// A docker config naming the helper for the registry, as `"credHelpers": {HOST: "ecrpush"}`.
	home := t.TempDir()
	cfgDir := filepath.Join(home, ".docker")
	os.MkdirAll(cfgDir, 0o700)
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"credHelpers":{"`+host+`":"ecrpush"}}`), 0o600)
	t.Setenv("DOCKER_CONFIG", cfgDir)
	ref, _ := name.ParseReference(host + "/team/app:v1")
	if d, err := remote.Get(ref, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil || d.Digest.String() != digest {
		t.Errorf("ggcr default keychain (crane, ko): %v", err)
	}

	skopeo := testenv.Tool(t, "skopeo", "apt-get install -y skopeo")
	cmd := exec.Command(skopeo, "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+host+"/team/app:v1")
	cmd.Env = append(os.Environ(), "HOME="+home, "REGISTRY_AUTH_FILE="+filepath.Join(cfgDir, "config.json"))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != digest {
		t.Errorf("skopeo inspect through the helper: %v\n%s", err, out)
	}
}

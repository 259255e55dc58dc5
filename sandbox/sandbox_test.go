package sandbox_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ecrpush/ecrpush/internal/sandboxtest"
	"github.com/ecrpush/ecrpush/internal/testenv"
	"github.com/ecrpush/ecrpush/sandbox"
	"github.com/ecrpush/ecrpush/sandbox/fault"
)

const ciRole = "arn:aws:iam::111122223333:role/ecrpush-ci"

func start(t *testing.T, cfg *sandbox.Config) *sandbox.Sandbox { return sandboxtest.Start(t, cfg) }

// awsCLI runs the aws CLI against the sandbox with the given extra environment.
type awsCLI struct {
	t    *testing.T
	path string
	env  []string
}

func newAWSCLI(t *testing.T, sb *sandbox.Sandbox) *awsCLI {
	p := testenv.Tool(t, "aws", "the aws CLI (pip install awscli)")
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"), "AWS_PAGER="}
	env = append(env, sb.Environ()...)
	return &awsCLI{t: t, path: p, env: env}
}

func (a *awsCLI) run(extraEnv []string, args ...string) (string, string, error) {
	cmd := exec.Command(a.path, append(args, "--output", "json")...)
	cmd.Env = append(append([]string(nil), a.env...), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (a *awsCLI) ok(extraEnv []string, args ...string) map[string]any {
	a.t.Helper()
	out, stderr, err := a.run(extraEnv, args...)
	if err != nil {
		a.t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	var v map[string]any
	if strings.TrimSpace(out) != "" {
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			a.t.Fatalf("aws %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return v
}

func (a *awsCLI) fails(code string, extraEnv []string, args ...string) {
	a.t.Helper()
	_, stderr, err := a.run(extraEnv, args...)
	if err == nil {
		a.t.Fatalf("aws %s succeeded, want %s", strings.Join(args, " "), code)
	}
	if !strings.Contains(stderr, "("+code+")") {
		a.t.Errorf("aws %s: want error code %s, got:\n%s", args[1], code, stderr)
	}
}

func githubClaims(sub, aud string, iat time.Time, life time.Duration) map[string]any {
	return map[string]any{"sub": sub, "aud": aud, "repository": "example/app", "iat": iat.Unix(), "nbf": iat.Unix(), "exp": iat.Add(life).Unix()}
}

func TestAWSCLIAgainstSandbox(t *testing.T) {
	sb := start(t, nil)
	cli := newAWSCLI(t, sb)
	tok, err := sb.GitHub.Token("sts.amazonaws.com")
	if err != nil {
		t.Fatal(err)
	}
	assume := func(token string) []string {
		return []string{"sts", "assume-role-with-web-identity", "--role-arn", ciRole, "--role-session-name", "cli-test", "--web-identity-token", token}
	}
	out := cli.ok(nil, assume(tok)...)
	creds := out["Credentials"].(map[string]any)
	if out["AssumedRoleUser"].(map[string]any)["Arn"] != "arn:aws:sts::111122223333:assumed-role/ecrpush-ci/cli-test" {
		t.Errorf("AssumedRoleUser %v", out["AssumedRoleUser"])
	}
	env := []string{"AWS_ACCESS_KEY_ID=" + creds["AccessKeyId"].(string), "AWS_SECRET_ACCESS_KEY=" + creds["SecretAccessKey"].(string),
		"AWS_SESSION_TOKEN=" + creds["SessionToken"].(string)}

	now := time.Now()
	wrongAud, _ := sb.GitHubIss.Sign(githubClaims("repo:example/app:ref:refs/heads/main", "https://example.invalid", now, 5*time.Minute))
	wrongSub, _ := sb.GitHubIss.Sign(githubClaims("repo:example/other:ref:refs/heads/main", "sts.amazonaws.com", now, 5*time.Minute))
	expired, _ := sb.GitHubIss.Sign(githubClaims("repo:example/app:ref:refs/heads/main", "sts.amazonaws.com", now.Add(-time.Hour), 10*time.Minute))
	unknownKey, _ := sb.GitHubIss.SignWithUnknownKey(githubClaims("repo:example/app:ref:refs/heads/main", "sts.amazonaws.com", now, 5*time.Minute))
	cli.fails("InvalidIdentityToken", nil, assume(wrongAud)...)
	cli.fails("AccessDenied", nil, assume(wrongSub)...)
	cli.fails("ExpiredTokenException", nil, assume(expired)...)
	cli.fails("InvalidIdentityToken", nil, assume(unknownKey)...)

	id := cli.ok(env, "sts", "get-caller-identity")
	if id["Account"] != "111122223333" {
		t.Errorf("get-caller-identity %v", id)
	}
	repo := cli.ok(env, "ecr", "create-repository", "--repository-name", "team/app", "--image-tag-mutability", "IMMUTABLE")
	if r := repo["repository"].(map[string]any); r["repositoryName"] != "team/app" || r["imageTagMutability"] != "IMMUTABLE" {
		t.Errorf("create-repository %v", repo)
	}
	desc := cli.ok(env, "ecr", "describe-repositories")
	if n := len(desc["repositories"].([]any)); n != 1 {
		t.Errorf("describe-repositories: %d repositories", n)
	}
	auth := cli.ok(env, "ecr", "get-authorization-token")
	ad := auth["authorizationData"].([]any)[0].(map[string]any)
	if ad["proxyEndpoint"] != sb.Endpoints.Registries[sandbox.RegistryID{Account: "111122223333", Region: "us-east-1"}] {
		t.Errorf("proxyEndpoint %v", ad["proxyEndpoint"])
	}
	rules := `{"rules":[{"destinations":[{"region":"eu-west-1","registryId":"111122223333"},{"region":"us-east-1","registryId":"444455556666"}],"repositoryFilters":[{"filter":"team/","filterType":"PREFIX_MATCH"}]}]}`
	cli.ok(env, "ecr", "put-replication-configuration", "--replication-configuration", rules)
	reg := cli.ok(env, "ecr", "describe-registry")
	if reg["registryId"] != "111122223333" || len(reg["replicationConfiguration"].(map[string]any)["rules"].([]any)) != 1 {
		t.Errorf("describe-registry %v", reg)
	}
	// An image for describe-image-replication-status.
	ref := pushRandom(t, sb, sandbox.RegistryID{Account: "111122223333", Region: "us-east-1"}, env, "team/app:v1")
	st := cli.ok(env, "ecr", "describe-image-replication-status", "--repository-name", "team/app", "--image-id", "imageDigest="+ref)
	if n := len(st["replicationStatuses"].([]any)); n != 2 {
		t.Errorf("describe-image-replication-status: %v", st)
	}
	// Forged credentials are refused.
	forged := []string{"AWS_ACCESS_KEY_ID=ASIAFORGEDFORGED1234", "AWS_SECRET_ACCESS_KEY=forged", "AWS_SESSION_TOKEN=forged"}
	cli.fails("UnrecognizedClientException", forged, "ecr", "describe-repositories")
	tampered := append([]string(nil), env...)
	tampered[1] = "AWS_SECRET_ACCESS_KEY=" + strings.Repeat("x", 40)
	cli.fails("InvalidSignatureException", tampered, "ecr", "describe-repositories")
}

// pushRandom pushes a random image with credentials taken from env (AWS_* lines) and returns its digest.
func pushRandom(t *testing.T, sb *sandbox.Sandbox, id sandbox.RegistryID, env []string, repoTag string) string {
	t.Helper()
	img, err := random.Image(1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(sb.Endpoints.Registries[id], "http://") + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(password(t, sb, id, env))); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, _ := img.Digest()
	return d.String()
}

// password gets the registry password the way a user would: GetAuthorizationToken through the aws CLI.
func password(t *testing.T, sb *sandbox.Sandbox, id sandbox.RegistryID, env []string) authn.Authenticator {
	t.Helper()
	cli := newAWSCLI(t, sb)
	out, stderr, err := cli.run(append(env, "AWS_REGION="+id.Region, "AWS_DEFAULT_REGION="+id.Region), "ecr", "get-login-password")
	if err != nil {
		t.Fatalf("get-login-password: %v %s", err, stderr)
	}
	return &authn.Basic{Username: "AWS", Password: strings.TrimSpace(out)}
}

func credsEnv(t *testing.T, sb *sandbox.Sandbox, roleARN string, life time.Duration) []string {
	t.Helper()
	role, ok := sb.World.Role(roleARN)
	if !ok {
		t.Fatalf("no role %s", roleARN)
	}
	s := sb.World.Issue(role, "test", life, false)
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + s.SecretAccessKey, "AWS_SESSION_TOKEN=" + s.SessionToken}
}

func TestSkopeoAndGGCRPushReplicate(t *testing.T) {
	skopeo := testenv.Tool(t, "skopeo", "apt-get install -y skopeo")
	cfg := sandbox.DefaultConfig()
	cfg.ReplicationDelay = sandbox.Dur(50 * time.Millisecond)
	sb := start(t, cfg)
	cli := newAWSCLI(t, sb)
	env := credsEnv(t, sb, ciRole, time.Hour)
	ci := sandbox.RegistryID{Account: sandbox.CIAccount, Region: "us-east-1"}
	cli.ok(env, "ecr", "create-repository", "--repository-name", "app")
	rules := `{"rules":[{"destinations":[{"region":"eu-west-1","registryId":"111122223333"},` +
		`{"region":"us-east-1","registryId":"444455556666"},{"region":"eu-west-1","registryId":"444455556666"},` +
		`{"region":"us-east-1","registryId":"777788889999"},{"region":"eu-west-1","registryId":"777788889999"}],` +
		`"repositoryFilters":[{"filter":"app","filterType":"PREFIX_MATCH"}]}]}`
	cli.ok(env, "ecr", "put-replication-configuration", "--replication-configuration", rules)

	// ggcr
	digest := pushRandom(t, sb, ci, env, "app:ggcr")
	// skopeo, from an OCI layout made by ggcr
	auth := password(t, sb, ci, env)
	ac, _ := auth.Authorization()
	dir := t.TempDir()
	img, _ := random.Image(2048, 2)
	skopeoDigest, err := writeLayout(dir, img)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(sb.Endpoints.Registries[ci], "http://")
	cmd := exec.Command(skopeo, "copy", "--dest-tls-verify=false", "--dest-creds", "AWS:"+ac.Password,
		"oci:"+dir+":latest", "docker://"+host+"/app:skopeo")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}

	// Both reach prod and staging in both regions (and ci's other region), identical when read back
	// from each destination with that account's own credentials.
	for _, d := range []string{digest, skopeoDigest.String()} {
		for _, s := range waitReplication(t, cli, env, "app", d, 5) {
			if s["status"] != "COMPLETE" {
				t.Errorf("%s: %v", d, s)
				continue
			}
			readBack(t, sb, env, sandbox.RegistryID{Account: s["registryId"].(string), Region: s["region"].(string)}, "app", d)
		}
	}

	// A destination whose registry policy does not let ci in: FAILED with a code, the others COMPLETE.
	if err := sb.World.SetRegistryPolicy(sandbox.StagingAccount, "eu-west-1", ""); err != nil {
		t.Fatal(err)
	}
	third := pushRandom(t, sb, ci, env, "app:after-policy-removed")
	for _, s := range waitReplication(t, cli, env, "app", third, 5) {
		denied := s["registryId"] == sandbox.StagingAccount && s["region"] == "eu-west-1"
		switch {
		case denied && (s["status"] != "FAILED" || s["failureCode"] == nil || s["failureCode"] == ""):
			t.Errorf("staging eu-west-1 without a registry policy: %v", s)
		case !denied && s["status"] != "COMPLETE":
			t.Errorf("%v", s)
		}
	}
}

func readBack(t *testing.T, sb *sandbox.Sandbox, ciEnv []string, dest sandbox.RegistryID, repo, digest string) {
	t.Helper()
	denv := ciEnv
	if dest.Account != sandbox.CIAccount {
		denv = credsEnv(t, sb, "arn:aws:iam::"+dest.Account+":role/ecrpush-deploy", time.Hour)
	}
	ref, _ := name.ParseReference(strings.TrimPrefix(sb.Endpoints.Registries[dest], "http://") + "/" + repo + "@" + digest)
	desc, err := remote.Head(ref, remote.WithAuth(password(t, sb, dest, denv)))
	if err != nil {
		t.Errorf("read back %s: %v", ref, err)
	} else if desc.Digest.String() != digest {
		t.Errorf("%s holds %s", ref, desc.Digest)
	}
}

func waitReplication(t *testing.T, cli *awsCLI, env []string, repo, digest string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := cli.ok(env, "ecr", "describe-image-replication-status", "--repository-name", repo, "--image-id", "imageDigest="+digest)
		var out []map[string]any
		done := true
		for _, s := range st["replicationStatuses"].([]any) {
			m := s.(map[string]any)
			out = append(out, m)
			if m["status"] == "IN_PROGRESS" {
				done = false
			}
		}
		if done && len(out) == n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("replication of %s not settled after 30s: %v", digest, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestExpiry(t *testing.T) {
	cfg := sandbox.DefaultConfig()
	cfg.ECRTokenTTL = sandbox.Dur(2 * time.Second)
	sb := start(t, cfg)
	cli := newAWSCLI(t, sb)
	env := credsEnv(t, sb, ciRole, time.Hour)
	cli.ok(env, "ecr", "create-repository", "--repository-name", "app")
	ci := sandbox.RegistryID{Account: sandbox.CIAccount, Region: "us-east-1"}
	auth := password(t, sb, ci, env)
	img, _ := random.Image(512, 1)
	ref, _ := name.ParseReference(strings.TrimPrefix(sb.Endpoints.Registries[ci], "http://") + "/app:v1")
	if err := remote.Write(ref, img, remote.WithAuth(auth)); err != nil {
		t.Fatalf("push with a fresh token: %v", err)
	}
	time.Sleep(3 * time.Second)
	err := remote.Write(ref, img, remote.WithAuth(auth))
	var te *transport.Error
	if err == nil || !asTransport(err, &te) || te.StatusCode != http.StatusUnauthorized {
		t.Fatalf("push after the token's TTL: %v, want 401", err)
	}

	// Expired STS credentials are refused by the ECR API.
	short := credsEnv(t, sb, ciRole, time.Second)
	time.Sleep(1100 * time.Millisecond)
	cli.fails("ExpiredTokenException", short, "ecr", "describe-repositories")
}

func TestFaultsReplayBySeed(t *testing.T) {
	events := func(seed int64) []string {
		cfg := sandbox.DefaultConfig()
		cfg.Seed = seed
		cfg.Faults.Registries = fault.Config{ErrorRate: 0.3, ThrottleRate: 0.2}
		sb := start(t, cfg)
		ci := sb.Endpoints.Registries[sandbox.RegistryID{Account: sandbox.CIAccount, Region: "us-east-1"}]
		for i := 0; i < 40; i++ {
			resp, err := http.Get(ci + "/v2/")
			if err == nil {
				resp.Body.Close()
			}
		}
		var out []string
		for _, e := range sb.Faults.Events() {
			out = append(out, fmt.Sprintf("%s#%d:%v", e.Endpoint, e.Seq, e.Kind))
		}
		return out
	}
	a, b, c := events(11), events(11), events(12)
	if len(a) == 0 {
		t.Fatal("no faults injected at 50%")
	}
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Errorf("same seed, different faults:\n%v\n%v", a, b)
	}
	if strings.Join(a, ",") == strings.Join(c, ",") {
		t.Errorf("different seeds, same faults: %v", a)
	}
}

func TestConfigFileAndValidation(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(`
seed: 7
credentialLifetime: 60s
accounts:
  - id: "111122223333"
    name: ci
    regions: [us-east-1]
    roles:
      - name: ecrpush-ci
        trustPolicy:
          Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Principal: {Federated: "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"}
              Action: sts:AssumeRoleWithWebIdentity
              Condition:
                StringEquals: {"token.actions.githubusercontent.com:aud": sts.amazonaws.com}
        policies:
          - Version: "2012-10-17"
            Statement: [{Effect: Allow, Action: "ecr:*", Resource: "*"}]
github: {repository: example/app, ref: refs/heads/main}
faults:
  registries: {errorRate: 0.1, retryAfter: 1s}
`), 0o600)
	cfg, err := sandbox.Load(good)
	if err != nil {
		t.Fatal(err)
	}
	sb := start(t, cfg)
	if len(sb.Endpoints.Registries) != 1 || sb.Config.CredentialLifetime.D() != time.Minute {
		t.Errorf("registries %v lifetime %v", sb.Endpoints.Registries, sb.Config.CredentialLifetime)
	}
	for name, body := range map[string]string{
		"bad account":   `accounts: [{id: "1234", name: x, regions: [us-east-1]}]`,
		"bad region":    `accounts: [{id: "111122223333", name: x, regions: [useast1]}]`,
		"unknown field": `acounts: []`,
		"no accounts":   `seed: 1`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := sandbox.Load(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

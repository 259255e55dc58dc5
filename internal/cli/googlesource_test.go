package cli_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/internal/testenv"
	"github.com/ecrpush/ecrpush/sandbox"
)

// artifactRegistry stands in for LOCATION-docker.pkg.dev: a registry that answers only requests bearing
// an access token the sandbox's Google STS issued. It returns its host and a writer that seeds images
// behind the token check.
func artifactRegistry(t *testing.T, sb *sandbox.Sandbox) (host, seed string) {
	t.Helper()
	reg := registry.New(registry.Logger(nilLogger()))
	ar := httptest.NewServer(sb.GoogleSTS.RegistryAuth(reg))
	direct := httptest.NewServer(reg)
	t.Cleanup(ar.Close)
	t.Cleanup(direct.Close)
	return strings.TrimPrefix(ar.URL, "http://"), strings.TrimPrefix(direct.URL, "http://")
}

// awsCredConfig is the configuration `gcloud iam workload-identity-pools create-cred-config --aws`
// writes, token_url and all; ECRPUSH_GOOGLE_STS_ENDPOINT (from the sandbox) redirects the exchange.
func awsCredConfig(t *testing.T, audience string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "clientLibraryConfig-aws.json")
	os.WriteFile(p, fmt.Appendf(nil, `{
  "universe_domain": "googleapis.com",
  "type": "external_account",
  "audience": %q,
  "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
  "token_url": "https://sts.googleapis.com/v1/token",
  "credential_source": {
    "environment_id": "aws1",
    "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
    "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
    "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
  }
}`, audience), 0o600)
	return p
}

func TestArtifactRegistryFromAWS(t *testing.T) {
	sb := start(t, nil)
	t.Setenv("GITHUB_ACTIONS", "") // a terminal: the JSON report on stdout
	host, seed := artifactRegistry(t, sb)
	img, _ := random.Image(4096, 2)
	ref, _ := name.ParseReference(seed + "/example-project/images/app:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	if _, err := pull(host+"/example-project/images/app:v1", authn.Anonymous); err == nil {
		t.Fatal("the Artifact Registry stand-in answered without a token")
	}
	creds := awsCredConfig(t, sb.GoogleSTS.Audiences()[0])

	// push: federate into AWS (GitHub → ci role), exchange that AWS identity for a Google token, read
	// the image from Artifact Registry with it, push it to ECR.
	sb.Log.Reset()
	r := run(t, "push", "--role-arn", ciRole, "--identity", "github", "--source", host+"/example-project/images/app:v1",
		"--source-google-credentials", creds, "--source-google-hosts", host, "--repository", "from-ar/app", "--tag", "v1", "--output", "json")
	if r.code != 0 {
		t.Fatalf("push from Artifact Registry: %s\n%s", r.errLine, r.stderr)
	}
	if !strings.Contains(r.stdout, digest.String()) {
		t.Errorf("pushed digest is not %s:\n%s", digest, r.stdout)
	}
	if n := sb.Log.Count(sandbox.EndpointGoogleSTS, ""); n != 1 {
		t.Errorf("%d token exchanges, want 1 (the token is reused)", n)
	}
	if n := sb.Log.Count(sandbox.EndpointSTS, "GetCallerIdentity"); n == 0 {
		t.Error("Google's STS never verified the subject token with AWS STS")
	}
	testenv.NoSecrets(t, sb.Secrets(), map[string]string{"push": r.allCaptured})

	// sync: the same credentials for an image marked google.
	file := filepath.Join(t.TempDir(), "images.yaml")
	os.WriteFile(file, []byte("images:\n  - source: "+host+"/example-project/images/app:v1\n    google: true\n    repository: ar/app\n"), 0o644)
	r = run(t, "sync", "--role-arn", ciRole, "--identity", "github", "--file", file, "--source-google-credentials", creds)
	if r.code != 0 || !strings.Contains(r.stdout, "@"+digest.String()) {
		t.Fatalf("sync from Artifact Registry: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}

	// A provider that does not exist: Google's STS refuses, and the push says so (nothing pushed).
	bad := awsCredConfig(t, "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/none/providers/aws")
	r = run(t, "push", "--role-arn", ciRole, "--identity", "github", "--source", host+"/example-project/images/app:v1",
		"--source-google-credentials", bad, "--source-google-hosts", host, "--repository", "from-ar/denied", "--tag", "v1")
	if r.code == 0 || !strings.Contains(r.errLine, "invalid_target") {
		t.Errorf("unknown provider: exit %d %s", r.code, r.errLine)
	}
	// A file that is not a credential configuration: exit 2 before anything runs.
	os.WriteFile(bad, []byte(`{"type":"something_else"}`), 0o600)
	if r := run(t, "push", "--role-arn", ciRole, "--source", host+"/x:1", "--source-google-credentials", bad, "--repository", "x", "--tag", "v1"); r.code != 2 {
		t.Errorf("bad configuration: exit %d %s", r.code, r.errLine)
	}
}

// A source on a host that is neither Google's nor named with --source-google-hosts never receives the
// Google access token, as ggcr's google keychain and gcloud's helper never hand it out.
func TestGoogleTokenStaysWithGoogleHosts(t *testing.T) {
	sb := start(t, nil)
	t.Setenv("GITHUB_ACTIONS", "")
	var seen []string
	var mu sync.Mutex
	reg := registry.New(registry.Logger(nilLogger()))
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		reg.ServeHTTP(w, r)
	}))
	defer other.Close()
	host := strings.TrimPrefix(other.URL, "http://")
	img, _ := random.Image(1024, 1)
	ref, _ := name.ParseReference(host + "/tools/app:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	seen = nil
	mu.Unlock()
	creds := awsCredConfig(t, sb.GoogleSTS.Audiences()[0])
	r := run(t, "push", "--role-arn", ciRole, "--identity", "github", "--source", host+"/tools/app:v1",
		"--source-google-credentials", creds, "--repository", "tools/app", "--tag", "v1")
	if r.code != 0 {
		t.Fatalf("push: exit %d %s", r.code, r.errLine)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("the registry saw no request")
	}
	for _, a := range seen {
		if a != "" {
			t.Errorf("the non-Google source registry received Authorization %q", a)
		}
	}
	if n := sb.Log.Count(sandbox.EndpointGoogleSTS, ""); n != 0 {
		t.Errorf("%d Google token exchanges for a source that needs none", n)
	}
	testenv.NoSecrets(t, sb.Secrets(), map[string]string{"push": r.allCaptured})
}

// With a destination outside AWS, push does not federate; the Google exchange still signs with the AWS
// default credential chain.
func TestArtifactRegistryToAnotherRegistry(t *testing.T) {
	sb := start(t, nil)
	t.Setenv("GITHUB_ACTIONS", "")
	host, seed := artifactRegistry(t, sb)
	img, _ := random.Image(2048, 1)
	ref, _ := name.ParseReference(seed + "/example-project/images/app:v2")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	dest := httptest.NewServer(registry.New(registry.Logger(nilLogger())))
	defer dest.Close()
	role, _ := sb.World.Role(ciRole)
	s := sb.World.Issue(role, "laptop", time.Hour, false)
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", s.SessionToken)
	r := run(t, "push", "--source", host+"/example-project/images/app:v2", "--source-google-credentials", awsCredConfig(t, sb.GoogleSTS.Audiences()[0]),
		"--source-google-hosts", host, "--destination", strings.TrimPrefix(dest.URL, "http://")+"/mirror/app", "--tag", "v2")
	if r.code != 0 {
		t.Fatalf("push to another registry: exit %d %s\n%s", r.code, r.errLine, r.stderr)
	}
	if n := sb.Log.Count(sandbox.EndpointSTS, "GetCallerIdentity"); n == 0 {
		t.Error("Google's STS never verified the default chain's identity with AWS STS")
	}
	testenv.NoSecrets(t, sb.Secrets(), map[string]string{"push": r.allCaptured})
}

// A configuration that impersonates a service account (service_account_impersonation_url) runs end to
// end against the sandbox: STS exchange, then IAM Credentials generateAccessToken, then the registry.
func TestArtifactRegistryThroughImpersonation(t *testing.T) {
	sb := start(t, nil)
	t.Setenv("GITHUB_ACTIONS", "")
	host, seed := artifactRegistry(t, sb)
	img, _ := random.Image(1024, 1)
	ref, _ := name.ParseReference(seed + "/example-project/images/app:v3")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	p := awsCredConfig(t, sb.GoogleSTS.Audiences()[0])
	b, _ := os.ReadFile(p)
	b = []byte(strings.Replace(string(b), `"type": "external_account",`, `"type": "external_account",
  "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/`+sb.Config.GCP.ServiceAccountEmail+`:generateAccessToken",`, 1))
	os.WriteFile(p, b, 0o600)
	r := run(t, "push", "--role-arn", ciRole, "--identity", "github", "--source", host+"/example-project/images/app:v3",
		"--source-google-credentials", p, "--source-google-hosts", host, "--repository", "from-ar/imp", "--tag", "v3")
	if r.code != 0 {
		t.Fatalf("push through impersonation: exit %d %s\n%s", r.code, r.errLine, r.stderr)
	}
	if n := sb.Log.Count(sandbox.EndpointIAMCredentials, ""); n == 0 {
		t.Error("IAM Credentials was never asked for an access token")
	}
	testenv.NoSecrets(t, sb.Secrets(), map[string]string{"push": r.allCaptured})
}

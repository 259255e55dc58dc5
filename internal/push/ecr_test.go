package push

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/testenv"
	"github.com/ecrpush/ecrpush/sandbox"
)

const (
	ciRole       = "arn:aws:iam::111122223333:role/ecrpush-ci"
	noCreateRole = "arn:aws:iam::111122223333:role/ecrpush-nocreate"
	readOnlyRole = "arn:aws:iam::111122223333:role/ecrpush-readonly"
)

// startSandbox runs the sandbox with an extra role that may push but not create repositories.
func startSandbox(t *testing.T, tokenTTL time.Duration, mods ...func(*sandbox.Config)) *sandbox.Sandbox {
	t.Helper()
	cfg := sandbox.DefaultConfig()
	if tokenTTL > 0 {
		cfg.ECRTokenTTL = sandbox.Dur(tokenTTL)
	}
	for _, m := range mods {
		m(cfg)
	}
	ci := &cfg.Accounts[0]
	ci.Roles = append(ci.Roles, sandbox.RoleConfig{
		Name:        "ecrpush-nocreate",
		TrustPolicy: ci.Roles[0].TrustPolicy,
		Policies: []json.RawMessage{json.RawMessage(`{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
    {"Effect": "Deny", "Action": "ecr:CreateRepository", "Resource": "*"}
  ]
}`)},
	})
	ci.Roles = append(ci.Roles, sandbox.RoleConfig{
		Name:        "ecrpush-readonly",
		TrustPolicy: ci.Roles[0].TrustPolicy,
		Policies: []json.RawMessage{json.RawMessage(`{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "ecr:DescribeRepositories", "ecr:BatchGetImage",
      "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer"], "Resource": "*"}
  ]
}`)},
	})
	sb, err := sandbox.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	return sb
}

// awsConfig issues a session for role and points the ECR client at the sandbox.
func awsConfig(t *testing.T, sb *sandbox.Sandbox, roleARN string) aws.Config {
	t.Helper()
	role, ok := sb.World.Role(roleARN)
	if !ok {
		t.Fatalf("no role %s", roleARN)
	}
	s := sb.World.Issue(role, "test", time.Hour, false)
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, s.SessionToken),
		BaseEndpoint: aws.String(sb.Endpoints.ECR),
	}
}

func TestECRCreatesRepositoryAndPushes(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, 0)
	cfg := awsConfig(t, sb, ciRole)
	f := makeFixtures(t)
	var logs syncWriter
	var buf bytes.Buffer
	logs.w = &buf
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	defer func() {
		testenv.NoSecrets(t, append(sb.Secrets(), sb.ECR.Passwords()...), map[string]string{"logs": logs.String()})
	}()
	p, err := NewECR(t.Context(), cfg, "team/app", WithTagImmutability(true), WithScanOnPush(true), WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// NewECR only reads: the repository is created by the first write, with the requested settings.
	if _, err := ecr.NewFromConfig(cfg).DescribeRepositories(t.Context(), &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"team/app"}}); err == nil {
		t.Fatal("NewECR created the repository before any Publish")
	}
	f0, err := load(t, "oci-layout:"+f.layout+":v1")
	if err != nil {
		t.Fatal(err)
	}
	pl, err := PlanPublish(t.Context(), p, f0, []string{"first"})
	if err != nil {
		t.Fatal(err)
	}
	if pl.Create == nil || pl.Create.TagMutability != "IMMUTABLE" || !pl.Create.ScanOnPush || len(pl.Tags) != 1 || pl.Upload != pl.Blobs {
		t.Fatalf("plan %+v, want a repository to create (IMMUTABLE, scan on push) and every blob to upload", pl)
	}
	if _, err := pl.Publish(t.Context()); err != nil {
		t.Fatal(err)
	}
	out, err := ecr.NewFromConfig(cfg).DescribeRepositories(t.Context(), &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"team/app"}})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Repositories[0]
	if r.ImageTagMutability != ecrtypes.ImageTagMutabilityImmutable || r.ImageScanningConfiguration == nil || !r.ImageScanningConfiguration.ScanOnPush {
		t.Errorf("repository settings %+v", r)
	}
	host := strings.TrimPrefix(sb.Endpoints.Registries[sandbox.RegistryID{Account: "111122223333", Region: "us-east-1"}], "http://")
	for _, ref := range []string{"oci-layout:" + f.layout + ":multi", "docker-archive:" + f.save} {
		a, err := load(t, ref)
		if err != nil {
			t.Fatal(err)
		}
		tag := "t" + a.Digest.Hex[:8]
		res, err := p.Publish(t.Context(), a, []string{tag})
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if res.Registry != host || res.Tags[0].URI != host+"/team/app:"+tag {
			t.Errorf("result %+v, registry host %s", res, host)
		}
		// Read back with the same keychain.
		if got := fetchDigest(t, host+"/team/app:"+tag, remote.WithAuthFromKeychain(p.(*ecrPublisher).keychain)); got != a.Digest {
			t.Errorf("%s: read back %s, pushed %s", ref, got, a.Digest)
		}
		// An identical re-push into the immutable repository is a no-op.
		again, err := p.Publish(t.Context(), a, []string{tag})
		if err != nil || again.BytesUploaded != 0 || len(again.TagsUnchanged) != 1 {
			t.Errorf("%s: re-push %+v %v", ref, again, err)
		}
	}
}

func TestECRImmutableConflict(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, 0)
	cfg := awsConfig(t, sb, ciRole)
	f := makeFixtures(t)
	p, err := NewECR(t.Context(), cfg, "app", WithTagImmutability(true))
	if err != nil {
		t.Fatal(err)
	}
	img, _ := load(t, "oci-layout:"+f.layout+":v1")
	idx, _ := load(t, "oci-layout:"+f.layout+":multi")
	if _, err := p.Publish(t.Context(), img, []string{"release"}); err != nil {
		t.Fatal(err)
	}
	_, err = p.Publish(t.Context(), idx, []string{"fresh", "release"})
	if !fixable.Is(err) || !strings.Contains(err.Error(), "release") || !strings.Contains(err.Error(), img.Digest.String()) {
		t.Fatalf("want fixable conflict naming the tag and its digest, got %v", err)
	}
	images, err := ecr.NewFromConfig(cfg).DescribeImages(t.Context(), &ecr.DescribeImagesInput{RepositoryName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	if len(images.ImageDetails) != 1 {
		t.Errorf("%d images after the conflict, want 1 (nothing written)", len(images.ImageDetails))
	}
	for _, d := range images.ImageDetails {
		for _, tag := range d.ImageTags {
			if tag == "fresh" {
				t.Error("tag fresh was added")
			}
		}
	}
}

func TestECRRepositoryErrors(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, 0)
	for _, tc := range []struct {
		name, role string
		opts       []Option
		want       string
	}{
		{"create denied", noCreateRole, nil, "ecr:CreateRepository"},
		{"create disabled", ciRole, []Option{WithCreateRepository(false)}, "creating it is disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewECR(t.Context(), awsConfig(t, sb, tc.role), "missing/repo", tc.opts...)
			if err == nil {
				// Creation is the first write: a denial surfaces there, before any upload.
				f := makeFixtures(t)
				a, _ := load(t, "oci-layout:"+f.layout+":v1")
				_, err = p.Publish(t.Context(), a, []string{"v1"})
			}
			if !fixable.Is(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want fixable error with %q, got %v", tc.want, err)
			}
		})
	}
	t.Run("push denied", func(t *testing.T) {
		if _, err := ecr.NewFromConfig(awsConfig(t, sb, ciRole)).CreateRepository(t.Context(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("locked")}); err != nil {
			t.Fatal(err)
		}
		p, err := NewECR(t.Context(), awsConfig(t, sb, readOnlyRole), "locked")
		if err != nil {
			t.Fatal(err)
		}
		f := makeFixtures(t)
		a, _ := load(t, "oci-layout:"+f.layout+":v1")
		_, err = p.Publish(t.Context(), a, []string{"v1"})
		if !fixable.Is(err) || !strings.Contains(err.Error(), "ecr:PutImage") {
			t.Errorf("want fixable error naming ecr:PutImage, got %v", err)
		}
	})
	t.Run("bad name", func(t *testing.T) {
		_, err := NewECR(t.Context(), awsConfig(t, sb, ciRole), "Bad_Name")
		if !fixable.Is(err) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("no region", func(t *testing.T) {
		cfg := awsConfig(t, sb, ciRole)
		cfg.Region = ""
		if _, err := NewECR(t.Context(), cfg, "app"); !fixable.Is(err) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("existing repository without create permission", func(t *testing.T) {
		if _, err := NewECR(t.Context(), awsConfig(t, sb, ciRole), "shared"); err != nil {
			t.Fatal(err)
		}
		if _, err := NewECR(t.Context(), awsConfig(t, sb, noCreateRole), "shared"); err != nil {
			t.Errorf("existing repository: %v", err)
		}
	})
}

// The registry token is reused until half its lifetime has passed, then fetched again, so a push
// that outlives the token still works.
func TestECRTokenRefreshAtHalfLife(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	sb := startSandbox(t, ttl)
	f := makeFixtures(t)
	a, _ := load(t, "oci-layout:"+f.layout+":v1")
	p, err := NewECR(t.Context(), awsConfig(t, sb, ciRole), "app")
	if err != nil {
		t.Fatal(err)
	}
	kc := p.(*ecrPublisher).keychain
	start := time.Now()
	if _, err := p.Publish(t.Context(), a, []string{"one"}); err != nil {
		t.Fatal(err)
	}
	if n := kc.requests.Load(); n != 1 && time.Since(start) < ttl/2 {
		t.Errorf("%d token requests within the first half-life, want 1", n)
	}
	time.Sleep(time.Until(start.Add(ttl/2 + 100*time.Millisecond)))
	if _, err := p.Publish(t.Context(), a, []string{"two"}); err != nil {
		t.Fatal(err)
	}
	if n := kc.requests.Load(); n < 2 {
		t.Errorf("token not refreshed past half-life (%d requests)", n)
	}
	// Well past the first token's expiry, pushes still work.
	time.Sleep(time.Until(start.Add(ttl + 200*time.Millisecond)))
	if _, err := p.Publish(t.Context(), a, []string{"three"}); err != nil {
		t.Fatalf("after the first token expired: %v", err)
	}
}

// The half-life rule with a controlled clock: no refresh before it, one after.
func TestECRKeychainClock(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, 0)
	now := time.Now()
	clock := func() time.Time { return now }
	p, err := NewECR(t.Context(), awsConfig(t, sb, ciRole), "app", withClock(func() time.Time { return clock() }))
	if err != nil {
		t.Fatal(err)
	}
	kc := p.(*ecrPublisher).keychain
	base, half := kc.fetched, kc.expires.Sub(kc.fetched)/2
	for _, step := range []struct {
		at   time.Duration
		want int64
	}{{0, 1}, {half - time.Second, 1}, {half + time.Second, 2}, {half + 2*time.Second, 2}} {
		now = base.Add(step.at)
		if _, _, err := kc.token(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := kc.requests.Load(); got != step.want {
			t.Errorf("at +%s: %d token requests, want %d", step.at, got, step.want)
		}
	}
}

// A token that reports 12 h but was fetched with credentials that end sooner lives as long as they
// do: refreshed half-way to their end — and, since one fetched again with the same credentials
// would die with them too, not before the SDK's cache has new ones.
func TestECRTokenLifeBoundByCredentials(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, 0, func(c *sandbox.Config) { c.ECRTokenReportsTTL = true })
	role, _ := sb.World.Role(ciRole)
	var mu sync.Mutex
	sess := sb.World.Issue(role, "test", time.Hour, false)
	provider := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		mu.Lock()
		defer mu.Unlock()
		return aws.Credentials{AccessKeyID: sess.AccessKeyID, SecretAccessKey: sess.SecretAccessKey, SessionToken: sess.SessionToken,
			CanExpire: true, Expires: sess.Expiration}, nil
	})
	cfg := aws.Config{Region: "us-east-1", Credentials: provider, BaseEndpoint: aws.String(sb.Endpoints.ECR)}
	now := time.Now()
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	set := func(at time.Time) { clockMu.Lock(); now = at; clockMu.Unlock() }
	p, err := NewECR(t.Context(), cfg, "app", withClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	kc := p.(*ecrPublisher).keychain
	start := now
	if !kc.expires.Equal(sess.Expiration) {
		t.Fatalf("token lives until %s, want the credentials' end %s (ECR reports 12 h)", kc.expires, sess.Expiration)
	}
	token := func(at time.Duration) {
		t.Helper()
		set(start.Add(at))
		if _, _, err := kc.token(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	life := sess.Expiration.Sub(start)
	token(life/2 - time.Second)
	if n := kc.requests.Load(); n != 1 {
		t.Errorf("before half-life: %d fetches", n)
	}
	token(life/2 + time.Second)
	if n := kc.requests.Load(); n != 1 {
		t.Errorf("half-way with the same credentials: %d fetches, want 1 (a new token would die with them)", n)
	}
	mu.Lock()
	sess = sb.World.Issue(role, "test", time.Hour, false)
	mu.Unlock()
	token(life + time.Second)
	if n := kc.requests.Load(); n != 2 {
		t.Errorf("after the credentials were renewed: %d fetches, want 2", n)
	}
}

// A 401 fetches the token again — once, and only when the refused token is the current one and
// old enough that the refusal can be its expiry.
func TestECRReauth(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, 0)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p, err := NewECR(t.Context(), awsConfig(t, sb, ciRole), "app", withClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	kc := p.(*ecrPublisher).keychain
	old := basicAuth(kc.user, kc.pass)
	if _, ok := kc.reauth(context.Background(), kc.host, old); ok || kc.requests.Load() != 1 {
		t.Errorf("a fresh token refused: reauth %v after %d fetches; want no new fetch", ok, kc.requests.Load())
	}
	mu.Lock()
	now = now.Add(reauthQuiet + time.Second)
	mu.Unlock()
	fresh, ok := kc.reauth(context.Background(), kc.host, old)
	if !ok || fresh == old || kc.requests.Load() != 2 {
		t.Errorf("an older token refused: reauth %v (new credentials: %v) after %d fetches; want one new fetch", ok, fresh != old, kc.requests.Load())
	}
	if again, ok := kc.reauth(context.Background(), kc.host, old); !ok || again != fresh || kc.requests.Load() != 2 {
		t.Errorf("a request with the token replaced since: got the current one %v, %d fetches", again == fresh, kc.requests.Load())
	}
	if _, ok := kc.reauth(context.Background(), "elsewhere.example:443", fresh); ok {
		t.Error("credentials for another host")
	}
}

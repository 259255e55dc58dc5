package federate_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/sandboxtest"
	"github.com/ecrpush/ecrpush/internal/testenv"
	"github.com/ecrpush/ecrpush/sandbox"
	"github.com/ecrpush/ecrpush/sandbox/fault"
	"github.com/ecrpush/ecrpush/sandbox/oidc"
)

const ciRole = "arn:aws:iam::111122223333:role/ecrpush-ci"

// start runs a sandbox and points the process environment at it (the AWS SDK reads endpoints from it).
func start(t *testing.T, cfg *sandbox.Config) *sandbox.Sandbox {
	return sandboxtest.StartExported(t, cfg)
}

// ecrAccepts proves the credentials work against the sandbox ECR API.
func ecrAccepts(t *testing.T, cfg aws.Config) {
	t.Helper()
	out, err := ecr.NewFromConfig(cfg).GetAuthorizationToken(context.Background(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatalf("ECR refused the federated credentials: %v", err)
	}
	if len(out.AuthorizationData) != 1 {
		t.Fatalf("authorizationData: %+v", out.AuthorizationData)
	}
}

func TestFlowsReachECR(t *testing.T) {
	cases := []struct {
		name     string
		prep     func(t *testing.T, sb *sandbox.Sandbox) federate.Options
		identity federate.Identity
	}{
		{"github", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			return federate.Options{RoleARN: ciRole}
		}, federate.IdentityGitHub},
		{"cloud build metadata", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			t.Setenv("GITHUB_ACTIONS", "")
			t.Setenv("BUILDER_OUTPUT", t.TempDir())
			return federate.Options{RoleARN: ciRole}
		}, federate.IdentityGCP},
		{"impersonation", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			t.Setenv("GITHUB_ACTIONS", "")
			return federate.Options{RoleARN: ciRole, GCPServiceAccount: sb.Config.GCP.ServiceAccountEmail, IAMCredentialsURL: sb.Endpoints.IAMCredentials}
		}, federate.IdentityGCP},
		{"token file", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			t.Setenv("GITHUB_ACTIONS", "")
			t.Setenv("GCE_METADATA_HOST", "")
			os.Unsetenv("GCE_METADATA_HOST")
			tok, err := sb.GitHub.Token("sts.amazonaws.com")
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", f)
			return federate.Options{RoleARN: ciRole}
		}, federate.IdentityFile},
		{"default chain", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			role, _ := sb.World.Role(ciRole)
			s := sb.World.Issue(role, "laptop", time.Hour, false)
			t.Setenv("GITHUB_ACTIONS", "")
			os.Unsetenv("GCE_METADATA_HOST")
			t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKeyID)
			t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretAccessKey)
			t.Setenv("AWS_SESSION_TOKEN", s.SessionToken)
			return federate.Options{Identity: federate.IdentityAuto}
		}, federate.IdentityAWS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sb := start(t, nil)
			o := tc.prep(t, sb)
			s, err := federate.Federate(context.Background(), o)
			if err != nil {
				t.Fatalf("federate: %v", err)
			}
			if s.Detection.Identity != tc.identity {
				t.Errorf("identity %s (%s), want %s", s.Detection.Identity, s.Detection.Reason, tc.identity)
			}
			if s.Account != sandbox.CIAccount {
				t.Errorf("account %q", s.Account)
			}
			ecrAccepts(t, s.Config)
		})
	}
}

// failure runs Federate and returns the user-facing error line, asserting it is fixable (exit 2).
func failure(t *testing.T, o federate.Options) string {
	t.Helper()
	_, err := federate.Federate(context.Background(), o)
	if err == nil {
		t.Fatal("federate succeeded, want a failure")
	}
	if !fixable.Is(err) {
		t.Fatalf("error is not fixable (exit 2): %v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	return err.Error()
}

func TestFailuresSayWhatToChange(t *testing.T) {
	cases := []struct {
		name string
		prep func(t *testing.T, sb *sandbox.Sandbox) federate.Options
		want []string
	}{
		{"wrong aud", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			return federate.Options{RoleARN: ciRole, Audience: "https://example.invalid"}
		}, []string{"audience", "https://example.invalid"}},
		{"wrong sub", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			c := sb.GitHub.Context()
			c.Repository = "example/other"
			sb.GitHub.SetContext(c)
			return federate.Options{RoleARN: ciRole}
		}, []string{"sts:AssumeRoleWithWebIdentity denied", `token.actions.githubusercontent.com:sub="repo:example/other:ref:refs/heads/main"`, "trust-policy --github-repo example/other"}},
		{"case of sub", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			c := sb.GitHub.Context()
			c.Repository = "Example/App"
			sb.GitHub.SetContext(c)
			return federate.Options{RoleARN: ciRole}
		}, []string{"case-sensitive"}},
		{"environment sub", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			c := sb.GitHub.Context()
			c.Repository = "example/other"
			c.Environment = "production"
			sb.GitHub.SetContext(c)
			return federate.Options{RoleARN: ciRole}
		}, []string{"environment:NAME"}},
		{"expired token", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			now := time.Now()
			tok, err := sb.GitHubIss.Sign(map[string]any{"sub": "repo:example/app:ref:refs/heads/main", "aud": "sts.amazonaws.com",
				"repository": "example/app", "iat": now.Add(-2 * time.Hour).Unix(), "nbf": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()})
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(t.TempDir(), "token")
			os.WriteFile(f, []byte(tok), 0o600)
			return federate.Options{RoleARN: ciRole, Identity: federate.IdentityFile, TokenFile: f}
		}, []string{"expired"}},
		{"no id-token permission", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "")
			return federate.Options{RoleARN: ciRole}
		}, []string{"permissions: id-token: write"}},
		{"metadata 404", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			sb.Google.SetIdentityDisabled(true)
			return federate.Options{RoleARN: ciRole, Identity: federate.IdentityGCP}
		}, []string{"roles/iam.serviceAccountOpenIdTokenCreator", "serviceAccount"}},
		{"impersonation denied", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			sb.Google.SetTokenCreator(false)
			return federate.Options{RoleARN: ciRole, Identity: federate.IdentityGCP, GCPServiceAccount: sb.Config.GCP.ServiceAccountEmail, IAMCredentialsURL: sb.Endpoints.IAMCredentials}
		}, []string{"roles/iam.serviceAccountOpenIdTokenCreator"}},
		{"bad role arn", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			return federate.Options{RoleARN: "arn:aws:iam::1111:role/x"}
		}, []string{"not an IAM role ARN"}},
		{"missing role arn", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			return federate.Options{}
		}, []string{"--role-arn is required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sb := start(t, nil)
			line := failure(t, tc.prep(t, sb))
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("error %q\nlacks %q", line, w)
				}
			}
			testenv.NoSecrets(t, sb.Secrets(), map[string]string{"error": line})
		})
	}
}

func TestMetadataUnreachableDoesNotHang(t *testing.T) {
	start(t, nil)
	// A server that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	t.Setenv("GCE_METADATA_HOST", ln.Addr().String())
	begin := time.Now()
	line := failure(t, federate.Options{RoleARN: ciRole, Identity: federate.IdentityGCP})
	if d := time.Since(begin); d > federate.MetadataTimeout+3*time.Second {
		t.Errorf("took %s; the deadline is %s", d, federate.MetadataTimeout)
	}
	if !strings.Contains(line, "did not answer within") {
		t.Errorf("error %q", line)
	}
}

func TestAccessDeniedIsOneSTSCall(t *testing.T) {
	sb := start(t, nil)
	c := sb.GitHub.Context()
	c.Ref = "refs/heads/feature"
	c.Repository = "example/other"
	sb.GitHub.SetContext(c)
	_, err := federate.Federate(context.Background(), federate.Options{RoleARN: ciRole})
	var d *federate.DeniedError
	if !errors.As(err, &d) || d.Code != "AccessDenied" {
		t.Fatalf("want AccessDenied, got %v", err)
	}
	if n := sb.Log.Count(sandbox.EndpointSTS, "AssumeRoleWithWebIdentity"); n != 1 {
		t.Errorf("%d STS calls for a permanent denial, want exactly 1", n)
	}
	details := strings.Join(d.Details(), "\n")
	if !strings.Contains(details, "token.actions.githubusercontent.com:sub = repo:example/other:ref:refs/heads/feature") {
		t.Errorf("details lack the evaluated sub:\n%s", details)
	}
	testenv.NoSecrets(t, sb.Secrets(), map[string]string{"details": details, "error": err.Error()})
}

func TestTransientSTSFaultsAreRetried(t *testing.T) {
	for _, fc := range []fault.Config{{ThrottleRate: 0.6}, {ErrorRate: 0.6}, {ResetRate: 0.5}} {
		faulted := 0
		for seed := int64(1); seed <= 6 && faulted < 2; seed++ {
			cfg := sandbox.DefaultConfig()
			cfg.Seed = seed
			cfg.Faults.STS = fc
			sb := start(t, cfg)
			s, err := federate.Federate(context.Background(), federate.Options{RoleARN: ciRole, RetryBudget: 30 * time.Second})
			if err != nil {
				t.Fatalf("faults %+v seed %d: %v", fc, seed, err)
			}
			ecrAccepts(t, s.Config)
			calls := sb.Log.Count(sandbox.EndpointSTS, "AssumeRoleWithWebIdentity")
			if len(sb.Faults.Events()) == 0 {
				continue
			}
			faulted++
			if calls < 2 {
				t.Errorf("faults %+v seed %d: injected %d faults but STS saw %d calls", fc, seed, len(sb.Faults.Events()), calls)
			}
			// Each attempt must carry a fresh token.
			if got := len(sb.GitHub.Issued()); got < calls {
				t.Errorf("%d tokens for %d STS attempts: a token was reused", got, calls)
			}
		}
		if faulted == 0 {
			t.Errorf("faults %+v: no seed injected a fault", fc)
		}
	}
}

func TestCredentialsRefreshBeforeExpiry(t *testing.T) {
	cfg := sandbox.DefaultConfig()
	cfg.CredentialLifetime = sandbox.Dur(3 * time.Second)
	sb := start(t, cfg)
	s, err := federate.Federate(context.Background(), federate.Options{RoleARN: ciRole, RefreshWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ecrAccepts(t, s.Config)
	first, _ := s.Config.Credentials.Retrieve(context.Background())
	time.Sleep(3500 * time.Millisecond) // past the first credentials' lifetime
	ecrAccepts(t, s.Config)
	second, _ := s.Config.Credentials.Retrieve(context.Background())
	if first.AccessKeyID == second.AccessKeyID {
		t.Error("credentials were not refreshed")
	}
	// The first credentials are really dead: the sandbox refuses them.
	dead := s.Config.Copy()
	dead.Credentials = credentials.NewStaticCredentialsProvider(first.AccessKeyID, first.SecretAccessKey, first.SessionToken)
	if _, err := ecr.NewFromConfig(dead).GetAuthorizationToken(context.Background(), &ecr.GetAuthorizationTokenInput{}); err == nil ||
		!strings.Contains(err.Error(), "ExpiredToken") {
		t.Errorf("expired credentials: %v", err)
	}
	if n := sb.Log.Count(sandbox.EndpointSTS, "AssumeRoleWithWebIdentity"); n < 2 {
		t.Errorf("%d STS exchanges", n)
	}
}

func TestRoleChainingAndPerAccountFederation(t *testing.T) {
	start(t, nil)
	sb := start(t, nil)
	_ = sb
	s, err := federate.Federate(context.Background(), federate.Options{RoleARN: ciRole})
	if err != nil {
		t.Fatal(err)
	}
	prod := "arn:aws:iam::444455556666:role/ecrpush-deploy"
	cfg, err := s.Role(context.Background(), prod)
	if err != nil {
		t.Fatalf("federate into prod: %v", err)
	}
	ecrAccepts(t, cfg)
	cfg, err = s.Chain(context.Background(), prod)
	if err != nil {
		t.Fatalf("chain into prod: %v", err)
	}
	ecrAccepts(t, cfg)
	if _, err := s.Chain(context.Background(), "arn:aws:iam::777788889999:role/nope"); err == nil || !fixable.Is(err) {
		t.Errorf("chaining into a missing role: %v", err)
	}
}

func TestTokenSourcesFetchFreshTokens(t *testing.T) {
	sb := start(t, nil)
	src := federate.GitHub(os.Getenv, nil)
	a, err := src.Token(context.Background(), "sts.amazonaws.com")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := src.Token(context.Background(), "sts.amazonaws.com")
	if a == b {
		t.Error("the same token twice")
	}
	c, _ := federate.DecodeClaims(a)
	if c.String("aud") != "sts.amazonaws.com" || c.String("repository") != sb.Config.GitHub.Repository {
		t.Errorf("claims %v", c)
	}
	// The file source re-reads the file every call (kubelet rotates it).
	f := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(f, []byte(a), 0o600)
	fs := federate.File(f)
	if got, _ := fs.Token(context.Background(), ""); got != a {
		t.Error("file token")
	}
	os.WriteFile(f, []byte(b), 0o600)
	if got, _ := fs.Token(context.Background(), ""); got != b {
		t.Error("file token was not re-read")
	}
	os.WriteFile(f, []byte("not a jwt"), 0o600)
	if _, err := fs.Token(context.Background(), ""); err == nil || !fixable.Is(err) {
		t.Errorf("malformed token file: %v", err)
	}
}

var _ = oidc.ErrExpired

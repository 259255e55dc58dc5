package federate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecrpush/ecrpush/internal/claims"
	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/iam"
	"github.com/ecrpush/ecrpush/internal/trustpolicy"
	"github.com/ecrpush/ecrpush/sandbox"
	"github.com/ecrpush/ecrpush/sandbox/fault"
	"github.com/ecrpush/ecrpush/sandbox/oidc"
	sbsts "github.com/ecrpush/ecrpush/sandbox/sts"
	"github.com/ecrpush/ecrpush/sandbox/world"
)

// Transient faults as they happen for real — STS's verification-key InvalidIdentityToken, GitHub's
// 403 "Pending", 5xx and throttles from both — at 30% still give 20 of 20 successful federations, each
// STS attempt with a fresh token.
func TestThirtyPercentTransientFaults(t *testing.T) {
	cfg := sandbox.DefaultConfig()
	cfg.Seed = 12
	cfg.Faults.STS = fault.Config{ErrorRate: 0.1, ThrottleRate: 0.05}
	cfg.Faults.Issuers = fault.Config{ErrorRate: 0.15}
	sb := start(t, cfg)
	sb.STS.SetVerificationKeyFailureRate(0.15, 12)
	sb.GitHub.SetPendingRate(0.15, 12)
	for i := 0; i < 20; i++ {
		s, err := federate.Federate(context.Background(), federate.Options{RoleARN: ciRole, RetryBudget: time.Minute})
		if err != nil {
			t.Fatalf("run %d of 20: %v", i+1, err)
		}
		if s.Account != sandbox.CIAccount {
			t.Fatalf("run %d: account %s", i+1, s.Account)
		}
	}
	calls := sb.Log.Count(sandbox.EndpointSTS, "AssumeRoleWithWebIdentity")
	if sb.STS.VerificationKeyFailures() == 0 || sb.GitHub.Pending() == 0 || len(sb.Faults.Events()) == 0 {
		t.Errorf("faults injected: %d verification-key, %d pending, %d 5xx/throttle: want each kind",
			sb.STS.VerificationKeyFailures(), sb.GitHub.Pending(), len(sb.Faults.Events()))
	}
	if calls <= 20 {
		t.Errorf("%d STS calls for 20 runs under faults: nothing was retried", calls)
	}
	if got := len(sb.GitHub.Issued()); got < calls {
		t.Errorf("%d tokens for %d STS attempts: a token was reused", got, calls)
	}
}

// Only the verification-key answer is retried: other InvalidIdentityToken answers fail at once, exit 2.
func TestInvalidIdentityTokenIsFinal(t *testing.T) {
	sb := start(t, nil)
	_, err := federate.Federate(context.Background(), federate.Options{RoleARN: ciRole, Audience: "https://example.invalid"})
	var d *federate.DeniedError
	if !errors.As(err, &d) || d.Code != "InvalidIdentityToken" || !fixable.Is(err) {
		t.Fatalf("want a fixable InvalidIdentityToken, got %v", err)
	}
	if n := sb.Log.Count(sandbox.EndpointSTS, "AssumeRoleWithWebIdentity"); n != 1 {
		t.Errorf("%d STS calls for an audience mismatch, want 1", n)
	}

	// A token file cannot yield a fresh token: the verification-key answer is final for it too.
	sb.Log.Reset()
	tok, _ := sb.GitHubIss.SignWithUnknownKey(map[string]any{"sub": "repo:example/app:ref:refs/heads/main", "aud": "sts.amazonaws.com",
		"exp": time.Now().Add(time.Minute).Unix(), "iat": time.Now().Unix()})
	f := filepath.Join(t.TempDir(), "token")
	os.WriteFile(f, []byte(tok), 0o600)
	line := failure(t, federate.Options{RoleARN: ciRole, Identity: federate.IdentityFile, TokenFile: f})
	if !strings.Contains(line, "verification key") || !strings.Contains(line, "exactly as issued") {
		t.Errorf("error %q", line)
	}
	if n := sb.Log.Count(sandbox.EndpointSTS, "AssumeRoleWithWebIdentity"); n != 1 {
		t.Errorf("%d STS calls for an unknown key in a token file, want 1", n)
	}

	// Persistent verification-key failures with fresh tokens: bounded, then exit 2 with the count.
	sb.Log.Reset()
	sb.STS.SetVerificationKeyFailureRate(1, 1)
	line = failure(t, federate.Options{RoleARN: ciRole, RetryBudget: 3 * time.Second})
	n := sb.Log.Count(sandbox.EndpointSTS, "AssumeRoleWithWebIdentity")
	if n < 2 || n > 8 || !strings.Contains(line, fmt.Sprintf("in %d attempts with fresh tokens", n)) {
		t.Errorf("%d calls; error %q", n, line)
	}
}

// GitHub's 403 Pending is retried; a Pending that never ends is a cloud failure (exit 1), not a
// permission problem.
func TestGitHubPendingIsRetried(t *testing.T) {
	sb := start(t, nil)
	sb.GitHub.SetPendingRate(1, 3)
	_, err := federate.Federate(context.Background(), federate.Options{RoleARN: ciRole})
	if err == nil || fixable.Is(err) || !strings.Contains(err.Error(), "Pending") || strings.Contains(err.Error(), "id-token: write") {
		t.Fatalf("err = %v", err)
	}
	if p := sb.GitHub.Pending(); p < 2 || p > 6 {
		t.Errorf("%d token requests, want 2-6", p)
	}
}

// stsStub answers every STS call with one AWS error.
func stsStub(t *testing.T, status int, code, message string) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>r</RequestId></ErrorResponse>`, code, message)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL_STS", srv.URL)
	return &n
}

func TestOwnDiagnoses(t *testing.T) {
	for _, tc := range []struct {
		status        int
		code, message string
		want          []string
	}{
		{403, "IDPRejectedClaim", "Rejected claim", []string{"rejected the token's claims", "fresh token", "oidc-provider/token.actions.githubusercontent.com"}},
		{403, "RegionDisabledException", "STS is not activated in this region for account:111122223333.", []string{"not activated in us-east-1", "account 111122223333", "--region"}},
		{400, "InvalidIdentityToken", "No OpenIDConnect provider found in your account for https://token.actions.githubusercontent.com",
			[]string{"create an IAM OIDC identity provider", "in account 111122223333", "assume a role in the account that has it"}},
	} {
		t.Run(tc.code, func(t *testing.T) {
			start(t, nil)
			n := stsStub(t, tc.status, tc.code, tc.message)
			line := failure(t, federate.Options{RoleARN: ciRole})
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("%q lacks %q", line, w)
				}
			}
			if n.Load() != 1 {
				t.Errorf("%d STS calls, want 1", n.Load())
			}
		})
	}
}

// A denial of a token from another issuer names that issuer's provider and the command for it; an
// immutable subject gets the immutable --github-repo.
func TestDenialNamesTheProviderToTrust(t *testing.T) {
	sb := start(t, nil)
	iss, err := oidc.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss.Handler())
	t.Cleanup(srv.Close)
	iss.SetURL(srv.URL + "/_services/token")
	name := claims.ProviderName(iss.URL())
	sb.STS.AddProvider(sbsts.Provider{Name: name, IssuerURL: iss.URL(), ClientIDs: []string{"sts.amazonaws.com"}})
	ghes := oidc.NewGitHub(iss, "ghes-request-token", oidc.GitHubContext{Repository: "octo-org/app", Ref: "refs/heads/main"})
	tokSrv := httptest.NewServer(ghes.Handler())
	t.Cleanup(tokSrv.Close)
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", tokSrv.URL+ghes.RequestPath())
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ghes-request-token")

	line := failure(t, federate.Options{RoleARN: ciRole})
	for _, w := range []string{"trust Federated arn:aws:iam::111122223333:oidc-provider/" + name,
		"ecrpush trust-policy --github-repo octo-org/app --branch main --github-issuer " + iss.URL(), name + ":sub="} {
		if !strings.Contains(line, w) {
			t.Errorf("%q\nlacks %q", line, w)
		}
	}
	// The suggested command's policy admits the job.
	tr, err := trustpolicy.Spec{Account: sandbox.CIAccount, GitHubRepo: "octo-org/app", Branches: []string{"main"}, Issuer: iss.URL()}.Trust()
	if err != nil {
		t.Fatal(err)
	}
	replaceTrust(t, sb, ciRole, tr.Document.JSON())
	if _, err := federate.Federate(context.Background(), federate.Options{RoleARN: ciRole}); err != nil {
		t.Fatalf("the suggested policy: %v", err)
	}

	// github.com, immutable subject, name-only policy.
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", sb.Endpoints.GitHubTokenURL)
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", sb.Endpoints.GitHubRequestToken)
	sb.GitHub.SetContext(oidc.GitHubContext{Repository: "octo-org/app", Ref: "refs/heads/main", OwnerID: "123456", RepositoryID: "789012", ImmutableSubject: true})
	tr, _ = trustpolicy.Spec{Account: sandbox.CIAccount, GitHubRepo: "octo-org/app", Branches: []string{"main"}}.Trust()
	replaceTrust(t, sb, ciRole, tr.Document.JSON())
	line = failure(t, federate.Options{RoleARN: ciRole})
	for _, w := range []string{"immutable form", "trust-policy --github-repo octo-org@123456/app@789012 --branch main"} {
		if !strings.Contains(line, w) {
			t.Errorf("%q\nlacks %q", line, w)
		}
	}
}

func replaceTrust(t *testing.T, sb *sandbox.Sandbox, arn string, doc []byte) {
	t.Helper()
	old, _ := sb.World.Role(arn)
	p, err := iam.ParseTrust(doc)
	if err != nil {
		t.Fatal(err)
	}
	r := *old
	r.Trust, r.TrustText = p, string(doc)
	if err := sb.World.AddRole(&r); err != nil {
		t.Fatal(err)
	}
}

// --identity aws --role-arn asks the duration given (a user's keys are not chaining), chaining from a
// role session is capped at an hour with a diagnosis, and a denial names the caller.
func TestAWSIdentityDurationAndDenial(t *testing.T) {
	sb := start(t, nil)
	user := &world.User{Account: sandbox.CIAccount, Name: "laptop"}
	if err := sb.World.AddUser(user); err != nil {
		t.Fatal(err)
	}
	allow, _ := iam.Parse([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`))
	user.Policies = []*iam.Policy{allow}
	long := "arn:aws:iam::" + sandbox.CIAccount + ":role/long"
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + sandbox.CIAccount + `:root"},"Action":"sts:AssumeRole"}]}`
	tp, _ := iam.ParseTrust([]byte(trust))
	ecrAll, _ := iam.Parse([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`))
	if err := sb.World.AddRole(&world.Role{Account: sandbox.CIAccount, Name: "long", Trust: tp, TrustText: trust, MaxSessionDuration: 12 * time.Hour,
		Policies: []*iam.Policy{ecrAll}}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITHUB_ACTIONS", "")
	t.Setenv("AWS_ACCESS_KEY_ID", user.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", user.SecretAccessKey)
	s, err := federate.Federate(context.Background(), federate.Options{Identity: federate.IdentityAWS, RoleARN: long, Duration: 3 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.Config.Credentials.Retrieve(context.Background())
	if left := time.Until(c.Expires); left < 2*time.Hour+50*time.Minute {
		t.Errorf("credentials expire in %s, want the 3h asked", left)
	}
	ecrAccepts(t, s.Config)

	// A role session chaining on: over an hour is refused with the reason.
	role, _ := sb.World.Role(ciRole)
	rs := sb.World.Issue(role, "laptop", time.Hour, false)
	t.Setenv("AWS_ACCESS_KEY_ID", rs.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", rs.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", rs.SessionToken)
	line := failure(t, federate.Options{Identity: federate.IdentityAWS, RoleARN: "arn:aws:iam::444455556666:role/ecrpush-deploy", Duration: 2 * time.Hour})
	if !strings.Contains(line, "role chaining") || !strings.Contains(line, "assumed-role/ecrpush-ci/laptop") {
		t.Errorf("chaining: %q", line)
	}
	// A missing role (AWS does not say so): the caller is named, and the role's existence is the first check.
	line = failure(t, federate.Options{Identity: federate.IdentityAWS, RoleARN: "arn:aws:iam::777788889999:role/ecrpush-deploy-missing"})
	if !strings.Contains(line, "arn:aws:sts::111122223333:assumed-role/ecrpush-ci/laptop may not assume arn:aws:iam::777788889999:role/ecrpush-deploy-missing") ||
		!strings.Contains(line, "the role must exist") {
		t.Errorf("denial: %q", line)
	}
}

// What the user named wins over detection: a token file (flag or AWS_WEB_IDENTITY_TOKEN_FILE) also on a
// GitHub runner, and leftover AWS keys on a runner without id-token permission.
func TestExplicitChoicesWinOverDetection(t *testing.T) {
	start(t, nil)
	f := filepath.Join(t.TempDir(), "token")
	for _, tc := range []struct {
		name string
		env  map[string]string
		opts federate.Options
		want federate.Identity
	}{
		{"token file flag on a runner", nil, federate.Options{TokenFile: f}, federate.IdentityFile},
		{"AWS_WEB_IDENTITY_TOKEN_FILE on a runner without id-token", map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": f, "ACTIONS_ID_TOKEN_REQUEST_URL": ""}, federate.Options{}, federate.IdentityFile},
		{"--gcp-service-account on a runner", nil, federate.Options{GCPServiceAccount: "sa@p.iam.gserviceaccount.com"}, federate.IdentityGCP},
		{"leftover keys without id-token", map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": "", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}, federate.Options{}, federate.IdentityAWS},
		{"--identity wins over all", map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": f}, federate.Options{Identity: federate.IdentityGitHub}, federate.IdentityGitHub},
		{"a runner", nil, federate.Options{}, federate.IdentityGitHub},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			d, err := federate.Detect(context.Background(), tc.opts)
			if err != nil || d.Identity != tc.want {
				t.Errorf("%v %v, want %s", d, err, tc.want)
			}
		})
	}
}

// Every secret federate obtains reaches Options.Mask before Federate returns: the job's request token,
// each ID token, the metadata server's access token, and every secret key and session token.
func TestEverySecretReachesMask(t *testing.T) {
	for _, tc := range []struct {
		name string
		prep func(t *testing.T, sb *sandbox.Sandbox) federate.Options
	}{
		{"github", func(t *testing.T, sb *sandbox.Sandbox) federate.Options { return federate.Options{RoleARN: ciRole} }},
		{"impersonation", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			t.Setenv("GITHUB_ACTIONS", "")
			return federate.Options{RoleARN: ciRole, GCPServiceAccount: sb.Config.GCP.ServiceAccountEmail, IAMCredentialsURL: sb.Endpoints.IAMCredentials}
		}},
		{"default chain into a role", func(t *testing.T, sb *sandbox.Sandbox) federate.Options {
			role, _ := sb.World.Role(ciRole)
			s := sb.World.Issue(role, "laptop", time.Hour, false)
			t.Setenv("GITHUB_ACTIONS", "")
			t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKeyID)
			t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretAccessKey)
			t.Setenv("AWS_SESSION_TOKEN", s.SessionToken)
			return federate.Options{Identity: federate.IdentityAWS, RoleARN: "arn:aws:iam::444455556666:role/ecrpush-deploy"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb := start(t, nil)
			masked := map[string]bool{}
			o := tc.prep(t, sb)
			o.Mask = func(s string) { masked[s] = true }
			s, err := federate.Federate(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := s.Config.Credentials.Retrieve(context.Background())
			want := []string{c.SecretAccessKey, c.SessionToken}
			switch tc.name {
			case "github":
				want = append(want, sb.Endpoints.GitHubRequestToken)
				want = append(want, sb.GitHub.Issued()...)
			case "impersonation":
				want = append(want, sb.Google.AccessToken())
				want = append(want, sb.Google.Issued()...)
			default:
				want = append(want, os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))
			}
			for _, w := range want {
				if !masked[w] {
					t.Errorf("a secret of %d bytes was never masked", len(w))
				}
			}
		})
	}
}

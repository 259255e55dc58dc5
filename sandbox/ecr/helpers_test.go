package ecr

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ecrpush/ecrpush/internal/iam"
	"github.com/ecrpush/ecrpush/sandbox/world"
)

const (
	ciAccount    = "111122223333"
	prodAccount  = "444455556666"
	otherAccount = "777788889999"
)

var (
	ciEast   = RegistryID{Account: ciAccount, Region: "us-east-1"}
	ciWest   = RegistryID{Account: ciAccount, Region: "eu-west-1"}
	prodEast = RegistryID{Account: prodAccount, Region: "us-east-1"}
	other    = RegistryID{Account: otherAccount, Region: "us-east-1"}
)

// clock is a settable test clock shared by the world and the service.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// env is a running ECR sandbox: the API and one listener per registry on 127.0.0.1.
type env struct {
	t     *testing.T
	clock *clock
	w     *world.World
	svc   *Service
	api   *httptest.Server
	s3    *httptest.Server // the layer bucket blob GETs redirect to
	regs  map[RegistryID]*httptest.Server
	roles map[string]*world.Role // "account/name"
}

const (
	pushPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`
	// tokenOnlyPolicy can log in but do nothing else.
	tokenOnlyPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}]}`
	trustAny        = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`
)

type envOptions struct {
	delay          time.Duration
	blobMounting   bool
	storageDir     string
	reportTokenTTL bool
}

func newEnv(t *testing.T, eo envOptions) *env {
	t.Helper()
	if eo.delay == 0 {
		eo.delay = 20 * time.Millisecond
	}
	c := &clock{}
	w := world.New(c.now)
	w.AddAccount(ciAccount, "ci", []string{"us-east-1", "eu-west-1"})
	w.AddAccount(prodAccount, "prod", []string{"us-east-1"})
	w.AddAccount(otherAccount, "other", []string{"us-east-1"})
	e := &env{t: t, clock: c, w: w, regs: map[RegistryID]*httptest.Server{}, roles: map[string]*world.Role{}}
	// Layer GETs redirect to the stand-in S3 host, as ECR's do.
	for _, acct := range []string{ciAccount, prodAccount, otherAccount} {
		e.addRole(acct, "pusher", pushPolicy)
		e.addRole(acct, "tokenonly", tokenOnlyPolicy)
	}
	svc, err := New(w, Options{
		Registries:       []RegistryID{ciEast, ciWest, prodEast, other},
		ReplicationDelay: eo.delay,
		StorageDir:       eo.storageDir,
		BlobMounting:     eo.blobMounting,
		ReportTokenTTL:   eo.reportTokenTTL,
		Now:              c.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.api = httptest.NewServer(svc.APIHandler())
	e.s3 = httptest.NewServer(svc.DownloadHandler())
	svc.SetDownloadEndpoint(e.s3.URL)
	for _, id := range svc.Registries() {
		srv := httptest.NewServer(svc.RegistryHandler(id))
		svc.SetEndpoint(id, srv.URL)
		e.regs[id] = srv
	}
	t.Cleanup(func() {
		e.api.Close()
		e.s3.Close()
		for _, s := range e.regs {
			s.Close()
		}
		if err := svc.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e
}

func (e *env) addRole(account, roleName, policy string) *world.Role {
	e.t.Helper()
	p, err := iam.Parse([]byte(policy))
	if err != nil {
		e.t.Fatalf("policy: %v", err)
	}
	trust, err := iam.Parse([]byte(trustAny))
	if err != nil {
		e.t.Fatalf("trust: %v", err)
	}
	r := &world.Role{Account: account, Name: roleName, Trust: trust, TrustText: trustAny, Policies: []*iam.Policy{p}}
	if err := e.w.AddRole(r); err != nil {
		e.t.Fatal(err)
	}
	e.roles[account+"/"+roleName] = r
	return r
}

// session issues role credentials for an hour.
func (e *env) session(account, role string) *world.Session {
	e.t.Helper()
	r, ok := e.roles[account+"/"+role]
	if !ok {
		e.t.Fatalf("no role %s/%s", account, role)
	}
	return e.w.Issue(r, "test", time.Hour, false)
}

// client is an aws-sdk-go-v2 ECR client for the session in region.
func (e *env) client(s *world.Session, region string) *awsecr.Client {
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, s.SessionToken),
	}
	return awsecr.NewFromConfig(cfg, func(o *awsecr.Options) {
		o.BaseEndpoint = aws.String(e.api.URL)
		o.RetryMaxAttempts = 1
	})
}

// password logs in through the API, as `aws ecr get-login-password` does.
func (e *env) password(s *world.Session, region string) string {
	e.t.Helper()
	out, err := e.client(s, region).GetAuthorizationToken(context.Background(), &awsecr.GetAuthorizationTokenInput{})
	if err != nil {
		e.t.Fatalf("GetAuthorizationToken: %v", err)
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		e.t.Fatal(err)
	}
	user, pass, _ := strings.Cut(string(raw), ":")
	if user != "AWS" {
		e.t.Fatalf("user %q", user)
	}
	return pass
}

func (e *env) createRepo(s *world.Session, region, repo string, immutable bool) {
	e.t.Helper()
	in := &awsecr.CreateRepositoryInput{RepositoryName: aws.String(repo)}
	if immutable {
		in.ImageTagMutability = "IMMUTABLE"
	}
	if _, err := e.client(s, region).CreateRepository(context.Background(), in); err != nil {
		e.t.Fatalf("CreateRepository %s: %v", repo, err)
	}
}

// ref names repo:tag (or repo@digest) in a registry's listener.
func (e *env) ref(id RegistryID, repoRef string) name.Reference {
	e.t.Helper()
	host := strings.TrimPrefix(e.regs[id].URL, "http://")
	r, err := name.ParseReference(host+"/"+repoRef, name.Insecure)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func basic(pass string) remote.Option {
	return remote.WithAuth(&authn.Basic{Username: "AWS", Password: pass})
}

// apiCode extracts an AWS error code.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// regStatus extracts the HTTP status and first OCI error code of a ggcr error.
func regStatus(err error) (int, string) {
	var te *transport.Error
	if !errors.As(err, &te) {
		return 0, ""
	}
	code := ""
	if len(te.Errors) > 0 {
		code = string(te.Errors[0].Code)
	}
	return te.StatusCode, code
}

// rawRequest sends an authenticated request straight to a registry.
func (e *env) rawRequest(id RegistryID, method, path, pass string, body string, hdr map[string]string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.regs[id].URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if pass != "" {
		req.SetBasicAuth("AWS", pass)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// eventually polls cond every 10ms for at most d.
func eventually(t *testing.T, d time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// directPassword issues a registry password without the API (registry-only tests).
func (e *env) directPassword(s *world.Session, region string) string {
	return e.svc.tokens.issue(s, region, e.clock.now().Add(e.svc.o.TokenTTL))
}

// directRepo creates a repository without the API (registry-only tests).
func (e *env) directRepo(id RegistryID, repo string, mutability string) {
	e.t.Helper()
	rg, _ := e.svc.registry(id)
	if _, ok := rg.createRepository(repoSpec{name: repo, mutability: mutability}, e.clock.now()); !ok {
		e.t.Fatalf("repository %s exists", repo)
	}
}

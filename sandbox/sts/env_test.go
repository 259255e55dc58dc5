package sts_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/ecrpush/ecrpush/internal/iam"
	"github.com/ecrpush/ecrpush/sandbox/oidc"
	"github.com/ecrpush/ecrpush/sandbox/sts"
	"github.com/ecrpush/ecrpush/sandbox/world"
)

// Accounts and names shared by the tests.
const (
	ciAccount   = "111122223333"
	destAccount = "444455556666"
	ghProvider  = "token.actions.githubusercontent.com"
	gProvider   = "accounts.google.com"
	ciRoleARN   = "arn:aws:iam::" + ciAccount + ":role/gha-push"
	gcpRoleARN  = "arn:aws:iam::" + ciAccount + ":role/gcp-push"
	replRoleARN = "arn:aws:iam::" + destAccount + ":role/replicator"
	soloRoleARN = "arn:aws:iam::" + destAccount + ":role/no-identity-policy-target"
	gSAID       = "108234567890123456789" // a Google service account's unique id (azp and sub)
	ghSubject   = "repo:example/app:ref:refs/heads/main"
)

const ghTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"},"StringLike":{"token.actions.githubusercontent.com:sub":"repo:example/app:*"}}}]}`

// gTrust is what `ecrpush trust-policy --google-service-account-id` writes: :aud is the
// service account (azp), :oaud the audience the token was minted for.
const gTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:aud":"` + gSAID + `","accounts.google.com:oaud":"sts.amazonaws.com","accounts.google.com:sub":"` + gSAID + `"}}}]}`

const ciIdentity = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"` + replRoleARN + `"}]}`

const replTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + ciRoleARN + `"},"Action":"sts:AssumeRole"}]}`

// soloTrust trusts the ci role, but the ci role's identity policy does not grant it: across
// accounts, AWS refuses.
const soloTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + ciRoleARN + `"},"Action":"sts:AssumeRole"}]}`

// clock is the real clock moved forward by Advance, for expiry tests.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// env is a running sandbox STS with a GitHub-like and a Google-like issuer.
type env struct {
	t      *testing.T
	world  *world.World
	gh     *oidc.Issuer
	google *oidc.Issuer
	server *httptest.Server
	clock  *clock
}

func mustPolicy(t *testing.T, doc string) *iam.Policy {
	t.Helper()
	p, err := iam.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("parse policy %s: %v", doc, err)
	}
	return p
}

// startIssuer serves a new issuer on 127.0.0.1 and sets its URL.
func startIssuer(t *testing.T) (*oidc.Issuer, *httptest.Server) {
	t.Helper()
	iss, err := oidc.NewIssuer()
	if err != nil {
		t.Fatalf("new issuer: %v", err)
	}
	srv := httptest.NewServer(iss.Handler())
	t.Cleanup(srv.Close)
	iss.SetURL(srv.URL)
	return iss, srv
}

func newEnv(t *testing.T, extra ...sts.Provider) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{}}
	e.world = world.New(nil)
	e.world.AddAccount(ciAccount, "ci", []string{"us-east-1"})
	e.world.AddAccount(destAccount, "prod", []string{"eu-west-1"})
	roles := []*world.Role{
		{Account: ciAccount, Name: "gha-push", Trust: mustPolicy(t, ghTrust), TrustText: ghTrust,
			Policies: []*iam.Policy{mustPolicy(t, ciIdentity)}},
		{Account: ciAccount, Name: "gcp-push", Trust: mustPolicy(t, gTrust), TrustText: gTrust,
			Policies: []*iam.Policy{mustPolicy(t, ciIdentity)}},
		{Account: destAccount, Name: "replicator", Trust: mustPolicy(t, replTrust), TrustText: replTrust,
			MaxSessionDuration: 12 * time.Hour},
		{Account: destAccount, Name: "no-identity-policy-target", Trust: mustPolicy(t, soloTrust), TrustText: soloTrust},
	}
	for _, r := range roles {
		if err := e.world.AddRole(r); err != nil {
			t.Fatal(err)
		}
	}
	e.gh, _ = startIssuer(t)
	e.google, _ = startIssuer(t)
	providers := append([]sts.Provider{
		{Name: ghProvider, IssuerURL: e.gh.URL(), ClientIDs: []string{"sts.amazonaws.com"}},
		{Name: gProvider, IssuerURL: e.google.URL(), BuiltIn: true},
	}, extra...)
	e.server = newServer(t, sts.New(e.world, &oidc.Verifier{}, providers, sts.WithNow(e.clock.Now)))
	return e
}

// newServer serves srv on 127.0.0.1 until the test ends.
func newServer(t *testing.T, srv *sts.Server) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(srv.Handler())
	t.Cleanup(s.Close)
	return s
}

// ghToken signs a GitHub Actions-like token; over replaces or (with nil) deletes claims.
func (e *env) ghToken(over map[string]any) string {
	now := time.Now()
	claims := map[string]any{
		"sub": ghSubject, "aud": "sts.amazonaws.com", "repository": "example/app", "ref": "refs/heads/main",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "j1",
	}
	return sign(e.t, e.gh, claims, over)
}

// googleToken signs a token like the GCE metadata server's for audience sts.amazonaws.com.
func (e *env) googleToken(over map[string]any) string {
	now := time.Now()
	claims := map[string]any{
		"sub": gSAID, "azp": gSAID, "aud": "sts.amazonaws.com", "email": "pusher@proj.iam.gserviceaccount.com",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	return sign(e.t, e.google, claims, over)
}

func sign(t *testing.T, iss *oidc.Issuer, claims, over map[string]any) string {
	t.Helper()
	for k, v := range over {
		if v == nil {
			delete(claims, k)
			continue
		}
		claims[k] = v
	}
	tok, err := iss.Sign(claims)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return tok
}

// unsignedToken is a JWT with "alg":"none" and no signature.
func unsignedToken(claims map[string]any) string {
	h, _ := json.Marshal(map[string]any{"alg": "none", "typ": "JWT"})
	p, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

// client is an STS client for the sandbox. Without creds it is anonymous, as web identity
// callers are. Retries are off so error tests see one response.
func (e *env) client(creds aws.CredentialsProvider) *awssts.Client {
	if creds == nil {
		creds = aws.AnonymousCredentials{}
	}
	return awssts.New(awssts.Options{
		Region:           "us-east-1",
		Credentials:      creds,
		BaseEndpoint:     aws.String(e.server.URL),
		RetryMaxAttempts: 1,
	})
}

func static(c *awssts.AssumeRoleWithWebIdentityOutput) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(*c.Credentials.AccessKeyId, *c.Credentials.SecretAccessKey, *c.Credentials.SessionToken)
}

// webIdentity calls AssumeRoleWithWebIdentity through the SDK.
func (e *env) webIdentity(role, session, token string, duration int32) (*awssts.AssumeRoleWithWebIdentityOutput, error) {
	in := &awssts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(role), RoleSessionName: aws.String(session),
		WebIdentityToken: aws.String(token)}
	if duration != 0 {
		in.DurationSeconds = aws.Int32(duration)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.client(nil).AssumeRoleWithWebIdentity(ctx, in)
}

// wantAPIError checks err is the AWS error code with the HTTP status, and the message
// contains msg.
func wantAPIError(t *testing.T, err error, code string, status int, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %s", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want API error %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Errorf("code = %s (%s), want %s", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	if !strings.Contains(ae.ErrorMessage(), msg) {
		t.Errorf("message = %q, want it to contain %q", ae.ErrorMessage(), msg)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("no HTTP response in %v", err)
	}
	if re.HTTPStatusCode() != status {
		t.Errorf("status = %d, want %d", re.HTTPStatusCode(), status)
	}
	if re.ServiceRequestID() == "" {
		t.Errorf("no request id")
	}
}

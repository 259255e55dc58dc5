package sts_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/ecrpush/ecrpush/sandbox/oidc"
	"github.com/ecrpush/ecrpush/sandbox/sts"
)

func TestWebIdentitySuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	before := time.Now().Truncate(time.Second)
	out, err := e.webIdentity(ciRoleARN, "gha-run-1", e.ghToken(nil), 0)
	if err != nil {
		t.Fatalf("AssumeRoleWithWebIdentity: %v", err)
	}
	c := out.Credentials
	if !strings.HasPrefix(*c.AccessKeyId, "ASIA") || *c.SecretAccessKey == "" || *c.SessionToken == "" {
		t.Errorf("credentials not filled: %+v", c)
	}
	if got := c.Expiration.Sub(before); got < 59*time.Minute || got > 61*time.Minute {
		t.Errorf("expiration %v is %v away, want the 1 h default", c.Expiration, got)
	}
	checks := map[string][2]string{
		"Arn":      {*out.AssumedRoleUser.Arn, "arn:aws:sts::111122223333:assumed-role/gha-push/gha-run-1"},
		"Subject":  {*out.SubjectFromWebIdentityToken, ghSubject},
		"Provider": {*out.Provider, "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
		"Audience": {*out.Audience, "sts.amazonaws.com"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if id := *out.AssumedRoleUser.AssumedRoleId; !strings.HasPrefix(id, "AROA") || !strings.HasSuffix(id, ":gha-run-1") {
		t.Errorf("AssumedRoleId = %q", id)
	}
	sess, err := e.world.Lookup(*c.AccessKeyId)
	if err != nil {
		t.Fatalf("issued session not in world: %v", err)
	}
	if sess.Subject != ghSubject || sess.Audience != "sts.amazonaws.com" || sess.Provider != *out.Provider || sess.Chained {
		t.Errorf("session records %+v", sess)
	}
}

func TestWebIdentityProviderSDK(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.ghToken(nil)
	p := stscreds.NewWebIdentityRoleProvider(e.client(nil), ciRoleARN, tokenFunc(func() ([]byte, error) {
		return []byte(tok), nil
	}), func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = "provider-session" })
	cache := aws.NewCredentialsCache(p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	creds, err := cache.Retrieve(ctx)
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	if !creds.CanExpire || creds.Expires.Before(time.Now().Add(50*time.Minute)) {
		t.Errorf("credentials expire %v (can expire %v)", creds.Expires, creds.CanExpire)
	}
	out, err := e.client(cache).GetCallerIdentity(ctx, nil)
	if err != nil {
		t.Fatalf("GetCallerIdentity with provider creds: %v", err)
	}
	if *out.Arn != "arn:aws:sts::111122223333:assumed-role/gha-push/provider-session" {
		t.Errorf("Arn = %s", *out.Arn)
	}
}

type tokenFunc func() ([]byte, error)

func (f tokenFunc) GetIdentityToken() ([]byte, error) { return f() }

func TestWebIdentityCredentialLifetimeCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.world.CredentialLifetime = 60 * time.Second
	out, err := e.webIdentity(ciRoleARN, "short", e.ghToken(nil), 3600)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(*out.Credentials.Expiration); d > 61*time.Second || d < 30*time.Second {
		t.Errorf("credentials live %v, want the 60 s cap", d)
	}
}

func TestWebIdentityRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	claims := func() map[string]any {
		return map[string]any{"sub": ghSubject, "aud": "sts.amazonaws.com",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()}
	}
	forge := func(f func(map[string]any) (string, error)) string {
		tok, err := f(claims())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	unknownKid := forge(e.gh.SignWithUnknownKey)
	wrongKey := forge(e.gh.SignWithWrongKey)
	algNone := forge(e.gh.SignNone)
	hs256 := forge(e.gh.SignHS256WithPublicKey)
	evil := claims()
	evil["sub"] = "repo:evil/app:ref:refs/heads/main"
	tampered, err := e.gh.Tamper(e.ghToken(map[string]any{"sub": "repo:example/app:ref:refs/heads/feature"}), evil)
	if err != nil {
		t.Fatal(err)
	}

	// An issuer that was registered but no longer answers.
	gone, goneSrv := startIssuer(t)
	goneToken, _ := gone.Sign(map[string]any{"sub": "x", "aud": "sts.amazonaws.com",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()})
	goneSrv.Close()

	// A registered but untrusted third issuer, and a token from an unknown one.
	stranger, _ := startIssuer(t)
	strangerToken, _ := stranger.Sign(map[string]any{"sub": ghSubject, "aud": "sts.amazonaws.com",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()})

	e = newEnvWith(t, e, sts.Provider{Name: "gone.example", IssuerURL: gone.URL(), ClientIDs: []string{"sts.amazonaws.com"}})

	tests := []struct {
		name     string
		role     string
		session  string
		token    string
		duration int32
		code     string
		status   int
		msg      string
	}{
		{"wrong aud", ciRoleARN, "s1", e.ghToken(map[string]any{"aud": "https://github.com/example"}),
			0, "InvalidIdentityToken", 400, "Incorrect token audience"},
		{"wrong sub", ciRoleARN, "s1", e.ghToken(map[string]any{"sub": "repo:evil/app:ref:refs/heads/main"}),
			0, "AccessDenied", 403, "Not authorized to perform sts:AssumeRoleWithWebIdentity"},
		{"expired", ciRoleARN, "s1", e.ghToken(map[string]any{"iat": time.Now().Add(-2 * time.Hour).Unix(),
			"nbf": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()}),
			0, "ExpiredTokenException", 400, "Token expired: current date/time"},
		{"unknown kid", ciRoleARN, "s1", unknownKid, 0, "InvalidIdentityToken", 400,
			"Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements"},
		{"wrong key under the right kid", ciRoleARN, "s1", wrongKey, 0, "InvalidIdentityToken", 400, "signature"},
		{"alg none", ciRoleARN, "s1", algNone, 0, "InvalidIdentityToken", 400, "alg none"},
		{"alg none without kid", ciRoleARN, "s1", unsignedToken(map[string]any{"iss": e.gh.URL(), "sub": ghSubject,
			"aud": "sts.amazonaws.com", "exp": time.Now().Add(time.Minute).Unix()}), 0, "InvalidIdentityToken", 400, ""},
		{"hs256 keyed with the public key", ciRoleARN, "s1", hs256, 0, "InvalidIdentityToken", 400, ""},
		{"tampered payload", ciRoleARN, "s1", tampered, 0, "InvalidIdentityToken", 400, "signature"},
		{"not a jwt", ciRoleARN, "s1", "not-a-token", 0, "InvalidIdentityToken", 400, "not a valid JWT"},
		{"unknown issuer", ciRoleARN, "s1", strangerToken, 0, "InvalidIdentityToken", 400,
			"No OpenIDConnect provider found in your account for " + stranger.URL()},
		{"idp unreachable", ciRoleARN, "s1", goneToken, 0, "IDPCommunicationError", 400, "could not be reached"},
		{"session name pattern", ciRoleARN, "bad name!", e.ghToken(nil), 0, "ValidationError", 400,
			`1 validation error detected: Value 'bad name!' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*`},
		{"session name short", ciRoleARN, "a", e.ghToken(nil), 0, "ValidationError", 400,
			"1 validation error detected: Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"},
		{"session name long", ciRoleARN, strings.Repeat("a", 65), e.ghToken(nil), 0, "ValidationError", 400,
			"Member must have length less than or equal to 64"},
		{"duration too short", ciRoleARN, "s1", e.ghToken(nil), 100, "ValidationError", 400,
			"1 validation error detected: Value '100' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"},
		{"duration too long", ciRoleARN, "s1", e.ghToken(nil), 43201, "ValidationError", 400,
			"Member must have value less than or equal to 43200"},
		{"duration above role max", ciRoleARN, "s1", e.ghToken(nil), 7200, "ValidationError", 400,
			"The requested DurationSeconds exceeds the MaxSessionDuration set for this role."},
		{"two violations", ciRoleARN, "a b", e.ghToken(nil), 100, "ValidationError", 400,
			"2 validation errors detected: Value 'a b' at 'roleSessionName'"},
		{"unknown role", "arn:aws:iam::111122223333:role/nope", "s1", e.ghToken(nil), 0, "AccessDenied", 403,
			"Not authorized to perform sts:AssumeRoleWithWebIdentity"},
		{"role in another account", "arn:aws:iam::444455556666:role/gha-push", "s1", e.ghToken(nil), 0, "AccessDenied", 403,
			"Not authorized to perform sts:AssumeRoleWithWebIdentity"},
		{"not a role arn", "arn:aws:iam::111122223333:user/gha-push", "s1", e.ghToken(nil), 0, "ValidationError", 400,
			"Request ARN is invalid"},
		{"short arn", "arn:aws:iam::1:role", "s1", e.ghToken(nil), 0, "ValidationError", 400,
			"at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20"},
		{"google token for github role", ciRoleARN, "s1", e.googleToken(nil), 0, "AccessDenied", 403,
			"Not authorized to perform sts:AssumeRoleWithWebIdentity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.webIdentity(tc.role, tc.session, tc.token, tc.duration)
			wantAPIError(t, err, tc.code, tc.status, tc.msg)
		})
	}
	// The SDK's typed errors come from the same codes.
	_, err = e.webIdentity(ciRoleARN, "s1", unknownKid, 0)
	var invalid *types.InvalidIdentityTokenException
	if !errors.As(err, &invalid) {
		t.Errorf("unknown kid: %T is not InvalidIdentityTokenException", err)
	}
	_, err = e.webIdentity(ciRoleARN, "s1", goneToken, 0)
	var idp *types.IDPCommunicationErrorException
	if !errors.As(err, &idp) {
		t.Errorf("idp unreachable: %T is not IDPCommunicationErrorException", err)
	}
	if len(e.world.Sessions()) != 0 {
		t.Errorf("refusals issued %d sessions", len(e.world.Sessions()))
	}
}

// newEnvWith restarts e's STS server with extra providers, keeping its world and issuers.
func newEnvWith(t *testing.T, e *env, extra ...sts.Provider) *env {
	t.Helper()
	e.server.Close()
	providers := append([]sts.Provider{
		{Name: ghProvider, IssuerURL: e.gh.URL(), ClientIDs: []string{"sts.amazonaws.com"}},
		{Name: gProvider, IssuerURL: e.google.URL(), BuiltIn: true},
	}, extra...)
	v := &oidc.Verifier{Client: &http.Client{Timeout: 2 * time.Second}}
	e.server = newServer(t, sts.New(e.world, v, providers, sts.WithNow(e.clock.Now)))
	return e
}

func TestWebIdentityGoogle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	out, err := e.webIdentity(gcpRoleARN, "gcp-build", e.googleToken(nil), 0)
	if err != nil {
		t.Fatalf("google token: %v", err)
	}
	if *out.Provider != "accounts.google.com" || *out.Audience != gSAID || *out.SubjectFromWebIdentityToken != gSAID {
		t.Errorf("Provider %q Audience %q Subject %q", *out.Provider, *out.Audience, *out.SubjectFromWebIdentityToken)
	}

	// :aud is azp, not the token's aud: a trust policy that puts the requested audience in
	// :aud does not match a token that has an azp.
	audTrust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:aud":"sts.amazonaws.com"}}}]}`
	setTrust(t, e, gcpRoleARN, audTrust)
	_, err = e.webIdentity(gcpRoleARN, "gcp-build", e.googleToken(nil), 0)
	wantAPIError(t, err, "AccessDenied", 403, "Not authorized to perform sts:AssumeRoleWithWebIdentity")
	// Without azp, :aud falls back to aud.
	if _, err := e.webIdentity(gcpRoleARN, "gcp-build", e.googleToken(map[string]any{"azp": nil}), 0); err != nil {
		t.Errorf("token without azp: %v", err)
	}

	tests := []struct {
		name string
		over map[string]any
	}{
		{"other service account", map[string]any{"sub": "999", "azp": "999"}},
		{"other oaud", map[string]any{"aud": "https://example.com"}},
	}
	setTrust(t, e, gcpRoleARN, gTrust)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.webIdentity(gcpRoleARN, "gcp-build", e.googleToken(tc.over), 0)
			wantAPIError(t, err, "AccessDenied", 403, "Not authorized to perform sts:AssumeRoleWithWebIdentity")
		})
	}
	// A GitHub token does not satisfy a Google trust policy.
	_, err = e.webIdentity(gcpRoleARN, "gcp-build", e.ghToken(nil), 0)
	wantAPIError(t, err, "AccessDenied", 403, "Not authorized")
}

// setTrust replaces a role's trust policy through the world (which locks), never by writing
// to a role the server may be reading.
func setTrust(t *testing.T, e *env, arn, trust string) {
	t.Helper()
	old, ok := e.world.Role(arn)
	if !ok {
		t.Fatalf("no role %s", arn)
	}
	r := *old
	r.Trust, r.TrustText = mustPolicy(t, trust), trust
	if err := e.world.AddRole(&r); err != nil {
		t.Fatal(err)
	}
}

package sts_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ecrpush/ecrpush/sandbox/oidc"
	"github.com/ecrpush/ecrpush/sandbox/sts"
)

// An enterprise issuer is its own IAM OIDC provider: its tokens are evaluated with its own condition
// keys and principal, and a policy written for github.com's provider refuses them.
func TestEnterpriseIssuerIsItsOwnProvider(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ghes, err := oidc.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ghes.Handler()) // the handler answers under any path prefix
	t.Cleanup(srv.Close)
	ghes.SetURL(srv.URL + "/_services/token")
	name := strings.TrimPrefix(srv.URL, "http://") + "/_services/token"
	stsSrv := sts.New(e.world, &oidc.Verifier{}, []sts.Provider{{Name: ghProvider, IssuerURL: e.gh.URL(), ClientIDs: []string{"sts.amazonaws.com"}}})
	stsSrv.AddProvider(sts.Provider{Name: name, IssuerURL: ghes.URL(), ClientIDs: []string{"sts.amazonaws.com"}})
	e.server = newServer(t, stsSrv)

	tok := sign(t, ghes, map[string]any{"sub": ghSubject, "aud": "sts.amazonaws.com", "exp": 4102444800, "iat": 1700000000}, nil)
	// github.com's policy: the principal and the keys are another provider's.
	_, err = e.webIdentity(ciRoleARN, "s1", tok, 0)
	wantAPIError(t, err, "AccessDenied", 403, "Not authorized to perform sts:AssumeRoleWithWebIdentity")
	setTrust(t, e, ciRoleARN, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
	  "Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/`+name+`"},"Action":"sts:AssumeRoleWithWebIdentity",
	  "Condition":{"StringEquals":{"`+name+`:aud":"sts.amazonaws.com","`+name+`:sub":"`+ghSubject+`"}}}]}`)
	out, err := e.webIdentity(ciRoleARN, "s1", tok, 0)
	if err != nil {
		t.Fatal(err)
	}
	if *out.Provider != "arn:aws:iam::111122223333:oidc-provider/"+name {
		t.Errorf("provider %s", *out.Provider)
	}
}

// The verification-key fault answers exactly as AWS does, at the rate asked, replayably.
func TestVerificationKeyFault(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	stsSrv := sts.New(e.world, &oidc.Verifier{}, []sts.Provider{{Name: ghProvider, IssuerURL: e.gh.URL(), ClientIDs: []string{"sts.amazonaws.com"}}})
	e.server = newServer(t, stsSrv)
	stsSrv.SetVerificationKeyFailureRate(1, 1)
	_, err := e.webIdentity(ciRoleARN, "s1", e.ghToken(nil), 0)
	wantAPIError(t, err, "InvalidIdentityToken", 400, "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements")
	run := func(seed int64) (pattern string) {
		stsSrv.SetVerificationKeyFailureRate(0.3, seed)
		for i := 0; i < 40; i++ {
			if _, err := e.webIdentity(ciRoleARN, "s1", e.ghToken(nil), 0); err != nil {
				pattern += "x"
			} else {
				pattern += "."
			}
		}
		return pattern
	}
	a, b := run(5), run(5)
	if a != b || !strings.Contains(a, "x") || !strings.Contains(a, ".") || stsSrv.VerificationKeyFailures() != strings.Count(b, "x") {
		t.Errorf("runs %s / %s, %d failures counted", a, b, stsSrv.VerificationKeyFailures())
	}
}

package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecrpush/ecrpush/sandbox"
	"github.com/ecrpush/ecrpush/sandbox/oidc"
)

// TestTrustEnforcement presents forged, mis-scoped and stale ID tokens through a web-identity token
// file, the way a Kubernetes pod or a misconfigured runner would, and requires every one to be
// denied by STS before anything is written — exit 2, one line saying why in the terms of the
// failure (audience, subject, issuer, time, key, algorithm, signature), and the token never echoed.
func TestTrustEnforcement(t *testing.T) {
	h := newHarness(t, nil)
	iss := h.sb.GitHubIss
	other, err := oidc.NewIssuer() // an issuer no IAM OIDC provider names (never served)
	if err != nil {
		t.Fatal(err)
	}
	other.SetURL("https://token.example.com")
	src, _ := randomSource(t, 1024, 1)

	// claims are a GitHub token's for example/app on main, valid now, with changes applied.
	claims := func(change map[string]any) map[string]any {
		now := time.Now()
		c := map[string]any{
			"sub": "repo:example/app:ref:refs/heads/main", "aud": "sts.amazonaws.com", "repository": "example/app",
			"repository_owner": "example", "ref": "refs/heads/main", "event_name": "push", "jti": "e2e",
			"iat": now.Unix(), "nbf": now.Add(-5 * time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		}
		for k, v := range change {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	must := func(tok string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := must(iss.Sign(claims(nil)))
	past := time.Now().Add(-time.Hour)

	cases := []struct {
		name  string
		token string
		want  []string // in the error line: the diagnosis
	}{
		{"wrong audience", must(iss.Sign(claims(map[string]any{"aud": "https://github.com/example"}))),
			[]string{"audience", "https://github.com/example", "--audience"}},
		{"wrong subject", must(iss.Sign(claims(map[string]any{"sub": "repo:Example/App:ref:refs/heads/main"}))),
			[]string{"not authorized", "repo:Example/App:ref:refs/heads/main", "case-sensitive"}},
		{"token for another repository", must(iss.Sign(claims(map[string]any{"sub": "repo:example/other:ref:refs/heads/main", "repository": "example/other"}))),
			[]string{"not authorized", "repo:example/other", "trust-policy --github-repo example/other"}},
		{"wrong issuer", must(other.Sign(claims(nil))),
			[]string{"https://token.example.com", "OIDC identity provider"}},
		{"expired", must(iss.Sign(claims(map[string]any{"iat": past.Add(-10 * time.Minute).Unix(), "nbf": past.Add(-10 * time.Minute).Unix(), "exp": past.Unix()}))),
			[]string{"expired"}},
		{"not valid yet", must(iss.Sign(claims(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}))),
			[]string{"not valid before", "clock"}},
		{"issued in the future", must(iss.Sign(claims(map[string]any{"iat": time.Now().Add(time.Hour).Unix(), "nbf": nil}))),
			[]string{"future", "clock"}},
		{"no expiry", must(iss.Sign(claims(map[string]any{"exp": nil}))),
			[]string{"exp"}},
		{"unknown key", must(iss.SignWithUnknownKey(claims(nil))),
			[]string{"verification key", "key"}},
		{"wrong key", must(iss.SignWithWrongKey(claims(nil))),
			[]string{"signature", "not signed by"}},
		{"alg none", must(iss.SignNone(claims(nil))),
			[]string{"alg none", "not signed by"}},
		{"HS256 with the public key", must(iss.SignHS256WithPublicKey(claims(nil))),
			[]string{"HS256", "not signed by"}},
		{"tampered payload", must(iss.Tamper(good, map[string]any{"sub": "repo:example/app:environment:prod"})),
			[]string{"signature", "not signed by"}},
		// Claims are printed to explain a denial; one holding a newline must not start a log line
		// of its own (a GitHub workflow command).
		{"claims forging log lines", must(iss.Sign(claims(map[string]any{"sub": "repo:example/other:ref:x\n::error::forged",
			"repository": "example/other\r\n::add-mask::forged"}))), []string{"not authorized", `\n::error::forged`}},
	}
	dir := t.TempDir()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.secret(tc.token)
			file := filepath.Join(dir, "token-"+string(rune('a'+i)))
			if err := os.WriteFile(file, []byte(tc.token+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			h.sb.Log.Reset()
			r := h.run(tc.name, h.local(), "push", "--identity", "file", "--web-identity-token-file", file, "--role-arn", ciRole,
				"--source", src, "--repository", "team/app", "--tag", "v1")
			if r.code != 2 {
				t.Fatalf("exit %d, want 2 (denied): %s\n%s", r.code, r.errLine, r.stderr)
			}
			oneLine(t, r.errLine)
			for _, w := range tc.want {
				if !strings.Contains(r.errLine, w) {
					t.Errorf("diagnosis lacks %q: %s", w, r.errLine)
				}
			}
			if n := h.sb.Log.Count(sandbox.EndpointSTS, "AssumeRoleWithWebIdentity"); n != 1 {
				t.Errorf("%d AssumeRoleWithWebIdentity calls, want 1 (a denial is not retried)", n)
			}
			if w := h.sb.Log.Writes(); len(w) != 0 {
				t.Errorf("a denied token wrote: %+v", w)
			}
			for _, line := range strings.FieldsFunc(r.stdout+"\n"+r.stderr, func(c rune) bool { return c == '\n' || c == '\r' }) {
				if strings.Contains(line, "forged") && !strings.HasPrefix(line, "ecrpush: ") && !strings.HasPrefix(line, "::error::") {
					t.Errorf("a claim started a line of its own: %q", line)
				}
			}
			if n := len(h.sb.World.Sessions()); n != 0 {
				t.Errorf("STS issued %d sessions for a bad token", n)
			}
			t.Logf("%s", r.errLine)
		})
	}
	// The same token file with a good token is admitted: the denials above are the token's.
	file := filepath.Join(dir, "token-good")
	h.secret(good)
	if err := os.WriteFile(file, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	r := h.run("good token", h.local(), "push", "--identity", "file", "--web-identity-token-file", file, "--role-arn", ciRole,
		"--source", src, "--repository", "team/app", "--tag", "v1")
	if r.code != 0 {
		t.Errorf("a good token was refused: %s", r.errLine)
	}
}

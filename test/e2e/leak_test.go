package e2e_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecrpush/ecrpush/sandbox"
)

// TestSecretLeak runs the main flows the way each platform does — a GitHub Actions step with
// outputs and a step summary, a Cloud Build step writing $BUILDER_OUTPUT/output, a terminal asking
// for JSON, a copy fan-out with credentials per account, a denied token — and the harness scans
// everything each printed or wrote for every token, secret key, session token and registry
// password the sandbox issued (every other test in this package is scanned the same way). The
// credentials `federate --format json` prints on purpose go to a file the scan leaves out.
func TestSecretLeak(t *testing.T) {
	h := newHarness(t, fastConfig())
	src, digest := randomSource(t, 4096, 2)
	dests := sandbox.ProdAccount + ":us-east-1," + sandbox.StagingAccount + ":eu-west-1"
	ok := func(label string, r result) {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s\n%s", label, r.code, r.errLine, r.stderr)
		}
	}

	gh := h.github()
	r := h.run("github native", gh, "push", "--role-arn", ciRole, "--source", src, "--repository", "leak/github", "--tag", "v1,latest",
		"--replicate-to", dests, "--configure-replication")
	ok("github native", r)
	// Workflow commands go to stderr (the runner reads both streams for them).
	if !strings.Contains(r.stderr, "::add-mask::") || !strings.Contains(r.output, digest) || !strings.Contains(r.summary, digest) {
		t.Errorf("GitHub flow: masks, outputs or summary missing:\nstderr %s\noutput %s\nsummary %s", r.stderr, r.output, r.summary)
	}

	r = h.run("github copy", h.github(), "push", "--role-arn", ciRole, "--source", src, "--repository", "leak/copy", "--tag", "v1",
		"--replicate-to", dests, "--replication", "copy", "--destination-role-name", deployRole)
	ok("github copy", r)

	cb := h.cloudBuild()
	r = h.run("cloud build", cb, "push", "--role-arn", ciRole, "--source", src, "--repository", "leak/cloudbuild", "--tag", "v1")
	ok("cloud build", r)
	if !strings.Contains(r.builder, digest) {
		t.Errorf("Cloud Build flow: $BUILDER_OUTPUT/output lacks the digest: %s", r.builder)
	}

	r = h.run("local json", h.local(), "push", "--identity", "github", "--role-arn", ciRole, "--source", src, "--repository", "leak/local",
		"--tag", "v1", "--output", "json")
	ok("local json", r)
	if !json.Valid([]byte(r.stdout)) {
		t.Errorf("local JSON report is not JSON: %s", r.stdout)
	}

	// Denied: the claims are explained, the token is not printed.
	r = h.run("denied", h.github(), "push", "--role-arn", "arn:aws:iam::111122223333:role/nope", "--source", src,
		"--repository", "leak/denied", "--tag", "v1")
	if r.code != 2 {
		t.Errorf("denied: exit %d: %s", r.code, r.errLine)
	}

	// Credentials printed on purpose: to a file a later step reads, never to the log.
	creds := filepath.Join(t.TempDir(), "creds.json")
	r = h.runCtx(t.Context(), "federate json", h.local(), true, "federate", "--identity", "github", "--role-arn", ciRole, "--format", "json")
	ok("federate json", r)
	if err := os.WriteFile(creds, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	var c struct{ SecretAccessKey, SessionToken string }
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil || c.SecretAccessKey == "" || c.SessionToken == "" {
		t.Fatalf("federate --format json: %v\n(%d bytes)", err, len(r.stdout))
	}
	found := false
	for _, s := range h.secrets() {
		found = found || s == c.SecretAccessKey
	}
	if !found {
		t.Error("the sandbox does not list the secret key federate printed: the scan would miss it")
	}
	// The scan itself finds what it should: the printed credentials, and nothing in a masked line.
	if l := findLeaks([]captured{{"federate stdout", r.stdout}}, h.secrets()); len(l) < 2 {
		t.Errorf("the scan found %d secrets in federate's JSON credentials, want the key and the session token", len(l))
	}
	if l := findLeaks([]captured{{"masked", unmasked("::add-mask::" + c.SessionToken + "\nok")}}, h.secrets()); len(l) != 0 {
		t.Errorf("a masked line counted as a leak: %v", l)
	}
}

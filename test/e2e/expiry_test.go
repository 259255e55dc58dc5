package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ecrpush/ecrpush/sandbox"
	"github.com/ecrpush/ecrpush/sandbox/fault"
)

// TestCredentialExpiry pushes through registries slowed so much that the push outlives the STS
// credentials and the ECR registry password several times over, then replicates with the
// credentials it has by then: the run must succeed by refreshing both before they lapse — no
// request may reach a registry with an expired password.
//
// Default: 4 s credentials, 2 s registry passwords, a push of about ten seconds (twelve layers, one
// at a time, each a POST and a PUT through 250 ms of latency). ECRPUSH_LONG=1:
// 60 s credentials, 30 s passwords, a push of over three minutes.
func TestCredentialExpiry(t *testing.T) {
	creds, token, latency, layers := 4*time.Second, 2*time.Second, 250*time.Millisecond, 12
	if long() {
		creds, token, latency, layers = 60*time.Second, 30*time.Second, 2*time.Second, 24
	}
	cfg := fastConfig()
	cfg.CredentialLifetime = sandbox.Dur(creds)
	cfg.ECRTokenTTL = sandbox.Dur(token)
	cfg.Faults.Registries = fault.Config{Latency: fault.D(latency)}
	h := newHarness(t, cfg)

	img, err := random.Image(4096, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	digest := d.String()
	source := "oci-layout:" + layoutOf(t, map[string]v1.Image{"v1": img}) + ":v1"

	start := time.Now()
	r := h.run("slow push", h.github(), "push", "--role-arn", ciRole, "--source", source, "--repository", "team/slow", "--tag", "v1",
		"--jobs", "1", "--replicate-to", sandbox.ProdAccount+":us-east-1", "--configure-replication")
	took := time.Since(start)
	if r.code != 0 {
		t.Fatalf("slow push failed after %s: %s\n%s", took.Round(time.Second), r.errLine, r.stderr)
	}
	if took < 2*creds {
		t.Errorf("the push took %s, not long enough to outlive %s credentials twice", took.Round(time.Millisecond), creds)
	}
	assumes := h.sb.Log.Count(sandbox.EndpointSTS, "AssumeRoleWithWebIdentity")
	tokens := h.sb.Log.Count(sandbox.EndpointECR, "GetAuthorizationToken")
	if assumes < 2 || tokens < 2 {
		t.Errorf("in %s: %d AssumeRoleWithWebIdentity and %d GetAuthorizationToken calls; both must have been refreshed", took, assumes, tokens)
	}
	// Every registry request but the unauthenticated probe (GET /v2/) carried a valid password.
	for _, e := range h.sb.Log.Entries() {
		if strings.HasPrefix(e.Endpoint, "registry/") && e.Status == 401 && e.Path != "/v2/" {
			t.Errorf("%s %s %s was refused (401): an expired password was sent", e.Endpoint, e.Method, e.Path)
		}
	}
	if !strings.Contains(githubOutput(r.output, "replication"), `"COMPLETE"`) {
		t.Errorf("replication output: %s", githubOutput(r.output, "replication"))
	}
	h.noFaults()
	if err := h.verify(context.Background(), sandbox.CIAccount, ciRegion, "team/slow", "v1", digest); err != nil {
		t.Error(err)
	}
	t.Logf("push of %d layers took %s with %s credentials and %s passwords: %d AssumeRoleWithWebIdentity, %d GetAuthorizationToken",
		layers, took.Round(time.Millisecond), creds, token, assumes, tokens)
}

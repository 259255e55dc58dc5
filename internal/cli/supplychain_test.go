package cli_test

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/internal/ocitest"
	"github.com/ecrpush/ecrpush/internal/platform"
	"github.com/ecrpush/ecrpush/internal/supplychain"
	"github.com/ecrpush/ecrpush/sandbox"
	"github.com/ecrpush/ecrpush/sandbox/ecr"
)

var all4 = sandbox.ProdAccount + ":us-east-1," + sandbox.ProdAccount + ":eu-west-1," + sandbox.StagingAccount + ":us-east-1," + sandbox.StagingAccount + ":eu-west-1"

// signedLayout writes the issue's layout: a buildx-style index (two platforms, each with its
// attestation manifest) and two referrers of the index, a signature and an SBOM.
func signedLayout(t *testing.T) (source string, digest v1.Hash) {
	t.Helper()
	idx, _, err := ocitest.BuildxIndex("linux/amd64", "linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := ocitest.Describe(idx)
	dir := filepath.Join(t.TempDir(), "layout")
	if _, err := ocitest.WriteLayout(dir, idx, "v1", []v1.Image{ocitest.Signature(subj), ocitest.SBOM(subj)}, nil); err != nil {
		t.Fatal(err)
	}
	return "oci-layout:" + dir + ":v1", subj.Digest
}

// roleConfig is an AWS configuration for a role the sandbox knows, in region.
func roleConfig(t *testing.T, sb *sandbox.Sandbox, roleARN, region string) aws.Config {
	t.Helper()
	role, ok := sb.World.Role(roleARN)
	if !ok {
		t.Fatalf("no role %s", roleARN)
	}
	s := sb.World.Issue(role, "test", time.Hour, false)
	cfg, err := config.LoadDefaultConfig(t.Context(), config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, s.SessionToken)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSupplyChainTravels: the index (attestation manifests included) and both referrers reach the ci
// registry and all 4 destinations, natively and in copy mode, read back through each registry's
// referrers API with that account's own credentials.
func TestSupplyChainTravels(t *testing.T) {
	sb := start(t, replicationConfig())
	t.Setenv("GITHUB_ACTIONS", "")
	src, digest := signedLayout(t)
	for _, mode := range []struct{ name, repo string }{{"native", "sc/native"}, {"copy", "sc/copy"}} {
		t.Run(mode.name, func(t *testing.T) {
			args := []string{"push", "--role-arn", ciRole, "--identity", "github", "--source", src, "--repository", mode.repo, "--tag", "v1",
				"--replicate-to", all4, "--destination-role-name", "ecrpush-deploy", "--require-referrers", "--output", "json"}
			if mode.name == "native" {
				args = append(args, "--configure-replication")
			} else {
				args = append(args, "--replication", "copy")
			}
			r := run(t, args...)
			if r.code != 0 {
				t.Fatalf("push: %s\n%s", r.errLine, r.stderr)
			}
			var rep platform.Report
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Digest != digest.String() || rep.Report == nil || len(rep.Referrers) != 2 || len(rep.Replication) != 4 {
				t.Fatalf("report: %s", r.stdout)
			}
			for _, row := range rep.Replication {
				if row.Referrers == nil || row.Referrers.Present != 2 {
					t.Errorf("%s %s: referrers %+v", row.Account, row.Region, row.Referrers)
				}
			}
			// Each destination read with its own account's deploy role, through the registry API.
			for _, d := range strings.Split(all4, ",") {
				account, region, _ := strings.Cut(d, ":")
				reg, err := supplychain.ECR(t.Context(), roleConfig(t, sb, "arn:aws:iam::"+account+":role/ecrpush-deploy", region), mode.repo, d)
				if err != nil {
					t.Fatal(err)
				}
				arts, err := reg.Referrers(t.Context(), digest)
				if err != nil || len(arts) != 2 {
					t.Errorf("%s: referrers %+v, %v", d, arts, err)
				}
			}
		})
	}
}

// TestRequireSignature: without a signature at the destinations the run fails in one line (exit 2);
// with the sandbox's managed signing on, it passes.
func TestRequireSignature(t *testing.T) {
	sb := start(t, replicationConfig())
	t.Setenv("GITHUB_ACTIONS", "")
	img, err := ocitest.LabeledImage(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, _ := layout.Write(dir, empty.Index)
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	args := []string{"push", "--role-arn", ciRole, "--identity", "github", "--source", "oci-layout:" + dir + ":v1", "--tag", "v1",
		"--replicate-to", sandbox.ProdAccount + ":us-east-1", "--destination-role-name", "ecrpush-deploy", "--configure-replication", "--require-signature", "--replication-timeout", "20s"}
	r := run(t, append(args, "--repository", "unsigned/app")...)
	if r.code != 2 || !strings.Contains(strings.ToLower(r.errLine), "signature") || strings.Contains(r.errLine, "\n") {
		t.Fatalf("unsigned: exit %d: %s", r.code, r.errLine)
	}
	if err := sb.ECR.SetSigningConfiguration(ecr.RegistryID{Account: sandbox.CIAccount, Region: "us-east-1"}, ecr.SigningConfiguration{Rules: []ecr.SigningRule{{
		SigningProfileArn: "arn:aws:signer:us-east-1:" + sandbox.CIAccount + ":/signing-profiles/ecrpush_test",
	}}}); err != nil {
		t.Fatal(err)
	}
	if r := run(t, append(args, "--repository", "signed/app")...); r.code != 0 {
		t.Fatalf("signed: exit %d: %s\n%s", r.code, r.errLine, r.stderr)
	}
}

// TestFindingsGate: a HIGH finding fails the run after the push (exit 2, the image named as pushed),
// with the findings table in the step summary; a clean image passes.
func TestFindingsGate(t *testing.T) {
	start(t, nil)
	dir := t.TempDir()
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("GITHUB_OUTPUT", filepath.Join(dir, "output"))
	for _, c := range []struct {
		name, findings string
		code           int
	}{{"high", "HIGH=1,LOW=2", 2}, {"clean", "", 0}} {
		t.Run(c.name, func(t *testing.T) {
			summary := filepath.Join(t.TempDir(), "summary")
			t.Setenv("GITHUB_STEP_SUMMARY", summary)
			labels := map[string]string{}
			if c.findings != "" {
				labels["org.ecrpush.sandbox.findings"] = c.findings
			}
			img, err := ocitest.LabeledImage(labels)
			if err != nil {
				t.Fatal(err)
			}
			ldir := filepath.Join(t.TempDir(), "layout")
			p, _ := layout.Write(ldir, empty.Index)
			if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
				t.Fatal(err)
			}
			r := run(t, "push", "--role-arn", ciRole, "--identity", "github", "--source", "oci-layout:"+ldir+":v1",
				"--repository", "gate/"+c.name, "--tag", "v1", "--fail-on-severity", "HIGH")
			if r.code != c.code {
				t.Fatalf("exit %d, want %d: %s\n%s", r.code, c.code, r.errLine, r.stderr)
			}
			s := readFile(t, summary)
			if c.code == 2 {
				if !strings.Contains(r.errLine, "gate/high:v1") || !strings.Contains(r.errLine, "HIGH") {
					t.Errorf("the error does not say the image is pushed and what was found: %s", r.errLine)
				}
				if !strings.Contains(s, "HIGH") || !strings.Contains(s, "|") {
					t.Errorf("no findings table in the step summary:\n%s", s)
				}
			}
		})
	}
}

// TestSyncCarriesReferrers: sync mirrors an upstream image together with its signature and SBOM
// (found through the upstream registry's referrers API), digests unchanged.
func TestSyncCarriesReferrers(t *testing.T) {
	sb := start(t, nil)
	t.Setenv("GITHUB_ACTIONS", "")
	hub := httptest.NewServer(ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(nilLogger())))
	t.Cleanup(hub.Close)
	host := strings.TrimPrefix(hub.URL, "http://")
	img, err := ocitest.LabeledImage(nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/library/tool:1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	subj, _ := ocitest.Describe(img)
	for _, a := range []v1.Image{ocitest.Signature(subj), ocitest.SBOM(subj)} {
		d, _ := a.Digest()
		if err := remote.Write(ref.Context().Digest(d.String()), a); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "images.yaml")
	if err := os.WriteFile(file, []byte("repository: mirror/{path}\nimages:\n  - source: "+host+"/library/tool:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, "sync", "--role-arn", ciRole, "--identity", "github", "--file", file)
	if r.code != 0 {
		t.Fatalf("sync: %s\n%s", r.errLine, r.stderr)
	}
	reg, err := supplychain.ECR(t.Context(), roleConfig(t, sb, ciRole, "us-east-1"), "mirror/library/tool", "ci")
	if err != nil {
		t.Fatal(err)
	}
	arts, err := reg.Referrers(t.Context(), subj.Digest)
	if err != nil || len(arts) != 2 {
		t.Fatalf("referrers in ECR after sync: %+v, %v", arts, err)
	}
}

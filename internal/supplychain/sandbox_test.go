package supplychain_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/ocitest"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/internal/sandboxtest"
	"github.com/ecrpush/ecrpush/internal/supplychain"
	"github.com/ecrpush/ecrpush/sandbox"
	sbecr "github.com/ecrpush/ecrpush/sandbox/ecr"
)

const (
	ciRole     = "arn:aws:iam::111122223333:role/ecrpush-ci"
	repo       = "team/app"
	profileARN = "arn:aws:signer:us-east-1:111122223333:/signing-profiles/release_signer"
)

var ctx = context.Background()

// dest is one replication destination of the tests.
type dest struct{ account, region string }

var all4 = []dest{
	{sandbox.ProdAccount, "us-east-1"}, {sandbox.ProdAccount, "eu-west-1"},
	{sandbox.StagingAccount, "us-east-1"}, {sandbox.StagingAccount, "eu-west-1"},
}

type world struct {
	t    *testing.T
	sb   *sandbox.Sandbox
	sess *federate.Session
}

func start(t *testing.T) *world {
	t.Helper()
	cfg := sandbox.DefaultConfig()
	cfg.ReplicationDelay = sandbox.Dur(30 * time.Millisecond)
	sb := sandboxtest.StartExported(t, cfg)
	sess, err := federate.Federate(ctx, federate.Options{RoleARN: ciRole})
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, sb: sb, sess: sess}
}

// destConfig is the deploy role of d's account, federated the way users do, in d's region.
func (w *world) destConfig(d dest) aws.Config {
	w.t.Helper()
	cfg, err := w.sess.Role(ctx, "arn:aws:iam::"+d.account+":role/ecrpush-deploy")
	if err != nil {
		w.t.Fatal(err)
	}
	cfg.Region = d.region
	return cfg
}

func (w *world) registry(cfg aws.Config, repository, label string) *supplychain.Registry {
	w.t.Helper()
	r, err := supplychain.ECR(ctx, cfg, repository, label)
	if err != nil {
		w.t.Fatal(err)
	}
	// No keep-alive: an idle pooled connection would hold the sandbox's shutdown.
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	r.Transport = tr
	return r
}

func (w *world) dests(repository string, ds []dest) []*supplychain.Registry {
	var out []*supplychain.Registry
	for _, d := range ds {
		out = append(out, w.registry(w.destConfig(d), repository, d.account+"/"+d.region))
	}
	return out
}

// replicate configures native replication of the ci registry to ds for repositories under prefix.
func (w *world) replicate(prefix string, ds []dest) {
	w.t.Helper()
	var rd []ecrtypes.ReplicationDestination
	for _, d := range ds {
		rd = append(rd, ecrtypes.ReplicationDestination{Region: aws.String(d.region), RegistryId: aws.String(d.account)})
	}
	_, err := ecr.NewFromConfig(w.sess.Config).PutReplicationConfiguration(ctx, &ecr.PutReplicationConfigurationInput{
		ReplicationConfiguration: &ecrtypes.ReplicationConfiguration{Rules: []ecrtypes.ReplicationRule{{Destinations: rd,
			RepositoryFilters: []ecrtypes.RepositoryFilter{{Filter: aws.String(prefix), FilterType: ecrtypes.RepositoryFilterTypePrefixMatch}}}}}})
	if err != nil {
		w.t.Fatal(err)
	}
}

// publish pushes a to repository in cfg's registry under tags.
func publish(t *testing.T, cfg aws.Config, repository string, a *push.Artifact, opts ...push.Option) push.Publisher {
	t.Helper()
	p, err := push.NewECR(ctx, cfg, repository, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if a != nil {
		if _, err := p.Publish(ctx, a, []string{"v1"}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// layoutSource writes the layout — a buildx index with attestation manifests, a signature and
// an SBOM whose subject is the index — and loads it as ecrpush does.
func layoutSource(t *testing.T) (push.Source, *push.Artifact, []*push.Referrer) {
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
	src, err := push.ParseSource("oci-layout:" + dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	a, err := src.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := push.Referrers(ctx, src, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 {
		t.Fatalf("layout referrers: %d", len(refs))
	}
	return src, a, refs
}

func kinds(as []supplychain.Artifact) map[supplychain.Kind]int {
	m := map[supplychain.Kind]int{}
	for _, a := range as {
		m[a.Kind]++
	}
	return m
}

func headDigest(t *testing.T, r *supplychain.Registry, d v1.Hash) {
	t.Helper()
	desc, err := remote.Head(r.Repo.Digest(d.String()), remote.WithAuth(r.Auth), remote.WithTransport(r.Transport))
	if err != nil || desc.Digest != d {
		t.Fatalf("%s does not hold %s: %v", r.Name, d, err)
	}
}

// The first "done when": the layout pushed to the ci registry with native replication to four
// destinations ends with the index and both referrers everywhere, read back through the registry's
// referrers API with each account's credentials; copy mode's CopyReferrers does the same.
func TestLayoutReferrersReachEveryDestination(t *testing.T) {
	w := start(t)
	w.replicate("team/", all4)
	_, a, refs := layoutSource(t)
	pub := publish(t, w.sess.Config, repo, a)
	carried, err := supplychain.Push(ctx, pub, refs, supplychain.All())
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(carried); len(carried) != 2 || k[supplychain.Signature] != 1 || k[supplychain.SBOM] != 1 {
		t.Fatalf("carried %+v", carried)
	}

	ci := w.registry(w.sess.Config, repo, "ci")
	want, err := supplychain.Expected(ctx, ci, supplychain.All(), a.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 2 {
		t.Fatalf("ci registry referrers: %+v", want)
	}
	// The attestation manifests went in as the index's children, digests unchanged.
	im, _ := a.Index.IndexManifest()
	for _, d := range im.Manifests {
		headDigest(t, ci, d.Digest)
	}

	dests := w.dests(repo, all4)
	rows, err := supplychain.Verify(ctx, want, dests, []v1.Hash{a.Digest},
		supplychain.VerifyOptions{Require: true, Timeout: 20 * time.Second, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if !r.OK() || r.Present != 2 {
			t.Fatalf("%s: %+v", dests[i].Name, r)
		}
		headDigest(t, dests[i], a.Digest)
	}
	// The same through ListImageReferrers.
	viaAPI := w.dests(repo, all4[:1])[0]
	viaAPI.ViaAPI = true
	if got, err := viaAPI.Referrers(ctx, a.Digest); err != nil || len(got) != 2 {
		t.Fatalf("ListImageReferrers at %s: %+v, %v", viaAPI.Name, got, err)
	}

	// Copy mode: the image copied with the destination's credentials, then CopyReferrers.
	copyRepo := "copied/app"
	target := w.dests(copyRepo, all4[2:3])[0]
	publish(t, w.destConfig(all4[2]), copyRepo, a)
	copied, err := supplychain.CopyReferrers(ctx, ci, target, a.Digest, supplychain.All())
	if err != nil {
		t.Fatal(err)
	}
	if len(copied) != 2 {
		t.Fatalf("copied %+v", copied)
	}
	rows, err = supplychain.Verify(ctx, want, []*supplychain.Registry{target}, []v1.Hash{a.Digest},
		supplychain.VerifyOptions{Require: true, Timeout: time.Second, Interval: 50 * time.Millisecond})
	if err != nil || !rows[0].OK() {
		t.Fatalf("after CopyReferrers: %+v, %v", rows, err)
	}
	// Copying again sends nothing new and still lists both.
	if again, err := supplychain.CopyReferrers(ctx, ci, target, a.Digest, supplychain.All()); err != nil || len(again) != 2 {
		t.Fatalf("second copy: %+v, %v", again, err)
	}
	// A selection copies only what it names.
	sigOnly, _ := supplychain.ParseSelection("signatures")
	onlyRepo := "sigonly/app"
	publish(t, w.destConfig(all4[3]), onlyRepo, a)
	only := w.dests(onlyRepo, all4[3:4])[0]
	if got, err := supplychain.CopyReferrers(ctx, ci, only, a.Digest, sigOnly); err != nil || len(got) != 1 || got[0].Kind != supplychain.Signature {
		t.Fatalf("signatures only: %+v, %v", got, err)
	}
}

// A destination that holds the image but not its referrers is reported, and is exit 2 with
// --require-referrers.
func TestVerifyReportsMissingReferrers(t *testing.T) {
	w := start(t)
	_, a, refs := layoutSource(t)
	pub := publish(t, w.sess.Config, repo, a)
	if _, err := supplychain.Push(ctx, pub, refs, supplychain.All()); err != nil {
		t.Fatal(err)
	}
	ci := w.registry(w.sess.Config, repo, "ci")
	want, err := supplychain.Expected(ctx, ci, supplychain.All(), a.Digest)
	if err != nil {
		t.Fatal(err)
	}
	bare := all4[0]
	publish(t, w.destConfig(bare), repo, a) // the image only
	dests := w.dests(repo, []dest{bare})
	o := supplychain.VerifyOptions{Timeout: 200 * time.Millisecond, Interval: 50 * time.Millisecond}
	rows, err := supplychain.Verify(ctx, want, dests, []v1.Hash{a.Digest}, o)
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].Present != 0 || len(rows[0].Missing) != 2 {
		t.Fatalf("row %+v", rows[0])
	}
	warn := supplychain.Warnings(rows, dests)
	if len(warn) != 1 || !strings.Contains(warn[0], bare.account+"/"+bare.region) || !strings.Contains(warn[0], "lacks 2 of 2") {
		t.Fatalf("warnings %q", warn)
	}
	o.Require = true
	_, err = supplychain.Verify(ctx, want, dests, []v1.Hash{a.Digest}, o)
	if !fixable.Is(err) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "signature sha256:") {
		t.Fatalf("--require-referrers: %v", err)
	}
}

// --require-signature fails in one line when the signature is missing, and passes with the sandbox's
// managed signing on, at the ci registry and at a destination it replicates to.
func TestRequireSignature(t *testing.T) {
	w := start(t)
	w.replicate("team/", all4[:1])
	o := supplychain.SignatureOptions{Timeout: 300 * time.Millisecond, Interval: 50 * time.Millisecond, Pushed: "team/app:v1"}
	unsigned, err := ocitest.LabeledImage(nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := push.ImageArtifact("unsigned", unsigned)
	publish(t, w.sess.Config, repo, a)
	ci := w.registry(w.sess.Config, repo, "ci")
	_, err = supplychain.RequireSignature(ctx, ci, nil, a.Digest, o)
	if !fixable.Is(err) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "no signature") || !strings.Contains(err.Error(), "team/app:v1") {
		t.Fatalf("unsigned: %v", err)
	}

	// Managed signing on: the push is signed and the signature replicates.
	ciEast := sandbox.RegistryID{Account: sandbox.CIAccount, Region: "us-east-1"}
	if err := w.sb.ECR.SetSigningConfiguration(ciEast, sbecr.SigningConfiguration{Rules: []sbecr.SigningRule{{SigningProfileArn: profileARN}}}); err != nil {
		t.Fatal(err)
	}
	w.sb.ECR.SetSupplyChainDelays(100*time.Millisecond, 0)
	signed, _ := ocitest.LabeledImage(map[string]string{"v": "2"})
	b, _ := push.ImageArtifact("signed", signed)
	publish(t, w.sess.Config, repo, b)
	o.Timeout = 20 * time.Second
	checks, err := supplychain.RequireSignature(ctx, ci, w.dests(repo, all4[:1]), b.Digest, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 2 || len(checks[0].Managed) != 1 || checks[0].Managed[0].Status != "COMPLETE" || checks[0].Managed[0].Profile != profileARN ||
		len(checks[0].Signatures) != 1 || checks[0].Signatures[0].ArtifactType != supplychain.TypeNotarySignature || len(checks[1].Signatures) != 1 {
		t.Fatalf("checks %+v", checks)
	}

	// A failing profile: FAILED with the profile and the reason, in one line.
	w.sb.ECR.FailSigning(profileARN, "AccessDenied", "the pushing role may not call signer:SignPayload")
	failed, _ := ocitest.LabeledImage(map[string]string{"v": "3"})
	c, _ := push.ImageArtifact("failed", failed)
	publish(t, w.sess.Config, repo, c)
	_, err = supplychain.RequireSignature(ctx, ci, nil, c.Digest, o)
	if !fixable.Is(err) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), profileARN) || !strings.Contains(err.Error(), "signer:SignPayload") {
		t.Fatalf("failed signing: %v", err)
	}

	// A destination without the signature (the image copied there, not replicated).
	w.sb.ECR.FailSigning(profileARN, "", "")
	d, _ := ocitest.LabeledImage(map[string]string{"v": "4"})
	dd, _ := push.ImageArtifact("d", d)
	publish(t, w.sess.Config, repo, dd)
	lone := all4[2] // staging us-east-1: not a replication destination
	publish(t, w.destConfig(lone), repo, dd)
	o.Timeout = 300 * time.Millisecond
	_, err = supplychain.RequireSignature(ctx, ci, w.dests(repo, []dest{lone}), dd.Digest, o)
	if !fixable.Is(err) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), lone.account+"/"+lone.region+" has no signature") {
		t.Fatalf("destination without signature: %v", err)
	}
}

// The findings gate: a HIGH finding is an exit-2 error after the summary is reported, saying the
// image is pushed and under which tags; a clean image passes; enhanced findings carry the fix version.
func TestFindingsGate(t *testing.T) {
	w := start(t)
	w.sb.ECR.SetSupplyChainDelays(0, 150*time.Millisecond)
	o := supplychain.FindingsOptions{Threshold: "HIGH", Timeout: 10 * time.Second, Interval: 50 * time.Millisecond, NotFoundGrace: 200 * time.Millisecond}
	ci := w.registry(w.sess.Config, repo, "ci")

	vuln, _ := ocitest.LabeledImage(map[string]string{sbecr.FindingsLabel: "HIGH=1,LOW=2"})
	a, _ := push.ImageArtifact("vuln", vuln)
	publish(t, w.sess.Config, repo, a, push.WithScanOnPush(true))
	targets, _ := supplychain.Targets(a)
	f, err := supplychain.Scan(ctx, ci, a.Digest, targets, o)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Failed || f.Counts["HIGH"] != 1 || f.Counts["LOW"] != 2 || f.ScanType != "BASIC" || len(f.Top) != 3 || f.Top[0].Severity != "HIGH" || f.Top[0].Package == "" {
		t.Fatalf("findings %+v", f)
	}
	md := f.Markdown()
	if !strings.Contains(md, "| CRITICAL | HIGH | MEDIUM | LOW | INFORMATIONAL | UNDEFINED |") || !strings.Contains(md, "| 0 | 1 | 0 | 2 | 0 | 0 |") || !strings.Contains(md, f.Top[0].ID) {
		t.Fatalf("markdown:\n%s", md)
	}
	var text strings.Builder
	_ = f.WriteText(&text)
	if !strings.Contains(text.String(), "1 HIGH, 2 LOW") || !strings.Contains(text.String(), "FAILED at HIGH") {
		t.Fatalf("text:\n%s", text.String())
	}
	gate := f.Gate(ci.Repo.String() + ":v1")
	if !fixable.Is(gate) || strings.Contains(gate.Error(), "\n") || !strings.Contains(gate.Error(), "the image is pushed ("+ci.Repo.String()+":v1") || !strings.Contains(gate.Error(), "1 HIGH") {
		t.Fatalf("gate: %v", gate)
	}
	if low, _ := supplychain.Scan(ctx, ci, a.Digest, targets, supplychain.FindingsOptions{Threshold: "CRITICAL", Interval: 50 * time.Millisecond}); low == nil || low.Gate("x") != nil {
		t.Fatalf("CRITICAL threshold on HIGH findings: %+v", low)
	}

	clean, _ := ocitest.LabeledImage(nil)
	b, _ := push.ImageArtifact("clean", clean)
	publish(t, w.sess.Config, repo, b)
	targets, _ = supplychain.Targets(b)
	f, err = supplychain.Scan(ctx, ci, b.Digest, targets, o)
	if err != nil || f.Failed || f.Total != 0 || f.Gate("x") != nil {
		t.Fatalf("clean image: %+v, %v", f, err)
	}

	// An index: its images are scanned, its attestation manifests are not.
	idx, _, _ := ocitest.BuildxIndex("linux/amd64", "linux/arm64")
	ia, _ := push.IndexArtifact("index", idx)
	publish(t, w.sess.Config, repo, ia)
	targets, _ = supplychain.Targets(ia)
	if len(targets) != 2 {
		t.Fatalf("index targets %+v", targets)
	}
	if f, err = supplychain.Scan(ctx, ci, ia.Digest, targets, o); err != nil || f.Failed {
		t.Fatalf("index: %+v, %v", f, err)
	}

	// Enhanced scanning: the fix version is there.
	ciEast := sandbox.RegistryID{Account: sandbox.CIAccount, Region: "us-east-1"}
	if err := w.sb.ECR.SetRegistryScanning(ciEast, sbecr.RegistryScanningConfiguration{ScanType: "ENHANCED",
		Rules: []sbecr.RegistryScanningRule{{ScanFrequency: "SCAN_ON_PUSH", RepositoryFilters: []sbecr.ScanningRepositoryFilter{{Filter: "*", FilterType: "WILDCARD"}}}}}); err != nil {
		t.Fatal(err)
	}
	crit, _ := ocitest.LabeledImage(map[string]string{sbecr.FindingsLabel: "CRITICAL=1"})
	c, _ := push.ImageArtifact("crit", crit)
	publish(t, w.sess.Config, "enhanced/app", c)
	targets, _ = supplychain.Targets(c)
	f, err = supplychain.Scan(ctx, w.registry(w.sess.Config, "enhanced/app", "ci"), c.Digest, targets, o)
	if err != nil || !f.Failed || f.ScanType != "ENHANCED" || f.Top[0].FixedIn == "" || !strings.Contains(f.Gate("x").Error(), "→ "+f.Top[0].FixedIn) {
		t.Fatalf("enhanced: %+v, %v", f, err)
	}

	// No scan on push: a fixable error once the grace is over.
	if err := w.sb.ECR.SetRegistryScanning(ciEast, sbecr.RegistryScanningConfiguration{ScanType: "BASIC"}); err != nil {
		t.Fatal(err)
	}
	n, _ := ocitest.LabeledImage(map[string]string{"v": "n"})
	na, _ := push.ImageArtifact("noscan", n)
	publish(t, w.sess.Config, "noscan/app", na, push.WithScanOnPush(false))
	targets, _ = supplychain.Targets(na)
	_, err = supplychain.Scan(ctx, w.registry(w.sess.Config, "noscan/app", "ci"), na.Digest, targets, o)
	if !fixable.Is(err) || !strings.Contains(err.Error(), "no scan") {
		t.Fatalf("no scan: %v", err)
	}
}

// sync's path: a registry source's referrers (found through its referrers API) pushed after the image
// to ECR, as push.Referrers + Push do for any source.
func TestRegistrySourceReferrersToECR(t *testing.T) {
	w := start(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, _ := ocitest.LabeledImage(nil)
	subj, _ := ocitest.Describe(img)
	upstream := host + "/library/app"
	for ref, x := range map[string]v1.Image{":1.0": img, "@" + digestOf(t, ocitest.SBOM(subj)): ocitest.SBOM(subj), "@" + digestOf(t, ocitest.Signature(subj)): ocitest.Signature(subj)} {
		r, err := name.ParseReference(upstream + ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, x); err != nil {
			t.Fatal(err)
		}
	}
	src, err := push.ParseSource(upstream + ":1.0")
	if err != nil {
		t.Fatal(err)
	}
	a, err := src.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := push.Referrers(ctx, src, a)
	if err != nil {
		t.Fatal(err)
	}
	pub := publish(t, w.sess.Config, "mirror/app", a)
	sboms, _ := supplychain.ParseSelection("sboms")
	carried, err := supplychain.Push(ctx, pub, refs, sboms)
	if err != nil || len(carried) != 1 || carried[0].Kind != supplychain.SBOM {
		t.Fatalf("carried %+v, %v", carried, err)
	}
	got, err := w.registry(w.sess.Config, "mirror/app", "ci").Referrers(ctx, a.Digest)
	if err != nil || len(got) != 1 || got[0].ArtifactType != ocitest.SPDX {
		t.Fatalf("in ECR: %+v, %v", got, err)
	}
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

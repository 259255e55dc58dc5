package ecr

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/internal/ocitest"
)

const profileARN = "arn:aws:signer:us-east-1:111122223333:/signing-profiles/ci_release"

// pushWithReferrers pushes an image to repo:v1 in ciEast, then a signature and an SBOM with it as subject.
func pushWithReferrers(t *testing.T, e *env, pass, repo string) (v1.Hash, v1.Hash, v1.Hash) {
	t.Helper()
	img, _ := random.Image(512, 1)
	if err := remote.Write(e.ref(ciEast, repo+":v1"), img, basic(pass)); err != nil {
		t.Fatal(err)
	}
	subj, err := ocitest.Describe(img)
	if err != nil {
		t.Fatal(err)
	}
	sig, sbom := ocitest.Signature(subj), ocitest.SBOM(subj)
	for _, a := range []v1.Image{sig, sbom} {
		d, _ := a.Digest()
		if err := remote.Write(e.ref(ciEast, repo+"@"+d.String()), a, basic(pass)); err != nil {
			t.Fatalf("push referrer: %v", err)
		}
	}
	sd, _ := sig.Digest()
	bd, _ := sbom.Digest()
	return subj.Digest, sd, bd
}

func referrersIndex(t *testing.T, e *env, id RegistryID, pass, repo string, subject v1.Hash, query string) (v1.IndexManifest, http.Header) {
	t.Helper()
	resp := e.rawRequest(id, http.MethodGet, "/v2/"+repo+"/referrers/"+subject.String()+query, pass, "", nil)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("referrers: %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != mtOCIIndex {
		t.Fatalf("Content-Type %q", ct)
	}
	var im v1.IndexManifest
	if err := json.NewDecoder(resp.Body).Decode(&im); err != nil {
		t.Fatal(err)
	}
	return im, resp.Header
}

func TestReferrersAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ci := e.session(ciAccount, "pusher")
	pass := e.password(ci, "us-east-1")
	e.createRepo(ci, "us-east-1", "team/app", false)
	subject, sig, sbom := pushWithReferrers(t, e, pass, "team/app")

	im, h := referrersIndex(t, e, ciEast, pass, "team/app", subject, "")
	if len(im.Manifests) != 2 || h.Get("OCI-Filters-Applied") != "" {
		t.Fatalf("referrers: %+v (filters %q)", im.Manifests, h.Get("OCI-Filters-Applied"))
	}
	ats := map[v1.Hash]string{}
	for _, d := range im.Manifests {
		ats[d.Digest] = d.ArtifactType
	}
	if ats[sig] != ocitest.NotarySignature || ats[sbom] != ocitest.SPDX {
		t.Fatalf("artifact types: %v", ats)
	}
	im, h = referrersIndex(t, e, ciEast, pass, "team/app", subject, "?artifactType="+url.QueryEscape(ocitest.SPDX))
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != sbom || h.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered: %+v (filters %q)", im.Manifests, h.Get("OCI-Filters-Applied"))
	}
	// The spec's rule: a subject nobody refers to (or that does not exist) lists nothing, 200.
	if im, _ = referrersIndex(t, e, ciEast, pass, "team/app", sig, ""); len(im.Manifests) != 0 {
		t.Fatalf("referrers of the signature: %+v", im.Manifests)
	}
	// ggcr's client reads the same endpoint.
	ggcr, err := remote.Referrers(e.ref(ciEast, "team/app@"+subject.String()).Context().Digest(subject.String()), basic(pass))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := ggcr.IndexManifest(); len(m.Manifests) != 2 {
		t.Fatalf("ggcr referrers: %+v", m.Manifests)
	}

	// The registry answers OCI-Subject to a manifest PUT with a subject.
	ref := e.ref(ciEast, "team/app:x").Context()
	second := ocitest.SBOM(v1.Descriptor{MediaType: mtOCIManifest, Digest: sig, Size: 10})
	ls, _ := second.Layers()
	cl, _ := partial.ConfigLayer(second)
	for _, l := range append(ls, cl) {
		if err := remote.WriteLayer(ref, l, basic(pass)); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := second.RawManifest()
	resp := e.rawRequest(ciEast, http.MethodPut, "/v2/team/app/manifests/x", pass, string(raw), map[string]string{"Content-Type": mtOCIManifest})
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("OCI-Subject") != sig.String() {
		t.Fatalf("PUT referrer: %d, OCI-Subject %q", resp.StatusCode, resp.Header.Get("OCI-Subject"))
	}

	c := e.client(ci, "us-east-1")
	all := listReferrers(t, c, "team/app", subject, nil, nil)
	if len(all) != 2 {
		t.Fatalf("ListImageReferrers: %v", all)
	}
	for _, r := range all {
		if r.ArtifactStatus != types.ArtifactStatusActive || aws.ToInt64(r.Size) == 0 || aws.ToString(r.MediaType) != mtOCIManifest {
			t.Fatalf("referrer %+v", r)
		}
	}
	if got := listReferrers(t, c, "team/app", subject, []string{ocitest.NotarySignature}, nil); len(got) != 1 || aws.ToString(got[0].Digest) != sig.String() {
		t.Fatalf("filtered ListImageReferrers: %v", got)
	}
	if got := listReferrers(t, c, "team/app", subject, nil, aws.Int32(1)); len(got) != 2 {
		t.Fatalf("paginated ListImageReferrers: %v", got)
	}
	_, err = c.ListImageReferrers(ctx, &awsecr.ListImageReferrersInput{RepositoryName: aws.String("team/none"),
		SubjectId: &types.SubjectIdentifier{ImageDigest: aws.String(subject.String())}})
	if apiCode(err) != excRepositoryNotFound {
		t.Fatalf("missing repository: %v", err)
	}
}

func listReferrers(t *testing.T, c *awsecr.Client, repo string, subject v1.Hash, artifactTypes []string, page *int32) []types.ImageReferrer {
	t.Helper()
	in := &awsecr.ListImageReferrersInput{RepositoryName: aws.String(repo),
		SubjectId: &types.SubjectIdentifier{ImageDigest: aws.String(subject.String())}, MaxResults: page}
	if artifactTypes != nil {
		in.Filter = &types.ListImageReferrersFilter{ArtifactTypes: artifactTypes}
	}
	var out []types.ImageReferrer
	for range 100 {
		res, err := c.ListImageReferrers(ctx, in)
		if err != nil {
			t.Fatalf("ListImageReferrers: %v", err)
		}
		out = append(out, res.Referrers...)
		if res.NextToken == nil {
			return out
		}
		in.NextToken = res.NextToken
	}
	t.Fatal("ListImageReferrers never ended")
	return nil
}

func TestReferrersReplicate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 20 * time.Millisecond})
	ci := e.session(ciAccount, "pusher")
	prod := e.session(prodAccount, "pusher")
	if _, err := e.client(prod, "us-east-1").PutRegistryPolicy(ctx, &awsecr.PutRegistryPolicyInput{PolicyText: aws.String(replicatePolicy)}); err != nil {
		t.Fatal(err)
	}
	c := e.client(ci, "us-east-1")
	if _, err := c.PutReplicationConfiguration(ctx, &awsecr.PutReplicationConfigurationInput{ReplicationConfiguration: &types.ReplicationConfiguration{
		Rules: []types.ReplicationRule{{Destinations: []types.ReplicationDestination{{Region: aws.String("us-east-1"), RegistryId: aws.String(prodAccount)}}}}}}); err != nil {
		t.Fatal(err)
	}
	pass := e.password(ci, "us-east-1")
	e.createRepo(ci, "us-east-1", "team/app", false)
	subject, sig, sbom := pushWithReferrers(t, e, pass, "team/app")
	prodPass := e.password(prod, "us-east-1")
	var got v1.IndexManifest
	ok := eventually(t, 5*time.Second, func() bool {
		resp := e.rawRequest(prodEast, http.MethodGet, "/v2/team/app/referrers/"+subject.String(), prodPass, "", nil)
		if resp.StatusCode != http.StatusOK {
			return false
		}
		_ = json.NewDecoder(resp.Body).Decode(&got)
		return len(got.Manifests) == 2
	})
	if !ok {
		t.Fatalf("referrers at the destination: %+v", got.Manifests)
	}
	for _, d := range []v1.Hash{subject, sig, sbom} {
		if _, err := remote.Head(e.ref(prodEast, "team/app@"+d.String()), basic(prodPass)); err != nil {
			t.Fatalf("%s not replicated: %v", d, err)
		}
	}
}

func signingStatus(t *testing.T, c *awsecr.Client, repo string, d v1.Hash) []types.ImageSigningStatus {
	t.Helper()
	out, err := c.DescribeImageSigningStatus(ctx, &awsecr.DescribeImageSigningStatusInput{RepositoryName: aws.String(repo),
		ImageId: &types.ImageIdentifier{ImageDigest: aws.String(d.String())}})
	if err != nil {
		t.Fatalf("DescribeImageSigningStatus: %v", err)
	}
	return out.SigningStatuses
}

func TestManagedSigning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 20 * time.Millisecond})
	ci := e.session(ciAccount, "pusher")
	c := e.client(ci, "us-east-1")
	if _, err := c.GetSigningConfiguration(ctx, &awsecr.GetSigningConfigurationInput{}); apiCode(err) != excSigningConfigNotFound {
		t.Fatalf("no configuration yet: %v", err)
	}
	_, err := c.PutSigningConfiguration(ctx, &awsecr.PutSigningConfigurationInput{SigningConfiguration: &types.SigningConfiguration{
		Rules: []types.SigningRule{{SigningProfileArn: aws.String(profileARN),
			RepositoryFilters: []types.SigningRepositoryFilter{{Filter: aws.String("team/*"), FilterType: types.SigningRepositoryFilterTypeWildcardMatch}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PutSigningConfiguration(ctx, &awsecr.PutSigningConfigurationInput{SigningConfiguration: &types.SigningConfiguration{
		Rules: []types.SigningRule{{SigningProfileArn: aws.String("arn:aws:signer:us-east-1:111122223333:/signing-profiles/x")}}}})
	if apiCode(err) != excInvalidParameter {
		t.Fatalf("a one-letter profile name: %v", err)
	}
	got, err := c.GetSigningConfiguration(ctx, &awsecr.GetSigningConfigurationInput{})
	if err != nil || len(got.SigningConfiguration.Rules) != 1 || aws.ToString(got.RegistryId) != ciAccount {
		t.Fatalf("GetSigningConfiguration: %+v, %v", got, err)
	}

	pass := e.password(ci, "us-east-1")
	e.createRepo(ci, "us-east-1", "team/app", false)
	e.createRepo(ci, "us-east-1", "other/app", false)
	img, _ := random.Image(512, 1)
	if err := remote.Write(e.ref(ciEast, "team/app:v1"), img, basic(pass)); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	st := signingStatus(t, c, "team/app", d)
	if len(st) != 1 || st[0].Status != types.SigningStatusComplete || aws.ToString(st[0].SigningProfileArn) != profileARN {
		t.Fatalf("signing status: %+v", st)
	}
	im, _ := referrersIndex(t, e, ciEast, pass, "team/app", d, "?artifactType="+url.QueryEscape(ArtifactTypeNotarySignature))
	if len(im.Manifests) != 1 {
		t.Fatalf("signature referrers: %+v", im.Manifests)
	}
	// The signature is not signed again, and a repository no rule matches is not signed.
	if im2, _ := referrersIndex(t, e, ciEast, pass, "team/app", im.Manifests[0].Digest, ""); len(im2.Manifests) != 0 {
		t.Fatalf("the signature was signed: %+v", im2.Manifests)
	}
	if err := remote.Write(e.ref(ciEast, "other/app:v1"), img, basic(pass)); err != nil {
		t.Fatal(err)
	}
	if st := signingStatus(t, c, "other/app", d); len(st) != 0 {
		t.Fatalf("unmatched repository: %+v", st)
	}

	// A failing profile: FAILED with the code and reason, and no signature.
	e.svc.FailSigning(profileARN, "SigningProfileRevoked", "The signing profile was revoked.")
	img2, _ := random.Image(512, 1)
	if err := remote.Write(e.ref(ciEast, "team/app:v2"), img2, basic(pass)); err != nil {
		t.Fatal(err)
	}
	d2, _ := img2.Digest()
	st = signingStatus(t, c, "team/app", d2)
	if len(st) != 1 || st[0].Status != types.SigningStatusFailed || aws.ToString(st[0].FailureCode) != "SigningProfileRevoked" || aws.ToString(st[0].FailureReason) == "" {
		t.Fatalf("failed signing: %+v", st)
	}
	if im, _ := referrersIndex(t, e, ciEast, pass, "team/app", d2, ""); len(im.Manifests) != 0 {
		t.Fatalf("a failed signing left a signature: %+v", im.Manifests)
	}

	// With a signing delay the status is IN_PROGRESS first.
	e.svc.FailSigning(profileARN, "", "")
	e.svc.SetSupplyChainDelays(50*time.Millisecond, 0)
	img3, _ := random.Image(512, 1)
	if err := remote.Write(e.ref(ciEast, "team/app:v3"), img3, basic(pass)); err != nil {
		t.Fatal(err)
	}
	d3, _ := img3.Digest()
	if st := signingStatus(t, c, "team/app", d3); len(st) != 1 || st[0].Status != types.SigningStatusInProgress {
		t.Fatalf("right after push: %+v", st)
	}
	if !eventually(t, 5*time.Second, func() bool { return signingStatus(t, c, "team/app", d3)[0].Status == types.SigningStatusComplete }) {
		t.Fatal("signing never completed")
	}
	if _, err := c.DeleteSigningConfiguration(ctx, &awsecr.DeleteSigningConfigurationInput{}); err != nil {
		t.Fatal(err)
	}
}

func scanFindings(t *testing.T, c *awsecr.Client, repo string, d v1.Hash) (*awsecr.DescribeImageScanFindingsOutput, error) {
	t.Helper()
	return c.DescribeImageScanFindings(ctx, &awsecr.DescribeImageScanFindingsInput{RepositoryName: aws.String(repo),
		ImageId: &types.ImageIdentifier{ImageDigest: aws.String(d.String())}})
}

func TestScanFindings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ci := e.session(ciAccount, "pusher")
	c := e.client(ci, "us-east-1")
	pass := e.password(ci, "us-east-1")
	if _, err := c.CreateRepository(ctx, &awsecr.CreateRepositoryInput{RepositoryName: aws.String("team/app"),
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true}}); err != nil {
		t.Fatal(err)
	}
	e.createRepo(ci, "us-east-1", "noscan", false)
	vuln, _ := ocitest.LabeledImage(map[string]string{FindingsLabel: "HIGH=1,LOW=2"})
	clean, _ := ocitest.LabeledImage(nil)
	for tag, img := range map[string]v1.Image{"vuln": vuln, "clean": clean} {
		if err := remote.Write(e.ref(ciEast, "team/app:"+tag), img, basic(pass)); err != nil {
			t.Fatal(err)
		}
	}
	if err := remote.Write(e.ref(ciEast, "noscan:v1"), clean, basic(pass)); err != nil {
		t.Fatal(err)
	}
	vd, _ := vuln.Digest()
	cd, _ := clean.Digest()
	out, err := scanFindings(t, c, "team/app", vd)
	if err != nil {
		t.Fatal(err)
	}
	f := out.ImageScanFindings
	if out.ImageScanStatus.Status != types.ScanStatusComplete || f.FindingSeverityCounts["HIGH"] != 1 || f.FindingSeverityCounts["LOW"] != 2 || len(f.Findings) != 3 {
		t.Fatalf("basic findings: %+v %+v", out.ImageScanStatus, f)
	}
	first := f.Findings[0]
	attrs := map[string]string{}
	for _, a := range first.Attributes {
		attrs[aws.ToString(a.Key)] = aws.ToString(a.Value)
	}
	if first.Severity != types.FindingSeverityHigh || attrs["package_name"] == "" || attrs["package_version"] == "" || f.ImageScanCompletedAt == nil {
		t.Fatalf("basic finding: %+v %v", first, attrs)
	}
	again, _ := scanFindings(t, c, "team/app", vd)
	if aws.ToString(again.ImageScanFindings.Findings[0].Name) != aws.ToString(first.Name) {
		t.Fatal("findings are not deterministic")
	}
	if out, err := scanFindings(t, c, "team/app", cd); err != nil || len(out.ImageScanFindings.Findings) != 0 || out.ImageScanStatus.Status != types.ScanStatusComplete {
		t.Fatalf("clean image: %+v %v", out, err)
	}
	var snf *types.ScanNotFoundException
	if _, err := scanFindings(t, c, "noscan", cd); !errors.As(err, &snf) {
		t.Fatalf("no scan on push: %v", err)
	}

	// Enhanced: registry rules decide, findings carry the fix version; PENDING until the delay passes.
	if _, err := c.PutRegistryScanningConfiguration(ctx, &awsecr.PutRegistryScanningConfigurationInput{ScanType: types.ScanTypeEnhanced,
		Rules: []types.RegistryScanningRule{{ScanFrequency: types.ScanFrequencyContinuousScan,
			RepositoryFilters: []types.ScanningRepositoryFilter{{Filter: aws.String("*"), FilterType: types.ScanningRepositoryFilterTypeWildcard}}}}}); err != nil {
		t.Fatal(err)
	}
	e.svc.SetSupplyChainDelays(0, time.Minute)
	crit, _ := ocitest.LabeledImage(map[string]string{FindingsLabel: "CRITICAL=1"})
	if err := remote.Write(e.ref(ciEast, "noscan:crit"), crit, basic(pass)); err != nil {
		t.Fatal(err)
	}
	crd, _ := crit.Digest()
	if out, err := scanFindings(t, c, "noscan", crd); err != nil || out.ImageScanStatus.Status != types.ScanStatusPending {
		t.Fatalf("pending enhanced scan: %+v %v", out, err)
	}
	e.clock.advance(2 * time.Minute)
	out, err = scanFindings(t, c, "noscan", crd)
	if err != nil {
		t.Fatal(err)
	}
	ef := out.ImageScanFindings.EnhancedFindings
	if out.ImageScanStatus.Status != types.ScanStatusActive || len(ef) != 1 || aws.ToString(ef[0].Severity) != "CRITICAL" ||
		aws.ToString(ef[0].PackageVulnerabilityDetails.VulnerablePackages[0].FixedInVersion) == "" || out.ImageScanFindings.FindingSeverityCounts["CRITICAL"] != 1 {
		t.Fatalf("enhanced findings: %+v %+v", out.ImageScanStatus, out.ImageScanFindings)
	}
}

package replicate_test

// The done-when checks of "replication on today's ECR", against the sandbox: backfill for an image that
// predates its rule, creation templates for destination settings, an immutable destination that keeps
// its tag, many repositories in one rule, and waits that report API failures as such.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/internal/testenv"
	"github.com/ecrpush/ecrpush/sandbox"
	"github.com/ecrpush/ecrpush/sandbox/fault"
)

// destinations parses the four sandbox destinations, with the deploy role name or without ("").
func destinations(t *testing.T, roleName string) []replicate.Destination {
	t.Helper()
	ds, err := replicate.ParseDestinations([]string{prod + ":us-east-1," + prod + ":eu-west-1," + staging + ":us-east-1," + staging + ":eu-west-1"}, ci, "us-east-1", roleName)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// configure is what push --configure-replication does: plan, then apply.
func configure(t *testing.T, ctx context.Context, c replicate.ECRAPI, prefix string, dests []replicate.Destination, o replicate.ConfigureOptions) *replicate.ConfigurePlan {
	t.Helper()
	o.Settle = 50 * time.Millisecond
	p, err := replicate.PlanConfigure(ctx, c, prefix, dests, o)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if err := p.Apply(ctx); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return p
}

func registryWrites(sb *sandbox.Sandbox) []sandbox.Request {
	var out []sandbox.Request
	for _, w := range sb.Log.Writes() {
		if strings.HasPrefix(w.Endpoint, "registry/") {
			out = append(out, w)
		}
	}
	return out
}

// An image pushed before any rule, then pushed again with --configure-replication to 4 destinations
// (no copy roles): 4 × COMPLETE through backfill, and every destination holds the digest.
func TestImagePushedBeforeTheRuleIsBackfilled(t *testing.T) {
	sb := start(t, fastConfig())
	s := federated(t)
	ctx := context.Background()
	a := randomArtifact(t, 4096, 2)
	pushTo(t, s.Config, a, "v1") // before any rule
	dests := destinations(t, "")
	configure(t, ctx, ciClient(s), repo, dests, replicate.ConfigureOptions{Session: s, Repository: repo})
	res := pushTo(t, s.Config, a, "v1") // writes nothing: no replication event
	if len(res.TagsUnchanged) != 1 || res.BytesUploaded != 0 {
		t.Fatalf("second push wrote: %+v", res)
	}
	sb.Log.Reset()
	sts, err := replicate.Run(ctx, replicate.Options{Mode: replicate.ModeNative, Session: s, Repository: repo, Digest: a.Digest.String(),
		Tags: []string{"v1"}, Existed: true, Destinations: dests, Timeout: time.Minute, WaitOptions: fast})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, st := range sts {
		if st.Status != replicate.StatusComplete || st.Backfill == "" || st.Verified != replicate.VerifiedStatus {
			t.Errorf("status %+v, want COMPLETE through a backfill, verified by status (no roles)", st)
		}
	}
	started := 0
	for _, e := range sb.Log.Entries() {
		if e.Op == "StartReplicationBackfill" && e.Status == 200 {
			started++
		}
	}
	// Two destinations share each region and ECR runs one backfill per destination Region at a time:
	// the second start in a region is refused until the first ends, then retried.
	if started != 4 {
		t.Errorf("%d backfills started, want one per destination", started)
	}
	if w := registryWrites(sb); len(w) != 0 {
		t.Errorf("ecrpush wrote to registries itself (a copy), not ECR: %+v", w)
	}
	for _, d := range dests {
		if got, err := headDigest(t, destConfig(t, s, d), a.Digest.String()); err != nil || got != a.Digest {
			t.Errorf("%s does not hold the digest: %s %v", d, got, err)
		}
		if got, err := headDigest(t, destConfig(t, s, d), "v1"); err != nil || got != a.Digest {
			t.Errorf("%s: v1 is %s (%v)", d, got, err)
		}
	}
	var b bytes.Buffer
	if err := replicate.WriteTable(&b, sts); err != nil || !strings.Contains(b.String(), "backfill ") {
		t.Errorf("table does not name the backfill:\n%s", b.String())
	}
}

// --tag-immutability --kms-key ARN --configure-replication in native mode: a creation template in every
// destination, and IMMUTABLE, KMS repositories there once replication creates them.
func TestSettingsReachNativeDestinationsThroughCreationTemplates(t *testing.T) {
	sb := start(t, fastConfig())
	s := federated(t)
	ctx := context.Background()
	dests := destinations(t, "ecrpush-deploy")
	key := "arn:aws:kms:us-east-1:" + ci + ":key/1234abcd-12ab-34cd-56ef-1234567890ab"
	settings := replicate.DefaultSettings()
	settings.TagImmutability, settings.KMSKey = true, key
	o := replicate.ConfigureOptions{Session: s, Settings: &settings, Repository: repo, Settle: 50 * time.Millisecond}

	p, err := replicate.PlanConfigure(ctx, ciClient(s), repo, dests, o)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if w := sb.Log.Writes(); len(w) != 0 {
		t.Fatalf("the plan wrote: %+v", w)
	}
	var text bytes.Buffer
	p.WriteText(&text, false)
	for _, want := range []string{`Repository creation template "team" in ` + prod + ":us-east-1", "would be created", `+  "imageTagMutability": "IMMUTABLE"`,
		`"encryptionType": "KMS"`, "AWS managed key aws/ecr", "adds rule 1"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, text.String())
		}
	}
	t.Logf("plan:\n%s", text.String())
	if len(p.Templates) != 4 {
		t.Fatalf("%d templates planned", len(p.Templates))
	}
	if err := p.Apply(ctx); err != nil {
		t.Fatalf("apply: %v", err)
	}
	// Read back with the SDK, and with the aws CLI where it is installed.
	for _, d := range dests {
		dc := destConfig(t, s, d)
		out, err := ecr.NewFromConfig(dc).DescribeRepositoryCreationTemplates(ctx, &ecr.DescribeRepositoryCreationTemplatesInput{Prefixes: []string{"team"}})
		if err != nil || len(out.RepositoryCreationTemplates) != 1 {
			t.Fatalf("%s: templates %+v %v", d, out, err)
		}
		tpl := out.RepositoryCreationTemplates[0]
		if tpl.ImageTagMutability != types.ImageTagMutabilityImmutable || tpl.EncryptionConfiguration.EncryptionType != types.EncryptionTypeKms ||
			len(tpl.AppliedFor) != 1 || tpl.AppliedFor[0] != types.RCTAppliedForReplication {
			t.Errorf("%s: template %+v", d, tpl)
		}
	}
	cliTemplates(t, sb, s, dests[0])

	a := randomArtifact(t, 2048, 1)
	pushTo(t, s.Config, a, "v1")
	sts, err := replicate.Run(ctx, replicate.Options{Mode: replicate.ModeNative, Session: s, Repository: repo, Digest: a.Digest.String(),
		Tags: []string{"v1"}, Destinations: dests, Timeout: time.Minute, WaitOptions: fast})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for i, d := range dests {
		if sts[i].Status != replicate.StatusComplete || sts[i].Verified != replicate.VerifiedRead || len(sts[i].Tags) != 1 || sts[i].Tags[0].Status != replicate.TagApplied {
			t.Errorf("status %+v", sts[i])
		}
		out, err := ecr.NewFromConfig(destConfig(t, s, d)).DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
		if err != nil {
			t.Fatal(err)
		}
		r := out.Repositories[0]
		if r.ImageTagMutability != types.ImageTagMutabilityImmutable || r.EncryptionConfiguration.EncryptionType != types.EncryptionTypeKms {
			t.Errorf("%s: %s, %s; want IMMUTABLE, KMS", d, r.ImageTagMutability, r.EncryptionConfiguration.EncryptionType)
		}
	}
	// Planning again changes nothing.
	again, err := replicate.PlanConfigure(ctx, ciClient(s), repo, dests, o)
	if err != nil || again.Changed() {
		t.Errorf("second plan: changed=%v err=%v", again != nil && again.Changed(), err)
	}
}

// cliTemplates reads d's creation templates with `aws ecr describe-repository-creation-templates`.
func cliTemplates(t *testing.T, sb *sandbox.Sandbox, s *federate.Session, d replicate.Destination) {
	t.Helper()
	bin := testenv.Tool(t, "aws", "pip install awscli (aws-cli 1.45 knows describe-repository-creation-templates)")
	cfg, err := s.Role(context.Background(), "arn:aws:iam::"+d.Account+":role/ecrpush-deploy")
	if err != nil {
		t.Fatal(err)
	}
	cr, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "ecr", "describe-repository-creation-templates", "--prefixes", "team",
		"--endpoint-url", sb.Endpoints.ECR, "--region", d.Region, "--output", "json")
	dir := t.TempDir()
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "AWS_ACCESS_KEY_ID=" + cr.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + cr.SecretAccessKey,
		"AWS_SESSION_TOKEN=" + cr.SessionToken, "AWS_CONFIG_FILE=" + dir + "/none", "AWS_SHARED_CREDENTIALS_FILE=" + dir + "/none", "AWS_MAX_ATTEMPTS=1"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("aws ecr describe-repository-creation-templates: %v\n%s", err, stderr.String())
	}
	var doc struct {
		RegistryID string `json:"registryId"`
		Templates  []struct {
			Prefix             string   `json:"prefix"`
			ImageTagMutability string   `json:"imageTagMutability"`
			AppliedFor         []string `json:"appliedFor"`
			Encryption         struct {
				EncryptionType string `json:"encryptionType"`
			} `json:"encryptionConfiguration"`
		} `json:"repositoryCreationTemplates"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Templates) != 1 {
		t.Fatalf("aws CLI output: %v\n%s", err, out)
	}
	if tpl := doc.Templates[0]; doc.RegistryID != d.Account || tpl.Prefix != "team" || tpl.ImageTagMutability != "IMMUTABLE" || tpl.Encryption.EncryptionType != "KMS" {
		t.Errorf("aws CLI read %+v", doc)
	}
}

// An existing template that says otherwise is the user's to settle: the plan refuses, nothing is written.
func TestTemplateConflictWritesNothing(t *testing.T) {
	sb := start(t, fastConfig())
	s := federated(t)
	ctx := context.Background()
	dests := destinations(t, "ecrpush-deploy")
	theirs := destConfig(t, s, dests[1])
	if _, err := ecr.NewFromConfig(theirs).CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("team"),
		AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForReplication}, ImageTagMutability: types.ImageTagMutabilityMutable}); err != nil {
		t.Fatal(err)
	}
	sb.Log.Reset()
	settings := replicate.DefaultSettings()
	settings.TagImmutability = true
	p, err := replicate.PlanConfigure(ctx, ciClient(s), repo, dests, replicate.ConfigureOptions{Session: s, Settings: &settings})
	if err == nil || !fixable.Is(err) {
		t.Fatalf("plan over a conflicting template: %v", err)
	}
	for _, want := range []string{`"team" in ` + prod + ":eu-west-1", "imageTagMutability is MUTABLE", "update-repository-creation-template", "nothing was written"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if err := p.Apply(ctx); err == nil {
		t.Error("a plan with problems applied")
	}
	if w := sb.Log.Writes(); len(w) != 0 {
		t.Errorf("wrote: %+v", w)
	}
	// Tags need a custom role in the template: without --template-role-name the plan says so.
	settings = replicate.DefaultSettings()
	settings.Tags = []replicate.Tag{{Key: "team", Value: "a"}}
	if _, err := replicate.PlanConfigure(ctx, ciClient(s), "other/app", dests, replicate.ConfigureOptions{Session: s, Settings: &settings}); err == nil ||
		!strings.Contains(err.Error(), "--template-role-name") {
		t.Errorf("tags without a role: %v", err)
	}
	// No credentials for a destination whose template is needed: say which flag gives them.
	if _, err := replicate.PlanConfigure(ctx, ciClient(s), "other/app", destinations(t, ""), replicate.ConfigureOptions{Session: s, Settings: &settings}); err == nil ||
		!strings.Contains(err.Error(), "--destination-role-name") {
		t.Errorf("no roles: %v", err)
	}
	if w := sb.Log.Writes(); len(w) != 0 {
		t.Errorf("wrote: %+v", w)
	}
}

// A destination that is immutable and already has v1 on another image: the digest is replicated, v1 is
// not applied there, and the run says so with the fix (exit 2).
func TestImmutableDestinationKeepsItsTag(t *testing.T) {
	start(t, fastConfig())
	s := federated(t)
	ctx := context.Background()
	dests := destinations(t, "ecrpush-deploy")
	theirs := destConfig(t, s, dests[0])
	old := randomArtifact(t, 1024, 1)
	p, err := push.NewECR(ctx, theirs, repo, push.WithTagImmutability(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx, old, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	configure(t, ctx, ciClient(s), repo, dests, replicate.ConfigureOptions{Session: s})
	a := randomArtifact(t, 2048, 1)
	pushTo(t, s.Config, a, "v1")
	sts, err := replicate.Run(ctx, replicate.Options{Mode: replicate.ModeNative, Session: s, Repository: repo, Digest: a.Digest.String(),
		Tags: []string{"v1"}, Destinations: dests, Timeout: time.Minute, WaitOptions: fast})
	if err == nil || !fixable.Is(err) {
		t.Fatalf("want a fixable error, got %v", err)
	}
	t.Logf("error: %v", err)
	where := prod + ":us-east-1"
	for _, want := range []string{where + ": team/app@" + a.Digest.String() + " is there, but tag v1 was not applied", "immutable tags", old.Digest.String(),
		"push under a new tag", "batch-delete-image --registry-id " + prod + " --region us-east-1 --repository-name team/app --image-ids imageTag=v1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for i, st := range sts {
		want := replicate.TagApplied
		if i == 0 {
			want = replicate.TagElsewhere
		}
		if st.Status != replicate.StatusComplete || len(st.Tags) != 1 || st.Tags[0].Status != want {
			t.Errorf("%s: %+v, want COMPLETE with v1 %s", dests[i], st, want)
		}
	}
	if sts[0].Tags[0].Digest != old.Digest.String() {
		t.Errorf("v1 at %s names %s, want %s", where, sts[0].Tags[0].Digest, old.Digest)
	}
	if got, err := headDigest(t, theirs, a.Digest.String()); err != nil || got != a.Digest {
		t.Errorf("the digest did not land at %s: %v", where, err)
	}
}

// Twelve repositories configured one after another with the same destinations end in one rule with 12
// filters; the plan says which rule it extends.
func TestTwelveRepositoriesShareOneRule(t *testing.T) {
	start(t, fastConfig())
	s := federated(t)
	ctx := context.Background()
	dests := destinations(t, "")
	for i := range 12 {
		name := fmt.Sprintf("svc%02d/app", i)
		p := configure(t, ctx, ciClient(s), name, dests, replicate.ConfigureOptions{Session: s})
		var b bytes.Buffer
		p.WriteText(&b, true)
		want := "adds rule 1"
		if i > 0 {
			want = fmt.Sprintf(`adds the filter %q to rule 1`, name)
		}
		if !strings.Contains(b.String(), want) {
			t.Errorf("repository %d: plan lacks %q:\n%s", i+1, want, b.String())
		}
	}
	rules := rawRules(t, s.Config)
	if len(rules) != 1 {
		t.Fatalf("%d rules, want 1", len(rules))
	}
	var r struct {
		Destinations []json.RawMessage `json:"destinations"`
		Filters      []json.RawMessage `json:"repositoryFilters"`
	}
	if err := json.Unmarshal(rules[0], &r); err != nil || len(r.Filters) != 12 || len(r.Destinations) != 4 {
		t.Fatalf("rule %s", rules[0])
	}
}

// replication apply: when the rule write is refused after the destination policies were written, the
// error names each written policy and how to undo it.
func TestLateFailureNamesWhatWasWritten(t *testing.T) {
	cfg := fastConfig()
	cfg.Accounts[1].RegistryPolicy = nil // prod: its policies are written by apply
	cfg.Accounts[0].Roles[0].Policies = []json.RawMessage{json.RawMessage(`{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr:*:` + ci + `:repository/*"},
	 {"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:DescribeRegistry"],"Resource":"*"},
	 {"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::*:role/ecrpush-deploy"}]}`)}
	start(t, cfg)
	s := federated(t)
	ctx := context.Background()
	dests := destinations(t, "ecrpush-deploy")
	p, err := replicate.PlanConfigure(ctx, ciClient(s), repo, dests, replicate.ConfigureOptions{Session: s, Policies: true})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Apply(ctx)
	var ae *replicate.ApplyError
	if !errors.As(err, &ae) || !fixable.Is(err) || len(ae.Written) != 2 {
		t.Fatalf("want an ApplyError naming 2 written policies, got %v", err)
	}
	for _, want := range []string{"ecr:PutReplicationConfiguration denied", "the registry policy of " + prod + ":us-east-1", "aws ecr delete-registry-policy --region us-east-1",
		"the registry policy of " + prod + ":eu-west-1", "harmless without the replication rule"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// Every DescribeImageReplicationStatus poll fails (HTTP 500): the wait reports the API failure (exit 1),
// not an image that predates its rule.
func TestWaitReportsTheAPIFailure(t *testing.T) {
	sb := start(t, fastConfig())
	s := federated(t)
	ctx := context.Background()
	dests := destinations(t, "")
	configure(t, ctx, ciClient(s), repo, dests, replicate.ConfigureOptions{Session: s})
	a := randomArtifact(t, 1024, 1)
	pushTo(t, s.Config, a, "v1")
	sb.Faults.Set(sandbox.EndpointECR, fault.Config{ErrorRate: 1})
	sts, err := replicate.Wait(ctx, ciClient(s), repo, a.Digest.String(), dests, 4*time.Second,
		append(fast, replicate.WithExisted(true), replicate.WithBackfill(true))...)
	if err == nil || fixable.Is(err) {
		t.Fatalf("want a cloud failure (exit 1), got %v", err)
	}
	t.Logf("error: %v", err)
	if strings.Contains(err.Error(), "before the replication rule") || !strings.Contains(err.Error(), "could not be read") || !strings.Contains(err.Error(), "500") {
		t.Errorf("error: %v", err)
	}
	for _, st := range sts {
		if st.FailureCode != replicate.FailureStatusUnavailable {
			t.Errorf("status %+v", st)
		}
	}
}

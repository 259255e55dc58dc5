package cli_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecrpush/ecrpush/internal/platform"
	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/sandbox"
)

// ecrAs is an ECR client for a role the sandbox knows, in region.
func ecrAs(t *testing.T, sb *sandbox.Sandbox, roleARN, region string) *ecr.Client {
	t.Helper()
	return ecr.NewFromConfig(roleConfig(t, sb, roleARN, region))
}

func registryReplication(t *testing.T, c *ecr.Client) string {
	t.Helper()
	out, err := c.DescribeRegistry(t.Context(), &ecr.DescribeRegistryInput{})
	if err != nil {
		t.Fatal(err)
	}
	return string(replicate.ConfigJSON(out.ReplicationConfiguration))
}

// TestPipelinePlansBeforeWriting: a push that stops at the plan leaves the registry exactly as it was,
// including the replication configuration --configure-replication would have merged.
func TestPipelinePlansBeforeWriting(t *testing.T) {
	sb := start(t, nil)
	t.Setenv("GITHUB_ACTIONS", "")
	src, _ := layoutSource(t)
	other, _ := layoutSource(t)
	ci := ecrAs(t, sb, ciRole, "us-east-1")
	base := []string{"push", "--role-arn", ciRole, "--identity", "github"}
	if r := run(t, append(base, "--source", src, "--repository", "team/frozen", "--tag", "v1", "--tag-immutability")...); r.code != 0 {
		t.Fatalf("first push: %s", r.errLine)
	}
	before := registryReplication(t, ci)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"immutable tag elsewhere", []string{"--source", other, "--repository", "team/frozen", "--tag", "v1"}, "immutable"},
		{"missing repository, creation off", []string{"--source", other, "--repository", "team/missing", "--tag", "v1", "--create-repository=false"}, "team/missing"},
		{"another partition", []string{"--source", other, "--repository", "team/app", "--tag", "v1", "--replicate-to", "444455556666:cn-north-1"}, "partition"},
		{"unknown region", []string{"--source", other, "--repository", "team/app", "--tag", "v1", "--replicate-to", "444455556666:eu-west-9"}, "eu-west-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb.Log.Reset()
			args := append(append(base, tc.args...), "--configure-replication")
			if !strings.Contains(strings.Join(args, " "), "--replicate-to") {
				args = append(args, "--replicate-to", "444455556666:us-east-1")
			}
			r := run(t, args...)
			if r.code != 2 || !strings.Contains(r.errLine, tc.want) || strings.Count(r.errLine, "\n") != 0 {
				t.Fatalf("exit %d, want 2 naming %q: %s", r.code, tc.want, r.errLine)
			}
			if w := sb.Log.Writes(); len(w) != 0 {
				t.Errorf("writes despite the refusal: %+v", w)
			}
			if after := registryReplication(t, ci); after != before {
				t.Errorf("replication configuration changed:\n%s\n->\n%s", before, after)
			}
		})
	}
}

// TestPipelineDryRun prints the plan and writes nothing, even where the push would create a repository
// and merge a replication rule.
func TestPipelineDryRun(t *testing.T) {
	sb := start(t, nil)
	t.Setenv("GITHUB_ACTIONS", "")
	src, digest := layoutSource(t)
	sb.Log.Reset()
	r := run(t, "push", "--role-arn", ciRole, "--identity", "github", "--source", src, "--repository", "team/my--app", "--tag", "v1",
		"--replicate-to", "444455556666:us-east-1,777788889999:eu-west-1", "--configure-replication", "--dry-run")
	if r.code != 0 {
		t.Fatalf("dry run: %s\n%s", r.errLine, r.stderr)
	}
	for _, want := range []string{"nothing written", digest, "create repository team/my--app", "tag v1", "merge a rule for team/my--app", "444455556666"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, r.stdout)
		}
	}
	if w := sb.Log.Writes(); len(w) != 0 {
		t.Errorf("a dry run wrote: %+v", w)
	}
	// The same push for real: the repository name with a double dash is valid in ECR.
	r = run(t, "push", "--role-arn", ciRole, "--identity", "github", "--source", src, "--repository", "team/my--app", "--tag", "v1", "--output", "json")
	if r.code != 0 {
		t.Fatalf("push team/my--app: %s", r.errLine)
	}
}

// TestPipelineCopySettings: the repository settings reach copy-mode destinations, not only the ci repository.
func TestPipelineCopySettings(t *testing.T) {
	sb := start(t, nil)
	t.Setenv("GITHUB_ACTIONS", "")
	src, digest := layoutSource(t)
	r := run(t, "push", "--role-arn", ciRole, "--identity", "github", "--source", src, "--repository", "team/settings", "--tag", "v1",
		"--tag-immutability", "--scan-on-push=false", "--replication", "copy", "--replicate-to", "444455556666:eu-west-1",
		"--destination-role-name", "ecrpush-deploy", "--output", "json")
	if r.code != 0 {
		t.Fatalf("copy push: %s\n%s", r.errLine, r.stderr)
	}
	for _, c := range []struct{ role, region string }{{ciRole, "us-east-1"}, {"arn:aws:iam::444455556666:role/ecrpush-deploy", "eu-west-1"}} {
		out, err := ecrAs(t, sb, c.role, c.region).DescribeRepositories(t.Context(), &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"team/settings"}})
		if err != nil {
			t.Fatalf("%s: %v", c.role, err)
		}
		repo := out.Repositories[0]
		if repo.ImageTagMutability != types.ImageTagMutabilityImmutable || repo.ImageScanningConfiguration == nil || repo.ImageScanningConfiguration.ScanOnPush {
			t.Errorf("%s in %s: mutability %s, scan %+v; want IMMUTABLE, scan off", aws.ToString(repo.RepositoryUri), c.region, repo.ImageTagMutability, repo.ImageScanningConfiguration)
		}
	}
	var rep platform.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Digest != digest || len(rep.Replication) != 1 || rep.Replication[0].Status != "COPIED" {
		t.Errorf("report %v %+v", err, rep)
	}
}

// TestPipelineJSONOnGitHub: --output json writes the result to stdout on GitHub too, with the workflow
// commands on stderr, so `ecrpush push --output json | jq` works in a run: step.
func TestPipelineJSONOnGitHub(t *testing.T) {
	start(t, nil)
	src, digest := layoutSource(t)
	dir := t.TempDir()
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("GITHUB_OUTPUT", dir+"/output")
	t.Setenv("GITHUB_STEP_SUMMARY", dir+"/summary")
	r := run(t, "push", "--role-arn", ciRole, "--identity", "github", "--source", src, "--repository", "team/jq", "--tag", "v1", "--output", "json")
	if r.code != 0 {
		t.Fatalf("push: %s\n%s", r.errLine, r.stderr)
	}
	var rep platform.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Digest != digest {
		t.Fatalf("stdout is not the JSON report (%v):\n%s", err, r.stdout)
	}
	if !strings.Contains(readFile(t, dir+"/output"), digest) {
		t.Error("GitHub outputs not written")
	}
}

// TestTrustPolicyReadsOnlyItsCommandLine: push's variables (ECRPUSH_TAG, ECRPUSH_REPOSITORY) must not
// leak into a printed trust policy.
func TestTrustPolicyReadsOnlyItsCommandLine(t *testing.T) {
	t.Setenv("ECRPUSH_TAG", "v*")
	t.Setenv("ECRPUSH_REPOSITORY", "other/app")
	t.Setenv("ECRPUSH_ENVIRONMENT", "prod")
	r := run(t, "trust-policy", "--github-repo", "octo-org/app", "--branch", "main", "--account", "111122223333", "--policy", "all")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.errLine)
	}
	for _, leaked := range []string{"ref:refs/tags/", "other/app", "environment:prod"} {
		if strings.Contains(r.stdout, leaked) {
			t.Errorf("a variable widened the printed policy (%s):\n%s", leaked, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "repo:octo-org/app:ref:refs/heads/main") {
		t.Errorf("policy:\n%s", r.stdout)
	}
}

// TestPushConfiguresReplicationAtScale: settings reach natively replicated destinations through creation
// templates, and twelve repositories configured one after another share one rule (a filter each).
func TestPushConfiguresReplicationAtScale(t *testing.T) {
	sb := start(t, replicationConfig())
	t.Setenv("GITHUB_ACTIONS", "")
	src, digest := layoutSource(t)
	kms := "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	r := run(t, "push", "--role-arn", ciRole, "--identity", "github", "--source", src, "--repository", "tpl/app", "--tag", "v1",
		"--tag-immutability", "--kms-key", kms, "--configure-replication", "--destination-role-name", "ecrpush-deploy",
		"--replicate-to", all4, "--replication-timeout", "2m", "--output", "json")
	if r.code != 0 {
		t.Fatalf("push: %s\n%s", r.errLine, r.stderr)
	}
	var rep platform.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Digest != digest || len(rep.Replication) != 4 {
		t.Fatalf("report %v: %s", err, r.stdout)
	}
	for _, d := range strings.Split(all4, ",") {
		account, region, _ := strings.Cut(d, ":")
		out, err := ecrAs(t, sb, "arn:aws:iam::"+account+":role/ecrpush-deploy", region).DescribeRepositories(t.Context(), &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"tpl/app"}})
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		repo := out.Repositories[0]
		if repo.ImageTagMutability != types.ImageTagMutabilityImmutable || repo.EncryptionConfiguration == nil || repo.EncryptionConfiguration.EncryptionType != types.EncryptionTypeKms {
			t.Errorf("%s: %s %+v, want IMMUTABLE and KMS", d, repo.ImageTagMutability, repo.EncryptionConfiguration)
		}
	}

	ci := ecrAs(t, sb, ciRole, "us-east-1")
	for i := range 12 {
		repo := fmt.Sprintf("scale/app%02d", i)
		if r := run(t, "push", "--role-arn", ciRole, "--identity", "github", "--source", src, "--repository", repo, "--tag", "v1",
			"--configure-replication", "--replicate-to", sandbox.ProdAccount+":eu-west-1", "--replication-timeout", "2m"); r.code != 0 {
			t.Fatalf("push %s: %s", repo, r.errLine)
		}
	}
	out, err := ci.DescribeRegistry(t.Context(), &ecr.DescribeRegistryInput{})
	if err != nil {
		t.Fatal(err)
	}
	var rules, filters int
	for _, rule := range out.ReplicationConfiguration.Rules {
		if len(rule.Destinations) == 1 && aws.ToString(rule.Destinations[0].RegistryId) == sandbox.ProdAccount && aws.ToString(rule.Destinations[0].Region) == "eu-west-1" {
			rules++
			filters += len(rule.RepositoryFilters)
		}
	}
	if rules != 1 || filters != 12 {
		t.Errorf("%d rules with %d filters for the twelve repositories, want 1 rule with 12", rules, filters)
	}
}

package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/sandbox"
)

func replicationConfig() *sandbox.Config {
	cfg := sandbox.DefaultConfig()
	cfg.ReplicationDelay = sandbox.Dur(100 * time.Millisecond)
	return cfg
}

func TestReplicationPlanRefusesAFullConfiguration(t *testing.T) {
	cfg := replicationConfig()
	var rules []string
	for i := range 10 {
		rules = append(rules, fmt.Sprintf(`{"destinations":[{"region":"eu-west-1","registryId":"%s"}],"repositoryFilters":[{"filter":"other%d/","filterType":"PREFIX_MATCH"}]}`, sandbox.StagingAccount, i))
	}
	cfg.Accounts[0].Replication = map[string]json.RawMessage{"us-east-1": json.RawMessage(`{"rules":[` + strings.Join(rules, ",") + `]}`)}
	sb := start(t, cfg)
	for _, sub := range []string{"plan", "apply"} {
		r := run(t, "replication", sub, "--repository", "team/app", "--replicate-to", sandbox.ProdAccount+":us-east-1", "--role-arn", ciRole)
		if r.code != 2 || !strings.Contains(r.errLine, "10 replication rules") || !strings.Contains(r.errLine, "nothing was written") {
			t.Errorf("%s: exit %d, %s", sub, r.code, r.errLine)
		}
	}
	for _, w := range sb.Log.Writes() {
		t.Errorf("a refused plan wrote: %s %s %s", w.Endpoint, w.Op, w.Path)
	}
}

func TestReplicationPlanApplyStatus(t *testing.T) {
	cfg := replicationConfig()
	cfg.Accounts[2].RegistryPolicy = nil // staging has no registry policy yet: apply must write one
	sb := start(t, cfg)
	dests := sandbox.ProdAccount + ":us-east-1," + sandbox.StagingAccount + ":eu-west-1"

	// plan: a diff and the policies, nothing written.
	r := run(t, "replication", "plan", "--repository", "team/app", "--replicate-to", dests, "--role-arn", ciRole)
	if r.code != 0 {
		t.Fatalf("plan: exit %d: %s\n%s", r.code, r.errLine, r.stderr)
	}
	for _, want := range []string{"--- current", "+++ merged", `+      "repositoryFilters": [`, `+          "filter": "team/app",`,
		"Registry policy " + sandbox.StagingAccount + " needs in eu-west-1", `"ecr:ReplicateImage"`, "arn:aws:iam::" + sandbox.CIAccount + ":root"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan output lacks %q:\n%s", want, r.stdout)
		}
	}
	if w := sb.Log.Writes(); len(w) != 0 {
		t.Errorf("plan wrote %d times", len(w))
	}

	// apply: the staging policy (with its deploy role) and the ci rule.
	r = run(t, "replication", "apply", "--repository", "team/app", "--replicate-to", dests, "--destination-role-name", "ecrpush-deploy", "--role-arn", ciRole, "--output", "json")
	if r.code != 0 {
		t.Fatalf("apply: exit %d: %s\n%s", r.code, r.errLine, r.stderr)
	}
	var out struct {
		Changed  bool
		Policies []struct{ Account, Region, Status string } `json:"destinationPolicies"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("apply json: %v\n%s", err, r.stdout)
	}
	if !out.Changed || len(out.Policies) != 2 || out.Policies[0].Status != "unchanged" || out.Policies[1].Status != "updated" {
		t.Errorf("apply: %+v", out)
	}
	// Applying again changes nothing.
	sb.Log.Reset()
	if r = run(t, "replication", "apply", "--repository", "team/app", "--replicate-to", dests, "--destination-role-name", "ecrpush-deploy", "--role-arn", ciRole); r.code != 0 || !strings.Contains(r.stdout, "nothing written") {
		t.Errorf("second apply: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}
	if w := sb.Log.Writes(); len(w) != 0 {
		t.Errorf("second apply wrote %d times", len(w))
	}

	// A push now replicates to both, and status shows it.
	s, err := federate.Federate(context.Background(), federate.Options{RoleARN: ciRole})
	if err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(1024, 1)
	a, _ := push.ImageArtifact("random", img)
	p, err := push.NewECR(context.Background(), s.Config, "team/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(context.Background(), a, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	ds, _ := replicate.ParseDestinations([]string{dests}, sandbox.CIAccount, "us-east-1", "")
	if _, err := replicate.Wait(context.Background(), replicate.ECRAPI(ecrClient(s)), "team/app", a.Digest.String(), ds, 20*time.Second,
		replicate.WithPollInterval(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	r = run(t, "replication", "status", "team/app:v1", "--role-arn", ciRole)
	if r.code != 0 || strings.Count(r.stdout, "COMPLETE") != 2 || !strings.Contains(r.stdout, a.Digest.String()) {
		t.Errorf("status: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}
	r = run(t, "replication", "status", "--role-arn", ciRole, "--output", "markdown", "team/app@"+a.Digest.String())
	if r.code != 0 || strings.Count(r.stdout, "✅") != 2 {
		t.Errorf("status markdown: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}
	// A destination ECR never replicated to is reported, with exit 2.
	r = run(t, "replication", "status", "team/app:v1", "--role-arn", ciRole, "--replicate-to", "eu-west-1", "--output", "json")
	if r.code != 2 || !strings.Contains(r.stdout, replicate.FailureNoStatus) || !strings.Contains(r.errLine, sandbox.CIAccount+":eu-west-1 FAILED") {
		t.Errorf("status of a missing destination: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}
}

func TestReplicationBadInput(t *testing.T) {
	sb := start(t, nil)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"replication"}, "subcommand"},
		{[]string{"replication", "destroy"}, "plan, apply, status IMAGE and backfill"},
		{[]string{"replication", "plan", "--repository", "team/app"}, "--replicate-to is required"},
		{[]string{"replication", "plan", "--repository", "team/app", "--replicate-to", "4444:us-east-1"}, "12 digits"},
		{[]string{"replication", "plan", "--repository", "team/app", "--replicate-to", "us-east-1", "--role-arn", ciRole}, "ci registry itself"},
		{[]string{"replication", "status"}, "one IMAGE"},
		{[]string{"replication", "status", "team/app"}, "needs a tag or digest"},
		{[]string{"replication", "plan", "--output", "yaml"}, "--output"},
	}
	for _, tc := range cases {
		r := run(t, tc.args...)
		if r.code != 2 || !strings.Contains(r.errLine, tc.want) {
			t.Errorf("%q: exit %d, %s (want %q)", tc.args, r.code, r.errLine, tc.want)
		}
	}
	if w := sb.Log.Writes(); len(w) != 0 {
		t.Errorf("bad input wrote %d times", len(w))
	}
}

func ecrClient(s *federate.Session) *ecr.Client { return ecr.NewFromConfig(s.Config) }

// replication apply with settings writes a creation template per destination, then --backfill carries an
// image pushed before the rule; replication backfill lists, shows and refuses to stop a finished one.
func TestReplicationApplyTemplatesAndBackfill(t *testing.T) {
	sb := start(t, replicationConfig())
	s, err := federate.Federate(context.Background(), federate.Options{RoleARN: ciRole})
	if err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(1024, 1)
	a, _ := push.ImageArtifact("random", img)
	p, err := push.NewECR(context.Background(), s.Config, "team/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(context.Background(), a, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	dests := sandbox.ProdAccount + ":us-east-1," + sandbox.StagingAccount + ":eu-west-1"
	policy := t.TempDir() + "/lifecycle.json"
	if err := os.WriteFile(policy, []byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--repository", "team/app", "--replicate-to", dests, "--destination-role-name", "ecrpush-deploy", "--role-arn", ciRole,
		"--tag-immutability", "--lifecycle-policy", policy}
	sb.Log.Reset()
	r := run(t, append([]string{"replication", "plan"}, args...)...)
	if r.code != 0 || !strings.Contains(r.stdout, `Repository creation template "team" in `+sandbox.StagingAccount+":eu-west-1") || !strings.Contains(r.stdout, `"lifecyclePolicy"`) {
		t.Fatalf("plan: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}
	if w := sb.Log.Writes(); len(w) != 0 {
		t.Errorf("plan wrote %d times", len(w))
	}
	r = run(t, append([]string{"replication", "apply", "--backfill", "--replication-timeout", "1m"}, args...)...)
	if r.code != 0 || strings.Count(r.stdout, "COMPLETE") != 2 || !strings.Contains(r.stdout, "created") {
		t.Fatalf("apply --backfill: exit %d %s\n%s\n%s", r.code, r.errLine, r.stdout, r.stderr)
	}
	ds, _ := replicate.ParseDestinations([]string{dests}, sandbox.CIAccount, "us-east-1", "ecrpush-deploy")
	for _, d := range ds {
		cfg, err := s.Role(context.Background(), d.RoleARN)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Region = d.Region
		out, err := ecr.NewFromConfig(cfg).DescribeRepositories(context.Background(), &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"team/app"}})
		if err != nil || out.Repositories[0].ImageTagMutability != "IMMUTABLE" {
			t.Errorf("%s: %+v %v", d, out, err)
		}
	}
	r = run(t, "replication", "backfill", "list", "--role-arn", ciRole, "--output", "json")
	var list struct {
		Backfills []replicate.Backfill `json:"backfills"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list.Backfills) != 2 {
		t.Fatalf("backfill list: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}
	id := list.Backfills[0].ID
	r = run(t, "replication", "backfill", "show", id, "--role-arn", ciRole)
	if r.code != 0 || !strings.Contains(r.stdout, "team/app@"+a.Digest.String()+" (v1) COMPLETE") {
		t.Errorf("backfill show: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}
	r = run(t, "replication", "backfill", "stop", id, "--role-arn", ciRole)
	if r.code != 2 || !strings.Contains(r.errLine, "PREPARING or IN_PROGRESS") {
		t.Errorf("stop a finished backfill: exit %d %s", r.code, r.errLine)
	}
	// status reads each destination back with its role: v1 names the digest everywhere.
	r = run(t, "replication", "status", "team/app:v1", "--role-arn", ciRole, "--replicate-to", dests, "--destination-role-name", "ecrpush-deploy", "--output", "json")
	var st struct {
		Replication []replicate.Status `json:"replication"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status: %v\n%s", err, r.stdout)
	}
	for _, x := range st.Replication {
		if x.Verified != replicate.VerifiedRead || len(x.Tags) != 1 || x.Tags[0].Status != replicate.TagApplied {
			t.Errorf("status %+v", x)
		}
	}
}

// replication status --backfill carries an image that predates its rule.
func TestReplicationStatusBackfill(t *testing.T) {
	start(t, replicationConfig())
	s, err := federate.Federate(context.Background(), federate.Options{RoleARN: ciRole})
	if err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(1024, 1)
	a, _ := push.ImageArtifact("random", img)
	p, err := push.NewECR(context.Background(), s.Config, "team/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(context.Background(), a, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if r := run(t, "replication", "apply", "--repository", "team/app", "--replicate-to", sandbox.ProdAccount+":eu-west-1", "--role-arn", ciRole); r.code != 0 {
		t.Fatalf("apply: %d %s", r.code, r.errLine)
	}
	r := run(t, "replication", "status", "team/app:v1", "--role-arn", ciRole)
	if r.code != 0 || !strings.Contains(r.stdout, "no replication reported") {
		t.Fatalf("status before: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}
	r = run(t, "replication", "status", "team/app:v1", "--backfill", "--role-arn", ciRole, "--replication-timeout", "1m")
	if r.code != 0 || !strings.Contains(r.stdout, "COMPLETE") || !strings.Contains(r.stdout, "backfill ") {
		t.Fatalf("status --backfill: exit %d %s\n%s", r.code, r.errLine, r.stdout)
	}
}

// replication apply whose rule write is refused names the destination policies it wrote, and their undo.
func TestReplicationApplyLateFailureNamesThePolicies(t *testing.T) {
	cfg := replicationConfig()
	cfg.Accounts[2].RegistryPolicy = nil
	cfg.Accounts[0].Roles[0].Policies = []json.RawMessage{json.RawMessage(`{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr:*:` + sandbox.CIAccount + `:repository/*"},
	 {"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:DescribeRegistry"],"Resource":"*"},
	 {"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::*:role/ecrpush-deploy"}]}`)}
	start(t, cfg)
	r := run(t, "replication", "apply", "--repository", "team/app", "--replicate-to", sandbox.StagingAccount+":eu-west-1",
		"--destination-role-name", "ecrpush-deploy", "--role-arn", ciRole)
	if r.code != 2 || strings.Contains(r.errLine, "nothing was written") || !strings.Contains(r.errLine, "the registry policy of "+sandbox.StagingAccount+":eu-west-1") ||
		!strings.Contains(r.errLine, "aws ecr delete-registry-policy --region eu-west-1") {
		t.Errorf("exit %d: %s", r.code, r.errLine)
	}
}

package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
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
		{[]string{"replication", "destroy"}, "plan, apply and status"},
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

package trustpolicy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

const acct = "111122223333"

// sub returns the sub condition of the trust policy the spec prints.
func sub(t *testing.T, s Spec) (string, []string, *Trust) {
	t.Helper()
	tr, err := s.Trust()
	if err != nil {
		t.Fatalf("%+v: %v", s, err)
	}
	for _, c := range tr.Document.Statements[0].Conditions {
		if strings.HasSuffix(c.Key, ":sub") {
			return c.Operator, c.Values, tr
		}
	}
	t.Fatalf("no sub condition: %+v", tr.Document)
	return "", nil, nil
}

func TestGitHubSubjects(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		op   string
		subs []string
		note string // in one of the notes
	}{
		{"branch", Spec{GitHubRepo: "octo-org/app", Branches: []string{"main"}}, "StringEquals",
			[]string{"repo:octo-org/app:ref:refs/heads/main"}, "pull_request_target, workflow_run and issue_comment"},
		{"immutable in --github-repo", Spec{GitHubRepo: "octo-org@123456/app@789012", Branches: []string{"main"}}, "StringEquals",
			[]string{"repo:octo-org@123456/app@789012:ref:refs/heads/main"}, ""},
		{"--immutable-ids", Spec{GitHubRepo: "octo-org/app", ImmutableIDs: "123456,789012", Tags: []string{"v1.0"}}, "StringEquals",
			[]string{"repo:octo-org@123456/app@789012:ref:refs/tags/v1.0"}, ""},
		{"both forms", Spec{GitHubRepo: "octo-org@123456/app@789012", BothForms: true, Branches: []string{"main"}}, "StringEquals",
			[]string{"repo:octo-org/app:ref:refs/heads/main", "repo:octo-org@123456/app@789012:ref:refs/heads/main"}, "drop it once"},
		{"full ref normalised, list", Spec{GitHubRepo: "octo-org/app", Branches: []string{"refs/heads/main", "dev", "main"}}, "StringEquals",
			[]string{"repo:octo-org/app:ref:refs/heads/main", "repo:octo-org/app:ref:refs/heads/dev"}, ""},
		{"wildcard branch", Spec{GitHubRepo: "octo-org/app", Branches: []string{"release/*"}}, "StringLike",
			[]string{"repo:octo-org/app:ref:refs/heads/release/*"}, `--branch "release/*" is a wildcard`},
		{"branches and tags", Spec{GitHubRepo: "octo-org/app", Branches: []string{"main"}, Tags: []string{"refs/tags/v*"}}, "StringLike",
			[]string{"repo:octo-org/app:ref:refs/heads/main", "repo:octo-org/app:ref:refs/tags/v*"}, ""},
		{"environment with a colon", Spec{GitHubRepo: "octo-org/app", Environments: []string{"Production:V1"}}, "StringEquals",
			[]string{"repo:octo-org/app:environment:Production%3AV1"}, "%3A"},
		{"pull request", Spec{GitHubRepo: "octo-org/app", PullRequest: true}, "StringEquals", []string{"repo:octo-org/app:pull_request"}, "forks"},
		{"any ref", Spec{GitHubRepo: "octo-org/app", AnyRef: true}, "StringLike", []string{"repo:octo-org/app:*"}, "pull requests"},
		{"custom template", Spec{GitHubRepo: "octo-org/app", ImmutableIDs: "123456,789012", SubTemplate: []string{"repository_owner_id", "context"},
			Environments: []string{"prod"}}, "StringEquals", []string{"repository_owner_id:123456:environment:prod"}, ""},
		{"template with event", Spec{GitHubRepo: "octo-org/app", SubTemplate: []string{"repo", "context", "event_name"}, Branches: []string{"main"}}, "StringEquals",
			[]string{"repo:octo-org/app:ref:refs/heads/main:event_name:push"}, "event_name is pinned to push"},
		{"template with events and a claim", Spec{GitHubRepo: "octo-org/app", SubTemplate: []string{"job_workflow_ref", "event_name"},
			Events: []string{"push", "workflow_dispatch"}, Claims: []string{"job_workflow_ref=octo-org/app/.github/workflows/release.yml@refs/heads/main"}}, "StringEquals",
			[]string{"job_workflow_ref:octo-org/app/.github/workflows/release.yml@refs/heads/main:event_name:push",
				"job_workflow_ref:octo-org/app/.github/workflows/release.yml@refs/heads/main:event_name:workflow_dispatch"}, ""},
		{"GHES", Spec{GitHubRepo: "octo-org/app", Branches: []string{"main"}, Issuer: "https://ghes.example.com/_services/token"}, "StringEquals",
			[]string{"repo:octo-org/app:ref:refs/heads/main"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Account = acct
			op, subs, tr := sub(t, tc.spec)
			if op != tc.op || !reflect.DeepEqual(subs, tc.subs) {
				t.Errorf("%s %q, want %s %q", op, subs, tc.op, tc.subs)
			}
			if tc.note != "" && !strings.Contains(strings.Join(tr.Notes, "\n"), tc.note) {
				t.Errorf("notes %q lack %q", tr.Notes, tc.note)
			}
		})
	}
}

func TestIssuersAndPartitions(t *testing.T) {
	for _, tc := range []struct {
		issuer, partition, audience string
		principal, key, aud         string
	}{
		{"", "", "", "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com", "token.actions.githubusercontent.com:sub", "sts.amazonaws.com"},
		{"https://token.actions.githubusercontent.com/octo-ent", "", "", "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com/octo-ent",
			"token.actions.githubusercontent.com/octo-ent:sub", "sts.amazonaws.com"},
		{"https://ghes.example.com/_services/token/", "aws-us-gov", "", "arn:aws-us-gov:iam::111122223333:oidc-provider/ghes.example.com/_services/token",
			"ghes.example.com/_services/token:sub", "sts.amazonaws.com"},
		{"", "aws-cn", "", "arn:aws-cn:iam::111122223333:oidc-provider/token.actions.githubusercontent.com", "token.actions.githubusercontent.com:sub", "sts.amazonaws.com.cn"},
		{"", "aws-cn", "custom", "arn:aws-cn:iam::111122223333:oidc-provider/token.actions.githubusercontent.com", "token.actions.githubusercontent.com:sub", "custom"},
	} {
		tr, err := Spec{Account: acct, Partition: tc.partition, Audience: tc.audience, GitHubRepo: "o/r", Branches: []string{"main"}, Issuer: tc.issuer}.Trust()
		if err != nil {
			t.Fatal(err)
		}
		st := tr.Document.Statements[0]
		if st.Principal["Federated"] != tc.principal || st.Conditions[1].Key != tc.key || st.Conditions[0].Values[0] != tc.aud {
			t.Errorf("%s %s: %+v", tc.issuer, tc.partition, st)
		}
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{GitHubRepo: "octo-org/app", Branches: []string{"refs/tags/v1.0"}}, "--tag v1.0"},
		{Spec{GitHubRepo: "octo-org/app", Tags: []string{"refs/heads/main"}}, "--branch main"},
		{Spec{GitHubRepo: "octo-org/app", Branches: []string{"refs/pull/1/merge"}}, "--pull-request"},
		{Spec{GitHubRepo: "octo-org/app", Branches: []string{"feat ure"}}, "not a git branch name"},
		{Spec{GitHubRepo: "octo-org/app"}, "choose exactly one"},
		{Spec{GitHubRepo: "octo-org/app", Branches: []string{"main"}, PullRequest: true}, "choose exactly one"},
		{Spec{GitHubRepo: "octo-org@1/app", Branches: []string{"main"}}, "OWNER@OWNER_ID/REPO@REPO_ID"},
		{Spec{GitHubRepo: "octo-org@x/app@2", Branches: []string{"main"}}, "OWNER@OWNER_ID/REPO@REPO_ID"},
		{Spec{GitHubRepo: "octo-org@1/app@2", ImmutableIDs: "3,4", Branches: []string{"main"}}, "disagrees"},
		{Spec{GitHubRepo: "octo-org/app", ImmutableIDs: "123456", Branches: []string{"main"}}, "OWNER_ID,REPO_ID"},
		{Spec{GitHubRepo: "octo-org/app", BothForms: true, Branches: []string{"main"}}, "needs the ids"},
		{Spec{GitHubRepo: "octo-org@1/app@2", Branches: []string{"main"}, Issuer: "https://ghes.example.com/_services/token"}, "Enterprise Server does not issue immutable"},
		{Spec{GitHubRepo: "octo-org/app", Branches: []string{"main"}, Issuer: "http://ghes.example.com/_services/token"}, "https"},
		{Spec{GitHubRepo: "octo-org/app", Branches: []string{"main"}, Issuer: "https://token.actions.githubusercontent.com/a/b"}, "ENTERPRISE_SLUG"},
		{Spec{GitHubRepo: "octo-org/app", SubTemplate: []string{"repository_owner_id", "context"}, Branches: []string{"main"}}, "--immutable-ids"},
		{Spec{GitHubRepo: "octo-org/app", SubTemplate: []string{"repo", "context", "job_workflow_ref"}, Branches: []string{"main"}}, "--claim job_workflow_ref=VALUE"},
		{Spec{GitHubRepo: "octo-org/app", SubTemplate: []string{"repo", "actor"}, Branches: []string{"main"}}, "cannot restrict"},
		{Spec{GitHubRepo: "octo-org/app", SubTemplate: []string{"repo", "context", "repo"}, Branches: []string{"main"}}, "twice"},
		{Spec{GitHubRepo: "octo-org/app", SubTemplate: []string{"repo-x"}, Branches: []string{"main"}}, "letters, digits and underscores"},
		{Spec{GitHubRepo: "octo-org/app", Events: []string{"push"}, Branches: []string{"main"}}, "--sub-template"},
		{Spec{GitHubRepo: "octo-org/app", Branches: []string{"main"}, Partition: "aws-mars"}, "partition"},
		{Spec{GoogleServiceAccountID: "sa@example.iam.gserviceaccount.com"}, "unique id"},
	} {
		tc.spec.Account = acct
		_, err := tc.spec.Trust()
		if err == nil || !fixable.Is(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want a fixable error with %q", tc.spec, err, tc.want)
		}
	}
}

func TestPushPolicy(t *testing.T) {
	d, err := Push("aws-cn", acct, []string{"team/app"}, []string{"example/app/", "base*"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"arn:aws-cn:ecr:*:111122223333:repository/team/app", "arn:aws-cn:ecr:*:111122223333:repository/example/app",
		"arn:aws-cn:ecr:*:111122223333:repository/example/app/*", "arn:aws-cn:ecr:*:111122223333:repository/base",
		"arn:aws-cn:ecr:*:111122223333:repository/base/*"}
	if !reflect.DeepEqual(d.Statements[1].Resources, want) {
		t.Errorf("resources %q", d.Statements[1].Resources)
	}
	var doc map[string]any
	if err := json.Unmarshal(d.JSON(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"Team/App"}, {}} {
		if _, err := Push("aws", acct, bad, nil); !fixable.Is(err) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := Push("aws", acct, nil, []string{"a"}); !fixable.Is(err) {
		t.Errorf("a one-letter prefix: %v", err)
	}
}

func TestTerraformRendersEveryDocument(t *testing.T) {
	tr, err := Spec{Account: acct, GitHubRepo: "o/r", Branches: []string{"main"}}.Trust()
	if err != nil {
		t.Fatal(err)
	}
	push, _ := Push("aws", acct, []string{"o/r"}, nil)
	for name, tc := range map[string]struct {
		d    Document
		want []string
	}{
		"trust":       {tr.Document, []string{`type        = "Federated"`, `"repo:o/r:ref:refs/heads/main"`, `variable = "token.actions.githubusercontent.com:aud"`}},
		"push":        {push, []string{`resources = ["arn:aws:ecr:*:111122223333:repository/o/r"]`, `"ecr:PutImage"`, `sid     = "EcrPush"`}},
		"replication": {Replication(), []string{`"iam:CreateServiceLinkedRole"`, `variable = "iam:AWSServiceName"`}},
	} {
		out := tc.d.Terraform("ecrpush_" + name)
		for _, w := range append(tc.want, `data "aws_iam_policy_document" "ecrpush_`+name+`"`) {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %s in\n%s", name, w, out)
			}
		}
	}
}

func TestLiteralValues(t *testing.T) {
	// An environment named like a policy variable must be matched literally, by IAM and by Terraform.
	tr, err := Spec{Account: acct, GitHubRepo: "o/r", Environments: []string{"x${aws:username}"}}.Trust()
	if err != nil {
		t.Fatal(err)
	}
	v := tr.Document.Statements[0].Conditions[1].Values[0]
	if v != "repo:o/r:environment:x${$}{aws%3Ausername}" {
		t.Errorf("IAM value %q", v)
	}
	if !strings.Contains(tr.Document.Terraform("t"), `x$${$}{aws%3Ausername}`) {
		t.Errorf("terraform: %s", tr.Document.Terraform("t"))
	}
}

package claims

import (
	"reflect"
	"testing"
)

func TestProviderNames(t *testing.T) {
	gh := func(iss string) Claims {
		return Claims{"iss": iss, "repository": "o/r", "repository_owner": "o", "sub": "repo:o/r:ref:refs/heads/main", "aud": "sts.amazonaws.com"}
	}
	for _, tc := range []struct {
		c      Claims
		want   string
		github bool
		google bool
	}{
		{gh("https://token.actions.githubusercontent.com"), "token.actions.githubusercontent.com", true, false},
		{gh("https://token.actions.githubusercontent.com/octo-ent"), "token.actions.githubusercontent.com/octo-ent", true, false},
		{gh("https://ghes.example.com/_services/token"), "ghes.example.com/_services/token", true, false},
		{gh("https://token.actions.octocorp.ghe.com"), "token.actions.octocorp.ghe.com", true, false},
		// The sandbox's stand-in issuers: named as the sandbox registers them.
		{gh("http://127.0.0.1:4000"), "token.actions.githubusercontent.com", true, false},
		{gh("http://127.0.0.1:4000/_services/token"), "127.0.0.1:4000/_services/token", true, false},
		{Claims{"iss": "https://accounts.google.com", "azp": "100000000000000000001", "sub": "100000000000000000001", "aud": "sts.amazonaws.com"}, "accounts.google.com", false, true},
		{Claims{"iss": "http://127.0.0.1:5000", "azp": "100000000000000000001", "sub": "100000000000000000001", "email": "a@b.c"}, "accounts.google.com", false, true},
		{Claims{"iss": "https://oidc.eks.us-east-1.amazonaws.com/id/ABC/", "sub": "system:serviceaccount:ns:sa"}, "oidc.eks.us-east-1.amazonaws.com/id/ABC", false, false},
	} {
		if got := tc.c.Provider(); got != tc.want {
			t.Errorf("%v: provider %q, want %q", tc.c["iss"], got, tc.want)
		}
		if tc.c.IsGitHub() != tc.github || tc.c.IsGoogle() != tc.google {
			t.Errorf("%v: github %v google %v", tc.c["iss"], tc.c.IsGitHub(), tc.c.IsGoogle())
		}
		keys := tc.c.ConditionKeys()
		if _, ok := keys[tc.want+":sub"]; !ok {
			t.Errorf("%v: condition keys %v", tc.c["iss"], keys)
		}
	}
}

func TestSubjects(t *testing.T) {
	for _, tc := range []struct {
		sub  string
		want Subject
	}{
		{"repo:octo-org/app:ref:refs/heads/main", Subject{Repo: Repo{Owner: "octo-org", Name: "app"}, Ref: "refs/heads/main"}},
		{"repo:octo-org@123456/app@789012:ref:refs/heads/main", Subject{Repo: Repo{Owner: "octo-org", OwnerID: "123456", Name: "app", RepoID: "789012"}, Ref: "refs/heads/main"}},
		{"repo:octo-org/app:ref:refs/tags/v1.0", Subject{Repo: Repo{Owner: "octo-org", Name: "app"}, Ref: "refs/tags/v1.0"}},
		{"repo:octo-org/app:environment:Production%3AV1", Subject{Repo: Repo{Owner: "octo-org", Name: "app"}, Environment: "Production:V1"}},
		{"repo:octo-org/app:pull_request", Subject{Repo: Repo{Owner: "octo-org", Name: "app"}, PullRequest: true}},
	} {
		got, ok := ParseSubject(tc.sub)
		if !ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseSubject(%q) = %+v %v, want %+v", tc.sub, got, ok, tc.want)
			continue
		}
		if got.String() != tc.sub {
			t.Errorf("%q renders back as %q", tc.sub, got.String())
		}
	}
	for _, bad := range []string{"", "repo:o/r", "repo:o:ref:refs/heads/main", "repo:o@1/r:ref:x", "repo:o/r:environment:a:b",
		"repository_owner_id:1:environment:prod", "repo:o/r/x:pull_request", "repo:o@@1/r@@2:pull_request"} {
		if s, ok := ParseSubject(bad); ok {
			t.Errorf("ParseSubject(%q) = %+v, want no default-template subject", bad, s)
		}
	}
}

func TestTemplates(t *testing.T) {
	base := Claims{"iss": "https://token.actions.githubusercontent.com", "repository": "octo-org/app", "repository_owner": "octo-org",
		"repository_owner_id": "123456", "repository_id": "789012", "ref": "refs/heads/main", "event_name": "push",
		"job_workflow_ref": "octo-org/app/.github/workflows/release.yml@refs/heads/main", "environment": "prod:eu"}
	for _, tc := range []struct {
		keys      []string
		immutable bool
		sub       string
	}{
		{[]string{"repository_owner_id", "context"}, false, "repository_owner_id:123456:environment:prod%3Aeu"},
		{[]string{"repo", "context", "job_workflow_ref"}, false, "repo:octo-org/app:environment:prod%3Aeu:job_workflow_ref:octo-org/app/.github/workflows/release.yml@refs/heads/main"},
		{[]string{"repo", "context", "event_name"}, true, "repo:octo-org@123456/app@789012:environment:prod%3Aeu:event_name:push"},
	} {
		sub := TemplateSubject(tc.keys, base.TemplateValues(tc.immutable))
		if sub != tc.sub {
			t.Errorf("%v: %q, want %q", tc.keys, sub, tc.sub)
		}
		c := Claims{"sub": sub}
		for k, v := range base {
			c[k] = v
		}
		keys, imm, ok := c.Template()
		if !ok || imm != tc.immutable || TemplateSubject(keys, c.TemplateValues(imm)) != sub {
			t.Errorf("Template of %q = %v %v %v", sub, keys, imm, ok)
		}
	}
	c := Claims{"sub": "repo:octo-org@123456/app@789012:environment:prod%3Aeu"}
	for k, v := range base {
		c[k] = v
	}
	if keys, imm, ok := c.Template(); !ok || keys != nil || !imm {
		t.Errorf("default immutable template: %v %v %v", keys, imm, ok)
	}
	c["sub"] = "something:else"
	if _, _, ok := c.Template(); ok {
		t.Error("a subject no template of the token's claims builds was matched")
	}
}

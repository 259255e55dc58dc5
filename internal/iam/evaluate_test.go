package iam

import "testing"

func mustParse(t *testing.T, doc string) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	return p
}

func TestEvaluateIdentity(t *testing.T) {
	repo := "arn:aws:ecr:us-east-1:111122223333:repository/team/app"
	push := mustParse(t, `{"Version":"2012-10-17","Statement":[
		{"Sid":"Auth","Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"},
		{"Sid":"Push","Effect":"Allow","Action":["ecr:Batch*","ecr:PutImage","ecr:?nitiateLayerUpload"],
		 "Resource":"arn:aws:ecr:us-east-1:111122223333:repository/team/*"}]}`)
	denyProd := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"ecr:*",
		"Resource":"arn:aws:ecr:*:111122223333:repository/team/app"}}`)
	notAction := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":"ecr:Delete*","NotResource":"arn:aws:ecr:*:*:repository/secret"}}`)
	withPrincipal := mustParse(t, `{"Statement":{"Effect":"Allow","Principal":"*","Action":"*"}}`)

	tests := []struct {
		name     string
		policies []*Policy
		action   string
		resource string
		want     Decision
	}{
		{"exact action, star resource", []*Policy{push}, "ecr:GetAuthorizationToken", "*", Allow},
		{"action match is case-insensitive", []*Policy{push}, "ECR:getauthorizationtoken", "*", Allow},
		{"prefix wildcard", []*Policy{push}, "ecr:BatchCheckLayerAvailability", repo, Allow},
		{"question-mark wildcard", []*Policy{push}, "ecr:InitiateLayerUpload", repo, Allow},
		{"unlisted action", []*Policy{push}, "ecr:DeleteRepository", repo, ImplicitDeny},
		{"resource is case-sensitive", []*Policy{push}, "ecr:PutImage", "arn:aws:ecr:us-east-1:111122223333:repository/Team/app", ImplicitDeny},
		{"resource in another account", []*Policy{push}, "ecr:PutImage", "arn:aws:ecr:us-east-1:444455556666:repository/team/app", ImplicitDeny},
		{"ARN resource does not match a resourceless action", []*Policy{push}, "ecr:PutImage", "*", ImplicitDeny},
		{"explicit deny overrides allow", []*Policy{push, denyProd}, "ecr:PutImage", repo, ExplicitDeny},
		{"deny elsewhere leaves allow", []*Policy{push, denyProd}, "ecr:PutImage", "arn:aws:ecr:us-east-1:111122223333:repository/team/web", Allow},
		{"NotAction allows the rest", []*Policy{notAction}, "ecr:PutImage", repo, Allow},
		{"NotAction excludes", []*Policy{notAction}, "ecr:DeleteRepository", repo, ImplicitDeny},
		{"NotResource excludes", []*Policy{notAction}, "ecr:PutImage", "arn:aws:ecr:us-east-1:111122223333:repository/secret", ImplicitDeny},
		{"principal statements do not apply to identity evaluation", []*Policy{withPrincipal}, "ecr:PutImage", repo, ImplicitDeny},
		{"nil policies are skipped", []*Policy{nil, push}, "ecr:PutImage", repo, Allow},
		{"no policies", nil, "ecr:PutImage", repo, ImplicitDeny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Request{Action: tc.action, Resource: tc.resource}
			if got := Decide(r, tc.policies...); got != tc.want {
				t.Fatalf("Decide = %v, want %v", got, tc.want)
			}
			if got := Allowed(r, tc.policies...); got != (tc.want == Allow) {
				t.Fatalf("Allowed = %v, want %v", got, tc.want == Allow)
			}
		})
	}
}

func TestEvaluatePrincipals(t *testing.T) {
	role := &Principal{Type: "AWS", ID: "arn:aws:iam::111122223333:role/ci", Account: "111122223333"}
	other := &Principal{Type: "AWS", ID: "arn:aws:iam::444455556666:role/ci", Account: "444455556666"}
	session := &Principal{Type: "AWS", ID: "arn:aws:sts::111122223333:assumed-role/ci/run-1", Account: "111122223333"}
	user := &Principal{Type: "AWS", ID: "arn:aws:iam::111122223333:user/alice", Account: "111122223333"}
	gh := &Principal{Type: "Federated", ID: "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"}
	google := &Principal{Type: "Federated", ID: "accounts.google.com"}

	pol := func(principal string) *Policy {
		return mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":`+principal+`,"Action":"ecr:*"}}`)
	}
	tests := []struct {
		name      string
		principal string
		who       *Principal
		want      bool
	}{
		{"star matches AWS", `"*"`, role, true},
		{"star matches federated", `"*"`, gh, true},
		{"AWS star matches all", `{"AWS":"*"}`, other, true},
		{"account id matches role of account", `{"AWS":"111122223333"}`, role, true},
		{"account id matches user of account", `{"AWS":"111122223333"}`, user, true},
		{"account id rejects other account", `{"AWS":"111122223333"}`, other, false},
		{"root ARN matches role of account", `{"AWS":"arn:aws:iam::111122223333:root"}`, role, true},
		{"root ARN rejects other account", `{"AWS":"arn:aws:iam::111122223333:root"}`, other, false},
		{"role ARN exact", `{"AWS":["arn:aws:iam::444455556666:role/x","arn:aws:iam::111122223333:role/ci"]}`, role, true},
		{"role ARN other role", `{"AWS":"arn:aws:iam::111122223333:role/deploy"}`, role, false},
		{"role ARN matches its sessions", `{"AWS":"arn:aws:iam::111122223333:role/ci"}`, session, true},
		{"role ARN does not match a user", `{"AWS":"arn:aws:iam::111122223333:role/alice"}`, user, false},
		{"AWS principal does not match federated", `{"AWS":"111122223333"}`, gh, false},
		{"federated ARN exact", `{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"}`, gh, true},
		{"federated other provider", `{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"}`, google, false},
		{"federated provider name", `{"Federated":"accounts.google.com"}`, google, true},
		{"federated does not match AWS", `{"Federated":"accounts.google.com"}`, role, false},
		{"service", `{"Service":"ecr.amazonaws.com"}`, &Principal{Type: "Service", ID: "ecr.amazonaws.com"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := pol(tc.principal).Evaluate(Request{Principal: tc.who, Action: "ecr:PutImage", Resource: "arn:aws:ecr:us-east-1:111122223333:repository/app"})
			if (got == Allow) != tc.want {
				t.Fatalf("got %v, want allow=%v", got, tc.want)
			}
		})
	}
}

func TestNotPrincipalAndDeny(t *testing.T) {
	p := mustParse(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"ecr:*"},
		{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:role/ci"},"Action":"ecr:PutImage"}]}`)
	ci := &Principal{Type: "AWS", ID: "arn:aws:iam::111122223333:role/ci", Account: "111122223333"}
	dev := &Principal{Type: "AWS", ID: "arn:aws:iam::111122223333:role/dev", Account: "111122223333"}
	if got := p.Evaluate(Request{Principal: ci, Action: "ecr:PutImage"}); got != Allow {
		t.Errorf("ci PutImage = %v", got)
	}
	if got := p.Evaluate(Request{Principal: dev, Action: "ecr:PutImage"}); got != ExplicitDeny {
		t.Errorf("dev PutImage = %v", got)
	}
	if got := p.Evaluate(Request{Principal: dev, Action: "ecr:BatchGetImage"}); got != Allow {
		t.Errorf("dev BatchGetImage = %v", got)
	}
	if got := p.Evaluate(Request{Action: "ecr:PutImage"}); got != ImplicitDeny {
		t.Errorf("identity evaluation of a resource policy = %v", got)
	}
	var nilPolicy *Policy
	if got := nilPolicy.Evaluate(Request{Action: "ecr:PutImage"}); got != ImplicitDeny {
		t.Errorf("nil policy = %v", got)
	}
}

func TestTrustPolicyGitHub(t *testing.T) {
	trust, err := ParseTrust([]byte(`{
	  "Version": "2012-10-17",
	  "Statement": [{
	    "Effect": "Allow",
	    "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
	    "Action": "sts:AssumeRoleWithWebIdentity",
	    "Condition": {
	      "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
	      "StringLike": {"token.actions.githubusercontent.com:sub": "repo:example/app:*"}
	    }
	  }]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	fed := &Principal{Type: "Federated", ID: "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"}
	for _, tc := range []struct {
		sub, action string
		want        Decision
	}{
		{"repo:example/app:ref:refs/heads/main", "sts:AssumeRoleWithWebIdentity", Allow},
		{"repo:Example/App:ref:refs/heads/main", "sts:AssumeRoleWithWebIdentity", ImplicitDeny},
		{"repo:example/app:environment:prod", "sts:AssumeRoleWithWebIdentity", Allow},
		{"repo:example/app:ref:refs/heads/main", "sts:AssumeRole", ImplicitDeny},
	} {
		got := trust.Evaluate(Request{Principal: fed, Action: tc.action, Resource: "arn:aws:iam::111122223333:role/ci",
			Context: map[string][]string{"token.actions.githubusercontent.com:aud": {"sts.amazonaws.com"},
				"Token.Actions.GitHubUserContent.com:Sub": {tc.sub}}})
		if got != tc.want {
			t.Errorf("%s %s = %v, want %v", tc.action, tc.sub, got, tc.want)
		}
	}
}

package iam

import (
	"fmt"
	"testing"
)

const (
	ghAud = "token.actions.githubusercontent.com:aud"
	ghSub = "token.actions.githubusercontent.com:sub"
)

// conditionPolicy wraps a Condition block in an Allow statement for AssumeRoleWithWebIdentity.
func conditionPolicy(t *testing.T, cond string) *Policy {
	t.Helper()
	doc := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
		"Action":"sts:AssumeRoleWithWebIdentity","Condition":%s}]}`, cond)
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse(%s): %v", cond, err)
	}
	return p
}

func TestConditions(t *testing.T) {
	fed := &Principal{Type: "Federated", ID: "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"}
	mainRef := "repo:example/app:ref:refs/heads/main"
	tests := []struct {
		name string
		cond string
		ctx  map[string][]string
		want bool
	}{
		{"StringEquals match", `{"StringEquals":{"` + ghAud + `":"sts.amazonaws.com"}}`,
			map[string][]string{ghAud: {"sts.amazonaws.com"}}, true},
		{"StringEquals mismatch", `{"StringEquals":{"` + ghAud + `":"sts.amazonaws.com"}}`,
			map[string][]string{ghAud: {"sigstore"}}, false},
		{"StringEquals key names are case-insensitive", `{"StringEquals":{"Token.Actions.GitHubUserContent.com:Sub":"` + mainRef + `"}}`,
			map[string][]string{"TOKEN.actions.githubusercontent.com:SUB": {mainRef}}, true},
		{"StringEquals values are case-sensitive", `{"StringEquals":{"` + ghSub + `":"repo:Example/App:ref:refs/heads/main"}}`,
			map[string][]string{ghSub: {mainRef}}, false},
		{"StringEquals treats * literally", `{"StringEquals":{"` + ghSub + `":"repo:example/app:*"}}`,
			map[string][]string{ghSub: {mainRef}}, false},
		{"StringLike trailing star", `{"StringLike":{"` + ghSub + `":"repo:example/app:*"}}`,
			map[string][]string{ghSub: {mainRef}}, true},
		{"StringLike star does not make a prefix of another repo match", `{"StringLike":{"` + ghSub + `":"repo:example/app:*"}}`,
			map[string][]string{ghSub: {"repo:example/app2:ref:refs/heads/main"}}, false},
		{"StringLike is case-sensitive", `{"StringLike":{"` + ghSub + `":"repo:Example/App:*"}}`,
			map[string][]string{ghSub: {mainRef}}, false},
		{"StringLike question mark is one character", `{"StringLike":{"` + ghSub + `":"repo:example/ap?:ref:refs/heads/main"}}`,
			map[string][]string{ghSub: {mainRef}}, true},
		{"StringLike question mark is not zero characters", `{"StringLike":{"` + ghSub + `":"repo:example/app?:ref:refs/heads/main"}}`,
			map[string][]string{ghSub: {mainRef}}, false},
		{"StringLike values are ORed", `{"StringLike":{"` + ghSub + `":["repo:other/x:*","repo:example/app:ref:refs/heads/*"]}}`,
			map[string][]string{ghSub: {mainRef}}, true},
		{"StringLike missing key", `{"StringLike":{"` + ghSub + `":"*"}}`, nil, false},
		{"StringNotEquals missing key holds", `{"StringNotEquals":{"` + ghSub + `":"repo:evil/x:*"}}`, nil, true},
		{"StringNotEquals equal value", `{"StringNotEquals":{"` + ghAud + `":"sts.amazonaws.com"}}`,
			map[string][]string{ghAud: {"sts.amazonaws.com"}}, false},
		{"StringNotEquals other value", `{"StringNotEquals":{"` + ghAud + `":"sts.amazonaws.com"}}`,
			map[string][]string{ghAud: {"other"}}, true},
		{"StringEqualsIgnoreCase", `{"StringEqualsIgnoreCase":{"` + ghSub + `":"REPO:EXAMPLE/APP:REF:REFS/HEADS/MAIN"}}`,
			map[string][]string{ghSub: {mainRef}}, true},
		{"StringNotEqualsIgnoreCase", `{"StringNotEqualsIgnoreCase":{"` + ghSub + `":"Repo:Example/App:ref:refs/heads/main"}}`,
			map[string][]string{ghSub: {mainRef}}, false},
		{"StringNotLike matching value", `{"StringNotLike":{"` + ghSub + `":"repo:example/*"}}`,
			map[string][]string{ghSub: {mainRef}}, false},
		{"StringNotLike missing key holds", `{"StringNotLike":{"` + ghSub + `":"repo:example/*"}}`, nil, true},
		{"Null true, key absent", `{"Null":{"aws:TokenIssueTime":"true"}}`, nil, true},
		{"Null true, key present", `{"Null":{"aws:TokenIssueTime":"true"}}`,
			map[string][]string{"aws:TokenIssueTime": {"2025-01-01T00:00:00Z"}}, false},
		{"Null false, key present", `{"Null":{"aws:TokenIssueTime":false}}`,
			map[string][]string{"aws:tokenissuetime": {"2025-01-01T00:00:00Z"}}, true},
		{"Null false, key absent", `{"Null":{"aws:TokenIssueTime":"false"}}`, nil, false},
		{"Null treats an empty value list as absent", `{"Null":{"aws:TagKeys":"true"}}`,
			map[string][]string{"aws:TagKeys": {}}, true},
		{"Bool string", `{"Bool":{"aws:SecureTransport":"true"}}`,
			map[string][]string{"aws:SecureTransport": {"true"}}, true},
		{"Bool JSON bool", `{"Bool":{"aws:SecureTransport":true}}`,
			map[string][]string{"aws:SecureTransport": {"TRUE"}}, true},
		{"Bool mismatch", `{"Bool":{"aws:SecureTransport":false}}`,
			map[string][]string{"aws:SecureTransport": {"true"}}, false},
		{"NumericLessThan holds", `{"NumericLessThan":{"sts:DurationSeconds":3600}}`,
			map[string][]string{"sts:DurationSeconds": {"900"}}, true},
		{"NumericLessThan fails", `{"NumericLessThan":{"sts:DurationSeconds":"3600"}}`,
			map[string][]string{"sts:DurationSeconds": {"7200"}}, false},
		{"NumericEquals 10 == 10.0", `{"NumericEquals":{"s3:max-keys":10}}`,
			map[string][]string{"s3:max-keys": {"10.0"}}, true},
		{"NumericGreaterThanEquals unparsable", `{"NumericGreaterThanEquals":{"s3:max-keys":10}}`,
			map[string][]string{"s3:max-keys": {"ten"}}, false},
		{"NumericNotEquals", `{"NumericNotEquals":{"s3:max-keys":10}}`,
			map[string][]string{"s3:max-keys": {"11"}}, true},
		{"DateLessThan holds", `{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}`,
			map[string][]string{"aws:CurrentTime": {"2025-06-01T12:00:00Z"}}, true},
		{"DateGreaterThan fails", `{"DateGreaterThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}`,
			map[string][]string{"aws:CurrentTime": {"2025-06-01T12:00:00Z"}}, false},
		{"DateGreaterThan epoch seconds", `{"DateGreaterThan":{"aws:EpochTime":1700000000}}`,
			map[string][]string{"aws:EpochTime": {"2025-06-01T12:00:00Z"}}, true},
		{"IfExists missing key holds", `{"StringEqualsIfExists":{"aws:RequestedRegion":"us-east-1"}}`, nil, true},
		{"IfExists present mismatch", `{"StringEqualsIfExists":{"aws:RequestedRegion":"us-east-1"}}`,
			map[string][]string{"aws:RequestedRegion": {"eu-west-1"}}, false},
		{"IfExists present match", `{"StringLikeIfExists":{"aws:RequestedRegion":"us-*"}}`,
			map[string][]string{"aws:RequestedRegion": {"us-west-2"}}, true},
		{"ForAnyValue:StringLike one of many", `{"ForAnyValue:StringLike":{"aws:TagKeys":["team-*"]}}`,
			map[string][]string{"aws:TagKeys": {"cost", "team-a"}}, true},
		{"ForAnyValue:StringLike none", `{"ForAnyValue:StringLike":{"aws:TagKeys":["team-*"]}}`,
			map[string][]string{"aws:TagKeys": {"cost", "owner"}}, false},
		{"ForAnyValue:StringLike missing key", `{"ForAnyValue:StringLike":{"aws:TagKeys":["team-*"]}}`, nil, false},
		{"ForAnyValue:StringLikeIfExists missing key", `{"ForAnyValue:StringLikeIfExists":{"aws:TagKeys":["team-*"]}}`, nil, true},
		{"ForAnyValue:StringNotEquals one differs", `{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["a","b"]}}`,
			map[string][]string{"aws:TagKeys": {"a", "c"}}, true},
		{"ForAllValues:StringEquals all in set", `{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b","c"]}}`,
			map[string][]string{"aws:TagKeys": {"a", "c"}}, true},
		{"ForAllValues:StringEquals one outside", `{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}`,
			map[string][]string{"aws:TagKeys": {"a", "z"}}, false},
		{"ForAllValues:StringEquals missing key holds", `{"ForAllValues:StringEquals":{"aws:TagKeys":["a"]}}`, nil, true},
		{"ForAllValues:StringNotLike", `{"ForAllValues:StringNotLike":{"aws:TagKeys":["secret*"]}}`,
			map[string][]string{"aws:TagKeys": {"a", "secretive"}}, false},
		{"single-valued operator on several values matches any", `{"StringEquals":{"aws:TagKeys":"b"}}`,
			map[string][]string{"aws:TagKeys": {"a", "b"}}, true},
		{"negated single-valued operator on several values", `{"StringNotEquals":{"aws:TagKeys":"b"}}`,
			map[string][]string{"aws:TagKeys": {"a", "b"}}, false},
		{"keys are ANDed", `{"StringEquals":{"` + ghAud + `":"sts.amazonaws.com","` + ghSub + `":"repo:example/app:ref:refs/heads/prod"}}`,
			map[string][]string{ghAud: {"sts.amazonaws.com"}, ghSub: {mainRef}}, false},
		{"operators are ANDed", `{"StringEquals":{"` + ghAud + `":"sts.amazonaws.com"},"StringLike":{"` + ghSub + `":"repo:example/app:*"}}`,
			map[string][]string{ghAud: {"sts.amazonaws.com"}, ghSub: {mainRef}}, true},
		{"operators are ANDed, one fails", `{"StringEquals":{"` + ghAud + `":"sts.amazonaws.com"},"StringLike":{"` + ghSub + `":"repo:other/*"}}`,
			map[string][]string{ghAud: {"sts.amazonaws.com"}, ghSub: {mainRef}}, false},
		{"ArnLike wildcard account", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/ci-*"}}`,
			map[string][]string{"aws:PrincipalArn": {"arn:aws:iam::111122223333:role/ci-push"}}, true},
		{"ArnLike wildcard stays inside its component", `{"ArnLike":{"aws:SourceArn":"arn:aws:ecr:*:111122223333:repository/app"}}`,
			map[string][]string{"aws:SourceArn": {"arn:aws:ecr:us-east-1:444455556666:111122223333:repository/app"}}, false},
		{"ArnLike short pattern is matched whole", `{"ArnLike":{"aws:SourceArn":"arn:aws:ecr:us-*:repository/app"}}`,
			map[string][]string{"aws:SourceArn": {"arn:aws:ecr:us-east-1:111122223333:repository/app"}}, true},
		{"ArnLike is case-sensitive", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/CI"}}`,
			map[string][]string{"aws:PrincipalArn": {"arn:aws:iam::111122223333:role/ci"}}, false},
		{"ArnEquals exact", `{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/ci"}}`,
			map[string][]string{"aws:PrincipalArn": {"arn:aws:iam::111122223333:role/ci"}}, true},
		{"ArnNotLike missing key holds", `{"ArnNotLike":{"aws:SourceArn":"arn:aws:ecr:*:*:repository/x"}}`, nil, true},
		{"IpAddress CIDR", `{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","192.0.2.0/24"]}}`,
			map[string][]string{"aws:SourceIp": {"192.0.2.7"}}, true},
		{"NotIpAddress", `{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}`,
			map[string][]string{"aws:SourceIp": {"127.0.0.1"}}, false},
		{"policy variable", `{"StringLike":{"` + ghSub + `":"repo:${aws:PrincipalTag/org}/*"}}`,
			map[string][]string{ghSub: {mainRef}, "aws:PrincipalTag/org": {"example"}}, true},
		{"policy variable value is literal", `{"StringLike":{"` + ghSub + `":"repo:${aws:PrincipalTag/org}:ref:refs/heads/main"}}`,
			map[string][]string{ghSub: {mainRef}, "aws:PrincipalTag/org": {"*"}}, false},
		{"policy variable missing", `{"StringLike":{"` + ghSub + `":"repo:${aws:PrincipalTag/org}/*"}}`,
			map[string][]string{ghSub: {mainRef}}, false},
		{"policy variable default", `{"StringLike":{"` + ghSub + `":"repo:${aws:PrincipalTag/org, 'example'}/*"}}`,
			map[string][]string{ghSub: {mainRef}}, true},
		{"escaped star", `{"StringLike":{"aws:x":"a${*}"}}`, map[string][]string{"aws:x": {"a*"}}, true},
		{"escaped star is literal", `{"StringLike":{"aws:x":"a${*}"}}`, map[string][]string{"aws:x": {"ab"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := conditionPolicy(t, tc.cond)
			got := p.Evaluate(Request{Principal: fed, Action: "sts:AssumeRoleWithWebIdentity", Resource: "*", Context: tc.ctx})
			if (got == Allow) != tc.want {
				t.Fatalf("cond %s ctx %v: got %v, want allow=%v", tc.cond, tc.ctx, got, tc.want)
			}
		})
	}
}

func TestVariablesNeedVersion2012(t *testing.T) {
	p, err := Parse([]byte(`{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*",
		"Condition":{"StringEquals":{"aws:x":"${aws:y}"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	r := Request{Action: "s3:GetObject", Resource: "*", Context: map[string][]string{"aws:x": {"${aws:y}"}, "aws:y": {"v"}}}
	if got := p.Evaluate(r); got != Allow {
		t.Fatalf("2008 policies compare ${...} literally: got %v", got)
	}
}

package federate

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/iam"
)

// TrustSpec says which tokens a role should admit.
type TrustSpec struct {
	Account string // the role's account (the OIDC provider lives there)

	// GitHub: repository OWNER/REPO and exactly one scope.
	GitHubRepo  string
	Branch      string
	Environment string
	PullRequest bool
	AnyRef      bool

	// Google: the service account's unique id (21 digits) — AWS compares it with azp.
	GoogleServiceAccountID string

	Audience string // default sts.amazonaws.com
}

var (
	ghRepoRe   = regexp.MustCompile(`^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$`)
	googleIDRe = regexp.MustCompile(`^[0-9]{15,25}$`)
	accountRe  = regexp.MustCompile(`^[0-9]{12}$`)
)

// Condition is one condition of a trust statement.
type Condition struct {
	Operator string
	Key      string
	Values   []string
}

// Statement is the trust statement the spec produces.
type Statement struct {
	Principal  string // Federated principal
	Conditions []Condition
}

// Statement validates the spec and returns the trust statement.
func (s TrustSpec) Statement() (Statement, error) {
	if s.Audience == "" {
		s.Audience = DefaultAudience
	}
	if !accountRe.MatchString(s.Account) {
		return Statement{}, fixable.New("--account %q must be the role's 12-digit AWS account id (or pass --role-arn)", s.Account)
	}
	switch {
	case s.GitHubRepo != "" && s.GoogleServiceAccountID != "":
		return Statement{}, fixable.New("choose one of --github-repo and --google-service-account-id")
	case s.GitHubRepo != "":
		if !ghRepoRe.MatchString(s.GitHubRepo) {
			return Statement{}, fixable.New("--github-repo %q must be OWNER/REPO", s.GitHubRepo)
		}
		n := 0
		for _, b := range []bool{s.Branch != "", s.Environment != "", s.PullRequest, s.AnyRef} {
			if b {
				n++
			}
		}
		if n != 1 {
			return Statement{}, fixable.New("choose exactly one of --branch, --environment, --pull-request, --any-ref (which jobs of %s may assume the role)", s.GitHubRepo)
		}
		// GitHub lower-cases nothing: sub carries the repository as GitHub spells it, and AWS compares case-sensitively.
		sub := "repo:" + s.GitHubRepo + ":"
		op := "StringEquals"
		switch {
		case s.Branch != "":
			sub += "ref:refs/heads/" + strings.TrimPrefix(s.Branch, "refs/heads/")
		case s.Environment != "":
			sub += "environment:" + s.Environment
		case s.PullRequest:
			sub += "pull_request"
		case s.AnyRef:
			sub += "*"
			op = "StringLike"
		}
		return Statement{
			Principal: "arn:aws:iam::" + s.Account + ":oidc-provider/" + GitHubProvider,
			Conditions: []Condition{
				{Operator: "StringEquals", Key: GitHubProvider + ":aud", Values: []string{s.Audience}},
				{Operator: op, Key: GitHubProvider + ":sub", Values: []string{sub}},
			},
		}, nil
	case s.GoogleServiceAccountID != "":
		if !googleIDRe.MatchString(s.GoogleServiceAccountID) {
			return Statement{}, fixable.New("--google-service-account-id %q must be the service account's numeric unique id "+
				"(gcloud iam service-accounts describe EMAIL --format='value(uniqueId)'), not its email", s.GoogleServiceAccountID)
		}
		return Statement{
			Principal: GoogleProvider,
			Conditions: []Condition{
				{Operator: "StringEquals", Key: GoogleProvider + ":aud", Values: []string{s.GoogleServiceAccountID}},
				{Operator: "StringEquals", Key: GoogleProvider + ":oaud", Values: []string{s.Audience}},
				{Operator: "StringEquals", Key: GoogleProvider + ":sub", Values: []string{s.GoogleServiceAccountID}},
			},
		}, nil
	}
	return Statement{}, fixable.New("pass --github-repo OWNER/REPO or --google-service-account-id ID")
}

// TrustPolicyJSON renders the IAM trust policy for the spec.
func (s TrustSpec) TrustPolicyJSON() ([]byte, error) {
	st, err := s.Statement()
	if err != nil {
		return nil, err
	}
	cond := map[string]map[string]any{}
	for _, c := range st.Conditions {
		if cond[c.Operator] == nil {
			cond[c.Operator] = map[string]any{}
		}
		cond[c.Operator][c.Key] = one(c.Values)
	}
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"Federated": st.Principal},
			"Action":    "sts:AssumeRoleWithWebIdentity",
			"Condition": cond,
		}},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// TrustPolicyTerraform renders the spec as an aws_iam_policy_document data source.
func (s TrustSpec) TrustPolicyTerraform(name string) (string, error) {
	st, err := s.Statement()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data \"aws_iam_policy_document\" %q {\n  statement {\n    effect  = \"Allow\"\n    actions = [\"sts:AssumeRoleWithWebIdentity\"]\n\n", name)
	fmt.Fprintf(&b, "    principals {\n      type        = \"Federated\"\n      identifiers = [%q]\n    }\n", st.Principal)
	for _, c := range st.Conditions {
		fmt.Fprintf(&b, "\n    condition {\n      test     = %q\n      variable = %q\n      values   = [%s]\n    }\n", c.Operator, c.Key, quoteList(c.Values))
	}
	b.WriteString("  }\n}\n")
	return b.String(), nil
}

// PushPolicyJSON is the least-privilege identity policy for pushing to repositories under prefix
// (creating them if missing) in account.
func PushPolicyJSON(account, prefix string) []byte {
	res := "arn:aws:ecr:*:" + account + ":repository/" + strings.TrimSuffix(prefix, "*") + "*"
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
			map[string]any{"Sid": "EcrPush", "Effect": "Allow", "Resource": res, "Action": []string{
				"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload", "ecr:CreateRepository",
				"ecr:DescribeImages", "ecr:DescribeRepositories", "ecr:GetDownloadUrlForLayer", "ecr:InitiateLayerUpload",
				"ecr:PutImage", "ecr:UploadLayerPart", "ecr:DescribeImageReplicationStatus",
			}},
		},
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return b
}

// ReplicationPolicyJSON is the identity policy for reading and merging the ci registry's replication
// configuration (ECR's registry-level actions take Resource "*").
func ReplicationPolicyJSON() []byte {
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{"Sid": "EcrReplication", "Effect": "Allow", "Resource": "*", "Action": []string{
				"ecr:DescribeRegistry", "ecr:PutReplicationConfiguration", "ecr:GetRegistryPolicy",
			}},
			// ECR checks these when it creates the service-linked role and replicates for the first time.
			map[string]any{"Sid": "EcrReplicationServiceRole", "Effect": "Allow", "Resource": "*", "Action": "iam:CreateServiceLinkedRole",
				"Condition": map[string]any{"StringEquals": map[string]any{"iam:AWSServiceName": "replication.ecr.amazonaws.com"}}},
		},
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return b
}

// Check is one condition evaluated against a token.
type Check struct {
	Condition Condition
	Actual    string
	OK        bool
}

// Explain evaluates each condition of the spec's trust statement against a token's claims.
func (s TrustSpec) Explain(c Claims) ([]Check, error) {
	st, err := s.Statement()
	if err != nil {
		return nil, err
	}
	keys := c.ConditionKeys()
	// Keys of the other provider do not exist for this token: AWS treats them as absent.
	var out []Check
	for _, cond := range st.Conditions {
		actual, present := lookupFold(keys, cond.Key)
		ok := false
		if present {
			doc, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
				"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Resource": "*",
				"Condition": map[string]any{cond.Operator: map[string]any{cond.Key: cond.Values}},
			}}})
			p, err := iam.Parse(doc)
			if err != nil {
				return nil, err
			}
			ok = p.Evaluate(iam.Request{Action: "sts:AssumeRoleWithWebIdentity", Resource: "*",
				Context: map[string][]string{cond.Key: {actual}}}) == iam.Allow
		}
		out = append(out, Check{Condition: cond, Actual: actual, OK: ok})
	}
	return out, nil
}

func lookupFold(m map[string]string, k string) (string, bool) {
	ks := make([]string, 0, len(m))
	for key := range m {
		ks = append(ks, key)
	}
	sort.Strings(ks)
	for _, key := range ks {
		if strings.EqualFold(key, k) {
			return m[key], true
		}
	}
	return "", false
}

func one(v []string) any {
	if len(v) == 1 {
		return v[0]
	}
	return v
}

func quoteList(v []string) string {
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

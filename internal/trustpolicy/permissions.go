package trustpolicy

import (
	"regexp"
	"strings"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// ecrRepositoryRe is ECR's repository name pattern (CreateRepository's repositoryName), 2-256 characters.
// (internal/cli, internal/push and internal/mirror each hold a copy; internal/ecr is to own it.)
var ecrRepositoryRe = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// PushActions are what ecrpush push calls on a repository (creating it when missing, and reading
// replication status).
var PushActions = []string{
	"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload", "ecr:CreateRepository",
	"ecr:DescribeImageReplicationStatus", "ecr:DescribeImages", "ecr:DescribeRepositories", "ecr:GetDownloadUrlForLayer",
	"ecr:InitiateLayerUpload", "ecr:PutImage", "ecr:UploadLayerPart",
}

// Push is the least-privilege identity policy for pushing to the named repositories, and to every
// repository under the prefixes, in account. A prefix P covers P itself and P/…, never Pother.
func Push(partition, account string, repositories, prefixes []string) (Document, error) {
	if partition == "" {
		partition = "aws"
	}
	if err := checkPartition(partition); err != nil {
		return Document{}, err
	}
	if !accountRe.MatchString(account) {
		return Document{}, fixable.New("--account %q must be the role's 12-digit AWS account id (or pass --role-arn)", account)
	}
	if len(repositories)+len(prefixes) == 0 {
		return Document{}, fixable.New("name the ECR repositories the role pushes to: --repository NAME (repeatable) or --repository-prefix P (P and everything under P/)")
	}
	base := "arn:" + partition + ":ecr:*:" + account + ":repository/"
	var res []string
	for _, r := range repositories {
		if len(r) < 2 || len(r) > 256 || !ecrRepositoryRe.MatchString(r) {
			return Document{}, fixable.New("--repository %q is not an ECR repository name (lower case, digits, . _ - and / between components)", r)
		}
		res = appendNew(res, base+r)
	}
	for _, p := range prefixes {
		if p == "*" {
			res = appendNew(res, base+"*")
			continue
		}
		p = strings.TrimSuffix(strings.TrimSuffix(p, "*"), "/")
		if len(p) < 2 || len(p) > 254 || !ecrRepositoryRe.MatchString(p) {
			return Document{}, fixable.New("--repository-prefix %q is not a repository name or namespace like team/app (it covers team/app and team/app/…; * alone is every repository)", p)
		}
		res = appendNew(res, base+p)
		res = appendNew(res, base+p+"/*")
	}
	return Document{Statements: []Statement{
		{Sid: "EcrLogin", Actions: []string{"ecr:GetAuthorizationToken"}, Resources: []string{"*"}},
		{Sid: "EcrPush", Actions: PushActions, Resources: res},
	}}, nil
}

// Replication is the identity policy for reading and merging the ci registry's replication
// configuration (ECR's registry-level actions take Resource "*").
func Replication() Document {
	return Document{Statements: []Statement{
		{Sid: "EcrReplication", Actions: []string{"ecr:DescribeRegistry", "ecr:PutReplicationConfiguration", "ecr:GetRegistryPolicy"}, Resources: []string{"*"}},
		// ECR checks this when it creates the service-linked role and replicates for the first time.
		{Sid: "EcrReplicationServiceRole", Actions: []string{"iam:CreateServiceLinkedRole"}, Resources: []string{"*"},
			Conditions: []Condition{{Operator: "StringEquals", Key: "iam:AWSServiceName", Values: []string{"replication.ecr.amazonaws.com"}}}},
	}}
}

package trustpolicy

import (
	"strings"

	"github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

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
	if !ecr.IsAccount(account) {
		return Document{}, fixable.New("--account %q must be the role's 12-digit AWS account id (or pass --role-arn)", account)
	}
	if len(repositories)+len(prefixes) == 0 {
		return Document{}, fixable.New("name the ECR repositories the role pushes to: --repository NAME (repeatable) or --repository-prefix P (P and everything under P/)")
	}
	base := "arn:" + partition + ":ecr:*:" + account + ":repository/"
	var res []string
	for _, r := range repositories {
		if err := ecr.CheckRepository("--repository", r); err != nil {
			return Document{}, err
		}
		res = appendNew(res, base+r)
	}
	for _, p := range prefixes {
		if p == "*" {
			res = appendNew(res, base+"*")
			continue
		}
		p = strings.TrimSuffix(strings.TrimSuffix(p, "*"), "/")
		if len(p) > 254 || ecr.CheckRepository("", p) != nil {
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

package trustpolicy

import (
	"strings"

	"github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Partitions whose IAM this package writes ARNs for.
var partitions = map[string]bool{"aws": true, "aws-cn": true, "aws-us-gov": true, "aws-iso": true, "aws-iso-b": true}

// DefaultAudience is the audience of the IAM OIDC provider's client ID list AWS documents for
// a partition: sts.amazonaws.com, and sts.amazonaws.com.cn in the China regions.
func DefaultAudience(partition string) string {
	if partition == "aws-cn" {
		return "sts.amazonaws.com.cn"
	}
	return "sts.amazonaws.com"
}

// PartitionOfRegion is the partition a region belongs to (the SDK's endpoint metadata, internal/ecr).
func PartitionOfRegion(region string) string { return ecr.PartitionOf(region) }

// PartitionOfARN is the partition an ARN names ("" when it is not an ARN).
func PartitionOfARN(arn string) string {
	parts := strings.SplitN(arn, ":", 3)
	if len(parts) < 3 || parts[0] != "arn" {
		return ""
	}
	return parts[1]
}

func checkPartition(p string) error {
	if !partitions[p] {
		return fixable.New("--partition %q is not an AWS partition: use aws, aws-cn or aws-us-gov", p)
	}
	return nil
}

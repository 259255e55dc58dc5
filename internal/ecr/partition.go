package ecr

import (
	"regexp"
	"slices"
	"sync"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// partition is one AWS partition as the SDK's endpoint metadata describes it (regions_gen.go).
type partition struct {
	ID          string // aws, aws-cn, aws-us-gov, …
	DNSSuffix   string
	RegionRegex string
	Regions     []string
}

// regionRegexes compiles the partitions' patterns on first use, not at start-up: most commands never
// look at a region.
var regionRegexes = sync.OnceValue(func() []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(partitions))
	for i, p := range partitions {
		out[i] = regexp.MustCompile(p.RegionRegex)
	}
	return out
})

// lookup finds region's partition: by the SDK's list of regions, else by the partition's region pattern
// (known reports whether the region itself is listed).
func lookup(region string) (p *partition, known bool) {
	for i := range partitions {
		if slices.Contains(partitions[i].Regions, region) {
			return &partitions[i], true
		}
	}
	for i, re := range regionRegexes() {
		if re.MatchString(region) {
			return &partitions[i], false
		}
	}
	return nil, false
}

// PartitionOf is the partition ID of region ("aws" when nothing matches, as the SDK's endpoint rules do).
func PartitionOf(region string) string {
	if p, _ := lookup(region); p != nil {
		return p.ID
	}
	return "aws"
}

// CheckRegion refuses a region that the SDK we ship does not know, with one line saying what to write.
// A name that matches a partition's pattern but is not listed is refused too: a typo such as us-east-3
// would otherwise be planned, and fail only when its first API call cannot resolve.
func CheckRegion(flag, region string) error {
	p, known := lookup(region)
	switch {
	case known:
		return nil
	case p != nil:
		return fixable.New("%s %q is not an AWS region known to aws-sdk-go-v2 %s (partition %s: %s): check the spelling", flag, region, sdkVersion, p.ID, closest(region, p.Regions))
	}
	return fixable.New("%s %q is not an AWS region name like us-east-1 or eu-west-1", flag, region)
}

// SamePartition refuses a destination region outside the ci registry's partition: ECR replicates and
// IAM trusts only within one partition.
func SamePartition(flag, ciRegion, region string) error {
	a, b := PartitionOf(ciRegion), PartitionOf(region)
	if a != b {
		return fixable.New("%s %s is in the %s partition but the ci registry (%s) is in %s: ECR cannot replicate across partitions; push there with its own role instead", flag, region, b, ciRegion, a)
	}
	return nil
}

// closest names the listed regions that share region's prefix, as a hint.
func closest(region string, regions []string) string {
	prefix := region
	for i := len(region) - 1; i > 0; i-- {
		if region[i] == '-' {
			prefix = region[:i+1]
			break
		}
	}
	var near []string
	for _, r := range regions {
		if len(r) >= len(prefix) && r[:len(prefix)] == prefix {
			near = append(near, r)
		}
	}
	if len(near) == 0 {
		return "no listed region starts " + prefix
	}
	return "did you mean " + joinOr(near) + "?"
}

func joinOr(s []string) string {
	switch len(s) {
	case 1:
		return s[0]
	case 2:
		return s[0] + " or " + s[1]
	}
	out := ""
	for i, v := range s {
		switch {
		case i == len(s)-1:
			out += ", or " + v
		case i > 0:
			out += ", " + v
		default:
			out = v
		}
	}
	return out
}

package replicate

import (
	"fmt"
	"regexp"
	"strings"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Destination is one registry an image goes to: an account in a region, and, for copying, the role
// whose credentials write there ("" in the ci account: the session itself).
type Destination struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	RoleARN string `json:"roleArn,omitempty"`
}

// String is ACCOUNT:REGION.
func (d Destination) String() string { return d.Account + ":" + d.Region }

// Host is the destination's registry host name as ECR names it.
func (d Destination) Host() string { return RegistryHost(d.Account, d.Region) }

// RegistryHost is ECR's host name for an account's registry in a region.
func RegistryHost(account, region string) string { return ecrx.RegistryHost(account, region) }

var (
	// startRe is how every destination spec begins; a comma-separated piece that does not is the rest
	// of a role ARN (role names may hold commas).
	startRe = regexp.MustCompile(`^\s*([0-9]{12}:)?[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]\s*(=|$)`)
)

const destinationShape = "ACCOUNT:REGION (e.g. 444455556666:eu-west-1), REGION for the ci account, or ACCOUNT:REGION=ROLE_ARN"

// ParseDestinations reads --replicate-to values: each ACCOUNT:REGION or REGION (the ci account), comma-separated
// or repeated, optionally ACCOUNT:REGION=ROLE_ARN naming the role that writes there (copy mode and the fallback).
// roleName (--destination-role-name), when set, names the role in every other account without an explicit ARN.
// Duplicates are removed (first wins, an explicit role ARN is kept); the ci registry itself (ciAccount in
// ciRegion) is refused, as ECR refuses it.
func ParseDestinations(specs []string, ciAccount, ciRegion, roleName string) ([]Destination, error) {
	if roleName != "" {
		arn := "arn:aws:iam::" + ciAccount + ":role/" + roleName
		if err := federate.ValidateRoleARN(arn); err != nil {
			return nil, fixable.New("--destination-role-name %q is not a role name (letters, digits and +=,.@_- with optional /path/)", roleName)
		}
	}
	var out []Destination
	index := map[string]int{}
	explicit := map[string]bool{}
	for _, spec := range specs {
		for _, piece := range splitSpecs(spec) {
			d, hasRole, err := parseOne(piece, ciAccount, roleName)
			if err != nil {
				return nil, err
			}
			if ecrx.CheckRegion("", ciRegion) == nil {
				// The ci region is known once flags or federation name it; syntax checks pass a placeholder.
				if err := ecrx.SamePartition(fmt.Sprintf("--replicate-to %q:", piece), ciRegion, d.Region); err != nil {
					return nil, err
				}
			}
			if d.Account == ciAccount && d.Region == ciRegion {
				return nil, fixable.New("--replicate-to %q is the ci registry itself (%s in %s), which the image is pushed to: list only other regions or accounts", piece, ciAccount, ciRegion)
			}
			key := d.String()
			i, dup := index[key]
			switch {
			case !dup:
				index[key], explicit[key] = len(out), hasRole
				out = append(out, d)
			case hasRole && explicit[key] && out[i].RoleARN != d.RoleARN:
				return nil, fixable.New("--replicate-to names %s twice with different roles (%s and %s): keep one", key, out[i].RoleARN, d.RoleARN)
			case hasRole:
				out[i].RoleARN, explicit[key] = d.RoleARN, true
			}
		}
	}
	return out, nil
}

// splitSpecs splits on commas, rejoining pieces that continue a role ARN.
func splitSpecs(spec string) []string {
	var out []string
	for _, p := range strings.Split(spec, ",") {
		if len(out) > 0 && strings.Contains(out[len(out)-1], "=") && strings.TrimSpace(p) != "" && !startRe.MatchString(p) {
			out[len(out)-1] += "," + p
			continue
		}
		out = append(out, p)
	}
	var clean []string
	for _, p := range out {
		if p = strings.TrimSpace(p); p != "" {
			clean = append(clean, p)
		}
	}
	return clean
}

func parseOne(piece, ciAccount, roleName string) (Destination, bool, error) {
	loc, role, hasRole := strings.Cut(piece, "=")
	loc, role = strings.TrimSpace(loc), strings.TrimSpace(role)
	var d Destination
	if acct, region, ok := strings.Cut(loc, ":"); ok {
		d.Account, d.Region = acct, region
	} else {
		d.Account, d.Region = ciAccount, loc
	}
	if !ecrx.IsAccount(d.Account) {
		return Destination{}, false, fixable.New("--replicate-to %q: account %q is not 12 digits; use %s", piece, d.Account, destinationShape)
	}
	if err := ecrx.CheckRegion("region", d.Region); err != nil {
		return Destination{}, false, fixable.New("--replicate-to %q: %v; use %s", piece, err, destinationShape)
	}
	switch {
	case hasRole:
		if err := federate.ValidateRoleARN(role); err != nil {
			return Destination{}, false, fixable.New("--replicate-to %q: %q is not an IAM role ARN like arn:aws:iam::%s:role/ecrpush-deploy", piece, role, d.Account)
		}
		if acct := roleAccount(role); acct != d.Account {
			return Destination{}, false, fixable.New("--replicate-to %q: the role is in account %s but the registry is in %s; name a role in %s (ECR writes need the registry's own account)", piece, acct, d.Account, d.Account)
		}
		d.RoleARN = role
	case roleName != "" && d.Account != ciAccount:
		d.RoleARN = "arn:aws:iam::" + d.Account + ":role/" + roleName
	}
	return d, hasRole, nil
}

// roleAccount is the account field of a role ARN.
func roleAccount(roleARN string) string {
	parts := strings.SplitN(roleARN, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// Accounts lists the distinct accounts of dests in order.
func Accounts(dests []Destination) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range dests {
		if !seen[d.Account] {
			seen[d.Account] = true
			out = append(out, d.Account)
		}
	}
	return out
}

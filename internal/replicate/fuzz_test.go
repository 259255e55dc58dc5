package replicate_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/replicate"
)

// FuzzParseDestinations parses arbitrary --replicate-to values (comma-separated, repeated, with
// role ARNs that may hold commas) and --destination-role-name: no panic, every refusal fixable, and
// what parses is a list of distinct, well-formed destinations other than the ci registry, each
// role in its destination's own account.
func FuzzParseDestinations(f *testing.F) {
	for _, s := range []string{
		"444455556666:us-east-1,777788889999:eu-west-1", "eu-west-1", "444455556666:us-east-1=arn:aws:iam::444455556666:role/a,b",
		"444455556666:us-east-1=arn:aws:iam::444455556666:role/x, 444455556666:us-east-1", " ,, ", "111122223333:us-east-1",
		"444455556666:us-gov-west-1", "prod:us-east-1", "=", ":", "444455556666:us-east-1=arn:aws:iam::777788889999:role/x",
		"444455556666:cn-north-1=arn:aws-cn:iam::444455556666:role/r", "\n444455556666:eu-west-1\n",
	} {
		f.Add(s, "", "ecrpush-deploy")
		f.Add(s, "us-east-1,eu-west-1", "")
	}
	account := regexp.MustCompile(`^[0-9]{12}$`)
	region := regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$`)
	f.Fuzz(func(t *testing.T, spec, more, roleName string) {
		specs := []string{spec}
		if more != "" {
			specs = append(specs, more)
		}
		ds, err := replicate.ParseDestinations(specs, "111122223333", "us-east-1", roleName)
		if err != nil {
			if !fixable.Is(err) {
				t.Fatalf("%q: %v is not a fixable error", specs, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") && !strings.ContainsAny(spec+more, "\n\r") {
				t.Fatalf("%q: error spans lines: %q", specs, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, d := range ds {
			if !account.MatchString(d.Account) || !region.MatchString(d.Region) {
				t.Fatalf("%q: destination %+v is malformed", specs, d)
			}
			if d.Account == "111122223333" && d.Region == "us-east-1" {
				t.Fatalf("%q: the ci registry itself is a destination", specs)
			}
			if seen[d.String()] {
				t.Fatalf("%q: %s listed twice", specs, d)
			}
			seen[d.String()] = true
			if d.RoleARN != "" {
				if err := federate.ValidateRoleARN(d.RoleARN); err != nil {
					t.Fatalf("%q: role of %s: %v", specs, d, err)
				}
				if !strings.Contains(d.RoleARN, "::"+d.Account+":role/") {
					t.Fatalf("%q: role %s is not in %s", specs, d.RoleARN, d.Account)
				}
			}
			if d.Host() == "" {
				t.Fatalf("%q: %s has no host", specs, d)
			}
		}
	})
}

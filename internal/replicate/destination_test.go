package replicate

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

const (
	ci      = "111122223333"
	prod    = "444455556666"
	staging = "777788889999"
)

func TestParseDestinations(t *testing.T) {
	deploy := func(acct string) string { return "arn:aws:iam::" + acct + ":role/ecrpush-deploy" }
	cases := []struct {
		name     string
		specs    []string
		roleName string
		want     []Destination
		err      []string // substrings of the error
	}{
		{"account and region", []string{prod + ":eu-west-1"}, "", []Destination{{Account: prod, Region: "eu-west-1"}}, nil},
		{"bare region is the ci account", []string{"eu-west-1"}, "", []Destination{{Account: ci, Region: "eu-west-1"}}, nil},
		{"comma separated and repeated, spaces", []string{prod + ":us-east-1, " + prod + ":eu-west-1", staging + ":us-east-1,"}, "",
			[]Destination{{Account: prod, Region: "us-east-1"}, {Account: prod, Region: "eu-west-1"}, {Account: staging, Region: "us-east-1"}}, nil},
		{"duplicates removed", []string{prod + ":us-east-1", prod + ":us-east-1," + prod + ":us-east-1"}, "",
			[]Destination{{Account: prod, Region: "us-east-1"}}, nil},
		{"role name for other accounts only", []string{prod + ":us-east-1", "eu-west-1"}, "ecrpush-deploy",
			[]Destination{{Account: prod, Region: "us-east-1", RoleARN: deploy(prod)}, {Account: ci, Region: "eu-west-1"}}, nil},
		{"explicit role arn", []string{prod + ":us-east-1=arn:aws:iam::" + prod + ":role/copy"}, "ecrpush-deploy",
			[]Destination{{Account: prod, Region: "us-east-1", RoleARN: "arn:aws:iam::" + prod + ":role/copy"}}, nil},
		{"explicit role wins over a duplicate", []string{prod + ":us-east-1", prod + ":us-east-1=arn:aws:iam::" + prod + ":role/copy"}, "ecrpush-deploy",
			[]Destination{{Account: prod, Region: "us-east-1", RoleARN: "arn:aws:iam::" + prod + ":role/copy"}}, nil},
		{"role name with a comma", []string{prod + ":us-east-1=arn:aws:iam::" + prod + ":role/a,b," + staging + ":eu-west-1"}, "",
			[]Destination{{Account: prod, Region: "us-east-1", RoleARN: "arn:aws:iam::" + prod + ":role/a,b"}, {Account: staging, Region: "eu-west-1"}}, nil},
		{"ci registry refused", []string{"us-east-1"}, "", nil, []string{`"us-east-1"`, "ci registry itself"}},
		{"ci registry refused with account", []string{ci + ":us-east-1"}, "", nil, []string{"ci registry itself"}},
		{"short account", []string{"4444:us-east-1"}, "", nil, []string{`"4444:us-east-1"`, "12 digits", "ACCOUNT:REGION"}},
		{"bad region", []string{prod + ":useast1"}, "", nil, []string{`"useast1"`, "region name", "ACCOUNT:REGION"}},
		{"region and account swapped", []string{"eu-west-1:" + prod}, "", nil, []string{"12 digits"}},
		{"bad role arn", []string{prod + ":us-east-1=ecrpush-deploy"}, "", nil, []string{"not an IAM role ARN"}},
		{"role in another account", []string{prod + ":us-east-1=arn:aws:iam::" + staging + ":role/x"}, "", nil, []string{"role is in account " + staging}},
		{"conflicting roles", []string{prod + ":us-east-1=arn:aws:iam::" + prod + ":role/a", prod + ":us-east-1=arn:aws:iam::" + prod + ":role/b"}, "", nil, []string{"twice with different roles"}},
		{"bad role name", []string{prod + ":us-east-1"}, "bad role!", nil, []string{"--destination-role-name"}},
		{"empty", nil, "", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDestinations(tc.specs, ci, "us-east-1", tc.roleName)
			if tc.err != nil {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				if !fixable.Is(err) {
					t.Errorf("error is not fixable: %v", err)
				}
				for _, w := range tc.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

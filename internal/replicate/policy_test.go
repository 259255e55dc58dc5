package replicate

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMergePolicy(t *testing.T) {
	d := dest(prod, "us-east-1")
	ours := string(RequiredPolicy(ci, d))
	other := `{"Version":"2012-10-17","Statement":[{"Sid":"PullThrough","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + prod + `:root"},"Action":"ecr:BatchImportUpstreamImage","Resource":"*"}]}`
	cases := []struct {
		name     string
		existing string
		changed  bool
		keep     []string // Sids that must survive
	}{
		{"none", "", true, nil},
		{"ours already", ours, false, nil},
		{"other statements kept", other, true, []string{"PullThrough"}},
		{"single statement object", `{"Version":"2012-10-17","Statement":{"Sid":"One","Effect":"Allow","Principal":{"AWS":"*"},"Action":"ecr:BatchImportUpstreamImage","Resource":"*"}}`, true, []string{"One"}},
		{"already granted by ecr:*", `{"Version":"2012-10-17","Statement":[{"Sid":"All","Effect":"Allow","Principal":{"AWS":"` + ci + `"},"Action":"ecr:*","Resource":"*"}]}`, false, []string{"All"}},
		{"granted across two statements", `{"Version":"2012-10-17","Statement":[` +
			`{"Sid":"R","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::` + ci + `:root"]},"Action":["ecr:ReplicateImage"],"Resource":"arn:aws:ecr:*:` + prod + `:repository/*"},` +
			`{"Sid":"C","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + ci + `:root"},"Action":"ecr:CreateRepository","Resource":["*"]}]}`, false, []string{"R", "C"}},
		{"a condition is not a grant", `{"Version":"2012-10-17","Statement":[{"Sid":"Cond","Effect":"Allow","Principal":{"AWS":"` + ci + `"},"Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/x":"y"}}}]}`, true, []string{"Cond"}},
		{"a narrower resource is not a grant", `{"Version":"2012-10-17","Statement":[{"Sid":"Team","Effect":"Allow","Principal":{"AWS":"` + ci + `"},"Action":"ecr:*","Resource":"arn:aws:ecr:us-east-1:` + prod + `:repository/team/*"}]}`, true, []string{"Team"}},
		{"another account is not a grant", `{"Version":"2012-10-17","Statement":[{"Sid":"Else","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + staging + `:root"},"Action":"ecr:*","Resource":"*"}]}`, true, []string{"Else"}},
		{"a stale statement of ours is replaced", strings.Replace(ours, "ecr:CreateRepository", "ecr:ReplicateImage", 1), true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, changed, err := MergePolicy(tc.existing, ci, d)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.changed {
				t.Errorf("changed %v, want %v\n%s", changed, tc.changed, got)
			}
			if !changed && got != tc.existing {
				t.Error("unchanged policy was rewritten")
			}
			var doc struct {
				Statement []map[string]any
			}
			if err := json.Unmarshal([]byte(got), &doc); err != nil {
				t.Fatalf("merged policy is not JSON with a Statement list: %v\n%s", err, got)
			}
			sids := map[string]int{}
			for _, st := range doc.Statement {
				s, _ := st["Sid"].(string)
				sids[s]++
			}
			for _, k := range tc.keep {
				if sids[k] != 1 {
					t.Errorf("statement %s lost or duplicated:\n%s", k, got)
				}
			}
			if changed && sids[StatementSid(ci)] != 1 {
				t.Errorf("our statement appears %d times:\n%s", sids[StatementSid(ci)], got)
			}
			// Merging again is a no-op.
			if again, ch, _ := MergePolicy(got, ci, d); ch || again != got {
				t.Errorf("second merge changed the policy:\n%s", again)
			}
		})
	}
	if _, _, err := MergePolicy("not json", ci, d); err == nil {
		t.Error("a broken policy merged")
	}
}

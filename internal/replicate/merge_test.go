package replicate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

func cfgJSON(t *testing.T, s string) *types.ReplicationConfiguration {
	t.Helper()
	c, err := ParseConfigJSON([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func dest(acct, region string) Destination { return Destination{Account: acct, Region: region} }

func rule(filter string, dests ...string) string {
	var ds []string
	for _, d := range dests {
		a, r, _ := strings.Cut(d, ":")
		ds = append(ds, fmt.Sprintf(`{"region":%q,"registryId":%q}`, r, a))
	}
	f := ""
	if filter != "" {
		f = fmt.Sprintf(`,"repositoryFilters":[{"filter":%q,"filterType":"PREFIX_MATCH"}]`, filter)
	}
	return `{"destinations":[` + strings.Join(ds, ",") + `]` + f + `}`
}

func rules(rs ...string) string { return `{"rules":[` + strings.Join(rs, ",") + `]}` }

func TestMerge(t *testing.T) {
	p1, p2, s1 := prod+":us-east-1", prod+":eu-west-1", staging+":us-east-1"
	all := []Destination{dest(prod, "us-east-1"), dest(prod, "eu-west-1"), dest(staging, "us-east-1")}
	many := func(n int) string {
		var rs []string
		for i := 0; i < n; i++ {
			rs = append(rs, rule(fmt.Sprintf("other%d/", i), s1))
		}
		return rules(rs...)
	}
	manyDests := func(n int) []Destination {
		var ds []Destination
		for i := 0; i < n; i++ {
			ds = append(ds, dest(fmt.Sprintf("1000000000%02d", i), "us-east-1"))
		}
		return ds
	}
	cases := []struct {
		name    string
		current string // "" = nil
		prefix  string
		dests   []Destination
		want    string
		changed bool
		err     []string
	}{
		{"empty configuration gets a rule", "", "team/app", all, rules(rule("team/app", p1, p2, s1)), true, nil},
		{"already covered by an exact rule", rules(rule("team/app", p1, p2, s1)), "team/app", all, rules(rule("team/app", p1, p2, s1)), false, nil},
		{"covered by a shorter prefix", rules(rule("team/", p1, p2, s1)), "team/app", all, rules(rule("team/", p1, p2, s1)), false, nil},
		{"covered by a rule without filters", rules(rule("", p1, p2, s1)), "team/app", all, rules(rule("", p1, p2, s1)), false, nil},
		{"covered across rules", rules(rule("team/", p1), rule("", p2, s1)), "team/app", all, rules(rule("team/", p1), rule("", p2, s1)), false, nil},
		{"a longer prefix does not cover; its rule, with exactly these destinations, gains the filter", rules(rule("team/app-x", p1, p2, s1)), "team/app", all,
			`{"rules":[{"destinations":[` + dj(p1, p2, s1) + `],"repositoryFilters":[` + fj("team/app-x") + `,` + fj("team/app") + `]}]}`, true, nil},
		{"a rule with other destinations is not touched", rules(rule("other/", p1, p2)), "team/app", all,
			rules(rule("other/", p1, p2), rule("team/app", p1, p2, s1)), true, nil},
		{"the rule with exactly the missing destinations gains the filter", rules(rule("team/", p1), rule("zzz/", p2, s1)), "team/app", all,
			`{"rules":[` + rule("team/", p1) + `,{"destinations":[` + dj(p2, s1) + `],"repositoryFilters":[` + fj("zzz/") + `,` + fj("team/app") + `]}]}`, true, nil},
		{"a rule already at 100 filters is not extended", rules(ruleN(100, p1, p2, s1)), "team/app", all,
			rules(ruleN(100, p1, p2, s1), rule("team/app", p1, p2, s1)), true, nil},
		{"missing destinations join the exact rule", rules(rule("other/", s1), rule("team/app", p1)), "team/app", all,
			rules(rule("other/", s1), rule("team/app", p1, p2, s1)), true, nil},
		{"only the missing ones are added", rules(rule("team/", p1), rule("zzz/", s1)), "team/app", all,
			rules(rule("team/", p1), rule("zzz/", s1), rule("team/app", p2, s1)), true, nil},
		{"ten rules, but one has exactly these destinations", many(9)[:len(many(9))-2] + "," + rule("x9/", p1, p2, s1) + "]}", "team/app", all, "ok", true, nil},
		{"a rule with more filters is left alone", `{"rules":[{"destinations":[{"region":"us-east-1","registryId":"` + prod + `"}],"repositoryFilters":[{"filter":"team/app","filterType":"PREFIX_MATCH"},{"filter":"x1","filterType":"PREFIX_MATCH"}]}]}`,
			"team/app", []Destination{dest(staging, "us-east-1")},
			`{"rules":[{"destinations":[{"region":"us-east-1","registryId":"` + prod + `"}],"repositoryFilters":[{"filter":"team/app","filterType":"PREFIX_MATCH"},{"filter":"x1","filterType":"PREFIX_MATCH"}]},` + rule("team/app", s1) + `]}`, true, nil},
		{"empty prefix means every repository", rules(rule("team/", p1)), "", all, rules(rule("team/", p1), rule("", p1, p2, s1)), true, nil},
		{"no destinations", rules(rule("x1", p1)), "team/app", nil, rules(rule("x1", p1)), false, nil},
		{"ten rules and a new one refused", many(10), "team/app", all, "", false, []string{"10 replication rules", "ECR's maximum", "nothing was written"}},
		{"ten rules but the exact rule exists", many(9)[:len(many(9))-2] + "," + rule("team/app", p1) + "]}", "team/app", all, "ok", true, nil},
		{"25 destinations per rule", rules(rule("team/app", p1)), "team/app", manyDests(25), "", false, []string{"26 destinations", "25 per rule", "nothing was written"}},
		{"25 unique destinations", rules(rule("x1", destStrings(manyDests(20))...)), "team/app", manyDests(30)[20:], "", false, []string{"distinct destinations", "nothing was written"}},
		{"bad prefix", "", "Team/App", all, "", false, []string{`"Team/App"`, "--replication-prefix"}},
		{"one-letter prefix", "", "t", all, "", false, []string{"2-256"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cur *types.ReplicationConfiguration
			if tc.current != "" {
				cur = cfgJSON(t, tc.current)
			}
			before := string(ConfigJSON(cur))
			got, changed, err := Merge(cur, tc.prefix, tc.dests)
			if string(ConfigJSON(cur)) != before {
				t.Fatal("Merge modified its input")
			}
			if tc.err != nil {
				if err == nil || !fixable.Is(err) {
					t.Fatalf("err %v, want a fixable error", err)
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
			if changed != tc.changed {
				t.Errorf("changed %v, want %v", changed, tc.changed)
			}
			if tc.want == "ok" {
				return
			}
			if want := string(ConfigJSON(cfgJSON(t, tc.want))); string(ConfigJSON(got)) != want {
				t.Errorf("got\n%s\nwant\n%s", ConfigJSON(got), want)
			}
			for _, d := range tc.dests {
				if !Covered(got, tc.prefix, d) {
					t.Errorf("%s not covered after the merge", d)
				}
			}
		})
	}
}

func dj(ds ...string) string {
	var out []string
	for _, d := range ds {
		a, r, _ := strings.Cut(d, ":")
		out = append(out, fmt.Sprintf(`{"region":%q,"registryId":%q}`, r, a))
	}
	return strings.Join(out, ",")
}

func fj(f string) string { return fmt.Sprintf(`{"filter":%q,"filterType":"PREFIX_MATCH"}`, f) }

// ruleN is a rule with n filters r0/ … r(n-1)/.
func ruleN(n int, dests ...string) string {
	var fs []string
	for i := range n {
		fs = append(fs, fj(fmt.Sprintf("r%d/", i)))
	}
	return `{"destinations":[` + dj(dests...) + `],"repositoryFilters":[` + strings.Join(fs, ",") + `]}`
}

// Twelve repositories configured one after another with the same destinations share one rule.
func TestMergeManyRepositoriesShareOneRule(t *testing.T) {
	all := []Destination{dest(prod, "us-east-1"), dest(prod, "eu-west-1"), dest(staging, "us-east-1"), dest(staging, "eu-west-1")}
	cfg := cfgJSON(t, rules(rule("legacy/", staging+":us-east-1")))
	for i := range 12 {
		prefix := fmt.Sprintf("team%02d/app", i) // no name a prefix of another: ECR filters match prefixes
		got, ch, err := MergeRule(cfg, prefix, all)
		if err != nil {
			t.Fatalf("repository %d: %v", i+1, err)
		}
		want := RuleAddFilter
		if i == 0 {
			want = RuleNew
		}
		if ch.Kind != want || ch.Rule != 2 || ch.Filters != i+1 {
			t.Fatalf("repository %d: %+v, want %s of rule 2 with %d filters", i+1, ch, want, i+1)
		}
		if !strings.Contains(ch.Text(prefix), "rule 2") {
			t.Errorf("text %q", ch.Text(prefix))
		}
		cfg = got
	}
	if len(cfg.Rules) != 2 || len(cfg.Rules[1].RepositoryFilters) != 12 || len(cfg.Rules[0].RepositoryFilters) != 1 {
		t.Fatalf("after 12 repositories:\n%s", ConfigJSON(cfg))
	}
}

func destStrings(ds []Destination) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

func TestMergeKeepsOtherRulesExactly(t *testing.T) {
	// Nil and empty filter lists differ on the wire; a clone must keep them apart.
	cur := &types.ReplicationConfiguration{Rules: []types.ReplicationRule{
		{Destinations: []types.ReplicationDestination{{Region: aws.String("eu-west-1"), RegistryId: aws.String(prod)}}},
		{Destinations: []types.ReplicationDestination{{Region: aws.String("us-east-1"), RegistryId: aws.String(staging)}},
			RepositoryFilters: []types.RepositoryFilter{{Filter: aws.String("zz"), FilterType: types.RepositoryFilterTypePrefixMatch}}},
	}}
	got, changed, err := Merge(cur, "team/app", []Destination{dest(staging, "eu-west-1")})
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	if len(got.Rules) != 3 || got.Rules[0].RepositoryFilters != nil || len(got.Rules[1].RepositoryFilters) != 1 {
		t.Fatalf("rules rewritten: %s", ConfigJSON(got))
	}
	got.Rules[1].RepositoryFilters[0].Filter = aws.String("changed")
	if aws.ToString(cur.Rules[1].RepositoryFilters[0].Filter) != "zz" {
		t.Error("the merge shares memory with its input")
	}
}

func TestValidateLimits(t *testing.T) {
	bad := []struct {
		name string
		cfg  string
		want string
	}{
		{"11 rules", rules(strings.Repeat(rule("x1", prod+":us-east-1")+",", 10) + rule("x1", prod+":us-east-1")), "11 rules"},
		{"empty rule", `{"rules":[{"destinations":[]}]}`, "no destinations"},
		{"duplicate destination", rules(rule("x1", prod+":us-east-1", prod+":us-east-1")), "twice"},
		{"filter type", `{"rules":[{"destinations":[{"region":"us-east-1","registryId":"` + prod + `"}],"repositoryFilters":[{"filter":"ab","filterType":"WILDCARD"}]}]}`, "PREFIX_MATCH"},
		{"filter pattern", rules(rule("AB", prod+":us-east-1")), `"AB"`},
		{"101 filters", `{"rules":[{"destinations":[{"region":"us-east-1","registryId":"` + prod + `"}],"repositoryFilters":[` +
			strings.Repeat(`{"filter":"ab","filterType":"PREFIX_MATCH"},`, 100) + `{"filter":"ab","filterType":"PREFIX_MATCH"}]}]}`, "101 repository filters"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(cfgJSON(t, tc.cfg))
			if err == nil || !fixable.Is(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want a fixable error with %q", err, tc.want)
			}
		})
	}
}

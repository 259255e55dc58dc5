package cli

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

func TestParseInputsPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    string // --repository's value
		origin  string // how errors name it
		warning string
	}{
		{"default", nil, nil, "", "--repository", ""},
		{"ECRPUSH_", nil, map[string]string{"ECRPUSH_REPOSITORY": "a"}, "a", "ECRPUSH_REPOSITORY", ""},
		{"input wins and warns", nil, map[string]string{"ECRPUSH_REPOSITORY": "a", "INPUT_REPOSITORY": "b", "GITHUB_ACTIONS": "true"}, "b", "input repository",
			"::warning title=ecrpush::input repository (b) overrides ECRPUSH_REPOSITORY (a)"},
		{"same value, no warning", nil, map[string]string{"ECRPUSH_REPOSITORY": "b", "INPUT_REPOSITORY": "b", "GITHUB_ACTIONS": "true"}, "b", "input repository", ""},
		{"empty input leaves ECRPUSH_", nil, map[string]string{"ECRPUSH_REPOSITORY": "a", "INPUT_REPOSITORY": " ", "INPUT_SOURCE": "x", "GITHUB_ACTIONS": "true"}, "a", "ECRPUSH_REPOSITORY", ""},
		{"command line wins", []string{"--repository", "c"}, map[string]string{"ECRPUSH_REPOSITORY": "a", "INPUT_REPOSITORY": "b"}, "c", "--repository", ""},
		{"unset as the Action", nil, map[string]string{"INPUT_SOURCE": "x", "GITHUB_ACTIONS": "true"}, "", "input repository", ""},
		{"outside GitHub, a plain warning", nil, map[string]string{"ECRPUSH_REPOSITORY": "a", "INPUT_REPOSITORY": "b"}, "b", "input repository",
			"ecrpush: warning: input repository (b) overrides ECRPUSH_REPOSITORY (a)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("ecrpush push", flag.ContinueOnError)
			repo := fs.String("repository", "", "")
			fs.String("source", "", "")
			var warn bytes.Buffer
			in, err := parseInputs(fs, tc.args, func(k string) string { return tc.env[k] }, &warn)
			if err != nil {
				t.Fatal(err)
			}
			if *repo != tc.want {
				t.Errorf("--repository = %q, want %q", *repo, tc.want)
			}
			if got := in.words("repository"); got != tc.origin {
				t.Errorf("named %q, want %q", got, tc.origin)
			}
			if (tc.warning == "") != (warn.Len() == 0) || !strings.Contains(warn.String(), tc.warning) {
				t.Errorf("warning %q, want %q", warn.String(), tc.warning)
			}
		})
	}
}

func TestParseInputsAliasesAndErrors(t *testing.T) {
	fs := flag.NewFlagSet("ecrpush push", flag.ContinueOnError)
	role := fs.String("role-arn", "", "")
	jobs := fs.Int("jobs", 16, "")
	env := map[string]string{"INPUT_ROLE-TO-ASSUME": "arn:aws:iam::111122223333:role/a", "INPUT_ROLE-ARN": "arn:aws:iam::111122223333:role/b", "GITHUB_ACTIONS": "true"}
	if _, err := parseInputs(fs, nil, func(k string) string { return env[k] }, &bytes.Buffer{}); err != nil || *role != env["INPUT_ROLE-TO-ASSUME"] || *jobs != 16 {
		t.Errorf("role %q jobs %d err %v: the documented alias role-to-assume comes first", *role, *jobs, err)
	}
	env["INPUT_JOBS"] = "many"
	_, err := parseInputs(flag.NewFlagSet("x", flag.ContinueOnError), nil, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("no jobs flag, yet %v", err)
	}
	fs = flag.NewFlagSet("ecrpush push", flag.ContinueOnError)
	fs.Int("jobs", 16, "")
	_, err = parseInputs(fs, nil, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err == nil || !fixable.Is(err) || !strings.HasPrefix(err.Error(), `input jobs "many" is not a whole number`) {
		t.Errorf("bad input: %v", err)
	}
}

func TestExplainInTheUsersWords(t *testing.T) {
	newInputs := func(env map[string]string, args ...string) *inputs {
		fs := flag.NewFlagSet("ecrpush push", flag.ContinueOnError)
		fs.String("role-arn", "", "")
		fs.String("region", "", "")
		fs.String("identity", "auto", "")
		fs.Duration("role-duration", 0, "")
		fs.String("source", "", "")
		in, err := parseInputs(fs, args, func(k string) string { return env[k] }, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	action := map[string]string{"GITHUB_ACTIONS": "true", "INPUT_SOURCE": "oci-layout:x", "INPUT_AWS-REGION": "mars-1", "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE"}
	base := fixable.New("--role-arn is required to federate the github identity; --region %q is odd; DurationSeconds too long", "mars-1")
	got := newInputs(action).explain(base)
	want := `input role-to-assume is required to federate the github identity; input aws-region "mars-1" is odd; DurationSeconds (input role-duration) too long; AWS keys are set in the environment (AWS_ACCESS_KEY_ID): to push with them instead of an OIDC token, set identity: aws`
	if got.Error() != want {
		t.Errorf("as the Action:\n%s\nwant\n%s", got, want)
	}
	if !fixable.Is(got) || !errors.Is(got, base) {
		t.Error("the reworded error lost what it wraps")
	}
	// On a terminal, the flags stay flags; identity aws is suggested as the flag.
	got = newInputs(map[string]string{"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE"}, "--region", "mars-1").explain(base)
	if !strings.HasPrefix(got.Error(), `--role-arn is required`) || !strings.HasSuffix(got.Error(), "set --identity aws") {
		t.Errorf("on a terminal: %s", got)
	}
	// identity aws already chosen, or a role given: no hint.
	keys := map[string]string{"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE"}
	for _, args := range [][]string{{"--identity", "aws"}, {"--role-arn", "arn:aws:iam::111122223333:role/x"}} {
		if got := newInputs(keys, args...).explain(base); strings.Contains(got.Error(), "identity aws") {
			t.Errorf("%v: %s", args, got)
		}
	}
	plain := errors.New("network down")
	if newInputs(action).explain(plain) != plain || newInputs(action).explain(nil) != nil {
		t.Error("an error with nothing to reword was changed")
	}
}

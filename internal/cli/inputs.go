package cli

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/ecrpush/ecrpush/internal/platform"
)

// originKind is where a flag's value came from.
type originKind int

const (
	fromDefault originKind = iota
	fromCommandLine
	fromInput
	fromEnv
)

// origin is where a flag's value came from: the input or variable name for inputs and ECRPUSH_*.
type origin struct {
	kind originKind
	name string
}

// inputs is what parseInputs learned beside the values: where each came from, and whether ecrpush runs as
// the GitHub Action (GITHUB_ACTIONS=true and the step's inputs present), so that errors can use the words
// the workflow author wrote.
type inputs struct {
	fs       *flag.FlagSet
	getenv   func(string) string
	origins  map[string]origin
	asAction bool
}

// warnf writes one warning: a workflow command on GitHub (the runner reads stderr for them as it reads
// stdout), a log line elsewhere.
func (in *inputs) warnf(w io.Writer, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if in.getenv("GITHUB_ACTIONS") == "true" {
		// Workflow command data escaping (actions/toolkit command.ts escapeData).
		msg = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(msg)
		fmt.Fprintf(w, "::warning title=ecrpush::%s\n", msg)
		return
	}
	fmt.Fprintln(w, "ecrpush: warning: "+msg)
}

var flagMentionRe = regexp.MustCompile(`(^|[\s("'])--([a-z][a-z0-9-]*)\b`)

// explain turns a command's error into the words of whoever configured it, and adds what the runner's
// container explains (platform.ExplainSource). As the Action, "--region" becomes "input aws-region" (or
// ECRPUSH_REGION when that set it), STS's "DurationSeconds" names role-duration, and a missing role with AWS
// keys in the environment suggests identity aws. The result unwraps to err: exit codes and details stay.
func (in *inputs) explain(err error) error {
	if err == nil || in == nil {
		return err
	}
	out := err
	if f := in.fs.Lookup("source"); f != nil && f.Value.String() != "" {
		out = platform.ExplainSource(out, f.Value.String(), in.getenv)
	}
	msg := out.Error()
	rewritten := flagMentionRe.ReplaceAllStringFunc(msg, func(m string) string {
		sm := flagMentionRe.FindStringSubmatch(m)
		if in.fs.Lookup(sm[2]) == nil {
			return m
		}
		return sm[1] + in.words(sm[2])
	})
	if i := strings.Index(rewritten, "DurationSeconds"); i >= 0 && in.fs.Lookup("role-duration") != nil {
		rewritten = rewritten[:i] + "DurationSeconds (" + in.words("role-duration") + ")" + rewritten[i+len("DurationSeconds"):]
	}
	if hint := in.identityHint(msg); hint != "" {
		rewritten = strings.TrimRight(rewritten, ". ") + "; " + hint
	}
	if rewritten == err.Error() {
		return err
	}
	return &reworded{msg: rewritten, err: err}
}

// flagsWithoutInput are push flags action.yml deliberately has no input for (test/ship's
// TestActionCoversPushFlags keeps this list honest): as the Action they are still named as flags.
var flagsWithoutInput = map[string]bool{"output": true}

// words names a flag as the user set it (or, as the Action, as they would).
func (in *inputs) words(flagName string) string {
	o := in.origins[flagName]
	switch {
	case o.kind == fromInput:
		return "input " + o.name
	case o.kind == fromEnv:
		return o.name
	case o.kind == fromDefault && in.asAction && !flagsWithoutInput[flagName]:
		name := flagName
		if a, ok := inputAliases[flagName]; ok {
			name = a
		}
		return "input " + name
	}
	return "--" + flagName
}

// identityHint suggests identity aws when the error is about the missing role and AWS keys are in the
// environment: a job configured with keys (aws-actions/configure-aws-credentials without a role) is
// otherwise told only that a role is required.
func (in *inputs) identityHint(msg string) string {
	role, id := in.fs.Lookup("role-arn"), in.fs.Lookup("identity")
	if role == nil || id == nil || role.Value.String() != "" || in.getenv("AWS_ACCESS_KEY_ID") == "" {
		return ""
	}
	if v := id.Value.String(); v != "auto" && v != "github" && v != "gcp" && v != "file" {
		return ""
	}
	if !strings.Contains(msg, "--role-arn") {
		return ""
	}
	set := "--identity aws"
	if in.asAction {
		set = "identity: aws"
	}
	return "AWS keys are set in the environment (AWS_ACCESS_KEY_ID): to push with them instead of an OIDC token, set " + set
}

// reworded is an error with the user's words; it unwraps to the original.
type reworded struct {
	msg string
	err error
}

func (e *reworded) Error() string { return e.msg }
func (e *reworded) Unwrap() error { return e.err }

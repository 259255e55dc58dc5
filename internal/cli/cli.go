package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/platform"
)

// IO is where a command reads and writes.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	Getenv   func(string) string
	// edge holds the platform Run sets up once the command's flags are parsed.
	edge *edge
}

// edge is what Run sets up once for every command: the platform (GitHub, Cloud Build or the
// terminal), through which every secret is masked and every result reported.
type edge struct{ p platform.Platform }

// platform is the command's platform; commands run outside Run (tests, demo) get one detected from
// the environment.
func (s IO) platform() platform.Platform {
	if s.edge != nil && s.edge.p != nil {
		return s.edge.p
	}
	return newPlatform(s, false)
}

// newPlatform detects where ecrpush runs and sets up its reporting. GitHub's workflow commands
// (masks, groups, annotations) go to stderr, which the runner reads for commands exactly as it reads
// stdout (actions/runner ScriptHandler and ContainerActionHandler attach the same command manager to
// both): stdout stays the command's own — JSON with --output json, the credential-helper protocol,
// `federate` exports — and a mask reaches the runner even when a step captures stdout
// (eval "$(ecrpush federate …)").
func newPlatform(s IO, jsonOut bool) platform.Platform {
	kind := platform.Detect(s.Getenv)
	o := platform.Options{Getenv: s.Getenv, Out: s.Out, Log: s.Err, JSON: jsonOut, Commands: s.Err}
	return platform.New(kind, o)
}

// Stdio is the process's standard streams and environment.
func Stdio() IO { return IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv} }

// command is one subcommand.
type command struct {
	name  string
	short string
	// flags declares the flags on fs and returns the function that runs the command with the
	// remaining arguments.
	flags func(fs *flag.FlagSet, stdio IO) func(ctx context.Context, args []string) error
	// flagsOnly: the command reads no ECRPUSH_* variable or Action input, only its command line (a
	// printed trust policy must say exactly what was typed, never what a job's ECRPUSH_TAG widened).
	flagsOnly bool
}

func commands() []command {
	return []command{
		demoCmd(),
		federateCmd(),
		pushCmd(),
		replicationCmd(),
		sandboxCmd(),
		trustPolicyCmd(),
		versionCmd(),
		credentialHelperCmd(),
		kubeSecretCmd(),
		syncCmd(),
	}
}

// Run runs the command line args (without the program name).
func Run(ctx context.Context, argv0 string, args []string, stdio IO) error {
	if stdio.Getenv == nil {
		stdio.Getenv = func(string) string { return "" }
	}
	if isHelperName(argv0) {
		args = helperArgs(args)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdio.Out)
		if len(args) == 0 {
			return fixable.New("no command given: run ecrpush help for the list")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet("ecrpush "+c.name, flag.ContinueOnError)
		fs.SetOutput(stdio.Err)
		stdio.edge = &edge{}
		run := c.flags(fs, stdio)
		getenv := stdio.Getenv
		if c.flagsOnly {
			getenv = func(string) string { return "" }
		}
		in, err := parseInputs(fs, args[1:], getenv, stdio.Err)
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stdio.Out, "Usage of ecrpush %s: %s\n", c.name, c.short)
				fs.SetOutput(stdio.Out)
				fs.PrintDefaults()
				return nil
			}
			if stdio.Getenv("GITHUB_ACTIONS") == "true" {
				// The pipeline annotates its own errors through the platform layer; a bad input never gets there.
				fmt.Fprintf(stdio.Out, "::error::%s\n", strings.TrimPrefix(Message(err), "ecrpush: "))
			}
			return err
		}
		out := fs.Lookup("output")
		stdio.edge.p = newPlatform(stdio, out != nil && out.Value.String() == "json")
		err = in.explain(run(ctx, fs.Args()))
		if err != nil {
			stdio.edge.p.Fail(Message(err))
		}
		var d interface{ Details() []string }
		if errors.As(err, &d) {
			for _, line := range d.Details() {
				fmt.Fprintln(stdio.Err, "ecrpush: "+line)
			}
		}
		return err
	}
	return fixable.New("unknown command %q: run ecrpush help for the list", args[0])
}

// parse parses flags, then fills every flag not given on the command line from the GitHub Action step's
// input, else from ECRPUSH_<FLAG> (see parseInputs).
func parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	_, err := parseInputs(fs, args, getenv, io.Discard)
	return err
}

// parseInputs parses flags, then fills every flag not given on the command line, first match wins: the
// step's input (INPUT_<NAME>, what the step's `with:` sets), then ECRPUSH_<FLAG> (which a workflow or job
// `env:` sets for every step). When both are set and differ, the input wins and warn gets a line naming
// both (a workflow command on GitHub), so a job-wide ECRPUSH_REPOSITORY or ECRPUSH_ROLE_ARN can never
// silently replace what the step says.
func parseInputs(fs *flag.FlagSet, args []string, getenv func(string) string, warn io.Writer) (*inputs, error) {
	in := &inputs{fs: fs, getenv: getenv, origins: map[string]origin{}}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return in, err
		}
		return in, fixable.New("%s: %v (run %s -h for usage)", fs.Name(), err, fs.Name())
	}
	fs.Visit(func(f *flag.Flag) { in.origins[f.Name] = origin{kind: fromCommandLine} })
	fs.VisitAll(func(f *flag.Flag) {
		for _, n := range inputNames(f.Name) {
			if strings.TrimSpace(getenv(n)) != "" {
				in.asAction = getenv("GITHUB_ACTIONS") == "true"
			}
		}
	})
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if _, set := in.origins[f.Name]; set || err != nil {
			return
		}
		env := EnvName(f.Name)
		envValue := strings.TrimSpace(getenv(env))
		for _, n := range inputNames(f.Name) {
			v := strings.TrimSpace(getenv(n))
			if v == "" {
				continue
			}
			input := strings.ToLower(strings.TrimPrefix(n, "INPUT_"))
			if envValue != "" && envValue != v {
				in.warnf(warn, "input %s (%s) overrides %s (%s) from the workflow's or job's env: the step's input wins; remove one of them", input, v, env, envValue)
			}
			in.origins[f.Name] = origin{kind: fromInput, name: input}
			if e := fs.Set(f.Name, v); e != nil {
				err = fixable.New("input %s %q is not %s (it sets --%s)", input, v, valueHint(f, e), f.Name)
			}
			return
		}
		if envValue != "" {
			in.origins[f.Name] = origin{kind: fromEnv, name: env}
			if e := fs.Set(f.Name, envValue); e != nil {
				err = fixable.New("%s=%q is not %s (it sets --%s)", env, envValue, valueHint(f, e), f.Name)
			}
		}
	})
	return in, err
}

// inputAliases are GitHub Action input names that differ from the flag they set (the names
// aws-actions/configure-aws-credentials users already know).
var inputAliases = map[string]string{"role-arn": "role-to-assume", "region": "aws-region", "tag": "tags"}

// inputNames are the GitHub Action input variables that set a flag (GitHub keeps the dashes:
// INPUT_ROLE-TO-ASSUME), the documented alias first; ECRPUSH_<FLAG> comes after them.
func inputNames(flagName string) []string {
	var out []string
	if a, ok := inputAliases[flagName]; ok {
		out = append(out, InputName(a))
	}
	return append(out, InputName(flagName))
}

// InputName is the variable GitHub sets for an action input.
func InputName(input string) string {
	return "INPUT_" + strings.ToUpper(strings.ReplaceAll(input, " ", "_"))
}

// EnvName is the environment variable that sets a flag: ECRPUSH_ and the flag in upper case, - → _.
func EnvName(flagName string) string {
	return "ECRPUSH_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "ecrpush delivers container images into Amazon ECR with keyless CI federation.")
	fmt.Fprintln(w, "\nCommands:")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-18s %s\n", c.name, c.short)
	}
	fmt.Fprintln(w, "\nEvery flag can also be set with ECRPUSH_<FLAG> (upper case, - as _). Run ecrpush COMMAND -h for flags.")
}

// ExitCode is 0 for nil, 2 for an error the user must fix, 1 otherwise.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case fixable.Is(err):
		return 2
	default:
		return 1
	}
}

// Message is the one line printed for err.
func Message(err error) string {
	msg := strings.TrimSpace(err.Error())
	msg = strings.ReplaceAll(msg, "\n", " ")
	return "ecrpush: " + msg
}

// valueHint says what a flag's value looks like, for a variable that did not parse (the flag
// package itself only says "parse error").
func valueHint(f *flag.Flag, err error) string {
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case bool:
			return "true or false"
		case time.Duration:
			return "a duration like 90s, 15m or 1h"
		case int, int64, uint, uint64:
			return "a whole number"
		}
	}
	return "valid: " + err.Error()
}

package platform

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sethvargo/go-githubactions"
)

// Kind is the system ecrpush runs on.
type Kind string

// Kinds.
const (
	GitHub     Kind = "github"
	CloudBuild Kind = "cloudbuild"
	Local      Kind = "local"
)

// Detect tells where ecrpush runs from the environment.
func Detect(getenv func(string) string) Kind {
	switch {
	case getenv("GITHUB_ACTIONS") == "true":
		return GitHub
	case getenv("BUILDER_OUTPUT") != "":
		return CloudBuild
	}
	return Local
}

// Platform reports to the system ecrpush runs on.
type Platform interface {
	Kind() Kind
	// Mask hides a secret from the logs (GitHub), before anything could print it.
	Mask(secret string)
	// Group starts a collapsible log section; call the returned func to end it.
	Group(title string) (end func())
	// Report publishes the result: outputs, summary, output file, or stdout.
	Report(r *Report) error
	// Fail reports the final error where the platform shows errors (an annotation on GitHub).
	Fail(message string)
}

// Options configure New.
type Options struct {
	Getenv func(string) string
	Out    io.Writer // stdout: workflow commands, text or JSON reports
	Log    io.Writer // stderr: human log lines
	// JSON writes the JSON result to Out on every platform (--output json), beside GitHub's outputs
	// and Cloud Build's output file.
	JSON bool
	// Commands is where GitHub workflow commands go (default Out); the runner reads stderr for them too.
	Commands io.Writer
}

// New returns the platform for kind.
func New(kind Kind, o Options) Platform {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	switch kind {
	case GitHub:
		cmds := o.Commands
		if cmds == nil {
			cmds = o.Out
		}
		return &github{a: githubactions.New(githubactions.WithWriter(cmds), githubactions.WithGetenv(o.Getenv)), o: o, masked: map[string]bool{}}
	case CloudBuild:
		return &cloudBuild{o: o}
	}
	return &local{o: o}
}

// github reports through workflow commands and environment files. go-githubactions panics when it cannot
// write a file command (GITHUB_OUTPUT unset or unwritable): every call is guarded.
type github struct {
	a      *githubactions.Action
	o      Options
	mu     sync.Mutex
	masked map[string]bool
}

func (*github) Kind() Kind { return GitHub }

func (g *github) Mask(secret string) {
	secret = strings.TrimSpace(secret)
	if len(secret) < 4 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.masked[secret] {
		return
	}
	g.masked[secret] = true
	_ = guard(func() { g.a.AddMask(secret) })
}

func (g *github) Group(title string) func() {
	_ = guard(func() { g.a.Group(title) })
	return func() { _ = guard(g.a.EndGroup) }
}

func (g *github) Report(r *Report) error {
	uris, _ := json.Marshal(r.ImageURIs())
	repl := r.Replication
	if repl == nil {
		repl = []Replica{}
	}
	replJSON, _ := json.Marshal(repl)
	outputs := [][2]string{
		{"digest", r.Digest},
		{"image-uri", r.ImageURI()},
		{"image-uris", string(uris)},
		{"registry", r.Registry},
		{"aws-account-id", r.AccountID},
		{"replication", string(replJSON)},
	}
	var errs []error
	if g.o.Getenv("GITHUB_OUTPUT") == "" {
		errs = append(errs, errors.New("GITHUB_OUTPUT is not set: outputs were not written"))
	} else {
		if err := writeOutputs(g.o.Getenv("GITHUB_OUTPUT"), outputs); err != nil {
			errs = append(errs, fmt.Errorf("set outputs: %w", err))
		}
	}
	if g.o.Getenv("GITHUB_STEP_SUMMARY") != "" {
		if err := guard(func() { g.a.AddStepSummary(r.Markdown()) }); err != nil {
			errs = append(errs, fmt.Errorf("step summary: %w", err))
		}
	}
	// The log gets the plain text too: not everyone opens the summary.
	_ = r.WriteText(g.o.Log)
	if g.o.JSON {
		if _, err := fmt.Fprintf(g.o.Out, "%s\n", r.JSON()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (g *github) Fail(message string) {
	_ = guard(func() { g.a.Errorf("%s", strings.TrimPrefix(message, "ecrpush: ")) })
}

// guard turns go-githubactions' panics into errors.
func guard(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}

// cloudBuild writes $BUILDER_OUTPUT/output, which Cloud Build keeps up to 50KB of (MaxBuilderOutput).
type cloudBuild struct{ o Options }

func (*cloudBuild) Kind() Kind            { return CloudBuild }
func (*cloudBuild) Mask(string)           {}
func (*cloudBuild) Group(string) func()   { return func() {} }
func (c *cloudBuild) Fail(message string) {}

func (c *cloudBuild) Report(r *Report) error {
	_ = r.WriteText(c.o.Log)
	b, err := builderOutput(r)
	if err != nil {
		return err
	}
	if c.o.JSON {
		if _, err := fmt.Fprintf(c.o.Out, "%s\n", r.JSON()); err != nil {
			return err
		}
	}
	dir := c.o.Getenv("BUILDER_OUTPUT")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("BUILDER_OUTPUT %s: %w", dir, err)
	}
	return os.WriteFile(filepath.Join(dir, "output"), b, 0o644)
}

// local prints text, or JSON with --output json.
type local struct{ o Options }

func (*local) Kind() Kind          { return Local }
func (*local) Mask(string)         {}
func (*local) Group(string) func() { return func() {} }
func (*local) Fail(string)         {}

func (l *local) Report(r *Report) error {
	if l.o.JSON {
		_, err := fmt.Fprintf(l.o.Out, "%s\n", r.JSON())
		return err
	}
	return r.WriteText(l.o.Out)
}

package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// CI reports whether the tests run in CI (CI=true), where a missing tool is a failure.
func CI() bool { return os.Getenv("CI") == "true" }

// Tool returns the path of an external tool the test needs. Without it the test fails under CI
// and is skipped elsewhere, with the command that installs it.
func Tool(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if CI() {
		t.Fatalf("%s is required under CI=true and is missing: %s", name, install)
	}
	t.Skipf("%s not installed (%s)", name, install)
	return ""
}

// NoSecrets fails the test if any secret appears in any of the captured outputs, outside the lines that
// register a GitHub mask (::add-mask::SECRET at the start of a line): those are how the runner learns a
// secret, and the one place it is meant to appear.
func NoSecrets(t testing.TB, secrets []string, outputs map[string]string) {
	t.Helper()
	for name, out := range outputs {
		out = Unmasked(out)
		for _, s := range secrets {
			if len(s) >= 8 && strings.Contains(out, s) {
				t.Errorf("a secret (%d chars, starting %q) leaked into %s", len(s), s[:4], name)
			}
		}
	}
}

// Unmasked is out without its ::add-mask:: lines.
func Unmasked(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// Masked is the secrets out registers as masks, in order.
func Masked(out string) []string {
	var m []string
	for _, line := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(line, "::add-mask::"); ok {
			m = append(m, s)
		}
	}
	return m
}

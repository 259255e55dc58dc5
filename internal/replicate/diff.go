package replicate

import (
	"fmt"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// UnifiedDiff is a unified diff (3 lines of context) from a to b, "" when they are equal. The plans show
// the replication configuration and creation templates this way, so a reviewer reads exactly what will
// change; patch(1) applies it.
func UnifiedDiff(aName, bName, a, b string) string {
	if a == b {
		return ""
	}
	out, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: lines(a), B: lines(b), FromFile: aName, ToFile: bName, Context: 3,
	})
	if err != nil {
		return fmt.Sprintf("--- %s\n+++ %s\n(no diff: %v)\n", aName, bName, err)
	}
	return out
}

// lines splits s after each newline (difflib.SplitLines would add an empty last line).
func lines(s string) []string {
	out := strings.SplitAfter(s, "\n")
	if out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

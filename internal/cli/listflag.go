package cli

import (
	"strings"
)

// listFlag is a repeatable flag that also splits on commas and newlines (GitHub inputs are often
// multi-line), trimming stray whitespace.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if p := strings.TrimSpace(part); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

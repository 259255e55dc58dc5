package replicate

import (
	"github.com/ecrpush/ecrpush/internal/supplychain"

	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Replication outcomes per destination: ECR's words, and COPIED for a copy made by ecrpush.
const (
	StatusComplete   = "COMPLETE"
	StatusInProgress = "IN_PROGRESS"
	StatusFailed     = "FAILED"
	StatusCopied     = "COPIED"
)

// Failure codes ecrpush sets itself (ECR's own codes pass through unchanged).
const (
	// FailureNoStatus: ECR never reported the destination for this image.
	FailureNoStatus = "NoReplicationStatus"
	// FailureExistedBeforeRule: the image was already in the repository before the rule, and ECR
	// replicates only new pushes.
	FailureExistedBeforeRule = "ImageExistedBeforeRule"
	// FailureCopy: copying to the destination failed.
	FailureCopy = "CopyFailed"
)

// Status is one destination's replication outcome for one image.
type Status struct {
	Account     string  `json:"account"`
	Region      string  `json:"region"`
	URI         string  `json:"uri"` // host/repo@sha256:…
	Status      string  `json:"status"`
	FailureCode string  `json:"failureCode,omitempty"`
	Seconds     float64 `json:"seconds"`
	// Referrers is what the destination holds of the referrers that travel with the image.
	Referrers *supplychain.Row `json:"referrers,omitempty"`
}

// WriteTable writes one aligned row per destination, for terminals and CI logs.
func WriteTable(w io.Writer, sts []Status) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tREGION\tSTATUS\tSECONDS\tURI")
	for _, s := range sts {
		st := s.Status
		if s.FailureCode != "" {
			st += " (" + s.FailureCode + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Account, s.Region, st, seconds(s.Seconds), s.URI)
	}
	return tw.Flush()
}

// WriteMarkdown writes a Markdown table (for $GITHUB_STEP_SUMMARY), one row per destination.
func WriteMarkdown(w io.Writer, sts []Status) error {
	var b strings.Builder
	b.WriteString("| Account | Region | Status | Seconds | Image |\n|---|---|---|---:|---|\n")
	for _, s := range sts {
		st := "`" + s.Status + "`"
		switch s.Status {
		case StatusComplete, StatusCopied:
			st = "✅ " + st
		case StatusFailed:
			st = "❌ " + st
		case StatusInProgress:
			st = "⏳ " + st
		}
		if s.FailureCode != "" {
			st += " " + mdEscape(s.FailureCode)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | `%s` |\n", mdEscape(s.Account), mdEscape(s.Region), st, seconds(s.Seconds), strings.ReplaceAll(s.URI, "`", ""))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func seconds(f float64) string {
	if f <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", f)
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

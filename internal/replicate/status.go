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

// Failure codes ecrpush sets itself. ECR's own failure codes are undocumented strings and pass through
// verbatim; these are ecrpush's, never ECR's.
const (
	// FailureNoStatus: ECR never reported the destination for this image.
	FailureNoStatus = "NoReplicationStatus"
	// FailureExistedBeforeRule: the image was already in the repository before the rule, and nothing
	// (no backfill, no copy) replicated it.
	FailureExistedBeforeRule = "ImageExistedBeforeRule"
	// FailureNotBackfilled: the destination's backfill ended without the image.
	FailureNotBackfilled = "NotInBackfill"
	// FailureStatusUnavailable: DescribeImageReplicationStatus never answered.
	FailureStatusUnavailable = "ReplicationStatusUnavailable"
	// FailureCopy: copying to the destination failed.
	FailureCopy = "CopyFailed"
	// FailureArchived: the image is archived (not pullable) where it was to be read.
	FailureArchived = "ImageArchived"
	// FailureTagNotApplied: the digest arrived but a requested tag names another image there.
	FailureTagNotApplied = "TagNotApplied"
)

// Status is one destination's replication outcome for one image.
type Status struct {
	Account     string      `json:"account"`
	Region      string      `json:"region"`
	URI         string      `json:"uri"` // host/repo@sha256:…
	Status      string      `json:"status"`
	FailureCode string      `json:"failureCode,omitempty"`
	Seconds     float64     `json:"seconds"`
	Tags        []TagStatus `json:"tags,omitempty"`
	// Backfill is the replication backfill that carried the image there (native mode, an image that
	// predates its rule).
	Backfill string `json:"backfill,omitempty"`
	// Verified says how the destination was checked: VerifiedRead (its registry read with its own
	// credentials) or VerifiedStatus (ECR's replication status only; no credentials to read it).
	Verified string `json:"verified,omitempty"`
	// Detail explains a failure or a skipped tag in words, with the fix.
	Detail string `json:"detail,omitempty"`
	// Referrers is what the destination holds of the referrers that travel with the image.
	Referrers *supplychain.Row `json:"referrers,omitempty"`
}

// TagStatus is whether one requested tag names the image at a destination.
type TagStatus struct {
	Tag    string `json:"tag"`
	Status string `json:"status"`           // TagApplied, TagMissing, TagElsewhere, TagUnverified
	Digest string `json:"digest,omitempty"` // what the tag names there, when it is another image
}

// Tag outcomes at a destination.
const (
	TagApplied    = "APPLIED"    // the tag names the image
	TagElsewhere  = "ELSEWHERE"  // the tag names another image (an immutable repository keeps it)
	TagMissing    = "MISSING"    // the tag is not there
	TagUnverified = "UNVERIFIED" // no credentials to read the destination
)

// How a destination was verified.
const (
	VerifiedRead   = "read"
	VerifiedStatus = "status"
)

// WriteTable writes one aligned row per destination, for terminals and CI logs.
func WriteTable(w io.Writer, sts []Status) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tREGION\tSTATUS\tSECONDS\tURI")
	for _, s := range sts {
		st := s.Status
		if s.FailureCode != "" {
			st += " (" + s.FailureCode + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s%s\n", s.Account, s.Region, st, seconds(s.Seconds), s.URI, tagSummary(s))
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
		fmt.Fprintf(&b, "| %s | %s | %s | %s | `%s`%s |\n", mdEscape(s.Account), mdEscape(s.Region), st, seconds(s.Seconds), strings.ReplaceAll(s.URI, "`", ""), mdEscape(tagSummary(s)))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// tagSummary lists the tags that are not simply applied, and how a destination was verified.
func tagSummary(s Status) string {
	var parts []string
	for _, t := range s.Tags {
		switch t.Status {
		case TagApplied:
		case TagElsewhere:
			parts = append(parts, fmt.Sprintf("tag %s not applied: it names %s there", t.Tag, shortDigest(t.Digest)))
		case TagUnverified:
			parts = append(parts, "tag "+t.Tag+" unverified")
		default:
			parts = append(parts, "tag "+t.Tag+" missing")
		}
	}
	if s.Backfill != "" {
		parts = append(parts, "backfill "+s.Backfill)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
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

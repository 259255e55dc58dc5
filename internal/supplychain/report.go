package supplychain

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ecrpush/ecrpush/internal/push"
)

// Report is the supply-chain part of push's result (JSON output, GitHub outputs, Cloud Build output):
// the referrers carried, what --platform left out, the signature checks and, when gated, the findings.
type Report struct {
	Referrers           []Artifact       `json:"referrers"`
	DroppedAttestations []string         `json:"droppedAttestations,omitempty"`
	Signatures          []SignatureCheck `json:"signatures,omitempty"`
	Findings            *Findings        `json:"findings,omitempty"`
}

// DroppedWarning is the warning for a single-platform push out of an index with BuildKit
// attestations ("" when nothing was left out).
func DroppedWarning(a *push.Artifact, platform string) string {
	if a == nil || len(a.DroppedAttestations) == 0 {
		return ""
	}
	var ds []string
	for _, d := range a.DroppedAttestations {
		ds = append(ds, d.Digest.String())
	}
	return fmt.Sprintf("--platform %s pushes only the image %s: the index's attestation manifest %s (BuildKit provenance/SBOM) describes it but lives only in the index, so it is not carried; push without --platform to keep it",
		platform, a.Digest, strings.Join(ds, ", "))
}

// Dropped lists the digests DroppedWarning names, for Report.DroppedAttestations.
func Dropped(a *push.Artifact) []string {
	if a == nil {
		return nil
	}
	var out []string
	for _, d := range a.DroppedAttestations {
		out = append(out, d.Digest.String())
	}
	return out
}

// WriteText lists the carried referrers (kind, digest, artifact type, subject) for a terminal, then the
// findings when gated.
func (r *Report) WriteText(w io.Writer) error {
	if len(r.Referrers) > 0 {
		if err := r.writeReferrers(w); err != nil {
			return err
		}
	}
	if r.Findings != nil {
		return r.Findings.WriteText(w)
	}
	return nil
}

func (r *Report) writeReferrers(w io.Writer) error {
	fmt.Fprintf(w, "referrers carried: %d\n", len(r.Referrers))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  KIND\tDIGEST\tARTIFACT TYPE\tSUBJECT")
	for _, a := range r.Referrers {
		at := dash(a.ArtifactType)
		if a.Tag != "" {
			at += " (tag " + a.Tag + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", a.Kind, a.Digest, at, short(a.Subject))
	}
	return tw.Flush()
}

// Markdown is the step-summary section: the carried referrers, then the findings when gated.
func (r *Report) Markdown() string {
	var b strings.Builder
	if len(r.Referrers) > 0 {
		b.WriteString("### Referrers carried\n\n| Kind | Digest | Artifact type | Subject |\n|---|---|---|---|\n")
		for _, a := range r.Referrers {
			at := dash(a.ArtifactType)
			if a.Tag != "" {
				at += " (tag " + a.Tag + ")"
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | `%s` |\n", a.Kind, a.Digest, mdEscape(at), short(a.Subject))
		}
		b.WriteString("\n")
	}
	if r.Findings != nil {
		b.WriteString(r.Findings.Markdown())
	}
	return b.String()
}

// short abbreviates a digest for a table (sha256:0123456789ab).
func short(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

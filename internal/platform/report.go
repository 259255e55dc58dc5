package platform

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/internal/supplychain"
)

// Report is the result of a push: the same data goes to GitHub outputs, the Cloud Build output file
// and `--output json`.
type Report struct {
	Digest string `json:"digest"`
	// DigestComputed says why Digest is one ecrpush computed rather than the source's own (push.Artifact's
	// DigestComputed: a docker archive without an OCI index.json, or with uncompressed layers).
	DigestComputed string    `json:"digestComputed,omitempty"`
	MediaType      string    `json:"mediaType,omitempty"`
	Registry       string    `json:"registry"`
	Repository     string    `json:"repository"`
	AccountID      string    `json:"awsAccountId,omitempty"`
	Region         string    `json:"region,omitempty"`
	Images         []Image   `json:"images"`
	Size           int64     `json:"size"`
	Layers         int       `json:"layers"`
	BytesUploaded  int64     `json:"bytesUploaded"`
	BytesSkipped   int64     `json:"bytesSkipped"`
	Seconds        float64   `json:"seconds"`
	Replication    []Replica `json:"replication"`
	// SupplyChain is what travelled with the image: referrers carried, attestations --platform left
	// out, signature checks, findings when gated (its fields are inlined in the JSON).
	*supplychain.Report
}

// Image is one pushed image: its URI by digest and the tags pointing at it.
type Image struct {
	URI  string   `json:"uri"` // host/repo@sha256:…
	Tags []string `json:"tags"`
}

// Replica is one replication destination's outcome.
type Replica = replicate.Status

// ImageURI is the first tag's URI (host/repo:tag), or the digest URI when untagged.
func (r *Report) ImageURI() string {
	if len(r.Images) == 0 {
		return ""
	}
	im := r.Images[0]
	if len(im.Tags) > 0 {
		return r.Registry + "/" + r.Repository + ":" + im.Tags[0]
	}
	return im.URI
}

// ImageURIs are host/repo:tag for every tag, then host/repo@digest.
func (r *Report) ImageURIs() []string {
	var out []string
	for _, im := range r.Images {
		for _, t := range im.Tags {
			out = append(out, r.Registry+"/"+r.Repository+":"+t)
		}
		out = append(out, im.URI)
	}
	return out
}

// WriteText writes the report for a terminal or a plain CI log.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "pushed %s (%s, %d layers, %s)\n", r.ImageURI(), r.Digest, r.Layers, humanBytes(r.Size))
	fmt.Fprintf(w, "  uploaded %s, already present %s, %.1fs\n", humanBytes(r.BytesUploaded), humanBytes(r.BytesSkipped), r.Seconds)
	if r.DigestComputed != "" {
		fmt.Fprintf(w, "  digest computed by ecrpush, not the source's own: %s\n", r.DigestComputed)
	}
	for _, u := range r.ImageURIs() {
		fmt.Fprintf(w, "  %s\n", u)
	}
	if len(r.Replication) > 0 {
		fmt.Fprintln(w, "replication:")
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ACCOUNT\tREGION\tSTATUS\tSECONDS\tIMAGE")
		for _, d := range r.Replication {
			st := d.Status
			if d.FailureCode != "" {
				st += " (" + d.FailureCode + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%.1f\t%s\n", d.Account, d.Region, st, d.Seconds, d.URI)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if r.Report != nil {
		return r.Report.WriteText(w)
	}
	return nil
}

// Markdown renders the report for the GitHub step summary.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### ecrpush: `%s`\n\n", r.ImageURI())
	fmt.Fprintf(&b, "Digest `%s` · %d layers · %s · uploaded %s, already present %s · %.1fs\n\n",
		r.Digest, r.Layers, humanBytes(r.Size), humanBytes(r.BytesUploaded), humanBytes(r.BytesSkipped), r.Seconds)
	if r.DigestComputed != "" {
		fmt.Fprintf(&b, "> The digest was computed by ecrpush, not kept from the source: %s\n\n", r.DigestComputed)
	}
	b.WriteString("| Account | Region | Image | Status | Seconds |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %s | %s | `%s` | PUSHED | %.1f |\n", r.AccountID, r.Region, r.Images[0].URI, r.Seconds)
	for _, d := range r.Replication {
		st := d.Status
		if d.FailureCode != "" {
			st += " (`" + d.FailureCode + "`)"
		}
		fmt.Fprintf(&b, "| %s | %s | `%s` | %s | %.1f |\n", d.Account, d.Region, d.URI, st, d.Seconds)
	}
	if r.Report != nil {
		b.WriteString("\n" + r.Report.Markdown())
	}
	return b.String()
}

// JSON is the report as indented JSON.
func (r *Report) JSON() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return b
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

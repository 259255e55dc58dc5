package supplychain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/push"
)

// Severities in order, most severe first. UNDEFINED (basic) and UNTRIAGED (enhanced) are reported
// but never meet a threshold: ECR could not rank them.
var severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED", "UNTRIAGED"}

// Thresholds are the values --fail-on-severity takes.
var Thresholds = severities[:5]

// ParseSeverity reads --fail-on-severity.
func ParseSeverity(s string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	for _, t := range Thresholds {
		if u == t {
			return t, nil
		}
	}
	return "", fixable.New("--fail-on-severity %q is not one of %s", s, strings.Join(Thresholds, ", "))
}

func rank(sev string) int {
	for i, s := range severities {
		if s == sev {
			return i
		}
	}
	return len(severities)
}

// Finding is one vulnerability in the summary.
type Finding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Package  string `json:"package,omitempty"`
	Version  string `json:"version,omitempty"`
	FixedIn  string `json:"fixedIn,omitempty"` // enhanced scanning only: basic findings carry no fix version
	URI      string `json:"uri,omitempty"`
	Image    string `json:"image,omitempty"` // the platform, for an index
}

// ScanTarget is one image whose findings count: the pushed image, or each platform image of a pushed
// index (attestation manifests are not scanned).
type ScanTarget struct {
	Digest v1.Hash
	Label  string // platform, for an index
}

// Targets lists the images of a whose findings the gate reads.
func Targets(a *push.Artifact) ([]ScanTarget, error) {
	if a.Index == nil {
		return []ScanTarget{{Digest: a.Digest}}, nil
	}
	im, err := a.Index.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []ScanTarget
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() || d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" ||
			(d.Platform != nil && d.Platform.OS == "unknown") {
			continue
		}
		label := d.Digest.String()
		if d.Platform != nil {
			label = d.Platform.String()
		}
		out = append(out, ScanTarget{Digest: d.Digest, Label: label})
	}
	if len(out) == 0 {
		return nil, fixable.New("%s is an index with no image to scan", a.Digest)
	}
	return out, nil
}

// Findings is the gate's summary: counts per severity over every scanned image, the top findings, and
// whether the threshold is met.
type Findings struct {
	Repository string         `json:"repository"`
	Digest     string         `json:"digest"`
	ScanType   string         `json:"scanType"` // BASIC or ENHANCED
	Threshold  string         `json:"threshold"`
	Counts     map[string]int `json:"counts"`
	Total      int            `json:"total"`
	Top        []Finding      `json:"top"`
	Failed     bool           `json:"failed"` // the threshold is met
}

// FindingsOptions bound Scan.
type FindingsOptions struct {
	Threshold string        // from ParseSeverity
	Timeout   time.Duration // for the scan to finish (default 10m)
	Interval  time.Duration // between reads (default 5s)
	// NotFoundGrace is how long ScanNotFoundException is taken for a scan not started yet (default 1m):
	// after it, the repository does not scan on push.
	NotFoundGrace time.Duration
	Top           int    // findings listed (default 10)
	Pushed        string // what is written, for errors
}

// Scan waits (bounded) for ECR's scan of every target in the ci registry — basic (IN_PROGRESS →
// COMPLETE) or enhanced (PENDING → ACTIVE) — and sums the findings. A scan that cannot decide
// (FAILED, UNSUPPORTED_IMAGE, no scan at all) is a fixable error: the gate was asked for and cannot be
// met. The threshold itself is checked by Gate, after the summary is reported.
func Scan(ctx context.Context, ci *Registry, digest v1.Hash, targets []ScanTarget, o FindingsOptions) (*Findings, error) {
	if ci.API == nil {
		return nil, fixable.New("--fail-on-severity needs an ECR repository (scan findings come from ECR)")
	}
	f := &Findings{Repository: ci.Repo.String(), Digest: digest.String(), Threshold: o.Threshold, Counts: map[string]int{}, Top: []Finding{}}
	var all []Finding
	for _, t := range targets {
		st, found, err := scanOne(ctx, ci, t, o)
		if err != nil {
			return nil, withPushed(err, o.Pushed)
		}
		if f.ScanType == "" || st == "ENHANCED" {
			f.ScanType = st
		}
		all = append(all, found.list...)
		for k, v := range found.counts {
			f.Counts[k] += v
			f.Total += v
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if rank(all[i].Severity) != rank(all[j].Severity) {
			return rank(all[i].Severity) < rank(all[j].Severity)
		}
		return all[i].ID < all[j].ID
	})
	f.Top = all[:min(len(all), orDefaultInt(o.Top, 10))]
	if o.Threshold != "" {
		for sev, n := range f.Counts {
			if n > 0 && rank(sev) <= rank(o.Threshold) {
				f.Failed = true
			}
		}
	}
	return f, nil
}

func orDefaultInt(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

type scanned struct {
	counts map[string]int
	list   []Finding
}

const maxFindingPages = 10

// scanOne waits for one image's scan and reads its findings (up to maxFindingPages pages of 1000).
func scanOne(ctx context.Context, ci *Registry, t ScanTarget, o FindingsOptions) (string, scanned, error) {
	ref := ci.Repo.RepositoryStr() + "@" + t.Digest.String()
	in := &ecr.DescribeImageScanFindingsInput{RepositoryName: aws.String(ci.Repo.RepositoryStr()),
		ImageId: &ecrtypes.ImageIdentifier{ImageDigest: aws.String(t.Digest.String())}, MaxResults: aws.Int32(1000)}
	if ci.RegistryID != "" {
		in.RegistryId = aws.String(ci.RegistryID)
	}
	timeout, interval := orDefault(o.Timeout, 10*time.Minute), orDefault(o.Interval, 5*time.Second)
	grace := min(orDefault(o.NotFoundGrace, time.Minute), timeout)
	start := time.Now()
	var out *ecr.DescribeImageScanFindingsOutput
	var notFound error
	err := poll(ctx, timeout, interval, func() (bool, error) {
		res, err := ci.API.DescribeImageScanFindings(ctx, in)
		var snf *ecrtypes.ScanNotFoundException
		switch {
		case errors.As(err, &snf):
			notFound = err
			if time.Since(start) >= grace {
				return false, fixable.Wrap(err, fmt.Sprintf("--fail-on-severity: ECR has no scan of %s: create the repository with --scan-on-push or turn on registry scanning (basic or enhanced) so that pushes are scanned", ref))
			}
			return false, nil
		case err != nil:
			return false, ecrx.APIError(err, "DescribeImageScanFindings "+ref)
		}
		out = res
		st := ecrtypes.ScanStatus("")
		if res.ImageScanStatus != nil {
			st = res.ImageScanStatus.Status
		}
		switch st {
		case ecrtypes.ScanStatusComplete, ecrtypes.ScanStatusActive:
			return true, nil
		case ecrtypes.ScanStatusInProgress, ecrtypes.ScanStatusPending, "":
			return false, nil
		}
		desc := ""
		if res.ImageScanStatus != nil {
			desc = aws.ToString(res.ImageScanStatus.Description)
		}
		return false, fixable.New("--fail-on-severity: ECR could not scan %s (%s: %s), so the gate cannot decide: scan a supported image or drop --fail-on-severity", ref, st, desc)
	})
	if errors.Is(err, errTimeout) {
		if notFound != nil {
			return "", scanned{}, fixable.Wrap(notFound, fmt.Sprintf("--fail-on-severity: ECR has no scan of %s after %s: turn on scan on push", ref, timeout))
		}
		return "", scanned{}, fmt.Errorf("--fail-on-severity: the scan of %s did not finish in %s", ref, timeout)
	}
	if err != nil {
		return "", scanned{}, err
	}
	scanType := "BASIC"
	if out.ImageScanStatus.Status == ecrtypes.ScanStatusActive {
		scanType = "ENHANCED"
	}
	res := scanned{counts: map[string]int{}}
	if out.ImageScanFindings != nil {
		for k, v := range out.ImageScanFindings.FindingSeverityCounts {
			res.counts[strings.ToUpper(k)] += int(v)
		}
	}
	for page := 0; ; page++ {
		if fs := out.ImageScanFindings; fs != nil {
			if len(fs.EnhancedFindings) > 0 {
				scanType = "ENHANCED"
			}
			res.list = append(res.list, findingsOf(fs, t.Label)...)
		}
		if out.NextToken == nil || page+1 >= maxFindingPages {
			break
		}
		in.NextToken = out.NextToken
		next, err := ci.API.DescribeImageScanFindings(ctx, in)
		if err != nil {
			return "", scanned{}, ecrx.APIError(err, "DescribeImageScanFindings "+ref)
		}
		out = next
	}
	return scanType, res, nil
}

// findingsOf reads both shapes: basic findings carry package_name/package_version attributes, enhanced
// ones Amazon Inspector's vulnerablePackages with fixedInVersion.
func findingsOf(fs *ecrtypes.ImageScanFindings, label string) []Finding {
	var out []Finding
	for _, f := range fs.Findings {
		x := Finding{ID: aws.ToString(f.Name), Severity: strings.ToUpper(string(f.Severity)), URI: aws.ToString(f.Uri), Image: label}
		for _, a := range f.Attributes {
			switch aws.ToString(a.Key) {
			case "package_name":
				x.Package = aws.ToString(a.Value)
			case "package_version":
				x.Version = aws.ToString(a.Value)
			case "fixed_in_version", "patched_version":
				x.FixedIn = aws.ToString(a.Value)
			}
		}
		out = append(out, x)
	}
	for _, f := range fs.EnhancedFindings {
		x := Finding{Severity: strings.ToUpper(aws.ToString(f.Severity)), ID: aws.ToString(f.Title), Image: label}
		if d := f.PackageVulnerabilityDetails; d != nil {
			if d.VulnerabilityId != nil {
				x.ID = aws.ToString(d.VulnerabilityId)
			}
			x.URI = aws.ToString(d.SourceUrl)
			if len(d.VulnerablePackages) > 0 {
				p := d.VulnerablePackages[0]
				x.Package, x.Version, x.FixedIn = aws.ToString(p.Name), aws.ToString(p.Version), aws.ToString(p.FixedInVersion)
			}
		}
		out = append(out, x)
	}
	return out
}

// Gate is the exit-2 error when the threshold is met (nil otherwise): one line that says the image
// is pushed and where (pushed, e.g. "host/team/app:v1, :latest"), what the scan found and what to do.
func (f *Findings) Gate(pushed string) error {
	if f == nil || !f.Failed {
		return nil
	}
	var at []string
	for _, s := range severities {
		if n := f.Counts[s]; n > 0 && rank(s) <= rank(f.Threshold) {
			at = append(at, fmt.Sprintf("%d %s", n, s))
		}
	}
	fix := ""
	for _, x := range f.Top {
		if x.FixedIn != "" && rank(x.Severity) <= rank(f.Threshold) {
			fix = fmt.Sprintf(" (e.g. %s %s → %s)", x.Package, x.Version, x.FixedIn)
			break
		}
	}
	where := pushed
	if where == "" {
		where = f.Repository + "@" + f.Digest
	}
	return fixable.New("--fail-on-severity %s: the image is pushed (%s, %s) but its %s scan found %s: upgrade the affected packages%s and push again, or raise --fail-on-severity",
		f.Threshold, where, f.Digest, strings.ToLower(f.ScanType), strings.Join(at, ", "), fix)
}

// countsLine is "1 CRITICAL, 2 HIGH, …" over every severity with findings ("none" when clean).
func (f *Findings) countsLine() string {
	var s []string
	for _, sev := range severities {
		if n := f.Counts[sev]; n > 0 {
			s = append(s, fmt.Sprintf("%d %s", n, sev))
		}
	}
	if len(s) == 0 {
		return "no findings"
	}
	return strings.Join(s, ", ")
}

func (f *Findings) verdict() string {
	switch {
	case f.Threshold == "":
		return "not gated"
	case f.Failed:
		return "FAILED at " + f.Threshold
	}
	return "passed (threshold " + f.Threshold + ")"
}

// WriteText writes the summary for a terminal or a CI log: a line of counts and the top findings.
func (f *Findings) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "scan findings (%s) for %s: %s — %s\n", strings.ToLower(f.ScanType), f.Digest, f.countsLine(), f.verdict())
	if len(f.Top) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SEVERITY\tFINDING\tPACKAGE\tVERSION\tFIXED IN\tIMAGE")
	for _, x := range f.Top {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", x.Severity, x.ID, dash(x.Package), dash(x.Version), dash(x.FixedIn), dash(x.Image))
	}
	if more := f.Total - len(f.Top); more > 0 {
		fmt.Fprintf(tw, "  … and %d more\n", more)
	}
	return tw.Flush()
}

// Markdown is the summary for a GitHub step summary: the counts as a table, then the top findings.
func (f *Findings) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Scan findings (%s): %s\n\n", strings.ToLower(f.ScanType), f.verdict())
	fmt.Fprintf(&b, "`%s`\n\n", mdEscape(f.Repository+"@"+f.Digest))
	b.WriteString("| " + strings.Join(severities[:6], " | ") + " |\n|" + strings.Repeat("---:|", 6) + "\n|")
	for _, s := range severities[:6] {
		fmt.Fprintf(&b, " %d |", f.Counts[s])
	}
	b.WriteString("\n")
	if len(f.Top) > 0 {
		b.WriteString("\n| Severity | Finding | Package | Version | Fixed in | Image |\n|---|---|---|---|---|---|\n")
		for _, x := range f.Top {
			id := mdEscape(x.ID)
			if x.URI != "" && strings.HasPrefix(x.URI, "https://") {
				id = "[" + id + "](" + strings.ReplaceAll(x.URI, ")", "%29") + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", x.Severity, id, mdEscape(dash(x.Package)),
				mdEscape(dash(x.Version)), mdEscape(dash(x.FixedIn)), mdEscape(dash(x.Image)))
		}
		if more := f.Total - len(f.Top); more > 0 {
			fmt.Fprintf(&b, "\n… and %d more.\n", more)
		}
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// mdEscape keeps a value inside its table cell.
func mdEscape(s string) string {
	r := strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "`", "'", "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}

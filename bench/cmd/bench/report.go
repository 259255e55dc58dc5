package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

type contenderResult struct {
	Name     string   `json:"name"`
	Tool     string   `json:"tool"`
	Mode     string   `json:"mode"`
	Commands []string `json:"commands"`
	Samples  []sample `json:"samples"`
	Median   float64  `json:"medianSeconds"`
	Min      float64  `json:"minSeconds"`
	Max      float64  `json:"maxSeconds"`
	RSSMiB   float64  `json:"medianRssMiB"`
	CPU      float64  `json:"medianCpuSeconds"`
	StoredMB float64  `json:"medianStoredMB"` // config + layers at the destination, 10^6 bytes
}

func (c *contenderResult) summarize() {
	var s, r, u, b []float64
	for _, x := range c.Samples {
		s = append(s, x.Seconds)
		r = append(r, x.RSSMiB)
		u = append(u, x.CPU)
		b = append(b, float64(x.Stored)/1e6)
	}
	sort.Float64s(s)
	sort.Float64s(r)
	sort.Float64s(u)
	sort.Float64s(b)
	c.Median, c.Min, c.Max, c.RSSMiB, c.CPU, c.StoredMB = median(s), s[0], s[len(s)-1], median(r), median(u), median(b)
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

type caseResult struct {
	ID         string             `json:"id"`
	Title      string             `json:"title"`
	Registries int                `json:"registries"`
	RTTms      int64              `json:"rttMs"`
	Bytes      int64              `json:"bytesPerDestination"`
	Contenders []*contenderResult `json:"contenders"`
}

func (c *caseResult) find(tool, mode string) *contenderResult {
	for _, x := range c.Contenders {
		if x.Tool == tool && (mode == "" || x.Mode == mode) {
			return x
		}
	}
	return nil
}

// versionResult is P5: `ecrpush version`, a cached credential-helper get, and a bare Go binary,
// alternated in the same run.
type versionResult struct {
	Runs       []float64 `json:"runsMs"` // ecrpush version
	MedianMs   float64   `json:"medianMs"`
	HelloRuns  []float64 `json:"helloRunsMs"`
	HelloMs    float64   `json:"helloMedianMs"`
	HelperRuns []float64 `json:"helperRunsMs"`
	HelperMs   float64   `json:"helperMedianMs"`
	BinaryMiB  float64   `json:"binaryMiB"`
	RSSMiB     float64   `json:"rssMiB,omitempty"`
}

type report struct {
	Quick     bool              `json:"quick"`
	Runs      int               `json:"runs"`
	Started   time.Time         `json:"started"`
	Seconds   float64           `json:"seconds"`
	Machine   map[string]string `json:"machine"`
	LoadWait  string            `json:"loadWait,omitempty"`
	LoadStart string            `json:"loadStart"`
	LoadEnd   string            `json:"loadEnd"`
	Inputs    *inputs           `json:"inputs"`
	Cases     []*caseResult     `json:"cases"`
	Version   *versionResult    `json:"p5,omitempty"`
	keys      map[string]float64
}

// metric is one results.json key: a ratio of medians (ecrpush ÷ a peer) or an absolute figure.
type metric struct {
	key        string
	caseID     string
	tool, mode string // the denominator; empty: an absolute value
	abs        func(r *report, c *caseResult) (float64, bool)
	goal       float64 // 0: none
	unit       string
}

var metrics = []metric{
	{key: "p1_vs_limit", caseID: "P1", tool: "limit", goal: 1.05},
	{key: "p1_vs_crane", caseID: "P1", tool: "crane", goal: 1.0},
	{key: "p1_vs_skopeo", caseID: "P1", tool: "skopeo", goal: 0.6},
	{key: "p1w_vs_crane", caseID: "P1w", tool: "crane", goal: 0.7},
	{key: "p1w_vs_skopeo", caseID: "P1w", tool: "skopeo", goal: 0.7},
	{key: "p1w_vs_limit", caseID: "P1w", tool: "limit"},
	{key: "p1_vs_ggcr", caseID: "P1", tool: "ggcr"},
	{key: "p1w_vs_ggcr", caseID: "P1w", tool: "ggcr"},
	{key: "p3_vs_ggcr", caseID: "P3", tool: "ggcr"},
	{key: "p3w_vs_ggcr", caseID: "P3w", tool: "ggcr"},
	{key: "p6w_vs_ggcr", caseID: "P6w", tool: "ggcr"},
	{key: "p2_stored_vs_skopeo", caseID: "P2", abs: storedVs("skopeo"), goal: 1.02},
	{key: "p2_stored_vs_crane", caseID: "P2", abs: storedVs("crane")},
	{key: "p2_vs_skopeo", caseID: "P2", tool: "skopeo", goal: 0.8},
	{key: "p2_vs_crane", caseID: "P2", tool: "crane"},
	{key: "p2_fanout_vs_skopeo_seq", caseID: "P2f", tool: "skopeo", mode: "seq", goal: 0.35},
	{key: "p2_fanout_vs_crane_seq", caseID: "P2f", tool: "crane", mode: "seq", goal: 0.2},
	{key: "p2_fanout_vs_skopeo_par", caseID: "P2f", tool: "skopeo", mode: "par"},
	{key: "p2_fanout_vs_crane_par", caseID: "P2f", tool: "crane", mode: "par"},
	{key: "p2b_vs_limit", caseID: "P2b", tool: "limit", goal: 1.1},
	{key: "p2b_vs_crane_par", caseID: "P2b", tool: "crane", mode: "par"},
	{key: "p3_seconds", caseID: "P3", abs: ecrpushMedian, goal: 0.5, unit: "s"},
	{key: "p3w_seconds", caseID: "P3w", abs: ecrpushMedian, goal: 0.6, unit: "s"},
	{key: "p4_rss_mib_layout", caseID: "P4l", abs: ecrpushRSS, goal: 80, unit: "MiB"},
	{key: "p4_rss_mib_archive", caseID: "P4a", abs: ecrpushRSS, goal: 80, unit: "MiB"},
	{key: "p5_version_ms", abs: func(r *report, _ *caseResult) (float64, bool) {
		return vOK(r, func(v *versionResult) float64 { return v.MedianMs })
	}, unit: "ms"},
	{key: "p5_version_vs_hello", abs: func(r *report, _ *caseResult) (float64, bool) {
		return vOK(r, func(v *versionResult) float64 { return v.MedianMs / v.HelloMs })
	}, goal: 2},
	{key: "p5_helper_get_vs_hello", abs: func(r *report, _ *caseResult) (float64, bool) {
		return vOK(r, func(v *versionResult) float64 { return v.HelperMs / v.HelloMs })
	}, goal: 2},
	{key: "p5_binary_mib", abs: func(r *report, _ *caseResult) (float64, bool) {
		return vOK(r, func(v *versionResult) float64 { return v.BinaryMiB })
	}, unit: "MiB"},
	{key: "p6w_vs_crane", caseID: "P6w", tool: "crane"},
	{key: "p6w_vs_skopeo", caseID: "P6w", tool: "skopeo"},
}

func vOK(r *report, f func(*versionResult) float64) (float64, bool) {
	if r.Version == nil || r.Version.HelloMs == 0 {
		return 0, false
	}
	return f(r.Version), true
}

// storedVs is ecrpush's stored bytes ÷ tool's, in the same case and run.
func storedVs(tool string) func(*report, *caseResult) (float64, bool) {
	return func(_ *report, c *caseResult) (float64, bool) {
		e, p := c.find("ecrpush", ""), c.find(tool, "")
		if e == nil || p == nil || p.StoredMB == 0 {
			return 0, false
		}
		return e.StoredMB / p.StoredMB, true
	}
}

func ecrpushMedian(_ *report, c *caseResult) (float64, bool) {
	if e := c.find("ecrpush", ""); e != nil {
		return e.Median, true
	}
	return 0, false
}

func ecrpushRSS(_ *report, c *caseResult) (float64, bool) {
	if e := c.find("ecrpush", ""); e != nil {
		return e.RSSMiB, true
	}
	return 0, false
}

func (r *report) caseByID(id string) *caseResult {
	for _, c := range r.Cases {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func (r *report) compute() {
	r.keys = map[string]float64{}
	for _, m := range metrics {
		c := r.caseByID(m.caseID)
		if c == nil && m.caseID != "" {
			continue
		}
		if m.abs != nil {
			if v, ok := m.abs(r, c); ok {
				r.keys[m.key] = round(v, 3)
			}
			continue
		}
		e, p := c.find("ecrpush", ""), c.find(m.tool, m.mode)
		if e != nil && p != nil && p.Median > 0 {
			r.keys[m.key] = round(e.Median/p.Median, 3)
		}
	}
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// render rewrites dir/RESULTS.md from dir/results.json (keeping the Analysis section): for
// editing the format without measuring again.
func render(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	r.compute()
	return r.writeMarkdown(dir)
}

func (r *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The keys at the top level (what the issue asks for), the detail beside them.
	out := map[string]any{}
	for k, v := range r.keys {
		out[k] = v
	}
	goals := map[string]any{}
	for _, m := range metrics {
		if v, ok := r.keys[m.key]; ok && m.goal > 0 {
			goals[m.key] = map[string]any{"value": v, "goal": m.goal, "met": v <= m.goal}
		}
	}
	out["goals"] = goals
	detail, _ := json.Marshal(r)
	var d map[string]any
	_ = json.Unmarshal(detail, &d)
	maps := []string{"quick", "runs", "started", "seconds", "machine", "loadWait", "loadStart", "loadEnd", "inputs", "cases", "p5"}
	for _, k := range maps {
		if v, ok := d[k]; ok {
			out[k] = v
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return r.writeMarkdown(dir)
}

func (r *report) writeMarkdown(dir string) error {
	md := filepath.Join(dir, "RESULTS.md")
	var analysis string
	if old, err := os.ReadFile(md); err == nil {
		if i := strings.Index(string(old), "\n## Analysis"); i >= 0 {
			analysis = string(old[i:])
		}
	}
	return os.WriteFile(md, []byte(r.markdown()+analysis), 0o644)
}

func (r *report) markdown() string {
	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format, a...) }
	p("# ecrpush benchmarks\n\n")
	p("Generated by `bench/run.sh%s` (bench/cmd/bench) on %s in %.0f s; everything above **Analysis** is rewritten by each run.\n",
		map[bool]string{true: " --quick", false: ""}[r.Quick], r.Started.Format("2006-01-02 15:04 MST"), r.Seconds)
	p("Each figure is the median of %d runs; tools alternate run by run (A B C A B C …); every run starts\n", r.Runs)
	p("Debian's docker-registry on 127.0.0.1 with fresh, empty storage (P3: a fresh hard-linked copy of a seeded store),\n")
	p("no authentication, and checks afterwards that every destination holds the manifest and all its blobs.\n")
	p("Ratios are ecrpush ÷ peer (lower is better).\n\n")
	p("## Machine\n\n")
	keys := make([]string, 0, len(r.Machine))
	for k := range r.Machine {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p("- %s: %s\n", k, r.Machine[k])
	}
	p("- load average (1/5/15 min) at start: %s, at end: %s", r.LoadStart, r.LoadEnd)
	if r.LoadWait != "" {
		p(" (%s)", r.LoadWait)
	}
	p("\n\n## Goals\n\n| key | value | goal | met |\n|---|---:|---:|---|\n")
	for _, m := range metrics {
		v, ok := r.keys[m.key]
		if !ok {
			continue
		}
		goal, met := "–", ""
		if m.goal > 0 {
			goal = fmt.Sprintf("≤ %g", m.goal)
			met = map[bool]string{true: "yes", false: "**no**"}[v <= m.goal]
		}
		p("| %s | %g%s | %s | %s |\n", m.key, v, unitSuffix(m.unit), goal, met)
	}
	p("\n## Cases\n\n")
	p("`$REGn` is a registry's host:port (through the slow-link proxy where the case has one), `$INPUTS` the generated\n")
	p("inputs (bench/cmd/bench/inputs.go). Every process runs under `/usr/bin/time -v`; peak RSS is the largest \"Maximum resident set size\" of the run's processes;\n")
	p("stored MB is the config and layers the (first) destination holds afterwards, 10⁶ bytes: what every pull fetches.\n\n")
	for _, c := range r.Cases {
		p("### %s — %s\n\n", c.ID, c.Title)
		e := c.find("ecrpush", "")
		p("| tool | median s | min–max s | MB/s per destination | CPU s | peak RSS MiB | stored MB | ecrpush ÷ this |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, x := range c.Contenders {
			ratio := "–"
			if e != nil && x != e {
				ratio = fmt.Sprintf("%.2f", e.Median/x.Median)
			}
			rate := "–"
			if c.Bytes > 0 {
				rate = fmt.Sprintf("%.0f", float64(c.Bytes)/x.Median/1e6)
			}
			p("| %s | %.3f | %.3f–%.3f | %s | %.2f | %.0f | %.2f | %s |\n", x.Name, x.Median, x.Min, x.Max, rate, x.CPU, x.RSSMiB, x.StoredMB, ratio)
		}
		p("\n")
		for _, x := range c.Contenders {
			switch {
			case len(x.Commands) == 0:
			case x.Mode == "seq":
				p("    %-24s %s   … then $REG2 … $REG%d, one after another\n", x.Name+":", x.Commands[0], len(x.Commands))
			case x.Mode == "par":
				p("    %-24s %s   … and $REG2 … $REG%d, all at once\n", x.Name+":", x.Commands[0], len(x.Commands))
			default:
				p("    %-24s %s\n", x.Name+":", x.Commands[0])
			}
		}
		p("\n")
	}
	if v := r.Version; v != nil {
		p("### P5 — start-up\n\nMedians over %d runs each, alternated, exec'd directly; binary %.1f MiB.\n\n", len(v.Runs), v.BinaryMiB)
		p("| process | median ms | ÷ bare Go binary |\n|---|---:|---:|\n")
		p("| bare Go binary (bench/cmd/hello) | %.2f | – |\n", v.HelloMs)
		p("| `ecrpush version` | %.2f | %.2f |\n", v.MedianMs, v.MedianMs/v.HelloMs)
		p("| `docker-credential-ecrpush get` (cached token) | %.2f | %.2f |\n\n", v.HelperMs, v.HelperMs/v.HelloMs)
	}
	return w.String()
}

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " " + u
}

func (r *report) summary(w io.Writer) {
	var ks []string
	for k := range r.keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		mark := ""
		for _, m := range metrics {
			if m.key == k && m.goal > 0 {
				mark = map[bool]string{true: "  ok", false: fmt.Sprintf("  MISSED (goal ≤ %g)", m.goal)}[r.keys[k] <= m.goal]
			}
		}
		fmt.Fprintf(w, "  %-26s %8.3f%s\n", k, r.keys[k], mark)
	}
}

// machine describes where the figures come from.
func machine(c *config) map[string]string {
	m := map[string]string{
		"cpus":   fmt.Sprint(runtime.NumCPU()),
		"go":     runtime.Version(),
		"kernel": firstLine(run1("uname", "-sr")),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				m["cpu"] = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m["memory"] = strings.Join(strings.Fields(firstLine(string(b)))[1:], " ")
	}
	m["crane"] = firstLine(run1(c.crane, "version"))
	m["skopeo"] = firstLine(run1(c.skopeo, "--version"))
	m["registry"] = firstLine(run1(c.registry, "--version"))
	m["ecrpush"] = firstLine(run1(c.ecrpush, "version"))
	return m
}

func run1(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

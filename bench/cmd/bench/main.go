// Command bench measures ecrpush against crane, skopeo and a bare-protocol client (bench/cmd/limit)
// on Debian's docker-registry (distribution) on 127.0.0.1, with fresh registry storage for every
// run, tools alternated run by run, and medians compared. bench/run.sh builds the tools and calls
// it; see bench/RESULTS.md for what each case means and the figures of the last full run.
//
//	bench -ecrpush BIN -crane BIN -limit BIN -ggcr BIN -hello BIN [-quick] [-runs N] [-work DIR] [-out DIR] [-only P1,P3]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

type config struct {
	quick    bool
	runs     int
	work     string
	out      string
	ecrpush  string
	crane    string
	skopeo   string
	limit    string
	ggcr     string
	hello    string
	registry string
	timeBin  string
	only     map[string]bool
	rtt      time.Duration
	fanout   int
	waitLoad float64
	waitMax  time.Duration
	profile  string
	storage  string
	extra    []string // appended to every ecrpush push
	base     string   // another ecrpush (e.g. main's) measured beside this one, where ecrpush is
}

func main() {
	var c config
	var only string
	flag.BoolVar(&c.quick, "quick", false, "small inputs and 2 runs each: proves the harness works, measures little")
	flag.IntVar(&c.runs, "runs", 0, "timed runs per tool and case (default 5, quick 2)")
	flag.StringVar(&c.work, "work", filepath.Join(os.TempDir(), fmt.Sprintf("ecrpush-bench-%d", os.Getuid())), "inputs (kept and reused) and per-run scratch space")
	flag.StringVar(&c.out, "out", "", "where results.json and RESULTS.md go (default: the work directory)")
	flag.StringVar(&c.ecrpush, "ecrpush", "", "ecrpush binary")
	flag.StringVar(&c.crane, "crane", "", "crane binary")
	flag.StringVar(&c.skopeo, "skopeo", "/usr/bin/skopeo", "skopeo binary")
	flag.StringVar(&c.limit, "limit", "", "bench/cmd/limit binary")
	flag.StringVar(&c.ggcr, "ggcr", "", "bench/cmd/ggcrpush binary (go-containerregistry's MultiWrite)")
	flag.StringVar(&c.hello, "hello", "", "bench/cmd/hello binary (P5's bare Go baseline)")
	flag.StringVar(&c.registry, "registry", "/usr/bin/docker-registry", "distribution binary")
	flag.StringVar(&c.timeBin, "time", "/usr/bin/time", "GNU time, for peak RSS (P4)")
	flag.StringVar(&only, "only", "", "comma-separated case ids to run (default all): "+strings.Join(caseIDs, ","))
	flag.DurationVar(&c.rtt, "rtt", 50*time.Millisecond, "round-trip time of the slow link")
	flag.IntVar(&c.fanout, "fanout", 6, "registries for the fan-out cases")
	flag.Float64Var(&c.waitLoad, "wait-load", 0, "before measuring, wait until the 1-minute load average is below this (0: don't wait)")
	flag.DurationVar(&c.waitMax, "wait-max", 20*time.Minute, "give up waiting for a low load after this long (and measure anyway)")
	flag.StringVar(&c.storage, "storage", "", "where registries keep their (per-run) storage (default: /dev/shm when it has room, else the work directory)")
	flag.StringVar(&c.profile, "profile", "", "directory: run ecrpush with ECRPUSH_CPUPROFILE set to a file in it for every timed run")
	renderDir := flag.String("render", "", "rewrite DIR/RESULTS.md from DIR/results.json and exit (no measuring)")
	serve := flag.String("serve", "", "debugging: start one registry with storage in this directory (behind the slow link with -rtt), log its requests to stderr, print its address, and serve until interrupted")
	flag.StringVar(&c.base, "ecrpush-base", "", "another ecrpush binary (e.g. built from main) to measure beside -ecrpush in every case it runs in, as \"ecrpush (base)\"")
	extra := flag.String("ecrpush-args", "", "space-separated flags appended to every ecrpush push (experiments, e.g. \"--jobs 16\")")
	flag.Parse()
	c.extra = strings.Fields(*extra)
	if *renderDir != "" {
		if err := render(*renderDir); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if c.runs == 0 {
		c.runs = 5
		if c.quick {
			c.runs = 2
		}
	}
	if c.out == "" {
		c.out = c.work
	}
	if only != "" {
		c.only = map[string]bool{}
		for _, id := range strings.Split(only, ",") {
			if !slices.Contains(caseIDs, id) {
				fmt.Fprintf(os.Stderr, "bench: unknown case %q (have %s)\n", id, strings.Join(caseIDs, ","))
				os.Exit(2)
			}
			c.only[id] = true
		}
	}
	// Tools run in scratch directories: make every path absolute.
	for _, p := range []*string{&c.ecrpush, &c.base, &c.crane, &c.limit, &c.ggcr, &c.hello, &c.skopeo, &c.registry, &c.work, &c.out, &c.profile, &c.storage} {
		if *p != "" {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
	for flagName, path := range map[string]string{"ecrpush": c.ecrpush, "crane": c.crane, "limit": c.limit, "ggcr": c.ggcr, "hello": c.hello,
		"skopeo": c.skopeo, "registry": c.registry} {
		if path == "" && *serve != "" {
			continue
		}
		if path == "" {
			fmt.Fprintf(os.Stderr, "bench: -%s is required\n", flagName)
			os.Exit(2)
		}
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintf(os.Stderr, "bench: -%s: %v\n", flagName, err)
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if *serve != "" {
		err := serveOne(ctx, &c, *serve)
		stop()
		stopAll()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	err := run(ctx, &c)
	stop()
	stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, c *config) error {
	start := time.Now()
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		return err
	}
	// skopeo runs as nobody (see tools.go): every directory above the inputs must be traversable.
	if err := os.Chmod(c.work, 0o755); err != nil {
		return err
	}
	s, err := specFor(c.quick)
	if err != nil {
		return err
	}
	in, err := makeInputs(filepath.Join(c.work, "inputs"), s, logf)
	if err != nil {
		return fmt.Errorf("inputs: %w", err)
	}
	if os.Geteuid() == 0 {
		if useNobody = othersCanReach(c.work); !useNobody {
			logf("warning: nobody cannot reach %s: skopeo runs as root, with its blob-info cache in /var/lib/containers (may skew its figures)", c.work)
		}
	}
	scratch := filepath.Join(c.work, "runs")
	storage := c.storage
	if storage == "" {
		storage = defaultStorage(c.quick, scratch)
	}
	storage = filepath.Join(storage, fmt.Sprintf("ecrpush-bench-registries-%d", os.Getpid()))
	for _, d := range []string{scratch, storage} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		defer os.RemoveAll(d)
	}

	rep := &report{Quick: c.quick, Runs: c.runs, Inputs: in, Machine: machine(c), Started: start.UTC()}
	rep.Machine["registry storage"] = describeFS(storage)
	if c.waitLoad > 0 {
		rep.LoadWait = waitForLoad(ctx, c.waitLoad, c.waitMax)
	}
	rep.LoadStart = loadAvg()
	b := &bench{c: c, in: in, scratch: scratch, storage: storage}
	for _, cs := range b.cases() {
		if c.only != nil && !c.only[cs.id] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := b.measure(ctx, cs)
		if err != nil {
			return fmt.Errorf("%s: %w", cs.id, err)
		}
		rep.Cases = append(rep.Cases, res)
	}
	if c.only == nil || c.only["P5"] {
		p5, err := b.version(ctx)
		if err != nil {
			return fmt.Errorf("P5: %w", err)
		}
		rep.Version = p5
	}
	rep.LoadEnd = loadAvg()
	rep.Seconds = time.Since(start).Seconds()
	rep.compute()
	if err := rep.write(c.out); err != nil {
		return err
	}
	logf("wrote %s and %s (%s)", filepath.Join(c.out, "results.json"), filepath.Join(c.out, "RESULTS.md"), time.Since(start).Round(time.Second))
	rep.summary(os.Stderr)
	return nil
}

// waitForLoad waits, at most max, for the 1-minute load average to drop below want.
func waitForLoad(ctx context.Context, want float64, maxWait time.Duration) string {
	start := time.Now()
	for {
		l := loadAvg()
		var one float64
		fmt.Sscan(l, &one)
		if one < want {
			return fmt.Sprintf("load %.2f < %.2f after %s", one, want, time.Since(start).Round(time.Second))
		}
		if time.Since(start) > maxWait || ctx.Err() != nil {
			return fmt.Sprintf("load still %.2f after %s (wanted < %.2f): measured anyway", one, time.Since(start).Round(time.Second), want)
		}
		logf("waiting for load < %.2f (now %s)", want, l)
		select {
		case <-ctx.Done():
		case <-time.After(15 * time.Second):
		}
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

var errFailed = errors.New("tool failed")

// defaultStorage is /dev/shm when it has room for the largest case (P2b: the layout in six
// registries): registries then never wait for the disk — writing 6 GiB a run otherwise trips the
// kernel's dirty-page throttling and the figures swing by ±50 % with the disk, not the client.
func defaultStorage(quick bool, fallback string) string {
	need := uint64(10 << 30)
	if quick {
		need = 3 << 30
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err == nil && st.Bavail*uint64(st.Bsize) >= need {
		return "/dev/shm"
	}
	return fallback
}

func describeFS(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return dir
	}
	kind := "disk"
	if st.Type == 0x01021994 { // TMPFS_MAGIC
		kind = "tmpfs"
	}
	return fmt.Sprintf("%s (%s), fresh for every run", filepath.Dir(dir), kind)
}

// serveOne is -serve: a registry to point tools at by hand, its access log on stderr.
func serveOne(ctx context.Context, c *config, dir string) error {
	accessLog = true
	var rtt time.Duration
	if c.rtt > 0 {
		rtt = c.rtt
	}
	r, err := startRegistry(ctx, c.registry, dir, rtt)
	if err != nil {
		return err
	}
	defer r.stop()
	fmt.Println(r.host())
	<-ctx.Done()
	return nil
}

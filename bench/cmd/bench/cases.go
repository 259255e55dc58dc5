package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ecrpush/ecrpush/internal/credhelper"
)

const (
	repo = "bench"
	tag  = "t"
)

// ggcrName is the go-containerregistry contender's row name.
const ggcrName = "ggcr MultiWrite, jobs 16, shared transport"

var caseIDs = []string{"P1", "P1w", "P2", "P2f", "P2b", "P3", "P3w", "P4l", "P4a", "P5", "P6w"}

// contender is one way of doing a case's job: one process, or several run in sequence or at once.
type contender struct {
	name  string
	mode  string // one | seq | par
	argvs func(hosts []string) [][]string
	// nobody runs the process as uid 65534 when we are root: skopeo keeps its blob-info cache in
	// /var/lib/containers/cache for root (whatever HOME says), and would otherwise remember blob
	// locations and compressed digests from earlier runs.
	nobody bool
	tool   string
}

// benchCase is one row group of RESULTS.md.
type benchCase struct {
	id, title  string
	regs       int
	rtt        time.Duration
	runs       int
	seed       func(ctx context.Context, dir string) error // fills a registry storage dir that every run starts from (P3)
	contenders []contender
	bytes      int64 // payload per destination, for MB/s
}

type bench struct {
	c       *config
	in      *inputs
	scratch string // tools' HOME and TMPDIR, per run
	storage string // registries' storage, per run (tmpfs when there is room)
	seq     atomic.Int64
}

func (b *bench) ecrpushC(name, source string, n int) contender {
	return b.ecrpushBin(b.c.ecrpush, "ecrpush", name, source, n)
}

func (b *bench) ecrpushBin(bin, tool, name, source string, n int) contender {
	return contender{name: name, mode: "one", tool: tool, argvs: func(hosts []string) [][]string {
		argv := []string{bin, "push", "--source", source, "--tag", tag}
		argv = append(argv, b.c.extra...)
		for _, h := range hosts[:n] {
			argv = append(argv, "--destination", h+"/"+repo)
		}
		return [][]string{argv}
	}}
}

func (b *bench) craneC(name, path, mode string) contender {
	return contender{name: name, mode: mode, tool: "crane", argvs: func(hosts []string) [][]string {
		var out [][]string
		for _, h := range hosts {
			out = append(out, []string{b.c.crane, "push", path, h + "/" + repo + ":" + tag})
		}
		return out
	}}
}

func (b *bench) skopeoC(name, source, mode string) contender {
	return contender{name: name, mode: mode, tool: "skopeo", nobody: true, argvs: func(hosts []string) [][]string {
		var out [][]string
		for _, h := range hosts {
			out = append(out, []string{b.c.skopeo, "copy", "--insecure-policy", "--dest-tls-verify=false", "--quiet", source, "docker://" + h + "/" + repo + ":" + tag})
		}
		return out
	}}
}

// ggcrC is go-containerregistry's remote.MultiWrite, 16 jobs, one shared transport
// (bench/cmd/ggcrpush): the library configured as ecrpush configures its own uploads.
func (b *bench) ggcrC(name, layoutDir string) contender {
	return contender{name: name, mode: "one", tool: "ggcr", argvs: func(hosts []string) [][]string {
		argv := []string{b.c.ggcr, "--layout", layoutDir, "--jobs", "16"}
		for _, h := range hosts {
			argv = append(argv, "--dest", h+"/"+repo+":"+tag)
		}
		return [][]string{argv}
	}}
}

func (b *bench) limitC(name string) contender {
	return contender{name: name, mode: "one", tool: "limit", argvs: func(hosts []string) [][]string {
		argv := []string{b.c.limit, "--layout", b.in.Layout}
		for _, h := range hosts {
			argv = append(argv, "--dest", h+"/"+repo+":"+tag)
		}
		return [][]string{argv}
	}}
}

func (b *bench) cases() []benchCase {
	in, c := b.in, b.c
	layout := "oci-layout:" + in.Layout + ":bench"
	n := c.fanout
	nx := fmt.Sprintf("×%d", n)
	runs := c.runs
	var out []benchCase
	for _, w := range []struct {
		id   string
		rtt  time.Duration
		what string
	}{{"P1", 0, "loopback"}, {"P1w", c.rtt, fmt.Sprintf("slow link (%s round trip)", c.rtt)}} {
		out = append(out, benchCase{id: w.id, regs: 1, rtt: w.rtt, runs: runs, bytes: in.LayoutBytes,
			title: fmt.Sprintf("OCI layout (%d × %d MiB, incompressible) to one registry, %s", in.Spec.Layers, in.Spec.LayerBytes>>20, w.what),
			contenders: []contender{
				b.ecrpushC("ecrpush", layout, 1),
				b.craneC("crane", in.Layout, "one"),
				b.skopeoC("skopeo", "oci:"+in.Layout+":bench", "one"),
				b.limitC("limit (bare protocol)"),
				b.ggcrC(ggcrName, in.Layout),
			}})
	}
	archive := "docker-archive:" + in.Archive
	out = append(out, benchCase{id: "P2", regs: 1, runs: runs, bytes: in.ArchiveBytes,
		title: fmt.Sprintf("docker-save archive of the Go toolchain (%d MiB uncompressed, compressible) to one registry", in.ArchiveBytes>>20),
		contenders: []contender{
			b.ecrpushC("ecrpush", archive, 1),
			b.craneC("crane", in.Archive, "one"),
			b.skopeoC("skopeo", archive, "one"),
		}})
	out = append(out, benchCase{id: "P2f", regs: n, runs: runs, bytes: in.ArchiveBytes,
		title: fmt.Sprintf("the same archive to %d registries: one ecrpush run against %d runs of each peer", n, n),
		contenders: []contender{
			b.ecrpushC("ecrpush", archive, n),
			b.craneC("crane"+nx+" seq", in.Archive, "seq"),
			b.craneC("crane"+nx+" par", in.Archive, "par"),
			b.skopeoC("skopeo"+nx+" seq", archive, "seq"),
			b.skopeoC("skopeo"+nx+" par", archive, "par"),
		}})
	out = append(out, benchCase{id: "P2b", regs: n, runs: runs, bytes: in.LayoutBytes,
		title: fmt.Sprintf("OCI layout (%d MiB) to %d registries", in.LayoutBytes>>20, n),
		contenders: []contender{
			b.ecrpushC("ecrpush", layout, n),
			b.limitC("limit (bare protocol, all at once)"),
			b.craneC("crane"+nx+" par", in.Layout, "par"),
		}})
	for _, w := range []struct {
		id   string
		rtt  time.Duration
		what string
	}{{"P3", 0, "loopback"}, {"P3w", c.rtt, fmt.Sprintf("slow link (%s)", c.rtt)}} {
		out = append(out, benchCase{id: w.id, regs: n, rtt: w.rtt, runs: runs, seed: b.seedLayout,
			title: fmt.Sprintf("no-op re-push: the OCI layout (%d layers) already in all %d registries, %s", in.Spec.Layers, n, w.what),
			contenders: []contender{
				b.ecrpushC("ecrpush", layout, n),
				b.craneC("crane"+nx+" par", in.Layout, "par"),
				b.ggcrC(ggcrName, in.Layout),
			}})
	}
	p4runs := min(runs, 3)
	lc := b.ecrpushC("ecrpush", layout, 1)
	out = append(out, benchCase{id: "P4l", regs: 1, runs: p4runs, bytes: in.LayoutBytes,
		title: fmt.Sprintf("peak RSS: OCI layout (%d MiB) to one registry", in.LayoutBytes>>20), contenders: []contender{lc}})
	ac := b.ecrpushC("ecrpush", "docker-archive:"+in.BigArchive, 1)
	out = append(out, benchCase{id: "P4a", regs: 1, runs: p4runs, bytes: in.BigBytes,
		title: fmt.Sprintf("peak RSS: docker-save archive (%d MiB uncompressed, incompressible) to one registry", in.BigBytes>>20), contenders: []contender{ac}})
	small := in.Small
	out = append(out, benchCase{id: "P6w", regs: 1, rtt: c.rtt, runs: runs, bytes: in.SmallBytes,
		title: fmt.Sprintf("OCI layout of %d small layers (%d MiB) to one registry, slow link (%s)", in.Spec.SmallLayers, in.SmallBytes>>20, c.rtt),
		contenders: []contender{
			b.ecrpushC("ecrpush", "oci-layout:"+small+":bench", 1),
			b.craneC("crane", small, "one"),
			b.skopeoC("skopeo", "oci:"+small+":bench", "one"),
			b.ggcrC(ggcrName, small),
		}})
	if b.c.base != "" {
		// -ecrpush-base: the other build beside ecrpush, with the same arguments.
		for i := range out {
			cs := &out[i]
			for _, c := range cs.contenders {
				if c.tool == "ecrpush" {
					base := c
					base.name, base.tool = "ecrpush (base)", "ecrpush-base"
					argvs := c.argvs
					base.argvs = func(hosts []string) [][]string {
						var out [][]string
						for _, a := range argvs(hosts) {
							out = append(out, append([]string{b.c.base}, a[1:]...))
						}
						return out
					}
					cs.contenders = append(cs.contenders, base)
					break
				}
			}
		}
	}
	return out
}

// seedLayout fills dir with a registry's storage holding the layout at bench:t (pushed by ecrpush).
func (b *bench) seedLayout(ctx context.Context, dir string) error {
	r, err := startRegistry(ctx, b.c.registry, dir, 0)
	if err != nil {
		return err
	}
	defer r.stop()
	rc := &runCtx{base: filepath.Join(b.scratch, "seed")}
	defer os.RemoveAll(rc.base)
	if err := os.MkdirAll(rc.base, 0o755); err != nil {
		return err
	}
	c := b.ecrpushC("seed", "oci-layout:"+b.in.Layout+":bench", 1)
	if err := b.exec(ctx, rc, c, c.argvs([]string{r.host()})[0]); err != nil {
		return err
	}
	_, err = r.check(ctx, repo, tag)
	return err
}

// sample is one timed run.
type sample struct {
	Seconds float64 `json:"seconds"`
	RSSMiB  float64 `json:"rssMiB"`      // the largest peak RSS of the run's processes
	CPU     float64 `json:"cpuSeconds"`  // user + system time of the run's processes (not the registries')
	Stored  int64   `json:"storedBytes"` // config + layers as the (first) destination holds them
}

type runCtx struct {
	base string
	mu   sync.Mutex
	rss  int64 // KiB
	cpu  float64
	n    int
}

func (rc *runCtx) dir(kind string, nobody bool) (string, error) {
	rc.mu.Lock()
	rc.n++
	d := filepath.Join(rc.base, fmt.Sprintf("%s-%d", kind, rc.n))
	rc.mu.Unlock()
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	if nobody && useNobody {
		if err := os.Chown(d, nobodyID(), nobodyID()); err != nil {
			return "", err
		}
	}
	return d, nil
}

// useNobody says whether skopeo can run as nobody: we are root and nobody can reach the inputs.
var useNobody bool

// othersCanReach reports whether every directory from / down to dir is searchable by others.
func othersCanReach(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

func nobodyID() int {
	if u, err := user.Lookup("nobody"); err == nil {
		if id, err := strconv.Atoi(u.Uid); err == nil {
			return id
		}
	}
	return 65534
}

var maxRSSRe = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)

// exec runs one process with a fresh HOME and TMPDIR and a minimal environment, bounded in time.
func (b *bench) exec(ctx context.Context, rc *runCtx, c contender, argv []string) error {
	home, err := rc.dir("home", c.nobody)
	if err != nil {
		return err
	}
	tmp, err := rc.dir("tmp", c.nobody)
	if err != nil {
		return err
	}
	// Peak RSS comes from /usr/bin/time -v: wait4's own figure for a child of this (Go, vfork)
	// process starts at this process's high-water mark, which execve carries over.
	timeV := false
	if _, err := os.Stat(b.c.timeBin); err == nil {
		argv, timeV = append([]string{b.c.timeBin, "-v"}, argv...), true
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// A fresh HOME, TMPDIR, XDG_RUNTIME_DIR and registry auth file per run: skopeo (as nobody)
	// otherwise reads /run/containers/65534/auth.json, which podman or buildah may have left
	// unreadable on this machine, and fails before it starts.
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "TMPDIR=" + tmp, "LANG=C.UTF-8",
		"XDG_RUNTIME_DIR=" + home, "REGISTRY_AUTH_FILE=" + filepath.Join(home, "auth.json")}
	if c.tool == "ecrpush" && b.c.profile != "" {
		cmd.Env = append(cmd.Env, "ECRPUSH_CPUPROFILE="+filepath.Join(b.c.profile, fmt.Sprintf("%03d.pprof", b.seq.Add(1))))
	}
	cmd.Dir = tmp
	var stderr, stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if c.nobody && useNobody {
		id := uint32(nobodyID())
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: id, Gid: id}
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err = cmd.Run()
	var rss int64
	var cpu float64
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss
		}
		cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	if timeV {
		if m := maxRSSRe.FindSubmatch(stderr.Bytes()); m != nil {
			rss, _ = strconv.ParseInt(string(m[1]), 10, 64)
		}
	}
	rc.mu.Lock()
	rc.rss = max(rc.rss, rss)
	rc.cpu += cpu
	rc.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %s: %v\nstdout: %s\nstderr: %s", errFailed, strings.Join(argv, " "), err, tail(stdout.String()), tail(stderr.String()))
	}
	return nil
}

func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}

// once starts the case's registries on fresh storage, times one contender, checks every
// destination holds the image, and tears everything down.
func (b *bench) once(ctx context.Context, cs benchCase, c contender, seed string) (sample, error) {
	run := fmt.Sprintf("%s-%d", cs.id, b.seq.Add(1))
	base, store := filepath.Join(b.scratch, run), filepath.Join(b.storage, run)
	for _, d := range []string{base, store} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(d)
	}
	regs := make([]*registry, cs.regs)
	defer func() {
		for _, r := range regs {
			if r != nil {
				r.stop()
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	for i := range regs {
		g.Go(func() error {
			dir := filepath.Join(store, fmt.Sprintf("reg-%d", i))
			if seed != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				// Hard links: the seeded blobs are immutable, and a re-push rewrites at most a tag
				// link with the same content.
				if out, err := exec.CommandContext(gctx, "cp", "-al", filepath.Join(seed, "data"), filepath.Join(dir, "data")).CombinedOutput(); err != nil {
					return fmt.Errorf("copy seed: %v: %s", err, out)
				}
			}
			r, err := startRegistry(gctx, b.c.registry, dir, cs.rtt)
			regs[i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return sample{}, err
	}
	hosts := make([]string, len(regs))
	for i, r := range regs {
		hosts[i] = r.host()
	}
	rc := &runCtx{base: base}
	argvs := c.argvs(hosts)
	start := time.Now()
	var err error
	switch c.mode {
	case "par":
		var eg errgroup.Group
		for _, argv := range argvs {
			eg.Go(func() error { return b.exec(ctx, rc, c, argv) })
		}
		err = eg.Wait()
	default:
		for _, argv := range argvs {
			if err = b.exec(ctx, rc, c, argv); err != nil {
				break
			}
		}
	}
	d := time.Since(start)
	if err != nil {
		return sample{}, err
	}
	var stored int64
	for i, r := range regs {
		n, err := r.check(ctx, repo, tag)
		if err != nil {
			return sample{}, fmt.Errorf("%s exited 0 but: %w", c.name, err)
		}
		if i == 0 {
			stored = n
		}
	}
	return sample{Seconds: d.Seconds(), RSSMiB: float64(rc.rss) / 1024, CPU: rc.cpu, Stored: stored}, nil
}

// measure runs every contender of cs runs times, alternating contenders run by run (A B C A B C …)
// so a slow phase of the machine hits all of them alike.
func (b *bench) measure(ctx context.Context, cs benchCase) (*caseResult, error) {
	res := &caseResult{ID: cs.id, Title: cs.title, Registries: cs.regs, RTTms: cs.rtt.Milliseconds(), Bytes: cs.bytes}
	var seed string
	if cs.seed != nil {
		seed = filepath.Join(b.storage, cs.id+"-seed")
		if err := os.MkdirAll(seed, 0o755); err != nil {
			return nil, err
		}
		defer os.RemoveAll(seed)
		if err := cs.seed(ctx, seed); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
	}
	for _, c := range cs.contenders {
		cr := &contenderResult{Name: c.name, Mode: c.mode, Tool: c.tool}
		for i, argv := range c.argvs(placeholders(cs.regs)) {
			if c.mode == "one" && i > 0 {
				break
			}
			cr.Commands = append(cr.Commands, b.display(argv, c))
		}
		res.Contenders = append(res.Contenders, cr)
	}
	for r := range cs.runs {
		for i, c := range cs.contenders {
			s, err := b.once(ctx, cs, c, seed)
			if err != nil {
				return nil, err
			}
			res.Contenders[i].Samples = append(res.Contenders[i].Samples, s)
			logf("%-4s %-26s run %d/%d: %6.3f s  cpu %6.3f s  rss %4.0f MiB", cs.id, c.name, r+1, cs.runs, s.Seconds, s.CPU, s.RSSMiB)
		}
	}
	for _, cr := range res.Contenders {
		cr.summarize()
	}
	return res, nil
}

func placeholders(n int) []string {
	var hs []string
	for i := range n {
		hs = append(hs, fmt.Sprintf("$REG%d", i+1))
	}
	return hs
}

// display is argv with the work directory and binaries named symbolically, for RESULTS.md.
func (b *bench) display(argv []string, c contender) string {
	var out []string
	for i, a := range argv {
		if i == 0 {
			a = filepath.Base(a)
		}
		a = strings.ReplaceAll(a, filepath.Join(b.c.work, "inputs"), "$INPUTS")
		out = append(out, a)
	}
	s := strings.Join(out, " ")
	if c.nobody && useNobody {
		s += "   (as nobody, fresh HOME)"
	}
	return s
}

// version is P5: `ecrpush version` and a credential-helper `get` answered from its cache, each
// against a bare Go binary (bench/cmd/hello), alternated run by run and exec'd directly (no
// /usr/bin/time, whose own start would double what is measured).
func (b *bench) version(ctx context.Context) (*versionResult, error) {
	n := 40
	if b.c.quick {
		n = 10
	}
	base := filepath.Join(b.scratch, "P5")
	home := filepath.Join(base, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(base)
	helper := filepath.Join(base, "docker-credential-ecrpush")
	if err := os.Symlink(b.c.ecrpush, helper); err != nil {
		return nil, err
	}
	const host = "111122223333.dkr.ecr.us-east-1.amazonaws.com"
	const role = "arn:aws:iam::111122223333:role/bench"
	if err := seedHelperCache(filepath.Join(home, ".cache", "ecrpush"), role, host); err != nil {
		return nil, err
	}
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8", "AWS_ROLE_ARN=" + role, "AWS_REGION=us-east-1"}
	runs := []struct {
		argv  []string
		stdin string
		out   *[]float64
		want  string
	}{
		{[]string{b.c.hello}, "", new([]float64), "hello"},
		{[]string{b.c.ecrpush, "version"}, "", new([]float64), "ecrpush"},
		{[]string{helper, "get"}, host + "\n", new([]float64), `"Secret":"bench-cached-token"`},
	}
	for i := range n + 1 {
		for _, r := range runs {
			cmd := exec.CommandContext(ctx, r.argv[0], r.argv[1:]...)
			cmd.Env, cmd.Dir, cmd.Stdin = env, base, strings.NewReader(r.stdin)
			start := time.Now()
			out, err := cmd.Output()
			d := time.Since(start)
			if err != nil || !strings.Contains(string(out), r.want) {
				return nil, fmt.Errorf("%s: %v: %s", strings.Join(r.argv, " "), err, out)
			}
			if i > 0 { // the first round warms the page cache
				*r.out = append(*r.out, float64(d.Microseconds())/1000)
			}
		}
	}
	st, err := os.Stat(b.c.ecrpush)
	if err != nil {
		return nil, err
	}
	med := func(ms []float64) float64 {
		s := slices.Clone(ms)
		sort.Float64s(s)
		return median(s)
	}
	return &versionResult{Runs: *runs[1].out, MedianMs: med(*runs[1].out), HelloMs: med(*runs[0].out), HelperMs: med(*runs[2].out),
		HelloRuns: *runs[0].out, HelperRuns: *runs[2].out, BinaryMiB: float64(st.Size()) / (1 << 20)}, nil
}

// seedHelperCache writes the token cache entry docker-credential-ecrpush looks up for role in
// us-east-1 (the key internal/cli builds: role|region|variant|endpoint), fresh for 12 hours, so a
// get answers without federating. A key that no longer matches shows as a failed get, not as a
// faster one.
func seedHelperCache(dir, role, host string) error {
	now := time.Now()
	c := &credhelper.Cache{Dir: dir}
	return c.Store(&credhelper.Entry{Key: role + "|us-east-1||", Region: "us-east-1", Username: "AWS", Secret: "bench-cached-token",
		RequestedAt: now, ExpiresAt: now.Add(12 * time.Hour), Hosts: map[string]string{host: "111122223333"}})
}

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecrpush/ecrpush/sandbox"
	"github.com/ecrpush/ecrpush/sandbox/fault"
)

// tenPercent is the fault profile of the matrix: about one request in ten fails — 500/503, a
// throttle (429 with Retry-After, or ThrottlingException), a connection reset in the middle of
// the body — and one GET answer in fifty is cut short (manifests read again, blobs uploaded
// again from a new session).
var tenPercent = fault.Config{ErrorRate: .05, ThrottleRate: .03, ResetRate: .02, TruncateRate: .02, RetryAfter: fault.D(time.Second)}

// everyDest are prod and staging in both regions.
var everyDest = []struct{ account, region string }{
	{sandbox.ProdAccount, "us-east-1"}, {sandbox.ProdAccount, "eu-west-1"},
	{sandbox.StagingAccount, "us-east-1"}, {sandbox.StagingAccount, "eu-west-1"},
}

func replicateTo() string {
	var s []string
	for _, d := range everyDest {
		s = append(s, d.account+":"+d.region)
	}
	return strings.Join(s, ",")
}

// faultedConfig is the fast sandbox with the matrix's faults on STS, the ECR API, every registry and
// the token issuers, replayable from seed.
func faultedConfig(seed int64) *sandbox.Config {
	cfg := fastConfig()
	cfg.Seed = seed
	cfg.Faults = sandbox.FaultsConfig{STS: tenPercent, ECR: tenPercent, Registries: tenPercent, Issuers: tenPercent}
	return cfg
}

// TestFaultMatrix pushes under 10% injected faults, with native replication and with a copy fan-out,
// over many seeds: every run must succeed, every destination hold the same digest, and every image
// there be whole. Each seed runs its own sandbox with several pushes at once (their own repositories),
// so faults also land while other pushes and replication-configuration merges are in flight.
func TestFaultMatrix(t *testing.T) {
	seeds, perSeed := 2, 13 // 2 modes × 2 seeds × 13 runs = 52 runs
	if long() {
		seeds, perSeed = 20, 5
	}
	var mu sync.Mutex
	runs, faults := 0, 0
	for _, mode := range []string{"native", "copy"} {
		for s := range seeds {
			seed := int64(1000*len(mode) + s + 1)
			t.Run(fmt.Sprintf("%s/seed=%d", mode, seed), func(t *testing.T) {
				h := newHarness(t, faultedConfig(seed))
				n := h.faultRuns(t, mode, seed, perSeed)
				ev := len(h.sb.Faults.Events())
				t.Logf("seed %d: %d runs, %d faults injected", seed, n, ev)
				mu.Lock()
				runs += n
				faults += ev
				mu.Unlock()
			})
		}
	}
	t.Logf("fault matrix: %d successful runs, %d faults injected", runs, faults)
}

// faultRuns runs n pushes at once in h's sandbox and checks every destination; it returns how many
// succeeded and were verified.
func (h *harness) faultRuns(t *testing.T, mode string, seed int64, n int) int {
	type run struct {
		repo, src, digest string
		r                 result
		took              time.Duration
	}
	rs := make([]*run, n)
	for i := range rs {
		src, digest := randomSource(t, 2048, 3)
		rs[i] = &run{repo: fmt.Sprintf("fault/%s-%d", mode, i), src: src, digest: digest}
	}
	var wg sync.WaitGroup
	for i, r := range rs {
		args := []string{"push", "--role-arn", ciRole, "--source", r.src, "--repository", r.repo, "--tag", "v1,stable",
			"--replicate-to", replicateTo()}
		if mode == "copy" {
			args = append(args, "--replication", "copy", "--destination-role-name", deployRole)
		} else {
			args = append(args, "--configure-replication", "--replication-prefix", "fault/", "--replication-timeout", "2m")
		}
		wg.Go(func() {
			start := time.Now()
			r.r = h.run(fmt.Sprintf("seed %d run %d", seed, i), h.github(), args...)
			r.took = time.Since(start)
		})
	}
	wg.Wait()
	h.noFaults()
	ok := 0
	ctx := context.Background()
	for _, r := range rs {
		if r.r.code != 0 {
			t.Errorf("seed %d %s: exit %d after %s: %s\n%s", seed, r.repo, r.r.code, r.took.Round(time.Millisecond), r.r.errLine, r.r.stderr)
			continue
		}
		var repl []struct{ Account, Region, Status, URI string }
		out := githubOutput(r.r.output, "replication")
		if err := json.Unmarshal([]byte(out), &repl); err != nil || len(repl) != len(everyDest) {
			t.Errorf("seed %d %s: replication output %q: %v", seed, r.repo, out, err)
			continue
		}
		want := map[string]string{"native": "COMPLETE", "copy": "COPIED"}[mode]
		good := true
		for _, x := range repl {
			if x.Status != want || !strings.HasSuffix(x.URI, "@"+r.digest) {
				t.Errorf("seed %d %s: %s:%s is %s (%s), want %s of %s", seed, r.repo, x.Account, x.Region, x.Status, x.URI, want, r.digest)
				good = false
			}
		}
		all := append([]struct{ account, region string }{{sandbox.CIAccount, ciRegion}}, everyDest...)
		for _, d := range all {
			for _, tag := range []string{"v1", "stable"} {
				if err := h.verify(ctx, d.account, d.region, r.repo, tag, r.digest); err != nil {
					t.Errorf("seed %d: %v", seed, err)
					good = false
				}
			}
		}
		if good {
			ok++
		}
		t.Logf("seed %d %s: %s", seed, r.repo, r.took.Round(time.Millisecond))
	}
	return ok
}

// githubOutput reads one output from a GITHUB_OUTPUT file (name<<DELIM ... DELIM).
func githubOutput(file, key string) string {
	lines := strings.Split(file, "\n")
	for i, l := range lines {
		name, delim, ok := strings.Cut(l, "<<")
		if !ok || name != key {
			continue
		}
		var v []string
		for _, x := range lines[i+1:] {
			if x == delim {
				return strings.Join(v, "\n")
			}
			v = append(v, x)
		}
	}
	return ""
}

// blobUpload matches a blob's upload (a PUT with the blob, after the POST that opened the session).
func blobUpload(r sandbox.Request) bool {
	return r.Method == "PUT" && strings.Contains(r.Path, "/blobs/uploads/")
}

// TestFaultBudget: faults no retry budget covers — the ECR API or a registry down from the start,
// a registry that never answers or asks for an hour's pause, or one that dies in the middle of an
// upload, before the tags, or in the middle of a copy — fail the run with one clear line (exit 1),
// within the bounds the retry budget sets (a registry down: 30 s; silent: 2 minutes), and leave no
// tag that points at missing blobs anywhere. The registry cases run at once, each in its own ci
// region of one sandbox.
func TestFaultBudget(t *testing.T) {
	down := fault.Config{ErrorRate: 1}
	t.Run("ECR API down", func(t *testing.T) {
		h := newHarness(t, nil)
		h.sb.Faults.Set(sandbox.EndpointECR, down)
		src, _ := randomSource(t, 1024, 1)
		r := h.run("ECR API down", h.github(), "push", "--role-arn", ciRole, "--source", src, "--repository", "fault/budget", "--tag", "v1")
		if r.code != 1 || !strings.Contains(r.errLine, "ECR") || !strings.Contains(r.errLine, "attempts") {
			t.Errorf("exit %d, want 1 with the ECR call and its attempts named: %s", r.code, r.errLine)
		}
		oneLine(t, r.errLine)
		if w := h.sb.Log.Writes(); len(w) != 0 {
			t.Errorf("writes with the ECR API down: %+v", w)
		}
	})

	cfg := fastConfig()
	cfg.Accounts[0].Regions = []string{"us-east-1", "eu-west-1", "us-west-2", "ap-south-1", "eu-central-1", "ap-northeast-1"}
	h := newHarness(t, cfg)
	reg := func(account, region string) string {
		return sandbox.RegistryEndpoint(sandbox.RegistryID{Account: account, Region: region})
	}
	cases := []struct {
		name, region string // the ci region pushed to
		copy         bool
		// endpoint goes down at once, or when the log shows a request to it matching when.
		endpoint string
		when     func(sandbox.Request) bool
		fault    *fault.Config // instead of every request failing with a 5xx
		want     string        // in the error line, besides the repository
		within   time.Duration // the run must have failed by then (0: no bound checked)
	}{
		// A registry that never answers: two sends of the ping, 30 s each without headers, spend the
		// 60 s budget (internal/push's DefaultHeaderTimeout and DefaultRetryBudget).
		{name: "registry never answers", region: "eu-central-1", endpoint: reg(sandbox.CIAccount, "eu-central-1"),
			fault: &fault.Config{StallRate: 1}, want: "no response headers", within: 2 * time.Minute},
		// A throttle whose Retry-After (an hour) the budget cannot cover fails at once.
		{name: "registry asks for an hour", region: "ap-northeast-1", endpoint: reg(sandbox.CIAccount, "ap-northeast-1"),
			fault: &fault.Config{ThrottleRate: 1, RetryAfter: fault.D(time.Hour)}, want: "retry after 1h0m0s", within: 30 * time.Second},
		{name: "registry down", region: "ap-south-1", endpoint: reg(sandbox.CIAccount, "ap-south-1"), within: 30 * time.Second},
		{name: "registry dies mid-upload", region: "us-east-1", endpoint: reg(sandbox.CIAccount, "us-east-1"),
			when: blobUpload},
		{name: "registry dies before the tags", region: "eu-west-1", endpoint: reg(sandbox.CIAccount, "eu-west-1"),
			when: func(r sandbox.Request) bool {
				return r.Method == "PUT" && strings.Contains(r.Path, "/manifests/sha256:")
			}},
		{name: "copy destination dies mid-copy", region: "us-west-2", copy: true, endpoint: reg(sandbox.ProdAccount, "eu-west-1"),
			when: blobUpload, want: sandbox.ProdAccount + ":eu-west-1"},
	}
	var wg sync.WaitGroup
	results := make([]result, len(cases))
	took := make([]time.Duration, len(cases))
	for i, tc := range cases {
		src, _ := randomSource(t, 64<<10, 4)
		args := []string{"push", "--role-arn", ciRole, "--region", tc.region, "--source", src, "--repository", "fault/budget",
			"--tag", "v1,stable", "--jobs", "1"}
		if tc.copy {
			args = append(args, "--replicate-to", replicateTo(), "--replication", "copy", "--destination-role-name", deployRole)
		}
		switch {
		case tc.fault != nil:
			h.sb.Faults.Set(tc.endpoint, *tc.fault)
		case tc.when == nil:
			h.sb.Faults.Set(tc.endpoint, down)
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			stop := make(chan struct{})
			defer close(stop)
			if tc.when != nil {
				go func() {
					tick := time.NewTicker(2 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
						}
						for _, r := range h.sb.Log.Entries() {
							if r.Endpoint == tc.endpoint && tc.when(r) {
								h.sb.Faults.Set(tc.endpoint, down)
								return
							}
						}
					}
				}()
			}
			start := time.Now()
			results[i] = h.runCtx(ctx, tc.name, h.github(), false, args...)
			took[i] = time.Since(start)
			t.Logf("%s: failed after %s: %s", tc.name, took[i].Round(time.Millisecond), results[i].errLine)
		})
	}
	wg.Wait()
	for i, tc := range cases {
		cfg, _ := h.sb.Faults.Config(tc.endpoint)
		if tc.fault == nil && cfg.ErrorRate != 1 {
			t.Errorf("%s: the fault never fired", tc.name)
		}
		r := results[i]
		if tc.within > 0 && took[i] > tc.within {
			t.Errorf("%s: failed after %s, not within %s", tc.name, took[i].Round(time.Millisecond), tc.within)
		}
		if r.code != 1 {
			t.Errorf("%s: exit %d, want 1 (a failure after retries): %s", tc.name, r.code, r.errLine)
		}
		oneLine(t, r.errLine)
		for _, w := range []string{"fault/budget", tc.want} {
			if !strings.Contains(r.errLine, w) {
				t.Errorf("%s: the error line lacks %q: %s", tc.name, w, r.errLine)
			}
		}
	}
	h.noFaults()
	ctx := context.Background()
	whole := 0
	for _, id := range h.sb.RegistryIDs() {
		tags, err := h.tagsWhole(ctx, id.Account, id.Region, "fault/budget")
		if err != nil {
			t.Errorf("%s/%s: a tag points at a broken image: %v", id.Account, id.Region, err)
		}
		whole += len(tags)
	}
	t.Logf("after the failures: %d tags across the %d registries, every one whole", whole, len(h.sb.RegistryIDs()))
}

// TestTokenDiesWithSession: ECR's registry token reports 12 h but stops working with the role
// session that fetched it. A push of about ten seconds with 4 s credentials must get through:
// the keychain renews the token with the credentials where the SDK says when they end
// (TestECRTokenLifeBoundByCredentials in internal/push), and here — credentials shorter than the
// SDK cache's one-minute refresh window, whose end it no longer reports — by fetching the token
// again once when a registry answers 401.
func TestTokenDiesWithSession(t *testing.T) {
	cfg := fastConfig()
	cfg.CredentialLifetime = sandbox.Dur(4 * time.Second)
	cfg.ECRTokenReportsTTL = true // reports the default 12 h
	cfg.Faults.Registries = fault.Config{Latency: fault.D(250 * time.Millisecond)}
	h := newHarness(t, cfg)
	src, digest := randomSource(t, 4096, 12)
	start := time.Now()
	r := h.run("push outliving its token", h.github(), "push", "--role-arn", ciRole, "--source", src, "--repository", "team/session",
		"--tag", "v1", "--jobs", "1")
	took := time.Since(start)
	if r.code != 0 {
		t.Fatalf("push failed after %s: %s\n%s", took.Round(time.Second), r.errLine, r.stderr)
	}
	if took < 8*time.Second {
		t.Errorf("the push took %s, not long enough to outlive 4 s credentials twice", took.Round(time.Millisecond))
	}
	refused := 0
	for _, e := range h.sb.Log.Entries() {
		if strings.HasPrefix(e.Endpoint, "registry/") && e.Status == 401 && e.Path != "/v2/" {
			refused++
		}
	}
	tokens := h.sb.Log.Count(sandbox.EndpointECR, "GetAuthorizationToken")
	if refused == 0 || tokens < 2 {
		t.Errorf("%d requests refused with a dead token and %d tokens fetched: the token never died, the test proves nothing", refused, tokens)
	}
	h.noFaults()
	if err := h.verify(context.Background(), sandbox.CIAccount, ciRegion, "team/session", "v1", digest); err != nil {
		t.Error(err)
	}
	t.Logf("push took %s: %d requests refused with a dead token, each sent again; %d GetAuthorizationToken calls", took.Round(time.Millisecond), refused, tokens)
}

package replicate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/sandbox"
	"github.com/ecrpush/ecrpush/sandbox/fault"
)

const latency = 40 * time.Millisecond

func TestCopyFansOutReadingTheSourceOnce(t *testing.T) {
	cfg := fastConfig()
	cfg.Faults.Registries.Latency = fault.D(latency) // every registry request takes at least this long
	sb := start(t, cfg)
	s := federated(t)
	ctx := context.Background()
	a := randomArtifact(t, 32<<10, 4)
	pushTo(t, s.Config, a, "v1")
	layers, _ := a.Image.Layers()

	sb.Log.Reset()
	dests := all4(t)
	sts, err := replicate.Copy(ctx, replicate.CopyOptions{Session: s, Repository: repo, Digest: a.Digest.String(), Tags: []string{"v1"},
		Destinations: dests, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	entries := sb.Log.Entries()
	webIdentity, chained := sb.Log.Count(sandbox.EndpointSTS, "AssumeRoleWithWebIdentity"), sb.Log.Count(sandbox.EndpointSTS, "AssumeRole")
	for i, st := range sts {
		d := dests[i]
		if st.Status != replicate.StatusCopied || st.Account != d.Account || st.Region != d.Region || !strings.HasSuffix(st.URI, "/"+repo+"@"+a.Digest.String()) {
			t.Errorf("status %+v", st)
		}
		got, err := headDigest(t, destConfig(t, s, d), "v1")
		if err != nil || got != a.Digest {
			t.Errorf("%s: read back %s (%v), pushed %s", d, got, err, a.Digest)
		}
	}

	// The source (the ci registry) was read once: each layer fetched exactly one time.
	src := sandbox.RegistryEndpoint(sandbox.RegistryID{Account: ci, Region: "us-east-1"})
	gets := map[string]int{}
	for _, e := range entries {
		if e.Endpoint == src && e.Method == "GET" && strings.Contains(e.Path, "/blobs/") {
			gets[e.Path[strings.LastIndex(e.Path, "/")+1:]]++
		}
		if e.Endpoint == src && e.Write() {
			t.Errorf("copy wrote to the source: %s %s", e.Method, e.Path)
		}
	}
	for _, l := range layers {
		d, _ := l.Digest()
		if gets[d.String()] != 1 {
			t.Errorf("layer %s read %d times from the source, want 1", d, gets[d.String()])
		}
	}
	if cn, _ := a.Image.ConfigName(); gets[cn.String()] > 1 {
		t.Errorf("config read %d times", gets[cn.String()])
	}

	// Uploads to different registries overlapped in time: a request that started on one registry while a
	// request on another, begun at most `latency` earlier, could not have finished.
	var uploads []sandbox.Request
	regs := map[string]bool{}
	for _, e := range entries {
		if strings.HasPrefix(e.Endpoint, "registry/") && e.Endpoint != src && strings.Contains(e.Path, "/blobs/uploads/") {
			uploads = append(uploads, e)
			regs[e.Endpoint] = true
		}
	}
	if len(regs) != 4 {
		t.Fatalf("uploads reached %d registries, want 4", len(regs))
	}
	overlaps := map[string]bool{}
	for _, x := range uploads {
		for _, y := range uploads {
			if x.Endpoint != y.Endpoint && !y.Time.Before(x.Time) && y.Time.Sub(x.Time) < latency {
				overlaps[x.Endpoint] = true
				overlaps[y.Endpoint] = true
			}
		}
	}
	if len(overlaps) < 4 {
		t.Errorf("uploads overlapped on only %d of 4 registries: not parallel", len(overlaps))
	}
	// Per-account federation: one web-identity exchange per destination account, no chaining needed.
	if webIdentity != 2 {
		t.Errorf("%d AssumeRoleWithWebIdentity calls for 2 destination accounts", webIdentity)
	}
	if chained != 0 {
		t.Errorf("%d AssumeRole calls, want 0 (Session.Role is preferred)", chained)
	}
}

func TestCopyChainsWhenTheRoleDoesNotTrustTheToken(t *testing.T) {
	cfg := fastConfig()
	// prod's deploy role admits only role chaining from ci, not the job's token.
	for i, r := range cfg.Accounts[1].Roles {
		if r.Name == "ecrpush-deploy" {
			cfg.Accounts[1].Roles[i].TrustPolicy = sandbox.TrustPolicy(prod, "repo:example/nothing:*", "0", "sts.amazonaws.com", ciRole)
		}
	}
	sb := start(t, cfg)
	s := federated(t)
	a := randomArtifact(t, 1024, 1)
	pushTo(t, s.Config, a, "v1")
	dests := all4(t)[:1]
	sts, err := replicate.Copy(context.Background(), replicate.CopyOptions{Session: s, Artifact: a, Repository: repo, Tags: []string{"v1"}, Destinations: dests})
	if err != nil {
		t.Fatal(err)
	}
	if sts[0].Status != replicate.StatusCopied {
		t.Errorf("status %+v", sts[0])
	}
	if n := sb.Log.Count(sandbox.EndpointSTS, "AssumeRole"); n != 1 {
		t.Errorf("%d AssumeRole calls, want 1 (chained after the web identity was refused)", n)
	}
}

func TestCopyWithoutCredentialsSaysWhatToPass(t *testing.T) {
	start(t, fastConfig())
	s := federated(t)
	a := randomArtifact(t, 1024, 1)
	dests, _ := replicate.ParseDestinations([]string{prod + ":us-east-1", "eu-west-1"}, ci, "us-east-1", "")
	sts, err := replicate.Copy(context.Background(), replicate.CopyOptions{Session: s, Artifact: a, Repository: repo, Destinations: dests})
	if err == nil || !fixable.Is(err) || !strings.Contains(err.Error(), "--destination-role-name") {
		t.Fatalf("err %v", err)
	}
	// The same-account destination needs no role and was copied anyway.
	if sts[0].Status != replicate.StatusFailed || sts[1].Status != replicate.StatusCopied {
		t.Errorf("statuses %+v", sts)
	}
}

// With backfill off, an image pushed before its rule is copied where roles allow (backfill_test.go has
// the default, a backfill).
func TestFallbackCopiesAnImagePushedBeforeTheRuleWithoutBackfill(t *testing.T) {
	cases := []struct {
		name     string
		roleName string
		wantErr  []string
	}{
		{"with destination roles", "ecrpush-deploy", nil},
		{"without", "", []string{"already in the repository before the replication rule covered it", "--backfill", "--replication copy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start(t, fastConfig())
			s := federated(t)
			ctx := context.Background()
			a := randomArtifact(t, 4096, 2)
			pushTo(t, s.Config, a, "v1") // before any rule
			dests, err := replicate.ParseDestinations([]string{prod + ":us-east-1," + prod + ":eu-west-1," + staging + ":us-east-1," + staging + ":eu-west-1"}, ci, "us-east-1", tc.roleName)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := replicate.Configure(ctx, ciClient(s), repo, dests, testConfigure); err != nil {
				t.Fatal(err)
			}
			_, herr := headDigest(t, s.Config, a.Digest.String())
			existed := herr == nil
			res := pushTo(t, s.Config, a, "v1") // again: nothing is written, so ECR replicates nothing
			if !existed || res.BytesUploaded != 0 {
				t.Fatalf("second push: existed=%v uploaded=%d", existed, res.BytesUploaded)
			}
			sts, err := replicate.Run(ctx, replicate.Options{Mode: replicate.ModeNative, Session: s, Repository: repo, Digest: a.Digest.String(),
				Tags: []string{"v1"}, Artifact: a, Existed: existed, Destinations: dests, Timeout: 20 * time.Second, WaitOptions: fast, NoBackfill: true})
			if tc.wantErr != nil {
				var we *replicate.WaitError
				if err == nil || !fixable.Is(err) || !errors.As(err, &we) || len(we.Preexisting) != 4 {
					t.Fatalf("err %v", err)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q: %v", w, err)
					}
				}
				for _, st := range sts {
					if st.Status != replicate.StatusFailed || st.FailureCode != replicate.FailureExistedBeforeRule {
						t.Errorf("status %+v", st)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range sts {
				if st.Status != replicate.StatusCopied {
					t.Errorf("status %+v", st)
				}
				if got, err := headDigest(t, destConfig(t, s, dests[i]), "v1"); err != nil || got != a.Digest {
					t.Errorf("%s: read back %s (%v)", dests[i], got, err)
				}
			}
		})
	}
}

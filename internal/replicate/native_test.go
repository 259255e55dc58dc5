package replicate_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/sandbox"
)

// unrelated rules the ci registry already has; they must survive every merge untouched.
const unrelated = `{"rules":[
 {"destinations":[{"region":"eu-west-1","registryId":"777788889999"}],"repositoryFilters":[{"filter":"legacy/","filterType":"PREFIX_MATCH"},{"filter":"tools","filterType":"PREFIX_MATCH"}]},
 {"destinations":[{"region":"us-east-1","registryId":"444455556666"},{"region":"eu-west-1","registryId":"111122223333"}],"repositoryFilters":[{"filter":"other/x","filterType":"PREFIX_MATCH"}]}
]}`

func TestNativeReplicationReachesEveryDestination(t *testing.T) {
	cfg := fastConfig()
	cfg.Accounts[0].Replication = map[string]json.RawMessage{"us-east-1": json.RawMessage(unrelated)}
	sb := start(t, cfg)
	s := federated(t)
	ctx := context.Background()
	before := rawRules(t, s.Config)
	if len(before) != 2 {
		t.Fatalf("sandbox started with %d rules", len(before))
	}

	dests := all4(t)
	res, err := replicate.Configure(ctx, ciClient(s), repo, dests, testConfigure)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Writes != 1 || len(res.After.Rules) != 3 {
		t.Fatalf("configure: changed=%v writes=%d rules=%d", res.Changed, res.Writes, len(res.After.Rules))
	}
	after := rawRules(t, s.Config)
	for i := range before {
		if string(before[i]) != string(after[i]) {
			t.Errorf("rule %d changed:\nbefore %s\nafter  %s", i+1, before[i], after[i])
		}
	}
	// Configuring again is a no-op: no second write.
	res, err = replicate.Configure(ctx, ciClient(s), repo, dests, testConfigure)
	if err != nil || res.Changed {
		t.Fatalf("second configure: changed=%v err=%v", res != nil && res.Changed, err)
	}
	if n := sb.Log.Count(sandbox.EndpointECR, "PutReplicationConfiguration"); n != 1 {
		t.Errorf("%d PutReplicationConfiguration calls, want 1", n)
	}

	a := randomArtifact(t, 2048, 2)
	pushTo(t, s.Config, a, "v1")
	sts, err := replicate.Wait(ctx, ciClient(s), repo, a.Digest.String(), dests, 20*time.Second, fast...)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	for i, st := range sts {
		d := dests[i]
		if st.Status != replicate.StatusComplete || st.Account != d.Account || st.Region != d.Region || st.Seconds <= 0 {
			t.Errorf("status %+v", st)
		}
		if want := d.Host() + "/" + repo + "@" + a.Digest.String(); st.URI != want {
			t.Errorf("uri %s, want %s", st.URI, want)
		}
		// By digest: push writes the manifest by digest, then the tag — two replication events, and the
		// sandbox reports COMPLETE when the first lands (see the report on sandbox/ecr).
		got, err := headDigest(t, destConfig(t, s, d), a.Digest.String())
		if err != nil || got != a.Digest {
			t.Errorf("%s: read back %s (%v), pushed %s", d, got, err, a.Digest)
		}
	}
}

func TestNativeFailureNamesTheCause(t *testing.T) {
	cfg := fastConfig()
	cfg.Accounts[2].RegistryPolicy = nil // staging: nothing lets ci replicate in
	start(t, cfg)
	s := federated(t)
	ctx := context.Background()
	dests := all4(t)
	if _, err := replicate.Configure(ctx, ciClient(s), repo, dests, testConfigure); err != nil {
		t.Fatal(err)
	}
	a := randomArtifact(t, 1024, 1)
	pushTo(t, s.Config, a, "v1")
	sts, err := replicate.Wait(ctx, ciClient(s), repo, a.Digest.String(), dests, 20*time.Second, append(fast, replicate.WithSourceAccount(ci))...)
	if err == nil {
		t.Fatal("wait succeeded without staging's registry policy")
	}
	if !fixable.Is(err) {
		t.Errorf("a missing registry policy is for the user to fix (exit 2): %v", err)
	}
	var we *replicate.WaitError
	if !errors.As(err, &we) || len(we.Failed) != 2 {
		t.Fatalf("want 2 failed destinations, got %v", err)
	}
	for _, want := range []string{staging + ":us-east-1 FAILED (ReplicationAccessDenied)", staging + ":eu-west-1 FAILED", "ecr:ReplicateImage", "arn:aws:iam::" + ci + ":root"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
	for _, st := range sts {
		want := replicate.StatusComplete
		if st.Account == staging {
			want = replicate.StatusFailed
		}
		if st.Status != want {
			t.Errorf("%s:%s is %s, want %s", st.Account, st.Region, st.Status, want)
		}
	}
}

func TestWaitHonoursTimeout(t *testing.T) {
	cfg := fastConfig()
	cfg.ReplicationDelay = sandbox.Dur(time.Minute)
	sb := start(t, cfg)
	s := federated(t)
	ctx := context.Background()
	dests := all4(t)
	if _, err := replicate.Configure(ctx, ciClient(s), repo, dests, testConfigure); err != nil {
		t.Fatal(err)
	}
	a := randomArtifact(t, 1024, 1)
	pushTo(t, s.Config, a, "v1")
	sb.Log.Reset()
	begin := time.Now()
	sts, err := replicate.Wait(ctx, ciClient(s), repo, a.Digest.String(), dests, 3*time.Second)
	took := time.Since(begin)
	if took < 3*time.Second || took > 4*time.Second {
		t.Errorf("a 3s timeout took %s", took)
	}
	var we *replicate.WaitError
	if !errors.As(err, &we) || len(we.Pending) != 4 || fixable.Is(err) {
		t.Fatalf("want a (non-fixable) timeout with 4 pending destinations, got %v", err)
	}
	if !strings.Contains(err.Error(), "not finished within 3s") || !strings.Contains(err.Error(), "IN_PROGRESS") {
		t.Errorf("error: %v", err)
	}
	for _, st := range sts {
		if st.Status != replicate.StatusInProgress {
			t.Errorf("status %+v", st)
		}
	}
	// The default rate: at most one call per 2 s for the image (t=0, t=2s; 3s leaves no room for a third).
	if n := sb.Log.Count(sandbox.EndpointECR, "DescribeImageReplicationStatus"); n != 2 {
		t.Errorf("%d DescribeImageReplicationStatus calls in 3s, want 2", n)
	}
}

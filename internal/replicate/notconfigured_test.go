package replicate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/sandbox"
)

func TestMissingRuleFailsWithTheConfigurationToApply(t *testing.T) {
	sb := start(t, fastConfig())
	s := federated(t)
	ctx := context.Background()
	o := testConfigure
	o.Apply = false
	_, err := replicate.Configure(ctx, ciClient(s), repo, all4(t), o)
	var nc *replicate.NotConfiguredError
	if !fixable.Is(err) || !errors.As(err, &nc) {
		t.Fatalf("want a fixable NotConfiguredError, got %v", err)
	}
	if !strings.Contains(err.Error(), "--configure-replication") {
		t.Errorf("error does not say how to fix: %v", err)
	}
	if w := sb.Log.Writes(); len(w) != 0 {
		t.Errorf("a check wrote: %+v", w)
	}
	// The printed JSON is exactly what --configure-replication writes: apply it by hand, then the check passes.
	details := nc.Details()
	cfg, err := replicate.ParseConfigJSON([]byte(strings.Join(details[1:], "\n")))
	if err != nil {
		t.Fatalf("details are not a configuration: %v\n%s", err, strings.Join(details, "\n"))
	}
	if _, err := ciClient(s).PutReplicationConfiguration(ctx, &ecr.PutReplicationConfigurationInput{ReplicationConfiguration: cfg}); err != nil {
		t.Fatalf("ECR refused the printed configuration: %v", err)
	}
	res, err := replicate.Configure(ctx, ciClient(s), repo, all4(t), o)
	if err != nil || res.Changed {
		t.Fatalf("after applying the printed configuration: %v", err)
	}
}

func TestWaitNamesDestinationsNeverReported(t *testing.T) {
	start(t, fastConfig())
	s := federated(t)
	ctx := context.Background()
	dests := all4(t)
	if _, err := replicate.Configure(ctx, ciClient(s), repo, dests[:2], testConfigure); err != nil { // prod only
		t.Fatal(err)
	}
	a := randomArtifact(t, 1024, 1)
	pushTo(t, s.Config, a, "v1")
	begin := time.Now()
	sts, err := replicate.Wait(ctx, ciClient(s), repo, a.Digest.String(), dests, 2*time.Second, fast...)
	if d := time.Since(begin); d < 2*time.Second || d > 3*time.Second {
		t.Errorf("a 2s timeout took %s", d)
	}
	var we *replicate.WaitError
	if !errors.As(err, &we) || len(we.Missing) != 2 || len(we.Pending) != 0 {
		t.Fatalf("want 2 missing destinations, got %v", err)
	}
	if !strings.Contains(err.Error(), "never reported for "+staging+":us-east-1, "+staging+":eu-west-1") {
		t.Errorf("error: %v", err)
	}
	for i, st := range sts {
		want := replicate.StatusComplete
		if i >= 2 {
			want = replicate.StatusFailed
		}
		if st.Status != want {
			t.Errorf("status %+v, want %s", st, want)
		}
	}
}

func TestCopyAnIndex(t *testing.T) {
	sb := start(t, fastConfig())
	s := federated(t)
	idx, err := random.Index(2048, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	a, err := push.IndexArtifact("random index", idx)
	if err != nil {
		t.Fatal(err)
	}
	pushTo(t, s.Config, a, "multi")
	sb.Log.Reset()
	dests := all4(t)[1:3]
	sts, err := replicate.Copy(context.Background(), replicate.CopyOptions{Session: s, Repository: repo, Digest: a.Digest.String(), Tags: []string{"multi"}, Destinations: dests})
	if err != nil {
		t.Fatal(err)
	}
	gets := map[string]int{}
	src := sandbox.RegistryEndpoint(sandbox.RegistryID{Account: ci, Region: "us-east-1"})
	for _, e := range sb.Log.Entries() {
		if e.Endpoint == src && e.Method == "GET" && strings.Contains(e.Path, "/blobs/") {
			gets[e.Path]++
		}
	}
	if len(gets) != 3*3 { // 3 images × (2 layers + config)
		t.Errorf("read %d distinct blobs from the source, want 9", len(gets))
	}
	for p, n := range gets {
		if n != 1 {
			t.Errorf("%s read %d times", p, n)
		}
	}
	for i, st := range sts {
		if st.Status != replicate.StatusCopied {
			t.Errorf("status %+v", st)
		}
		if got, err := headDigest(t, destConfig(t, s, dests[i]), "multi"); err != nil || got != a.Digest {
			t.Errorf("%s: read back %s (%v)", dests[i], got, err)
		}
	}
}

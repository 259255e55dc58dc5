package ecr

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func configureReplication(t *testing.T, c *awsecr.Client, filter string, dests ...types.ReplicationDestination) {
	t.Helper()
	rule := types.ReplicationRule{Destinations: dests}
	if filter != "" {
		rule.RepositoryFilters = []types.RepositoryFilter{{Filter: aws.String(filter), FilterType: types.RepositoryFilterTypePrefixMatch}}
	}
	if _, err := c.PutReplicationConfiguration(ctx, &awsecr.PutReplicationConfigurationInput{
		ReplicationConfiguration: &types.ReplicationConfiguration{Rules: []types.ReplicationRule{rule}}}); err != nil {
		t.Fatal(err)
	}
}

func dest(account, region string) types.ReplicationDestination {
	return types.ReplicationDestination{RegistryId: aws.String(account), Region: aws.String(region)}
}

// waitBackfill polls DescribeReplicationBackfillResults until the backfill is terminal.
func waitBackfill(t *testing.T, c *awsecr.Client, id string) *awsecr.DescribeReplicationBackfillResultsOutput {
	t.Helper()
	var out *awsecr.DescribeReplicationBackfillResultsOutput
	ok := eventually(t, 5*time.Second, func() bool {
		var err error
		out, err = c.DescribeReplicationBackfillResults(ctx, &awsecr.DescribeReplicationBackfillResultsInput{ReplicationBackfillId: aws.String(id)})
		if err != nil {
			t.Fatalf("DescribeReplicationBackfillResults: %v", err)
		}
		switch out.Status {
		case types.ReplicationBackfillStatusComplete, types.ReplicationBackfillStatusFailed, types.ReplicationBackfillStatusStopped:
			return true
		}
		if len(out.Results) > 0 {
			t.Fatalf("results before a terminal status (%s)", out.Status)
		}
		return false
	})
	if !ok {
		t.Fatalf("backfill %s never ended: %s", id, out.Status)
	}
	return out
}

func TestBackfillReplicatesImagesPushedBeforeTheRule(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 100 * time.Millisecond})
	ci := e.session(ciAccount, "pusher")
	c := e.client(ci, "us-east-1")
	pass := e.password(ci, "us-east-1")
	e.createRepo(ci, "us-east-1", "team/app", false)
	e.createRepo(ci, "us-east-1", "other/x", false)
	old, _ := random.Image(512, 2)
	if err := remote.Write(e.ref(ciEast, "team/app:v1"), old, basic(pass)); err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(e.ref(ciEast, "team/app:stable").(name.Tag), old, basic(pass)); err != nil {
		t.Fatal(err)
	}
	untagged, _ := random.Image(256, 1)
	ud, _ := untagged.Digest()
	if err := remote.Write(e.ref(ciEast, "team/app@"+ud.String()), untagged, basic(pass)); err != nil {
		t.Fatal(err)
	}
	other, _ := random.Image(256, 1)
	if err := remote.Write(e.ref(ciEast, "other/x:v1"), other, basic(pass)); err != nil {
		t.Fatal(err)
	}
	prod := e.session(prodAccount, "pusher")
	if _, err := e.client(prod, "us-east-1").PutRegistryPolicy(ctx, &awsecr.PutRegistryPolicyInput{PolicyText: aws.String(replicatePolicy)}); err != nil {
		t.Fatal(err)
	}

	// Not in the configuration yet: refused.
	_, err := c.StartReplicationBackfill(ctx, &awsecr.StartReplicationBackfillInput{Destination: &types.ReplicationDestination{
		RegistryId: aws.String(prodAccount), Region: aws.String("us-east-1")}})
	if apiCode(err) != excInvalidParameter {
		t.Fatalf("backfill to an unconfigured destination: %v", err)
	}
	configureReplication(t, c, "team/", dest(prodAccount, "us-east-1"), dest(ciAccount, "eu-west-1"))
	start, err := c.StartReplicationBackfill(ctx, &awsecr.StartReplicationBackfillInput{Destination: &types.ReplicationDestination{
		RegistryId: aws.String(prodAccount), Region: aws.String("us-east-1")}})
	if err != nil {
		t.Fatal(err)
	}
	if start.Status != types.ReplicationBackfillStatusPreparing || !backfillIDPattern.MatchString(aws.ToString(start.ReplicationBackfillId)) || start.StartedAt == nil {
		t.Fatalf("start: %+v", start)
	}
	// One in progress per destination Region: prod and ci-west are different regions, a second prod
	// backfill in us-east-1 is not.
	if _, err := c.StartReplicationBackfill(ctx, &awsecr.StartReplicationBackfillInput{Destination: &types.ReplicationDestination{
		RegistryId: aws.String(prodAccount), Region: aws.String("us-east-1")}}); apiCode(err) != excBackfillInProgress {
		t.Fatalf("second backfill for us-east-1: %v", err)
	}
	west, err := c.StartReplicationBackfill(ctx, &awsecr.StartReplicationBackfillInput{Destination: &types.ReplicationDestination{
		RegistryId: aws.String(ciAccount), Region: aws.String("eu-west-1")}})
	if err != nil {
		t.Fatalf("backfill to another region: %v", err)
	}
	// PREPARING has no progress yet.
	pre, err := c.DescribeReplicationBackfillResults(ctx, &awsecr.DescribeReplicationBackfillResultsInput{ReplicationBackfillId: start.ReplicationBackfillId})
	if err != nil || pre.Status != types.ReplicationBackfillStatusPreparing || pre.Progress != nil {
		t.Fatalf("preparing: %+v %v", pre, err)
	}
	out := waitBackfill(t, c, aws.ToString(start.ReplicationBackfillId))
	if out.Status != types.ReplicationBackfillStatusComplete || out.EndedAt == nil || out.Progress == nil {
		t.Fatalf("backfill ended %+v", out)
	}
	// Each image and tag combination is one replication: v1, stable and the untagged image.
	if p := out.Progress; aws.ToInt32(p.TotalReplicationCount) != 3 || aws.ToInt32(p.CompletedReplicationCount) != 3 || aws.ToInt32(p.FailedReplicationCount) != 0 {
		t.Fatalf("progress %+v", p)
	}
	if len(out.Results) != 3 {
		t.Fatalf("results %+v", out.Results)
	}
	for _, r := range out.Results {
		if aws.ToString(r.RepositoryName) != "team/app" || r.Status != types.ReplicationBackfillResultStatusComplete {
			t.Errorf("result %+v", r)
		}
	}
	prodPass := e.password(prod, "us-east-1")
	for _, ref := range []string{"team/app:v1", "team/app:stable", "team/app@" + ud.String()} {
		if _, err := remote.Head(e.ref(prodEast, ref), basic(prodPass)); err != nil {
			t.Errorf("%s not backfilled: %v", ref, err)
		}
	}
	if _, err := remote.Head(e.ref(prodEast, "other/x:v1"), basic(prodPass)); err == nil {
		t.Error("a repository outside the rules was backfilled")
	}
	// Backfill outcomes are in the backfill's results, not in the image's replication status.
	if s := statuses(t, c, "team/app", types.ImageIdentifier{ImageTag: aws.String("v1")}); len(s) != 0 {
		t.Errorf("statuses after backfill: %v", s)
	}
	// Terminal: cannot stop. Unknown or malformed id: not found / invalid.
	if _, err := c.StopReplicationBackfill(ctx, &awsecr.StopReplicationBackfillInput{ReplicationBackfillId: start.ReplicationBackfillId}); apiCode(err) != excBackfillInvalidStatus {
		t.Errorf("stop a complete backfill: %v", err)
	}
	if _, err := c.StopReplicationBackfill(ctx, &awsecr.StopReplicationBackfillInput{ReplicationBackfillId: aws.String(randomUUID())}); apiCode(err) != excBackfillNotFound {
		t.Errorf("stop an unknown backfill: %v", err)
	}
	if _, err := c.DescribeReplicationBackfillResults(ctx, &awsecr.DescribeReplicationBackfillResultsInput{ReplicationBackfillId: aws.String("nope")}); apiCode(err) != excInvalidParameter {
		t.Errorf("malformed id: %v", err)
	}
	waitBackfill(t, c, aws.ToString(west.ReplicationBackfillId))
	list, err := c.ListReplicationBackfills(ctx, &awsecr.ListReplicationBackfillsInput{})
	if err != nil || len(list.Backfills) != 2 || aws.ToString(list.Backfills[0].ReplicationBackfillId) != aws.ToString(west.ReplicationBackfillId) {
		t.Fatalf("list (newest first): %+v %v", list, err)
	}
	// Only COMPLETE results when asked.
	failedOnly, err := c.DescribeReplicationBackfillResults(ctx, &awsecr.DescribeReplicationBackfillResultsInput{
		ReplicationBackfillId: start.ReplicationBackfillId, ResultStatusFilter: types.ReplicationBackfillResultStatusFailed})
	if err != nil || len(failedOnly.Results) != 0 {
		t.Errorf("failed results: %+v %v", failedOnly, err)
	}
}

func TestBackfillStopAndLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: time.Hour}) // backfills stay PREPARING
	ci := e.session(ciAccount, "pusher")
	c := e.client(ci, "us-east-1")
	regions := []string{"eu-west-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-2", "eu-west-3", "eu-central-1",
		"ap-south-1", "ap-northeast-1", "ap-northeast-2", "ca-central-1"}
	var dests []types.ReplicationDestination
	for _, r := range regions {
		dests = append(dests, dest(ciAccount, r))
	}
	configureReplication(t, c, "", dests...)
	var ids []*string
	for i, r := range regions {
		out, err := c.StartReplicationBackfill(ctx, &awsecr.StartReplicationBackfillInput{Destination: &types.ReplicationDestination{
			RegistryId: aws.String(ciAccount), Region: aws.String(r)}})
		if i < maxBackfillsInProgress {
			if err != nil {
				t.Fatalf("backfill %d: %v", i+1, err)
			}
			ids = append(ids, out.ReplicationBackfillId)
			continue
		}
		if apiCode(err) != excLimitExceeded {
			t.Fatalf("the 11th backfill in progress: %v", err)
		}
	}
	// Stopped while preparing: STOPPED at once, never any progress.
	stop, err := c.StopReplicationBackfill(ctx, &awsecr.StopReplicationBackfillInput{ReplicationBackfillId: ids[0]})
	if err != nil || stop.Status != types.ReplicationBackfillStatusStopped {
		t.Fatalf("stop: %+v %v", stop, err)
	}
	out, err := c.DescribeReplicationBackfillResults(ctx, &awsecr.DescribeReplicationBackfillResultsInput{ReplicationBackfillId: ids[0]})
	if err != nil || out.Status != types.ReplicationBackfillStatusStopped || out.Progress != nil || out.EndedAt == nil {
		t.Fatalf("stopped: %+v %v", out, err)
	}
	// A slot is free again.
	if _, err := c.StartReplicationBackfill(ctx, &awsecr.StartReplicationBackfillInput{Destination: &types.ReplicationDestination{
		RegistryId: aws.String(ciAccount), Region: aws.String("ca-central-1")}}); err != nil {
		t.Fatalf("after a stop: %v", err)
	}
	page, err := c.ListReplicationBackfills(ctx, &awsecr.ListReplicationBackfillsInput{MaxResults: aws.Int32(4)})
	if err != nil || len(page.Backfills) != 4 || page.NextToken == nil {
		t.Fatalf("first page: %+v %v", page, err)
	}
	if _, err := c.ListReplicationBackfills(ctx, &awsecr.ListReplicationBackfillsInput{MaxResults: aws.Int32(51)}); apiCode(err) != excInvalidParameter {
		t.Errorf("maxResults 51: %v", err)
	}
}

func TestImmutableDestinationKeepsItsTag(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 50 * time.Millisecond})
	ci := e.session(ciAccount, "pusher")
	c := e.client(ci, "us-east-1")
	prod := e.session(prodAccount, "pusher")
	if _, err := e.client(prod, "us-east-1").PutRegistryPolicy(ctx, &awsecr.PutRegistryPolicyInput{PolicyText: aws.String(replicatePolicy)}); err != nil {
		t.Fatal(err)
	}
	e.createRepo(prod, "us-east-1", "team/app", true)
	prodPass := e.password(prod, "us-east-1")
	first, _ := random.Image(256, 1)
	if err := remote.Write(e.ref(prodEast, "team/app:v1"), first, basic(prodPass)); err != nil {
		t.Fatal(err)
	}
	e.createRepo(ci, "us-east-1", "team/app", false)
	configureReplication(t, c, "team/", dest(prodAccount, "us-east-1"))
	img, _ := random.Image(512, 1)
	d, _ := img.Digest()
	if err := remote.Write(e.ref(ciEast, "team/app:v1"), img, basic(e.password(ci, "us-east-1"))); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if !eventually(t, 5*time.Second, func() bool {
		got = statuses(t, c, "team/app", types.ImageIdentifier{ImageDigest: aws.String(d.String())})
		return settled(got)
	}) || got[prodAccount+"/us-east-1"] != StatusComplete {
		t.Fatalf("statuses %v: the image is replicated, so COMPLETE", got)
	}
	if _, err := remote.Head(e.ref(prodEast, "team/app@"+d.String()), basic(prodPass)); err != nil {
		t.Fatalf("the image itself did not land: %v", err)
	}
	tagged, err := remote.Head(e.ref(prodEast, "team/app:v1"), basic(prodPass))
	fd, _ := first.Digest()
	if err != nil || tagged.Digest != fd {
		t.Fatalf("v1 at the destination is %v (%v), want the old %s", tagged, err, fd)
	}
}

package ecr

import (
	"bytes"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const replicatePolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"ReplicationAccessCrossAccount","Effect":"Allow",
 "Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],
 "Resource":"arn:aws:ecr:us-east-1:444455556666:repository/*"}]}`

const replicateOnlyPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
 "Principal":{"AWS":"111122223333"},"Action":"ecr:ReplicateImage","Resource":"*"}]}`

// statuses returns region/registry → status (FAILED:code).
func statuses(t *testing.T, c *awsecr.Client, repo string, id types.ImageIdentifier) map[string]string {
	t.Helper()
	out, err := c.DescribeImageReplicationStatus(ctx, &awsecr.DescribeImageReplicationStatusInput{
		RepositoryName: aws.String(repo), ImageId: &id})
	if err != nil {
		t.Fatalf("DescribeImageReplicationStatus: %v", err)
	}
	m := map[string]string{}
	for _, s := range out.ReplicationStatuses {
		v := string(s.Status)
		if s.FailureCode != nil {
			v += ":" + *s.FailureCode
		}
		m[aws.ToString(s.RegistryId)+"/"+aws.ToString(s.Region)] = v
	}
	return m
}

func settled(m map[string]string) bool {
	for _, v := range m {
		if v == StatusInProgress {
			return false
		}
	}
	return len(m) > 0
}

func sameManifest(t *testing.T, e *env, id RegistryID, ref, pass string, want []byte) {
	t.Helper()
	desc, err := remote.Get(e.ref(id, ref), basic(pass))
	if err != nil {
		t.Fatalf("pull %s from %s: %v", ref, id, err)
	}
	if !bytes.Equal(desc.Manifest, want) {
		t.Fatalf("%s in %s: manifest differs", ref, id)
	}
}

func TestReplication(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 50 * time.Millisecond})
	ci := e.session(ciAccount, "pusher")
	c := e.client(ci, "us-east-1")
	pass := e.password(ci, "us-east-1")
	e.createRepo(ci, "us-east-1", "ci/early", false)
	e.createRepo(ci, "us-east-1", "ci/app", false)
	e.createRepo(ci, "us-east-1", "unfiltered", false)

	early, _ := random.Image(256, 1)
	if err := remote.Write(e.ref(ciEast, "ci/early:v0"), early, basic(pass)); err != nil {
		t.Fatal(err)
	}
	prod := e.session(prodAccount, "pusher")
	if _, err := e.client(prod, "us-east-1").PutRegistryPolicy(ctx, &awsecr.PutRegistryPolicyInput{PolicyText: aws.String(replicatePolicy)}); err != nil {
		t.Fatal(err)
	}
	dests := []types.ReplicationDestination{
		{Region: aws.String("eu-west-1"), RegistryId: aws.String(ciAccount)},
		{Region: aws.String("us-east-1"), RegistryId: aws.String(prodAccount)},
		{Region: aws.String("us-east-1"), RegistryId: aws.String(otherAccount)},
	}
	_, err := c.PutReplicationConfiguration(ctx, &awsecr.PutReplicationConfigurationInput{ReplicationConfiguration: &types.ReplicationConfiguration{
		Rules: []types.ReplicationRule{{Destinations: dests,
			RepositoryFilters: []types.RepositoryFilter{{Filter: aws.String("ci"), FilterType: types.RepositoryFilterTypePrefixMatch}}}}}})
	if err != nil {
		t.Fatal(err)
	}

	img, _ := random.Image(2048, 3)
	if err := remote.Write(e.ref(ciEast, "ci/app:v1"), img, basic(pass)); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	raw, _ := img.RawManifest()
	byTag := types.ImageIdentifier{ImageTag: aws.String("v1")}
	if first := statuses(t, c, "ci/app", byTag); len(first) != 3 {
		t.Fatalf("statuses right after push: %v", first)
	}
	var got map[string]string
	if !eventually(t, 5*time.Second, func() bool { got = statuses(t, c, "ci/app", byTag); return settled(got) }) {
		t.Fatalf("replication did not settle: %v", got)
	}
	want := map[string]string{
		ciAccount + "/eu-west-1":    StatusComplete,
		prodAccount + "/us-east-1":  StatusComplete,
		otherAccount + "/us-east-1": StatusFailed + ":" + FailureAccessDenied,
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: %s, want %s (all %v)", k, got[k], v, got)
		}
	}
	if byDigest := statuses(t, c, "ci/app", types.ImageIdentifier{ImageDigest: aws.String(digest.String())}); len(byDigest) != 3 {
		t.Fatalf("by digest: %v", byDigest)
	}

	// Byte-identical copies, same tag, readable with each destination's own credentials.
	westPass := e.password(ci, "eu-west-1")
	prodPass := e.password(prod, "us-east-1")
	sameManifest(t, e, ciWest, "ci/app:v1", westPass, raw)
	sameManifest(t, e, prodEast, "ci/app:v1", prodPass, raw)
	pulled, err := remote.Image(e.ref(prodEast, "ci/app@"+digest.String()), basic(prodPass))
	if err != nil {
		t.Fatal(err)
	}
	compareLayers(t, img, pulled)

	// Pushed before the rule: not replicated. Not matching the filter: not replicated.
	if s := statuses(t, c, "ci/early", types.ImageIdentifier{ImageTag: aws.String("v0")}); len(s) != 0 {
		t.Fatalf("early image has statuses %v", s)
	}
	if _, err := remote.Get(e.ref(ciWest, "ci/early:v0"), basic(westPass)); err == nil {
		t.Fatal("early image replicated")
	}
	un, _ := random.Image(128, 1)
	if err := remote.Write(e.ref(ciEast, "unfiltered:v1"), un, basic(pass)); err != nil {
		t.Fatal(err)
	}
	if s := statuses(t, c, "unfiltered", types.ImageIdentifier{ImageTag: aws.String("v1")}); len(s) != 0 {
		t.Fatalf("unfiltered repository has statuses %v", s)
	}

	// Cross-account with ReplicateImage but not CreateRepository: the repository must exist.
	if err := e.w.SetRegistryPolicy(otherAccount, "us-east-1", replicateOnlyPolicy); err != nil {
		t.Fatal(err)
	}
	img2, _ := random.Image(512, 1)
	if err := remote.Write(e.ref(ciEast, "ci/app:v2"), img2, basic(pass)); err != nil {
		t.Fatal(err)
	}
	v2 := types.ImageIdentifier{ImageTag: aws.String("v2")}
	eventually(t, 5*time.Second, func() bool { got = statuses(t, c, "ci/app", v2); return settled(got) })
	if got[otherAccount+"/us-east-1"] != StatusFailed+":"+FailureRepositoryCreationDenied {
		t.Fatalf("no CreateRepository: %v", got)
	}
	otherSess := e.session(otherAccount, "pusher")
	e.createRepo(otherSess, "us-east-1", "ci/app", false)
	img3, _ := random.Image(512, 1)
	if err := remote.Write(e.ref(ciEast, "ci/app:v3"), img3, basic(pass)); err != nil {
		t.Fatal(err)
	}
	v3 := types.ImageIdentifier{ImageTag: aws.String("v3")}
	eventually(t, 5*time.Second, func() bool { got = statuses(t, c, "ci/app", v3); return settled(got) })
	if got[otherAccount+"/us-east-1"] != StatusComplete {
		t.Fatalf("existing repository: %v", got)
	}
	raw3, _ := img3.RawManifest()
	sameManifest(t, e, other, "ci/app:v3", e.password(otherSess, "us-east-1"), raw3)
}

func compareLayers(t *testing.T, want, got v1.Image) {
	t.Helper()
	wl, _ := want.Layers()
	gl, err := got.Layers()
	if err != nil || len(wl) != len(gl) {
		t.Fatalf("layers: %v", err)
	}
	for i := range wl {
		wd, _ := wl[i].Digest()
		rc, err := gl[i].Compressed() // ggcr verifies the digest while reading
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(rc); err != nil {
			t.Fatalf("layer %s: %v", wd, err)
		}
		rc.Close()
		if blobDigest(buf.Bytes()) != wd.String() {
			t.Fatalf("layer %d differs", i)
		}
	}
}

func TestReplicationIndexAndPutImage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 10 * time.Millisecond})
	ci := e.session(ciAccount, "pusher")
	c := e.client(ci, "us-east-1")
	pass := e.password(ci, "us-east-1")
	e.createRepo(ci, "us-east-1", "multi", false)
	if _, err := c.PutReplicationConfiguration(ctx, &awsecr.PutReplicationConfigurationInput{ReplicationConfiguration: &types.ReplicationConfiguration{
		Rules: []types.ReplicationRule{{Destinations: []types.ReplicationDestination{{Region: aws.String("eu-west-1"), RegistryId: aws.String(ciAccount)}}}}}}); err != nil {
		t.Fatal(err)
	}
	idx, _ := random.Index(256, 1, 2)
	if err := remote.WriteIndex(e.ref(ciEast, "multi:v1"), idx, basic(pass)); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	v1id := types.ImageIdentifier{ImageTag: aws.String("v1")}
	if !eventually(t, 5*time.Second, func() bool { got = statuses(t, c, "multi", v1id); return settled(got) }) ||
		got[ciAccount+"/eu-west-1"] != StatusComplete {
		t.Fatalf("index replication: %v", got)
	}
	westPass := e.password(ci, "eu-west-1")
	raw, _ := idx.RawManifest()
	sameManifest(t, e, ciWest, "multi:v1", westPass, raw)
	im, _ := idx.IndexManifest()
	for _, m := range im.Manifests {
		child, err := remote.Image(e.ref(ciWest, "multi@"+m.Digest.String()), basic(westPass))
		if err != nil {
			t.Fatalf("child %s: %v", m.Digest, err)
		}
		want, _ := idx.Image(m.Digest)
		compareLayers(t, want, child)
	}

	// PutImage replicates too: a new tag on an existing manifest.
	child := im.Manifests[0].Digest
	bg, err := c.BatchGetImage(ctx, &awsecr.BatchGetImageInput{RepositoryName: aws.String("multi"),
		ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(child.String())}}})
	if err != nil || len(bg.Images) != 1 {
		t.Fatalf("batch get: %v", err)
	}
	if _, err := c.PutImage(ctx, &awsecr.PutImageInput{RepositoryName: aws.String("multi"),
		ImageManifest: bg.Images[0].ImageManifest, ImageTag: aws.String("amd64")}); err != nil {
		t.Fatal(err)
	}
	if !eventually(t, 5*time.Second, func() bool {
		_, err := remote.Get(e.ref(ciWest, "multi:amd64"), basic(westPass))
		return err == nil
	}) {
		t.Fatal("PutImage tag not replicated")
	}
}

func TestCloseStopsWorkers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: time.Hour})
	ci := e.session(ciAccount, "pusher")
	c := e.client(ci, "us-east-1")
	e.createRepo(ci, "us-east-1", "app", false)
	if _, err := c.PutReplicationConfiguration(ctx, &awsecr.PutReplicationConfigurationInput{ReplicationConfiguration: &types.ReplicationConfiguration{
		Rules: []types.ReplicationRule{{Destinations: []types.ReplicationDestination{{Region: aws.String("eu-west-1"), RegistryId: aws.String(ciAccount)}}}}}}); err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(128, 1)
	if err := remote.Write(e.ref(ciEast, "app:v1"), img, basic(e.password(ci, "us-east-1"))); err != nil {
		t.Fatal(err)
	}
	// The copy waits out ReplicationDelay: until then the destination reads IN_PROGRESS.
	got := statuses(t, c, "app", types.ImageIdentifier{ImageTag: aws.String("v1")})
	if len(got) != 1 || got[ciAccount+"/eu-west-1"] != StatusInProgress {
		t.Fatalf("statuses before the delay: %v", got)
	}
	start := time.Now()
	if err := e.svc.Close(); err != nil { // a worker sleeping out the hour-long delay must stop
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
}

// A digest pushed and then tagged is two replication events with statuses of their own: the image
// may read COMPLETE once the digest's copy landed while the tag's is still queued (ECR promises no
// more), and the tag lands after.
func TestReplicationEventsCompleteSeparately(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 150 * time.Millisecond})
	ci := e.session(ciAccount, "pusher")
	c := e.client(ci, "us-east-1")
	pass := e.password(ci, "us-east-1")
	e.createRepo(ci, "us-east-1", "twice", false)
	if _, err := c.PutReplicationConfiguration(ctx, &awsecr.PutReplicationConfigurationInput{ReplicationConfiguration: &types.ReplicationConfiguration{
		Rules: []types.ReplicationRule{{Destinations: []types.ReplicationDestination{{Region: aws.String("eu-west-1"), RegistryId: aws.String(ciAccount)}}}}}}); err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(256, 1)
	d, _ := img.Digest()
	if err := remote.Write(e.ref(ciEast, "twice@"+d.String()), img, basic(pass)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the tag's copy queues behind the digest's, 100 ms later
	if err := remote.Tag(e.ref(ciEast, "twice:v1").(name.Tag), img, basic(pass)); err != nil {
		t.Fatal(err)
	}
	westPass := e.password(ci, "eu-west-1")
	id := types.ImageIdentifier{ImageDigest: aws.String(d.String())}
	sawEarly := false
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		st := statuses(t, c, "twice", id)[ciAccount+"/eu-west-1"]
		_, tagErr := remote.Head(e.ref(ciWest, "twice:v1"), basic(westPass))
		if st == StatusComplete && tagErr != nil {
			sawEarly = true
		}
		if st == StatusComplete && tagErr == nil {
			if !sawEarly {
				t.Error("never saw COMPLETE before the tag landed: the events are not separate")
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the tag never landed")
}

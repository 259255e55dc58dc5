package replicate_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/sandbox"
)

const lifecycle = `{"rules":[{"rulePriority":1,"description":"expire untagged","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`

// Copy mode creates destination repositories with the caller's settings (the ci repository's), and
// --create-repository=false refuses a missing one without creating it.
func TestCopyCreatesDestinationsWithTheSettings(t *testing.T) {
	sb := start(t, fastConfig())
	s := federated(t)
	ctx := context.Background()
	a := randomArtifact(t, 2048, 2)
	dests := all4(t)[:2]
	settings := replicate.DefaultSettings()
	settings.TagImmutability, settings.ScanOnPush, settings.KMSKey = true, false, "alias/images"
	settings.LifecyclePolicy = lifecycle
	settings.Tags = []replicate.Tag{{Key: "team", Value: "platform"}}
	settings.DestinationKMSKeys = map[string]string{prod + ":eu-west-1": "arn:aws:kms:eu-west-1:" + prod + ":key/1234abcd-12ab-34cd-56ef-1234567890ab"}
	sts, err := replicate.Copy(ctx, replicate.CopyOptions{Session: s, Artifact: a, Repository: repo, Tags: []string{"v1"}, Destinations: dests, Settings: &settings, Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range dests {
		if sts[i].Status != replicate.StatusCopied {
			t.Errorf("status %+v", sts[i])
		}
		c := ecr.NewFromConfig(destConfig(t, s, d))
		out, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
		if err != nil {
			t.Fatal(err)
		}
		r := out.Repositories[0]
		wantKey := "alias/images"
		if i == 1 {
			wantKey = settings.DestinationKMSKeys[d.String()]
		}
		if r.ImageTagMutability != types.ImageTagMutabilityImmutable || r.ImageScanningConfiguration.ScanOnPush ||
			r.EncryptionConfiguration.EncryptionType != types.EncryptionTypeKms || aws.ToString(r.EncryptionConfiguration.KmsKey) != wantKey {
			t.Errorf("%s: %s scan=%v %s %s", d, r.ImageTagMutability, r.ImageScanningConfiguration.ScanOnPush, r.EncryptionConfiguration.EncryptionType, aws.ToString(r.EncryptionConfiguration.KmsKey))
		}
		lp, err := c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String(repo)})
		if err != nil || aws.ToString(lp.LifecyclePolicyText) != lifecycle {
			t.Errorf("%s lifecycle: %v", d, err)
		}
		tags, err := c.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: r.RepositoryArn})
		if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Value) != "platform" {
			t.Errorf("%s tags: %+v %v", d, tags, err)
		}
	}
	// --create-repository=false: refused, nothing created.
	sb.Log.Reset()
	settings.Create = false
	_, err = replicate.Copy(ctx, replicate.CopyOptions{Session: s, Artifact: a, Repository: "team/other", Tags: []string{"v1"}, Destinations: dests, Settings: &settings})
	if err == nil || !fixable.Is(err) || !strings.Contains(err.Error(), "creating it is disabled") {
		t.Fatalf("missing repository with Create=false: %v", err)
	}
	if n := sb.Log.Count(sandbox.EndpointECR, "CreateRepository"); n != 0 {
		t.Errorf("%d CreateRepository calls", n)
	}
}

func archive(t *testing.T, c *ecr.Client, digest string) {
	t.Helper()
	if _, err := c.UpdateImageStorageClass(context.Background(), &ecr.UpdateImageStorageClassInput{RepositoryName: aws.String(repo),
		ImageId: &types.ImageIdentifier{ImageDigest: aws.String(digest)}, TargetStorageClass: types.TargetStorageClassArchive}); err != nil {
		t.Fatal(err)
	}
}

// An archived image is not pullable: copy mode says so (source or destination) and restores it only
// when asked.
func TestCopyRefusesArchivedImagesUnlessRestoring(t *testing.T) {
	start(t, fastConfig())
	s := federated(t)
	ctx := context.Background()
	a := randomArtifact(t, 2048, 1)
	pushTo(t, s.Config, a, "v1")
	archive(t, ciClient(s), a.Digest.String())
	dests := all4(t)[:1]
	o := replicate.CopyOptions{Session: s, Repository: repo, Digest: a.Digest.String(), Tags: []string{"v1"}, Destinations: dests}
	_, err := replicate.Copy(ctx, o)
	if err == nil || !fixable.Is(err) || !strings.Contains(err.Error(), "is archived") || !strings.Contains(err.Error(), "--restore-archived") {
		t.Fatalf("copy of an archived source: %v", err)
	}
	o.RestoreArchived = true
	sts, err := replicate.Copy(ctx, o)
	if err != nil || sts[0].Status != replicate.StatusCopied {
		t.Fatalf("copy with --restore-archived: %+v %v", sts, err)
	}
	st, err := replicate.ReadImage(ctx, ciClient(s), "", repo, a.Digest.String())
	if err != nil || st.Status != replicate.ImageActive {
		t.Errorf("source after restore: %+v %v", st, err)
	}
	// Now archived at the destination: that destination fails with the fix, then is restored when asked.
	dc := ecr.NewFromConfig(destConfig(t, s, dests[0]))
	archive(t, dc, a.Digest.String())
	o.RestoreArchived = false
	sts, err = replicate.Copy(ctx, o)
	if err == nil || sts[0].FailureCode != replicate.FailureArchived || !strings.Contains(err.Error(), prod+":us-east-1") {
		t.Fatalf("copy onto an archived destination: %+v %v", sts, err)
	}
	o.RestoreArchived = true
	if sts, err = replicate.Copy(ctx, o); err != nil || sts[0].Status != replicate.StatusCopied {
		t.Fatalf("restore at the destination: %+v %v", sts, err)
	}
	if st, _ := replicate.ReadImage(ctx, dc, "", repo, a.Digest.String()); st.Status != replicate.ImageActive {
		t.Errorf("destination after restore: %+v", st)
	}
}

func TestTemplatePrefixAndSettings(t *testing.T) {
	for in, want := range map[string]string{"team/app": "team", "team/": "team", "team/app/x": "team/app", "app": "ROOT", "": "ROOT", "a/b/": "a/b"} {
		if got := replicate.TemplatePrefix(in); got != want {
			t.Errorf("TemplatePrefix(%q) = %q, want %q", in, got, want)
		}
	}
	bad := []replicate.RepositorySettings{
		{KMSKey: "not a key"},
		{LifecyclePolicy: `{"rules":[]}`},
		{LifecyclePolicy: `{"rules":[{"rulePriority":1}]}`},
		{Tags: []replicate.Tag{{Key: "aws:x", Value: "y"}}},
		{DestinationKMSKeys: map[string]string{prod + ":us-east-1": "arn:aws:kms:eu-west-1:" + prod + ":key/x"}},
		{TemplateRoleName: "bad role"},
	}
	for _, s := range bad {
		if err := s.Validate(); err == nil || !fixable.Is(err) {
			t.Errorf("%+v: %v", s, err)
		}
	}
	if _, err := replicate.ParseTags([]string{"a=1,b=2", "a=3"}); err == nil {
		t.Error("a tag named twice")
	}
	s := replicate.RepositorySettings{KMSKey: "arn:aws:kms:us-east-1:" + prod + ":key/1234abcd-12ab-34cd-56ef-1234567890ab"}
	d := replicate.Destination{Account: prod, Region: "us-east-1"}
	if k, ok := s.KMSFor(d); !ok || k.ARN != s.KMSKey || k.Note != "" {
		t.Errorf("the key where it lives: %+v", k)
	}
	if k, _ := s.KMSFor(replicate.Destination{Account: prod, Region: "eu-west-1"}); k.ARN != "" || !strings.Contains(k.Note, "AWS managed key") {
		t.Errorf("elsewhere: %+v", k)
	}
	s.KMSKey = "alias/images"
	if k, _ := s.KMSFor(d); k.Key != "alias/images" || k.ARN != "arn:aws:kms:us-east-1:"+prod+":alias/images" {
		t.Errorf("alias: %+v", k)
	}
}

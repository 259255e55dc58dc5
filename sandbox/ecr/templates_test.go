package ecr

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const lifecycle = `{"rules":[{"rulePriority":1,"description":"expire untagged","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`

func TestCreationTemplatesAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.client(e.session(prodAccount, "pusher"), "us-east-1")
	create := func(in *awsecr.CreateRepositoryCreationTemplateInput) error {
		_, err := c.CreateRepositoryCreationTemplate(ctx, in)
		return err
	}
	repl := []types.RCTAppliedFor{types.RCTAppliedForReplication}
	bad := []struct {
		name string
		in   *awsecr.CreateRepositoryCreationTemplateInput
	}{
		{"prefix shape", &awsecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("Team/"), AppliedFor: repl}},
		{"no appliedFor", &awsecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("team"), AppliedFor: []types.RCTAppliedFor{}}},
		{"appliedFor value", &awsecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("team"), AppliedFor: []types.RCTAppliedFor{"PUSH"}}},
		{"KMS key in another region", &awsecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("team"), AppliedFor: repl,
			EncryptionConfiguration: &types.EncryptionConfigurationForRepositoryCreationTemplate{EncryptionType: types.EncryptionTypeKms,
				KmsKey: aws.String("arn:aws:kms:eu-west-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab")}}},
		{"KMS key not an ARN", &awsecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("team"), AppliedFor: repl,
			EncryptionConfiguration: &types.EncryptionConfigurationForRepositoryCreationTemplate{EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String("alias/ecr")}}},
		{"role in another account", &awsecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("team"), AppliedFor: repl,
			CustomRoleArn: aws.String("arn:aws:iam::111122223333:role/ecr-templates")}},
		{"lifecycle policy", &awsecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("team"), AppliedFor: repl, LifecyclePolicy: aws.String(`{"rules":[]}`)}},
		{"reserved tag", &awsecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("team"), AppliedFor: repl,
			ResourceTags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("y")}}}},
	}
	for _, b := range bad {
		if err := create(b.in); err == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
	if err := create(&awsecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("team"), AppliedFor: repl,
		ImageTagMutability: types.ImageTagMutabilityImmutable, LifecyclePolicy: aws.String(lifecycle)}); err != nil {
		t.Fatal(err)
	}
	// "team/" is the same template as "team" (ECR always assumes the trailing "/").
	if err := create(&awsecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("team/"), AppliedFor: repl}); apiCode(err) != excTemplateExists {
		t.Errorf("duplicate prefix: %v", err)
	}
	if _, err := c.UpdateRepositoryCreationTemplate(ctx, &awsecr.UpdateRepositoryCreationTemplateInput{Prefix: aws.String("nope")}); apiCode(err) != excTemplateNotFound {
		t.Errorf("update of a missing template: %v", err)
	}
	// Update changes what it names and keeps the rest.
	up, err := c.UpdateRepositoryCreationTemplate(ctx, &awsecr.UpdateRepositoryCreationTemplateInput{Prefix: aws.String("team"),
		ResourceTags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
	if err != nil {
		t.Fatal(err)
	}
	got := up.RepositoryCreationTemplate
	if got.ImageTagMutability != types.ImageTagMutabilityImmutable || aws.ToString(got.LifecyclePolicy) != lifecycle || len(got.ResourceTags) != 1 ||
		got.EncryptionConfiguration == nil || got.EncryptionConfiguration.EncryptionType != types.EncryptionTypeAes256 {
		t.Errorf("updated template %+v", got)
	}
	desc, err := c.DescribeRepositoryCreationTemplates(ctx, &awsecr.DescribeRepositoryCreationTemplatesInput{Prefixes: []string{"team", "absent"}})
	if err != nil || len(desc.RepositoryCreationTemplates) != 1 || aws.ToString(desc.RegistryId) != prodAccount {
		t.Fatalf("describe: %+v %v", desc, err)
	}
	del, err := c.DeleteRepositoryCreationTemplate(ctx, &awsecr.DeleteRepositoryCreationTemplateInput{Prefix: aws.String("team")})
	if err != nil || aws.ToString(del.RepositoryCreationTemplate.Prefix) != "team" {
		t.Fatalf("delete: %+v %v", del, err)
	}
	if _, err := c.DeleteRepositoryCreationTemplate(ctx, &awsecr.DeleteRepositoryCreationTemplateInput{Prefix: aws.String("team")}); apiCode(err) != excTemplateNotFound {
		t.Errorf("second delete: %v", err)
	}
}

func TestReplicationAppliesTheDestinationsTemplate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{delay: 50 * time.Millisecond})
	ci := e.session(ciAccount, "pusher")
	c := e.client(ci, "us-east-1")
	prod := e.session(prodAccount, "pusher")
	pc := e.client(prod, "us-east-1")
	if _, err := pc.PutRegistryPolicy(ctx, &awsecr.PutRegistryPolicyInput{PolicyText: aws.String(replicatePolicy)}); err != nil {
		t.Fatal(err)
	}
	key := "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	mk := func(prefix string, role bool) {
		in := &awsecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String(prefix), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForReplication},
			ImageTagMutability: types.ImageTagMutabilityImmutable, LifecyclePolicy: aws.String(lifecycle),
			EncryptionConfiguration: &types.EncryptionConfigurationForRepositoryCreationTemplate{EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String(key)},
			ResourceTags:            []types.Tag{{Key: aws.String("owner"), Value: aws.String("team")}}}
		if role {
			in.CustomRoleArn = aws.String("arn:aws:iam::444455556666:role/ecr-templates")
		}
		if _, err := pc.CreateRepositoryCreationTemplate(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	mk("team", true)
	mk("norole", false)
	// A pull-through-cache-only ROOT template does not apply to replication.
	if _, err := pc.CreateRepositoryCreationTemplate(ctx, &awsecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("ROOT"),
		AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForPullThroughCache}, ImageTagMutability: types.ImageTagMutabilityImmutable}); err != nil {
		t.Fatal(err)
	}
	configureReplication(t, c, "", dest(prodAccount, "us-east-1"))
	pass := e.password(ci, "us-east-1")
	for _, r := range []string{"team/app", "norole/app", "plain"} {
		e.createRepo(ci, "us-east-1", r, false)
		img, _ := random.Image(128, 1)
		if err := remote.Write(e.ref(ciEast, r+":v1"), img, basic(pass)); err != nil {
			t.Fatal(err)
		}
	}
	var got map[string]string
	eventually(t, 5*time.Second, func() bool {
		got = statuses(t, c, "norole/app", types.ImageIdentifier{ImageTag: aws.String("v1")})
		return settled(got)
	})
	if got[prodAccount+"/us-east-1"] != StatusFailed+":"+FailureTemplateRoleRequired {
		t.Errorf("a template with a KMS key and tags but no role: %v", got)
	}
	eventually(t, 5*time.Second, func() bool {
		return settled(statuses(t, c, "team/app", types.ImageIdentifier{ImageTag: aws.String("v1")})) &&
			settled(statuses(t, c, "plain", types.ImageIdentifier{ImageTag: aws.String("v1")}))
	})
	repos, err := pc.DescribeRepositories(ctx, &awsecr.DescribeRepositoriesInput{RepositoryNames: []string{"team/app", "plain"}})
	if err != nil {
		t.Fatal(err)
	}
	team, plain := repos.Repositories[0], repos.Repositories[1]
	if team.ImageTagMutability != types.ImageTagMutabilityImmutable || team.EncryptionConfiguration.EncryptionType != types.EncryptionTypeKms ||
		aws.ToString(team.EncryptionConfiguration.KmsKey) != key {
		t.Errorf("team/app from the template: %+v %+v", team, team.EncryptionConfiguration)
	}
	if plain.ImageTagMutability != types.ImageTagMutabilityMutable || plain.EncryptionConfiguration.EncryptionType != types.EncryptionTypeAes256 ||
		plain.ImageScanningConfiguration.ScanOnPush {
		t.Errorf("plain has ECR's defaults: %+v", plain)
	}
	lp, err := pc.GetLifecyclePolicy(ctx, &awsecr.GetLifecyclePolicyInput{RepositoryName: aws.String("team/app")})
	if err != nil || aws.ToString(lp.LifecyclePolicyText) != lifecycle {
		t.Errorf("lifecycle policy: %+v %v", lp, err)
	}
	if _, err := pc.GetLifecyclePolicy(ctx, &awsecr.GetLifecyclePolicyInput{RepositoryName: aws.String("plain")}); apiCode(err) != excLifecyclePolicyNotFound {
		t.Errorf("plain lifecycle: %v", err)
	}
	tags, err := pc.ListTagsForResource(ctx, &awsecr.ListTagsForResourceInput{ResourceArn: team.RepositoryArn})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "owner" {
		t.Errorf("tags: %+v %v", tags, err)
	}
}

func TestArchiveAndRestore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ci := e.session(ciAccount, "pusher")
	c := e.client(ci, "us-east-1")
	pass := e.password(ci, "us-east-1")
	e.createRepo(ci, "us-east-1", "cold", false)
	img, _ := random.Image(256, 1)
	d, _ := img.Digest()
	if err := remote.Write(e.ref(ciEast, "cold:v1"), img, basic(pass)); err != nil {
		t.Fatal(err)
	}
	id := &types.ImageIdentifier{ImageDigest: aws.String(d.String())}
	archive := func(class types.TargetStorageClass) (*awsecr.UpdateImageStorageClassOutput, error) {
		return c.UpdateImageStorageClass(ctx, &awsecr.UpdateImageStorageClassInput{RepositoryName: aws.String("cold"), ImageId: id, TargetStorageClass: class})
	}
	if _, err := archive(types.TargetStorageClassStandard); apiCode(err) != excStorageClassUnsupported {
		t.Errorf("restore an active image: %v", err)
	}
	out, err := archive(types.TargetStorageClassArchive)
	if err != nil || out.ImageStatus != types.ImageStatusArchived {
		t.Fatalf("archive: %+v %v", out, err)
	}
	// Describable with imageStatus ANY, hidden by default, not pullable.
	if _, err := c.DescribeImages(ctx, &awsecr.DescribeImagesInput{RepositoryName: aws.String("cold"), ImageIds: []types.ImageIdentifier{*id}}); apiCode(err) != excImageNotFound {
		t.Errorf("default filter shows an archived image: %v", err)
	}
	di, err := c.DescribeImages(ctx, &awsecr.DescribeImagesInput{RepositoryName: aws.String("cold"), ImageIds: []types.ImageIdentifier{*id},
		Filter: &types.DescribeImagesFilter{ImageStatus: types.ImageStatusFilterAny}})
	if err != nil || di.ImageDetails[0].ImageStatus != types.ImageStatusArchived || di.ImageDetails[0].LastArchivedAt == nil {
		t.Fatalf("describe ANY: %+v %v", di, err)
	}
	if _, err := remote.Head(e.ref(ciEast, "cold:v1"), basic(pass)); err == nil {
		t.Error("an archived image is pullable")
	} else if st, _ := regStatus(err); st != 404 {
		t.Errorf("pull of an archived image: %v", err)
	}
	bg, err := c.BatchGetImage(ctx, &awsecr.BatchGetImageInput{RepositoryName: aws.String("cold"), ImageIds: []types.ImageIdentifier{*id}})
	if err != nil || len(bg.Images) != 0 || len(bg.Failures) != 1 {
		t.Errorf("BatchGetImage of an archived image: %+v %v", bg, err)
	}
	out, err = archive(types.TargetStorageClassStandard)
	if err != nil || out.ImageStatus != types.ImageStatusActivating {
		t.Fatalf("restore: %+v %v", out, err)
	}
	if !eventually(t, 5*time.Second, func() bool { _, err := remote.Head(e.ref(ciEast, "cold:v1"), basic(pass)); return err == nil }) {
		t.Fatal("never restored")
	}
	// Pushing an archived image again restores it at once.
	if _, err := archive(types.TargetStorageClassArchive); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(e.ref(ciEast, "cold:v1"), img, basic(pass)); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(e.ref(ciEast, "cold:v1"), basic(pass)); err != nil {
		t.Errorf("re-push did not restore: %v", err)
	}
}

package ecr

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/sandbox/world"
)

var ctx = context.Background()

func TestAPIAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	good := e.session(ciAccount, "pusher")
	forged := &world.Session{AccessKeyID: "ASIAFORGEDFORGED0000", SecretAccessKey: "x", SessionToken: "y"}
	wrongSecret := *good
	wrongSecret.SecretAccessKey = "not-the-secret"
	short := e.w.Issue(e.roles[ciAccount+"/pusher"], "short", time.Minute, false)
	e.clock.advance(2 * time.Minute)
	tests := []struct {
		name string
		sess *world.Session
		code string
	}{
		{"valid", good, ""},
		{"forged key", forged, "UnrecognizedClientException"},
		{"wrong secret", &wrongSecret, "InvalidSignatureException"},
		{"expired", short, "ExpiredTokenException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client(tt.sess, "us-east-1").DescribeRepositories(ctx, &awsecr.DescribeRepositoriesInput{})
			if got := apiCode(err); got != tt.code {
				t.Fatalf("code %q (%v), want %q", got, err, tt.code)
			}
		})
	}
}

func TestAPIGetAuthorizationToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sess := e.w.Issue(e.roles[ciAccount+"/pusher"], "s", 30*time.Minute, false)
	out, err := e.client(sess, "eu-west-1").GetAuthorizationToken(ctx, &awsecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	ad := out.AuthorizationData[0]
	if aws.ToString(ad.ProxyEndpoint) != e.regs[ciWest].URL {
		t.Fatalf("proxyEndpoint %q", aws.ToString(ad.ProxyEndpoint))
	}
	// The token never outlives the credentials that asked for it.
	if d := ad.ExpiresAt.Sub(sess.Expiration); d < -time.Second || d > time.Second {
		t.Fatalf("expiresAt %v, session expires %v", ad.ExpiresAt, sess.Expiration)
	}
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(ad.AuthorizationToken))
	pass, ok := strings.CutPrefix(string(raw), "AWS:")
	if !ok || len(pass) < 1000 {
		t.Fatalf("token shape: ok=%v len=%d", ok, len(pass))
	}
	found := false
	for _, p := range e.svc.Passwords() {
		found = found || p == pass
	}
	if !found {
		t.Fatal("password not recorded")
	}
	long := e.w.Issue(e.roles[ciAccount+"/pusher"], "s", 24*time.Hour, false)
	out, _ = e.client(long, "us-east-1").GetAuthorizationToken(ctx, &awsecr.GetAuthorizationTokenInput{})
	if d := time.Until(*out.AuthorizationData[0].ExpiresAt); d < 11*time.Hour || d > 13*time.Hour {
		t.Fatalf("TTL %v, want 12h", d)
	}
	_, err = e.client(e.session(ciAccount, "tokenonly"), "us-east-1").GetAuthorizationToken(ctx, &awsecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatalf("tokenonly: %v", err)
	}
}

func TestAPIAccessDenied(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sess := e.session(ciAccount, "tokenonly")
	_, err := e.client(sess, "us-east-1").CreateRepository(ctx, &awsecr.CreateRepositoryInput{RepositoryName: aws.String("app")})
	want := "User: arn:aws:sts::111122223333:assumed-role/tokenonly/test is not authorized to perform: ecr:CreateRepository on resource: arn:aws:ecr:us-east-1:111122223333:repository/app because no identity-based policy allows the ecr:CreateRepository action"
	if apiCode(err) != "AccessDeniedException" || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v", err)
	}
	// Global condition keys reach the policy: this role may only work in eu-west-1.
	e.addRole(ciAccount, "westonly", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*",
		"Condition":{"StringEquals":{"aws:RequestedRegion":"eu-west-1"}}}]}`)
	west := e.session(ciAccount, "westonly")
	if _, err := e.client(west, "us-east-1").CreateRepository(ctx, &awsecr.CreateRepositoryInput{RepositoryName: aws.String("app")}); apiCode(err) != "AccessDeniedException" {
		t.Fatalf("us-east-1: %v", err)
	}
	if _, err := e.client(west, "eu-west-1").CreateRepository(ctx, &awsecr.CreateRepositoryInput{RepositoryName: aws.String("app")}); err != nil {
		t.Fatalf("eu-west-1: %v", err)
	}
	pusher := e.session(ciAccount, "pusher")
	_, err = e.client(pusher, "us-east-1").DescribeImages(ctx, &awsecr.DescribeImagesInput{
		RegistryId: aws.String(prodAccount), RepositoryName: aws.String("app")})
	if apiCode(err) != "AccessDeniedException" || !strings.Contains(err.Error(), "no resource-based policy") {
		t.Fatalf("cross-account: %v", err)
	}
}

func TestAPIRepositories(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.client(e.session(ciAccount, "pusher"), "us-east-1")
	out, err := c.CreateRepository(ctx, &awsecr.CreateRepositoryInput{
		RepositoryName:             aws.String("team/app"),
		ImageTagMutability:         types.ImageTagMutabilityImmutable,
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true},
		EncryptionConfiguration:    &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms},
		Tags:                       []types.Tag{{Key: aws.String("team"), Value: aws.String("ci")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Repository
	host := strings.TrimPrefix(e.regs[ciEast].URL, "http://")
	if aws.ToString(r.RepositoryUri) != host+"/team/app" || aws.ToString(r.RepositoryArn) != "arn:aws:ecr:us-east-1:111122223333:repository/team/app" ||
		r.ImageTagMutability != types.ImageTagMutabilityImmutable || !r.ImageScanningConfiguration.ScanOnPush ||
		r.EncryptionConfiguration.EncryptionType != types.EncryptionTypeKms || r.CreatedAt == nil || time.Since(*r.CreatedAt) > time.Minute {
		t.Fatalf("repository %+v", r)
	}
	errCases := []struct {
		name string
		in   *awsecr.CreateRepositoryInput
		code string
	}{
		{"exists", &awsecr.CreateRepositoryInput{RepositoryName: aws.String("team/app")}, "RepositoryAlreadyExistsException"},
		{"upper case", &awsecr.CreateRepositoryInput{RepositoryName: aws.String("Team/App")}, "InvalidParameterException"},
		{"too short", &awsecr.CreateRepositoryInput{RepositoryName: aws.String("a")}, "InvalidParameterException"},
		{"too long", &awsecr.CreateRepositoryInput{RepositoryName: aws.String(strings.Repeat("a", 257))}, "InvalidParameterException"},
		{"bad mutability", &awsecr.CreateRepositoryInput{RepositoryName: aws.String("x1"), ImageTagMutability: "SOMETIMES"}, "InvalidParameterException"},
		{"aes with key", &awsecr.CreateRepositoryInput{RepositoryName: aws.String("x2"),
			EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeAes256, KmsKey: aws.String("k")}}, "InvalidParameterException"},
		{"reserved tag", &awsecr.CreateRepositoryInput{RepositoryName: aws.String("x3"),
			Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}}, "InvalidTagParameterException"},
	}
	for _, tt := range errCases {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.CreateRepository(ctx, tt.in); apiCode(err) != tt.code {
				t.Fatalf("got %v, want %s", err, tt.code)
			}
		})
	}
	c.CreateRepository(ctx, &awsecr.CreateRepositoryInput{RepositoryName: aws.String("zeta")})
	all, err := c.DescribeRepositories(ctx, &awsecr.DescribeRepositoriesInput{})
	if err != nil || len(all.Repositories) != 2 || aws.ToString(all.Repositories[0].RepositoryName) != "team/app" {
		t.Fatalf("describe all: %+v %v", all, err)
	}
	page, err := c.DescribeRepositories(ctx, &awsecr.DescribeRepositoriesInput{MaxResults: aws.Int32(1)})
	if err != nil || len(page.Repositories) != 1 || page.NextToken == nil {
		t.Fatalf("page 1: %v", err)
	}
	page, err = c.DescribeRepositories(ctx, &awsecr.DescribeRepositoriesInput{MaxResults: aws.Int32(1), NextToken: page.NextToken})
	if err != nil || len(page.Repositories) != 1 || aws.ToString(page.Repositories[0].RepositoryName) != "zeta" || page.NextToken != nil {
		t.Fatalf("page 2: %v", err)
	}
	_, err = c.DescribeRepositories(ctx, &awsecr.DescribeRepositoriesInput{RepositoryNames: []string{"zeta", "missing"}})
	if apiCode(err) != "RepositoryNotFoundException" ||
		!strings.Contains(err.Error(), "The repository with name 'missing' does not exist in the registry with id '111122223333'") {
		t.Fatalf("missing: %v", err)
	}
	mut, err := c.PutImageTagMutability(ctx, &awsecr.PutImageTagMutabilityInput{RepositoryName: aws.String("zeta"), ImageTagMutability: types.ImageTagMutabilityImmutable})
	if err != nil || mut.ImageTagMutability != types.ImageTagMutabilityImmutable || aws.ToString(mut.RegistryId) != ciAccount {
		t.Fatalf("mutability: %+v %v", mut, err)
	}
	if _, err := c.PutImageTagMutability(ctx, &awsecr.PutImageTagMutabilityInput{RepositoryName: aws.String("nope"), ImageTagMutability: types.ImageTagMutabilityMutable}); apiCode(err) != "RepositoryNotFoundException" {
		t.Fatalf("mutability missing repo: %v", err)
	}
}

func TestAPIImages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sess := e.session(ciAccount, "pusher")
	c := e.client(sess, "us-east-1")
	e.createRepo(sess, "us-east-1", "app", false)
	e.createRepo(sess, "us-east-1", "frozen", true)
	pass := e.password(sess, "us-east-1")
	img, _ := random.Image(1024, 2)
	if err := remote.Write(e.ref(ciEast, "app:v1"), img, basic(pass)); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	raw, _ := img.RawManifest()
	layers, _ := img.Layers()
	var layerBytes int64
	for _, l := range layers {
		n, _ := l.Size()
		layerBytes += n
	}

	di, err := c.DescribeImages(ctx, &awsecr.DescribeImagesInput{RepositoryName: aws.String("app")})
	if err != nil || len(di.ImageDetails) != 1 {
		t.Fatalf("describe: %+v %v", di, err)
	}
	d := di.ImageDetails[0]
	if aws.ToString(d.ImageDigest) != digest.String() || len(d.ImageTags) != 1 || d.ImageTags[0] != "v1" ||
		aws.ToInt64(d.ImageSizeInBytes) != layerBytes || d.ImagePushedAt == nil ||
		aws.ToString(d.ImageManifestMediaType) != mtDockerManifest || aws.ToString(d.RegistryId) != ciAccount {
		t.Fatalf("detail %+v", d)
	}
	_, err = c.DescribeImages(ctx, &awsecr.DescribeImagesInput{RepositoryName: aws.String("app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("nope")}}})
	if apiCode(err) != "ImageNotFoundException" {
		t.Fatalf("missing image: %v", err)
	}
	_, err = c.DescribeImages(ctx, &awsecr.DescribeImagesInput{RepositoryName: aws.String("nope")})
	if apiCode(err) != "RepositoryNotFoundException" {
		t.Fatalf("missing repo: %v", err)
	}

	bg, err := c.BatchGetImage(ctx, &awsecr.BatchGetImageInput{RepositoryName: aws.String("app"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}, {ImageTag: aws.String("v9")}, {}}})
	if err != nil || len(bg.Images) != 1 || aws.ToString(bg.Images[0].ImageManifest) != string(raw) || len(bg.Failures) != 2 ||
		bg.Failures[0].FailureCode != types.ImageFailureCodeImageNotFound || bg.Failures[1].FailureCode != types.ImageFailureCodeMissingDigestAndTag {
		t.Fatalf("batch get: %+v %v", bg, err)
	}

	// PutImage re-tags through the same store as the registry.
	put, err := c.PutImage(ctx, &awsecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(string(raw)), ImageTag: aws.String("release")})
	if err != nil || aws.ToString(put.Image.ImageId.ImageDigest) != digest.String() {
		t.Fatalf("put image: %+v %v", put, err)
	}
	putCases := []struct {
		name string
		in   *awsecr.PutImageInput
		code string
	}{
		{"already exists", &awsecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(string(raw)), ImageTag: aws.String("release")}, "ImageAlreadyExistsException"},
		{"layers missing", &awsecr.PutImageInput{RepositoryName: aws.String("frozen"), ImageManifest: aws.String(string(raw)), ImageTag: aws.String("v1")}, "LayersNotFoundException"},
		{"digest mismatch", &awsecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(string(raw)), ImageDigest: aws.String("sha256:" + strings.Repeat("1", 64))}, "ImageDigestDoesNotMatchException"},
		{"not json", &awsecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String("{"), ImageTag: aws.String("x")}, "InvalidParameterException"},
		{"no repo", &awsecr.PutImageInput{RepositoryName: aws.String("nope"), ImageManifest: aws.String(string(raw))}, "RepositoryNotFoundException"},
	}
	for _, tt := range putCases {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.PutImage(ctx, tt.in); apiCode(err) != tt.code {
				t.Fatalf("got %v, want %s", err, tt.code)
			}
		})
	}
	idx, _ := random.Index(128, 1, 1)
	rawIdx, _ := idx.RawManifest()
	if _, err := c.PutImage(ctx, &awsecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(string(rawIdx))}); apiCode(err) != "ReferencedImagesNotFoundException" {
		t.Fatalf("index children: %v", err)
	}
	// Immutable: even the same digest may not be re-put under an existing tag.
	if err := remote.Write(e.ref(ciEast, "frozen:v1"), img, basic(pass)); err != nil {
		t.Fatal(err)
	}
	_, err = c.PutImage(ctx, &awsecr.PutImageInput{RepositoryName: aws.String("frozen"), ImageManifest: aws.String(string(raw)), ImageTag: aws.String("v1")})
	if apiCode(err) != "ImageTagAlreadyExistsException" {
		t.Fatalf("immutable: %v", err)
	}

	del, err := c.BatchDeleteImage(ctx, &awsecr.BatchDeleteImageInput{RepositoryName: aws.String("app"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("release")}, {ImageTag: aws.String("gone")}}})
	if err != nil || len(del.ImageIds) != 1 || len(del.Failures) != 1 {
		t.Fatalf("delete tag: %+v %v", del, err)
	}
	if _, err := remote.Image(e.ref(ciEast, "app:v1"), basic(pass)); err != nil {
		t.Fatalf("v1 should survive untagging release: %v", err)
	}
	del, err = c.BatchDeleteImage(ctx, &awsecr.BatchDeleteImageInput{RepositoryName: aws.String("app"),
		ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(digest.String())}}})
	if err != nil || len(del.ImageIds) != 1 || aws.ToString(del.ImageIds[0].ImageTag) != "v1" {
		t.Fatalf("delete digest: %+v %v", del, err)
	}
	if _, err := remote.Image(e.ref(ciEast, "app:v1"), basic(pass)); err == nil {
		t.Fatal("image still served after delete")
	}
}

func TestAPIReplicationConfigurationValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.client(e.session(ciAccount, "pusher"), "us-east-1")
	dest := func(region, acct string) types.ReplicationDestination {
		return types.ReplicationDestination{Region: aws.String(region), RegistryId: aws.String(acct)}
	}
	rule := types.ReplicationRule{Destinations: []types.ReplicationDestination{dest("eu-west-1", ciAccount)}}
	eleven := make([]types.ReplicationRule, 11)
	for i := range eleven {
		eleven[i] = rule
	}
	var many []types.ReplicationDestination
	for i := 0; i < 26; i++ {
		many = append(many, dest("eu-west-1", fmt.Sprintf("%012d", 100000000000+i)))
	}
	cases := []struct {
		name  string
		rules []types.ReplicationRule
		code  string
	}{
		{"valid", []types.ReplicationRule{rule}, ""},
		{"eleven rules", eleven, "InvalidParameterException"},
		{"destination is source", []types.ReplicationRule{{Destinations: []types.ReplicationDestination{dest("us-east-1", ciAccount)}}}, "InvalidParameterException"},
		{"26 destinations in a rule", []types.ReplicationRule{{Destinations: many}}, "InvalidParameterException"},
		{"26 unique destinations across rules", []types.ReplicationRule{{Destinations: many[:13]}, {Destinations: many[13:]}}, "InvalidParameterException"},
		{"duplicate destination", []types.ReplicationRule{{Destinations: []types.ReplicationDestination{dest("eu-west-1", ciAccount), dest("eu-west-1", ciAccount)}}}, "InvalidParameterException"},
		{"bad region", []types.ReplicationRule{{Destinations: []types.ReplicationDestination{dest("Mars", ciAccount)}}}, "InvalidParameterException"},
		{"bad registry id", []types.ReplicationRule{{Destinations: []types.ReplicationDestination{dest("eu-west-1", "123")}}}, "InvalidParameterException"},
		{"bad filter type", []types.ReplicationRule{{Destinations: rule.Destinations,
			RepositoryFilters: []types.RepositoryFilter{{Filter: aws.String("ci"), FilterType: "SUFFIX_MATCH"}}}}, "InvalidParameterException"},
		{"bad filter", []types.ReplicationRule{{Destinations: rule.Destinations,
			RepositoryFilters: []types.RepositoryFilter{{Filter: aws.String("Bad!"), FilterType: types.RepositoryFilterTypePrefixMatch}}}}, "InvalidParameterException"},
		{"empty clears", []types.ReplicationRule{}, ""},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.PutReplicationConfiguration(ctx, &awsecr.PutReplicationConfigurationInput{
				ReplicationConfiguration: &types.ReplicationConfiguration{Rules: tt.rules}})
			if apiCode(err) != tt.code {
				t.Fatalf("got %v, want %q", err, tt.code)
			}
			if err == nil && len(out.ReplicationConfiguration.Rules) != len(tt.rules) {
				t.Fatalf("returned %+v", out.ReplicationConfiguration)
			}
		})
	}
	reg, err := c.DescribeRegistry(ctx, &awsecr.DescribeRegistryInput{})
	if err != nil || aws.ToString(reg.RegistryId) != ciAccount || reg.ReplicationConfiguration == nil || len(reg.ReplicationConfiguration.Rules) != 0 {
		t.Fatalf("describe registry: %+v %v", reg, err)
	}
}

func TestAPIRegistryPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.client(e.session(prodAccount, "pusher"), "us-east-1")
	if _, err := c.GetRegistryPolicy(ctx, &awsecr.GetRegistryPolicyInput{}); apiCode(err) != "RegistryPolicyNotFoundException" {
		t.Fatalf("none: %v", err)
	}
	good := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:ReplicateImage","ecr:CreateRepository"],"Resource":"arn:aws:ecr:us-east-1:444455556666:repository/*"}]}`
	for name, doc := range map[string]string{
		"not json":       "{",
		"no principal":   `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:ReplicateImage","Resource":"*"}]}`,
		"wrong action":   `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"ecr:PutImage","Resource":"*"}]}`,
		"bad policy doc": `{"Statement":"nope"}`,
	} {
		if _, err := c.PutRegistryPolicy(ctx, &awsecr.PutRegistryPolicyInput{PolicyText: aws.String(doc)}); apiCode(err) != "InvalidParameterException" {
			t.Fatalf("%s: %v", name, err)
		}
	}
	put, err := c.PutRegistryPolicy(ctx, &awsecr.PutRegistryPolicyInput{PolicyText: aws.String(good)})
	if err != nil || aws.ToString(put.RegistryId) != prodAccount {
		t.Fatalf("put: %v", err)
	}
	got, err := c.GetRegistryPolicy(ctx, &awsecr.GetRegistryPolicyInput{})
	if err != nil || aws.ToString(got.PolicyText) != good {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, _, ok := e.w.RegistryPolicy(prodAccount, "us-east-1"); !ok {
		t.Fatal("not stored in the world")
	}
}

// signedCall sends a hand-built, correctly signed JSON 1.1 request (for targets the SDK
// would never send).
func signedCall(t *testing.T, e *env, s *world.Session, target, body string) (int, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.api.URL+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("X-Amz-Security-Token", s.SessionToken)
	creds := aws.Credentials{AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey, SessionToken: s.SessionToken}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hexSHA256(body), "ecr", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.Header.Get("x-amzn-RequestId") == "" {
		t.Fatal("no x-amzn-RequestId")
	}
	return resp.StatusCode, out
}

func hexSHA256(s string) string { return strings.TrimPrefix(blobDigest([]byte(s)), "sha256:") }

func TestAPIProtocolErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	s := e.session(ciAccount, "pusher")
	cases := []struct {
		name, target, body, typ string
	}{
		{"unknown operation", targetPrefix + "DeleteLifecyclePolicy", "{}", "UnknownOperationException"},
		{"wrong service prefix", "AWSSecurityTokenServiceV20110615.GetCallerIdentity", "{}", "UnknownOperationException"},
		{"malformed json", targetPrefix + "DescribeRepositories", "{", "SerializationException"},
		{"wrong type", targetPrefix + "DescribeRepositories", `{"repositoryNames":"x"}`, "SerializationException"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			status, out := signedCall(t, e, s, tt.target, tt.body)
			if status != http.StatusBadRequest || out["__type"] != tt.typ {
				t.Fatalf("got %d %v", status, out)
			}
		})
	}
}

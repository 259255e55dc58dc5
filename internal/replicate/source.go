package replicate

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/internal/push"
)

// readECR opens repo@digest in the ECR registry of cfg (the ci registry) as an artifact; blobs are
// fetched lazily.
func readECR(ctx context.Context, cfg aws.Config, repo, digest string) (*push.Artifact, error) {
	out, err := ecr.NewFromConfig(cfg).GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return nil, awsErr(err, "ecr GetAuthorizationToken")
	}
	if len(out.AuthorizationData) == 0 {
		return nil, fmt.Errorf("ecr GetAuthorizationToken returned no authorization data")
	}
	ad := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(ad.AuthorizationToken))
	if err != nil {
		return nil, fmt.Errorf("ecr authorization token: %w", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, fmt.Errorf("ecr authorization token is not USER:PASSWORD")
	}
	endpoint := aws.ToString(ad.ProxyEndpoint)
	host := strings.TrimPrefix(strings.TrimPrefix(endpoint, "https://"), "http://")
	var opts []name.Option
	if strings.HasPrefix(endpoint, "http://") {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.NewDigest(host+"/"+repo+"@"+digest, opts...)
	if err != nil {
		return nil, fmt.Errorf("source %s@%s: %w", repo, digest, err)
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx), remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ref, err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", ref, err)
		}
		return push.IndexArtifact(ref.String(), idx)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ref, err)
	}
	return push.ImageArtifact(ref.String(), img)
}

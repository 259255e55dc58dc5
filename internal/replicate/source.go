package replicate

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/push"
)

// readECR opens repo@digest in the ECR registry of cfg (the ci registry) as an artifact; blobs are
// fetched lazily.
func readECR(ctx context.Context, cfg aws.Config, repo, digest string) (*push.Artifact, error) {
	tok, err := ecrx.GetToken(ctx, ecr.NewFromConfig(cfg), "")
	if err != nil {
		return nil, err
	}
	user, pass, endpoint := tok.Username, tok.Password, tok.ProxyEndpoint
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

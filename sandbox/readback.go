package sandbox

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/internal/ecr"
)

// Copy is one image found in a destination registry.
type Copy struct {
	ID     RegistryID
	Ref    string
	Digest string
}

// ReadBack resolves repo@digest in every registry outside the ci account, through the registry API with a
// password obtained by that account's own ecrpush-deploy role — as a cluster in that account would pull
// it — and fails unless every copy has the digest. `ecrpush demo` uses it to prove the copies landed.
func (s *Sandbox) ReadBack(ctx context.Context, repo string, digest v1.Hash) ([]Copy, error) {
	var out []Copy
	for _, id := range s.RegistryIDs() {
		if id.Account == CIAccount {
			continue
		}
		role, ok := s.World.Role("arn:aws:iam::" + id.Account + ":role/ecrpush-deploy")
		if !ok {
			return nil, fmt.Errorf("no deploy role in %s", id.Account)
		}
		sess := s.World.Issue(role, "demo-readback", 15*time.Minute, false)
		client := awsecr.New(awsecr.Options{
			Region:       id.Region,
			BaseEndpoint: &s.Endpoints.ECR,
			Credentials:  credentials.NewStaticCredentialsProvider(sess.AccessKeyID, sess.SecretAccessKey, sess.SessionToken),
		})
		tok, err := ecr.GetToken(ctx, client, "")
		if err != nil {
			return nil, fmt.Errorf("registry password for %s/%s: %w", id.Account, id.Region, err)
		}
		ref, err := name.NewDigest(strings.TrimPrefix(s.Endpoints.Registries[id], "http://") + "/" + repo + "@" + digest.String())
		if err != nil {
			return nil, err
		}
		desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuth(&authn.Basic{Username: tok.Username, Password: tok.Password}))
		if err != nil {
			return nil, fmt.Errorf("read back %s (%s %s): %w", ref, s.AccountName(id.Account), id.Region, err)
		}
		if desc.Digest != digest {
			return nil, fmt.Errorf("%s holds %s, want %s", ref, desc.Digest, digest)
		}
		out = append(out, Copy{ID: id, Ref: ref.String(), Digest: desc.Digest.String()})
	}
	return out, nil
}

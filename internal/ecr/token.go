package ecr

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Token is one registry credential from GetAuthorizationToken.
type Token struct {
	Username      string
	Password      string
	ProxyEndpoint string // the registry URL ECR names, e.g. https://111122223333.dkr.ecr.us-east-1.amazonaws.com
	ExpiresAt     time.Time
}

// TokenAPI is the ECR call a token needs (an *ecr.Client).
type TokenAPI interface {
	GetAuthorizationToken(context.Context, *ecr.GetAuthorizationTokenInput, ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

// NewClient is an ECR API client for r's region. A host that names a FIPS or dual-stack registry gets
// the matching API endpoint; a mapped host keeps whatever endpoint the configuration sets
// (AWS_ENDPOINT_URL_ECR), since the SDK refuses FIPS together with a custom endpoint.
func NewClient(cfg aws.Config, r Registry) *ecr.Client {
	return ecr.NewFromConfig(cfg, func(o *ecr.Options) {
		o.Region = r.Region
		if r.Mapped {
			return
		}
		if r.FIPS {
			o.EndpointOptions.UseFIPSEndpoint = aws.FIPSEndpointStateEnabled
		}
		if r.DualStack {
			o.EndpointOptions.UseDualStackEndpoint = aws.DualStackEndpointStateEnabled
		}
	})
}

// GetToken asks ECR for a token for account's registry (the caller's own when account is "").
func GetToken(ctx context.Context, api TokenAPI, account string) (*Token, error) {
	in := &ecr.GetAuthorizationTokenInput{}
	if account != "" {
		//lint:ignore SA1019 still honoured by ECR, and the only way to learn another account's proxyEndpoint
		in.RegistryIds = []string{account}
	}
	out, err := api.GetAuthorizationToken(ctx, in)
	if err != nil {
		if Code(err) == "AccessDeniedException" {
			return nil, fixable.Wrap(err, "may not get an ECR registry token (ecr:GetAuthorizationToken denied): grant ecr:GetAuthorizationToken on resource \"*\" to the role")
		}
		return nil, fmt.Errorf("ecr: GetAuthorizationToken: %w", err)
	}
	if len(out.AuthorizationData) == 0 {
		return nil, errors.New("ecr: GetAuthorizationToken returned no authorizationData")
	}
	d := out.AuthorizationData[0]
	if d.AuthorizationToken == nil || d.ProxyEndpoint == nil || d.ExpiresAt == nil {
		return nil, errors.New("ecr: GetAuthorizationToken returned incomplete authorizationData")
	}
	raw, err := base64.StdEncoding.DecodeString(*d.AuthorizationToken)
	if err != nil {
		return nil, fmt.Errorf("ecr: authorization token is not base64: %w", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || pass == "" {
		return nil, errors.New("ecr: authorization token is not USER:PASSWORD")
	}
	if u, err := url.Parse(*d.ProxyEndpoint); err != nil || u.Host == "" {
		return nil, fmt.Errorf("ecr: proxyEndpoint %q is not a URL", *d.ProxyEndpoint)
	}
	return &Token{Username: user, Password: pass, ProxyEndpoint: *d.ProxyEndpoint, ExpiresAt: *d.ExpiresAt}, nil
}

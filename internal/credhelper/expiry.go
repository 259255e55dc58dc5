package credhelper

import (
	"github.com/ecrpush/ecrpush/internal/ecr"

	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// CapToCredentials returns the earlier of a registry token's reported expiry and the expiry of the AWS
// credentials that fetched it. ECR reports 12 hours for every token, yet a token has been seen to stop
// working when the role session that obtained it ends (a 1-hour session by default); the helper caches
// and hands out a token by the earlier time, and refreshes it at half of that life, so a registry that
// keeps what `get` answered for a while (distribution's proxy.exec lifetime) never holds a dead token.
// Credentials that do not expire (or cannot be read) leave the token's expiry as it is.
func CapToCredentials(ctx context.Context, creds aws.CredentialsProvider, expires time.Time) time.Time {
	if creds == nil {
		return expires
	}
	c, err := creds.Retrieve(ctx) // the session's cache: no call to STS
	if err != nil || !c.CanExpire || c.Expires.IsZero() || !c.Expires.Before(expires) {
		return expires
	}
	return c.Expires
}

// FetchToken gets a new registry token for r with cfg's credentials in r's region (STS credentials are
// global; only the ECR call is regional), its expiry capped by those credentials' (CapToCredentials).
func FetchToken(ctx context.Context, cfg aws.Config, r ecr.Registry) (*ecr.Token, error) {
	cfg = cfg.Copy()
	cfg.Region = r.Region
	tok, err := ecr.GetToken(ctx, ecr.NewClient(cfg, r), r.Account)
	if err != nil {
		return nil, err
	}
	tok.ExpiresAt = CapToCredentials(ctx, cfg.Credentials, tok.ExpiresAt)
	return tok, nil
}

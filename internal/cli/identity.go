package cli

import (
	"flag"
	"strings"
	"time"

	"github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// identityFlags are the flags every command that talks to AWS shares.
type identityFlags struct {
	roleARN, region, identity, audience, gcpSA, tokenFile, sessionName string
	duration                                                           time.Duration
}

func (f *identityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.roleARN, "role-arn", "", "IAM role to assume with the CI identity token (GitHub input: role-to-assume)")
	fs.StringVar(&f.region, "region", "", "AWS region of the ci registry and STS endpoint (default AWS_REGION)")
	fs.StringVar(&f.identity, "identity", "auto", "where credentials come from: auto, github, gcp, file, aws")
	fs.StringVar(&f.audience, "audience", federate.DefaultAudience, "audience of the OIDC token")
	fs.StringVar(&f.gcpSA, "gcp-service-account", "", "mint the Google ID token for this service account through IAM Credentials")
	fs.StringVar(&f.tokenFile, "web-identity-token-file", "", "OIDC token file (default AWS_WEB_IDENTITY_TOKEN_FILE)")
	fs.StringVar(&f.sessionName, "role-session-name", "", "role session name (default from the CI context)")
	fs.DurationVar(&f.duration, "role-duration", 0, "credential lifetime to request, 15m to 12h (default the role's 1h)")
}

func (f *identityFlags) options(stdio IO) (federate.Options, error) {
	id, err := federate.ParseIdentity(f.identity)
	if err != nil {
		return federate.Options{}, err
	}
	if f.duration != 0 && (f.duration < 15*time.Minute || f.duration > 12*time.Hour) {
		return federate.Options{}, fixable.New("--role-duration %s is out of range: STS accepts 15m to 12h", f.duration)
	}
	if f.audience == "" {
		return federate.Options{}, fixable.New("--audience is empty: use the audience your IAM OIDC provider lists (usually %s)", federate.DefaultAudience)
	}
	if f.sessionName != "" && federate.SanitizeSessionName(f.sessionName) != f.sessionName {
		return federate.Options{}, fixable.New("--role-session-name %q must be 2-64 characters of letters, digits and +=,.@_-", f.sessionName)
	}
	if f.roleARN != "" {
		if err := federate.ValidateRoleARN(f.roleARN); err != nil {
			return federate.Options{}, err
		}
	}
	region := f.region
	if region == "" {
		region = firstNonEmpty(stdio.Getenv("AWS_REGION"), stdio.Getenv("AWS_DEFAULT_REGION"))
	}
	if region == "" {
		return federate.Options{}, fixable.New("no AWS region: pass --region (or set AWS_REGION)")
	}
	if err := ecr.CheckRegion("--region", region); err != nil {
		return federate.Options{}, err
	}
	if f.roleARN != "" {
		// STS answers a role of another partition with a bare "Request ARN is invalid".
		if p, want := strings.SplitN(f.roleARN, ":", 3)[1], ecr.PartitionOf(region); p != want {
			return federate.Options{}, fixable.New("--role-arn %q is in the %s partition but region %s is in %s: use a role ARN starting arn:%s:, or a region of %s",
				f.roleARN, p, region, want, want, p)
		}
	}
	return federate.Options{
		Identity:          id,
		RoleARN:           f.roleARN,
		Region:            region,
		Audience:          f.audience,
		GCPServiceAccount: f.gcpSA,
		TokenFile:         f.tokenFile,
		SessionName:       f.sessionName,
		Duration:          f.duration,
		Getenv:            stdio.Getenv,
		Logger:            newLogger(stdio.Err),
		Mask:              stdio.platform().Mask,
	}, nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

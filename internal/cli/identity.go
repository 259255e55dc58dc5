package cli

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// identityFlags are the flags every command that talks to AWS shares.
type identityFlags struct {
	roleARN, region, identity, audience, gcpSA, tokenFile, sessionName string
	audienceSet                                                        bool
	duration                                                           roleDuration
}

// setFlag is a string flag that remembers it was set, so --audience's default can follow the
// region's partition (sts.amazonaws.com.cn in China) while an explicitly empty value is refused.
type setFlag struct {
	value *string
	set   *bool
}

func (a setFlag) String() string {
	if a.value == nil {
		return ""
	}
	return *a.value
}

func (a setFlag) Set(v string) error {
	*a.value, *a.set = v, true
	return nil
}

// roleDuration reads a Go duration (90m, 1h) or a bare number of seconds, as STS's DurationSeconds
// and configure-aws-credentials' role-duration-seconds are written.
type roleDuration struct{ d time.Duration }

func (r *roleDuration) String() string {
	if r.d == 0 {
		return ""
	}
	return r.d.String()
}

// Get makes the flag a flag.Getter of a time.Duration, so an unparsable ECRPUSH_ROLE_DURATION is
// described as a duration.
func (r *roleDuration) Get() any { return r.d }

func (r *roleDuration) Set(v string) error {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > int64(365*24*time.Hour/time.Second) {
			return fmt.Errorf("%s seconds is out of range: write a duration like 1h", v)
		}
		r.d = time.Duration(n) * time.Second
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a duration: write 1h, 90m or 3600 (seconds)", v)
	}
	r.d = d
	return nil
}

func (f *identityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.roleARN, "role-arn", "", "IAM role to assume with the CI identity token (GitHub input: role-to-assume)")
	fs.StringVar(&f.region, "region", "", "AWS region of the ci registry and STS endpoint (default AWS_REGION)")
	fs.StringVar(&f.identity, "identity", "auto", "where credentials come from: auto, github, gcp, file, aws")
	fs.Var(setFlag{&f.audience, &f.audienceSet}, "audience", "audience of the OIDC token (default sts.amazonaws.com; sts.amazonaws.com.cn in China regions)")
	fs.StringVar(&f.gcpSA, "gcp-service-account", "", "mint the Google ID token for this service account through IAM Credentials")
	fs.StringVar(&f.tokenFile, "web-identity-token-file", "", "OIDC token file (default AWS_WEB_IDENTITY_TOKEN_FILE)")
	fs.StringVar(&f.sessionName, "role-session-name", "", "role session name (default from the CI context)")
	fs.Var(&f.duration, "role-duration", "credential lifetime to request, 15m to 12h, as a duration (1h) or seconds (3600) (default 1h)")
}

func (f *identityFlags) options(stdio IO) (federate.Options, error) {
	id, err := federate.ParseIdentity(f.identity)
	if err != nil {
		return federate.Options{}, err
	}
	if d := f.duration.d; d != 0 && (d < 15*time.Minute || d > 12*time.Hour) {
		return federate.Options{}, fixable.New("--role-duration %s is out of range: STS accepts 15m to 12h (900 to 43200 seconds)", d)
	}
	if f.audienceSet && f.audience == "" {
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
		Audience:          f.audience, // "": federate picks the partition's default
		GCPServiceAccount: f.gcpSA,
		TokenFile:         f.tokenFile,
		SessionName:       f.sessionName,
		Duration:          f.duration.d,
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

package federate

import (
	"context"
	"fmt"
	"os"
	"time"

	"cloud.google.com/go/compute/metadata"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Identity is where credentials come from.
type Identity string

// Identities.
const (
	IdentityAuto   Identity = "auto"
	IdentityGitHub Identity = "github"
	IdentityGCP    Identity = "gcp"
	IdentityFile   Identity = "file"
	IdentityAWS    Identity = "aws"
)

// ParseIdentity validates an --identity value.
func ParseIdentity(s string) (Identity, error) {
	switch Identity(s) {
	case "", IdentityAuto:
		return IdentityAuto, nil
	case IdentityGitHub, IdentityGCP, IdentityFile, IdentityAWS:
		return Identity(s), nil
	}
	return "", fixable.New("--identity %q is not one of auto, github, gcp, file, aws", s)
}

// Detection is the chosen identity and why.
type Detection struct {
	Identity Identity
	Reason   string
}

func (d Detection) String() string { return fmt.Sprintf("%s (%s)", d.Identity, d.Reason) }

// Detect chooses the identity: an explicit --identity; then a web identity token file
// (--web-identity-token-file or AWS_WEB_IDENTITY_TOKEN_FILE) or --gcp-service-account; then GitHub
// Actions (GITHUB_ACTIONS=true; without id-token permission but with AWS_ACCESS_KEY_ID set, the
// default chain) → Cloud Build (BUILDER_OUTPUT set, or the metadata server answers) → the AWS
// default chain.
func Detect(ctx context.Context, o Options) (Detection, error) {
	o = o.withDefaults()
	switch o.Identity {
	case IdentityGitHub, IdentityGCP, IdentityFile, IdentityAWS:
		if o.Identity == IdentityFile && o.TokenFile == "" {
			return Detection{}, fixable.New("--identity file needs --web-identity-token-file or AWS_WEB_IDENTITY_TOKEN_FILE")
		}
		return Detection{Identity: o.Identity, Reason: "chosen with --identity"}, nil
	case IdentityAuto:
	default:
		if _, err := ParseIdentity(string(o.Identity)); err != nil {
			return Detection{}, err
		}
	}
	// What the user named wins over what the machine looks like: a web identity token file (flag or
	// AWS_WEB_IDENTITY_TOKEN_FILE) and --gcp-service-account come before the CI checks and the
	// metadata probe, also on a GitHub runner.
	if o.TokenFile != "" {
		return Detection{IdentityFile, "web identity token file " + o.TokenFile}, nil
	}
	if o.GCPServiceAccount != "" {
		return Detection{IdentityGCP, "--gcp-service-account is set"}, nil
	}
	if o.Getenv("GITHUB_ACTIONS") == "true" {
		if o.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL") == "" && o.Getenv("AWS_ACCESS_KEY_ID") != "" {
			// No id-token permission, but a previous step left AWS keys: use them rather than fail.
			return Detection{IdentityAWS, "GITHUB_ACTIONS=true without id-token permission, AWS_ACCESS_KEY_ID is set: using the AWS default credential chain"}, nil
		}
		return Detection{IdentityGitHub, "GITHUB_ACTIONS=true"}, nil
	}
	if o.Getenv("BUILDER_OUTPUT") != "" {
		return Detection{IdentityGCP, "BUILDER_OUTPUT is set: running as a Cloud Build step"}, nil
	}
	if onGCE(ctx) {
		reason := "the GCE metadata server answers"
		if h := os.Getenv("GCE_METADATA_HOST"); h != "" {
			reason = "GCE_METADATA_HOST=" + h
		}
		return Detection{IdentityGCP, reason}, nil
	}
	return Detection{IdentityAWS, "no CI identity found: using the AWS default credential chain"}, nil
}

// onGCE probes the metadata server briefly; on a laptop it must not cost more than a second.
func onGCE(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return metadata.NewClient(nil).OnGCEWithContext(ctx)
}

func newSource(id Identity, o Options) (TokenSource, error) {
	switch id {
	case IdentityGitHub:
		src := GitHub(o.Getenv, o.HTTPClient).(*githubSource)
		src.mask = o.Mask
		return src, nil
	case IdentityGCP:
		if o.GCPServiceAccount != "" {
			src := GCPImpersonate(o.GCPServiceAccount, o.IAMCredentialsURL, o.HTTPClient).(*impersonateSource)
			src.mask = o.Mask
			return src, nil
		}
		return GCPMetadata(o.HTTPClient), nil
	case IdentityFile:
		if o.TokenFile == "" {
			return nil, fixable.New("--identity file needs --web-identity-token-file or AWS_WEB_IDENTITY_TOKEN_FILE")
		}
		return File(o.TokenFile), nil
	}
	return nil, fmt.Errorf("identity %s has no token source", id)
}

func getenvOS(k string) string { return os.Getenv(k) }

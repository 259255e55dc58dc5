package googleauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrgoogle "github.com/google/go-containerregistry/pkg/v1/google"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/google/externalaccount"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Scope is what the access token is requested for; Artifact Registry accepts cloud-platform.
const Scope = "https://www.googleapis.com/auth/cloud-platform"

// AWSSubjectTokenType is the subject token type of AWS-sourced configurations.
const AWSSubjectTokenType = "urn:ietf:params:aws:token-type:aws4_request"

// TokenURLEnv overrides a configuration's token_url (Google's STS), the way ECRPUSH_IAMCREDENTIALS_ENDPOINT
// overrides IAM Credentials: the sandbox sets it so a configuration written for Google works unchanged.
const TokenURLEnv = "ECRPUSH_GOOGLE_STS_ENDPOINT"

// AWSCredentials supplies the AWS credentials and region an AWS-sourced configuration signs with.
type AWSCredentials func(ctx context.Context) (aws.Credentials, string, error)

// IAMCredentialsURLEnv overrides the scheme and host of a configuration's service_account_impersonation_url
// (IAM Credentials), as it does for ecrpush's own IAM Credentials calls.
const IAMCredentialsURLEnv = "ECRPUSH_IAMCREDENTIALS_ENDPOINT"

// Options tune TokenSource.
type Options struct {
	// AWS feeds configurations whose credential source is AWS. nil leaves them to the library, which
	// reads AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the EC2 instance metadata service.
	AWS AWSCredentials
	// TokenURL replaces the configuration's token_url ("": keep it).
	TokenURL string
	// IAMCredentialsURL replaces the scheme and host of service_account_impersonation_url ("": keep it).
	IAMCredentialsURL string
	// HTTPClient carries every Google request (default: NewHTTPClient, which times out and retries
	// transient failures).
	HTTPClient *http.Client
	// Mask is called with every access token before it is handed out, so a platform can hide it
	// from logs (GitHub's ::add-mask::). Default: no-op.
	Mask func(secret string)
}

// file is the part of a credential configuration this package looks at before handing it on.
type file struct {
	Type                           string `json:"type"`
	Audience                       string `json:"audience"`
	SubjectTokenType               string `json:"subject_token_type"`
	TokenURL                       string `json:"token_url"`
	TokenInfoURL                   string `json:"token_info_url"`
	ServiceAccountImpersonationURL string `json:"service_account_impersonation_url"`
	ServiceAccountImpersonation    struct {
		TokenLifetimeSeconds int `json:"token_lifetime_seconds"`
	} `json:"service_account_impersonation"`
	CredentialSource *struct {
		EnvironmentID string `json:"environment_id"`
	} `json:"credential_source"`
	QuotaProjectID           string `json:"quota_project_id"`
	WorkforcePoolUserProject string `json:"workforce_pool_user_project"`
	UniverseDomain           string `json:"universe_domain"`
	ClientID                 string `json:"client_id"`
	ClientSecret             string `json:"client_secret"`
}

// known are the configuration types golang.org/x/oauth2/google reads.
var known = map[string]google.CredentialsType{
	string(google.ServiceAccount):                google.ServiceAccount,
	string(google.AuthorizedUser):                google.AuthorizedUser,
	string(google.ExternalAccount):               google.ExternalAccount,
	string(google.ExternalAccountAuthorizedUser): google.ExternalAccountAuthorizedUser,
	string(google.ImpersonatedServiceAccount):    google.ImpersonatedServiceAccount,
}

// ReadFile reads a credential configuration, with errors that say what to change.
func ReadFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("cannot read the Google credential configuration %q: %v", path, err))
	}
	return b, nil
}

// IsAWS reports whether a configuration is an external account with an AWS credential source.
func IsAWS(data []byte) bool {
	var f file
	if json.Unmarshal(data, &f) != nil {
		return false
	}
	return f.isAWS()
}

func (f file) isAWS() bool {
	return f.Type == string(google.ExternalAccount) && f.CredentialSource != nil && f.CredentialSource.EnvironmentID != ""
}

// awsEnvironmentRe is how Google's libraries read environment_id: google-auth-python matches
// ^(aws)([\d]+)$ and golang.org/x/oauth2 takes "aws" and a number; both support version 1 only.
var awsEnvironmentRe = regexp.MustCompile(`^aws([0-9]+)$`)

// checkEnvironmentID refuses an environment_id Google's libraries refuse.
func (f file) checkEnvironmentID() error {
	id := f.CredentialSource.EnvironmentID
	m := awsEnvironmentRe.FindStringSubmatch(id)
	switch {
	case m == nil:
		return fixable.New("the Google credential configuration's credential_source.environment_id is %q: Google's libraries know only aws1 (an AWS credential source)", id)
	case m[1] != "1":
		return fixable.New("the Google credential configuration's credential_source.environment_id is %q: aws version %s is not supported, Google's libraries accept aws1", id, m[1])
	}
	return nil
}

// TokenSource returns a refreshing source of Google access tokens for a credential configuration.
// ctx must outlive every use of the source (the library keeps it for its exchanges).
func TokenSource(ctx context.Context, data []byte, o Options) (oauth2.TokenSource, error) {
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("the Google credential configuration is not JSON (%v): use the file gcloud iam workload-identity-pools create-cred-config writes, or a service account key", err))
	}
	ct, ok := known[f.Type]
	if !ok {
		return nil, fixable.New("the Google credential configuration has type %q: use external_account (workload identity federation) or service_account", f.Type)
	}
	if f.isAWS() {
		if err := f.checkEnvironmentID(); err != nil {
			return nil, err
		}
	}
	impersonation, err := rehost(f.ServiceAccountImpersonationURL, o.IAMCredentialsURL)
	if err != nil {
		return nil, err
	}
	f.ServiceAccountImpersonationURL = impersonation
	if o.HTTPClient == nil {
		o.HTTPClient = NewHTTPClient()
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, o.HTTPClient)
	mask := o.Mask
	if mask == nil {
		mask = func(string) {}
	}
	if f.isAWS() && o.AWS != nil {
		ts, err := awsTokenSource(ctx, f, o)
		if err != nil {
			return nil, err
		}
		return masking{ts, mask}, nil
	}
	if (o.TokenURL != "" || impersonation != "") && (ct == google.ExternalAccount || ct == google.ExternalAccountAuthorizedUser) {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, err
		}
		if o.TokenURL != "" {
			m["token_url"] = o.TokenURL
		}
		if impersonation != "" {
			m["service_account_impersonation_url"] = impersonation
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		data = b
	}
	creds, err := google.CredentialsFromJSONWithType(ctx, data, ct, Scope)
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("the Google credential configuration is not usable: %v", err))
	}
	return masking{creds.TokenSource, mask}, nil
}

// rehost replaces the scheme and host of an IAM Credentials URL with endpoint's (the sandbox's).
func rehost(raw, endpoint string) (string, error) {
	if raw == "" || endpoint == "" {
		return raw, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fixable.New("the Google credential configuration's service_account_impersonation_url %q is not a URL", raw)
	}
	e, err := url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil || e.Host == "" {
		return "", fixable.New("%s=%q is not a URL", IAMCredentialsURLEnv, endpoint)
	}
	u.Scheme, u.Host = e.Scheme, e.Host
	u.Path = strings.TrimRight(e.Path, "/") + u.Path
	return u.String(), nil
}

// masking hands every access token to the platform's mask before anyone sees it.
type masking struct {
	ts   oauth2.TokenSource
	mask func(string)
}

func (m masking) Token() (*oauth2.Token, error) {
	t, err := m.ts.Token()
	if err == nil && t != nil {
		m.mask(t.AccessToken)
	}
	return t, err
}

// awsTokenSource builds the external account configuration with our AWS credentials as its supplier;
// the library signs GetCallerIdentity with them (targeting the pool provider) and exchanges it.
func awsTokenSource(ctx context.Context, f file, o Options) (oauth2.TokenSource, error) {
	if f.SubjectTokenType != AWSSubjectTokenType {
		return nil, fixable.New("the Google credential configuration has an AWS credential source but subject_token_type %q: it must be %s", f.SubjectTokenType, AWSSubjectTokenType)
	}
	if f.Audience == "" {
		return nil, fixable.New("the Google credential configuration has no audience: it names the workload identity pool provider (//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER)")
	}
	tokenURL := f.TokenURL
	if o.TokenURL != "" {
		tokenURL = o.TokenURL
	}
	ts, err := externalaccount.NewTokenSource(ctx, externalaccount.Config{
		Audience:                       f.Audience,
		SubjectTokenType:               f.SubjectTokenType,
		TokenURL:                       tokenURL,
		TokenInfoURL:                   f.TokenInfoURL,
		ServiceAccountImpersonationURL: f.ServiceAccountImpersonationURL,
		ServiceAccountImpersonationLifetimeSeconds: f.ServiceAccountImpersonation.TokenLifetimeSeconds,
		ClientID:                       f.ClientID,
		ClientSecret:                   f.ClientSecret,
		QuotaProjectID:                 f.QuotaProjectID,
		WorkforcePoolUserProject:       f.WorkforcePoolUserProject,
		UniverseDomain:                 f.UniverseDomain,
		Scopes:                         []string{Scope},
		AwsSecurityCredentialsSupplier: supplier{o.AWS},
	})
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("the Google credential configuration is not usable: %v", err))
	}
	return ts, nil
}

// supplier adapts AWSCredentials to the library's AwsSecurityCredentialsSupplier.
type supplier struct{ get AWSCredentials }

func (s supplier) AwsRegion(ctx context.Context, _ externalaccount.SupplierOptions) (string, error) {
	_, region, err := s.get(ctx)
	if err == nil && region == "" {
		err = errors.New("no AWS region for the GetCallerIdentity request Google verifies")
	}
	return region, err
}

func (s supplier) AwsSecurityCredentials(ctx context.Context, _ externalaccount.SupplierOptions) (*externalaccount.AwsSecurityCredentials, error) {
	c, _, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	return &externalaccount.AwsSecurityCredentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}, nil
}

// FromAWSConfig supplies the credentials and region of an aws.Config (e.g. a federated session's).
func FromAWSConfig(cfg func() (aws.Config, bool)) AWSCredentials {
	return func(ctx context.Context) (aws.Credentials, string, error) {
		c, ok := cfg()
		if !ok || c.Credentials == nil {
			return aws.Credentials{}, "", errors.New("no AWS session to sign the Google token exchange with")
		}
		creds, err := c.Credentials.Retrieve(ctx)
		return creds, c.Region, err
	}
}

// SessionOrDefault supplies a federated session's credentials when there is one (the push federated
// into AWS), and otherwise the AWS default credential chain's (environment, profile, SSO, instance
// role) — the same chain every other AWS call of ecrpush uses — so a push to a registry outside AWS
// can still read Artifact Registry from AWS.
func SessionOrDefault(sess func() (aws.Config, bool)) AWSCredentials {
	var once sync.Once
	var def aws.Config
	var defErr error
	return func(ctx context.Context) (aws.Credentials, string, error) {
		if c, ok := sess(); ok && c.Credentials != nil {
			creds, err := c.Credentials.Retrieve(ctx)
			return creds, c.Region, err
		}
		once.Do(func() { def, defErr = config.LoadDefaultConfig(ctx) })
		if defErr != nil {
			return aws.Credentials{}, "", fixable.Wrap(defErr, "cannot load the AWS configuration to sign the Google token exchange: "+defErr.Error())
		}
		if def.Region == "" {
			return aws.Credentials{}, "", fixable.New("no AWS region to sign the Google token exchange's GetCallerIdentity with: set AWS_REGION (or pass --region)")
		}
		creds, err := def.Credentials.Retrieve(ctx)
		if err != nil {
			return aws.Credentials{}, "", fixable.Wrap(err, "the Google credential configuration reads AWS credentials, and the AWS default chain has none "+
				"(AWS_ACCESS_KEY_ID, AWS_PROFILE, SSO, instance role): set them, or federate with --role-arn: "+err.Error())
		}
		return creds, def.Region, nil
	}
}

// IsGoogleRegistry reports whether host is one of Google's registries (Container Registry, Artifact
// Registry), which take Google access tokens.
func IsGoogleRegistry(host string) bool {
	h := strings.ToLower(host)
	if i := strings.LastIndex(h, ":"); i >= 0 {
		h = h[:i]
	}
	return h == "gcr.io" || strings.HasSuffix(h, ".gcr.io") || strings.HasSuffix(h, ".pkg.dev")
}

// CheckHost validates a registry host named to receive the Google token (--source-google-hosts): a host
// name or IP with an optional port, nothing else.
func CheckHost(h string) error {
	r, err := name.NewRegistry(h, name.StrictValidation)
	if err != nil || r.RegistryStr() != h || strings.ContainsAny(h, "/@ \t") {
		return fixable.New("--source-google-hosts %q is not a registry host like europe-docker.pkg.dev or registry.example.com:5000", h)
	}
	return nil
}

// Keychain hands the token to Google's registries and to the extra hosts it was given; every other
// host resolves to Anonymous, so another keychain in a MultiKeychain answers for it.
type Keychain struct {
	ts    oauth2.TokenSource
	mu    sync.Mutex
	hosts map[string]bool
}

// NewKeychain answers for Google's registries and hosts.
func NewKeychain(ts oauth2.TokenSource, hosts ...string) *Keychain {
	k := &Keychain{ts: ts, hosts: map[string]bool{}}
	k.Add(hosts...)
	return k
}

// Add makes the keychain answer for more hosts (e.g. a source registry named on the command line).
func (k *Keychain) Add(hosts ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, h := range hosts {
		k.hosts[strings.ToLower(h)] = true
	}
}

// Resolve implements authn.Keychain.
func (k *Keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	host := strings.ToLower(r.RegistryStr())
	k.mu.Lock()
	mine := k.hosts[host]
	k.mu.Unlock()
	if !mine && !IsGoogleRegistry(host) {
		return authn.Anonymous, nil
	}
	return tokenAuth{k.ts}, nil
}

// tokenAuth is asked on every request, so an expired token is replaced by the refreshing source.
type tokenAuth struct{ ts oauth2.TokenSource }

func (a tokenAuth) Authorization() (*authn.AuthConfig, error) {
	t, err := a.ts.Token()
	if err != nil {
		return nil, fmt.Errorf("google access token: %w", err)
	}
	return &authn.AuthConfig{Username: "oauth2accesstoken", Password: t.AccessToken}, nil
}

// SourceKeychain is the keychain registry sources are read with. Without a credential configuration it
// is the Docker config, then Google's application default credentials (ggcr's google.Keychain, which
// answers only for Google's hosts). With one, its access tokens go first, to Google's registries
// (*.pkg.dev, gcr.io, *.gcr.io) and to the hosts named — never to any other host, which falls through to
// the Docker config.
func SourceKeychain(ctx context.Context, file string, o Options, hosts ...string) (authn.Keychain, error) {
	def := authn.NewMultiKeychain(authn.DefaultKeychain, ggcrgoogle.Keychain)
	if file == "" {
		return def, nil
	}
	data, err := ReadFile(file)
	if err != nil {
		return nil, err
	}
	ts, err := TokenSource(ctx, data, o)
	if err != nil {
		return nil, err
	}
	return authn.NewMultiKeychain(NewKeychain(ts, hosts...), def), nil
}

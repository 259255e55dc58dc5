package federate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/trustpolicy"
)

// Options configure Federate. The zero value of every field has a sensible default.
type Options struct {
	Identity          Identity // auto (default), github, gcp, file, aws
	RoleARN           string   // required unless Identity resolves to aws
	Region            string   // the STS/ECR region (default AWS_REGION)
	Audience          string   // default sts.amazonaws.com (sts.amazonaws.com.cn in the China regions)
	GCPServiceAccount string   // gcp: mint tokens for this service account through IAM Credentials
	IAMCredentialsURL string   // IAM Credentials endpoint (default Google's)
	TokenFile         string   // file: default AWS_WEB_IDENTITY_TOKEN_FILE
	SessionName       string   // default from the CI context
	Duration          time.Duration
	// RetryBudget bounds the total time spent retrying one STS exchange (default 2 minutes).
	RetryBudget time.Duration
	// RefreshWindow is how long before expiry credentials are refreshed (default 1 minute).
	RefreshWindow time.Duration
	Getenv        func(string) string // default os.Getenv
	HTTPClient    *http.Client
	// Mask is called with every token, secret key and session token as soon as it is handled, so a
	// platform can hide it from logs (GitHub's ::add-mask::). Default: no-op.
	Mask   func(secret string)
	Logger *slog.Logger
}

// DefaultAudience is the audience AWS's IAM OIDC providers expect by default.
const DefaultAudience = "sts.amazonaws.com"

// Session is a federated identity: an aws.Config whose credentials refresh themselves, plus what was
// chosen and why.
type Session struct {
	Config    aws.Config
	Detection Detection
	RoleARN   string
	Account   string
	// Expires is when the first credentials expire (zero for credentials that do not).
	Expires time.Time
	// Caller is who the default chain's credentials are (GetCallerIdentity), for the aws identity.
	Caller string

	opts   Options
	source TokenSource
}

// roleARNRe is compiled on first use, not at start-up: its {1,512} repetition compiles into a
// 356 KB program (1 ms of every process's start, docker-credential-ecrpush's included).
var roleARNRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
})

// ValidateRoleARN checks an IAM role ARN the way STS would, with a message that says what to change.
func ValidateRoleARN(s string) error {
	if roleARNRe().MatchString(s) {
		return nil
	}
	if a, err := arn.Parse(s); err == nil && a.Service == "iam" && !strings.HasPrefix(a.Resource, "role/") {
		return fixable.New("--role-arn %q is not a role: use arn:aws:iam::ACCOUNT:role/NAME", s)
	}
	return fixable.New("--role-arn %q is not an IAM role ARN like arn:aws:iam::111122223333:role/ecrpush-ci", s)
}

// Federate detects the identity, exchanges it for credentials of opts.RoleARN and checks that they work.
func Federate(ctx context.Context, opts Options) (*Session, error) {
	opts = opts.withDefaults()
	det, err := Detect(ctx, opts)
	if err != nil {
		return nil, err
	}
	opts.Logger.Info("identity: " + det.String())
	s := &Session{Detection: det, opts: opts}
	if det.Identity == IdentityAWS {
		return s.defaultChain(ctx)
	}
	if opts.RoleARN == "" && det.Identity == IdentityFile {
		// EKS IRSA sets the role next to the token file.
		opts.RoleARN = opts.Getenv("AWS_ROLE_ARN")
	}
	if opts.RoleARN == "" {
		return nil, fixable.New("--role-arn is required to federate the %s identity (the role whose trust policy admits this job's token)", det.Identity)
	}
	if err := ValidateRoleARN(opts.RoleARN); err != nil {
		return nil, err
	}
	s.source, err = newSource(det.Identity, opts)
	if err != nil {
		return nil, err
	}
	s.RoleARN = opts.RoleARN
	s.Account = accountOf(opts.RoleARN)
	cfg, err := s.configFor(ctx, opts.RoleARN, opts.SessionName)
	if err != nil {
		return nil, err
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, unwrapRetrieve(err)
	}
	s.Expires = creds.Expires
	s.Config = cfg
	return s, nil
}

// Role federates the same identity into another role (e.g. a deploy role in another account), with its own
// refreshing credentials. For the aws identity, which has no token, it chains with AssumeRole instead.
func (s *Session) Role(ctx context.Context, roleARN string) (aws.Config, error) {
	if err := ValidateRoleARN(roleARN); err != nil {
		return aws.Config{}, err
	}
	if s.source == nil {
		return s.Chain(ctx, roleARN)
	}
	cfg, err := s.configFor(ctx, roleARN, s.opts.SessionName)
	if err != nil {
		return aws.Config{}, err
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return aws.Config{}, unwrapRetrieve(err)
	}
	return cfg, nil
}

// Chain assumes roleARN with AssumeRole from this session, for the duration asked (default one hour).
// STS caps role chaining — a role session assuming another role — at one hour; a user's keys may ask
// up to the role's maximum.
func (s *Session) Chain(ctx context.Context, roleARN string) (aws.Config, error) {
	if err := ValidateRoleARN(roleARN); err != nil {
		return aws.Config{}, err
	}
	d := s.opts.Duration
	if d == 0 {
		d = time.Hour
	}
	client := sts.NewFromConfig(s.Config)
	p := stscreds.NewAssumeRoleProvider(client, roleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = s.opts.SessionName
		o.Duration = d
	})
	cfg := s.Config.Copy()
	cfg.Credentials = aws.NewCredentialsCache(maskingProvider{p, s.opts.Mask}, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = s.opts.RefreshWindow })
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return aws.Config{}, s.chainError(roleARN, d, err)
	}
	return cfg, nil
}

// chainError says why AssumeRole refused, naming the caller.
func (s *Session) chainError(roleARN string, d time.Duration, err error) error {
	caller := s.Caller
	if caller == "" {
		caller = s.RoleARN
	}
	if caller == "" {
		caller = "this session"
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("assume %s: %w", roleARN, err)
	}
	msg := shown(ae.ErrorMessage())
	switch {
	case ae.ErrorCode() == "AccessDenied":
		return fixable.Wrap(err, fmt.Sprintf("%s may not assume %s (%s): the role must exist, its trust policy must allow sts:AssumeRole for %s (or its account), "+
			"and %s's own policy must allow sts:AssumeRole on %s", caller, roleARN, msg, caller, caller, roleARN))
	case ae.ErrorCode() == "ValidationError" && strings.Contains(msg, "role chaining"):
		return fixable.Wrap(err, fmt.Sprintf("%s is a role session, and STS caps role chaining at one hour: pass --role-duration 1h or less (asked %s)", caller, d))
	case ae.ErrorCode() == "ValidationError" && strings.Contains(msg, "MaxSessionDuration"):
		return fixable.Wrap(err, fmt.Sprintf("%s allows shorter sessions than --role-duration %s: ask less, or raise the role's maximum session duration", roleARN, d))
	case ae.ErrorCode() == "ValidationError", ae.ErrorCode() == "RegionDisabledException":
		return fixable.Wrap(err, fmt.Sprintf("STS refused %s's AssumeRole on %s: %s", caller, roleARN, msg))
	}
	return fmt.Errorf("assume %s: %w", roleARN, err)
}

// configFor builds an aws.Config whose credentials come from AssumeRoleWithWebIdentity for roleARN, refreshed
// before they expire. The SDK's own retries are off: ours fetch a fresh token per attempt.
func (s *Session) configFor(ctx context.Context, roleARN, sessionName string) (aws.Config, error) {
	o := s.opts
	base, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(o.Region),
		config.WithCredentialsProvider(aws.AnonymousCredentials{}),
	)
	if err != nil {
		return aws.Config{}, fixable.Wrap(err, "cannot load the AWS configuration: "+err.Error())
	}
	stsClient := sts.NewFromConfig(base, func(so *sts.Options) { so.Retryer = aws.NopRetryer{} })
	tr := &tokenRetriever{source: s.source, audience: o.Audience, mask: o.Mask, tokenFile: o.TokenFile}
	inner := stscreds.NewWebIdentityRoleProvider(stsClient, roleARN, tr, func(wo *stscreds.WebIdentityRoleOptions) {
		wo.RoleSessionName = sessionName
		wo.Duration = o.Duration
	})
	p := &retryingProvider{inner: inner, tr: tr, roleARN: roleARN, region: o.Region, budget: o.RetryBudget, log: o.Logger, mask: o.Mask}
	// An explicit provider keeps the SDK from resolving its own chain (which would trip over
	// AWS_WEB_IDENTITY_TOKEN_FILE without AWS_ROLE_ARN, or read a stale profile).
	cache := aws.NewCredentialsCache(p, func(co *aws.CredentialsCacheOptions) {
		// Refresh before expiry so a long push never signs with credentials about to lapse.
		co.ExpiryWindow = o.RefreshWindow
	})
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(o.Region), config.WithCredentialsProvider(cache),
		config.WithRetryMaxAttempts(APIAttempts))
	if err != nil {
		return aws.Config{}, fixable.Wrap(err, "cannot load the AWS configuration: "+err.Error())
	}
	cfg.Credentials = cache
	return cfg, nil
}

// APIAttempts is how many times every AWS API call made with a Session's Config (ECR, STS
// AssumeRole) is sent in all. The SDK's default of 3 loses one call in a thousand when one request
// in ten fails, and a push with replication makes tens of calls; 6 loses one in a million, after at
// most about half a minute of the SDK's jittered backoff.
const APIAttempts = 6

// defaultChain uses the AWS default credential chain (env keys, profiles, SSO, ECS/EC2 roles), then, with a
// role ARN, chains into it.
func (s *Session) defaultChain(ctx context.Context) (*Session, error) {
	o := s.opts
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(o.Region), config.WithRetryMaxAttempts(APIAttempts))
	if err != nil {
		return nil, fixable.Wrap(err, "cannot load the AWS configuration (profiles, environment): "+err.Error())
	}
	cfg.Credentials = aws.NewCredentialsCache(maskingProvider{cfg.Credentials, o.Mask})
	s.Config = cfg
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return nil, fixable.Wrap(err, fmt.Sprintf("the AWS default credential chain's credentials were refused by STS (%s: %s): refresh them (aws sso login, new keys) or choose --identity",
				ae.ErrorCode(), ae.ErrorMessage()))
		}
		if strings.Contains(err.Error(), "failed to retrieve credentials") || strings.Contains(err.Error(), "no EC2 IMDS role found") {
			return nil, fixable.Wrap(err, "no AWS credentials found: not in GitHub Actions or Cloud Build, no web identity token file, and the default chain "+
				"(AWS_ACCESS_KEY_ID, AWS_PROFILE, SSO, instance role) has none; set one, or pass --identity and --role-arn")
		}
		return nil, fmt.Errorf("sts GetCallerIdentity: %w", err)
	}
	s.Account = aws.ToString(id.Account)
	s.Caller = aws.ToString(id.Arn)
	if o.RoleARN != "" {
		if err := ValidateRoleARN(o.RoleARN); err != nil {
			return nil, err
		}
		cfg, err := s.Chain(ctx, o.RoleARN)
		if err != nil {
			return nil, err
		}
		s.Config = cfg
		s.RoleARN = o.RoleARN
		s.Account = accountOf(o.RoleARN)
	}
	return s, nil
}

func (o Options) withDefaults() Options {
	if o.Getenv == nil {
		o.Getenv = getenvOS
	}
	if o.Identity == "" {
		o.Identity = IdentityAuto
	}
	if o.Region == "" {
		o.Region = firstNonEmpty(o.Getenv("AWS_REGION"), o.Getenv("AWS_DEFAULT_REGION"))
	}
	if o.Audience == "" {
		o.Audience = trustpolicy.DefaultAudience(trustpolicy.PartitionOfRegion(o.Region))
	}
	if o.TokenFile == "" {
		o.TokenFile = o.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE")
	}
	if o.IAMCredentialsURL == "" {
		o.IAMCredentialsURL = o.Getenv("ECRPUSH_IAMCREDENTIALS_ENDPOINT")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if o.Mask == nil {
		o.Mask = func(string) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RefreshWindow == 0 {
		o.RefreshWindow = time.Minute
	}
	if o.RetryBudget == 0 {
		o.RetryBudget = 2 * time.Minute
	}
	if o.SessionName == "" {
		o.SessionName = SessionName(o.Getenv)
	}
	return o
}

func accountOf(roleARN string) string {
	if a, err := arn.Parse(roleARN); err == nil {
		return a.AccountID
	}
	return ""
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// tokenRetriever adapts a TokenSource to stscreds.IdentityTokenRetriever (which has no context) and keeps
// the last token's claims for diagnosis. The credentials cache serialises Retrieve, so one ctx at a time.
type tokenRetriever struct {
	source    TokenSource
	audience  string
	mask      func(string)
	tokenFile string

	mu     sync.Mutex
	ctx    context.Context
	claims Claims
	err    error // the token source's own error, kept unwrapped for the user
}

func (t *tokenRetriever) GetIdentityToken() ([]byte, error) {
	t.mu.Lock()
	ctx := t.ctx
	t.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	tok, err := t.source.Token(ctx, t.audience)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.err = err
	if err != nil {
		return nil, err
	}
	t.mask(tok)
	t.claims, _ = DecodeClaims(tok)
	return []byte(tok), nil
}

// mintsFresh reports whether each call of the source yields a new token (GitHub's token service, the
// metadata server, IAM Credentials). A token file holds the same token until the kubelet rotates it,
// so retrying it answers the same.
func (t *tokenRetriever) mintsFresh() bool { return t.source.Name() != "file" }

// verificationKeyMessage is STS's answer when it could not fetch the provider's keys: intermittent for
// a real issuer (the API reference: get a new token and retry), but also its answer for a token
// signed with a key the issuer does not publish.
func verificationKeyMessage(msg string) bool {
	return strings.Contains(strings.ToLower(msg), "couldn't retrieve verification key")
}

// retryingProvider retries AssumeRoleWithWebIdentity on what can succeed on retry (throttling, 5xx,
// IDPCommunicationError, the verification-key InvalidIdentityToken, network) with a fresh token each
// time, and fails at once on denials.
type retryingProvider struct {
	inner   *stscreds.WebIdentityRoleProvider
	tr      *tokenRetriever
	roleARN string
	region  string
	budget  time.Duration
	log     *slog.Logger
	mask    func(string)
}

// attempts bounds one exchange: at 30% transient failures, 8 attempts all fail once in 15 000.
const stsAttempts = 8

func (p *retryingProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	p.tr.mu.Lock()
	p.tr.ctx = ctx
	p.tr.mu.Unlock()
	var creds aws.Credentials
	attempt := 0
	err := retryTransient(ctx, stsAttempts, p.budget, func(ctx context.Context) error {
		attempt++
		c, err := p.inner.Retrieve(ctx)
		if err == nil {
			p.mask(c.SecretAccessKey)
			p.mask(c.SessionToken)
			creds = c
			return nil
		}
		p.tr.mu.Lock()
		srcErr, claims := p.tr.err, p.tr.claims
		p.tr.mu.Unlock()
		if srcErr != nil {
			// The token source already retried what it could.
			return srcErr
		}
		var ae smithy.APIError
		if errors.As(err, &ae) {
			denied := func() error {
				return fixable.Wrap(&DeniedError{Code: ae.ErrorCode(), RoleARN: p.roleARN, Region: p.region, Claims: claims, Message: ae.ErrorMessage(),
					TokenFile: p.tr.tokenFile, Attempts: attempt, Err: err}, "")
			}
			switch ae.ErrorCode() {
			case "InvalidIdentityToken":
				if verificationKeyMessage(ae.ErrorMessage()) && p.tr.mintsFresh() && attempt < stsAttempts {
					p.log.Warn("STS could not retrieve the identity provider's verification key, retrying with a fresh token", "attempt", attempt)
					return transient(denied())
				}
				return denied()
			case "AccessDenied", "ExpiredTokenException", "IDPRejectedClaim", "RegionDisabledException":
				return denied()
			case "ValidationError":
				return fixable.Wrap(err, fmt.Sprintf("STS rejected the request for %s: %s", p.roleARN, shown(ae.ErrorMessage())))
			case "IDPCommunicationError", "Throttling", "ThrottlingException", "RequestLimitExceeded", "InternalFailure",
				"InternalError", "ServiceUnavailable", "ServiceUnavailableException":
				p.log.Warn("STS AssumeRoleWithWebIdentity failed, retrying with a fresh token", "code", ae.ErrorCode(), "attempt", attempt)
				return transient(err)
			}
		}
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
			return transient(err)
		}
		if isNetwork(err) {
			p.log.Warn("STS unreachable, retrying", "attempt", attempt, "err", err)
			return transient(err)
		}
		return err
	})
	if err != nil && ctx.Err() == nil && !fixable.Is(err) {
		err = fmt.Errorf("sts AssumeRoleWithWebIdentity for %s failed after %d attempts: %w", p.roleARN, attempt, err)
	}
	return creds, err
}

// unwrapRetrieve removes the credentials cache's wrapping so the user sees our sentence.
func unwrapRetrieve(err error) error {
	var fe *fixable.Error
	if errors.As(err, &fe) {
		return fe
	}
	return err
}

// maskingProvider hands every credential it retrieves to the platform's mask first.
type maskingProvider struct {
	p    aws.CredentialsProvider
	mask func(string)
}

func (m maskingProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.p.Retrieve(ctx)
	if err == nil {
		m.mask(c.SecretAccessKey)
		m.mask(c.SessionToken)
	}
	return c, err
}

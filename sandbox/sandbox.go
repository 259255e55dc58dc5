package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ecrpush/ecrpush/internal/iam"
	"github.com/ecrpush/ecrpush/sandbox/ecr"
	"github.com/ecrpush/ecrpush/sandbox/fault"
	"github.com/ecrpush/ecrpush/sandbox/oidc"
	"github.com/ecrpush/ecrpush/sandbox/sts"
	"github.com/ecrpush/ecrpush/sandbox/world"
)

// RegistryID names one registry: an account in a region.
type RegistryID = ecr.RegistryID

// Endpoints are the URLs a running sandbox answers on, all on 127.0.0.1.
type Endpoints struct {
	STS                string // AWS_ENDPOINT_URL_STS
	ECR                string // AWS_ENDPOINT_URL_ECR
	GitHubIssuer       string // iss of GitHub tokens
	GitHubTokenURL     string // ACTIONS_ID_TOKEN_REQUEST_URL
	GitHubRequestToken string // ACTIONS_ID_TOKEN_REQUEST_TOKEN
	GoogleIssuer       string // iss of Google ID tokens
	MetadataHost       string // GCE_METADATA_HOST (host:port, no scheme)
	IAMCredentials     string // IAM Credentials API base URL
	GoogleSTS          string // Google STS token exchange URL (token_url of workload identity federation)
	Registries         map[RegistryID]string
}

// Sandbox is a running sandbox.
type Sandbox struct {
	Config    *Config
	Endpoints Endpoints
	World     *world.World
	GitHub    *oidc.GitHub
	Google    *oidc.Google
	GitHubIss *oidc.Issuer
	GoogleIss *oidc.Issuer
	GoogleSTS *oidc.GoogleSTS // AWS-sourced workload identity federation into Google
	STS       *sts.Server     // AWS STS: more identity providers (GHES, GHEC issuers), STS faults
	ECR       *ecr.Service
	Faults    *fault.Injector
	Log       *RequestLog

	servers []*http.Server
	wg      sync.WaitGroup
	close   sync.Once
}

// Endpoint names used by the request log and the fault injector.
const (
	EndpointSTS            = "sts"
	EndpointECR            = "ecr"
	EndpointS3             = "s3" // the layer bucket registries redirect blob GETs to
	EndpointGitHubIssuer   = "github-issuer"
	EndpointGitHubToken    = "github-token"
	EndpointGoogleIssuer   = "google-issuer"
	EndpointMetadata       = "metadata"
	EndpointIAMCredentials = "iamcredentials"
	EndpointGoogleSTS      = "google-sts"
)

// RegistryEndpoint is the endpoint name of a registry in the request log.
func RegistryEndpoint(id RegistryID) string { return "registry/" + id.Account + "/" + id.Region }

// Start builds the sandbox from cfg (nil: DefaultConfig) and serves it until ctx ends or Close.
func Start(ctx context.Context, cfg *Config) (*Sandbox, error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.withDefaults()
	s := &Sandbox{Config: cfg, Faults: fault.New(cfg.Seed), Log: &RequestLog{}}
	ok := false
	defer func() {
		if !ok {
			_ = s.Close()
		}
	}()

	w := world.New(nil)
	w.CredentialLifetime = cfg.CredentialLifetime.D()
	s.World = w
	var regs []RegistryID
	replication := map[RegistryID]json.RawMessage{}
	for _, a := range cfg.Accounts {
		w.AddAccount(a.ID, a.Name, a.Regions)
		for _, rc := range a.Roles {
			trust, err := iam.Parse(rc.TrustPolicy)
			if err != nil {
				return nil, fmt.Errorf("sandbox config: role %s in %s: trustPolicy: %w", rc.Name, a.ID, err)
			}
			role := &world.Role{Account: a.ID, Name: rc.Name, Trust: trust, TrustText: string(rc.TrustPolicy),
				MaxSessionDuration: rc.MaxSessionDuration.D()}
			for i, pc := range rc.Policies {
				p, err := iam.Parse(pc)
				if err != nil {
					return nil, fmt.Errorf("sandbox config: role %s in %s: policy %d: %w", rc.Name, a.ID, i+1, err)
				}
				role.Policies = append(role.Policies, p)
			}
			if err := w.AddRole(role); err != nil {
				return nil, err
			}
		}
		for _, region := range a.Regions {
			id := RegistryID{Account: a.ID, Region: region}
			regs = append(regs, id)
			if len(a.RegistryPolicy) > 0 {
				if err := w.SetRegistryPolicy(a.ID, region, string(a.RegistryPolicy)); err != nil {
					return nil, fmt.Errorf("sandbox config: account %s: registryPolicy: %w", a.ID, err)
				}
			}
			if r, ok := a.Replication[region]; ok {
				replication[id] = r
			}
		}
		for region := range a.Replication {
			if !contains(a.Regions, region) {
				return nil, fmt.Errorf("sandbox config: account %s: replication for %s, which is not among its regions", a.ID, region)
			}
		}
	}

	var err error
	if s.GitHubIss, err = oidc.NewIssuer(); err != nil {
		return nil, err
	}
	if s.GoogleIss, err = oidc.NewIssuer(); err != nil {
		return nil, err
	}
	if s.Endpoints.GitHubIssuer, err = s.serve(EndpointGitHubIssuer, fault.Plain, cfg.Faults.Issuers, s.GitHubIss.Handler()); err != nil {
		return nil, err
	}
	s.GitHubIss.SetURL(s.Endpoints.GitHubIssuer)
	if s.Endpoints.GoogleIssuer, err = s.serve(EndpointGoogleIssuer, fault.Plain, cfg.Faults.Issuers, s.GoogleIss.Handler()); err != nil {
		return nil, err
	}
	s.GoogleIss.SetURL(s.Endpoints.GoogleIssuer)

	gh := cfg.GitHub
	s.Endpoints.GitHubRequestToken = randomToken()
	s.GitHub = oidc.NewGitHub(s.GitHubIss, s.Endpoints.GitHubRequestToken, oidc.GitHubContext{
		Repository: gh.Repository, Ref: gh.Ref, SHA: gh.SHA, Actor: gh.Actor, Workflow: gh.Workflow,
		EventName: gh.EventName, Environment: gh.Environment, RunID: gh.RunID, RunAttempt: gh.RunAttempt,
		JobWorkflowRef: gh.JobWorkflowRef, OwnerID: gh.OwnerID, RepositoryID: gh.RepositoryID,
		ImmutableSubject: gh.ImmutableSubject, SubjectTemplate: gh.SubjectTemplate,
	})
	if d := cfg.IDTokenLifetime.D(); d > 0 {
		s.GitHub.SetLifetime(d)
	}
	base, err := s.serve(EndpointGitHubToken, fault.Plain, cfg.Faults.Issuers, s.GitHub.Handler())
	if err != nil {
		return nil, err
	}
	s.Endpoints.GitHubTokenURL = base + s.GitHub.RequestPath()

	s.Google = oidc.NewGoogle(s.GoogleIss, cfg.GCP.ProjectID, cfg.GCP.ServiceAccountEmail, cfg.GCP.UniqueID)
	s.Google.SetIdentityDisabled(cfg.GCP.IdentityDisabled)
	md, err := s.serve(EndpointMetadata, fault.Plain, cfg.Faults.Issuers, s.Google.MetadataHandler())
	if err != nil {
		return nil, err
	}
	s.Endpoints.MetadataHost = strings.TrimPrefix(md, "http://")
	if s.Endpoints.IAMCredentials, err = s.serve(EndpointIAMCredentials, fault.Plain, cfg.Faults.Issuers, s.Google.IAMCredentialsHandler()); err != nil {
		return nil, err
	}

	stsSrv := sts.New(w, &oidc.Verifier{}, []sts.Provider{
		{Name: GitHubProvider, IssuerURL: s.Endpoints.GitHubIssuer, ClientIDs: []string{"sts.amazonaws.com"}},
		{Name: GoogleProvider, IssuerURL: s.Endpoints.GoogleIssuer, BuiltIn: true},
	}, sts.WithLogger(slog.New(slog.DiscardHandler)))
	s.STS = stsSrv
	if s.Endpoints.STS, err = s.serve(EndpointSTS, fault.AWSQuery, cfg.Faults.STS, stsSrv.Handler()); err != nil {
		return nil, err
	}
	// Google's STS admits the ci account's AWS identities through one pool provider, verifying each with STS above.
	s.GoogleSTS = oidc.NewGoogleSTS(s.Endpoints.STS)
	s.GoogleSTS.AddAWSProvider(oidc.AWSProvider{Account: cfg.Accounts[0].ID, Audience: oidc.WorkloadProvider(s.Google.ProjectNumber(), "ecrpush-sandbox", "aws")})
	// Its identities may impersonate the project's service account through IAM Credentials.
	s.GoogleSTS.AllowImpersonation(cfg.GCP.ServiceAccountEmail)
	s.Google.SetAccessTokenHandler(s.GoogleSTS.GenerateAccessTokenHandler())
	if s.Endpoints.GoogleSTS, err = s.serve(EndpointGoogleSTS, fault.Plain, cfg.Faults.Issuers, s.GoogleSTS.Handler()); err != nil {
		return nil, err
	}
	s.Endpoints.GoogleSTS += "/v1/token"

	s.ECR, err = ecr.New(w, ecr.Options{
		Registries:       regs,
		TokenTTL:         cfg.ECRTokenTTL.D(),
		ReportTokenTTL:   cfg.ECRTokenReportsTTL,
		ReplicationDelay: cfg.ReplicationDelay.D(),
		StorageDir:       cfg.StorageDir,
		Replication:      replication,
		Logger:           slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	if s.Endpoints.ECR, err = s.serve(EndpointECR, fault.AWSJSON, cfg.Faults.ECR, s.ECR.APIHandler()); err != nil {
		return nil, err
	}
	// The layer bucket ECR redirects blob GETs to (a host of its own, like S3's).
	dl, err := s.serve(EndpointS3, fault.Plain, cfg.Faults.Registries, s.ECR.DownloadHandler())
	if err != nil {
		return nil, err
	}
	s.ECR.SetDownloadEndpoint(dl)
	s.Endpoints.Registries = map[RegistryID]string{}
	for _, id := range regs {
		u, err := s.serve(RegistryEndpoint(id), fault.Registry, cfg.Faults.Registries, s.ECR.RegistryHandler(id))
		if err != nil {
			return nil, err
		}
		s.ECR.SetEndpoint(id, u)
		s.Endpoints.Registries[id] = u
	}
	go func() {
		<-ctx.Done()
		_ = s.Close()
	}()
	ok = true
	return s, nil
}

// serve starts one HTTP server on a random port of Config.Host (127.0.0.1 by default), behind the request
// log and the fault injector.
func (s *Sandbox) serve(name string, p fault.Protocol, fc fault.Config, h http.Handler) (string, error) {
	host := s.Config.Host
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("sandbox: listen for %s: %w", name, err)
	}
	srv := &http.Server{
		Handler:           s.Log.wrap(name, s.Faults.Wrap(name, p, fc, h)),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          nil,
	}
	s.servers = append(s.servers, srv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("sandbox server stopped", "endpoint", name, "err", err)
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// Close stops every server and the replication workers.
func (s *Sandbox) Close() error {
	var errs []error
	s.close.Do(func() {
		s.Faults.Release() // stalled requests would hold Shutdown up
		// A short grace: Shutdown otherwise waits its whole timeout for connections a client opened
		// and never used.
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		for _, srv := range s.servers {
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
		}
		s.wg.Wait()
		if s.ECR != nil {
			errs = append(errs, s.ECR.Close())
		}
	})
	return errors.Join(errs...)
}

// Environ is the environment that points ecrpush, the aws CLI and the CI token clients at the sandbox,
// as KEY=VALUE pairs in a stable order.
func (s *Sandbox) Environ() []string {
	ci := s.Config.Accounts[0]
	e := map[string]string{
		"AWS_ENDPOINT_URL_STS":            s.Endpoints.STS,
		"AWS_ENDPOINT_URL_ECR":            s.Endpoints.ECR,
		"AWS_REGION":                      ci.Regions[0],
		"AWS_DEFAULT_REGION":              ci.Regions[0],
		"AWS_EC2_METADATA_DISABLED":       "true",
		"ACTIONS_ID_TOKEN_REQUEST_URL":    s.Endpoints.GitHubTokenURL,
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN":  s.Endpoints.GitHubRequestToken,
		"GITHUB_ACTIONS":                  "true",
		"GITHUB_REPOSITORY":               s.Config.GitHub.Repository,
		"GITHUB_REF":                      s.Config.GitHub.Ref,
		"GITHUB_SHA":                      s.Config.GitHub.SHA,
		"GITHUB_RUN_ID":                   s.Config.GitHub.RunID,
		"GITHUB_RUN_ATTEMPT":              s.Config.GitHub.RunAttempt,
		"GCE_METADATA_HOST":               s.Endpoints.MetadataHost,
		"ECRPUSH_IAMCREDENTIALS_ENDPOINT": s.Endpoints.IAMCredentials,
		"ECRPUSH_GOOGLE_STS_ENDPOINT":     s.Endpoints.GoogleSTS,
	}
	if len(ci.Roles) > 0 {
		e["ECRPUSH_ROLE_ARN"] = "arn:aws:iam::" + ci.ID + ":role/" + ci.Roles[0].Name
	}
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+e[k])
	}
	return out
}

// Secrets are every token, key and password the sandbox has issued so far (for leak scans).
func (s *Sandbox) Secrets() []string {
	out := []string{s.Endpoints.GitHubRequestToken, s.Google.AccessToken()}
	for _, ss := range s.World.Sessions() {
		out = append(out, ss.SecretAccessKey)
		if ss.SessionToken != "" {
			out = append(out, ss.SessionToken)
		}
	}
	out = append(out, s.ECR.Passwords()...)
	out = append(out, s.GitHub.Issued()...)
	out = append(out, s.Google.Issued()...)
	out = append(out, s.GoogleSTS.Issued()...)
	return out
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RegistryIDs lists the registries in config order.
func (s *Sandbox) RegistryIDs() []RegistryID {
	var out []RegistryID
	for _, a := range s.Config.Accounts {
		for _, r := range a.Regions {
			out = append(out, RegistryID{Account: a.ID, Region: r})
		}
	}
	return out
}

// AccountName is the configured name of an account ("ci", "prod", …).
func (s *Sandbox) AccountName(id string) string {
	for _, a := range s.Config.Accounts {
		if a.ID == id {
			return a.Name
		}
	}
	return ""
}

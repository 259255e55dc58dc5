package sandbox

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"regexp"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/ecrpush/ecrpush/sandbox/fault"
)

// Documentation account IDs: the sandbox never uses real ones.
const (
	CIAccount      = "111122223333"
	ProdAccount    = "444455556666"
	StagingAccount = "777788889999"

	// GitHubProvider and GoogleProvider are the provider names the sandbox issuers are registered under,
	// the same names a real trust policy uses.
	GitHubProvider = "token.actions.githubusercontent.com"
	GoogleProvider = "accounts.google.com"

	// DefaultServiceAccountID is the unique id of the sandbox's Google service account.
	DefaultServiceAccountID = "100000000000000000001"
)

// Config describes a sandbox: accounts, their roles and registries, the token issuers' context,
// lifetimes and faults. It is read from YAML or JSON; policies are written inline as IAM JSON objects.
type Config struct {
	Seed               int64    `json:"seed,omitempty"`
	CredentialLifetime Duration `json:"credentialLifetime,omitempty"` // caps STS credentials (0: as requested)
	ECRTokenTTL        Duration `json:"ecrTokenTTL,omitempty"`        // registry password lifetime (default 12h)
	// ECRTokenReportsTTL: GetAuthorizationToken reports ecrTokenTTL even when the caller's session
	// ends sooner; the token still dies with the session (ECR as seen, see sandbox/ecr).
	ECRTokenReportsTTL bool     `json:"ecrTokenReportsTTL,omitempty"`
	ReplicationDelay   Duration `json:"replicationDelay,omitempty"` // before a replica is copied (default 2s)
	IDTokenLifetime    Duration `json:"idTokenLifetime,omitempty"`  // GitHub/Google ID tokens (default 5m / 1h)
	StorageDir         string   `json:"storageDir,omitempty"`       // registry blobs ("": a temp dir)
	// Host is the IP address every endpoint listens on and advertises ("": 127.0.0.1). CI sets the docker
	// bridge address so that a container action, which has its own loopback, reaches the sandbox.
	Host string `json:"host,omitempty"`

	Accounts []AccountConfig `json:"accounts"`
	GitHub   GitHubConfig    `json:"github"`
	GCP      GCPConfig       `json:"gcp"`
	Faults   FaultsConfig    `json:"faults,omitempty"`
}

// AccountConfig is one AWS account.
type AccountConfig struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	Regions []string     `json:"regions"`
	Roles   []RoleConfig `json:"roles,omitempty"`
	// RegistryPolicy is the ECR registry policy applied in every region of the account.
	RegistryPolicy json.RawMessage `json:"registryPolicy,omitempty"`
	// Replication is the initial replication configuration per region ({"rules": [...]}).
	Replication map[string]json.RawMessage `json:"replication,omitempty"`
}

// RoleConfig is an IAM role.
type RoleConfig struct {
	Name               string            `json:"name"`
	MaxSessionDuration Duration          `json:"maxSessionDuration,omitempty"`
	TrustPolicy        json.RawMessage   `json:"trustPolicy"`
	Policies           []json.RawMessage `json:"policies,omitempty"`
}

// GitHubConfig is the context of the GitHub Actions job the token service answers for.
type GitHubConfig struct {
	Repository     string `json:"repository"`
	Ref            string `json:"ref"`
	SHA            string `json:"sha,omitempty"`
	Actor          string `json:"actor,omitempty"`
	Workflow       string `json:"workflow,omitempty"`
	EventName      string `json:"eventName,omitempty"`
	Environment    string `json:"environment,omitempty"`
	RunID          string `json:"runId,omitempty"`
	RunAttempt     string `json:"runAttempt,omitempty"`
	JobWorkflowRef string `json:"jobWorkflowRef,omitempty"`
	// OwnerID and RepositoryID are repository_owner_id and repository_id (default: derived from the names).
	OwnerID      string `json:"ownerId,omitempty"`
	RepositoryID string `json:"repositoryId,omitempty"`
	// ImmutableSubject issues subs in GitHub's immutable form repo:OWNER@OWNER_ID/REPO@REPO_ID:…;
	// SubjectTemplate is a custom subject template (include_claim_keys).
	ImmutableSubject bool     `json:"immutableSubject,omitempty"`
	SubjectTemplate  []string `json:"subjectTemplate,omitempty"`
}

// GCPConfig is the Google side: the build's service account as the metadata server presents it.
type GCPConfig struct {
	ProjectID           string `json:"projectId"`
	ServiceAccountEmail string `json:"serviceAccountEmail"`
	UniqueID            string `json:"uniqueId"`
	// IdentityDisabled makes the metadata identity endpoint answer 404, as Cloud Build does for its
	// default service account.
	IdentityDisabled bool `json:"identityDisabled,omitempty"`
}

// FaultsConfig sets fault profiles per endpoint kind.
type FaultsConfig struct {
	STS        fault.Config `json:"sts,omitempty"`
	ECR        fault.Config `json:"ecr,omitempty"`
	Registries fault.Config `json:"registries,omitempty"`
	Issuers    fault.Config `json:"issuers,omitempty"` // GitHub token service, metadata, IAM Credentials
}

// Load reads a YAML or JSON config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read sandbox config: %w", err)
	}
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("sandbox config %s: %w", path, err)
	}
	return &c, c.Validate()
}

var (
	accountRe = regexp.MustCompile(`^[0-9]{12}$`)
	regionRe  = regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-[0-9]$`)
	repoRe    = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
)

// Validate checks the config for mistakes a user can fix.
func (c *Config) Validate() error {
	if len(c.Accounts) == 0 {
		return fmt.Errorf("sandbox config: no accounts: add at least one account under accounts")
	}
	if c.Host != "" && net.ParseIP(c.Host) == nil {
		return fmt.Errorf("sandbox config: host %q is not an IP address (e.g. 127.0.0.1, or 172.17.0.1 for docker containers)", c.Host)
	}
	seen := map[string]bool{}
	for _, a := range c.Accounts {
		if !accountRe.MatchString(a.ID) {
			return fmt.Errorf("sandbox config: account id %q must be 12 digits", a.ID)
		}
		if seen[a.ID] {
			return fmt.Errorf("sandbox config: account %s is defined twice", a.ID)
		}
		seen[a.ID] = true
		if len(a.Regions) == 0 {
			return fmt.Errorf("sandbox config: account %s has no regions", a.ID)
		}
		for _, r := range a.Regions {
			if !regionRe.MatchString(r) {
				return fmt.Errorf("sandbox config: account %s: %q is not a region name like us-east-1", a.ID, r)
			}
		}
		for _, r := range a.Roles {
			if r.Name == "" || len(r.TrustPolicy) == 0 {
				return fmt.Errorf("sandbox config: account %s: every role needs a name and a trustPolicy", a.ID)
			}
		}
	}
	if c.GitHub.Repository != "" && !repoRe.MatchString(c.GitHub.Repository) {
		return fmt.Errorf("sandbox config: github.repository %q must look like OWNER/REPO", c.GitHub.Repository)
	}
	return nil
}

func (c *Config) withDefaults() {
	if c.ECRTokenTTL.D() == 0 {
		c.ECRTokenTTL = Dur(12 * time.Hour)
	}
	if c.ReplicationDelay.D() == 0 {
		c.ReplicationDelay = Dur(2 * time.Second)
	}
	if c.GitHub.Repository == "" {
		c.GitHub.Repository = "example/app"
	}
	if c.GitHub.Ref == "" {
		c.GitHub.Ref = "refs/heads/main"
	}
	def := DefaultConfig().GitHub
	for _, f := range []struct {
		v *string
		d string
	}{
		{&c.GitHub.SHA, def.SHA}, {&c.GitHub.Actor, def.Actor}, {&c.GitHub.Workflow, def.Workflow},
		{&c.GitHub.EventName, def.EventName}, {&c.GitHub.RunID, def.RunID}, {&c.GitHub.RunAttempt, def.RunAttempt},
	} {
		if *f.v == "" {
			*f.v = f.d
		}
	}
	if c.GitHub.JobWorkflowRef == "" {
		c.GitHub.JobWorkflowRef = c.GitHub.Repository + "/.github/workflows/release.yml@" + c.GitHub.Ref
	}
	g := DefaultConfig().GCP
	if c.GCP.ProjectID == "" {
		c.GCP.ProjectID = g.ProjectID
	}
	if c.GCP.ServiceAccountEmail == "" {
		c.GCP.ServiceAccountEmail = g.ServiceAccountEmail
	}
	if c.GCP.UniqueID == "" {
		c.GCP.UniqueID = g.UniqueID
	}
}

// DefaultConfig is the sandbox `ecrpush sandbox` and `ecrpush demo` run with no file: three accounts
// (ci, prod, staging) in us-east-1 and eu-west-1, a ci role trusting the sandbox GitHub and Google issuers,
// deploy roles in prod and staging, registry policies letting ci replicate into prod and staging,
// and no replication rules yet.
func DefaultConfig() *Config {
	regions := []string{"us-east-1", "eu-west-1"}
	destPolicy := json.RawMessage(fmt.Sprintf(`{
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "ReplicationFromCI",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::%s:root"},
    "Action": ["ecr:ReplicateImage", "ecr:CreateRepository"],
    "Resource": "*"
  }]
}`, CIAccount))
	return &Config{
		Accounts: []AccountConfig{
			{ID: CIAccount, Name: "ci", Regions: regions, Roles: []RoleConfig{{
				Name:        "ecrpush-ci",
				TrustPolicy: TrustPolicy(CIAccount, "repo:example/app:*", DefaultServiceAccountID, "sts.amazonaws.com", ""),
				Policies:    []json.RawMessage{ecrPolicy(CIAccount, true)},
			}}},
			{ID: ProdAccount, Name: "prod", Regions: regions, RegistryPolicy: destPolicy, Roles: []RoleConfig{deployRole(ProdAccount)}},
			{ID: StagingAccount, Name: "staging", Regions: regions, RegistryPolicy: destPolicy, Roles: []RoleConfig{deployRole(StagingAccount)}},
		},
		GitHub: GitHubConfig{
			Repository: "example/app", Ref: "refs/heads/main", SHA: "0123456789abcdef0123456789abcdef01234567",
			Actor: "octocat", Workflow: "release", EventName: "push", RunID: "4242", RunAttempt: "1",
		},
		GCP: GCPConfig{
			ProjectID:           "example-project",
			ServiceAccountEmail: "ecrpush-builder@example-project.iam.gserviceaccount.com",
			UniqueID:            DefaultServiceAccountID,
		},
	}
}

func deployRole(account string) RoleConfig {
	return RoleConfig{
		Name:        "ecrpush-deploy",
		TrustPolicy: TrustPolicy(account, "repo:example/app:*", DefaultServiceAccountID, "sts.amazonaws.com", "arn:aws:iam::"+CIAccount+":role/ecrpush-ci"),
		Policies:    []json.RawMessage{ecrPolicy(account, false)},
	}
}

// TrustPolicy is a role trust policy admitting GitHub tokens whose sub matches subLike, Google tokens
// of the service account with unique id googleID and audience aud, and (when chainFrom is set) role
// chaining from that role.
func TrustPolicy(account, subLike, googleID, aud, chainFrom string) json.RawMessage {
	chain := ""
	if chainFrom != "" {
		chain = fmt.Sprintf(`,
    {
      "Effect": "Allow",
      "Principal": {"AWS": %q},
      "Action": "sts:AssumeRole"
    }`, chainFrom)
	}
	return json.RawMessage(fmt.Sprintf(`{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {"Federated": "arn:aws:iam::%s:oidc-provider/%s"},
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {
        "StringEquals": {"%s:aud": %q},
        "StringLike": {"%s:sub": %q}
      }
    },
    {
      "Effect": "Allow",
      "Principal": {"Federated": "%s"},
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {
        "StringEquals": {"%s:aud": %q, "%s:oaud": %q}
      }
    }%s
  ]
}`, account, GitHubProvider, GitHubProvider, aud, GitHubProvider, subLike,
		GoogleProvider, GoogleProvider, googleID, GoogleProvider, aud, chain))
}

// ecrPolicy allows ecr:* on the account's repositories and the registry-level actions; the ci role may
// also chain into the deploy roles.
func ecrPolicy(account string, chain bool) json.RawMessage {
	extra := ""
	if chain {
		extra = `,
    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/ecrpush-deploy"}`
	}
	return json.RawMessage(fmt.Sprintf(`{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:*:%s:repository/*"},
    {"Effect": "Allow", "Action": [
      "ecr:GetAuthorizationToken", "ecr:DescribeRegistry", "ecr:PutReplicationConfiguration",
      "ecr:GetRegistryPolicy", "ecr:PutRegistryPolicy", "ecr:DeleteRegistryPolicy",
      "ecr:StartReplicationBackfill", "ecr:ListReplicationBackfills", "ecr:DescribeReplicationBackfillResults",
      "ecr:StopReplicationBackfill", "ecr:CreateRepositoryCreationTemplate", "ecr:UpdateRepositoryCreationTemplate",
      "ecr:DescribeRepositoryCreationTemplates", "ecr:DeleteRepositoryCreationTemplate"
    ], "Resource": "*"}%s
  ]
}`, account, extra))
}

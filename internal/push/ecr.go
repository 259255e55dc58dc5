package push

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/name"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// ECRPushActions are the IAM actions a push needs on the repository.
const ECRPushActions = "ecr:BatchCheckLayerAvailability, ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload, ecr:PutImage, ecr:BatchGetImage"

// NewECR returns a Publisher for repository in the ECR registry of cfg's account and region (or
// WithRegistryID's). It fetches a registry token with GetAuthorizationToken — the registry host is
// the token's proxyEndpoint, so any endpoint cfg points the ECR client at works unchanged — and
// reads the repository's settings. It writes nothing: a missing repository is created by the
// first Publish (or a Plan's Publish), with the options' settings, unless WithCreateRepository(false),
// in which case NewECR refuses at once. It never pushes into a missing repository: ECR answers that
// with a dropped connection, not an error.
func NewECR(ctx context.Context, cfg aws.Config, repository string, opts ...Option) (Publisher, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		return nil, fixable.New("no AWS region: set AWS_REGION (or --region) to the region of the ECR registry")
	}
	if err := ecrx.CheckRepository("repository", repository); err != nil {
		return nil, err
	}
	client := ecr.NewFromConfig(cfg)
	kc := newECRKeychain(client, o.registryID, o.now, o.log)
	if err := kc.refresh(ctx); err != nil {
		return nil, err
	}
	e := &ecrRepo{client: client, name: repository, registryID: o.registryID, region: cfg.Region, o: o}
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	var nopts []name.Option
	if kc.scheme == "http" && !isLoopback(kc.host) {
		nopts = append(nopts, name.Insecure)
	}
	repo, err := name.NewRepository(kc.host+"/"+repository, nopts...)
	if err != nil {
		return nil, fmt.Errorf("ecr: registry %s: %w", kc.host, err)
	}
	p := &registryPublisher{repo: repo, kc: kc, o: o, immutable: e.immutable, plainHTTP: kc.scheme == "http",
		deniedHint: "grant " + ECRPushActions + " on repository " + repository}
	return &ecrPublisher{registryPublisher: p, keychain: kc, ecr: e}, nil
}

// ecrPublisher is a registryPublisher whose keychain refreshes ECR tokens and whose repository is
// created, when missing, just before the first write.
type ecrPublisher struct {
	*registryPublisher
	keychain *ecrKeychain
	ecr      *ecrRepo
}

func (p *ecrPublisher) Publish(ctx context.Context, a *Artifact, tags []string) (*Result, error) {
	pl, err := p.plan(ctx, a, tags)
	if err != nil {
		return nil, err
	}
	return p.push(ctx, pl)
}

func (p *ecrPublisher) push(ctx context.Context, pl *plan) (*Result, error) {
	if err := p.ecr.create(ctx); err != nil {
		return nil, err
	}
	return p.registryPublisher.push(ctx, pl)
}

// Creation is the repository a Publish will create, with its settings; nil when it exists.
func (p *ecrPublisher) creation() *RepositoryCreation {
	if !p.ecr.missing {
		return nil
	}
	c := RepositoryCreation{Repository: p.ecr.name, Region: p.ecr.region, RegistryID: p.ecr.registryID,
		TagMutability: string(ecrtypes.ImageTagMutabilityMutable), ScanOnPush: p.o.scanOnPush, KMSKey: p.o.kmsKey}
	if p.o.tagImmutability {
		c.TagMutability = string(ecrtypes.ImageTagMutabilityImmutable)
	}
	return &c
}

// RepositoryCreation is an ECR repository a Publish will create.
type RepositoryCreation struct {
	Repository    string `json:"repository"`
	Region        string `json:"region"`
	RegistryID    string `json:"registryId,omitempty"`
	TagMutability string `json:"imageTagMutability"`
	ScanOnPush    bool   `json:"scanOnPush"`
	KMSKey        string `json:"kmsKey,omitempty"`
}

func isLoopback(host string) bool {
	h := host
	if i := strings.LastIndex(h, ":"); i > 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "[::1]"
}

// ecrRepo is the repository's settings as DescribeRepositories reports them.
type ecrRepo struct {
	client     *ecr.Client
	name       string
	registryID string
	region     string
	o          *options

	mutability ecrtypes.ImageTagMutability
	exclusions []string // wildcard filters
	missing    bool     // check found no repository; create makes it
}

// check reads the repository's settings. A missing repository is remembered (create makes it) unless
// creation is disabled, which is refused here, before anything is written.
func (e *ecrRepo) check(ctx context.Context) error {
	err := e.describe(ctx)
	if err == nil {
		return nil
	}
	if ecrx.Code(err) != "RepositoryNotFoundException" {
		return err
	}
	if !e.o.create {
		return fixable.Wrap(err, fmt.Sprintf("ECR repository %s does not exist in %s%s and creating it is disabled: create it (aws ecr create-repository --repository-name %s) or allow creation",
			e.name, e.region, e.registryText(), e.name))
	}
	e.missing = true
	// A repository we create has the settings asked for: tag conflicts are judged by them.
	e.mutability = ecrtypes.ImageTagMutabilityMutable
	if e.o.tagImmutability {
		e.mutability = ecrtypes.ImageTagMutabilityImmutable
	}
	return nil
}

// create makes the repository check found missing; a no-op otherwise.
func (e *ecrRepo) create(ctx context.Context) error {
	if !e.missing {
		return nil
	}
	in := &ecr.CreateRepositoryInput{
		RepositoryName:             aws.String(e.name),
		ImageTagMutability:         ecrtypes.ImageTagMutabilityMutable,
		ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: e.o.scanOnPush},
	}
	if e.o.tagImmutability {
		in.ImageTagMutability = ecrtypes.ImageTagMutabilityImmutable
	}
	if e.o.kmsKey != "" {
		in.EncryptionConfiguration = &ecrtypes.EncryptionConfiguration{EncryptionType: ecrtypes.EncryptionTypeKms, KmsKey: aws.String(e.o.kmsKey)}
	}
	if e.registryID != "" {
		in.RegistryId = aws.String(e.registryID)
	}
	out, err := e.client.CreateRepository(ctx, in)
	switch code := ecrx.Code(err); {
	case err == nil:
		e.o.log.Info("created ECR repository", "repository", e.name, "mutability", string(in.ImageTagMutability), "scanOnPush", e.o.scanOnPush)
		e.set(out.Repository)
		e.missing = false
		return nil
	case code == "RepositoryAlreadyExistsException":
		e.missing = false
		return e.describe(ctx) // another job created it first
	case code == "AccessDeniedException":
		return fixable.Wrap(err, fmt.Sprintf("ECR repository %s does not exist in %s%s and this identity may not create it (ecr:CreateRepository denied): grant ecr:CreateRepository, or create the repository beforehand",
			e.name, e.region, e.registryText()))
	case code == "InvalidParameterException" || code == "KmsException":
		return fixable.Wrap(err, fmt.Sprintf("ECR refused to create repository %s (%v): fix the repository settings (KMS key, name)", e.name, err))
	default:
		return fmt.Errorf("ecr: create repository %s: %w", e.name, err)
	}
}

func (e *ecrRepo) registryText() string {
	if e.registryID == "" {
		return ""
	}
	return " (registry " + e.registryID + ")"
}

func (e *ecrRepo) describe(ctx context.Context) error {
	in := &ecr.DescribeRepositoriesInput{RepositoryNames: []string{e.name}}
	if e.registryID != "" {
		in.RegistryId = aws.String(e.registryID)
	}
	out, err := e.client.DescribeRepositories(ctx, in)
	switch code := ecrx.Code(err); {
	case err == nil:
		if len(out.Repositories) != 1 {
			return fmt.Errorf("ecr: DescribeRepositories(%s) returned %d repositories", e.name, len(out.Repositories))
		}
		e.set(&out.Repositories[0])
		return nil
	case code == "RepositoryNotFoundException":
		return err
	case code == "AccessDeniedException":
		return fixable.Wrap(err, fmt.Sprintf("may not look up ECR repository %s (ecr:DescribeRepositories denied): grant ecr:DescribeRepositories on it", e.name))
	default:
		return ecrx.APIError(err, "ecr: describe repository "+e.name)
	}
}

func (e *ecrRepo) set(r *ecrtypes.Repository) {
	e.mutability = r.ImageTagMutability
	e.exclusions = nil
	for _, f := range r.ImageTagMutabilityExclusionFilters {
		if f.Filter != nil {
			e.exclusions = append(e.exclusions, *f.Filter)
		}
	}
}

// immutable applies the repository's imageTagMutability, including its exclusion filters.
func (e *ecrRepo) immutable(tag string) bool {
	excluded := false
	for _, f := range e.exclusions {
		if ok, _ := path.Match(f, tag); ok {
			excluded = true
			break
		}
	}
	switch e.mutability {
	case ecrtypes.ImageTagMutabilityImmutable:
		return true
	case ecrtypes.ImageTagMutabilityImmutableWithExclusion:
		return !excluded
	case ecrtypes.ImageTagMutabilityMutableWithExclusion:
		return excluded
	}
	return false
}

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
// makes sure the repository exists, creating it unless WithCreateRepository(false). It never
// pushes into a missing repository: ECR answers that with a dropped connection, not an error.
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
	if err := e.ensure(ctx); err != nil {
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
	return &ecrPublisher{registryPublisher: p, keychain: kc}, nil
}

// ecrPublisher is a registryPublisher whose keychain refreshes ECR tokens.
type ecrPublisher struct {
	*registryPublisher
	keychain *ecrKeychain
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
}

func (e *ecrRepo) ensure(ctx context.Context) error {
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
		return nil
	case code == "RepositoryAlreadyExistsException":
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

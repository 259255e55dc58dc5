package supplychain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/push"
)

// API is the part of the ECR API this package calls (an *ecr.Client).
type API interface {
	ListImageReferrers(context.Context, *ecr.ListImageReferrersInput, ...func(*ecr.Options)) (*ecr.ListImageReferrersOutput, error)
	DescribeImageSigningStatus(context.Context, *ecr.DescribeImageSigningStatusInput, ...func(*ecr.Options)) (*ecr.DescribeImageSigningStatusOutput, error)
	DescribeImageScanFindings(context.Context, *ecr.DescribeImageScanFindingsInput, ...func(*ecr.Options)) (*ecr.DescribeImageScanFindingsOutput, error)
}

// Registry is one repository referrers are read from or written to, with the credentials of the
// account that owns it.
type Registry struct {
	Name      string // in messages: ACCOUNT/REGION for ECR, else the repository
	Repo      name.Repository
	Auth      authn.Authenticator
	Transport http.RoundTripper // nil: remote.DefaultTransport
	// API and RegistryID are set for ECR: signing status, scan findings, ListImageReferrers.
	API        API
	RegistryID string
	// ViaAPI lists referrers with ListImageReferrers instead of the registry's referrers endpoint.
	ViaAPI bool
}

// ECR is repository in the ECR registry of cfg's account and region, read with cfg's credentials (a
// registry token from GetAuthorizationToken). label names it in messages (default ACCOUNT/REGION).
func ECR(ctx context.Context, cfg aws.Config, repository, label string) (*Registry, error) {
	if err := ecrx.CheckRepository("repository", repository); err != nil {
		return nil, err
	}
	client := ecr.NewFromConfig(cfg)
	tok, err := ecrx.GetToken(ctx, client, "")
	if err != nil {
		return nil, err
	}
	scheme, host, _ := strings.Cut(tok.ProxyEndpoint, "://")
	var opts []name.Option
	if scheme == "http" && !loopback(host) {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(strings.TrimSuffix(host, "/")+"/"+repository, opts...)
	if err != nil {
		return nil, fmt.Errorf("ecr registry %s: %w", host, err)
	}
	account := ""
	if r, ok := ecrx.ParseHost(host); ok {
		account = r.Account
	}
	if label == "" {
		label = account + "/" + cfg.Region
		if account == "" {
			label = host + " (" + cfg.Region + ")"
		}
	}
	return &Registry{Name: label, Repo: repo, Auth: &authn.Basic{Username: tok.Username, Password: tok.Password},
		API: client, RegistryID: account}, nil
}

// Remote is a repository in any registry, with credentials from kc.
func Remote(repo name.Repository, kc authn.Keychain, rt http.RoundTripper) (*Registry, error) {
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	auth, err := kc.Resolve(repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", repo, err)
	}
	return &Registry{Name: repo.String(), Repo: repo, Auth: auth, Transport: rt}, nil
}

func loopback(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (r *Registry) options(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(r.Auth)}
	if r.Transport != nil {
		opts = append(opts, remote.WithTransport(r.Transport))
	}
	return opts
}

// Artifact is one referrer: what the report lists for each artifact carried, and what a destination
// lacks.
type Artifact struct {
	Digest       string `json:"digest"`
	Kind         Kind   `json:"kind"`
	ArtifactType string `json:"artifactType,omitempty"`
	Subject      string `json:"subject"`
	Tag          string `json:"tag,omitempty"` // cosign tag scheme
	// Annotations are kept for classification; the report leaves them out.
	Annotations map[string]string `json:"-"`
}

func (a Artifact) String() string {
	s := string(a.Kind) + " " + a.Digest
	if a.ArtifactType != "" {
		s += " (" + a.ArtifactType + ")"
	}
	if a.Tag != "" {
		s += " tagged " + a.Tag
	}
	return s
}

// Listing limits: how deep referrers of referrers are followed, how many are listed, how many pages
// ListImageReferrers may take per subject.
const (
	listDepth = 4
	maxListed = 256
	maxPages  = 20
)

// cosignSuffixes are the cosign tag scheme's artifact kinds.
var cosignSuffixes = []string{".sig", ".att", ".sbom"}

// Referrers lists what refers to subjects in r — through the registry's referrers endpoint (ggcr falls
// back to the sha256-<hex> tag schema where there is none) or ListImageReferrers (ViaAPI) — plus cosign
// tag-scheme artifacts, then the referrers of those, each after its subject.
func (r *Registry) Referrers(ctx context.Context, subjects ...v1.Hash) ([]Artifact, error) {
	seen := map[string]bool{}
	for _, s := range subjects {
		seen[s.String()] = true
	}
	var out []Artifact
	level := subjects
	for depth := 0; len(level) > 0 && depth < listDepth; depth++ {
		var next []v1.Hash
		for _, s := range level {
			found, err := r.direct(ctx, s)
			if err != nil {
				return nil, err
			}
			for _, a := range found {
				if seen[a.Digest] {
					continue
				}
				seen[a.Digest] = true
				out = append(out, a)
				if h, err := v1.NewHash(a.Digest); err == nil {
					next = append(next, h)
				}
			}
			if len(out) > maxListed {
				return nil, fmt.Errorf("%s: more than %d artifacts refer to %s", r.Name, maxListed, subjects[0])
			}
		}
		level = next
	}
	return out, nil
}

// direct lists the artifacts whose subject is s, and s's cosign tag-scheme artifacts.
func (r *Registry) direct(ctx context.Context, s v1.Hash) ([]Artifact, error) {
	var out []Artifact
	if r.ViaAPI && r.API != nil {
		in := &ecr.ListImageReferrersInput{RepositoryName: aws.String(r.Repo.RepositoryStr()),
			SubjectId: &ecrtypes.SubjectIdentifier{ImageDigest: aws.String(s.String())}, MaxResults: aws.Int32(50)}
		if r.RegistryID != "" {
			in.RegistryId = aws.String(r.RegistryID)
		}
		for page := 0; ; page++ {
			if page == maxPages {
				return nil, fmt.Errorf("%s: ListImageReferrers of %s did not end after %d pages", r.Name, s, maxPages)
			}
			res, err := r.API.ListImageReferrers(ctx, in)
			if err != nil {
				return nil, ecrx.APIError(err, fmt.Sprintf("%s: ListImageReferrers %s@%s", r.Name, r.Repo.RepositoryStr(), s))
			}
			for _, d := range res.Referrers {
				at := aws.ToString(d.ArtifactType)
				out = append(out, Artifact{Digest: aws.ToString(d.Digest), ArtifactType: at, Subject: s.String(),
					Kind: Classify(at, d.Annotations, ""), Annotations: d.Annotations})
			}
			if res.NextToken == nil {
				break
			}
			in.NextToken = res.NextToken
		}
	} else {
		idx, err := remote.Referrers(r.Repo.Digest(s.String()), r.options(ctx)...)
		if err != nil {
			return nil, r.readError(err, "list the referrers of "+s.String())
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, d := range im.Manifests {
			out = append(out, Artifact{Digest: d.Digest.String(), ArtifactType: d.ArtifactType, Subject: s.String(),
				Kind: Classify(d.ArtifactType, d.Annotations, ""), Annotations: d.Annotations})
		}
	}
	for _, suffix := range cosignSuffixes {
		tag := push.CosignTag(s, suffix)
		desc, err := remote.Head(r.Repo.Tag(tag), r.options(ctx)...)
		if err != nil {
			if notFound(err) {
				continue
			}
			return nil, r.readError(err, "look up tag "+tag)
		}
		out = append(out, Artifact{Digest: desc.Digest.String(), ArtifactType: desc.ArtifactType, Subject: s.String(),
			Kind: Classify("", nil, tag), Tag: tag})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, nil
}

func (r *Registry) readError(err error, what string) error {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return fixable.Wrap(err, fmt.Sprintf("%s: may not %s in %s (%v): grant ecr:BatchGetImage (pull) on the repository to the role used there", r.Name, what, r.Repo, err))
	}
	return fmt.Errorf("%s: %s in %s: %w", r.Name, what, r.Repo, err)
}

func notFound(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range terr.Errors {
		if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}

func (r *Registry) writeError(err error, a Artifact) error {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return fixable.Wrap(err, fmt.Sprintf("%s: may not push %s to %s (%v): grant %s on the repository to the role used there", r.Name, a, r.Repo, err, push.ECRPushActions))
	}
	return err
}

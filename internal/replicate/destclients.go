package replicate

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ecrpush/ecrpush/internal/federate"
)

// DestinationAPI is the part of an ECR client ecrpush uses in a destination registry, with that
// registry's credentials: creation templates and registry policies (configuration), repositories and
// images (copy mode and verification).
type DestinationAPI interface {
	TemplateAPI
	PolicyAPI
	DescribeRepositories(context.Context, *ecr.DescribeRepositoriesInput, ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
	CreateRepository(context.Context, *ecr.CreateRepositoryInput, ...func(*ecr.Options)) (*ecr.CreateRepositoryOutput, error)
	PutLifecyclePolicy(context.Context, *ecr.PutLifecyclePolicyInput, ...func(*ecr.Options)) (*ecr.PutLifecyclePolicyOutput, error)
	DescribeImages(context.Context, *ecr.DescribeImagesInput, ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
	UpdateImageStorageClass(context.Context, *ecr.UpdateImageStorageClassInput, ...func(*ecr.Options)) (*ecr.UpdateImageStorageClassOutput, error)
}

var _ DestinationAPI = (*ecr.Client)(nil)

// DestinationClientFunc returns the client for one destination registry (tests wrap ECR clients with it).
type DestinationClientFunc func(ctx context.Context, d Destination) (DestinationAPI, error)

// errNoCredentials says a destination in another account has no role: ecrpush cannot read or write there.
var errNoCredentials = errors.New("no credentials")

// destClients hands out one client per destination: the session itself (in the destination's region)
// in its own account, the destination's role elsewhere, none without a role.
type destClients struct {
	sess  *federate.Session
	creds *credentials
	fn    DestinationClientFunc

	mu      sync.Mutex
	clients map[string]DestinationAPI
}

func newDestClients(sess *federate.Session, fn DestinationClientFunc) *destClients {
	dc := &destClients{sess: sess, fn: fn, clients: map[string]DestinationAPI{}}
	if sess != nil {
		dc.creds = newCredentials(sess)
	}
	return dc
}

// can reports whether get can give d a client.
func (dc *destClients) can(d Destination) bool {
	if dc.fn != nil {
		return true
	}
	return dc.sess != nil && CanCopy(d, dc.sess.Account)
}

// config is d's AWS configuration (the session in its own account, d's role elsewhere), each role
// assumed once.
func (dc *destClients) config(ctx context.Context, d Destination) (aws.Config, error) {
	if dc.sess == nil {
		return aws.Config{}, fmt.Errorf("%s: %w", d, errNoCredentials)
	}
	return dc.creds.forDest(ctx, d)
}

func (dc *destClients) get(ctx context.Context, d Destination) (DestinationAPI, error) {
	dc.mu.Lock()
	c, ok := dc.clients[d.String()]
	dc.mu.Unlock()
	if ok {
		return c, nil
	}
	switch {
	case dc.fn != nil:
		var err error
		if c, err = dc.fn(ctx, d); err != nil {
			return nil, err
		}
	case !dc.can(d):
		return nil, fmt.Errorf("%s: %w", d, errNoCredentials)
	default:
		cfg, err := dc.creds.forDest(ctx, d)
		if err != nil {
			return nil, err
		}
		c = ecr.NewFromConfig(cfg)
	}
	dc.mu.Lock()
	dc.clients[d.String()] = c
	dc.mu.Unlock()
	return c, nil
}

package replicate

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Client is the ci registry's ECR API client, for the session's account and region.
func Client(sess *federate.Session) *ecr.Client { return ecr.NewFromConfig(sess.Config) }

// ECRAPI is the part of the ECR client replication uses (an *ecr.Client; tests wrap one).
type ECRAPI interface {
	DescribeRegistry(context.Context, *ecr.DescribeRegistryInput, ...func(*ecr.Options)) (*ecr.DescribeRegistryOutput, error)
	PutReplicationConfiguration(context.Context, *ecr.PutReplicationConfigurationInput, ...func(*ecr.Options)) (*ecr.PutReplicationConfigurationOutput, error)
	DescribeImageReplicationStatus(context.Context, *ecr.DescribeImageReplicationStatusInput, ...func(*ecr.Options)) (*ecr.DescribeImageReplicationStatusOutput, error)
	BackfillAPI
	ImageAPI
}

var _ ECRAPI = (*ecr.Client)(nil)

// ConfigureOptions tune PlanConfigure (and Configure).
type ConfigureOptions struct {
	// Apply makes Configure write the plan; without it a missing rule is a NotConfiguredError.
	Apply bool
	// SourceAccount and SourceRegion name the ci registry (default: Session's): destinations equal to it,
	// or in another partition, are refused.
	SourceAccount, SourceRegion string
	// Attempts bounds the read-merge-write rounds when another writer races us (default 5).
	Attempts int
	// Settle is how long after a write the configuration is read once more, to catch a writer whose
	// read preceded our write and whose write follows our read-back (default 1s).
	Settle time.Duration
	Logger *slog.Logger

	// Session gives the credentials of destination registries (the session itself in its own account,
	// each destination's RoleARN elsewhere), for creation templates and registry policies.
	Session *federate.Session
	// Settings, when they differ from what replication gives a new repository by default, are written
	// as a repository creation template for REPLICATION in every destination registry.
	Settings *RepositorySettings
	// Repository is the repository being pushed, for notes about it (an existing destination repository
	// keeps its settings; a nested template may win).
	Repository string
	// Policies plans (and Apply writes) the destination registry policies that let the ci account
	// replicate in, with each destination's role.
	Policies bool
	// DestinationClient overrides how destination clients are made (tests).
	DestinationClient DestinationClientFunc
}

// Configured is what Configure found and left.
type Configured struct {
	Before  *types.ReplicationConfiguration // as first read
	After   *types.ReplicationConfiguration // as last read (equal to what we wrote, when we wrote)
	Changed bool                            // this call wrote the configuration
	Writes  int                             // PutReplicationConfiguration calls made
	Plan    *ConfigurePlan
}

// NotConfiguredError says the configuration lacks the rule and was not changed; Details is the exact
// configuration that would be applied.
type NotConfiguredError struct {
	Prefix  string
	Missing []Destination
	Merged  *types.ReplicationConfiguration
}

func (e *NotConfiguredError) Error() string {
	return fmt.Sprintf("ECR replication is not configured for %s to %s: pass --configure-replication to add the rule, or apply the configuration below yourself "+
		"(aws ecr put-replication-configuration --replication-configuration file://replication.json), or use --replication copy",
		describePrefix(e.Prefix), destList(e.Missing))
}

// Details is the configuration JSON that --configure-replication would write.
func (e *NotConfiguredError) Details() []string {
	lines := []string{"replication configuration that --configure-replication would apply (replication.json):"}
	return append(lines, strings.Split(strings.TrimRight(string(ConfigJSON(e.Merged)), "\n"), "\n")...)
}

// Configure is PlanConfigure followed, with Apply, by ConfigurePlan.Apply. Without Apply a missing rule is
// a fixable *NotConfiguredError and nothing is written (pending template changes are only logged).
func Configure(ctx context.Context, client ECRAPI, prefix string, dests []Destination, o ConfigureOptions) (*Configured, error) {
	p, err := PlanConfigure(ctx, client, prefix, dests, o)
	if err != nil {
		return nil, err
	}
	res := &Configured{Before: p.Current, After: p.Current, Plan: p}
	if !o.Apply {
		if p.RuleChanged() {
			return nil, fixable.Wrap(&NotConfiguredError{Prefix: prefix, Missing: p.Rule.Destinations, Merged: p.Merged}, "")
		}
		for _, t := range p.Templates {
			if t.Action != TemplateUnchanged {
				p.o.Logger.Warn("a creation template would change (pass --configure-replication to write it)", "destination", t.Destination.String(), "prefix", t.Prefix)
			}
		}
		return res, nil
	}
	if !p.Changed() {
		return res, nil
	}
	if err := p.Apply(ctx); err != nil {
		return nil, err
	}
	res.After, res.Writes, res.Changed = p.After, p.Writes, p.Writes > 0
	return res, nil
}

func describeRegistry(ctx context.Context, client ECRAPI) (*types.ReplicationConfiguration, error) {
	out, err := client.DescribeRegistry(ctx, &ecr.DescribeRegistryInput{})
	if err != nil {
		if ecrx.Code(err) == "AccessDeniedException" {
			return nil, fixable.Wrap(err, "may not read the ci registry's replication configuration (ecr:DescribeRegistry denied): grant ecr:DescribeRegistry on * to the ci role")
		}
		return nil, ecrx.APIError(err, "ecr DescribeRegistry")
	}
	return CloneConfig(out.ReplicationConfiguration), nil
}

func putError(err error) error {
	switch ecrx.Code(err) {
	case "AccessDeniedException":
		return fixable.Wrap(err, "may not write the ci registry's replication configuration (ecr:PutReplicationConfiguration denied): grant ecr:PutReplicationConfiguration on * "+
			"(and iam:CreateServiceLinkedRole for replication.ecr.amazonaws.com, needed the first time), or apply the configuration shown by `ecrpush replication plan` yourself")
	case "InvalidParameterException", "ValidationException":
		return fixable.Wrap(err, "ECR refused the replication configuration: "+ecrx.Message(err))
	}
	return ecrx.APIError(err, "ecr PutReplicationConfiguration")
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

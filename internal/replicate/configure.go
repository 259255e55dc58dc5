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
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// ECRAPI is the part of the ECR client replication uses (an *ecr.Client; tests wrap one).
type ECRAPI interface {
	DescribeRegistry(context.Context, *ecr.DescribeRegistryInput, ...func(*ecr.Options)) (*ecr.DescribeRegistryOutput, error)
	PutReplicationConfiguration(context.Context, *ecr.PutReplicationConfigurationInput, ...func(*ecr.Options)) (*ecr.PutReplicationConfigurationOutput, error)
	DescribeImageReplicationStatus(context.Context, *ecr.DescribeImageReplicationStatusInput, ...func(*ecr.Options)) (*ecr.DescribeImageReplicationStatusOutput, error)
}

var _ ECRAPI = (*ecr.Client)(nil)

// ConfigureOptions tune Configure.
type ConfigureOptions struct {
	// Apply writes the merged configuration; without it a missing rule is a NotConfiguredError.
	Apply bool
	// SourceAccount and SourceRegion name the ci registry: destinations equal to it are refused.
	SourceAccount, SourceRegion string
	// Attempts bounds the read-merge-write rounds when another writer races us (default 5).
	Attempts int
	// Settle is how long after a write the configuration is read once more, to catch a writer whose
	// read preceded our write and whose write follows our read-back (default 1s).
	Settle time.Duration
	Logger *slog.Logger
}

// Configured is what Configure found and left.
type Configured struct {
	Before  *types.ReplicationConfiguration // as first read
	After   *types.ReplicationConfiguration // as last read (equal to what we wrote, when we wrote)
	Changed bool                            // this call wrote the configuration
	Writes  int                             // PutReplicationConfiguration calls made
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

// Configure makes the ci registry replicate repositories starting with prefix to dests: DescribeRegistry,
// Merge, and (with Apply) PutReplicationConfiguration, then read back. When another writer changed the
// configuration between our read and our write, or after it, the merge is redone on what is there now.
// Without Apply, missing rules are a fixable *NotConfiguredError and nothing is written.
func Configure(ctx context.Context, client ECRAPI, prefix string, dests []Destination, o ConfigureOptions) (*Configured, error) {
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Settle == 0 {
		o.Settle = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	for _, d := range dests {
		if d.Account == o.SourceAccount && d.Region == o.SourceRegion {
			return nil, fixable.New("destination %s is the ci registry itself: ECR cannot replicate a registry into itself", d)
		}
	}
	cur, err := describeRegistry(ctx, client)
	if err != nil {
		return nil, err
	}
	res := &Configured{Before: cur}
	for attempt := 1; attempt <= o.Attempts; attempt++ {
		merged, changed, err := Merge(cur, prefix, dests)
		if err != nil {
			return nil, err
		}
		if !changed {
			res.After = cur
			return res, nil
		}
		if !o.Apply {
			var missing []Destination
			for _, d := range dests {
				if !Covered(cur, prefix, d) {
					missing = append(missing, d)
				}
			}
			return nil, fixable.Wrap(&NotConfiguredError{Prefix: prefix, Missing: missing, Merged: merged}, "")
		}
		// Re-read just before writing: the window in which another writer's change would be lost is
		// then one round trip, not however long the merge and the caller took.
		pre, err := describeRegistry(ctx, client)
		if err != nil {
			return nil, err
		}
		if !SameConfig(pre, cur) {
			o.Logger.Warn("the replication configuration changed while we merged; merging again", "attempt", attempt)
			cur = pre
			continue
		}
		if _, err := client.PutReplicationConfiguration(ctx, &ecr.PutReplicationConfigurationInput{ReplicationConfiguration: merged}); err != nil {
			return nil, putError(err)
		}
		res.Writes++
		res.Changed = true
		o.Logger.Info("replication configured", "prefix", prefix, "destinations", destList(dests), "rules", len(merged.Rules))
		after, err := describeRegistry(ctx, client)
		if err != nil {
			return nil, err
		}
		if !SameConfig(after, merged) {
			o.Logger.Warn("another writer changed the replication configuration after ours; merging again", "attempt", attempt)
			cur = after
			continue
		}
		if err := sleep(ctx, o.Settle); err != nil {
			return nil, err
		}
		if after, err = describeRegistry(ctx, client); err != nil {
			return nil, err
		}
		if !SameConfig(after, merged) {
			o.Logger.Warn("another writer changed the replication configuration after ours; merging again", "attempt", attempt)
			cur = after
			continue
		}
		res.After = after
		return res, nil
	}
	return nil, fmt.Errorf("the ci registry's replication configuration kept changing under us (another writer, %d attempts): run again, or coordinate the writers", o.Attempts)
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
		return fixable.Wrap(err, "ECR refused the replication configuration: "+ecrx.Message(err)+"; nothing was changed")
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

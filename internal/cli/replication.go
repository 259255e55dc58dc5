package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/pipeline"
	"github.com/ecrpush/ecrpush/internal/replicate"
)

// replicationOpts are the flags of ecrpush replication: push's identity and destination flags.
type replicationOpts struct {
	id         identityFlags
	repository string
	to         specList
	prefix     string
	roleName   string
	output     string
	settings   settingsFlags
	backfill   bool
	timeout    time.Duration
}

// specList is a repeatable flag; values are split on commas later, by replicate.ParseDestinations.
type specList []string

func (l *specList) String() string { return strings.Join(*l, ",") }
func (l *specList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// settingsFlags are the settings of repositories replication creates in the destinations (a creation
// template per destination in native mode; CreateRepository in copy mode). push declares
// --tag-immutability, --kms-key, --scan-on-push and --create-repository itself and registers only the
// extra ones (registerExtra); replication registers them all.
type settingsFlags struct {
	tagImmutability bool
	kmsKey          string
	scanOnPush      bool
	create          bool
	lifecyclePolicy string
	tags            listFlag
	templateRole    string
	destKMS         listFlag
	restoreArchived bool
}

func (s *settingsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&s.tagImmutability, "tag-immutability", false, "repositories replication creates in the destinations get immutable tags (a creation template)")
	fs.StringVar(&s.kmsKey, "kms-key", "", "repositories replication creates are encrypted with KMS: this key where it lives, the AWS managed key elsewhere (see --replication-kms-key)")
	s.scanOnPush, s.create = true, true
	s.registerExtra(fs)
}

// registerExtra declares the settings flags push does not have yet.
func (s *settingsFlags) registerExtra(fs *flag.FlagSet) {
	fs.StringVar(&s.lifecyclePolicy, "lifecycle-policy", "", "FILE: ECR lifecycle policy JSON for repositories created in the destinations")
	fs.Var(&s.tags, "repository-tags", "KEY=VALUE resource tags for repositories created in the destinations, comma-separated or repeated")
	fs.StringVar(&s.templateRole, "template-role-name", "", "IAM role, in every destination account, that ECR assumes to apply a creation template with a KMS key or tags (customRoleArn)")
	fs.Var(&s.destKMS, "replication-kms-key", "ACCOUNT:REGION=KEY_ARN: the KMS key of one destination's new repositories, comma-separated or repeated")
	fs.BoolVar(&s.restoreArchived, "restore-archived", false, "restore an archived image (UpdateImageStorageClass to STANDARD, up to 20 minutes) instead of failing (status: at the destinations)")
}

// build validates the flags (reading the lifecycle policy file) into replicate.RepositorySettings.
func (s *settingsFlags) build() (replicate.RepositorySettings, error) {
	rs := replicate.RepositorySettings{Create: s.create, TagImmutability: s.tagImmutability, ScanOnPush: s.scanOnPush, KMSKey: s.kmsKey, TemplateRoleName: s.templateRole}
	if s.lifecyclePolicy != "" {
		b, err := os.ReadFile(s.lifecyclePolicy)
		if err != nil {
			return rs, fixable.Wrap(err, fmt.Sprintf("--lifecycle-policy %s: %v", s.lifecyclePolicy, err))
		}
		if rs.LifecyclePolicy, err = replicate.ParseLifecyclePolicy(b); err != nil {
			return rs, err
		}
	}
	tags, err := replicate.ParseTags(s.tags)
	if err != nil {
		return rs, err
	}
	rs.Tags = tags
	for _, spec := range s.destKMS {
		dest, key, ok := strings.Cut(spec, "=")
		if !ok {
			return rs, fixable.New("--replication-kms-key %q: use ACCOUNT:REGION=KEY_ARN", spec)
		}
		if rs.DestinationKMSKeys == nil {
			rs.DestinationKMSKeys = map[string]string{}
		}
		rs.DestinationKMSKeys[strings.TrimSpace(dest)] = strings.TrimSpace(key)
	}
	return rs, rs.Validate()
}

func (o *replicationOpts) register(fs *flag.FlagSet) {
	o.id.register(fs)
	fs.StringVar(&o.repository, "repository", "", "ECR repository in the ci account (the default replication prefix)")
	fs.Var(&o.to, "replicate-to", "destinations ACCOUNT:REGION or REGION (same account), comma-separated or repeated; may add =ROLE_ARN")
	fs.StringVar(&o.prefix, "replication-prefix", "", "repository prefix of the replication rule (default: --repository)")
	fs.StringVar(&o.roleName, "destination-role-name", "", "role in every destination account (federated with the same identity) for registry policies, creation templates and reading destinations back")
	fs.StringVar(&o.output, "output", "text", "text or json (status also: markdown)")
	fs.BoolVar(&o.backfill, "backfill", false, "apply: then backfill every destination (images pushed before the rule); status: backfill the destinations the image has not reached")
	fs.DurationVar(&o.timeout, "replication-timeout", replicate.DefaultTimeout, "how long --backfill waits")
	o.settings.register(fs)
}

const replicationUsage = "replication needs a subcommand: plan, apply, status IMAGE, or backfill [list|show ID|stop ID]"

func replicationCmd() command {
	return command{name: "replication", short: "plan, apply or show ECR replication to other accounts and regions (plan|apply|status IMAGE|backfill)", flags: func(fs *flag.FlagSet, stdio IO) func(context.Context, []string) error {
		// Declared here for -h; the subcommand parses its own flags, which follow it.
		var help replicationOpts
		help.register(fs)
		return func(ctx context.Context, args []string) error {
			if len(args) == 0 {
				return fixable.New("%s", replicationUsage)
			}
			sub := args[0]
			switch sub {
			case "plan", "apply", "status", "backfill":
			default:
				return fixable.New("replication %q: the subcommands are plan, apply, status IMAGE and backfill", sub)
			}
			sfs := flag.NewFlagSet("ecrpush replication "+sub, flag.ContinueOnError)
			var o replicationOpts
			o.register(sfs)
			pos, err := parseInterleaved(sfs, args[1:], stdio.Getenv)
			if errors.Is(err, flag.ErrHelp) {
				sfs.SetOutput(stdio.Out)
				sfs.PrintDefaults()
				return nil
			}
			if err != nil {
				return err
			}
			switch o.output {
			case "text", "json":
			case "markdown":
				if sub != "status" {
					return fixable.New("--output markdown is for replication status; use text or json")
				}
			default:
				return fixable.New("--output %q is not one of text, json, markdown", o.output)
			}
			if o.timeout <= 0 {
				return fixable.New("--replication-timeout %s must be positive, e.g. 30m", o.timeout)
			}
			switch sub {
			case "status":
				if len(pos) != 1 {
					return fixable.New("replication status takes one IMAGE (REPOSITORY:TAG or REPOSITORY@sha256:DIGEST), got %d arguments", len(pos))
				}
				return o.status(ctx, stdio, pos[0])
			case "backfill":
				return o.backfills(ctx, stdio, pos)
			}
			if len(pos) > 0 {
				return fixable.New("replication %s takes no arguments, got %q", sub, strings.Join(pos, " "))
			}
			if o.backfill && sub != "apply" {
				return fixable.New("--backfill is for replication apply and replication status")
			}
			return o.planOrApply(ctx, stdio, sub == "apply")
		}
	}}
}

// parseInterleaved parses flags that may come before and after positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	var pos []string
	for range len(args) + 1 {
		if err := parse(fs, args, getenv); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}

// setup federates and parses the destinations for the ci account and region.
func (o *replicationOpts) setup(ctx context.Context, stdio IO, needDests bool) (*federate.Session, []replicate.Destination, error) {
	fo, err := o.id.options(stdio)
	if err != nil {
		return nil, nil, err
	}
	if needDests && len(o.to) == 0 {
		return nil, nil, fixable.New("--replicate-to is required: list destinations as ACCOUNT:REGION (e.g. 444455556666:eu-west-1)")
	}
	if o.prefix != "" {
		if err := replicate.ValidatePrefix(o.prefix); err != nil {
			return nil, nil, err
		}
	}
	if needDests && o.prefix == "" && o.repository == "" {
		return nil, nil, fixable.New("pass --repository (or --replication-prefix) to say which repositories replicate")
	}
	// Syntax first, so bad input never costs a federation.
	if _, err := replicate.ParseDestinations(o.to, "000000000000", "xx-none-0", o.roleName); err != nil {
		return nil, nil, err
	}
	sess, err := pipeline.Identity(ctx, pipeline.Env{Platform: stdio.platform(), Log: newLogger(stdio.Err)}, fo)
	if err != nil {
		return nil, nil, err
	}
	dests, err := replicate.ParseDestinations(o.to, sess.Account, sess.Config.Region, o.roleName)
	if err != nil {
		return nil, nil, err
	}
	return sess, dests, nil
}

func (o *replicationOpts) rulePrefix() string {
	if o.prefix != "" {
		return o.prefix
	}
	return o.repository
}

type policyOut struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	Status  string `json:"status,omitempty"` // updated, unchanged, would change, skipped: …
	Policy  any    `json:"policy"`
}

// planOrApply prints (plan) or writes (apply) the ci configuration, the destination creation templates
// and registry policies: one plan, checked before anything is written, applied in an order where a late
// failure leaves earlier writes harmless and named.
func (o *replicationOpts) planOrApply(ctx context.Context, stdio IO, apply bool) error {
	settings, err := o.settings.build()
	if err != nil {
		return err
	}
	sess, dests, err := o.setup(ctx, stdio, true)
	if err != nil {
		return err
	}
	log := newLogger(stdio.Err)
	client := replicate.Client(sess)
	plan, perr := replicate.PlanConfigure(ctx, client, o.rulePrefix(), dests, replicate.ConfigureOptions{
		Session: sess, Settings: &settings, Repository: o.repository, Policies: true, Logger: log})
	if plan == nil || plan.Merged == nil {
		return perr
	}
	var aerr error
	applied := false
	if apply && perr == nil {
		aerr = plan.Apply(ctx)
		applied = aerr == nil
	}
	if perr == nil && aerr == nil {
		if err := o.printPlan(stdio, plan, apply, applied); err != nil {
			return err
		}
	} else if o.output == "text" {
		plan.WriteText(stdio.Out, false)
	}
	if perr != nil {
		return perr
	}
	if aerr != nil {
		return aerr
	}
	if !o.backfill {
		return nil
	}
	bs, err := replicate.BackfillAll(ctx, client, dests, o.timeout, replicate.WithWaitLogger(log))
	if o.output == "json" {
		if jerr := writeJSON(stdio.Out, map[string]any{"backfills": bs}); jerr != nil {
			return jerr
		}
	} else {
		fmt.Fprintln(stdio.Out)
		if werr := replicate.WriteBackfills(stdio.Out, bs); werr != nil {
			return werr
		}
	}
	return err
}

func (o *replicationOpts) printPlan(stdio IO, plan *replicate.ConfigurePlan, apply, applied bool) error {
	if o.output != "json" {
		plan.WriteText(stdio.Out, applied)
		return nil
	}
	var policies []policyOut
	for _, r := range plan.Policies {
		if r.Destination.Account == plan.Registry.Account {
			continue
		}
		st := "unchanged"
		switch {
		case r.Skipped != "":
			st = "skipped: " + r.Skipped
		case r.Changed && apply:
			st = "updated"
		case r.Changed:
			st = "would change"
		}
		policies = append(policies, policyOut{Account: r.Destination.Account, Region: r.Destination.Region, Status: st, Policy: rawJSON(r.Policy)})
	}
	merged := plan.Merged
	if applied && plan.After != nil {
		merged = plan.After
	}
	out := map[string]any{"registry": map[string]string{"account": plan.Registry.Account, "region": plan.Registry.Region}, "prefix": plan.Prefix,
		"current": rawJSON(string(replicate.ConfigJSON(plan.Current))), "merged": rawJSON(string(replicate.ConfigJSON(merged))),
		"changed": plan.Changed(), "applied": applied, "rule": plan.Rule, "ruleChange": plan.Rule.Text(plan.Prefix),
		"templates": plan.Templates, "destinationPolicies": policies, "notes": plan.Notes}
	return writeJSON(stdio.Out, out)
}

// status prints the per-destination replication status of one image, reading each destination back
// where a role allows; with --backfill it backfills the destinations the image has not reached.
func (o *replicationOpts) status(ctx context.Context, stdio IO, image string) error {
	repo, ref, err := replicate.ParseImage(image)
	if err != nil {
		return err
	}
	sess, dests, err := o.setup(ctx, stdio, false)
	if err != nil {
		return err
	}
	client := replicate.Client(sess)
	var tags []string
	if !strings.HasPrefix(ref, "sha256:") {
		tags = []string{ref}
	}
	digest, sts, err := replicate.Describe(ctx, client, repo, ref, dests)
	if err != nil {
		return err
	}
	var runErr error
	if o.backfill {
		if len(dests) == 0 {
			cfg, err := replicate.ReadConfiguration(ctx, client)
			if err != nil {
				return err
			}
			dests = replicate.DestinationsFor(cfg, repo)
			if len(dests) == 0 {
				return fixable.New("no replication rule covers %s, so there is nothing to backfill: configure one (ecrpush replication apply)", repo)
			}
		}
		sts, runErr = replicate.Wait(ctx, client, repo, digest, dests, o.timeout, replicate.WithExisted(true), replicate.WithBackfill(true),
			replicate.WithAppearGrace(0), replicate.WithTags(tags), replicate.WithSourceAccount(sess.Account), replicate.WithWaitLogger(newLogger(stdio.Err)))
	}
	verifyDests := dests
	if len(verifyDests) == 0 {
		for _, s := range sts {
			d := replicate.Destination{Account: s.Account, Region: s.Region}
			if o.roleName != "" && d.Account != sess.Account {
				d.RoleARN = "arn:aws:iam::" + d.Account + ":role/" + o.roleName
			}
			verifyDests = append(verifyDests, d)
		}
	}
	verr := replicate.Verify(ctx, sess, repo, digest, tags, verifyDests, sts, replicate.VerifyOptions{Timeout: 10 * time.Second, Unreported: true, RestoreArchived: o.settings.restoreArchived})
	switch o.output {
	case "json":
		if sts == nil {
			sts = []replicate.Status{}
		}
		if err := writeJSON(stdio.Out, map[string]any{"repository": repo, "digest": digest, "replication": sts}); err != nil {
			return err
		}
	case "markdown":
		if err := replicate.WriteMarkdown(stdio.Out, sts); err != nil {
			return err
		}
	default:
		fmt.Fprintf(stdio.Out, "%s@%s\n", repo, digest)
		if len(sts) == 0 {
			fmt.Fprintln(stdio.Out, "no replication reported for this image (no rule covered the repository when it was pushed, or it was backfilled: see ecrpush replication backfill list)")
			return nil
		}
		if err := replicate.WriteTable(stdio.Out, sts); err != nil {
			return err
		}
	}
	if runErr != nil {
		return errors.Join(runErr, verr)
	}
	return errors.Join(replicate.Failures(repo, digest, sess.Account, sts), verr)
}

// backfills is `replication backfill [list|show ID|stop ID]`.
func (o *replicationOpts) backfills(ctx context.Context, stdio IO, pos []string) error {
	verb := "list"
	if len(pos) > 0 {
		verb = pos[0]
	}
	switch {
	case verb == "list" && len(pos) <= 1:
	case (verb == "show" || verb == "stop") && len(pos) == 2:
	default:
		return fixable.New("replication backfill takes list, show ID or stop ID, got %q", strings.Join(pos, " "))
	}
	sess, _, err := o.setup(ctx, stdio, false)
	if err != nil {
		return err
	}
	client := replicate.Client(sess)
	switch verb {
	case "list":
		bs, err := replicate.ListBackfills(ctx, client)
		if err != nil {
			return err
		}
		if o.output == "json" {
			if bs == nil {
				bs = []replicate.Backfill{}
			}
			return writeJSON(stdio.Out, map[string]any{"backfills": bs})
		}
		if len(bs) == 0 {
			fmt.Fprintln(stdio.Out, "no replication backfills in the last 90 days")
			return nil
		}
		return replicate.WriteBackfills(stdio.Out, bs)
	case "show":
		b, results, err := replicate.DescribeBackfill(ctx, client, pos[1], "")
		if err != nil {
			return err
		}
		if o.output == "json" {
			if results == nil {
				results = []replicate.BackfillResult{}
			}
			return writeJSON(stdio.Out, map[string]any{"backfill": b, "results": results})
		}
		if err := replicate.WriteBackfills(stdio.Out, []replicate.Backfill{b}); err != nil {
			return err
		}
		if !replicate.Terminal(b.Status) {
			fmt.Fprintln(stdio.Out, "(ECR lists per-image results once the backfill ends)")
		}
		for _, r := range results {
			line := fmt.Sprintf("%s@%s", r.Repository, r.Digest)
			if r.Tag != "" {
				line += " (" + r.Tag + ")"
			}
			line += " " + r.Status
			if r.FailureCode != "" {
				line += " " + r.FailureCode
			}
			fmt.Fprintln(stdio.Out, line)
		}
		return nil
	}
	b, err := replicate.StopBackfill(ctx, client, pos[1])
	if err != nil {
		return err
	}
	if o.output == "json" {
		return writeJSON(stdio.Out, map[string]any{"backfill": b})
	}
	fmt.Fprintf(stdio.Out, "backfill %s to %s: %s (images already replicated stay; replications in flight finish)\n", b.ID, b.Destination, b.Status)
	return nil
}

// rawJSON keeps a JSON document as it is inside another one (nil when there is none).
func rawJSON(s string) any {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return json.RawMessage(strings.TrimSpace(s))
}

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
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
}

// specList is a repeatable flag; values are split on commas later, by replicate.ParseDestinations.
type specList []string

func (l *specList) String() string { return strings.Join(*l, ",") }
func (l *specList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func (o *replicationOpts) register(fs *flag.FlagSet) {
	o.id.register(fs)
	fs.StringVar(&o.repository, "repository", "", "ECR repository in the ci account (the default replication prefix)")
	fs.Var(&o.to, "replicate-to", "destinations ACCOUNT:REGION or REGION (same account), comma-separated or repeated; may add =ROLE_ARN")
	fs.StringVar(&o.prefix, "replication-prefix", "", "repository prefix of the replication rule (default: --repository)")
	fs.StringVar(&o.roleName, "destination-role-name", "", "role in every destination account (federated with the same identity) for writing registry policies")
	fs.StringVar(&o.output, "output", "text", "text or json (status also: markdown)")
}

func replicationCmd() command {
	return command{name: "replication", short: "plan, apply or show ECR replication to other accounts and regions (plan|apply|status IMAGE)", flags: func(fs *flag.FlagSet, stdio IO) func(context.Context, []string) error {
		// Declared here for -h; the subcommand parses its own flags, which follow it.
		var help replicationOpts
		help.register(fs)
		return func(ctx context.Context, args []string) error {
			if len(args) == 0 {
				return fixable.New("replication needs a subcommand: plan, apply or status IMAGE")
			}
			sub := args[0]
			if sub != "plan" && sub != "apply" && sub != "status" {
				return fixable.New("replication %q: the subcommands are plan, apply and status IMAGE", sub)
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
			if sub == "status" {
				if len(pos) != 1 {
					return fixable.New("replication status takes one IMAGE (REPOSITORY:TAG or REPOSITORY@sha256:DIGEST), got %d arguments", len(pos))
				}
				return o.status(ctx, stdio, pos[0])
			}
			if len(pos) > 0 {
				return fixable.New("replication %s takes no arguments, got %q", sub, strings.Join(pos, " "))
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
	sess, err := federate.Federate(ctx, fo)
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
	Status  string `json:"status,omitempty"` // apply: updated, unchanged, skipped: …
	Policy  any    `json:"policy"`
}

// planOrApply prints (plan) or writes (apply) the ci configuration and the destination registry policies.
func (o *replicationOpts) planOrApply(ctx context.Context, stdio IO, apply bool) error {
	sess, dests, err := o.setup(ctx, stdio, true)
	if err != nil {
		return err
	}
	client := ecr.NewFromConfig(sess.Config)
	region := sess.Config.Region
	prefix := o.rulePrefix()
	current, err := replicate.ReadConfiguration(ctx, client)
	if err != nil {
		return err
	}
	merged, changed, err := replicate.Merge(current, prefix, dests)
	if err != nil {
		return err
	}
	var policies []policyOut
	var policyErr error
	// Destination policies first: a rule whose destinations refuse the copy only produces FAILED images.
	var results []replicate.PolicyResult
	if apply {
		results, policyErr = replicate.ApplyPolicies(ctx, sess, dests)
	} else {
		results, policyErr = replicate.PlanPolicies(ctx, sess, dests)
	}
	for _, r := range results {
		if r.Destination.Account == sess.Account {
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
	if apply && policyErr == nil {
		res, err := replicate.Configure(ctx, client, prefix, dests, replicate.ConfigureOptions{Apply: true, SourceAccount: sess.Account, SourceRegion: region, Logger: newLogger(stdio.Err)})
		if err != nil {
			return err
		}
		merged, changed = res.After, res.Changed
	}
	if o.output == "json" {
		out := map[string]any{"registry": map[string]string{"account": sess.Account, "region": region}, "prefix": prefix,
			"current": rawJSON(string(replicate.ConfigJSON(current))), "merged": rawJSON(string(replicate.ConfigJSON(merged))),
			"changed": changed, "destinationPolicies": policies}
		if err := writeJSON(stdio.Out, out); err != nil {
			return err
		}
		return policyErr
	}
	o.printText(stdio.Out, sess.Account, region, prefix, current, merged, changed, policies, apply)
	return policyErr
}

func (o *replicationOpts) printText(w io.Writer, account, region, prefix string, current, merged *types.ReplicationConfiguration, changed bool, policies []policyOut, apply bool) {
	what := "repositories starting with " + prefix
	if prefix == "" {
		what = "every repository"
	}
	fmt.Fprintf(w, "# Replication configuration of the ci registry (%s, %s) for %s\n", account, region, what)
	switch {
	case !changed && apply:
		fmt.Fprintln(w, "# already covers every destination: nothing written")
	case !changed:
		fmt.Fprintln(w, "# already covers every destination: nothing to change")
	default:
		verb := "would change (ecrpush replication apply, or push --configure-replication)"
		if apply {
			verb = "written"
		}
		fmt.Fprintf(w, "# %s:\n", verb)
		fmt.Fprint(w, replicate.UnifiedDiff("current", "merged", string(replicate.ConfigJSON(current)), string(replicate.ConfigJSON(merged))))
	}
	for _, p := range policies {
		b, _ := jsonIndent(p.Policy)
		switch {
		case p.Status == "unchanged" && apply:
			fmt.Fprintf(w, "\n# Registry policy of %s in %s already allows replication from %s: unchanged\n", p.Account, p.Region, account)
		case p.Status == "unchanged":
			fmt.Fprintf(w, "\n# Registry policy of %s in %s already allows replication from %s\n", p.Account, p.Region, account)
		case apply && p.Status == "updated":
			fmt.Fprintf(w, "\n# Registry policy of %s in %s: updated to\n%s", p.Account, p.Region, b)
		case apply:
			fmt.Fprintf(w, "\n# Registry policy of %s in %s: %s; it needs\n%s", p.Account, p.Region, p.Status, b)
		case strings.HasPrefix(p.Status, "skipped"):
			fmt.Fprintf(w, "\n# Registry policy %s needs in %s (merge this statement into it, or pass --destination-role-name and run ecrpush replication apply):\n%s", p.Account, p.Region, b)
		default:
			fmt.Fprintf(w, "\n# Registry policy of %s in %s would become (ecrpush replication apply):\n%s", p.Account, p.Region, b)
		}
	}
}

// status prints the per-destination replication status of one image.
func (o *replicationOpts) status(ctx context.Context, stdio IO, image string) error {
	repo, ref, err := replicate.ParseImage(image)
	if err != nil {
		return err
	}
	sess, dests, err := o.setup(ctx, stdio, false)
	if err != nil {
		return err
	}
	digest, sts, err := replicate.Describe(ctx, ecr.NewFromConfig(sess.Config), repo, ref, dests)
	if err != nil {
		return err
	}
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
			fmt.Fprintln(stdio.Out, "no replication reported for this image (no rule covered the repository when it was pushed)")
			return nil
		}
		if err := replicate.WriteTable(stdio.Out, sts); err != nil {
			return err
		}
	}
	return replicate.Failures(repo, digest, sess.Account, sts)
}

// rawJSON keeps a JSON document as it is inside another one.
func rawJSON(s string) any {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return jsonRaw(strings.TrimSpace(s))
}

type jsonRaw string

func (j jsonRaw) MarshalJSON() ([]byte, error) { return []byte(j), nil }

func jsonIndent(v any) (string, error) {
	var b strings.Builder
	if err := writeJSON(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

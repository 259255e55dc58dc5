package cli

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

func trustPolicyCmd() command {
	return command{name: "trust-policy", short: "print the IAM trust and permissions policies for a CI identity; explain a token", flags: func(fs *flag.FlagSet, stdio IO) func(context.Context, []string) error {
		var s federate.TrustSpec
		fs.StringVar(&s.GitHubRepo, "github-repo", "", "GitHub repository OWNER/REPO whose jobs may assume the role")
		fs.StringVar(&s.Branch, "branch", "", "only jobs on this branch")
		fs.StringVar(&s.Environment, "environment", "", "only jobs in this GitHub environment")
		fs.BoolVar(&s.PullRequest, "pull-request", false, "only pull_request jobs")
		fs.BoolVar(&s.AnyRef, "any-ref", false, "any job of the repository")
		fs.StringVar(&s.GoogleServiceAccountID, "google-service-account-id", "", "unique id (21 digits) of the Google service account")
		fs.StringVar(&s.Audience, "audience", federate.DefaultAudience, "token audience the policy requires")
		account := fs.String("account", "", "the role's AWS account id (default: from --role-arn)")
		roleARN := fs.String("role-arn", "", "the role the policy is for (its account is used)")
		prefix := fs.String("repository-prefix", "*", "ECR repositories the push policy covers")
		format := fs.String("format", "json", "json or terraform")
		which := fs.String("policy", "all", "which document: all, trust, push, replication")
		explain := fs.String("explain", "", "decode this token file and say which conditions it satisfies and which it misses")
		return func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fixable.New("trust-policy takes no arguments, got %q", args)
			}
			s.Account = *account
			if s.Account == "" && *roleARN != "" {
				a, err := arn.Parse(*roleARN)
				if err != nil {
					return fixable.New("--role-arn %q is not an ARN", *roleARN)
				}
				s.Account = a.AccountID
			}
			if *explain != "" {
				return explainToken(stdio, s, *explain)
			}
			switch *format {
			case "json", "terraform":
			default:
				return fixable.New("--format %q is not json or terraform", *format)
			}
			switch *which {
			case "all", "trust", "push", "replication":
			default:
				return fixable.New("--policy %q is not one of all, trust, push, replication", *which)
			}
			if *format == "terraform" {
				tf, err := s.TrustPolicyTerraform("ecrpush_trust")
				if err != nil {
					return err
				}
				fmt.Fprint(stdio.Out, tf)
				return nil
			}
			trust, err := s.TrustPolicyJSON()
			if err != nil {
				return err
			}
			docs := []struct {
				name, title string
				body        []byte
			}{
				{"trust", "trust policy (assume-role policy document of the role)", trust},
				{"push", "permissions: push to ECR repositories " + *prefix, federate.PushPolicyJSON(s.Account, *prefix)},
				{"replication", "permissions: manage the ci registry's replication configuration", federate.ReplicationPolicyJSON()},
			}
			for _, d := range docs {
				if *which != "all" && *which != d.name {
					continue
				}
				if *which == "all" {
					fmt.Fprintf(stdio.Out, "# %s\n", d.title)
				}
				fmt.Fprintf(stdio.Out, "%s\n", d.body)
			}
			return nil
		}
	}}
}

func explainToken(stdio IO, s federate.TrustSpec, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fixable.Wrap(err, fmt.Sprintf("--explain: cannot read %s: point it at a file holding the ID token", file))
	}
	c, err := federate.DecodeClaims(string(b))
	if err != nil {
		return fixable.Wrap(err, fmt.Sprintf("--explain: %s: %v", file, err))
	}
	fmt.Fprintln(stdio.Out, "token claims (the token itself is not printed):")
	for _, kv := range c.Public() {
		fmt.Fprintf(stdio.Out, "  %-18s %s\n", kv[0], kv[1])
	}
	checks, err := s.Explain(c)
	if err != nil {
		return err
	}
	missed := 0
	fmt.Fprintln(stdio.Out, "conditions of the trust policy:")
	for _, ch := range checks {
		mark := "ok  "
		if !ch.OK {
			mark = "MISS"
			missed++
		}
		fmt.Fprintf(stdio.Out, "  %s %s %s %q (token: %q)\n", mark, ch.Condition.Operator, ch.Condition.Key, ch.Condition.Values, ch.Actual)
	}
	if missed > 0 {
		return fixable.New("the token misses %d condition(s) of this trust policy: change the policy or run the job the policy names", missed)
	}
	fmt.Fprintln(stdio.Out, "the token satisfies every condition")
	return nil
}

package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/ecrpush/ecrpush/internal/claims"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/trustpolicy"
)

// repeatFlag is a repeatable flag whose values are kept whole (environment names and claim values
// may hold commas).
type repeatFlag []string

func (r *repeatFlag) String() string { return strings.Join(*r, ",") }

func (r *repeatFlag) Set(v string) error {
	for _, line := range strings.Split(v, "\n") {
		if s := strings.TrimSpace(line); s != "" {
			*r = append(*r, s)
		}
	}
	return nil
}

type trustPolicyFlags struct {
	spec                                       trustpolicy.Spec
	branches, tags, template, events, repos    listFlag
	prefixes                                   listFlag
	environments, claimValues                  repeatFlag
	account, roleARN, partition, format, which string
	explain, policyFile, fromToken             string
}

func trustPolicyCmd() command {
	return command{name: "trust-policy", flagsOnly: true, short: "print the IAM trust and permissions policies for a CI identity; explain a token", flags: func(fs *flag.FlagSet, stdio IO) func(context.Context, []string) error {
		var f trustPolicyFlags
		s := &f.spec
		fs.StringVar(&s.GitHubRepo, "github-repo", "", "GitHub repository OWNER/REPO, or OWNER@OWNER_ID/REPO@REPO_ID for a repository on immutable subject claims")
		fs.StringVar(&s.ImmutableIDs, "immutable-ids", "", "OWNER_ID,REPO_ID: print the immutable subject form repo:OWNER@OWNER_ID/REPO@REPO_ID (gh api repos/OWNER/REPO --jq '.owner.id, .id')")
		fs.BoolVar(&s.BothForms, "both-subject-forms", false, "admit the name form and the immutable form at once (a migration window; needs the ids)")
		fs.Var(&f.branches, "branch", "only jobs on this branch (repeatable or comma-separated; refs/heads/ optional; * and ? are wildcards)")
		fs.Var(&f.tags, "tag", "only jobs on this tag (repeatable or comma-separated; refs/tags/ optional; * and ? are wildcards)")
		fs.Var(&f.environments, "environment", "only jobs in this GitHub environment (repeatable; ':' is written %3A as GitHub does)")
		fs.BoolVar(&s.PullRequest, "pull-request", false, "only pull_request jobs")
		fs.BoolVar(&s.AnyRef, "any-ref", false, "any job of the repository (pull requests included)")
		fs.Var(&f.template, "sub-template", "KEY,KEY,...: the repository's custom subject template (include_claim_keys), e.g. repo,context,event_name")
		fs.Var(&f.claimValues, "claim", "KEY=VALUE for a --sub-template key the other flags do not give (repeatable)")
		fs.Var(&f.events, "event", "event_name values, for a --sub-template with event_name (default push)")
		fs.StringVar(&s.Issuer, "github-issuer", "", "GitHub's token issuer: https://token.actions.githubusercontent.com/ENTERPRISE (GHEC enterprise issuer) or https://HOST/_services/token (GHES)")
		fs.StringVar(&f.fromToken, "from-token", "", "print the narrowest policy admitting exactly the job of this ID token file (issuer, audience, subject from the token)")
		fs.StringVar(&s.GoogleServiceAccountID, "google-service-account-id", "", "unique id (21 digits) of the Google service account")
		fs.StringVar(&s.Audience, "audience", "", "token audience the policy requires (default sts.amazonaws.com; sts.amazonaws.com.cn in aws-cn)")
		fs.StringVar(&f.account, "account", "", "the role's AWS account id (default: from --role-arn)")
		fs.StringVar(&f.roleARN, "role-arn", "", "the role the policy is for (its account and partition are used)")
		fs.StringVar(&f.partition, "partition", "", "aws, aws-cn or aws-us-gov (default: from --role-arn, else aws)")
		fs.Var(&f.repos, "repository", "ECR repository the push policy covers (repeatable; default: the GitHub repository's name)")
		fs.Var(&f.prefixes, "repository-prefix", "ECR repositories the push policy covers: P and P/... (repeatable; * is every repository)")
		fs.StringVar(&f.format, "format", "json", "json or terraform")
		fs.StringVar(&f.which, "policy", "all", "which document: all, trust, push, replication")
		fs.StringVar(&f.explain, "explain", "", "evaluate this ID token file against the trust policy (--policy-file, or the one the flags print): MATCH/MISS per condition")
		fs.StringVar(&f.policyFile, "policy-file", "", "with --explain: the role's trust policy (the document, or aws iam get-role output)")
		return func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fixable.New("trust-policy takes no arguments, got %q", args)
			}
			return f.run(stdio)
		}
	}}
}

func (f *trustPolicyFlags) run(stdio IO) error {
	s := &f.spec
	s.Branches, s.Tags, s.Environments, s.SubTemplate, s.Claims, s.Events = f.branches, f.tags, f.environments, f.template, f.claimValues, f.events
	s.Account, s.Partition = f.account, f.partition
	if f.roleARN != "" {
		parts := strings.SplitN(f.roleARN, ":", 6)
		if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
			return fixable.New("--role-arn %q is not an IAM role ARN like arn:aws:iam::111122223333:role/NAME", f.roleARN)
		}
		if s.Account != "" && s.Account != parts[4] {
			return fixable.New("--account %s disagrees with --role-arn %s", s.Account, f.roleARN)
		}
		if s.Partition != "" && s.Partition != parts[1] {
			return fixable.New("--partition %s disagrees with --role-arn %s", s.Partition, f.roleARN)
		}
		s.Account, s.Partition = parts[4], parts[1]
	}
	if f.policyFile != "" && f.explain == "" {
		return fixable.New("--policy-file is read by --explain TOKEN_FILE")
	}
	if f.explain != "" {
		return f.runExplain(stdio)
	}
	switch f.format {
	case "json", "terraform":
	default:
		return fixable.New("--format %q is not json or terraform", f.format)
	}
	switch f.which {
	case "all", "trust", "push", "replication":
	default:
		return fixable.New("--policy %q is not one of all, trust, push, replication", f.which)
	}
	type doc struct {
		name, title string
		d           trustpolicy.Document
	}
	var docs []doc
	var notes []string
	if f.which == "all" || f.which == "trust" {
		t, err := f.trust()
		if err != nil {
			return err
		}
		notes = append(notes, t.Notes...)
		docs = append(docs, doc{"trust", "trust policy (assume-role policy document of the role)", t.Document})
	}
	if f.which == "all" || f.which == "push" {
		repos := []string(f.repos)
		if len(repos)+len(f.prefixes) == 0 {
			if r, ok := claims.ParseRepo(s.GitHubRepo); ok && f.fromToken == "" {
				name := strings.ToLower(r.Owner + "/" + r.Name)
				repos = []string{name}
				notes = append(notes, fmt.Sprintf("the push policy covers the ECR repository %s (named after --github-repo): pass --repository or --repository-prefix for others", name))
			}
		}
		switch {
		case len(repos)+len(f.prefixes) == 0 && f.which == "all":
			notes = append(notes, "no push policy printed: name the ECR repositories with --repository NAME or --repository-prefix P")
		default:
			d, err := trustpolicy.Push(s.Partition, s.Account, repos, f.prefixes)
			if err != nil {
				return err
			}
			what := strings.Join(append(append([]string(nil), repos...), prefixed(f.prefixes)...), ", ")
			docs = append(docs, doc{"push", "permissions: push to ECR repositories " + what, d})
		}
	}
	if f.which == "all" || f.which == "replication" {
		docs = append(docs, doc{"replication", "permissions: manage the ci registry's replication configuration", trustpolicy.Replication()})
	}
	for _, n := range notes {
		fmt.Fprintln(stdio.Err, "ecrpush: note: "+n)
	}
	for i, d := range docs {
		if f.format == "terraform" {
			if i > 0 {
				fmt.Fprintln(stdio.Out)
			}
			fmt.Fprint(stdio.Out, d.d.Terraform("ecrpush_"+d.name))
			continue
		}
		if f.which == "all" {
			fmt.Fprintf(stdio.Out, "# %s\n", d.title)
		}
		fmt.Fprintf(stdio.Out, "%s\n", d.d.JSON())
	}
	return nil
}

func prefixed(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		if p == "*" {
			out[i] = "*"
			continue
		}
		p = strings.TrimSuffix(strings.TrimSuffix(p, "*"), "/")
		out[i] = p + " and " + p + "/*"
	}
	return out
}

// trust builds the trust policy from --from-token or from the flags.
func (f *trustPolicyFlags) trust() (*trustpolicy.Trust, error) {
	if f.fromToken == "" {
		return f.spec.Trust()
	}
	if f.spec.GitHubRepo != "" || f.spec.GoogleServiceAccountID != "" {
		return nil, fixable.New("--from-token takes everything from the token: drop --github-repo/--google-service-account-id")
	}
	c, err := readToken(f.fromToken, "--from-token")
	if err != nil {
		return nil, err
	}
	return trustpolicy.FromToken(c, f.spec.Account, f.spec.Partition)
}

func readToken(file, flagName string) (claims.Claims, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("%s: cannot read %s: point it at a file holding the ID token", flagName, file))
	}
	c, err := claims.Decode(string(b))
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("%s: %s: %v", flagName, file, err))
	}
	return c, nil
}

func (f *trustPolicyFlags) runExplain(stdio IO) error {
	c, err := readToken(f.explain, "--explain")
	if err != nil {
		return err
	}
	var doc []byte
	roleARN := f.roleARN
	if f.policyFile != "" {
		b, err := os.ReadFile(f.policyFile)
		if err != nil {
			return fixable.Wrap(err, fmt.Sprintf("--policy-file: cannot read %s", f.policyFile))
		}
		var arnInFile string
		doc, arnInFile, err = trustpolicy.ReadPolicy(b)
		if err != nil {
			return err
		}
		if roleARN == "" {
			roleARN = arnInFile
		}
	} else {
		if f.spec.GitHubRepo == "" && f.spec.GoogleServiceAccountID == "" && f.fromToken == "" {
			return fixable.New("--explain needs the policy to check: --policy-file FILE (the role's, e.g. aws iam get-role --role-name NAME > role.json), or the flags that print it (--github-repo ...)")
		}
		t, err := f.trust()
		if err != nil {
			return err
		}
		doc = t.Document.JSON()
	}
	fmt.Fprintln(stdio.Out, "token claims (the token itself is not printed):")
	for _, kv := range c.Public() {
		fmt.Fprintf(stdio.Out, "  %-20s %s\n", kv[0], kv[1])
	}
	r, err := trustpolicy.Explain(doc, c, roleARN, f.spec.Account, f.spec.Partition)
	if err != nil {
		return err
	}
	for _, l := range r.Lines() {
		fmt.Fprintln(stdio.Out, l)
	}
	if !r.Admitted {
		return fixable.New("the trust policy refuses this token: %s", r.Fix)
	}
	fmt.Fprintln(stdio.Out, "ADMITTED: the trust policy allows this token to assume the role")
	return nil
}

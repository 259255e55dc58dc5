package trustpolicy

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/ecrpush/ecrpush/internal/claims"
	"github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Spec says which tokens a role should admit.
type Spec struct {
	Account   string // the role's account (the IAM OIDC provider lives there)
	Partition string // aws (default), aws-cn, aws-us-gov, ...
	Audience  string // default: DefaultAudience(Partition)

	// GitHub: the repository (OWNER/REPO, or OWNER@OWNER_ID/REPO@REPO_ID) and its jobs.
	GitHubRepo   string
	ImmutableIDs string // "OWNER_ID,REPO_ID": print the immutable subject form
	BothForms    bool   // admit the name form and the immutable form (a migration window)
	Branches     []string
	Tags         []string
	Environments []string
	PullRequest  bool
	AnyRef       bool
	SubTemplate  []string // a custom subject template's include_claim_keys
	Claims       []string // KEY=VALUE: template keys the flags above do not give a value
	Events       []string // event_name values, for a template that includes event_name
	Issuer       string   // GitHub's token issuer URL (GHES, GHEC enterprise issuer); default github.com's

	// Google: the service account's unique id (21 digits); AWS compares it with azp.
	GoogleServiceAccountID string
}

// Trust is a trust policy and what the user should know about it.
type Trust struct {
	Document  Document
	Principal string   // the Federated principal
	Provider  string   // the IAM OIDC provider name ("accounts.google.com" for Google)
	Subjects  []string // the sub values admitted
	Notes     []string // what the policy admits beyond the obvious, and why
}

var (
	ownerRe    = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
	repoNameRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
	idRe       = regexp.MustCompile(`^[0-9]{1,20}$`)
	googleIDRe = regexp.MustCompile(`^[0-9]{15,25}$`)
	keyRe      = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

// PrincipalARN is the ARN of an IAM OIDC provider.
func PrincipalARN(partition, account, provider string) string {
	return "arn:" + partition + ":iam::" + account + ":oidc-provider/" + provider
}

func (s *Spec) defaults() error {
	if s.Partition == "" {
		s.Partition = "aws"
	}
	if err := checkPartition(s.Partition); err != nil {
		return err
	}
	if s.Audience == "" {
		s.Audience = DefaultAudience(s.Partition)
	}
	return nil
}

// Trust validates the spec and builds the trust policy.
func (s Spec) Trust() (*Trust, error) {
	if err := s.defaults(); err != nil {
		return nil, err
	}
	if !ecr.IsAccount(s.Account) {
		return nil, fixable.New("--account %q must be the role's 12-digit AWS account id (or pass --role-arn)", s.Account)
	}
	switch {
	case s.GitHubRepo != "" && s.GoogleServiceAccountID != "":
		return nil, fixable.New("choose one of --github-repo and --google-service-account-id")
	case s.GitHubRepo != "":
		return s.github()
	case s.GoogleServiceAccountID != "":
		return s.google()
	}
	return nil, fixable.New("pass --github-repo OWNER/REPO, --google-service-account-id ID or --from-token FILE")
}

func (s Spec) google() (*Trust, error) {
	if !googleIDRe.MatchString(s.GoogleServiceAccountID) {
		return nil, fixable.New("--google-service-account-id %q must be the service account's numeric unique id "+
			"(gcloud iam service-accounts describe EMAIL --format='value(uniqueId)'), not its email", s.GoogleServiceAccountID)
	}
	p := claims.GoogleProvider
	return &Trust{
		Principal: p, Provider: p, Subjects: []string{s.GoogleServiceAccountID},
		Document: Document{Statements: []Statement{{
			Principal: map[string]string{"Federated": p},
			Actions:   []string{"sts:AssumeRoleWithWebIdentity"},
			Conditions: []Condition{
				{Operator: "StringEquals", Key: p + ":aud", Values: []string{s.GoogleServiceAccountID}},
				{Operator: "StringEquals", Key: p + ":oaud", Values: []string{literal(s.Audience)}},
				{Operator: "StringEquals", Key: p + ":sub", Values: []string{s.GoogleServiceAccountID}},
			},
		}}},
	}, nil
}

// Issuer is a GitHub token issuer: github.com's, an enterprise issuer on github.com
// (https://token.actions.githubusercontent.com/SLUG), GHE.com's, or a GitHub Enterprise Server's
// (https://HOST/_services/token).
type Issuer struct {
	URL      string
	Provider string // the IAM OIDC provider name
	Server   bool   // GitHub Enterprise Server (no immutable subjects there)
}

// ParseIssuer validates --github-issuer ("" is github.com's).
func ParseIssuer(raw string) (Issuer, error) {
	if raw == "" {
		raw = claims.GitHubIssuer
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return Issuer{}, fixable.New("--github-issuer %q is not an issuer URL like https://token.actions.githubusercontent.com/ENTERPRISE or https://HOST/_services/token", raw)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return Issuer{}, fixable.New("--github-issuer %q must use https: IAM only trusts https issuers", raw)
	}
	host := strings.ToLower(u.Hostname())
	path := strings.TrimSuffix(u.Path, "/")
	iss := Issuer{URL: u.Scheme + "://" + u.Host + path, Provider: claims.ProviderName(u.Host + path)}
	switch {
	case host == claims.GitHubProvider:
		if strings.Count(path, "/") > 1 || strings.HasSuffix(path, "/_services/token") {
			return Issuer{}, fixable.New("--github-issuer %q: github.com's enterprise issuer is https://token.actions.githubusercontent.com/ENTERPRISE_SLUG", raw)
		}
	case strings.HasSuffix(path, "/_services/token"):
		iss.Server = true
	}
	return iss, nil
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// job is one kind of run the policy admits, with the values a subject template reads from it.
type job struct {
	context, ref, refType, environment string
}

func (s Spec) github() (*Trust, error) {
	repo, err := s.repo()
	if err != nil {
		return nil, err
	}
	iss, err := ParseIssuer(s.Issuer)
	if err != nil {
		return nil, err
	}
	if iss.Server && repo.Immutable() {
		return nil, fixable.New("GitHub Enterprise Server does not issue immutable subjects (repo:OWNER@ID/REPO@ID): drop the ids from --github-repo/--immutable-ids for %s", iss.URL)
	}
	repos := []claims.Repo{repo}
	var notes []string
	switch {
	case s.BothForms && !repo.Immutable():
		return nil, fixable.New("--both-subject-forms needs the ids: --github-repo OWNER@OWNER_ID/REPO@REPO_ID or --immutable-ids OWNER_ID,REPO_ID (gh api repos/%s --jq '.owner.id, .id')", repo)
	case s.BothForms:
		repos = []claims.Repo{repo.NameOnly(), repo}
		notes = append(notes, fmt.Sprintf("--both-subject-forms admits %s and %s: a recycled name would match the name form, so drop it once the repository's tokens use the immutable form",
			repo.NameOnly(), repo))
	case !repo.Immutable() && !iss.Server:
		notes = append(notes, fmt.Sprintf("this policy matches the name form repo:%s:…; repositories created, renamed or transferred on github.com since 15 July 2026 (or opted in) "+
			"carry the immutable form repo:OWNER@OWNER_ID/REPO@REPO_ID:…: if %s does, add --immutable-ids (gh api repos/%s --jq '.owner.id, .id')", repo, repo, repo))
	}
	template := s.SubTemplate
	for _, k := range template {
		if !keyRe.MatchString(k) {
			return nil, fixable.New("--sub-template key %q: claim keys are letters, digits and underscores (GitHub's include_claim_keys)", k)
		}
	}
	if dup := duplicate(template); dup != "" {
		return nil, fixable.New("--sub-template lists %q twice: GitHub's include_claim_keys are unique", dup)
	}
	extra, err := parseClaims(s.Claims)
	if err != nil {
		return nil, err
	}
	if len(template) == 0 && (len(extra) > 0 || len(s.Events) > 0) {
		return nil, fixable.New("--claim and --event set values of --sub-template keys: GitHub's default subject carries only the repository and the context; pass --sub-template repo,context,event_name (the template set on the repository)")
	}
	if len(s.Events) > 0 && !slices.Contains(template, "event_name") {
		return nil, fixable.New("--event needs a subject template that includes event_name: --sub-template %s,event_name", strings.Join(template, ","))
	}
	jobs, jobNotes, err := s.jobs(template)
	if err != nil {
		return nil, err
	}
	notes = append(notes, jobNotes...)

	events := s.Events
	if slices.Contains(template, "event_name") && len(events) == 0 {
		if s.PullRequest {
			events = []string{"pull_request"}
		} else {
			events = []string{"push"}
		}
		notes = append(notes, fmt.Sprintf("event_name is pinned to %s: pass --event (repeatable) for other events, e.g. --event workflow_dispatch", events[0]))
	}
	var subs []string
	for _, r := range repos {
		for _, j := range jobs {
			if len(template) == 0 {
				subs = appendNew(subs, claims.DefaultTemplateRepo+r.String()+":"+j.context)
				continue
			}
			for _, ev := range orOne(events) {
				sub, err := templateSubject(template, r, j, ev, extra)
				if err != nil {
					return nil, err
				}
				subs = appendNew(subs, sub)
			}
		}
	}
	op := "StringEquals"
	for _, v := range subs {
		if strings.ContainsAny(v, "*?") {
			op = "StringLike"
		}
	}
	values := make([]string, len(subs))
	for i, v := range subs {
		values[i] = literal(v)
	}
	principal := PrincipalARN(s.Partition, s.Account, iss.Provider)
	return &Trust{
		Principal: principal, Provider: iss.Provider, Subjects: subs, Notes: notes,
		Document: Document{Statements: []Statement{{
			Principal: map[string]string{"Federated": principal},
			Actions:   []string{"sts:AssumeRoleWithWebIdentity"},
			Conditions: []Condition{
				{Operator: "StringEquals", Key: iss.Provider + ":aud", Values: []string{literal(s.Audience)}},
				{Operator: op, Key: iss.Provider + ":sub", Values: values},
			},
		}}},
	}, nil
}

// repo parses --github-repo and --immutable-ids into one repository.
func (s Spec) repo() (claims.Repo, error) {
	r, ok := claims.ParseRepo(s.GitHubRepo)
	if !ok || !ownerRe.MatchString(r.Owner) || !repoNameRe.MatchString(r.Name) || r.Name == "." || r.Name == ".." ||
		r.Immutable() && (!idRe.MatchString(r.OwnerID) || !idRe.MatchString(r.RepoID)) {
		return claims.Repo{}, fixable.New("--github-repo %q must be OWNER/REPO, or OWNER@OWNER_ID/REPO@REPO_ID for a repository on immutable subject claims", s.GitHubRepo)
	}
	if s.ImmutableIDs != "" {
		oid, rid, ok := strings.Cut(s.ImmutableIDs, ",")
		oid, rid = strings.TrimSpace(oid), strings.TrimSpace(rid)
		if !ok || !idRe.MatchString(oid) || !idRe.MatchString(rid) {
			return claims.Repo{}, fixable.New("--immutable-ids %q must be OWNER_ID,REPO_ID, the numeric ids of the owner and the repository (gh api repos/%s --jq '.owner.id, .id')", s.ImmutableIDs, r.NameOnly())
		}
		if r.Immutable() && (r.OwnerID != oid || r.RepoID != rid) {
			return claims.Repo{}, fixable.New("--immutable-ids %s disagrees with the ids in --github-repo %s", s.ImmutableIDs, s.GitHubRepo)
		}
		r.OwnerID, r.RepoID = oid, rid
	}
	return r, nil
}

// jobs turns the scope flags into the runs the policy admits.
func (s Spec) jobs(template []string) ([]job, []string, error) {
	n := 0
	for _, b := range []bool{len(s.Branches)+len(s.Tags) > 0, len(s.Environments) > 0, s.PullRequest, s.AnyRef} {
		if b {
			n++
		}
	}
	scoped := len(template) == 0 || slices.ContainsFunc(template, func(k string) bool {
		return k == claims.KeyContext || k == "ref" || k == "environment"
	})
	switch {
	case !scoped && n > 0:
		return nil, nil, fixable.New("--sub-template %s has no context, ref or environment key, so --branch/--tag/--environment/--pull-request/--any-ref cannot restrict it: add context to the template or drop the scope flag",
			strings.Join(template, ","))
	case !scoped:
		return []job{{}}, nil, nil
	case n != 1:
		return nil, nil, fixable.New("choose exactly one of --branch/--tag (repeatable, may be combined), --environment, --pull-request, --any-ref (which jobs of %s may assume the role)", s.GitHubRepo)
	}
	var jobs []job
	var notes []string
	for _, b := range s.Branches {
		name, err := refName(b, "--branch")
		if err != nil {
			return nil, nil, err
		}
		jobs = append(jobs, job{context: claims.ContextRef("refs/heads/" + name), ref: "refs/heads/" + name, refType: "branch"})
		if strings.ContainsAny(name, "*?") {
			notes = append(notes, wildcardNote("--branch", name, "branch"))
		}
	}
	for _, t := range s.Tags {
		name, err := refName(t, "--tag")
		if err != nil {
			return nil, nil, err
		}
		jobs = append(jobs, job{context: claims.ContextRef("refs/tags/" + name), ref: "refs/tags/" + name, refType: "tag"})
		if strings.ContainsAny(name, "*?") {
			notes = append(notes, wildcardNote("--tag", name, "tag"))
		}
	}
	if len(s.Branches) > 0 && !slices.Contains(template, "event_name") {
		notes = append(notes, "--branch also admits pull_request_target, workflow_run and issue_comment runs: GitHub gives them the branch's ref in sub "+
			"(the default branch for workflow_run and issue_comment, the base branch for pull_request_target) although they can act on untrusted "+
			"pull requests and comments; keep those triggers out of workflows that use this role, or set the subject template repo,context,event_name on the repository "+
			"and print with --sub-template repo,context,event_name --event push")
	}
	for _, e := range s.Environments {
		if strings.TrimSpace(e) == "" || strings.ContainsFunc(e, isControl) {
			return nil, nil, fixable.New("--environment %q is not an environment name", e)
		}
		jobs = append(jobs, job{context: claims.ContextEnvironment(e), environment: e})
		if strings.Contains(e, ":") {
			notes = append(notes, fmt.Sprintf("environment %q is written %q in the subject: GitHub replaces every ':' in a subject value with %%3A", e, claims.Escape(e)))
		}
		if strings.ContainsAny(e, "*?") {
			notes = append(notes, wildcardNote("--environment", e, "environment"))
		}
	}
	if s.PullRequest {
		jobs = append(jobs, job{context: claims.ContextPullRequest, ref: "refs/pull/*/merge"})
		notes = append(notes, "--pull-request admits pull_request runs from branches of the repository (pull requests from forks get no ID token) — any such branch's code")
	}
	if s.AnyRef {
		jobs = append(jobs, job{context: "*", ref: "*"})
		notes = append(notes, "--any-ref admits every job of the repository: every branch, tag and environment, pull requests from its branches, "+
			"and pull_request_target, workflow_run and issue_comment runs; prefer --branch, --tag or --environment")
	}
	return jobs, notes, nil
}

func wildcardNote(flag, v, kind string) string {
	return fmt.Sprintf("%s %q is a wildcard (StringLike): it admits every %s matching it, where * matches any characters including / and ? exactly one", flag, v, kind)
}

// refName normalises a --branch or --tag value: a full ref of the right kind is shortened, one of the
// wrong kind refused, and what git would not accept as a ref name refused.
func refName(v, flag string) (string, error) {
	v = strings.TrimSpace(v)
	want, other, otherFlag := "refs/heads/", "refs/tags/", "--tag"
	if flag == "--tag" {
		want, other, otherFlag = other, want, "--branch"
	}
	switch {
	case strings.HasPrefix(v, want):
		v = strings.TrimPrefix(v, want)
	case strings.HasPrefix(v, other):
		return "", fixable.New("%s %s is a %s: use %s %s", flag, v, map[string]string{"--tag": "tag", "--branch": "branch"}[otherFlag], otherFlag, strings.TrimPrefix(v, other))
	case strings.HasPrefix(v, "refs/pull/"):
		return "", fixable.New("%s %s is a pull request ref: pull_request jobs have the subject …:pull_request, use --pull-request", flag, v)
	case strings.HasPrefix(v, "refs/"):
		return "", fixable.New("%s %s: give the %s name (refs/heads/ and refs/tags/ are added for you)", flag, v, strings.TrimPrefix(flag, "--"))
	}
	if v == "" || strings.HasPrefix(v, "-") || strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/") || strings.HasSuffix(v, ".") ||
		strings.HasSuffix(v, ".lock") || strings.Contains(v, "..") || strings.Contains(v, "//") || strings.Contains(v, "@{") ||
		strings.ContainsAny(v, " ~^:\\[") || strings.ContainsFunc(v, isControl) {
		return "", fixable.New("%s %q is not a git %s name", flag, v, strings.TrimPrefix(flag, "--"))
	}
	return v, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// templateSubject renders one subject of a custom template for a repository, a job and an event.
func templateSubject(template []string, r claims.Repo, j job, event string, extra map[string]string) (string, error) {
	vals := map[string]string{
		claims.KeyRepo: r.String(), claims.KeyContext: j.context,
		"repository": r.Owner + "/" + r.Name, "repository_owner": r.Owner,
		"repository_owner_id": r.OwnerID, "repository_id": r.RepoID,
		"ref": j.ref, "ref_type": j.refType, "environment": j.environment, "event_name": event,
	}
	for k, v := range extra {
		vals[k] = v
	}
	for _, k := range template {
		if vals[k] != "" {
			continue
		}
		switch k {
		case "repository_owner_id", "repository_id":
			return "", fixable.New("--sub-template key %s needs the ids: --immutable-ids OWNER_ID,REPO_ID (gh api repos/%s --jq '.owner.id, .id')", k, r.NameOnly())
		case "environment":
			return "", fixable.New("--sub-template key environment needs --environment NAME")
		default:
			return "", fixable.New("--sub-template key %s needs a value: --claim %s=VALUE (or print the policy of a real job with --from-token FILE)", k, k)
		}
	}
	return claims.TemplateSubject(template, vals), nil
}

func parseClaims(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !keyRe.MatchString(k) || v == "" {
			return nil, fixable.New("--claim %q must be KEY=VALUE with a claim key of letters, digits and underscores", kv)
		}
		if k == claims.KeyRepo || k == claims.KeyContext {
			return nil, fixable.New("--claim %s: the %s key comes from --github-repo and the scope flags", k, k)
		}
		out[k] = v
	}
	return out, nil
}

// literal writes a value so IAM reads it literally: in a 2012-10-17 policy "${" starts a policy
// variable, and ${$} is IAM's escape for "$".
func literal(v string) string {
	if !strings.Contains(v, "${") {
		return v
	}
	return strings.ReplaceAll(v, "$", "${$}")
}

func appendNew(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

func orOne(v []string) []string {
	if len(v) == 0 {
		return []string{""}
	}
	return v
}

func duplicate(v []string) string {
	seen := map[string]bool{}
	for _, s := range v {
		if seen[s] {
			return s
		}
		seen[s] = true
	}
	return ""
}

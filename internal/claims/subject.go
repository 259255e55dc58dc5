package claims

import (
	"strings"
)

// GitHub's subject vocabulary. The default template is repo:REPO:CONTEXT where REPO is OWNER/NAME, or,
// for repositories on immutable subject claims, OWNER@OWNER_ID/NAME@REPO_ID; CONTEXT is
// environment:NAME for jobs that reference an environment, pull_request for pull_request events, and
// ref:REF otherwise. A custom template (include_claim_keys) joins KEY:VALUE for each key in order,
// where the key repo stands for repo:REPO and context for CONTEXT.
const (
	KeyRepo             = "repo"
	KeyContext          = "context"
	ContextPullRequest  = "pull_request"
	contextRefPrefix    = "ref:"
	contextEnvPrefix    = "environment:"
	refHeads, refTags   = "refs/heads/", "refs/tags/"
	escapedColon        = "%3A"
	immutableSeparator  = "@"
	DefaultTemplateRepo = "repo:"
)

// Escape writes a claim value as GitHub puts it in a subject: every ':' becomes %3A.
func Escape(v string) string { return strings.ReplaceAll(v, ":", escapedColon) }

// Unescape reverses Escape.
func Unescape(v string) string { return strings.ReplaceAll(v, escapedColon, ":") }

// Repo is a repository as a subject names it.
type Repo struct {
	Owner, Name     string
	OwnerID, RepoID string // both set: the immutable form
}

// Immutable reports whether the repository is written in the immutable form.
func (r Repo) Immutable() bool { return r.OwnerID != "" && r.RepoID != "" }

// String is OWNER/NAME or OWNER@OWNER_ID/NAME@REPO_ID.
func (r Repo) String() string {
	if r.Immutable() {
		return r.Owner + immutableSeparator + r.OwnerID + "/" + r.Name + immutableSeparator + r.RepoID
	}
	return r.Owner + "/" + r.Name
}

// NameOnly is the repository without its ids.
func (r Repo) NameOnly() Repo { return Repo{Owner: r.Owner, Name: r.Name} }

// ParseRepo reads OWNER/NAME or OWNER@OWNER_ID/NAME@REPO_ID.
func ParseRepo(s string) (Repo, bool) {
	owner, name, ok := strings.Cut(s, "/")
	if !ok || strings.Contains(name, "/") {
		return Repo{}, false
	}
	var r Repo
	r.Owner, r.OwnerID, _ = strings.Cut(owner, immutableSeparator)
	r.Name, r.RepoID, _ = strings.Cut(name, immutableSeparator)
	if r.Owner == "" || r.Name == "" || (r.OwnerID == "") != (r.RepoID == "") || strings.Contains(s, "@@") {
		return Repo{}, false
	}
	if strings.Count(owner, immutableSeparator) > 1 || strings.Count(name, immutableSeparator) > 1 {
		return Repo{}, false
	}
	return r, true
}

// ContextRef is the context of a job on ref (refs/heads/B, refs/tags/T).
func ContextRef(ref string) string { return contextRefPrefix + ref }

// ContextEnvironment is the context of a job that references environment env.
func ContextEnvironment(env string) string { return contextEnvPrefix + Escape(env) }

// Subject is a GitHub subject claim taken apart, for the default template.
type Subject struct {
	Repo        Repo
	Ref         string // refs/heads/B, refs/tags/T, or any other ref
	Environment string // unescaped
	PullRequest bool
}

// Context is the subject's context part.
func (s Subject) Context() string {
	switch {
	case s.Environment != "":
		return ContextEnvironment(s.Environment)
	case s.PullRequest:
		return ContextPullRequest
	default:
		return ContextRef(s.Ref)
	}
}

// String renders the subject with the default template.
func (s Subject) String() string { return DefaultTemplateRepo + s.Repo.String() + ":" + s.Context() }

// Branch is the branch of a refs/heads/ ref ("" otherwise).
func (s Subject) Branch() string {
	if b, ok := strings.CutPrefix(s.Ref, refHeads); ok {
		return b
	}
	return ""
}

// Tag is the tag of a refs/tags/ ref ("" otherwise).
func (s Subject) Tag() string {
	if t, ok := strings.CutPrefix(s.Ref, refTags); ok {
		return t
	}
	return ""
}

// ParseSubject reads a subject written with the default template (name or immutable form); ok is
// false for anything else (a custom template).
func ParseSubject(sub string) (Subject, bool) {
	rest, ok := strings.CutPrefix(sub, DefaultTemplateRepo)
	if !ok {
		return Subject{}, false
	}
	repo, ctx, ok := strings.Cut(rest, ":")
	if !ok {
		return Subject{}, false
	}
	r, ok := ParseRepo(repo)
	if !ok {
		return Subject{}, false
	}
	s := Subject{Repo: r}
	switch {
	case ctx == ContextPullRequest:
		s.PullRequest = true
	case strings.HasPrefix(ctx, contextEnvPrefix):
		env := strings.TrimPrefix(ctx, contextEnvPrefix)
		if env == "" || strings.Contains(env, ":") {
			return Subject{}, false
		}
		s.Environment = Unescape(env)
	case strings.HasPrefix(ctx, contextRefPrefix):
		s.Ref = strings.TrimPrefix(ctx, contextRefPrefix)
		if s.Ref == "" || strings.Contains(s.Ref, ":") {
			return Subject{}, false
		}
	default:
		return Subject{}, false
	}
	return s, true
}

// TemplateSubject renders a custom template: KEY:VALUE for each key in order, where values[repo] is the
// repository (OWNER/NAME or the immutable form) and values[context] the context, both written as
// they are; every other value is escaped.
func TemplateSubject(keys []string, values map[string]string) string {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		switch k {
		case KeyRepo:
			parts = append(parts, KeyRepo+":"+values[k])
		case KeyContext:
			parts = append(parts, values[k])
		default:
			parts = append(parts, k+":"+Escape(values[k]))
		}
	}
	return strings.Join(parts, ":")
}

// TemplateValues are the values a token gives the keys of a custom template: its claims, with repo
// (rendered in the form of its default-template subject when it has one) and context derived.
func (c Claims) TemplateValues(immutable bool) map[string]string {
	v := map[string]string{}
	for k := range c {
		v[k] = c.String(k)
	}
	owner, name, _ := strings.Cut(c.String("repository"), "/")
	r := Repo{Owner: owner, Name: name}
	if immutable {
		r.OwnerID, r.RepoID = c.String("repository_owner_id"), c.String("repository_id")
	}
	v[KeyRepo] = r.String()
	switch {
	case c.String("environment") != "":
		v[KeyContext] = ContextEnvironment(c.String("environment"))
	case c.String("event_name") == "pull_request":
		v[KeyContext] = ContextPullRequest
	default:
		v[KeyContext] = ContextRef(c.String("ref"))
	}
	return v
}

// Template finds the template that produced the token's subject: the default template (in the name
// or the immutable form; keys nil) or a custom one whose keys are among the token's claims. ok is
// false when no template built from the token's own claims reproduces its subject.
func (c Claims) Template() (keys []string, immutable, ok bool) {
	sub := c.String("sub")
	if s, ok := ParseSubject(sub); ok {
		want := c.TemplateValues(s.Repo.Immutable())
		if DefaultTemplateRepo+want[KeyRepo]+":"+want[KeyContext] == sub {
			return nil, s.Repo.Immutable(), true
		}
	}
	// A custom template: walk the subject, matching KEY: at each step against the claims.
	for _, imm := range []bool{false, true} {
		vals := c.TemplateValues(imm)
		if keys, ok := matchTemplate(sub, vals); ok {
			return keys, imm, true
		}
	}
	return nil, false, false
}

// matchTemplate splits sub into a sequence of template parts whose values are vals.
func matchTemplate(sub string, vals map[string]string) ([]string, bool) {
	if sub == "" {
		return nil, false
	}
	var keys []string
	rest := sub
	for rest != "" {
		found := false
		// The context part has no key of its own: try it first.
		candidates := []string{KeyContext, KeyRepo}
		for k := range vals {
			if k != KeyContext && k != KeyRepo && k != "sub" && vals[k] != "" {
				candidates = append(candidates, k)
			}
		}
		sortStrings(candidates[2:])
		for _, k := range candidates {
			part := TemplateSubject([]string{k}, vals)
			if vals[k] == "" {
				continue
			}
			if rest == part || strings.HasPrefix(rest, part+":") {
				keys = append(keys, k)
				rest = strings.TrimPrefix(strings.TrimPrefix(rest, part), ":")
				found = true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return keys, true
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

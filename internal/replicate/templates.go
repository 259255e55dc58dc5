package replicate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// TemplateAPI is the part of a destination registry's ECR client creation templates use.
type TemplateAPI interface {
	DescribeRepositoryCreationTemplates(context.Context, *ecr.DescribeRepositoryCreationTemplatesInput, ...func(*ecr.Options)) (*ecr.DescribeRepositoryCreationTemplatesOutput, error)
	CreateRepositoryCreationTemplate(context.Context, *ecr.CreateRepositoryCreationTemplateInput, ...func(*ecr.Options)) (*ecr.CreateRepositoryCreationTemplateOutput, error)
	UpdateRepositoryCreationTemplate(context.Context, *ecr.UpdateRepositoryCreationTemplateInput, ...func(*ecr.Options)) (*ecr.UpdateRepositoryCreationTemplateOutput, error)
	DeleteRepositoryCreationTemplate(context.Context, *ecr.DeleteRepositoryCreationTemplateInput, ...func(*ecr.Options)) (*ecr.DeleteRepositoryCreationTemplateOutput, error)
}

// Template actions in a plan.
const (
	TemplateCreate    = "create"
	TemplateUpdate    = "update"
	TemplateUnchanged = "unchanged"
)

// templatePages bounds the DescribeRepositoryCreationTemplates pages read (1000 templates each).
const templatePages = 10

// TemplateDoc is a creation template as the API and `aws ecr create-repository-creation-template
// --cli-input-json` spell it.
type TemplateDoc struct {
	Prefix             string          `json:"prefix"`
	Description        string          `json:"description,omitempty"`
	AppliedFor         []string        `json:"appliedFor"`
	ImageTagMutability string          `json:"imageTagMutability,omitempty"`
	ExclusionFilters   []exclusionDoc  `json:"imageTagMutabilityExclusionFilters,omitempty"`
	Encryption         *encryptionDoc  `json:"encryptionConfiguration,omitempty"`
	ResourceTags       []Tag           `json:"resourceTags,omitempty"`
	LifecyclePolicy    json.RawMessage `json:"lifecyclePolicy,omitempty"`
	RepositoryPolicy   json.RawMessage `json:"repositoryPolicy,omitempty"`
	CustomRoleArn      string          `json:"customRoleArn,omitempty"`
}

type exclusionDoc struct {
	FilterType string `json:"filterType"`
	Filter     string `json:"filter"`
}

type encryptionDoc struct {
	EncryptionType string `json:"encryptionType"`
	KmsKey         string `json:"kmsKey,omitempty"`
}

// JSON is the template as indented JSON (policies shown as the JSON they hold).
func (t *TemplateDoc) JSON() string {
	if t == nil {
		return ""
	}
	b, _ := json.MarshalIndent(t, "", "  ")
	return string(b) + "\n"
}

func docOf(t *types.RepositoryCreationTemplate) *TemplateDoc {
	if t == nil {
		return nil
	}
	d := &TemplateDoc{Prefix: aws.ToString(t.Prefix), Description: aws.ToString(t.Description), ImageTagMutability: string(t.ImageTagMutability),
		CustomRoleArn: aws.ToString(t.CustomRoleArn), AppliedFor: []string{}}
	for _, a := range t.AppliedFor {
		d.AppliedFor = append(d.AppliedFor, string(a))
	}
	for _, f := range t.ImageTagMutabilityExclusionFilters {
		d.ExclusionFilters = append(d.ExclusionFilters, exclusionDoc{FilterType: string(f.FilterType), Filter: aws.ToString(f.Filter)})
	}
	if e := t.EncryptionConfiguration; e != nil {
		d.Encryption = &encryptionDoc{EncryptionType: string(e.EncryptionType), KmsKey: aws.ToString(e.KmsKey)}
	}
	for _, tag := range t.ResourceTags {
		d.ResourceTags = append(d.ResourceTags, Tag{Key: aws.ToString(tag.Key), Value: aws.ToString(tag.Value)})
	}
	d.LifecyclePolicy = rawOrString(aws.ToString(t.LifecyclePolicy))
	d.RepositoryPolicy = rawOrString(aws.ToString(t.RepositoryPolicy))
	return d
}

// rawOrString keeps JSON text as JSON, anything else as a JSON string ("" as nothing).
func rawOrString(s string) json.RawMessage {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var buf bytes.Buffer
	if json.Valid([]byte(s)) && json.Indent(&buf, []byte(s), "  ", "  ") == nil {
		return buf.Bytes()
	}
	b, _ := json.Marshal(s)
	return b
}

// TemplatePlan is what a configuration plan does to one destination registry's creation template.
type TemplatePlan struct {
	Destination Destination  `json:"destination"`
	Prefix      string       `json:"prefix"`
	Action      string       `json:"action"` // TemplateCreate, TemplateUpdate or TemplateUnchanged
	Before      *TemplateDoc `json:"before,omitempty"`
	After       *TemplateDoc `json:"after,omitempty"`
	Notes       []string     `json:"notes,omitempty"`
	Conflicts   []string     `json:"conflicts,omitempty"` // why it cannot be merged; nothing is written then

	client TemplateAPI
	want   *types.RepositoryCreationTemplate
}

// Diff is a unified diff of the template, before → after.
func (t *TemplatePlan) Diff() string {
	return UnifiedDiff("current", "merged", t.Before.JSON(), t.After.JSON())
}

// Undo is the command that puts the template back as it was.
func (t *TemplatePlan) Undo() string {
	region := " --region " + t.Destination.Region
	switch t.Action {
	case TemplateCreate:
		return "aws ecr delete-repository-creation-template --prefix " + t.Prefix + region
	case TemplateUpdate:
		b, _ := json.Marshal(t.Before)
		return "aws ecr update-repository-creation-template" + region + " --cli-input-json '" + string(b) + "'"
	}
	return ""
}

// readTemplates lists a registry's creation templates (bounded pages).
func readTemplates(ctx context.Context, c TemplateAPI, d Destination) ([]types.RepositoryCreationTemplate, error) {
	var out []types.RepositoryCreationTemplate
	in := &ecr.DescribeRepositoryCreationTemplatesInput{MaxResults: aws.Int32(1000)}
	for range templatePages {
		page, err := c.DescribeRepositoryCreationTemplates(ctx, in)
		if err != nil {
			if ecrx.Code(err) == "AccessDeniedException" {
				return nil, fixable.Wrap(err, fmt.Sprintf("may not read the creation templates of %s (ecr:DescribeRepositoryCreationTemplates denied): grant it to the role that writes there", d))
			}
			return nil, ecrx.APIError(err, "ecr DescribeRepositoryCreationTemplates in "+d.String())
		}
		out = append(out, page.RepositoryCreationTemplates...)
		if page.NextToken == nil {
			return out, nil
		}
		in.NextToken = page.NextToken
	}
	return out, fmt.Errorf("%s has more than %d creation templates: ecrpush stops reading there", d, templatePages*1000)
}

func templateKey(prefix string) string { return strings.TrimSuffix(prefix, "/") }

func appliesTo(t types.RepositoryCreationTemplate, what types.RCTAppliedFor) bool {
	return slices.Contains(t.AppliedFor, what)
}

// governing is the replication template a repository name gets in a registry: the longest prefix it
// starts with (prefix + "/"), else ROOT. AWS does not document which of nested templates wins; the
// longest is the plain reading and what the sandbox does.
func governing(ts []types.RepositoryCreationTemplate, repo string) *types.RepositoryCreationTemplate {
	var best *types.RepositoryCreationTemplate
	bestLen := -1
	for i := range ts {
		t := &ts[i]
		if !appliesTo(*t, types.RCTAppliedForReplication) {
			continue
		}
		k := templateKey(aws.ToString(t.Prefix))
		switch {
		case k == "ROOT" && bestLen < 0:
			best, bestLen = t, 0
		case k != "ROOT" && strings.HasPrefix(repo, k+"/") && len(k) > bestLen:
			best, bestLen = t, len(k)
		}
	}
	return best
}

// planTemplate reads d's creation templates and merges what the settings ask for into the one for
// prefix: a missing template is created (appliedFor REPLICATION only); an existing one keeps every
// setting it has and gains what it lacks (REPLICATION in appliedFor, tags, a lifecycle policy, the
// custom role). A setting it holds with another value is a conflict, as is any change to a template
// that also serves pull through cache or create on push: those are for the user to settle.
func planTemplate(ctx context.Context, c TemplateAPI, d Destination, prefix, repo string, s RepositorySettings) (*TemplatePlan, error) {
	p := &TemplatePlan{Destination: d, Prefix: prefix, client: c}
	all, err := readTemplates(ctx, c, d)
	if err != nil {
		return nil, err
	}
	var cur *types.RepositoryCreationTemplate
	for i := range all {
		if templateKey(aws.ToString(all[i].Prefix)) == prefix {
			cur = &all[i]
		}
	}
	want := wantTemplate(d, prefix, s, p)
	if repo != "" {
		if g := governing(all, repo); g != nil && templateKey(aws.ToString(g.Prefix)) != prefix {
			p.Notes = append(p.Notes, fmt.Sprintf("the template %q in %s also matches %s and may take precedence over %q (AWS does not document which of nested templates wins)",
				aws.ToString(g.Prefix), d, repo, prefix))
		}
	}
	p.Before = docOf(cur)
	if cur == nil {
		p.Action, p.want = TemplateCreate, want
		p.After = docOf(want)
		return p, nil
	}
	merged, changed, conflicts := mergeTemplate(cur, want)
	p.Conflicts = append(p.Conflicts, conflicts...)
	p.want = merged
	p.After = docOf(merged)
	p.Action = TemplateUnchanged
	if changed {
		p.Action = TemplateUpdate
	}
	return p, nil
}

// wantTemplate is the template the settings ask for in d (problems the settings alone cause go to
// p.Conflicts, notes to p.Notes).
func wantTemplate(d Destination, prefix string, s RepositorySettings, p *TemplatePlan) *types.RepositoryCreationTemplate {
	t := &types.RepositoryCreationTemplate{Prefix: aws.String(prefix), AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForReplication},
		Description: aws.String("ecrpush: settings of the repositories ECR replication creates under " + describeTemplatePrefix(prefix))}
	if s.TagImmutability {
		t.ImageTagMutability = types.ImageTagMutabilityImmutable
	}
	needsRole := len(s.Tags) > 0
	if k, ok := s.KMSFor(d); ok {
		t.EncryptionConfiguration = &types.EncryptionConfigurationForRepositoryCreationTemplate{EncryptionType: types.EncryptionTypeKms}
		if k.ARN != "" {
			t.EncryptionConfiguration.KmsKey = aws.String(k.ARN)
			needsRole = true
		}
		if k.Note != "" {
			p.Notes = append(p.Notes, "KMS: "+k.Note)
		}
	}
	for _, tag := range s.Tags {
		t.ResourceTags = append(t.ResourceTags, types.Tag{Key: aws.String(tag.Key), Value: aws.String(tag.Value)})
	}
	if s.LifecyclePolicy != "" {
		t.LifecyclePolicy = aws.String(s.LifecyclePolicy)
	}
	if needsRole {
		if arn := s.templateRoleARN(d); arn != "" {
			t.CustomRoleArn = aws.String(arn)
		}
	}
	return t
}

func describeTemplatePrefix(prefix string) string {
	if prefix == "ROOT" {
		return "any prefix without a template of its own (ROOT)"
	}
	return prefix + "/"
}

// mergeTemplate merges want into cur (see planTemplate).
func mergeTemplate(cur, want *types.RepositoryCreationTemplate) (*types.RepositoryCreationTemplate, bool, []string) {
	m := *cur
	m.AppliedFor = slices.Clone(cur.AppliedFor)
	m.ResourceTags = slices.Clone(cur.ResourceTags)
	var conflicts, settingChanges []string
	changed := false
	if !appliesTo(*cur, types.RCTAppliedForReplication) {
		m.AppliedFor = append(m.AppliedFor, types.RCTAppliedForReplication)
		changed = true
	}
	if want.ImageTagMutability == types.ImageTagMutabilityImmutable {
		switch cur.ImageTagMutability {
		case types.ImageTagMutabilityImmutable, types.ImageTagMutabilityImmutableWithExclusion:
		default:
			mut := cur.ImageTagMutability
			if mut == "" {
				mut = types.ImageTagMutabilityMutable
			}
			conflicts = append(conflicts, fmt.Sprintf("its imageTagMutability is %s, and IMMUTABLE was asked for", mut))
		}
	}
	if we := want.EncryptionConfiguration; we != nil {
		ce := cur.EncryptionConfiguration
		switch {
		case ce == nil || ce.EncryptionType == types.EncryptionTypeAes256:
			conflicts = append(conflicts, "its encryption is AES256, and KMS was asked for")
		case aws.ToString(ce.KmsKey) != aws.ToString(we.KmsKey):
			conflicts = append(conflicts, fmt.Sprintf("it encrypts with KMS key %q, and %q was asked for", orManaged(aws.ToString(ce.KmsKey)), orManaged(aws.ToString(we.KmsKey))))
		}
	}
	for _, wt := range want.ResourceTags {
		found := false
		for _, ct := range cur.ResourceTags {
			if aws.ToString(ct.Key) == aws.ToString(wt.Key) {
				found = true
				if aws.ToString(ct.Value) != aws.ToString(wt.Value) {
					conflicts = append(conflicts, fmt.Sprintf("its tag %s is %q, and %q was asked for", aws.ToString(wt.Key), aws.ToString(ct.Value), aws.ToString(wt.Value)))
				}
			}
		}
		if !found {
			m.ResourceTags = append(m.ResourceTags, wt)
			settingChanges = append(settingChanges, "tag "+aws.ToString(wt.Key))
		}
	}
	if wl := aws.ToString(want.LifecyclePolicy); wl != "" {
		switch cl := aws.ToString(cur.LifecyclePolicy); {
		case cl == "":
			m.LifecyclePolicy = want.LifecyclePolicy
			settingChanges = append(settingChanges, "lifecycle policy")
		case !sameJSON(cl, wl):
			conflicts = append(conflicts, "it has another lifecycle policy")
		}
	}
	if want.CustomRoleArn != nil && aws.ToString(cur.CustomRoleArn) == "" {
		m.CustomRoleArn = want.CustomRoleArn
		settingChanges = append(settingChanges, "custom role")
	}
	if len(settingChanges) > 0 {
		changed = true
		for _, other := range []types.RCTAppliedFor{types.RCTAppliedForPullThroughCache, types.RCTAppliedForCreateOnPush} {
			if appliesTo(*cur, other) {
				conflicts = append(conflicts, fmt.Sprintf("it also applies to %s, whose repositories would get the %s too", other, strings.Join(settingChanges, ", ")))
				break
			}
		}
	}
	return &m, changed, conflicts
}

func orManaged(k string) string {
	if k == "" {
		return "aws/ecr (AWS managed)"
	}
	return k
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	return jsonEqual(x, y)
}

// apply writes the planned template and reads it back.
func (t *TemplatePlan) apply(ctx context.Context) error {
	w := t.want
	var err error
	switch t.Action {
	case TemplateCreate:
		_, err = t.client.CreateRepositoryCreationTemplate(ctx, &ecr.CreateRepositoryCreationTemplateInput{Prefix: w.Prefix, AppliedFor: w.AppliedFor,
			Description: w.Description, EncryptionConfiguration: w.EncryptionConfiguration, ImageTagMutability: w.ImageTagMutability,
			ImageTagMutabilityExclusionFilters: w.ImageTagMutabilityExclusionFilters, LifecyclePolicy: w.LifecyclePolicy,
			RepositoryPolicy: w.RepositoryPolicy, ResourceTags: w.ResourceTags, CustomRoleArn: w.CustomRoleArn})
	case TemplateUpdate:
		_, err = t.client.UpdateRepositoryCreationTemplate(ctx, &ecr.UpdateRepositoryCreationTemplateInput{Prefix: w.Prefix, AppliedFor: w.AppliedFor,
			Description: w.Description, EncryptionConfiguration: w.EncryptionConfiguration, ImageTagMutability: w.ImageTagMutability,
			ImageTagMutabilityExclusionFilters: w.ImageTagMutabilityExclusionFilters, LifecyclePolicy: w.LifecyclePolicy,
			RepositoryPolicy: w.RepositoryPolicy, ResourceTags: w.ResourceTags, CustomRoleArn: w.CustomRoleArn})
	default:
		return nil
	}
	if err != nil {
		switch ecrx.Code(err) {
		case "AccessDeniedException":
			return fixable.Wrap(err, fmt.Sprintf("may not write the creation template %q in %s (ecr:CreateRepositoryCreationTemplate/UpdateRepositoryCreationTemplate denied, or iam:PassRole for its custom role): grant them to the role that writes there", t.Prefix, t.Destination))
		case "InvalidParameterException", "ValidationException":
			return fixable.Wrap(err, fmt.Sprintf("ECR refused the creation template %q in %s: %s", t.Prefix, t.Destination, ecrx.Message(err)))
		case "TemplateAlreadyExistsException":
			return fixable.Wrap(err, fmt.Sprintf("another writer created the creation template %q in %s while ecrpush planned: run again to merge into it", t.Prefix, t.Destination))
		case "TemplateNotFoundException":
			return fixable.Wrap(err, fmt.Sprintf("another writer deleted the creation template %q in %s while ecrpush planned: run again", t.Prefix, t.Destination))
		}
		return ecrx.APIError(err, "ecr "+t.Action+" repository creation template in "+t.Destination.String())
	}
	return nil
}

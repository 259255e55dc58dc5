package ecr

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/ecrpush/ecrpush/internal/iam"
)

// RepositoryCreationTemplate is the model's shape of the same name, as DescribeRepositoryCreationTemplates
// sends it.
type RepositoryCreationTemplate struct {
	Prefix                             string                              `json:"prefix"`
	Description                        string                              `json:"description,omitempty"`
	EncryptionConfiguration            EncryptionConfiguration             `json:"encryptionConfiguration"`
	ResourceTags                       []Tag                               `json:"resourceTags,omitempty"`
	ImageTagMutability                 string                              `json:"imageTagMutability"`
	ImageTagMutabilityExclusionFilters []ImageTagMutabilityExclusionFilter `json:"imageTagMutabilityExclusionFilters,omitempty"`
	RepositoryPolicy                   string                              `json:"repositoryPolicy,omitempty"`
	LifecyclePolicy                    string                              `json:"lifecyclePolicy,omitempty"`
	AppliedFor                         []string                            `json:"appliedFor"`
	CustomRoleArn                      string                              `json:"customRoleArn,omitempty"`
	CreatedAt                          epochTime                           `json:"createdAt"`
	UpdatedAt                          epochTime                           `json:"updatedAt"`
}

// Template limits and patterns from the ECR service model (Prefix, RCTAppliedFor, lengths).
const (
	templatePrefixRE    = `^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$`
	maxLifecyclePolicy  = 30720
	maxRepositoryPolicy = 10240
)

var (
	templatePrefixPattern = regexp.MustCompile(templatePrefixRE)
	appliedForValues      = map[string]bool{"REPLICATION": true, "PULL_THROUGH_CACHE": true, "CREATE_ON_PUSH": true}
	kmsARNPattern         = regexp.MustCompile(`^arn:aws(-[a-z]+)*:kms:([a-z0-9-]+):([0-9]{12}):(key|alias)/.+$`)
	roleARNPattern        = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::([0-9]{12}):role/.+$`)
)

// templateKey is how the sandbox keys a prefix: "prod" and "prod/" are the same template, since ECR
// "always" assumes the trailing "/".
func templateKey(prefix string) string { return strings.TrimSuffix(prefix, "/") }

// templateInput is the request of Create/UpdateRepositoryCreationTemplate; pointers tell an omitted
// member (Update keeps it) from an empty one.
type templateInput struct {
	Prefix                             *string                              `json:"prefix"`
	Description                        *string                              `json:"description"`
	EncryptionConfiguration            *EncryptionConfiguration             `json:"encryptionConfiguration"`
	ResourceTags                       *[]Tag                               `json:"resourceTags"`
	ImageTagMutability                 *string                              `json:"imageTagMutability"`
	ImageTagMutabilityExclusionFilters *[]ImageTagMutabilityExclusionFilter `json:"imageTagMutabilityExclusionFilters"`
	RepositoryPolicy                   *string                              `json:"repositoryPolicy"`
	LifecyclePolicy                    *string                              `json:"lifecyclePolicy"`
	AppliedFor                         *[]string                            `json:"appliedFor"`
	CustomRoleArn                      *string                              `json:"customRoleArn"`
}

func validateTemplatePrefix(field, prefix string) *apiError {
	switch {
	case len(prefix) < 1:
		return invalidParam(field, "Member must have length greater than or equal to 1")
	case len(prefix) > 256:
		return invalidParam(field, "Member must have length less than or equal to 256")
	case !templatePrefixPattern.MatchString(prefix):
		return invalidParam(field, "Member must satisfy regular expression pattern: "+templatePrefixRE)
	}
	return nil
}

// apply validates in and applies it to t (a fresh template for Create, a copy for Update).
func (in *templateInput) apply(t *RepositoryCreationTemplate, id RegistryID) *apiError {
	if in.Description != nil {
		if len(*in.Description) > 256 {
			return invalidParam("description", "Member must have length less than or equal to 256")
		}
		t.Description = *in.Description
	}
	if in.AppliedFor != nil {
		if len(*in.AppliedFor) == 0 {
			return invalidParam("appliedFor", "Member must have length greater than or equal to 1")
		}
		var af []string
		for _, a := range *in.AppliedFor {
			if !appliedForValues[a] {
				return invalidParam("appliedFor", "Member must satisfy enum value set: [REPLICATION, PULL_THROUGH_CACHE, CREATE_ON_PUSH]")
			}
			if !contains(af, a) {
				af = append(af, a)
			}
		}
		t.AppliedFor = af
	}
	if in.ImageTagMutability != nil || in.ImageTagMutabilityExclusionFilters != nil {
		m := t.ImageTagMutability
		if in.ImageTagMutability != nil {
			m = *in.ImageTagMutability
		}
		var filters []ImageTagMutabilityExclusionFilter
		if in.ImageTagMutabilityExclusionFilters != nil {
			filters = *in.ImageTagMutabilityExclusionFilters
		} else if strings.HasSuffix(m, "_WITH_EXCLUSION") {
			filters = t.ImageTagMutabilityExclusionFilters
		}
		if aerr := validateMutability(m, filters); aerr != nil {
			return aerr
		}
		t.ImageTagMutability, t.ImageTagMutabilityExclusionFilters = m, filters
	}
	if in.EncryptionConfiguration != nil {
		enc := *in.EncryptionConfiguration
		switch enc.EncryptionType {
		case "AES256":
			if enc.KmsKey != "" {
				return invalidParam("encryptionConfiguration", "KMS key should not be specified when the encryption type is AES256")
			}
		case "KMS", "KMS_DSSE":
			if enc.KmsKey != "" {
				// [doc] "The full ARN of the KMS key must be specified. The key must exist in the same
				// Region as the repository."
				m := kmsARNPattern.FindStringSubmatch(enc.KmsKey)
				if m == nil {
					return invalidParam("encryptionConfiguration.kmsKey", "The full ARN of the KMS key must be specified")
				}
				if m[2] != id.Region {
					return invalidParam("encryptionConfiguration.kmsKey", "The KMS key must exist in the same Region as the repository ("+id.Region+")")
				}
			}
		default:
			return invalidParam("encryptionConfiguration.encryptionType", "Member must satisfy enum value set: [AES256, KMS, KMS_DSSE]")
		}
		t.EncryptionConfiguration = enc
	}
	if in.ResourceTags != nil {
		if aerr := validateTags(*in.ResourceTags); aerr != nil {
			return aerr
		}
		t.ResourceTags = *in.ResourceTags
	}
	if in.LifecyclePolicy != nil {
		if len(*in.LifecyclePolicy) > maxLifecyclePolicy {
			return invalidParam("lifecyclePolicy", fmt.Sprintf("Member must have length less than or equal to %d", maxLifecyclePolicy))
		}
		if *in.LifecyclePolicy != "" && !validLifecyclePolicy(*in.LifecyclePolicy) {
			return newAPIError(excInvalidParameter, "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure'")
		}
		t.LifecyclePolicy = *in.LifecyclePolicy
	}
	if in.RepositoryPolicy != nil {
		if len(*in.RepositoryPolicy) > maxRepositoryPolicy {
			return invalidParam("repositoryPolicy", fmt.Sprintf("Member must have length less than or equal to %d", maxRepositoryPolicy))
		}
		if *in.RepositoryPolicy != "" {
			if _, err := iam.Parse([]byte(*in.RepositoryPolicy)); err != nil {
				return invalidParam("repositoryPolicy", "Invalid repository policy provided")
			}
		}
		t.RepositoryPolicy = *in.RepositoryPolicy
	}
	if in.CustomRoleArn != nil {
		if len(*in.CustomRoleArn) > 2048 {
			return invalidParam("customRoleArn", "Member must have length less than or equal to 2048")
		}
		if *in.CustomRoleArn != "" {
			// [doc] "This role must be in the same account as the registry that you are configuring."
			m := roleARNPattern.FindStringSubmatch(*in.CustomRoleArn)
			if m == nil || m[2] != id.Account {
				return invalidParam("customRoleArn", "The role must be an IAM role in the same account as the registry ("+id.Account+")")
			}
		}
		t.CustomRoleArn = *in.CustomRoleArn
	}
	return nil
}

// validLifecyclePolicy is the sandbox's check of a lifecycle policy: a JSON object with a non-empty
// "rules" array whose members have a rulePriority, a selection and an action ([assumed] the full rule
// grammar is not checked).
func validLifecyclePolicy(text string) bool {
	var doc struct {
		Rules []struct {
			RulePriority *int            `json:"rulePriority"`
			Selection    json.RawMessage `json:"selection"`
			Action       json.RawMessage `json:"action"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(text), &doc); err != nil || len(doc.Rules) == 0 {
		return false
	}
	for _, r := range doc.Rules {
		if r.RulePriority == nil || len(r.Selection) == 0 || len(r.Action) == 0 {
			return false
		}
	}
	return true
}

func opCreateRepositoryCreationTemplate(c *call) (any, *apiError) {
	var in templateInput
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.Prefix == nil {
		return nil, invalidParam("prefix", "Member must not be null")
	}
	if in.AppliedFor == nil {
		return nil, invalidParam("appliedFor", "Member must not be null")
	}
	if aerr := validateTemplatePrefix("prefix", *in.Prefix); aerr != nil {
		return nil, aerr
	}
	rg, aerr := c.ownRegistry()
	if aerr != nil {
		return nil, aerr
	}
	now := epochTime(c.s.now())
	t := RepositoryCreationTemplate{Prefix: *in.Prefix, ImageTagMutability: "MUTABLE",
		EncryptionConfiguration: EncryptionConfiguration{EncryptionType: "AES256"}, CreatedAt: now, UpdatedAt: now}
	if aerr := in.apply(&t, rg.id); aerr != nil {
		return nil, aerr
	}
	rg.mu.Lock()
	defer rg.mu.Unlock()
	key := templateKey(t.Prefix)
	if _, exists := rg.templates[key]; exists {
		return nil, newAPIError(excTemplateExists, "The repository creation template with prefix '%s' already exists in the registry with id '%s'. Specify a unique prefix and try again.", t.Prefix, rg.id.Account)
	}
	rg.templates[key] = &t
	return map[string]any{"registryId": rg.id.Account, "repositoryCreationTemplate": t}, nil
}

// templateRegistry checks the prefix an Update or Delete names (required, the model's pattern) and
// returns the caller's own registry.
func (c *call) templateRegistry(prefix *string) (*registry, *apiError) {
	if prefix == nil {
		return nil, invalidParam("prefix", "Member must not be null")
	}
	if aerr := validateTemplatePrefix("prefix", *prefix); aerr != nil {
		return nil, aerr
	}
	return c.ownRegistry()
}

func opUpdateRepositoryCreationTemplate(c *call) (any, *apiError) {
	var in templateInput
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	rg, aerr := c.templateRegistry(in.Prefix)
	if aerr != nil {
		return nil, aerr
	}
	rg.mu.Lock()
	defer rg.mu.Unlock()
	cur, ok := rg.templates[templateKey(*in.Prefix)]
	if !ok {
		return nil, templateNotFound(*in.Prefix, rg.id.Account)
	}
	t := *cur
	if aerr := in.apply(&t, rg.id); aerr != nil {
		return nil, aerr
	}
	t.UpdatedAt = epochTime(c.s.now())
	rg.templates[templateKey(*in.Prefix)] = &t
	return map[string]any{"registryId": rg.id.Account, "repositoryCreationTemplate": t}, nil
}

func opDeleteRepositoryCreationTemplate(c *call) (any, *apiError) {
	var in struct {
		Prefix *string `json:"prefix"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	rg, aerr := c.templateRegistry(in.Prefix)
	if aerr != nil {
		return nil, aerr
	}
	rg.mu.Lock()
	defer rg.mu.Unlock()
	key := templateKey(*in.Prefix)
	t, ok := rg.templates[key]
	if !ok {
		return nil, templateNotFound(*in.Prefix, rg.id.Account)
	}
	delete(rg.templates, key)
	return map[string]any{"registryId": rg.id.Account, "repositoryCreationTemplate": *t}, nil
}

func opDescribeRepositoryCreationTemplates(c *call) (any, *apiError) {
	var in struct {
		Prefixes   []string `json:"prefixes"`
		NextToken  string   `json:"nextToken"`
		MaxResults *int     `json:"maxResults"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if len(in.Prefixes) > 100 {
		return nil, invalidParam("prefixes", "Member must have length less than or equal to 100")
	}
	for i, p := range in.Prefixes {
		if aerr := validateTemplatePrefix(fmt.Sprintf("prefixes.%d.member", i+1), p); aerr != nil {
			return nil, aerr
		}
	}
	rg, aerr := c.ownRegistry()
	if aerr != nil {
		return nil, aerr
	}
	rg.mu.RLock()
	var list []RepositoryCreationTemplate
	for k, t := range rg.templates {
		if len(in.Prefixes) > 0 && !contains(trimAll(in.Prefixes), k) {
			continue // [assumed] a prefix without a template is left out, not an error
		}
		list = append(list, *t)
	}
	rg.mu.RUnlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Prefix < list[j].Prefix })
	page, next, aerr := paginate(len(list), in.NextToken, in.MaxResults)
	if aerr != nil {
		return nil, aerr
	}
	out := map[string]any{"registryId": rg.id.Account, "repositoryCreationTemplates": append([]RepositoryCreationTemplate{}, list[page[0]:page[1]]...)}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func trimAll(prefixes []string) []string {
	out := make([]string, len(prefixes))
	for i, p := range prefixes {
		out[i] = templateKey(p)
	}
	return out
}

func templateNotFound(prefix, account string) *apiError {
	return newAPIError(excTemplateNotFound, "The specified repository creation template with prefix '%s' can't be found in the registry with id '%s'. Verify the registry ID and prefix and try again.", prefix, account)
}

// templateFor is the creation template that governs a repository replication creates: the template
// whose prefix (plus the assumed "/") the name starts with, the longest when several do ([assumed]:
// AWS does not say which of nested templates wins), else ROOT; only templates applied for
// REPLICATION count.
func (rg *registry) templateFor(repo string) *RepositoryCreationTemplate {
	rg.mu.RLock()
	defer rg.mu.RUnlock()
	var best *RepositoryCreationTemplate
	bestLen := -1
	for k, t := range rg.templates {
		if !contains(t.AppliedFor, "REPLICATION") {
			continue
		}
		switch {
		case k == "ROOT":
			if bestLen < 0 {
				best, bestLen = t, 0
			}
		case strings.HasPrefix(repo, k+"/") && len(k) > bestLen:
			best, bestLen = t, len(k)
		}
	}
	return best
}

// replicationSpec is the settings of a repository replication creates in rg: its creation template's,
// or ECR's defaults without one (MUTABLE, AES256, no policies, scan on push off — templates have no
// scanning setting). A template that names a KMS key or resource tags needs a custom role ([doc]
// repository-creation-templates-create.html); without one the sandbox fails the replication with its
// own code FailureTemplateRoleRequired ([assumed]: AWS does not say how that surfaces).
func (rg *registry) replicationSpec(repo string) (repoSpec, string) {
	spec := repoSpec{name: repo}
	t := rg.templateFor(repo)
	if t == nil {
		return spec, ""
	}
	if (t.EncryptionConfiguration.KmsKey != "" || len(t.ResourceTags) > 0) && t.CustomRoleArn == "" {
		return spec, FailureTemplateRoleRequired
	}
	spec.mutability, spec.exclusions = t.ImageTagMutability, t.ImageTagMutabilityExclusionFilters
	enc, _ := encryptionFor(&t.EncryptionConfiguration, rg.id)
	spec.encryption = enc
	spec.tags = append([]Tag(nil), t.ResourceTags...)
	spec.lifecycle, spec.policy = t.LifecyclePolicy, t.RepositoryPolicy
	return spec, ""
}

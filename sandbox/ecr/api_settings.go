package ecr

import (
	"strings"
)

// Repository settings beyond CreateRepository's: lifecycle policies and resource tags, as copy mode
// writes them and tests read back what a creation template gave a replicated repository.

func opPutLifecyclePolicy(c *call) (any, *apiError) {
	var in struct {
		RegistryID          string  `json:"registryId"`
		RepositoryName      string  `json:"repositoryName"`
		LifecyclePolicyText *string `json:"lifecyclePolicyText"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.LifecyclePolicyText == nil {
		return nil, invalidParam("lifecyclePolicyText", "Member must not be null")
	}
	if n := len(*in.LifecyclePolicyText); n < 100 || n > maxLifecyclePolicy {
		return nil, invalidParam("lifecyclePolicyText", "Member must have length between 100 and 30720")
	}
	if !validLifecyclePolicy(*in.LifecyclePolicyText) {
		return nil, newAPIError(excInvalidParameter, "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure'")
	}
	rg, aerr := c.repoAccess(in.RegistryID, in.RepositoryName)
	if aerr != nil {
		return nil, aerr
	}
	rg.mu.Lock()
	defer rg.mu.Unlock()
	r, ok := rg.repos[in.RepositoryName]
	if !ok {
		return nil, repoNotFound(in.RepositoryName, rg.id.Account)
	}
	r.lifecycle = *in.LifecyclePolicyText
	return map[string]any{"registryId": rg.id.Account, "repositoryName": r.name, "lifecyclePolicyText": r.lifecycle}, nil
}

func opGetLifecyclePolicy(c *call) (any, *apiError) {
	var in struct {
		RegistryID     string `json:"registryId"`
		RepositoryName string `json:"repositoryName"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	rg, aerr := c.repoAccess(in.RegistryID, in.RepositoryName)
	if aerr != nil {
		return nil, aerr
	}
	rg.mu.RLock()
	defer rg.mu.RUnlock()
	r, ok := rg.repos[in.RepositoryName]
	if !ok {
		return nil, repoNotFound(in.RepositoryName, rg.id.Account)
	}
	if r.lifecycle == "" {
		return nil, newAPIError(excLifecyclePolicyNotFound, "Lifecycle policy does not exist for the repository with name '%s' in the registry with id '%s'", r.name, rg.id.Account)
	}
	return map[string]any{"registryId": rg.id.Account, "repositoryName": r.name, "lifecyclePolicyText": r.lifecycle}, nil
}

// ListTagsForResource reads a repository's resource tags; the resource is its ARN.
func opListTagsForResource(c *call) (any, *apiError) {
	var in struct {
		ResourceArn string `json:"resourceArn"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	parts := strings.SplitN(in.ResourceArn, ":", 6)
	if len(parts) != 6 || parts[2] != "ecr" || !strings.HasPrefix(parts[5], "repository/") {
		return nil, invalidParam("resourceArn", "Invalid ARN")
	}
	if parts[3] != c.region {
		return nil, invalidParam("resourceArn", "The ARN is not in region "+c.region)
	}
	rg, aerr := c.repoAccess(parts[4], strings.TrimPrefix(parts[5], "repository/"))
	if aerr != nil {
		return nil, aerr
	}
	rg.mu.RLock()
	defer rg.mu.RUnlock()
	r, ok := rg.repos[strings.TrimPrefix(parts[5], "repository/")]
	if !ok {
		return nil, repoNotFound(strings.TrimPrefix(parts[5], "repository/"), rg.id.Account)
	}
	return map[string]any{"tags": append([]Tag{}, r.resourceTags...)}, nil
}

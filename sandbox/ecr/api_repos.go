package ecr

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

var mutabilities = map[string]bool{"MUTABLE": true, "IMMUTABLE": true, "IMMUTABLE_WITH_EXCLUSION": true, "MUTABLE_WITH_EXCLUSION": true}

// validateMutability checks imageTagMutability and its exclusion filters together.
func validateMutability(m string, filters []ImageTagMutabilityExclusionFilter) *apiError {
	if !mutabilities[m] {
		return invalidParam("imageTagMutability", "Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]")
	}
	withExclusion := strings.HasSuffix(m, "_WITH_EXCLUSION")
	switch {
	case withExclusion && len(filters) == 0:
		return invalidParam("imageTagMutabilityExclusionFilters", "Exclusion filters are required when imageTagMutability is "+m)
	case !withExclusion && filters != nil:
		return invalidParam("imageTagMutabilityExclusionFilters", "Exclusion filters can only be specified with IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION")
	case len(filters) > 5:
		return invalidParam("imageTagMutabilityExclusionFilters", "Member must have length less than or equal to 5")
	}
	for i, f := range filters {
		field := fmt.Sprintf("imageTagMutabilityExclusionFilters.%d.member", i+1)
		if f.FilterType != "WILDCARD" {
			return invalidParam(field+".filterType", "Member must satisfy enum value set: [WILDCARD]")
		}
		if !exclusionPattern.MatchString(f.Filter) {
			return invalidParam(field+".filter", "Member must satisfy regular expression pattern: ^[0-9a-zA-Z._*-]{1,128}$")
		}
	}
	return nil
}

func opCreateRepository(c *call) (any, *apiError) {
	var in struct {
		RegistryID                         string                              `json:"registryId"`
		RepositoryName                     *string                             `json:"repositoryName"`
		Tags                               []Tag                               `json:"tags"`
		ImageTagMutability                 string                              `json:"imageTagMutability"`
		ImageTagMutabilityExclusionFilters []ImageTagMutabilityExclusionFilter `json:"imageTagMutabilityExclusionFilters"`
		ImageScanningConfiguration         *ImageScanningConfiguration         `json:"imageScanningConfiguration"`
		EncryptionConfiguration            *EncryptionConfiguration            `json:"encryptionConfiguration"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.RepositoryName == nil {
		return nil, invalidParam("repositoryName", "Member must not be null")
	}
	spec := repoSpec{name: *in.RepositoryName, mutability: in.ImageTagMutability, exclusions: in.ImageTagMutabilityExclusionFilters}
	if spec.mutability == "" {
		spec.mutability = "MUTABLE"
	}
	if aerr := validateMutability(spec.mutability, spec.exclusions); aerr != nil {
		return nil, aerr
	}
	if in.ImageScanningConfiguration != nil {
		spec.scanOnPush = in.ImageScanningConfiguration.ScanOnPush
	}
	if aerr := validateTags(in.Tags); aerr != nil {
		return nil, aerr
	}
	spec.tags = in.Tags
	rg, aerr := c.repoAccess(in.RegistryID, spec.name)
	if aerr != nil {
		return nil, aerr
	}
	enc, aerr := encryptionFor(in.EncryptionConfiguration, rg.id)
	if aerr != nil {
		return nil, aerr
	}
	spec.encryption = enc
	repo, created := rg.createRepository(spec, c.s.now())
	if !created {
		return nil, newAPIError(excRepositoryExists,
			"The repository with name '%s' already exists in the registry with id '%s'", spec.name, rg.id.Account)
	}
	return map[string]any{"repository": repo}, nil
}

// encryptionFor validates encryptionConfiguration; KMS without a key means the AWS managed key.
func encryptionFor(in *EncryptionConfiguration, id RegistryID) (EncryptionConfiguration, *apiError) {
	if in == nil {
		return EncryptionConfiguration{EncryptionType: "AES256"}, nil
	}
	switch in.EncryptionType {
	case "AES256":
		if in.KmsKey != "" {
			return EncryptionConfiguration{}, invalidParam("encryptionConfiguration",
				"KMS key should not be specified when the encryption type is AES256")
		}
		return *in, nil
	case "KMS", "KMS_DSSE":
		out := *in
		if len(out.KmsKey) > 2048 {
			return EncryptionConfiguration{}, invalidParam("encryptionConfiguration.kmsKey", "Member must have length less than or equal to 2048")
		}
		if out.KmsKey == "" {
			out.KmsKey = "arn:aws:kms:" + id.Region + ":" + id.Account + ":alias/aws/ecr"
		}
		return out, nil
	}
	return EncryptionConfiguration{}, invalidParam("encryptionConfiguration.encryptionType",
		"Member must satisfy enum value set: [AES256, KMS, KMS_DSSE]")
}

func validateTags(tags []Tag) *apiError {
	if len(tags) > 50 {
		return newAPIError(excTooManyTags, "The tag limit has been exceeded for the resource")
	}
	for _, t := range tags {
		switch {
		case t.Key == nil || t.Value == nil:
			return newAPIError(excInvalidTagParameter, "Tags must have both a Key and a Value")
		case len(*t.Key) < 1 || len(*t.Key) > 128:
			return newAPIError(excInvalidTagParameter, "Tag keys must be between 1 and 128 characters")
		case len(*t.Value) > 256:
			return newAPIError(excInvalidTagParameter, "Tag values must be at most 256 characters")
		case strings.HasPrefix(strings.ToLower(*t.Key), "aws:"):
			return newAPIError(excInvalidTagParameter, "Tag keys prefixed with 'aws:' are reserved")
		}
	}
	return nil
}

func opDescribeRepositories(c *call) (any, *apiError) {
	var in struct {
		RegistryID      string   `json:"registryId"`
		RepositoryNames []string `json:"repositoryNames"`
		NextToken       string   `json:"nextToken"`
		MaxResults      *int     `json:"maxResults"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.RepositoryNames != nil && (len(in.RepositoryNames) < 1 || len(in.RepositoryNames) > 100) {
		return nil, invalidParam("repositoryNames", "Member must have length between 1 and 100")
	}
	for i, n := range in.RepositoryNames {
		if aerr := validateRepositoryName(fmt.Sprintf("repositoryNames.%d.member", i+1), n); aerr != nil {
			return nil, aerr
		}
	}
	if aerr := validateRegistryID("registryId", in.RegistryID); aerr != nil {
		return nil, aerr
	}
	account := c.sess.Account
	if in.RegistryID != "" {
		account = in.RegistryID
	}
	arnPrefix := "arn:aws:ecr:" + c.region + ":" + account + ":repository/"
	for _, n := range in.RepositoryNames {
		if aerr := c.authorize(c.action(), arnPrefix+n); aerr != nil {
			return nil, aerr
		}
	}
	if account != c.sess.Account {
		return nil, newAPIError(excAccessDenied, "%s", accessDenied(c.sess.ARN(), c.action(), arnPrefix+"*", true))
	}
	rg, aerr := c.registryFor(account)
	if aerr != nil {
		return nil, aerr
	}
	repos, missing := rg.describeRepos(in.RepositoryNames)
	if missing != "" {
		return nil, repoNotFound(missing, account)
	}
	if len(in.RepositoryNames) == 0 { // listing: only what the caller may describe
		visible := repos[:0]
		for _, r := range repos {
			if c.s.allowed(c.sess, c.action(), r.RepositoryArn, c.region) {
				visible = append(visible, r)
			}
		}
		if len(visible) == 0 {
			if aerr := c.authorize(c.action(), arnPrefix+"*"); aerr != nil {
				return nil, aerr
			}
		}
		repos = visible
	}
	page, next, aerr := paginate(len(repos), in.NextToken, in.MaxResults)
	if aerr != nil {
		return nil, aerr
	}
	out := map[string]any{"repositories": append([]Repository{}, repos[page[0]:page[1]]...)}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func opPutImageTagMutability(c *call) (any, *apiError) {
	var in struct {
		RegistryID                         string                              `json:"registryId"`
		RepositoryName                     string                              `json:"repositoryName"`
		ImageTagMutability                 *string                             `json:"imageTagMutability"`
		ImageTagMutabilityExclusionFilters []ImageTagMutabilityExclusionFilter `json:"imageTagMutabilityExclusionFilters"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.ImageTagMutability == nil {
		return nil, invalidParam("imageTagMutability", "Member must not be null")
	}
	if aerr := validateMutability(*in.ImageTagMutability, in.ImageTagMutabilityExclusionFilters); aerr != nil {
		return nil, aerr
	}
	rg, aerr := c.repoAccess(in.RegistryID, in.RepositoryName)
	if aerr != nil {
		return nil, aerr
	}
	if !rg.setMutability(in.RepositoryName, *in.ImageTagMutability, in.ImageTagMutabilityExclusionFilters) {
		return nil, repoNotFound(in.RepositoryName, rg.id.Account)
	}
	out := map[string]any{"registryId": rg.id.Account, "repositoryName": in.RepositoryName, "imageTagMutability": *in.ImageTagMutability}
	if len(in.ImageTagMutabilityExclusionFilters) > 0 {
		out["imageTagMutabilityExclusionFilters"] = in.ImageTagMutabilityExclusionFilters
	}
	return out, nil
}

// paginate slices n items by an opaque offset token; default page 100, as ECR.
func paginate(n int, token string, max *int) ([2]int, string, *apiError) {
	size := 100
	if max != nil {
		if *max < 1 || *max > 1000 {
			return [2]int{}, "", invalidParam("maxResults", "Member must have value between 1 and 1000")
		}
		size = *max
	}
	start := 0
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		off, err2 := strconv.Atoi(strings.TrimPrefix(string(raw), "offset:"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(raw), "offset:") || off < 0 || off > n {
			return [2]int{}, "", invalidParam("nextToken", "Invalid NextToken")
		}
		start = off
	}
	end := min(start+size, n)
	next := ""
	if end < n {
		next = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	return [2]int{start, end}, next, nil
}

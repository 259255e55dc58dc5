package ecr

import (
	"regexp"
	"strings"
	"sync"
)

// Shapes from the ECR service model (botocore ecr/2015-09-21).
const (
	repositoryNameRE = `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
	filterValueRE    = `^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$`
	// ociTagRE is the distribution spec's tag grammar, which the registry enforces on PUT.
	ociTagRE = `^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`
)

// Compiled on first use: the sandbox lives in the ecrpush binary, and no other command should pay
// for its patterns at start-up ({0,127}-style repetitions compile into large programs).
var (
	repositoryNamePattern = lazyRegexp(`^(?:` + repositoryNameRE + `)$`)
	filterValuePattern    = lazyRegexp(filterValueRE)
	accountIDPattern      = lazyRegexp(`^[0-9]{12}$`)
	regionShapePattern    = lazyRegexp(`^[0-9a-z-]{2,25}$`)
	// regionPattern is stricter than the model's shape: a destination must look like a real region.
	regionPattern    = lazyRegexp(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$`)
	ociTagPattern    = lazyRegexp(ociTagRE)
	digestPattern    = lazyRegexp(`^sha256:[a-f0-9]{64}$`)
	anyDigestPattern = lazyRegexp(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
	exclusionPattern = lazyRegexp(`^[0-9a-zA-Z._*-]{1,128}$`)
)

// lazyRegexp is a regular expression compiled when first matched.
func lazyRegexp(expr string) *lazyRE {
	return &lazyRE{compile: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })}
}

type lazyRE struct{ compile func() *regexp.Regexp }

func (l *lazyRE) MatchString(s string) bool { return l.compile().MatchString(s) }

// validateRepositoryName checks a name the way ECR's model validation does.
func validateRepositoryName(field, name string) *apiError {
	switch {
	case len(name) < 2:
		return invalidParam(field, "must have length greater than or equal to 2")
	case len(name) > 256:
		return invalidParam(field, "must have length less than or equal to 256")
	case !repositoryNamePattern.MatchString(name):
		return invalidParam(field, "must satisfy regular expression '"+repositoryNameRE+"'")
	}
	return nil
}

// validateRegistryID checks an optional registryId parameter.
func validateRegistryID(field, id string) *apiError {
	if id != "" && !accountIDPattern.MatchString(id) {
		return invalidParam(field, "must satisfy regular expression '[0-9]{12}'")
	}
	return nil
}

// validateImageID checks an ImageIdentifier as BatchGetImage/DescribeImages receive it.
func validateImageTag(field, tag string) *apiError {
	if len(tag) > 300 {
		return invalidParam(field, "must have length less than or equal to 300")
	}
	return nil
}

// wildcardMatch matches ECR's WILDCARD exclusion filters ('*' = any run of characters).
func wildcardMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i := 1; i < len(parts)-1; i++ {
		idx := strings.Index(s, parts[i])
		if idx < 0 {
			return false
		}
		s = s[idx+len(parts[i]):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

package ecr

import (
	"regexp"
	"sync"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Patterns of the current ECR API model (service ecr, 2015-09-21: RepositoryName, ImageTag,
// RegistryId) and of the distribution spec's tag grammar, which ECR's registry enforces on a manifest PUT.
// They compile on first use: the credential helper and `version` never validate names.
const (
	repositoryNameRE = `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
	tagRE            = `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
	accountRE        = `[0-9]{12}`
)

var patterns = sync.OnceValue(func() struct{ repository, tag, account *regexp.Regexp } {
	return struct{ repository, tag, account *regexp.Regexp }{
		regexp.MustCompile(`^(?:` + repositoryNameRE + `)$`),
		regexp.MustCompile(`^` + tagRE + `$`),
		regexp.MustCompile(`^` + accountRE + `$`),
	}
})

// CheckRepository refuses what CreateRepository would refuse, with one line naming flag.
func CheckRepository(flag, name string) error {
	if len(name) < 2 || len(name) > 256 || !patterns().repository.MatchString(name) {
		return fixable.New("%s %q is not a valid ECR repository name: use 2-256 lower-case letters and digits, separated by . _ __ or dashes, path parts joined by / (e.g. team/app)", flag, name)
	}
	return nil
}

// CheckTag refuses a tag that ECR's registry would refuse on a manifest PUT.
func CheckTag(flag, tag string) error {
	if len(tag) > 128 {
		return fixable.New("%s %.20q… is %d characters: tags are at most 128", flag, tag, len(tag))
	}
	if !patterns().tag.MatchString(tag) {
		return fixable.New("%s %q is not a valid tag: letters, digits, _ . - (not starting with . or -), at most 128 characters", flag, tag)
	}
	return nil
}

// IsAccount reports whether s is a 12-digit AWS account ID.
func IsAccount(s string) bool { return patterns().account.MatchString(s) }

// CheckAccount refuses anything but a 12-digit account ID.
func CheckAccount(flag, s string) error {
	if !IsAccount(s) {
		return fixable.New("%s %q is not a 12-digit AWS account ID", flag, s)
	}
	return nil
}

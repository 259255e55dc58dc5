package federate

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

var sessionNameBad = regexp.MustCompile(`[^\w+=,.@-]+`)

// SessionName derives the role session name from the CI context, so CloudTrail shows which run pushed:
// GitHub repository + run id + attempt, Cloud Build's build id, else ecrpush-<unix time>. The result
// always satisfies STS's [\w+=,.@-]{2,64}.
func SessionName(getenv func(string) string) string {
	var name string
	switch {
	case getenv("GITHUB_REPOSITORY") != "" && getenv("GITHUB_RUN_ID") != "":
		name = "gh-" + strings.ReplaceAll(getenv("GITHUB_REPOSITORY"), "/", "-") + "-" + getenv("GITHUB_RUN_ID")
		if a := getenv("GITHUB_RUN_ATTEMPT"); a != "" {
			name += "-" + a
		}
	case getenv("BUILD_ID") != "":
		name = "gcb-" + getenv("BUILD_ID")
	default:
		name = "ecrpush-" + strconv.FormatInt(time.Now().Unix(), 10)
	}
	return SanitizeSessionName(name)
}

// SanitizeSessionName maps anything to a valid role session name, keeping the end (run ids are the
// distinguishing part) when it must shorten.
func SanitizeSessionName(s string) string {
	s = sessionNameBad.ReplaceAllString(s, "-")
	if len(s) > 64 {
		s = s[len(s)-64:]
	}
	for len(s) < 2 {
		s += "-"
	}
	return s
}

package sts

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ecrpush/ecrpush/sandbox/world"
)

// Constraints from the STS model (botocore sts/2011-06-15/service-2.json).
var (
	sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]*$`)
	// roleARNPattern is a role ARN in the aws partition; AWS accepts paths before the name.
	roleARNPattern = regexp.MustCompile(`^arn:aws:iam::(\d{12}):role/(?:[\x21-\x7e]+/)?[\w+=,.@-]{1,64}$`)
)

const (
	minDuration     = 900
	maxDuration     = 43200
	defaultDuration = time.Hour
	chainedMax      = time.Hour
)

// common holds the parameters AssumeRole and AssumeRoleWithWebIdentity share.
type common struct {
	roleARN     string
	sessionName string
	duration    time.Duration // 0 when not given
}

// validateCommon checks RoleArn, RoleSessionName and DurationSeconds against the model's
// constraints and appends every failure to v, in the order AWS reports them.
func validateCommon(r *request, v *violations) common {
	var c common
	arn, ok := r.param("RoleArn")
	switch n := utf8.RuneCountInString(arn); {
	case !ok:
		v.null("roleArn")
	case n < 20:
		v.add("roleArn", arn, false, "Member must have length greater than or equal to 20")
	case n > 2048:
		v.add("roleArn", arn, false, "Member must have length less than or equal to 2048")
	}
	c.roleARN = arn

	name, ok := r.param("RoleSessionName")
	switch n := utf8.RuneCountInString(name); {
	case !ok:
		v.null("roleSessionName")
	default:
		if n < 2 {
			v.add("roleSessionName", name, false, "Member must have length greater than or equal to 2")
		}
		if n > 64 {
			v.add("roleSessionName", name, false, "Member must have length less than or equal to 64")
		}
		if !sessionNamePattern.MatchString(name) {
			v.add("roleSessionName", name, false, `Member must satisfy regular expression pattern: [\w+=,.@-]*`)
		}
	}
	c.sessionName = name

	if ds, ok := r.param("DurationSeconds"); ok {
		n, err := strconv.ParseInt(ds, 10, 32)
		switch {
		case err != nil:
			v.add("durationSeconds", ds, false, "Member must be a valid integer")
		case n < minDuration:
			v.add("durationSeconds", ds, false, fmt.Sprintf("Member must have value greater than or equal to %d", minDuration))
		case n > maxDuration:
			v.add("durationSeconds", ds, false, fmt.Sprintf("Member must have value less than or equal to %d", maxDuration))
		default:
			c.duration = time.Duration(n) * time.Second
		}
	}
	return c
}

// checkARN is the semantic check after the model constraints: the ARN must name a role.
func checkARN(arn string) *apiError {
	if !roleARNPattern.MatchString(arn) {
		return errValidation(msgInvalidARN)
	}
	return nil
}

// sessionDuration picks the credential lifetime for role: the request's (or the default),
// refused above the role's MaxSessionDuration or, for chained sessions, above one hour, then
// capped by the world's CredentialLifetime (the sandbox's short-lived credential knob).
func sessionDuration(w *world.World, role *world.Role, requested time.Duration, chained bool) (time.Duration, *apiError) {
	d := requested
	if d == 0 {
		d = defaultDuration
	}
	if chained && d > chainedMax {
		return 0, errValidation(msgChaining)
	}
	limit := role.MaxSessionDuration
	if limit == 0 {
		limit = time.Hour
	}
	if d > limit {
		return 0, errValidation(msgMaxSession)
	}
	if w.CredentialLifetime > 0 && d > w.CredentialLifetime {
		d = w.CredentialLifetime
	}
	return d, nil
}

package sts

import (
	"fmt"
	"net/http"
	"strings"
)

// apiError is an STS error as it goes on the wire: code, message and HTTP status.
type apiError struct {
	Code    string
	Message string
	Status  int
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// errType is the ErrorResponse Type: AWS blames the sender for 4xx and itself for 5xx.
func (e *apiError) errType() string {
	if e.Status >= 500 {
		return "Receiver"
	}
	return "Sender"
}

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...), Status: status}
}

// The errors STS returns, named as AWS names them (botocore's sts model and live responses).
func errValidation(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "ValidationError", format, args...)
}

func errInvalidIdentityToken(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "InvalidIdentityToken", format, args...)
}

func errAccessDenied(format string, args ...any) *apiError {
	return newError(http.StatusForbidden, "AccessDenied", format, args...)
}

func errInvalidAction(action, version string) *apiError {
	return newError(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", action, version)
}

func errInternal() *apiError {
	return newError(http.StatusInternalServerError, "InternalFailure",
		"The request processing has failed because of an unknown error, exception or failure.")
}

// Messages AWS sends verbatim; tests and users grep for them.
const (
	msgVerificationKey = "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements"
	msgNotJWT          = "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)"
	msgIDPUnreachable  = "The request could not be fulfilled because the identity provider (IDP) that was asked to verify the incoming identity token could not be reached."
	msgIncorrectAud    = "Incorrect token audience"
	msgChaining        = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
	msgMaxSession      = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
	msgInvalidARN      = "Request ARN is invalid"
	msgNotAuthorizedWI = "Not authorized to perform sts:AssumeRoleWithWebIdentity"
)

// violations collects the model-level constraint failures of one request, which AWS reports
// together as "N validation error(s) detected: ...; ...".
type violations []string

// add records that value at member (the lower-camel member name) failed constraint.
// Sensitive values (tokens) are not echoed, as AWS does not echo them.
func (v *violations) add(member, value string, sensitive bool, constraint string) {
	if sensitive {
		*v = append(*v, fmt.Sprintf("Value at '%s' failed to satisfy constraint: %s", member, constraint))
		return
	}
	*v = append(*v, fmt.Sprintf("Value '%s' at '%s' failed to satisfy constraint: %s", value, member, constraint))
}

func (v *violations) null(member string) {
	*v = append(*v, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", member))
}

func (v violations) err() *apiError {
	switch len(v) {
	case 0:
		return nil
	case 1:
		return errValidation("1 validation error detected: %s", v[0])
	default:
		return errValidation("%d validation errors detected: %s", len(v), strings.Join(v, "; "))
	}
}

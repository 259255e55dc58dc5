package ecr

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// apiError is an ECR API (JSON 1.1) error: HTTP status, __type and message.
type apiError struct {
	Status  int
	Type    string
	Message string
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

func newAPIError(typ, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// The ECR exception names used by this package, as the service model spells them.
const (
	excAccessDenied            = "AccessDeniedException"
	excUnrecognizedClient      = "UnrecognizedClientException"
	excExpiredToken            = "ExpiredTokenException"
	excUnknownOperation        = "UnknownOperationException"
	excSerialization           = "SerializationException"
	excInvalidParameter        = "InvalidParameterException"
	excInvalidTagParameter     = "InvalidTagParameterException"
	excTooManyTags             = "TooManyTagsException"
	excRepositoryNotFound      = "RepositoryNotFoundException"
	excRepositoryExists        = "RepositoryAlreadyExistsException"
	excImageNotFound           = "ImageNotFoundException"
	excImageAlreadyExists      = "ImageAlreadyExistsException"
	excImageTagAlreadyExists   = "ImageTagAlreadyExistsException"
	excImageDigestMismatch     = "ImageDigestDoesNotMatchException"
	excLayersNotFound          = "LayersNotFoundException"
	excReferencedImages        = "ReferencedImagesNotFoundException"
	excRegistryPolicyNotFound  = "RegistryPolicyNotFoundException"
	excServer                  = "ServerException"
	excLimitExceeded           = "LimitExceededException"
	excTemplateExists          = "TemplateAlreadyExistsException"
	excTemplateNotFound        = "TemplateNotFoundException"
	excBackfillInProgress      = "ReplicationBackfillInProgressException"
	excBackfillInvalidStatus   = "ReplicationBackfillInvalidStatusException"
	excBackfillNotFound        = "ReplicationBackfillNotFoundException"
	excStorageClassUnsupported = "ImageStorageClassUpdateNotSupportedException"
	excLifecyclePolicyNotFound = "LifecyclePolicyNotFoundException"
)

// invalidParam reproduces ECR's model-validation wording.
func invalidParam(field, constraint string) *apiError {
	return newAPIError(excInvalidParameter, "Invalid parameter at '%s' failed to satisfy constraint: '%s'", field, constraint)
}

func repoNotFound(name, registryID string) *apiError {
	return newAPIError(excRepositoryNotFound,
		"The repository with name '%s' does not exist in the registry with id '%s'", name, registryID)
}

func imageNotFound(id ImageIdentifier, repo, registryID string) *apiError {
	return newAPIError(excImageNotFound,
		"The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
		nullIfEmpty(id.ImageDigest), nullIfEmpty(id.ImageTag), repo, registryID)
}

func nullIfEmpty(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// accessDenied is IAM's denial message; resourceBased picks the cross-account wording.
func accessDenied(callerARN, action, resource string, resourceBased bool) string {
	kind := "identity-based"
	if resourceBased {
		kind = "resource-based"
	}
	return fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s because no %s policy allows the %s action",
		callerARN, action, resource, kind, action)
}

func writeAPIError(w http.ResponseWriter, requestID string, e *apiError) {
	body, _ := json.Marshal(map[string]string{"__type": e.Type, "message": e.Message})
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("x-amzn-RequestId", requestID)
	h.Set("X-Amzn-ErrorType", e.Type)
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// regError is an OCI distribution error as the registry answers it.
type regError struct {
	Status  int
	Code    string
	Message string
}

func (e *regError) Error() string { return e.Code + ": " + e.Message }

func newRegError(status int, code, format string, args ...any) *regError {
	return &regError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *regError) write(w http.ResponseWriter, r *http.Request) {
	body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": e.Code, "message": e.Message}}})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

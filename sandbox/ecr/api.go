package ecr

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/ecrpush/ecrpush/sandbox/sigv4"
	"github.com/ecrpush/ecrpush/sandbox/world"
)

const (
	targetPrefix = "AmazonEC2ContainerRegistry_V20150921."
	// maxAPIBody bounds a request body: a 4 MiB manifest, JSON-escaped, fits.
	maxAPIBody = 16 << 20
)

// call is one verified ECR API request.
type call struct {
	s         *Service
	sess      *world.Session
	region    string
	requestID string
	op        string
	body      []byte
}

type opFunc func(c *call) (any, *apiError)

func (s *Service) ops() map[string]opFunc {
	return map[string]opFunc{
		"GetAuthorizationToken":          opGetAuthorizationToken,
		"CreateRepository":               opCreateRepository,
		"DescribeRepositories":           opDescribeRepositories,
		"PutImageTagMutability":          opPutImageTagMutability,
		"DescribeImages":                 opDescribeImages,
		"BatchGetImage":                  opBatchGetImage,
		"PutImage":                       opPutImage,
		"BatchDeleteImage":               opBatchDeleteImage,
		"DescribeImageReplicationStatus": opDescribeImageReplicationStatus,
		"DescribeRegistry":               opDescribeRegistry,
		"PutReplicationConfiguration":    opPutReplicationConfiguration,
		"GetRegistryPolicy":              opGetRegistryPolicy,
		"PutRegistryPolicy":              opPutRegistryPolicy,
		"DeleteRegistryPolicy":           opDeleteRegistryPolicy,

		"StartReplicationBackfill":            opStartReplicationBackfill,
		"ListReplicationBackfills":            opListReplicationBackfills,
		"DescribeReplicationBackfillResults":  opDescribeReplicationBackfillResults,
		"StopReplicationBackfill":             opStopReplicationBackfill,
		"CreateRepositoryCreationTemplate":    opCreateRepositoryCreationTemplate,
		"UpdateRepositoryCreationTemplate":    opUpdateRepositoryCreationTemplate,
		"DeleteRepositoryCreationTemplate":    opDeleteRepositoryCreationTemplate,
		"DescribeRepositoryCreationTemplates": opDescribeRepositoryCreationTemplates,
		"UpdateImageStorageClass":             opUpdateImageStorageClass,
		"PutLifecyclePolicy":                  opPutLifecyclePolicy,
		"GetLifecyclePolicy":                  opGetLifecyclePolicy,
		"ListTagsForResource":                 opListTagsForResource,
	}
}

// APIHandler serves the ECR API (AWS JSON 1.1) for every account and region: the region is
// the one the request is signed for, the account the caller's.
func (s *Service) APIHandler() http.Handler {
	ops := supplyChainOps(s.ops())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqID := randomUUID()
		aerr := s.serveAPI(w, r, reqID, ops)
		if aerr != nil {
			s.log.Info("ecr api error", "request_id", reqID, "target", r.Header.Get("X-Amz-Target"), "code", aerr.Type)
			writeAPIError(w, reqID, aerr)
		}
	})
}

func (s *Service) serveAPI(w http.ResponseWriter, r *http.Request, reqID string, ops map[string]opFunc) *apiError {
	if r.Method != http.MethodPost {
		return &apiError{Status: http.StatusNotFound, Type: excUnknownOperation, Message: "Only POST is supported"}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAPIBody+1))
	if err != nil {
		return newAPIError(excSerialization, "failed to read request body")
	}
	if len(body) > maxAPIBody {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: excSerialization, Message: "Request body too large"}
	}
	scope, err := sigv4.Verify(r, body, "ecr", s.lookupSecret)
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return &apiError{Status: se.Status, Type: se.Code, Message: se.Message}
		}
		return &apiError{Status: http.StatusForbidden, Type: "InvalidSignatureException", Message: err.Error()}
	}
	sess, err := s.w.Lookup(scope.AccessKeyID)
	if err != nil {
		return lookupError(err)
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, targetPrefix)
	fn := ops[op]
	if !ok || fn == nil {
		return newAPIError(excUnknownOperation, "")
	}
	c := &call{s: s, sess: sess, region: scope.Region, requestID: reqID, op: op, body: body}
	out, aerr := fn(c)
	if aerr != nil {
		return aerr
	}
	resp, err := json.Marshal(out)
	if err != nil {
		return &apiError{Status: http.StatusInternalServerError, Type: excServer, Message: "failed to encode response"}
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("Content-Length", strconv.Itoa(len(resp)))
	h.Set("x-amzn-RequestId", reqID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
	s.log.Debug("ecr api", "request_id", reqID, "op", op, "caller", sess.ARN(), "region", scope.Region)
	return nil
}

// lookupSecret adapts world.Lookup to the verifier, with ECR's error codes.
func (s *Service) lookupSecret(accessKeyID string) (sigv4.Secret, error) {
	sess, err := s.w.Lookup(accessKeyID)
	if err != nil {
		ae := lookupError(err)
		return sigv4.Secret{}, &sigv4.Error{Code: ae.Type, Message: ae.Message, Status: ae.Status}
	}
	return sigv4.Secret{SecretAccessKey: sess.SecretAccessKey, SessionToken: sess.SessionToken}, nil
}

func lookupError(err error) *apiError {
	if errors.Is(err, world.ErrExpired) {
		return newAPIError(excExpiredToken, "The security token included in the request is expired")
	}
	return newAPIError(excUnrecognizedClient, "The security token included in the request is invalid.")
}

// decode reads the JSON input; an empty body is an empty structure.
func (c *call) decode(v any) *apiError {
	b := bytes.TrimSpace(c.body)
	if len(b) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return newAPIError(excSerialization, "%s", serializationMessage(err))
	}
	return nil
}

func serializationMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "Unexpected value type in payload at '" + te.Field + "'"
	}
	return "Malformed JSON payload"
}

// action is the IAM action of the current operation.
func (c *call) action() string { return "ecr:" + c.op }

// authorize checks the caller's identity policies.
func (c *call) authorize(action, resource string) *apiError {
	if !c.s.allowed(c.sess, action, resource, c.region) {
		return newAPIError(excAccessDenied, "%s", accessDenied(c.sess.ARN(), action, resource, false))
	}
	return nil
}

// ownRegistry is the caller's registry in the signed region, for registry-level operations
// (authorized on resource "*").
func (c *call) ownRegistry() (*registry, *apiError) {
	if aerr := c.authorize(c.action(), "*"); aerr != nil {
		return nil, aerr
	}
	return c.registryFor(c.sess.Account)
}

func (c *call) registryFor(account string) (*registry, *apiError) {
	rg, ok := c.s.registry(RegistryID{Account: account, Region: c.region})
	if !ok {
		return nil, newAPIError(excInvalidParameter,
			"The sandbox runs no registry for account '%s' in region '%s'", account, c.region)
	}
	return rg, nil
}

// repoAccess validates registryId and repositoryName, authorizes the operation on the
// repository ARN and returns the registry. A registryId naming another account is denied:
// the sandbox has no repository policies that could grant cross-account access.
func (c *call) repoAccess(registryID, repo string) (*registry, *apiError) {
	if aerr := validateRegistryID("registryId", registryID); aerr != nil {
		return nil, aerr
	}
	if aerr := validateRepositoryName("repositoryName", repo); aerr != nil {
		return nil, aerr
	}
	account := c.sess.Account
	if registryID != "" {
		account = registryID
	}
	resource := "arn:aws:ecr:" + c.region + ":" + account + ":repository/" + repo
	if aerr := c.authorize(c.action(), resource); aerr != nil {
		return nil, aerr
	}
	if account != c.sess.Account {
		return nil, newAPIError(excAccessDenied, "%s", accessDenied(c.sess.ARN(), c.action(), resource, true))
	}
	return c.registryFor(account)
}

package sts

import (
	"errors"
	"net/http"

	"github.com/ecrpush/ecrpush/sandbox/sigv4"
	"github.com/ecrpush/ecrpush/sandbox/world"
)

// signingName is the SigV4 service name STS requests are signed for. The region in the
// credential scope is not checked against anything: STS here is one global endpoint.
const signingName = "sts"

// STS's wording of authentication failures (its codes differ from ECR's JSON services).
var (
	errInvalidClientTokenID = &sigv4.Error{Code: "InvalidClientTokenId",
		Message: "The security token included in the request is invalid.", Status: http.StatusForbidden}
	errExpiredToken = &sigv4.Error{Code: "ExpiredToken",
		Message: "The security token included in the request is expired", Status: http.StatusBadRequest}
)

// authenticate verifies the request's signature and returns the live session that signed it.
func (s *Server) authenticate(r *request) (*world.Session, *apiError) {
	if r.http.Header.Get("Authorization") == "" {
		return nil, newError(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token")
	}
	var signer *world.Session
	lookup := func(accessKeyID string) (sigv4.Secret, error) {
		sess, err := s.session(accessKeyID)
		if err != nil {
			return sigv4.Secret{}, err
		}
		signer = sess
		return sigv4.Secret{SecretAccessKey: sess.SecretAccessKey, SessionToken: sess.SessionToken}, nil
	}
	_, err := sigv4.Verify(r.http, r.body, signingName, lookup)
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return nil, &apiError{Code: se.Code, Message: se.Message, Status: se.Status}
		}
		s.log.Error("sts signature verification failed unexpectedly", "error", err)
		return nil, errInternal()
	}
	if signer == nil {
		// Verify succeeded without asking for the key: never trust that.
		return nil, &apiError{Code: errInvalidClientTokenID.Code, Message: errInvalidClientTokenID.Message, Status: errInvalidClientTokenID.Status}
	}
	return signer, nil
}

// session looks an access key up in the world and checks its expiry on the server's clock
// (which WithNow may have moved past the world's).
func (s *Server) session(accessKeyID string) (*world.Session, error) {
	sess, err := s.world.Lookup(accessKeyID)
	switch {
	case errors.Is(err, world.ErrUnknownKey):
		return nil, errInvalidClientTokenID
	case errors.Is(err, world.ErrExpired):
		return nil, errExpiredToken
	case err != nil:
		return nil, err
	}
	if sess.SessionToken != "" && !s.now().Before(sess.Expiration) {
		return nil, errExpiredToken
	}
	return sess, nil
}

package sts

import "context"

// getCallerIdentity needs no permission, as in AWS: a valid signature is enough.
func (s *Server) getCallerIdentity(_ context.Context, r *request) (any, *apiError) {
	caller, aerr := s.authenticate(r)
	if aerr != nil {
		return nil, aerr
	}
	return callerIdentityResponse{
		Xmlns:    namespace,
		Result:   callerIdentityResult{Arn: caller.ARN(), UserID: caller.UserID(), Account: caller.Account},
		Metadata: responseMetadata{RequestID: r.id},
	}, nil
}

package oidc

import (
	"errors"
)

// Verification failures. STS maps them: ErrInvalidToken → InvalidIdentityToken,
// ErrExpired → ExpiredTokenException, ErrIDPCommunication → IDPCommunicationError.
var (
	ErrInvalidToken     = errors.New("invalid identity token")
	ErrExpired          = errors.New("token is expired")
	ErrIDPCommunication = errors.New("could not reach the identity provider")
)

// Claims are a verified token's claims. JSON numbers are float64, as encoding/json decodes them.
type Claims map[string]any

// VerifyError is what Verify returns: Kind is one of the Err* sentinels above (errors.Is
// works through Unwrap) and Reason a short human explanation, so STS can put the reason in
// its own AWS-style message without the sentinel's prefix.
type VerifyError struct {
	Kind   error
	Reason string
}

func (e *VerifyError) Error() string { return e.Kind.Error() + ": " + e.Reason }

// Unwrap returns the sentinel.
func (e *VerifyError) Unwrap() error { return e.Kind }

// Reason returns the short reason of a Verify error, or err.Error() for any other error.
func Reason(err error) string {
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

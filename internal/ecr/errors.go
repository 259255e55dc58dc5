package ecr

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Code is the AWS error code of err ("" when err is not an API error).
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Message is the AWS error message of err, or err's text.
func Message(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return err.Error()
}

// credentialCodes are the codes AWS answers for credentials it does not accept (expired, unknown,
// badly signed): the user must refresh or fix them, a retry will not help.
var credentialCodes = map[string]bool{
	"UnrecognizedClientException": true, "InvalidSignatureException": true, "ExpiredTokenException": true,
	"InvalidClientTokenId": true, "SignatureDoesNotMatch": true,
}

// APIError turns an ECR API error into the product's error: credential problems and denials are fixable
// (exit 2) and say what to change; anything else stays a cloud failure (exit 1). what names the call.
func APIError(err error, what string) error {
	code := Code(err)
	switch {
	case credentialCodes[code]:
		return fixable.Wrap(err, fmt.Sprintf("%s: AWS rejected the credentials (%s): refresh or fix them", what, Message(err)))
	case code == "AccessDeniedException":
		return fixable.Wrap(err, fmt.Sprintf("%s: access denied (%s): grant it to the role in its permissions policy", what, Message(err)))
	}
	return fmt.Errorf("%s: %w", what, err)
}

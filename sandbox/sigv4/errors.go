package sigv4

import "net/http"

// kind is a class of authentication failure; its code and status depend on the protocol.
type kind int

const (
	kindMissing      kind = iota // no Authorization header
	kindIncomplete               // header present but not a well-formed SigV4 header
	kindSignature                // signature, scope or clock check failed
	kindInvalidToken             // unknown key or wrong/missing session token
)

type code struct {
	code   string
	status int
}

// Query-protocol services (STS, IAM) and JSON-protocol services (ECR and the rest) name
// the same failures differently: SignatureDoesNotMatch (403) vs InvalidSignatureException
// (400), InvalidClientTokenId (403) vs UnrecognizedClientException (400).
var (
	queryCodes = map[kind]code{
		kindMissing:      {"MissingAuthenticationToken", http.StatusForbidden},
		kindIncomplete:   {"IncompleteSignature", http.StatusBadRequest},
		kindSignature:    {"SignatureDoesNotMatch", http.StatusForbidden},
		kindInvalidToken: {"InvalidClientTokenId", http.StatusForbidden},
	}
	jsonCodes = map[kind]code{
		kindMissing:      {"MissingAuthenticationTokenException", http.StatusBadRequest},
		kindIncomplete:   {"IncompleteSignatureException", http.StatusBadRequest},
		kindSignature:    {"InvalidSignatureException", http.StatusBadRequest},
		kindInvalidToken: {"UnrecognizedClientException", http.StatusBadRequest},
	}
)

// QueryProtocol reports whether service speaks the AWS query protocol (XML errors, the
// query spelling of error codes); the others speak JSON.
func QueryProtocol(service string) bool { return service == "sts" || service == "iam" }

func newError(service string, k kind, msg string) *Error {
	c := jsonCodes[k]
	if QueryProtocol(service) {
		c = queryCodes[k]
	}
	return &Error{Code: c.code, Message: msg, Status: c.status}
}

const (
	msgMismatch = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgInvalidToken = "The security token included in the request is invalid."
)

package sigv4

import (
	"net/http"
	"time"
)

// Secret is what the verifier needs to know about an access key.
type Secret struct {
	SecretAccessKey string
	SessionToken    string // "" for long-term keys
}

// Lookup returns the secret for an access key id, or an *Error (UnrecognizedClientException /
// InvalidClientTokenId, ExpiredTokenException) when it is unknown or expired.
type Lookup func(accessKeyID string) (Secret, error)

// Error is an AWS-style authentication failure.
type Error struct {
	Code    string // AWS error code
	Message string
	Status  int // HTTP status
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Scope is the parsed credential scope of a verified request.
type Scope struct {
	AccessKeyID string
	Date        string // yyyymmdd
	Region      string
	Service     string
}

// MaxSkew is how far the request time (X-Amz-Date) may be from the server's clock, as in AWS.
const MaxSkew = 15 * time.Minute

// Verifier verifies requests against a clock. The zero value uses time.Now and MaxSkew.
type Verifier struct {
	Now     func() time.Time // nil: time.Now
	MaxSkew time.Duration    // 0: MaxSkew
}

// Verify checks r's SigV4 Authorization header against the secret returned by lookup,
// recomputing the signature with aws-sdk-go-v2's signer. body is the full request body
// (already read); r.Body is not consumed. service is the expected signing name ("sts", "ecr").
// On failure the error is an *Error; the Scope is returned as far as it could be parsed.
func Verify(r *http.Request, body []byte, service string, lookup Lookup) (Scope, error) {
	return Verifier{}.Verify(r, body, service, lookup)
}

// Package sigv4 verifies AWS Signature Version 4 Authorization headers on the sandbox's
// STS and ECR API endpoints the way AWS does: it parses the header and credential scope,
// asks the caller for the access key's secret, checks the session token, the clock skew
// and the scope, then recomputes the signature with aws-sdk-go-v2's own signer and
// compares in constant time. Failures are *Error values carrying the AWS error code and
// HTTP status of the service's protocol (query for sts, JSON for the others). It never
// stores credentials, never reads r.Body, and never logs secrets or signatures.
package sigv4

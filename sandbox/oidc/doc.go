// Package oidc owns the sandbox's identity providers and the check of what they issue: an
// OIDC issuer (RSA keys with rotation, discovery document, JWKS, RS256 signing, and forged
// tokens for negative tests), a Verifier that fetches discovery and JWKS over HTTP exactly
// like STS does, the GitHub Actions ID-token service behind ACTIONS_ID_TOKEN_REQUEST_URL,
// and Google's GCE metadata server and IAM Credentials generateIdToken. It never decides who
// may assume what: trust policies, audiences and AWS error codes belong to sandbox/sts.
package oidc

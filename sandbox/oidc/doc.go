// Package oidc owns the sandbox's identity providers and the check of what they issue: an
// OIDC issuer (RSA keys with rotation, discovery document, JWKS, RS256 signing, and forged
// tokens for negative tests), a Verifier that fetches discovery and JWKS over HTTP exactly
// like STS does, the GitHub Actions ID-token service behind ACTIONS_ID_TOKEN_REQUEST_URL,
// Google's GCE metadata server and IAM Credentials generateIdToken, and Google's STS token
// exchange for AWS-sourced workload identity federation (it verifies the signed
// GetCallerIdentity with AWS STS), with a Google-token check that turns any registry into an
// Artifact Registry stand-in. It never decides who may assume what: trust policies, audiences
// and AWS error codes belong to sandbox/sts.
package oidc

// Package oidc owns the sandbox's identity providers and the check of what they issue: an
// OIDC issuer (RSA keys with rotation, discovery document, JWKS, RS256 signing, and forged
// tokens for negative tests), a Verifier that fetches discovery and JWKS over HTTP exactly
// like STS does, the GitHub Actions ID-token service behind ACTIONS_ID_TOKEN_REQUEST_URL,
// Google's GCE metadata server and IAM Credentials generateIdToken, and Google's STS token
// exchange for AWS-sourced workload identity federation (it verifies the signed
// GetCallerIdentity with AWS STS) with IAM Credentials generateAccessToken for impersonation,
// and a Google-token check that turns any registry into an Artifact Registry stand-in. It never
// decides who may assume what: trust policies, audiences and AWS error codes belong to sandbox/sts.
//
// Where the behaviour comes from:
//   - GitHub subjects: GitHub's "OpenID Connect reference" — the default template
//     repo:OWNER/REPO:CONTEXT (environment, then pull_request, then ref), immutable subject claims
//     repo:OWNER@OWNER_ID/REPO@REPO_ID:… (github.com only, never GitHub Enterprise Server, whose
//     issuer is https://HOST/_services/token), custom templates (include_claim_keys, "repo" and
//     "context" standing for their parts), and "Any : within the metadata values will be replaced
//     with %3A in the subject claim". Events such as pull_request_target carry their ref.
//   - GitHub's 403 "Can't issue ID_TOKEN for job in 'Pending' state.": the message is GitHub's as
//     reported in actions/runner#1320 and configure-aws-credentials#469; the JSON envelope around it is
//     assumed (Azure DevOps style).
//   - Google STS: the STS v1 token reference (scope is required when exchanging an external credential);
//     the AWS subject token as golang.org/x/oauth2 (target header signed) and google-auth-python
//     (target header added after signing) build it — Google accepts both; a credential scope whose region
//     is not the STS endpoint's is refused as AWS refuses it ("Credential should be scoped to a valid
//     region"); error wordings not quoted from Google are assumed.
//   - IAM Credentials generateAccessToken: the REST reference's request ({scope, lifetime, delegates})
//     and response ({accessToken, expireTime}); permission errors in the shape of generateIdToken's.
package oidc

// Package claims reads the (unverified) claims of an OIDC ID token in the terms AWS evaluates them:
// the IAM OIDC provider a token belongs to (named, as IAM names providers, by its issuer URL without
// the scheme: token.actions.githubusercontent.com, token.actions.githubusercontent.com/SLUG for a
// GitHub Enterprise Cloud enterprise issuer, HOST/_services/token for GitHub Enterprise Server), the
// condition keys STS fills from it, and GitHub's subject claim grammar — the default template
// (repo:OWNER/REPO:CONTEXT), the immutable one (repo:OWNER@OWNER_ID/REPO@REPO_ID:CONTEXT) and custom
// templates (include_claim_keys), with ':' in values written %3A as GitHub writes it. Sources: GitHub's
// "OpenID Connect reference" (subject claims, immutable subject claims, filtering for metadata containing
// ':'), GitHub's REST reference for the OIDC customization endpoints, and AWS's IAM User Guide on OIDC
// condition keys. It never verifies a signature (that is STS's business) and never prints a token.
package claims

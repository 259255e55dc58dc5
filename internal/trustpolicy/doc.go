// Package trustpolicy prints and explains the IAM policies a CI identity needs: the role's trust policy
// for GitHub Actions tokens (github.com, a GitHub Enterprise Cloud enterprise issuer, GitHub Enterprise
// Server; default, immutable and custom subject templates; branches, tags, environments, pull requests)
// or a Google service account, the push and replication permissions, in JSON or Terraform, in any
// partition. It refuses scopes that would print a policy that never matches, says what a wildcard admits,
// warns where GitHub's subject cannot tell events apart, and explains a token against any trust policy
// (including a role's real one from aws iam get-role) with internal/iam — the evaluator the sandbox's STS
// uses. It never calls AWS and never prints a token. internal/federate gets credentials; this package
// only says which policy admits them.
package trustpolicy

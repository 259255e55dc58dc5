// Package iam parses and evaluates IAM policy documents (identity, trust and resource
// policies) the way AWS does: strict parsing that rejects what IAM rejects, explicit Deny
// over Allow, case-insensitive actions and condition keys, case-sensitive resources and
// string conditions, the full condition operator family with IfExists and the
// ForAnyValue/ForAllValues set operators. It never looks up accounts, roles or
// credentials and never speaks HTTP: callers build the Request (principal, action,
// resource, condition context) from their own state.
package iam

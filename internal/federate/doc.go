// Package federate turns the identity a CI job already has into AWS credentials: it detects where it
// runs (GitHub Actions, Cloud Build / GCE, a web-identity token file, or a laptop), fetches a fresh OIDC
// ID token there on every exchange, calls STS AssumeRoleWithWebIdentity through aws-sdk-go-v2 with its
// own bounded retry (fresh token per attempt; denials fail at once), and hands back an aws.Config whose
// credentials refresh before they expire. When AWS denies a token it explains why in terms of the
// condition keys AWS evaluated. It also prints trust policies that admit exactly the intended tokens.
// It never pushes images and never prints a token or a key.
package federate

// Package sandbox is a strict local stand-in for the AWS and CI services ecrpush talks to: STS, the ECR
// API, one ECR registry per account and region with native replication, GitHub's OIDC token service, the
// GCE metadata server and IAM Credentials. Start builds one from a Config (DefaultConfig: ci, prod and
// staging accounts in two regions) on random 127.0.0.1 ports, with a request log and seeded fault
// injection in front of every endpoint. Its sub-packages each own one service; this package only
// assembles them. It is what ecrpush's tests, `ecrpush demo` and `ecrpush sandbox` run on, so where AWS
// is strict it is strict: it never accepts what AWS would refuse.
package sandbox

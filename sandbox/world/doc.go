// Package world holds the sandbox's model of AWS identity: accounts, roles with their
// trust and identity policies, users, registry policies, and every credential STS has
// issued. STS writes to it and the ECR API reads from it; it never speaks HTTP itself.
package world

// Package sts is the sandbox's AWS Security Token Service: AssumeRoleWithWebIdentity,
// AssumeRole and GetCallerIdentity over the Query protocol, answering with the XML, error
// codes and HTTP statuses AWS sends. It verifies web identity tokens with an oidc.Verifier,
// request signatures with sigv4, and decides with the roles' trust and identity policies
// held in the world; it records every session it issues in the world. It never stores
// state of its own beyond its configuration, and never logs tokens or keys.
package sts

// Package sts is the sandbox's AWS Security Token Service: AssumeRoleWithWebIdentity,
// AssumeRole and GetCallerIdentity over the Query protocol, answering with the XML, error
// codes and HTTP statuses AWS sends. It verifies web identity tokens with an oidc.Verifier,
// request signatures with sigv4, and decides with the roles' trust and identity policies
// held in the world; it records every session it issues in the world. It never stores
// state of its own beyond its configuration, and never logs tokens or keys.
//
// Identity providers are named as IAM names them, by the issuer URL without its scheme, each its
// own provider with its own condition keys (github.com's, an enterprise issuer
// token.actions.githubusercontent.com/SLUG, a GitHub Enterprise Server HOST/_services/token);
// more can be added while it runs. SetVerificationKeyFailureRate injects AWS's intermittent
// InvalidIdentityToken "Couldn't retrieve verification key from your identity provider, please
// reference AssumeRoleWithWebIdentity documentation for requirements" (the message is AWS's
// verbatim; the AssumeRoleWithWebIdentity API reference says to get a new token and retry).
package sts

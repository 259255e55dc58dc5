// Package supplychain makes an image's supply chain travel with it: it selects which referrers
// (signatures, SBOMs, attestations — `--referrers`) are carried, pushes the ones a source holds after
// the image, copies them between registries (copy mode, sync), verifies that every destination holds
// what the ci registry holds (`--require-referrers`), waits for a signature in the ci registry and at
// every destination (`--require-signature`, including ECR managed signing's
// DescribeImageSigningStatus), and gates a push on ECR's scan findings (`--fail-on-severity`) with a
// summary for a terminal, a GitHub step summary and JSON.
//
// It never signs and never holds a key: signatures come from the user's signer or AWS Signer. It reads
// and writes registries only with the credentials it is given (each destination's own), every wait is
// bounded in time and in requests, and a requirement that is not met is a fixable error (exit 2) that
// says the image is pushed and what it lacks.
package supplychain

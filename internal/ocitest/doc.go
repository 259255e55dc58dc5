// Package ocitest builds the OCI content the supply-chain tests push: OCI 1.1 artifacts with an
// artifactType and a subject (signatures, SBOMs), image indexes with BuildKit-style attestation
// manifests, cosign tag-scheme signatures, images whose config carries a label, and OCI layouts
// holding all of them. It is test support: product code never imports it.
package ocitest

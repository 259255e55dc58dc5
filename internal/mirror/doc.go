// Package mirror copies third-party images (Docker Hub, GHCR, quay, Artifact Registry, any registry)
// into ECR repositories of the ci account, as listed in an images file: each source is mapped to a
// repository by a path rule ("mirror/{registry}/{path}") or renamed, resolved to a digest once and
// copied by that digest (all platforms with the index digest unchanged, or a platform filter), and
// skipped when ECR already holds the digest under every tag. After each image it hands the result
// to the caller's replication (the same replicate.Run push uses), and it records every source
// reference with its ECR URI@digest in a lock file, which a later run may pin to. It never writes to
// a source registry, never changes a manifest it copies whole, and never loads a layer into memory
// (push streams them).
package mirror

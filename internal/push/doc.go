// Package push copies one image or image index from any source — a Docker daemon, an OCI layout or
// archive, a docker-save archive, another registry — to ECR or any OCI registry: blobs in parallel
// and streamed from disk, HEAD before every upload, manifests only after their blobs and tags last,
// every tag resolved before anything is written so an immutable repository is never half-updated,
// and every tag read back after the push. It owns the Source, Artifact and Publisher types and the
// HTTP plumbing under go-containerregistry: one retrier (retry.go, transport.go) that alone decides
// whether a request is sent again — n sends at most, within a per-push budget of time in trouble,
// Retry-After honoured within it — and puts a deadline on every send's answer and a stall detector
// on every body; manifest rate limits; byte accounting per committed blob. It never holds an image
// in memory, never re-compresses a layer per destination, never logs a credential or a URL's
// query, and never talks to AWS except through the aws.Config it is given.
package push

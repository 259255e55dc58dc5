// Package pipeline owns the job every ecrpush command shares: identity → source → plan → writes →
// wait → report. The plan runs every read-only check for every destination (repository settings, tag
// conflicts on immutable repositories, the image's fitness for ECR, the merged replication
// configuration within ECR's limits, copy-mode credentials in each destination account) before the
// first write; the writes then go in an order where a late failure leaves the earlier ones harmless,
// and an error after a write names exactly what was written and how to undo it.
//
// Commands (internal/cli) parse and validate flags into a Job and render what comes back; they never
// call AWS or a registry themselves. The platform (GitHub, Cloud Build, terminal) is set up once, at
// the edge, and handed in through Env: every secret the pipeline obtains is masked through it before
// anything could print it.
package pipeline

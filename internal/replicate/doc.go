// Package replicate delivers a pushed image to other ECR registries (accounts and regions): natively,
// by merging a rule into the ci registry's replication configuration and waiting for ECR to report every
// destination COMPLETE, or by copying, pushing to every destination registry in parallel with per-account
// federated credentials while reading the source once. It owns destination parsing, the configuration
// merge (never dropping, reordering or rewriting another rule), the destination registry policies, the
// per-destination Status and its text and Markdown tables. It never loads images from a user's source
// (the caller hands it a push.Artifact), never widens a rule it did not create, and never writes a
// configuration or policy that ECR's limits would refuse.
package replicate

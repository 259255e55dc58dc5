// Package replicate delivers a pushed image to other ECR registries (accounts and regions), natively or by
// copying, and configures native replication safely.
//
// Configuration is planned before it is written: PlanConfigure reads the ci registry's replication
// configuration and, with each destination's credentials, its repository creation templates and registry
// policy, and computes the merged rule (MergeRule: a prefix joins the rule whose destinations are exactly
// the missing ones, else a new rule; no other rule is touched), the merged template for the settings asked
// (RepositorySettings; a template's existing settings are never changed) and the merged policies, all within
// ECR's limits. ConfigurePlan.Apply writes policies, then templates, then the rule, so a late failure
// leaves harmless writes, which its *ApplyError names with their undo.
//
// Replication waits (Wait) track the digest and each tag, which ECR replicates as separate events; an
// image that predates its rule is backfilled (one StartReplicationBackfill per destination); Verify reads
// every destination back with its own credentials and reports each tag (an immutable destination keeps a
// tag naming another image). Copy mode (Copy) pushes to every destination with per-account federated
// credentials while reading the source once, creating repositories with the caller's settings. Archived
// images are not pullable: EnsurePullable refuses them, or restores them when asked.
//
// ECR's failure codes are undocumented strings: they are reported verbatim with general guidance (Cause);
// the Failure* constants are ecrpush's own. The package never loads images from a user's source (the caller
// hands it a push.Artifact) and never writes a configuration, template or policy ECR's limits would refuse.
package replicate

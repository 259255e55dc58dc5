// Package ecr is the sandbox's Amazon ECR: the ECR API (AWS JSON 1.1, SigV4-verified, every
// operation authorized against the caller's IAM identity policies), one OCI distribution
// registry per account and region with ECR's rules in front (Basic auth with
// GetAuthorizationToken passwords, repositories that must exist, immutable tags, manifests
// whose blobs and children must already be in the repository, blobs on disk), and native
// replication driven by each registry's replicationConfiguration and the destination's
// registry policy. It reads identities and registry policies from sandbox/world and never
// issues AWS credentials, never speaks to the network beyond its own handlers, and never
// logs a password or a signature.
//
// Choices where ECR is undocumented or the sandbox differs, so tests know what to expect:
//   - The registry is a purpose-built distribution server, not ggcr's pkg/registry handler:
//     ggcr buffers whole uploads in memory and shares blobs across repositories. Blobs use
//     ggcr's disk layout (<dir>/blobs/sha256/<hex>), uploads stream to temp files with a
//     running sha256, and a blob is visible only in the repositories it was pushed,
//     mounted or replicated into.
//   - Registry auth: a missing/unknown password or one issued in another region → 401 DENIED
//     "Not Authorized" with a Basic challenge; an expired one → 401 DENIED "Your
//     authorization token has expired. Reauthenticate and try again."; another account's
//     registry → 403 DENIED. Then IAM (403 DENIED), then the repository (404 NAME_UNKNOWN).
//   - Immutable tags are never rewritten, not even with the digest they already name
//     (registry: 400 TAG_INVALID; PutImage: ImageTagAlreadyExistsException), as ECR does.
//   - An index whose children are missing → 400 MANIFEST_UNKNOWN; missing blobs → 400
//     MANIFEST_BLOB_UNKNOWN. imageSizeInBytes sums layers (not the config); an index sums
//     its children.
//   - Validation errors are InvalidParameterException with ECR's "Invalid parameter at
//     '<field>' failed to satisfy constraint: '<constraint>'" wording, including
//     PutReplicationConfiguration's (more than 10 rules, more than 25 unique destinations,
//     a destination equal to the source, filterType other than PREFIX_MATCH, bad filter).
//   - Identity policies are evaluated with aws:RequestedRegion, aws:PrincipalAccount and
//     aws:PrincipalArn in the request context, on the API and on the registry alike.
//   - Cross-account API calls (a registryId naming another account) are denied: the sandbox
//     has no repository policies. Blob mounting (Options.BlobMounting) is off by default,
//     as ECR's BLOB_MOUNTING account setting.
//   - Replication failure codes (ECR documents failureCode only as a string):
//     ReplicationAccessDenied (destination registry policy lacks ecr:ReplicateImage for the
//     source account's root), RepositoryCreationDenied (missing repository and no
//     ecr:CreateRepository), DestinationRegistryNotFound (not run by this sandbox),
//     ImageTagImmutable (the destination refuses to move the tag), SourceImageNotFound,
//     ReplicationQueueFull, InternalError. Replicated images are not replicated again.
package ecr

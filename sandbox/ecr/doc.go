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
//   - Replication failure codes: ECR documents failureCode only as "a string" and publishes no
//     values, so every code here is the sandbox's own (replication.go): ReplicationAccessDenied
//     (destination registry policy lacks ecr:ReplicateImage for the source account's root),
//     RepositoryCreationDenied (missing repository and no ecr:CreateRepository),
//     DestinationRegistryNotFound (not run by this sandbox), TemplateCustomRoleRequired (below),
//     SourceImageNotFound, ReplicationQueueFull, InternalError. Replicated images are not replicated
//     again.
//
// Replication, creation templates, backfill and archive (replication.go, templates.go, backfill.go,
// archive.go). [doc] = stated by AWS on the page named, [assumed] = the sandbox's choice.
//   - [doc] Each push is a replication event: the digest and then each tag are replicated separately
//     (EventBridge "ECR Replication Action" carries image-digest and image-tag; backfill counts "each
//     image and tag combination"), and "the majority of images replicate in less than 30 minutes"
//     (userguide/replication.html). [assumed] DescribeImageReplicationStatus by digest shows, per destination,
//     the state of the image's last event (it may read COMPLETE while a later tag's copy is still queued);
//     asked by tag, the state of that tag's own event where it had one.
//   - [doc] "If tag immutability is enabled on a repository and an image is replicated that uses the same
//     tag as an existing image, the image is replicated but won't contain the duplicated tag"
//     (replication.html, Considerations): the sandbox stores the image untagged and reports COMPLETE.
//   - [doc] Repositories replication creates take the settings of a repository creation template with
//     appliedFor REPLICATION, else ECR's defaults (MUTABLE, AES256, no policies)
//     (userguide/repository-creation-templates.html). Prefix semantics [doc]: "There is always an assumed
//     / applied to the end of the prefix" (prod covers prod/…, not prod itself; prod and prod/ are one
//     template here), ROOT applies where no other template does; the shapes, enums and lengths are the
//     SDK's (CreateRepositoryCreationTemplate etc.), the KMS key must be a full ARN in the registry's
//     Region and customRoleArn a role of the registry's own account [doc, SDK member docs].
//     [assumed] the template of the destination registry (where the repository is created) applies —
//     AWS does not say so in words; the longest matching prefix wins among nested templates; a
//     Describe for a prefix without a template leaves it out; validation errors are
//     InvalidParameterException; the lifecycle policy's rule grammar is only checked for
//     rulePriority/selection/action. [doc] a template with a KMS key or resource tags needs a custom role
//     (repository-creation-templates-create.html); [assumed] without one the replication FAILs with the
//     sandbox's code TemplateCustomRoleRequired. Templates have no scanning setting: such repositories
//     have scan on push off.
//   - [doc] Replication backfill (API reference StartReplicationBackfill, ListReplicationBackfills,
//     DescribeReplicationBackfillResults, StopReplicationBackfill; userguide/replication-backfill.html):
//     one destination per backfill, which must be in the replication configuration; only images that
//     match the current rules; statuses PREPARING → IN_PROGRESS → COMPLETE | FAILED, or STOPPING →
//     STOPPED (stopping only from PREPARING or IN_PROGRESS, else ReplicationBackfillInvalidStatusException;
//     STOPPED at once while PREPARING); one in progress per destination Region
//     (ReplicationBackfillInProgressException) and 10 per registry (LimitExceededException); progress
//     null while PREPARING; per-image results only once terminal; FAILED when 50% or more of at least
//     100 processed replications failed; each image and tag combination is one replication; list
//     maxResults 1–50 (25), results 1–1000 (100); terminal backfills are listed for 90 days; unknown
//     ids → ReplicationBackfillNotFoundException. [assumed] a destination outside the configuration →
//     InvalidParameterException; PREPARING lasts ReplicationDelay; only ACTIVE images qualify and an
//     index's children travel with it; a backfill that processed everything ends COMPLETE even with
//     some failures (counted in its progress); backfill copies appear only in the backfill's results,
//     not in the image's DescribeImageReplicationStatus; the list is newest first.
//   - [doc] Archive (UpdateImageStorageClass; userguide/archive_restore_image.html, archive-image.md):
//     imageStatus ACTIVE | ARCHIVED | ACTIVATING; DescribeImages returns only ACTIVE images unless
//     filter.imageStatus says otherwise; pulling an archived image fails with 404; a restore
//     (targetStorageClass STANDARD) answers ACTIVATING and ends ACTIVE ("within 20 minutes"; here
//     Options.RestoreDelay), after which the image replicates like a new push; pushing the image again
//     also restores it. [assumed] the filter applies to imageIds as well; the 404 is MANIFEST_UNKNOWN;
//     BatchGetImage reports an archived image as ImageNotFound; only ACTIVE→ARCHIVE and
//     ARCHIVED→STANDARD are allowed (else ImageStorageClassUpdateNotSupportedException); archiving is
//     immediate and a re-push restores at once.
//   - Identity-policy resources: [assumed] the backfill and template operations are authorized on "*"
//     like the other registry-level operations (DescribeRegistry); UpdateImageStorageClass,
//     Put/GetLifecyclePolicy and ListTagsForResource on the repository ARN.
package ecr

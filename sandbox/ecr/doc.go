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
//   - Where ECR departs from the distribution spec, the registry does as ECR does:
//     an upload completed without any data → 400 BLOB_UPLOAD_INVALID "The upload with id … cannot
//     be completed because it does not have any parts" (CompleteLayerUpload's
//     EmptyUploadException; devcontainers/cli#814, radius-project/radius#7855); a manifest or
//     index without a top-level mediaType, whatever its Content-Type → 405 UNSUPPORTED "Invalid
//     parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'"
//     (opcr-io/policy#149 quotes the body; containers/image#584, chainguard-dev/apko#450; PutImage
//     answers InvalidParameterException with the same constraint); every PATCH is answered 201 Created, not 202
//     (dotnet/sdk-container-builds#279, written with the ECR team; openai/tart#273;
//     aws/containers-roadmap#2831); a part under 5 MiB followed by another (a PATCH, or a PUT
//     with a body) → 400 BLOB_UPLOAD_INVALID "LayerPartTooSmallException: All layer parts except
//     the last part should be at least 5MB" (the exception and message CloudTrail shows in
//     dotnet/sdk-container-builds#424; "Minimum layer part size: 5 MiB" in ECR's service quotas;
//     the registry's status and code for it are assumed). A
//     monolithic upload (POST, then one PUT with the whole blob) is accepted at any size
//     (kitops-ml/kitops#822 pushed a 15 GB layer that way).
//   - A layer GET is answered 307 with a pre-signed URL on the layer bucket, a listener of its
//     own (Service.DownloadHandler; "localhost" for a loopback sandbox, so clients see another
//     host) that serves the layer only without an Authorization header: with one it answers 400
//     InvalidArgument "Only one auth mechanism allowed; …", as S3 does (open-policy-agent/opa#6580
//     and #6728: ECR always redirects layer GETs to S3). A tampered signature → 403
//     SignatureDoesNotMatch; after an hour (assumed; S3's X-Amz-Expires) → 403 AccessDenied
//     "Request has expired". HEAD is answered by the registry.
//   - A registry password stops working when the session that fetched it ends, even one that
//     reports 12 h: GetAuthorizationToken documents 12 h and a token that "represents your IAM
//     authentication credentials"; ECR has been seen to refuse it once the role session that
//     obtained it (1 h) ended (ecrpush issue 14). Options.ReportTokenTTL makes it report the
//     full TokenTTL, as ECR does; off, it reports the session's end.
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
//
// Supply chain: referrers, managed signing, scanning (referrers.go, signing.go, findings.go,
// supplychain.go). [doc] = stated by AWS (page named), [assumed] = the sandbox's choice.
//   - [doc] ECR implements OCI 1.1 referrers: GET /v2/<name>/referrers/<digest> and ListImageReferrers
//     (SDK aws-sdk-go-v2/service/ecr v1.53.0+, API_ListImageReferrers: filter.artifactTypes,
//     filter.artifactTypes at most 5, filter.artifactStatus ACTIVE|ARCHIVED|ACTIVATING|ANY, maxResults 1–50; needs ecr:BatchGetImage;
//     errors InvalidParameter, RepositoryNotFound, Server, Validation — no ImageNotFound, so an unknown
//     subject lists nothing). Page size when maxResults is absent: the SDK says 20, the API reference
//     page 50; the sandbox uses 20.
//   - [doc] "ECR's replication feature supports referrers, copying artifacts to destination regions and
//     accounts so they are ready to use alongside replicated images" (What's New, 2024-06-27, "Amazon
//     ECR supports OCI Image and Distribution specification version 1.1"). [assumed] how: each
//     referrer push replicates like any push (its own replication, after its subject's when pushed
//     after it), under the same rules and filters; the sandbox does exactly that, so a referrer pushed
//     before replication was configured is not replicated (backfill territory). No AWS page says
//     whether a referrer's replication shows in DescribeImageReplicationStatus of its subject: here it
//     is only in its own digest's statuses.
//   - [rep] ECR has answered 405 UNSUPPORTED to some OCI 1.1 referrer manifests (aws/containers-roadmap
//     #2306: sigstore bundle media types; #2783: oras copy -r of an SPDX referrer of an index). The
//     sandbox accepts every well-formed manifest, so such a refusal shows only against AWS.
//   - [assumed] The registry endpoint honours ?artifactType= and answers OCI-Filters-Applied:
//     artifactType (the distribution spec's SHOULD; AWS does not say); a subject nobody refers to
//     answers 200 with an empty index (spec); a PUT of a manifest with a subject answers OCI-Subject.
//   - [doc] Managed signing (user guide managed-signing.html; API PutSigningConfiguration,
//     GetSigningConfiguration, DeleteSigningConfiguration, DescribeImageSigningStatus): rules name a
//     Signer profile (ARN pattern from the model) and optional WILDCARD_MATCH filters (no filters: every
//     repository), at most 10 rules and 100 filters per rule; images are signed as they are pushed, one
//     status per matching profile, IN_PROGRESS → COMPLETE | FAILED with failureCode/failureReason;
//     GetSigningConfiguration without one → SigningConfigurationNotFoundException. Signatures are
//     stored in the repository as referrers and count as images (image-signing.html).
//     [assumed] the signature's shape: a Notary Project signature (artifactType
//     application/vnd.cncf.notary.signature, empty config, one application/jose+json layer) — AWS
//     Signer's container signing is Notation-based, but the page does not spell the manifest out. The
//     sandbox's envelope is not a real signature. Signing is synchronous unless
//     SetSupplyChainDelays gives it a delay; failures come only from FailSigning (no Signer here;
//     failure codes are undocumented). Referrers are not signed; every other pushed manifest (an index
//     and each of its children) is; replicated images are not signed again at the destination, and
//     their DescribeImageSigningStatus is empty — the replicated signature referrer is what carries
//     the signature there.
//   - [doc] DescribeImageScanFindings shapes (API reference, SDK types): basic findings[] (name,
//     severity, uri, attributes package_name/package_version/CVSS2_*), enhanced enhancedFindings[]
//     (Amazon Inspector: packageVulnerabilityDetails.vulnerablePackages[].fixedInVersion, score,
//     severity, status ACTIVE, resources), findingSeverityCounts, ScanNotFoundException when no scan
//     ran, severities CRITICAL|HIGH|MEDIUM|LOW|INFORMATIONAL|UNDEFINED. [assumed] statuses: basic
//     IN_PROGRESS then COMPLETE, enhanced PENDING then ACTIVE ("Scan on push is selected for image." /
//     "Continuous scan is selected for image."); an index, an artifact or an attestation manifest is
//     UNSUPPORTED_IMAGE; registry scanning rules (WILDCARD filters) win over a repository's scanOnPush
//     once any rule exists. Findings are seeded from the image config label
//     org.ecrpush.sandbox.findings ("HIGH=1,LOW=2"), deterministic per digest; no label: clean.
package ecr

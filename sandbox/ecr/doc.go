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
//   - Replication failure codes (ECR documents failureCode only as a string):
//     ReplicationAccessDenied (destination registry policy lacks ecr:ReplicateImage for the
//     source account's root), RepositoryCreationDenied (missing repository and no
//     ecr:CreateRepository), DestinationRegistryNotFound (not run by this sandbox),
//     ImageTagImmutable (the destination refuses to move the tag), SourceImageNotFound,
//     ReplicationQueueFull, InternalError. Replicated images are not replicated again.
package ecr

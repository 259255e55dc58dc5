// Package ecr owns what every part of ecrpush needs to know about Amazon ECR itself, written once:
// registry host names (every partition, FIPS and dual-stack), registry tokens (GetAuthorizationToken and
// its decoding), regions and partitions (from the SDK's own endpoint metadata, regions_gen.go),
// validators for repository names, tags and account IDs (the ECR API model's patterns), and the mapping
// of ECR API errors to the product's exit codes.
//
// It never pushes, replicates or caches: push, replicate and credhelper build on it.
package ecr

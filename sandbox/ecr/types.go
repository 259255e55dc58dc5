package ecr

import (
	"strconv"
	"time"
)

// epochTime marshals as JSON 1.1 timestamps are sent: epoch seconds, a number with
// millisecond precision.
type epochTime time.Time

func (t epochTime) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)), nil
}

func ptime(t epochTime) time.Time { return time.Time(t) }

// Shapes of the ECR service model, spelled as the wire spells them.

type Tag struct {
	Key   *string `json:"Key"`
	Value *string `json:"Value"`
}

type ImageScanningConfiguration struct {
	ScanOnPush bool `json:"scanOnPush"`
}

type EncryptionConfiguration struct {
	EncryptionType string `json:"encryptionType"`
	KmsKey         string `json:"kmsKey,omitempty"`
}

type ImageTagMutabilityExclusionFilter struct {
	FilterType string `json:"filterType"`
	Filter     string `json:"filter"`
}

type Repository struct {
	RepositoryArn                      string                              `json:"repositoryArn"`
	RegistryID                         string                              `json:"registryId"`
	RepositoryName                     string                              `json:"repositoryName"`
	RepositoryURI                      string                              `json:"repositoryUri"`
	CreatedAt                          epochTime                           `json:"createdAt"`
	ImageTagMutability                 string                              `json:"imageTagMutability"`
	ImageTagMutabilityExclusionFilters []ImageTagMutabilityExclusionFilter `json:"imageTagMutabilityExclusionFilters,omitempty"`
	ImageScanningConfiguration         ImageScanningConfiguration          `json:"imageScanningConfiguration"`
	EncryptionConfiguration            EncryptionConfiguration             `json:"encryptionConfiguration"`
}

type ImageIdentifier struct {
	ImageDigest string `json:"imageDigest,omitempty"`
	ImageTag    string `json:"imageTag,omitempty"`
}

type ImageDetail struct {
	RegistryID             string     `json:"registryId"`
	RepositoryName         string     `json:"repositoryName"`
	ImageDigest            string     `json:"imageDigest"`
	ImageTags              []string   `json:"imageTags,omitempty"`
	ImageSizeInBytes       int64      `json:"imageSizeInBytes"`
	ImagePushedAt          epochTime  `json:"imagePushedAt"`
	ImageManifestMediaType string     `json:"imageManifestMediaType"`
	ArtifactMediaType      string     `json:"artifactMediaType,omitempty"`
	ImageStatus            string     `json:"imageStatus"`
	LastArchivedAt         *epochTime `json:"lastArchivedAt,omitempty"`
	LastActivatedAt        *epochTime `json:"lastActivatedAt,omitempty"`
}

type Image struct {
	RegistryID             string          `json:"registryId"`
	RepositoryName         string          `json:"repositoryName"`
	ImageID                ImageIdentifier `json:"imageId"`
	ImageManifest          string          `json:"imageManifest"`
	ImageManifestMediaType string          `json:"imageManifestMediaType"`
}

type ImageFailure struct {
	ImageID       ImageIdentifier `json:"imageId"`
	FailureCode   string          `json:"failureCode"`
	FailureReason string          `json:"failureReason"`
}

// ReplicationConfiguration is a registry's replication configuration.
type ReplicationConfiguration struct {
	Rules []ReplicationRule `json:"rules"`
}

type ReplicationRule struct {
	Destinations      []ReplicationDestination `json:"destinations"`
	RepositoryFilters []RepositoryFilter       `json:"repositoryFilters,omitempty"`
}

type ReplicationDestination struct {
	Region     string `json:"region"`
	RegistryID string `json:"registryId"`
}

type RepositoryFilter struct {
	Filter     string `json:"filter"`
	FilterType string `json:"filterType"`
}

// ImageReplicationStatus is one destination's replication state for an image.
type ImageReplicationStatus struct {
	Region      string `json:"region"`
	RegistryID  string `json:"registryId"`
	Status      string `json:"status"`
	FailureCode string `json:"failureCode,omitempty"`
}

// Replication statuses (the model's ReplicationStatus enum).
const (
	StatusInProgress = "IN_PROGRESS"
	StatusComplete   = "COMPLETE"
	StatusFailed     = "FAILED"
)

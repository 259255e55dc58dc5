package push

import (
	"context"
	"errors"
	"net/http"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Publisher pushes artifacts to one destination (or, MultiPublisher, several).
type Publisher interface {
	// Publish pushes a under every tag (none: by digest only) and returns what it did. Tags that
	// already point at a.Digest are left alone; a tag pointing elsewhere in an immutable repository
	// is a fixable error raised before anything is written.
	Publish(ctx context.Context, a *Artifact, tags []string) (*Result, error)
	Close() error
}

// Result is what one Publish did at one destination. MultiPublisher returns an aggregate whose
// Destinations hold one Result per destination, in the order given.
type Result struct {
	Destination   string          `json:"destination,omitempty"` // host/repository
	Registry      string          `json:"registry,omitempty"`    // host[:port]
	Repository    string          `json:"repository,omitempty"`
	Digest        v1.Hash         `json:"digest"`
	Ref           string          `json:"ref,omitempty"` // host/repository@sha256:…
	MediaType     types.MediaType `json:"mediaType"`
	Size          int64           `json:"size"`   // bytes of every blob and manifest of the artifact
	Layers        int             `json:"layers"` // distinct layers (across all platforms of an index)
	Tags          []TagRef        `json:"tags"`
	TagsUnchanged []string        `json:"tagsUnchanged,omitempty"` // already at Digest: nothing written
	BytesUploaded int64           `json:"bytesUploaded"`           // blob bytes sent
	BytesPresent  int64           `json:"bytesPresent"`            // blob bytes the registry already had
	Seconds       float64         `json:"seconds"`
	Destinations  []*Result       `json:"destinations,omitempty"`
}

// TagRef is one pushed tag: URI "host/repo:tag" and Ref "host/repo@sha256:…".
type TagRef struct {
	Tag string `json:"tag"`
	URI string `json:"uri"`
	Ref string `json:"ref"`
}

// planner is the two-phase form of Publish that MultiPublisher uses to check every destination
// before writing to any.
type planner interface {
	plan(ctx context.Context, a *Artifact, tags []string) (*plan, error)
	push(ctx context.Context, p *plan) (*Result, error)
}

func registryError(err error) (*transport.Error, bool) {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr, true
	}
	return nil, false
}

func hasCode(terr *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range terr.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

func isNotFound(err error) bool {
	terr, ok := registryError(err)
	return ok && (terr.StatusCode == http.StatusNotFound ||
		hasCode(terr, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode))
}

func isDenied(err error) bool {
	terr, ok := registryError(err)
	return ok && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden ||
		hasCode(terr, transport.UnauthorizedErrorCode, transport.DeniedErrorCode))
}

// isImmutableRejection spots a registry refusing to move a tag (ECR: 400 TAG_INVALID "…cannot be
// overwritten because the repository is immutable").
func isImmutableRejection(err error) bool {
	terr, ok := registryError(err)
	if !ok || !hasCode(terr, transport.TagInvalidErrorCode) {
		return false
	}
	return strings.Contains(strings.ToLower(terr.Error()), "immutable")
}

package push

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// blobClient speaks the blob half of the distribution protocol over a session's transport.
// go-containerregistry's Pusher.Upload asks whether each blob exists right before uploading it;
// the plan asks for every blob at once instead (with the tags and the manifest), so an upload
// is three requests — POST to open it, one PATCH with the whole blob, PUT to commit it with its
// digest — and on a far registry every blob's upload starts one round trip sooner.
type blobClient struct {
	client *http.Client
	repo   string // host/repository, for messages
	base   url.URL
	tries  int
	o      *options
}

func (p *registryPublisher) blobClient(rt http.RoundTripper) *blobClient {
	return &blobClient{
		client: &http.Client{Transport: rt},
		repo:   p.repo.String(),
		base:   url.URL{Scheme: p.repo.Registry.Scheme(), Host: p.repo.RegistryStr(), Path: "/v2/" + p.repo.RepositoryStr() + "/blobs/"},
		tries:  max(p.o.backoff.Steps, 1),
		o:      p.o,
	}
}

// exists is HEAD /blobs/<digest>: 200 yes, 404 no, anything else an error.
func (c *blobClient) exists(ctx context.Context, h v1.Hash) (bool, error) {
	u := c.base
	u.Path += h.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u.String(), nil)
	if err != nil {
		return false, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK, http.StatusNotFound); err != nil {
		return false, err
	}
	return resp.StatusCode == http.StatusOK, nil
}

// upload sends one blob the registry lacks, retried whole (a new upload session) like ggcr does
// when a step fails in a way that a retry may fix.
func (c *blobClient) upload(ctx context.Context, b blobInfo) error {
	pause := c.o.backoff.Duration
	for try := 1; ; try++ {
		err := c.uploadOnce(ctx, b)
		if err == nil || try >= c.tries || ctx.Err() != nil || !retryableError(err) {
			return err
		}
		c.o.log.Info("retrying blob upload", "destination", c.repo, "blob", b.digest.String(), "error", err.Error())
		if err := sleep(ctx, jitter(pause, c.o.backoff.Jitter)); err != nil {
			return err
		}
		pause = time.Duration(float64(pause) * max(c.o.backoff.Factor, 1))
	}
}

func (c *blobClient) uploadOnce(ctx context.Context, b blobInfo) error {
	u := c.base
	u.Path += "uploads/"
	resp, err := c.do(ctx, http.MethodPost, u.String(), nil, http.StatusAccepted)
	if err != nil {
		return err
	}
	loc, err := location(resp)
	if err != nil {
		return err
	}
	resp, err = c.do(ctx, http.MethodPatch, loc.String(), &b, http.StatusAccepted, http.StatusNoContent, http.StatusCreated)
	if err != nil {
		return err
	}
	if loc, err = location(resp); err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", b.digest.String())
	loc.RawQuery = q.Encode()
	_, err = c.do(ctx, http.MethodPut, loc.String(), nil, http.StatusCreated)
	return err
}

// do sends one request (with b's content as the body, when given) and checks the status.
func (c *blobClient) do(ctx context.Context, method, u string, b *blobInfo, want ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	if b != nil {
		body, err := b.layer.Compressed()
		if err != nil {
			return nil, fmt.Errorf("read blob %s: %w", b.digest, err)
		}
		req.Body, req.GetBody, req.ContentLength = body, b.layer.Compressed, b.size
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, want...); err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp, nil
}

// location is the response's Location, resolved against the request's URL (registries answer
// relative and absolute ones).
func location(resp *http.Response) (*url.URL, error) {
	l := resp.Header.Get("Location")
	if l == "" {
		return nil, fmt.Errorf("%s %s answered %d without a Location", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode)
	}
	return resp.Request.URL.Parse(l)
}

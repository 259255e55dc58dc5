package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// blobClient speaks the blob half of the distribution protocol over a session's transport.
// go-containerregistry's Pusher.Upload asks whether each blob exists right before uploading it and
// then uploads with POST, PATCH and PUT; here the plan asks for every blob at once (with the tags
// and the manifest), and an upload is two requests — POST to open a session, then one PUT with
// the whole blob and its digest (the spec's "POST then PUT" monolithic upload) — so on a far
// registry every wave of uploads costs two round trips instead of four (bench/RESULTS.md).
type blobClient struct {
	client *http.Client
	repo   string // host/repository, for messages
	base   url.URL
	pol    *retryPolicy
	m      *meter
}

func (p *registryPublisher) blobClient(rt http.RoundTripper, pol *retryPolicy, m *meter) *blobClient {
	return &blobClient{
		client: &http.Client{Transport: rt},
		repo:   p.repo.String(),
		base:   url.URL{Scheme: p.repo.Registry.Scheme(), Host: p.repo.RegistryStr(), Path: "/v2/" + p.repo.RepositoryStr() + "/blobs/"},
		pol:    pol,
		m:      m,
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
		return false, requestError(c.pol.side, err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK, http.StatusNotFound); err != nil {
		return false, requestError(c.pol.side, err)
	}
	return resp.StatusCode == http.StatusOK, nil
}

// upload sends one blob the registry lacks. The PUT that carries the body is sent once per upload
// session (part of a failed body may already be in the session, so a resend there would corrupt
// it); when it fails, the retry policy — the same one, with the same count and budget, that
// decides for every other request — decides whether to start over with a new session.
func (c *blobClient) upload(ctx context.Context, b blobInfo) error {
	tr := trouble{b: c.pol.budget}
	defer tr.end()
	for send := 1; ; send++ {
		start := time.Now()
		req, resp, err := c.uploadOnce(ctx, b)
		if req == nil { // the POST failed, after its own resends
			return err
		}
		err = cause(err)
		if err == nil && resp.StatusCode == http.StatusCreated {
			drain(resp)
			c.m.committed(b)
			return nil
		}
		tr.fail(start)
		wait, again, stop := c.pol.next(ctx, req, send, resp, err, false)
		if stop != nil {
			drain(resp)
			return stop
		}
		if !again {
			return c.failed(req, resp, err, send)
		}
		drain(resp)
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// uploadOnce opens an upload session and PUTs the blob into it. A nil req means the POST failed
// (err says how); otherwise resp or err is the PUT's outcome.
func (c *blobClient) uploadOnce(ctx context.Context, b blobInfo) (*http.Request, *http.Response, error) {
	u := c.base
	u.Path += "uploads/"
	post, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.client.Do(post)
	if err != nil {
		return nil, nil, requestError(c.pol.side, err)
	}
	if resp.StatusCode != http.StatusAccepted {
		defer resp.Body.Close()
		return nil, nil, c.failed(post, resp, nil, sendsOf(resp.Request))
	}
	drain(resp)
	loc, err := location(resp)
	if err != nil {
		return nil, nil, err
	}
	q := loc.Query()
	q.Set("digest", b.digest.String())
	loc.RawQuery = q.Encode()

	body, sent, err := c.m.open(b)
	if err != nil {
		return nil, nil, &RequestError{Side: "source", Method: "read", Path: "blob " + b.digest.String(), Err: err}
	}
	if b.size == 0 {
		body.Close()
		body = http.NoBody // net/http would send an empty *os.File chunked, as of unknown length
	}
	put, err := http.NewRequestWithContext(sendOnce(ctx), http.MethodPut, loc.String(), body)
	if err != nil {
		body.Close()
		return nil, nil, err
	}
	// Replayable only for a resend with fresh credentials after a 401, which registries answer
	// before they read any of the body.
	if b.size > 0 {
		put.ContentLength, put.GetBody = b.size, func() (io.ReadCloser, error) {
			rc, _, err := c.m.open(b)
			return rc, err
		}
	}
	put.Header.Set("Content-Type", "application/octet-stream")
	resp, err = c.client.Do(put)
	c.m.done(sent)
	if err != nil {
		return put, nil, err
	}
	return put, resp, nil
}

// failed is the error for a request that got resp (an unexpected answer) or err on its send-th
// send: which side failed, which request, without the session URL's query.
func (c *blobClient) failed(req *http.Request, resp *http.Response, err error, send int) error {
	var se *sourceError
	if errors.As(err, &se) {
		return &RequestError{Side: "source", Method: "read", Path: "blob " + se.digest.String(), Sends: send, Err: se.err}
	}
	if err == nil {
		defer resp.Body.Close()
		err = transport.CheckError(resp, http.StatusCreated, http.StatusAccepted)
	}
	err = cause(err)
	return &RequestError{Side: c.pol.side, Method: req.Method, Host: req.URL.Host, Path: shortPath(req.URL.Path), Sends: send,
		Status: status(resp), Err: stripRequest(err)}
}

// cause is what a send of an upload's body failed with, without the http.Client's and the
// retrier's wrapping (which would print the URL, and name the request twice).
func cause(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if re, ok := err.(*RequestError); ok && re.Err != nil && re.Reason == "" {
		err = re.Err
	}
	return err
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

// meter counts what one Publish did: blob bytes committed (a blob counts once it is in, however
// many sends it took), blob bytes the registry already had, and for progress the bytes of
// uploads still under way.
type meter struct {
	uploaded     atomic.Int64
	presentBytes atomic.Int64

	mu       sync.Mutex
	present  map[v1.Hash]bool
	sizes    map[v1.Hash]int64
	inflight map[*sentBody]bool
}

func newMeter() *meter {
	return &meter{present: map[v1.Hash]bool{}, sizes: map[v1.Hash]int64{}, inflight: map[*sentBody]bool{}}
}

// markPresent records a blob the registry already had (once per blob).
func (m *meter) markPresent(h v1.Hash) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.present[h] {
		m.present[h] = true
		m.presentBytes.Add(m.sizes[h])
	}
}

func (m *meter) committed(b blobInfo) { m.uploaded.Add(b.size) }

// sent is the blob bytes uploaded so far, counting those of uploads still under way.
func (m *meter) sent() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.uploaded.Load()
	for s := range m.inflight {
		n += s.progress()
	}
	return n
}

// open is a blob's content for one send, and its place among the in-flight uploads. A file is
// handed over as the bare *os.File, which net/http sends with sendfile(2) — the bytes never pass
// through this process, which copying them would otherwise cost most of its CPU — and whose
// offset says how far it got. Anything else (a layer read from a source registry) is counted as
// it is read, and its read errors are marked as the source's.
func (m *meter) open(b blobInfo) (io.ReadCloser, *sentBody, error) {
	rc, err := b.layer.Compressed()
	if err != nil {
		return nil, nil, err
	}
	s := &sentBody{}
	if f, ok := rc.(*os.File); ok {
		s.file = f
		if off, err := f.Seek(0, io.SeekCurrent); err == nil {
			s.start = off
		}
	} else {
		s.counted = &sourceBody{rc: rc, digest: b.digest}
		rc = s.counted
	}
	m.mu.Lock()
	m.inflight[s] = true
	m.mu.Unlock()
	return rc, s, nil
}

// done drops an upload's body from the in-flight set.
func (m *meter) done(s *sentBody) {
	m.mu.Lock()
	delete(m.inflight, s)
	m.mu.Unlock()
}

// sentBody is how far one send's blob body got.
type sentBody struct {
	file    *os.File
	start   int64
	last    int64 // the file's progress when last read (it cannot be read once net/http closes it)
	counted *sourceBody
}

// progress is called under the meter's lock.
func (s *sentBody) progress() int64 {
	if s.file != nil {
		if off, err := s.file.Seek(0, io.SeekCurrent); err == nil && off > s.start {
			s.last = off - s.start
		}
		return s.last
	}
	return s.counted.n.Load()
}

// sourceBody is a blob read from its source while it is uploaded: it counts the bytes, and a read
// error is the source's, not the destination's (sourceError).
type sourceBody struct {
	rc     io.ReadCloser
	digest v1.Hash
	n      atomic.Int64
}

func (s *sourceBody) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	s.n.Add(int64(n))
	if err != nil && err != io.EOF {
		err = &sourceError{digest: s.digest, err: err}
	}
	return n, err
}

func (s *sourceBody) Close() error { return s.rc.Close() }

// sourceError is a failure reading a blob from the source while it was being uploaded.
type sourceError struct {
	digest v1.Hash
	err    error
}

func (e *sourceError) Error() string {
	return "reading blob " + e.digest.String() + " from the source: " + e.err.Error()
}
func (e *sourceError) Unwrap() error { return e.err }

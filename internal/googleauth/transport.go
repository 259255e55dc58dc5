package googleauth

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Bounds of every Google call (STS token exchange, IAM Credentials, metadata): one attempt may take
// perAttempt, and a call is sent at most attempts times — one 5xx from Google's STS must not fail a push.
const (
	perAttempt = 30 * time.Second
	attempts   = 4
	maxBackoff = 4 * time.Second
)

// NewHTTPClient is the client Google's libraries are given: each attempt times out, and network errors,
// 408, 429 and 5xx are retried (a token exchange and generateAccessToken mint a new token each time, so a
// repeat is harmless), within attempts, with jittered exponential backoff honouring Retry-After.
func NewHTTPClient() *http.Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{Transport: &retrying{base: base}, Timeout: attempts * (perAttempt + maxBackoff)}
}

type retrying struct{ base http.RoundTripper }

func (t *retrying) RoundTrip(req *http.Request) (*http.Response, error) {
	var lastErr error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			if err := req.Context().Err(); err != nil {
				return nil, err
			}
			if req.Body != nil && req.GetBody == nil {
				break // cannot send the body again
			}
		}
		r := req
		if i > 0 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		ctx, cancel := context.WithTimeout(req.Context(), perAttempt)
		resp, err := t.base.RoundTrip(r.WithContext(ctx))
		if err == nil && !retryable(resp.StatusCode) {
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			return resp, nil
		}
		wait := backoff(i)
		if err == nil {
			if ra, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && ra > 0 {
				wait = min(time.Duration(ra)*time.Second, 10*time.Second)
			}
			if i == attempts-1 {
				resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
				return resp, nil // the caller reads Google's error
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			lastErr = errors.New("HTTP " + strconv.Itoa(resp.StatusCode))
		} else {
			lastErr = err
		}
		cancel()
		if req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
		timer := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		case <-timer.C:
		}
	}
	return nil, lastErr
}

func retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

func backoff(i int) time.Duration {
	d := min(250*time.Millisecond<<i, maxBackoff)
	return d/2 + rand.N(d/2+1)
}

// cancelOnClose ends an attempt's context once its body is read and closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

package sandbox

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Request is one request a sandbox endpoint saw.
type Request struct {
	Time     time.Time
	Endpoint string // EndpointSTS, EndpointECR, RegistryEndpoint(...), ...
	Method   string
	Path     string
	Op       string // STS Action, ECR operation, or "" for registries and issuers
	Status   int    // 0 when the connection was reset
}

// Write reports whether the request changed state: a registry upload, a manifest or tag write,
// or an ECR / STS operation that writes.
func (r Request) Write() bool {
	if strings.HasPrefix(r.Endpoint, "registry/") {
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			return true
		}
		return false
	}
	switch r.Op {
	case "CreateRepository", "PutImage", "BatchDeleteImage", "PutImageTagMutability", "PutReplicationConfiguration",
		"PutRegistryPolicy", "DeleteRegistryPolicy", "DeleteRepository", "SetRepositoryPolicy", "PutLifecyclePolicy",
		"CreateRepositoryCreationTemplate", "UpdateRepositoryCreationTemplate", "DeleteRepositoryCreationTemplate",
		"StartReplicationBackfill", "StopReplicationBackfill", "UpdateImageStorageClass", "TagResource", "UntagResource":
		return true
	}
	return false
}

// RequestLog records every request the sandbox serves, in order.
type RequestLog struct {
	mu      sync.Mutex
	entries []Request
}

// Entries returns a copy of the log.
func (l *RequestLog) Entries() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Request(nil), l.entries...)
}

// Count counts entries on an endpoint with an op ("" matches any op).
func (l *RequestLog) Count(endpoint, op string) int {
	n := 0
	for _, e := range l.Entries() {
		if e.Endpoint == endpoint && (op == "" || e.Op == op) {
			n++
		}
	}
	return n
}

// Writes returns the entries that changed state.
func (l *RequestLog) Writes() []Request {
	var out []Request
	for _, e := range l.Entries() {
		if e.Write() {
			out = append(out, e)
		}
	}
	return out
}

// Reset empties the log.
func (l *RequestLog) Reset() {
	l.mu.Lock()
	l.entries = nil
	l.mu.Unlock()
}

func (l *RequestLog) wrap(endpoint string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := Request{Time: time.Now(), Endpoint: endpoint, Method: r.Method, Path: r.URL.Path}
		switch endpoint {
		case EndpointECR:
			t := r.Header.Get("X-Amz-Target")
			e.Op = t[strings.LastIndex(t, ".")+1:]
		case EndpointSTS:
			e.Op = r.URL.Query().Get("Action")
			// STS bodies are small forms: read and restore so the handler sees them unchanged.
			if r.Body != nil && r.Method == http.MethodPost {
				b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
				if err == nil {
					r.Body = io.NopCloser(bytes.NewReader(b))
					if v, err := url.ParseQuery(string(b)); err == nil && v.Get("Action") != "" {
						e.Op = v.Get("Action")
					}
				}
			}
		}
		rec := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		e.Status = rec.status
		if rec.status == 0 && !rec.hijacked {
			e.Status = http.StatusOK
		}
		l.mu.Lock()
		l.entries = append(l.entries, e)
		l.mu.Unlock()
	})
}

// statusWriter records the status and lets the fault injector hijack the connection.
type statusWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

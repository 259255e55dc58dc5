package fault

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// maxDrain bounds how much of a request body a reset reads before cutting the connection.
const maxDrain = 64 << 10

// reset simulates a connection that dies mid-transfer: it reads part of the request body
// (so the client is already streaming), then, for a GET, sends response headers promising a
// body and part of it, and closes with SO_LINGER 0 so the kernel sends RST instead of FIN and
// the client sees "connection reset by peer" rather than a clean EOF.
func reset(w http.ResponseWriter, r *http.Request, p Protocol) {
	if r.Body != nil && r.ContentLength != 0 {
		n := r.ContentLength / 2
		if n <= 0 || n > maxDrain { // unknown length (chunked) or large
			n = maxDrain
		}
		_, _ = io.CopyN(io.Discard, r.Body, n)
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 cannot be hijacked: aborting the handler resets the stream instead.
		panic(http.ErrAbortHandler)
	}
	if r.Method != http.MethodGet {
		// Only a GET has a response body worth cutting. Anything else (HEAD, a PUT or POST answered
		// 201/202 with no body) would take the promised 200 as a complete answer — a success for a
		// write that never ran, which no network produces — so it dies before the status line.
		abortive(conn)
		return
	}
	contentType := map[Protocol]string{Registry: "application/octet-stream", AWSJSON: "application/x-amz-json-1.1",
		AWSQuery: "text/xml", Plain: "text/plain; charset=utf-8"}[p]
	const promised, sent = 4096, 512
	fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", contentType, promised)
	partial := make([]byte, sent)
	for i := range partial {
		partial[i] = 'x'
	}
	_, _ = brw.Write(partial)
	_ = brw.Flush()
	abortive(conn)
}

// abortive closes conn with SO_LINGER 0 (RST), unwrapping TLS to reach the TCP socket.
func abortive(conn net.Conn) {
	raw := conn
	if nc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		raw = nc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
		_ = tc.Close()
		return
	}
	_ = conn.Close()
}

// truncating passes an answer through until half its declared body (512 bytes when the length is
// not declared) and then closes the connection cleanly (FIN): the client sees a body cut short
// (an unexpected EOF), as when a proxy or a load balancer drops a transfer.
type truncating struct {
	http.ResponseWriter
	limit, n int64
	cut      bool
	status   int
}

func (t *truncating) WriteHeader(code int) {
	if t.status != 0 {
		return
	}
	t.status = code
	t.limit = 512
	if cl, err := strconv.ParseInt(t.Header().Get("Content-Length"), 10, 64); err == nil && cl > 0 {
		t.limit = cl / 2
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *truncating) Write(p []byte) (int, error) {
	if t.status == 0 {
		t.WriteHeader(http.StatusOK)
	}
	if t.cut {
		return 0, errTruncated
	}
	if rest := t.limit - t.n; int64(len(p)) > rest {
		n, _ := t.ResponseWriter.Write(p[:rest])
		t.n += int64(n)
		t.close()
		return n, errTruncated
	}
	n, err := t.ResponseWriter.Write(p)
	t.n += int64(n)
	return n, err
}

// ReadFrom keeps http.ServeContent's io.Copy going through Write.
func (t *truncating) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{t}, r)
}

func (t *truncating) close() {
	t.cut = true
	rc := http.NewResponseController(t.ResponseWriter)
	_ = rc.Flush()
	if conn, _, err := rc.Hijack(); err == nil {
		_ = conn.Close()
		return
	}
	panic(http.ErrAbortHandler) // HTTP/2: abort the stream instead
}

var errTruncated = fmt.Errorf("fault: answer truncated")

// stall holds a request without answering: its body is read in part (so the client is already
// sending) and then left alone, until the client gives up, the injector is released, or d passes
// (10 minutes when 0) — then the connection is dropped.
func stall(r *http.Request, d time.Duration, released <-chan struct{}) {
	if r.Body != nil && r.ContentLength != 0 {
		_, _ = io.CopyN(io.Discard, r.Body, maxDrain)
	}
	if d <= 0 {
		d = 10 * time.Minute
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-released:
	case <-t.C:
	}
	panic(http.ErrAbortHandler) // no answer: drop the connection
}

package fault

import (
	"fmt"
	"io"
	"net"
	"net/http"
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

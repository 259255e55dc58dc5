package main

import (
	"io"
	"net"
	"sync"
	"time"
)

// slowLink is a TCP proxy in front of one registry that makes 127.0.0.1 behave like a link with a
// round-trip time of rtt (CI in one cloud region, the registry in another): every byte reaches the
// other side rtt/2 after it was sent, in both directions, and a new connection costs one extra
// round trip (the TCP handshake) before its first byte moves. Bandwidth is not limited, so what it
// adds is exactly the round trips a client waits for.
type slowLink struct {
	ln     net.Listener
	target string
	rtt    time.Duration
	mu     sync.Mutex
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

const (
	chunkSize = 64 << 10
	// inFlight chunks per direction: at 25 ms one way this passes up to ~1.3 GB/s per connection.
	inFlight = 512
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

func newSlowLink(target string, rtt time.Duration) (*slowLink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &slowLink{ln: ln, target: target, rtt: rtt, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *slowLink) addr() string { return s.ln.Addr().String() }

func (s *slowLink) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if !s.track(c, true) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

// track adds or removes a connection; adding fails once the link is closed.
func (s *slowLink) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.conns == nil {
			return false
		}
		s.conns[c] = true
		return true
	}
	if s.conns != nil {
		delete(s.conns, c)
	}
	return true
}

func (s *slowLink) handle(client net.Conn) {
	defer s.track(client, false)
	defer client.Close()
	time.Sleep(s.rtt) // the handshake's round trip
	server, err := net.DialTimeout("tcp", s.target, 10*time.Second)
	if err != nil {
		return
	}
	if !s.track(server, true) {
		server.Close()
		return
	}
	defer s.track(server, false)
	defer server.Close()
	var wg sync.WaitGroup
	wg.Go(func() { s.pipe(server, client) })
	wg.Go(func() { s.pipe(client, server) })
	wg.Wait()
}

type chunk struct {
	b  *[]byte
	n  int
	at time.Time
}

// pipe copies src to dst through a delay line of rtt/2, then half-closes dst.
func (s *slowLink) pipe(dst, src net.Conn) {
	oneWay := s.rtt / 2
	line := make(chan chunk, inFlight)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range line {
			if d := time.Until(c.at); d > 0 {
				time.Sleep(d)
			}
			_, err := dst.Write((*c.b)[:c.n])
			chunkPool.Put(c.b)
			if err != nil {
				// Unblock the reader; the rest of the line is dropped.
				src.Close()
				for c := range line {
					chunkPool.Put(c.b)
				}
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	for {
		b := chunkPool.Get().(*[]byte)
		n, err := src.Read(*b)
		if n > 0 {
			line <- chunk{b: b, n: n, at: time.Now().Add(oneWay)}
		} else {
			chunkPool.Put(b)
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			}
			break
		}
	}
	close(line)
	<-done
}

// close stops accepting, cuts every open connection and waits for the goroutines.
func (s *slowLink) close() {
	s.ln.Close()
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	s.wg.Wait()
}

package push

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
)

// gzipBlock is how much input one parallelGzip job compresses.
const gzipBlock = 1 << 20

// gzipBudget bounds the blocks in flight across every layer of one load: memory stays at about
// two MiB per token however many layers compress at once, and one large layer alone still keeps
// every core busy.
type gzipBudget chan struct{}

func newGzipBudget(workers int) gzipBudget { return make(gzipBudget, 2*max(workers, 1)) }

var (
	blockPool = sync.Pool{New: func() any { b := make([]byte, gzipBlock); return &b }}
	outPool   sync.Pool // *[]byte, compressed blocks
	flatePool sync.Pool // *flate.Writer at gzip.BestSpeed
)

// parallelGzip writes r to w as one gzip member compressed at flate.BestSpeed, the way pigz does
// it: the input is cut into gzipBlock blocks, each compressed on its own goroutine with the
// previous block's last 32 KiB as dictionary and ended with a sync flush, then written in order
// and closed with an empty final block and the CRC. The output is a function of the input alone
// (no timestamp, fixed block size), so the same layer always gets the same digest. tee sees the
// uncompressed bytes in order. It returns the uncompressed size.
func parallelGzip(ctx context.Context, w, tee io.Writer, r io.Reader, budget gzipBudget) (int64, error) {
	// RFC 1952 header: no name, no mtime, XFL 4 (fastest), OS unknown — what compress/gzip writes.
	if _, err := w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255}); err != nil {
		return 0, err
	}
	type job struct {
		in   *[]byte
		n    int
		dict []byte
		out  []byte
		err  error
		done chan struct{}
	}
	queue := make(chan *job, cap(budget))
	werr := make(chan error, 1)
	go func() {
		var err error
		for j := range queue {
			<-j.done
			if err == nil {
				err = j.err
			}
			if err == nil {
				_, err = w.Write(j.out)
			}
			blockPool.Put(j.in)
			if j.out != nil {
				outPool.Put(&j.out)
			}
			<-budget
		}
		werr <- err
	}()

	crc := crc32.NewIEEE()
	var size int64
	var tail []byte
	var rerr error
	for {
		if rerr = ctx.Err(); rerr != nil {
			break
		}
		select {
		case budget <- struct{}{}:
		case <-ctx.Done():
			rerr = ctx.Err()
		}
		if rerr != nil {
			break
		}
		buf := blockPool.Get().(*[]byte)
		n, err := io.ReadFull(r, *buf)
		if n == 0 {
			blockPool.Put(buf)
			<-budget
			if err != io.EOF {
				rerr = err
			}
			break
		}
		data := (*buf)[:n]
		crc.Write(data)
		if _, werr := tee.Write(data); werr != nil {
			blockPool.Put(buf)
			<-budget
			rerr = werr
			break
		}
		size += int64(n)
		j := &job{in: buf, n: n, dict: tail, done: make(chan struct{})}
		go func() {
			defer close(j.done)
			j.out, j.err = deflateBlock((*j.in)[:j.n], j.dict)
		}()
		queue <- j
		tail = append([]byte(nil), data[max(0, n-32<<10):]...)
		if err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	close(queue)
	if err := errors.Join(rerr, <-werr); err != nil {
		return 0, err
	}
	// An empty final block with fixed codes (BFINAL=1, BTYPE=01, end-of-block), then the trailer.
	trailer := []byte{0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(trailer[2:], crc.Sum32())
	binary.LittleEndian.PutUint32(trailer[6:], uint32(size))
	_, err := w.Write(trailer)
	return size, err
}

// deflateBlock compresses in (with dict as history) into whole deflate blocks ending in a sync
// flush, so the next block's output can follow it directly.
func deflateBlock(in, dict []byte) ([]byte, error) {
	out := &sliceWriter{}
	if b, ok := outPool.Get().(*[]byte); ok {
		out.b = (*b)[:0]
	}
	fw, _ := flatePool.Get().(*flate.Writer)
	if fw == nil {
		var err error
		if fw, err = flate.NewWriterDict(out, flate.BestSpeed, dict); err != nil {
			return nil, err
		}
	} else {
		fw.ResetDict(out, dict)
	}
	defer flatePool.Put(fw)
	if _, err := fw.Write(in); err != nil {
		return nil, err
	}
	if err := fw.Flush(); err != nil {
		return nil, err
	}
	return out.b, nil
}

type sliceWriter struct{ b []byte }

func (s *sliceWriter) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }

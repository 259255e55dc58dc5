package push

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/pgzip"
)

// DefaultCompressionLevel is the gzip level of layers this process compresses (docker-archive
// layers, which are stored uncompressed): gzip's default (DefaultCompression), which
// klauspost/pgzip implements as level 5 — what skopeo (containers/image, the same library at its
// default) writes, to the byte in size: every node that pulls the image pulls no more than it would
// have from skopeo. bench/RESULTS.md (P2) has every tool's bytes: level 6 writes 1.4 % less and
// takes ~12 % longer; level 1 ~15 % more, ~1.5× faster.
const DefaultCompressionLevel = 5

// WithCompressionLevel sets the gzip level (1 fastest … 9 smallest; default
// DefaultCompressionLevel) for layers a source compresses itself. A layer that comes compressed
// is never compressed again, whatever the level.
func WithCompressionLevel(level int) SourceOption {
	return func(o *sourceOptions) error {
		if level < 1 || level > 9 {
			return fmt.Errorf("push: compression level must be between 1 and 9, got %d", level)
		}
		o.level = level
		return nil
	}
}

// gzipBlock is how much input one parallel gzip job compresses: half pgzip's default, which
// halves the buffers in flight (P4a's peak RSS) and changes the output by under 0.1 %.
const gzipBlock = 512 << 10

// gzipBudget is how one load compresses layers: the level, and how many blocks each layer's
// writer compresses at once (GOMAXPROCS: one large layer alone still keeps every core busy).
type gzipBudget struct {
	level  int
	blocks int
}

func newGzipBudget(level int) gzipBudget {
	if level == 0 {
		level = DefaultCompressionLevel
	}
	return gzipBudget{level: level, blocks: runtime.GOMAXPROCS(0)}
}

// parallelGzip writes r to w as one gzip member at the budget's level with klauspost/pgzip:
// the input is cut into gzipBlock blocks compressed in parallel, each with the previous block's
// last 32 KiB as dictionary (pigz's scheme). The output is a function of the input and the level
// alone (fixed block size, no name, mtime 0), so the same layer always gets the same digest, on
// any machine. tee sees the uncompressed bytes in order. It returns the uncompressed size.
func parallelGzip(ctx context.Context, w, tee io.Writer, r io.Reader, budget gzipBudget) (int64, error) {
	z, err := gzipWriter(w, budget)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(z, io.TeeReader(&ctxReader{ctx: ctx, r: r}, tee))
	if cerr := z.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err // a writer that failed is not reused
	}
	gzipWriters(budget).Put(z)
	return n, nil
}

// gzipPools holds idle writers per (level, blocks): a writer keeps its flate compressors and block
// buffers across Reset, so the layers of an archive reuse them instead of each allocating its own
// (an archive of 16 layers otherwise peaks at twice the memory).
var gzipPools sync.Map // gzipBudget → *sync.Pool

func gzipWriters(b gzipBudget) *sync.Pool {
	p, _ := gzipPools.LoadOrStore(b, &sync.Pool{})
	return p.(*sync.Pool)
}

func gzipWriter(w io.Writer, b gzipBudget) (*pgzip.Writer, error) {
	z, ok := gzipWriters(b).Get().(*pgzip.Writer)
	if ok {
		z.Reset(w)
	} else {
		var err error
		if z, err = pgzip.NewWriterLevel(w, b.level); err != nil {
			return nil, err
		}
	}
	if err := z.SetConcurrency(gzipBlock, max(b.blocks, 1)); err != nil {
		return nil, err
	}
	z.ModTime = time.Unix(0, 0) // pgzip writes a zero time.Time as a nonsense timestamp
	return z, nil
}

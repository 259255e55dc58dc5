package push

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/klauspost/pgzip"
)

// DefaultCompressionLevel is the gzip level of layers this process compresses (docker-archive
// layers, which are stored uncompressed): 6, docker's and gzip's default. Its output is within 2 %
// of skopeo's (containers/image writes klauspost/pgzip's default, level 5; bench/RESULTS.md
// reports every tool's bytes), so every node that pulls the image pulls no more than it would
// have from skopeo or docker. Level 1 compresses about 1.5× faster and writes ~15 % more.
const DefaultCompressionLevel = 6

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

// gzipBlock is how much input one parallel gzip job compresses.
const gzipBlock = 1 << 20

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
	z, err := pgzip.NewWriterLevel(w, budget.level)
	if err != nil {
		return 0, err
	}
	if err := z.SetConcurrency(gzipBlock, max(budget.blocks, 1)); err != nil {
		return 0, err
	}
	z.ModTime = time.Unix(0, 0) // pgzip writes a zero time.Time as a nonsense timestamp
	n, err := io.Copy(z, io.TeeReader(&ctxReader{ctx: ctx, r: r}, tee))
	if cerr := z.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

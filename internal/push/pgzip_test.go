package push

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// parallelGzip's output must be a gzip stream any reader accepts, the same bytes every time and
// at any concurrency (the digest of a layer must not depend on the machine), and its tee must see
// exactly the input — for inputs around the block size and with nothing at all.
func TestParallelGzip(t *testing.T) {
	t.Parallel()
	// Text-like input: random picks from a small vocabulary, as source files are.
	vocab := strings.Fields("func return if else for range err nil := { } ( ) package import type struct interface map string int byte go defer select case chan")
	for name, size := range map[string]int{"empty": 0, "one byte": 1, "block-1": gzipBlock - 1, "block": gzipBlock,
		"block+1": gzipBlock + 1, "several": 3*gzipBlock + 12345} {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(size)))
			in := make([]byte, 0, size+16)
			for len(in) < size {
				in = append(in, vocab[rng.IntN(len(vocab))]...)
				in = append(in, " \n\t"[rng.IntN(3)])
			}
			in = in[:size]
			var outs [][]byte
			for _, blocks := range []int{1, 8} {
				var out, tee bytes.Buffer
				n, err := parallelGzip(context.Background(), &out, &tee, bytes.NewReader(in), gzipBudget{level: DefaultCompressionLevel, blocks: blocks})
				if err != nil {
					t.Fatal(err)
				}
				if n != int64(size) || !bytes.Equal(tee.Bytes(), in) {
					t.Fatalf("size %d, tee %d bytes, want %d", n, tee.Len(), size)
				}
				zr, err := gzip.NewReader(bytes.NewReader(out.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(zr)
				if err != nil {
					t.Fatalf("gunzip: %v", err)
				}
				if !bytes.Equal(got, in) {
					t.Fatalf("round trip: %d bytes back, want %d", len(got), size)
				}
				outs = append(outs, out.Bytes())
			}
			if sha256.Sum256(outs[0]) != sha256.Sum256(outs[1]) {
				t.Error("compressions of the same input at 1 and 8 blocks at once differ")
			}
			// Cutting the input into blocks must cost next to nothing against one stream.
			var one bytes.Buffer
			zw, _ := kgzip.NewWriterLevel(&one, DefaultCompressionLevel)
			zw.Write(in)
			zw.Close()
			if size > gzipBlock && float64(len(outs[0])) > 1.01*float64(one.Len()) {
				t.Errorf("%d bytes compressed to %d, one stream to %d", size, len(outs[0]), one.Len())
			}
		})
	}
}

func TestParallelGzipStopsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := parallelGzip(ctx, io.Discard, io.Discard, bytes.NewReader(make([]byte, 4*gzipBlock)), newGzipBudget(1)); err == nil {
		t.Fatal("no error after the context ended")
	}
}

// A failing writer stops the compression with its error.
func TestParallelGzipWriteError(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk full")
	_, err := parallelGzip(context.Background(), failWriter{boom}, io.Discard, bytes.NewReader(make([]byte, 4*gzipBlock)), newGzipBudget(1))
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the writer's error", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

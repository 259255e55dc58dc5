package push

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BenchmarkJobs measures one push of a 16-layer, 32 MiB image into a fresh in-process registry on
// 127.0.0.1 for jobs 1..16, without and with a simulated 20 ms round trip per request. It is
// what DefaultJobs is chosen from (see options.go). Run: go test -run '^$' -bench Jobs ./push/
func BenchmarkJobs(b *testing.B) {
	img := platformImage(b, v1.Platform{OS: "linux", Architecture: "amd64"}, 2<<20, 16)
	dir := filepath.Join(b.TempDir(), "layout")
	writeLayout(b, dir, entry{img: img})
	a, err := load(b, "oci-layout:"+dir)
	if err != nil {
		b.Fatal(err)
	}
	c, err := a.contents()
	if err != nil {
		b.Fatal(err)
	}
	for _, rtt := range []time.Duration{0, 20 * time.Millisecond} {
		for _, jobs := range []int{1, 2, 4, 8, 16} {
			b.Run(fmt.Sprintf("rtt=%s/jobs=%d", rtt, jobs), func(b *testing.B) {
				b.SetBytes(c.blobBytes())
				for b.Loop() {
					b.StopTimer()
					host := testRegistry(b, func(h http.Handler) http.Handler {
						return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
							time.Sleep(rtt)
							h.ServeHTTP(w, r)
						})
					})
					p := newPublisher(b, host+"/bench", WithJobs(jobs), WithManifestRate(0))
					b.StartTimer()
					if _, err := p.Publish(context.Background(), a, []string{"v1"}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkPushArchive1GiB pushes a generated 1 GiB docker-save archive (8 uncompressed layers of
// 128 MiB of dictionary words that gzip shrinks) to distribution on 127.0.0.1 and reports the process's peak
// RSS. Skipped unless ECRPUSH_BENCH=1. Run alone so the peak is the push's:
//
//	ECRPUSH_BENCH=1 go test -run '^$' -bench PushArchive1GiB -benchtime 1x ./push/
func BenchmarkPushArchive1GiB(b *testing.B) {
	if os.Getenv("ECRPUSH_BENCH") != "1" {
		b.Skip("set ECRPUSH_BENCH=1 to run the 1 GiB push")
	}
	d := startDistribution(b)
	file := filepath.Join(b.TempDir(), "big.tar")
	const layers, layerSize = 8, 128 << 20
	if err := writeBigArchive(file, layers, layerSize); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(layers * layerSize)
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		src, err := ParseSource("docker-archive:"+file, WithSpoolDir(b.TempDir()))
		if err != nil {
			b.Fatal(err)
		}
		a, err := src.Load(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		loaded := time.Since(start)
		p, err := NewRegistry(mustRepo(b, fmt.Sprintf("%s/big%d", d.host, i)), d.keychain())
		if err != nil {
			b.Fatal(err)
		}
		res, err := p.Publish(context.Background(), a, []string{"v1"})
		if err != nil {
			b.Fatal(err)
		}
		_ = src.Close()
		b.Logf("compress %s, push %s, uploaded %d MiB", loaded.Round(time.Millisecond), (time.Since(start) - loaded).Round(time.Millisecond), res.BytesUploaded>>20)
	}
	hwm, err := peakRSS()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(hwm)/(1<<20), "peak-RSS-MiB")
	if hwm > 200<<20 {
		b.Errorf("peak RSS %d MiB, target < 200 MiB", hwm>>20)
	}
}

// peakRSS reads VmHWM from /proc/self/status.
func peakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// writeBigArchive streams a docker-save tar of n layers, each one file of size bytes, without
// holding any layer in memory: each layer tar's size is known up front, and its digest (the diff
// ID) is computed while it is written.
func writeBigArchive(file string, n int, size int64) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	var diffIDs []string
	var paths []string
	for i := 0; i < n; i++ {
		inner := int64(512) + (size+511)/512*512 + 1024 // header, padded data, end-of-archive
		p := fmt.Sprintf("%d/layer.tar", i)
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: inner, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		h := sha256.New()
		itw := tar.NewWriter(io.MultiWriter(tw, h))
		if err := itw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data-%d.bin", i), Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		rng := rand.New(rand.NewChaCha8([32]byte{byte(i)}))
		// Random 8-byte words from a 4096-word dictionary: LZ matches, like real files, so gzip
		// has work to do and the layer shrinks.
		var dict [4096]uint64
		for k := range dict {
			dict[k] = rng.Uint64()
		}
		buf := make([]byte, 1<<16)
		for left := size; left > 0; left -= int64(len(buf)) {
			for j := 0; j < len(buf); j += 8 {
				binary.LittleEndian.PutUint64(buf[j:], dict[rng.IntN(len(dict))])
			}
			if _, err := itw.Write(buf[:min(int64(len(buf)), left)]); err != nil {
				return err
			}
		}
		if err := itw.Close(); err != nil {
			return err
		}
		diffIDs = append(diffIDs, "sha256:"+hex.EncodeToString(h.Sum(nil)))
		paths = append(paths, p)
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
		"config": map[string]any{},
	})
	if err := tw.WriteHeader(&tar.Header{Name: "config.json", Mode: 0o644, Size: int64(len(cfg)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(cfg); err != nil {
		return err
	}
	m, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{"big:latest"}, "Layers": paths}})
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(m)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(m); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

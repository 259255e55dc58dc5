package progress

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRenderer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		terminal bool
		want     []string
	}{
		{"terminal", true, []string{"\r", "\x1b[K", "[", "%", "a: done, 1.0 MiB"}},
		{"log", false, []string{"a: ", "% (", " of 1.0 MiB", "a: done, 1.0 MiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuf
			r := New(&out, tc.terminal, 10*time.Millisecond)
			var n atomic.Int64
			task := r.Start("a", 1<<20, n.Load)
			for i := 0; i < 4; i++ {
				n.Add(1 << 18)
				time.Sleep(15 * time.Millisecond)
			}
			task.Finish(nil)
			got := out.String()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("output %q lacks %q", got, w)
				}
			}
			if !tc.terminal && strings.Contains(got, "\r") {
				t.Errorf("log output has carriage returns: %q", got)
			}
		})
	}
}

func TestForSharesPerWriter(t *testing.T) {
	var a, b syncBuf
	r1, r2 := For(&a, true), For(&a, true)
	if r1 != r2 || r1 == For(&b, true) {
		t.Fatal("For must return one renderer per writer")
	}
}

func TestHuman(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 30: "3.0 GiB"} {
		if got := human(in); got != want {
			t.Errorf("human(%d) = %q, want %q", in, got, want)
		}
	}
}

// TestLogLinesNeverShareTheBarsLine: a line written while the bar is on screen starts at column 1 of a
// cleared line, not after the bar's text.
func TestLogLinesNeverShareTheBarsLine(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, true, time.Hour)
	task := r.Start("registry/app", 100, func() int64 { return 50 })
	r.draw()
	fmt.Fprintln(r.Writer(), "ecrpush: pushed tags=1")
	task.Finish(nil)
	out := buf.String()
	bar := strings.Index(out, "registry/app")
	line := strings.Index(out, "ecrpush: pushed")
	if bar < 0 || line < bar || !strings.HasSuffix(out[:line], "\r\x1b[K") {
		t.Fatalf("the log line does not start on a cleared line after the bar: %q", out)
	}
}

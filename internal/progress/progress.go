package progress

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"time"
)

// Renderer owns one output. Safe for concurrent use.
type Renderer struct {
	w        io.Writer
	terminal bool
	interval time.Duration

	mu      sync.Mutex
	tasks   []*Task
	stop    chan struct{}
	stopped chan struct{}
	drawn   bool // a terminal line is on screen
}

var renderers sync.Map // io.Writer → *Renderer

// For returns the renderer for w, shared by every caller passing the same writer, so concurrent
// transfers to one terminal share one line instead of fighting over it.
func For(w io.Writer, terminal bool) *Renderer {
	if w == nil || !reflect.TypeOf(w).Comparable() {
		return New(w, terminal, 0)
	}
	if r, ok := renderers.Load(w); ok {
		return r.(*Renderer)
	}
	r, _ := renderers.LoadOrStore(w, New(w, terminal, 0))
	return r.(*Renderer)
}

// New returns a renderer drawing every interval (0: 200 ms on a terminal, 5 s otherwise).
func New(w io.Writer, terminal bool, interval time.Duration) *Renderer {
	if interval <= 0 {
		interval = 5 * time.Second
		if terminal {
			interval = 200 * time.Millisecond
		}
	}
	return &Renderer{w: w, terminal: terminal, interval: interval}
}

// Task is one transfer; value reports its bytes done so far.
type Task struct {
	r     *Renderer
	name  string
	total int64
	value func() int64
	start time.Time
}

// Start adds a task of total bytes whose progress value() reports.
func (r *Renderer) Start(name string, total int64, value func() int64) *Task {
	t := &Task{r: r, name: name, total: total, value: value, start: time.Now()}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks = append(r.tasks, t)
	if r.stop == nil {
		r.stop, r.stopped = make(chan struct{}), make(chan struct{})
		go r.loop(r.stop, r.stopped)
	}
	return t
}

// Finish removes the task and prints its final line.
func (t *Task) Finish(err error) {
	r := t.r
	r.mu.Lock()
	for i, x := range r.tasks {
		if x == t {
			r.tasks = append(r.tasks[:i], r.tasks[i+1:]...)
			break
		}
	}
	status := "done"
	if err != nil {
		status = "failed"
	}
	line := fmt.Sprintf("%s: %s, %s in %.1fs", t.name, status, human(t.value()), time.Since(t.start).Seconds())
	r.clearLocked()
	fmt.Fprintln(r.w, line)
	var stop, stopped chan struct{}
	if len(r.tasks) == 0 && r.stop != nil {
		stop, stopped = r.stop, r.stopped
		r.stop, r.stopped = nil, nil
	}
	r.mu.Unlock()
	if stop != nil {
		close(stop)
		<-stopped
	}
}

func (r *Renderer) loop(stop, stopped chan struct{}) {
	defer close(stopped)
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			r.draw()
		}
	}
}

func (r *Renderer) draw() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.tasks) == 0 {
		return
	}
	if r.terminal {
		parts := make([]string, 0, len(r.tasks))
		for _, t := range r.tasks {
			parts = append(parts, t.short())
		}
		fmt.Fprintf(r.w, "\r%s\x1b[K", strings.Join(parts, " | "))
		r.drawn = true
		return
	}
	for _, t := range r.tasks {
		fmt.Fprintln(r.w, t.long())
	}
}

func (r *Renderer) clearLocked() {
	if r.terminal && r.drawn {
		fmt.Fprint(r.w, "\r\x1b[K")
		r.drawn = false
	}
}

func (t *Task) fraction() float64 {
	if t.total <= 0 {
		return 1
	}
	f := float64(t.value()) / float64(t.total)
	return min(max(f, 0), 1)
}

// short is the terminal form: name [=====>    ] 45%.
func (t *Task) short() string {
	const width = 20
	f := t.fraction()
	n := int(f * width)
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("%s [%s] %3.0f%% %s", t.name, bar, f*100, human(t.value()))
}

// long is the log form: name: 45% (123.4 MiB of 270.0 MiB, 12.3 MiB/s).
func (t *Task) long() string {
	v := t.value()
	rate := float64(v) / max(time.Since(t.start).Seconds(), 0.001)
	return fmt.Sprintf("%s: %.0f%% (%s of %s, %s/s)", t.name, t.fraction()*100, human(v), human(t.total), human(int64(rate)))
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGT"[i-1])
}

// Writer is the renderer's output for everything else written there (log lines): each write first clears
// a bar drawn on the terminal, so a line never continues the bar's text; the next tick draws the bar again
// below it.
func (r *Renderer) Writer() io.Writer { return lineWriter{r} }

type lineWriter struct{ r *Renderer }

func (l lineWriter) Write(p []byte) (int, error) {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	l.r.clearLocked()
	return l.r.w.Write(p)
}

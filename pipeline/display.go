package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"pipehost/pipeline/engine"
)

// liveDisplay shows, on a terminal, one line per running pipeline: its
// rows, rows per second, its connector's requests and retries, time so far
// and, at the end, how it ended. Log
// lines written through it are printed above the lines, so the display and
// the log never tear each other. It implements engine.Watcher.
type liveDisplay struct {
	p *mpb.Progress
}

var (
	_ engine.Watcher      = (*liveDisplay)(nil)
	_ engine.RequestWatch = (*displayLine)(nil)
)

// displayRefresh is how often the lines are redrawn: smooth enough to see
// rows move, rare enough to cost nothing.
const displayRefresh = 150 * time.Millisecond

func newLiveDisplay(w io.Writer) *liveDisplay {
	return &liveDisplay{p: mpb.New(mpb.WithOutput(w), mpb.WithRefreshRate(displayRefresh), mpb.WithWidth(40))}
}

// Write prints log lines above the display.
func (d *liveDisplay) Write(b []byte) (int, error) { return d.p.Write(b) }

// Wait ends the display once every line has shown how its run ended.
func (d *liveDisplay) Wait() { d.p.Wait() }

// Started implements engine.Watcher.
func (d *liveDisplay) Started(pipeline string) engine.RunWatch {
	w := &displayLine{start: time.Now()}
	w.bar = d.p.New(0, mpb.NopStyle(),
		mpb.PrependDecorators(decor.Name(pipeline, decor.WC{C: decor.DindentRight | decor.DextraSpace, W: 16})),
		mpb.AppendDecorators(decor.Any(w.text)),
	)
	return w
}

// displayLine is one pipeline's line.
type displayLine struct {
	bar               *mpb.Bar
	start             time.Time
	rows              atomic.Int64
	requests, retries atomic.Int64

	mu     sync.Mutex
	status string // "" while running
	took   time.Duration
}

func (l *displayLine) text(decor.Statistics) string {
	l.mu.Lock()
	status, took := l.status, l.took
	l.mu.Unlock()
	if status == "" {
		status, took = "running", time.Since(l.start)
	}
	rows := l.rows.Load()
	rate := float64(rows) / max(took.Seconds(), 0.001)
	return fmt.Sprintf("%12d rows  %10.0f rows/s  %6d requests  %4d retries  %8s  %s",
		rows, rate, l.requests.Load(), l.retries.Load(), engine.FormatDuration(took), status)
}

// Requests implements engine.RequestWatch.
func (l *displayLine) Requests(requests, retries int64) {
	l.requests.Store(requests)
	l.retries.Store(retries)
}

// Rows implements engine.RunWatch.
func (l *displayLine) Rows(n int64) { l.rows.Add(n) }

// Done implements engine.RunWatch: the line shows the end and stays.
func (l *displayLine) Done(res engine.Result) {
	l.mu.Lock()
	// The run's own figures, as the summary table shows them: its
	// duration, and its requests (a read shared by several pipelines
	// counts on the first of them; the others show 0, as in the table).
	l.status, l.took = "ok", res.Duration
	if res.Duration == 0 {
		l.took = time.Since(l.start)
	}
	l.requests.Store(res.Requests)
	l.retries.Store(res.Retries)
	if res.Err != nil {
		l.status = "FAILED"
	}
	l.mu.Unlock()
	l.bar.SetTotal(-1, true)
}

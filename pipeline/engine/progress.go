package engine

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"pipehost/connector"
)

// DefaultProgressEvery is how often a running pipeline reports its progress
// in the log: often enough to see it move on a terminal, rare enough that a
// cron log of an hourly job stays short.
const DefaultProgressEvery = 10 * time.Second

// progress logs a pipeline's rows and rate every interval while it runs,
// and tells the host's Watcher, if any.
type progress struct {
	rows  atomic.Int64
	start time.Time
	stop  chan struct{}
	done  chan struct{}
	watch RunWatch // nil without a Watcher
}

// Watcher follows runs as they go, for a live display on a terminal. Its
// methods may be called from several goroutines at once (pipelines run in
// parallel, a shared read feeds several).
type Watcher interface {
	// Started is called when a pipeline's rows start to flow.
	Started(pipeline string) RunWatch
}

// RunWatch follows one run.
type RunWatch interface {
	// Rows adds n rows read.
	Rows(n int64)
	// Done is called once, with the run's result, when it ended.
	Done(res Result)
}

// RequestWatch is implemented by a RunWatch that also shows the requests
// and retries of the run's connector so far (the display on a terminal).
// Requests is called about once a second while the run reads, with totals
// since it started; pipelines running at once on one connector each see
// the connector's totals.
type RequestWatch interface {
	Requests(requests, retries int64)
}

// requestPoll is how often a watched run asks its connector for its
// counts: one small call over the plugin, invisible next to the read.
const requestPoll = time.Second

// watchRequests tells the watch, if it shows requests, c's counts since
// before, until the progress ends.
func (p *progress) watchRequests(c *Connector, before connector.Stats) {
	if p == nil {
		return
	}
	rw, ok := p.watch.(RequestWatch)
	if !ok {
		return
	}
	go func() {
		t := time.NewTicker(requestPoll)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				rw.Requests(c.stats().Sub(before).Totals())
			}
		}
	}()
}

// startProgress starts the progress of a pipeline's run.
func (h *Host) startProgress(log hclog.Logger, pipeline string) *progress {
	p := startProgress(log, h.opts.ProgressEvery)
	if h.opts.Watcher != nil {
		p.watch = h.opts.Watcher.Started(pipeline)
	}
	return p
}

func startProgress(log hclog.Logger, every time.Duration) *progress {
	p := &progress{start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	if every < 0 { // counted, never logged
		close(p.done)
		return p
	}
	if every == 0 {
		every = DefaultProgressEvery
	}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				rows := p.rows.Load()
				elapsed := time.Since(p.start)
				log.Info("progress", "rows", rows, "rows_per_s", int64(float64(rows)/elapsed.Seconds()), "elapsed", FormatDuration(elapsed))
			}
		}
	}()
	return p
}

func (p *progress) add(n int64) {
	p.rows.Add(n)
	if p.watch != nil {
		p.watch.Rows(n)
	}
}

// done tells the watcher how the run ended.
func (p *progress) finished(res Result) {
	if p != nil && p.watch != nil {
		p.watch.Done(res)
	}
}

func (p *progress) end() {
	close(p.stop)
	<-p.done
}

// FormatDuration is the one way the host prints a duration (the summary
// table, the live display, log lines): milliseconds under a second
// ("173ms"), tenths of a second under a minute ("12.3s"), whole seconds
// above ("2m3s").
func FormatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

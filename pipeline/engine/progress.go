package engine

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultProgressEvery is how often a running pipeline reports its progress
// in the log: often enough to see it move on a terminal, rare enough that a
// cron log of an hourly job stays short.
const DefaultProgressEvery = 10 * time.Second

// progress logs a pipeline's rows and rate every interval while it runs.
type progress struct {
	rows  atomic.Int64
	start time.Time
	stop  chan struct{}
	done  chan struct{}
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
				log.Info("progress", "rows", rows, "rows_per_s", int64(float64(rows)/elapsed.Seconds()), "elapsed", elapsed.Round(time.Second).String())
			}
		}
	}()
	return p
}

func (p *progress) add(n int64) { p.rows.Add(n) }

func (p *progress) end() {
	close(p.stop)
	<-p.done
}

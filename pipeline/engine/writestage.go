package engine

import (
	"context"
	"sync"

	"github.com/apache/arrow/go/v15/arrow"

	"pipehost/sinks"
)

// writeStage writes a pull run's records into its sink writer on a goroutine
// of its own, so that the read (decoding in process, or receiving from a
// plugin) and the sink's encoding and compression run at the same time.
// Records are written in the order they are handed over; flush waits until
// every record handed over is written, so a commit covers exactly the rows
// before its checkpoint. After a write fails, the stage drops what follows
// and every later call returns that error.
type writeStage struct {
	w    sinks.Writer
	in   chan writeItem
	done chan struct{}

	mu  sync.Mutex
	err error
}

// writeItem is a record to write or, with ack, a flush.
type writeItem struct {
	rec arrow.Record
	ack chan error
}

// writeAhead is how many records may wait for the writer: enough to keep
// both sides busy, few enough to keep memory flat.
const writeAhead = 2

func startWriteStage(ctx context.Context, w sinks.Writer) *writeStage {
	s := &writeStage{w: w, in: make(chan writeItem, writeAhead), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for it := range s.in {
			if it.rec != nil {
				if s.failed() == nil {
					rec, cleaned := cleanNUL(it.rec)
					if err := w.Write(ctx, rec); err != nil {
						s.mu.Lock()
						s.err = err
						s.mu.Unlock()
					}
					if cleaned {
						rec.Release()
					}
				}
				it.rec.Release()
			}
			if it.ack != nil {
				it.ack <- s.failed()
			}
		}
	}()
	return s
}

func (s *writeStage) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// write hands rec over (retaining it). It returns an earlier write's error,
// or ctx's when ctx ends first.
func (s *writeStage) write(ctx context.Context, rec arrow.Record) error {
	if err := s.failed(); err != nil {
		return err
	}
	rec.Retain()
	select {
	case s.in <- writeItem{rec: rec}:
		return nil
	case <-ctx.Done():
		rec.Release()
		return ctx.Err()
	}
}

// flush waits until every record handed over is written, and returns the
// first write error.
func (s *writeStage) flush(ctx context.Context) error {
	ack := make(chan error, 1)
	select {
	case s.in <- writeItem{ack: ack}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ack:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop ends the stage once what was handed over is written or dropped; the
// writer is then the caller's again. It is safe to call more than once.
func (s *writeStage) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.in)
	<-s.done
}

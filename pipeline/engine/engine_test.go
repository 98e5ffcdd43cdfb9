package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"pipehost/connector"
	"pipehost/connector/numbers"
	"pipehost/pipeline/config"
	"pipehost/pipeline/state"
	"pipehost/sinks"
)

// memSink is an in-memory destination: committed rows per stream and the
// checkpoint committed with them, for the engine's unit tests.
type memSink struct {
	mu   sync.Mutex
	rows map[string]int64
	cp   map[string][]byte
	at   map[string]time.Time
	pads map[string][]string // the values of a "pad" column written, committed or not
}

type memDriver struct{ s *memSink }

func (d memDriver) Modes() []string { return []string{sinks.Append} }
func (d memDriver) Open(decode sinks.Decode, _ sinks.Env) (sinks.Sink, error) {
	return d.s, decode(&struct{}{})
}
func (s *memSink) Close() error                  { return nil }
func (s *memSink) Location(stream string) string { return "memory " + stream }

func (s *memSink) Checkpoint(_ context.Context, pipeline, stream string) ([]byte, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cp[pipeline+"/"+stream], s.at[pipeline+"/"+stream], nil
}

func (s *memSink) Open(_ context.Context, st sinks.Stream) (sinks.Writer, error) {
	return &memWriter{s: s, key: st.Pipeline + "/" + st.Name}, nil
}

type memWriter struct {
	s       *memSink
	key     string
	pending int64
}

func (w *memWriter) Write(_ context.Context, rec arrow.Record) error {
	w.pending += rec.NumRows()
	if idx := rec.Schema().FieldIndices("pad"); len(idx) == 1 {
		col := rec.Column(idx[0]).(*array.String)
		w.s.mu.Lock()
		for i := 0; i < col.Len(); i++ {
			w.s.pads[w.key] = append(w.s.pads[w.key], col.Value(i))
		}
		w.s.mu.Unlock()
	}
	return nil
}
func (w *memWriter) Abort() error { w.pending = 0; return nil }
func (w *memWriter) Commit(_ context.Context, c sinks.Commit) (sinks.CommitInfo, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	n := w.pending
	w.s.rows[w.key] += n
	if c.Checkpoint != nil && n > 0 {
		w.s.cp[w.key], w.s.at[w.key] = c.Checkpoint, time.Now()
	}
	w.pending = 0
	return sinks.CommitInfo{Rows: n, Location: w.key}, nil
}

var mem = &memSink{rows: map[string]int64{}, cp: map[string][]byte{}, at: map[string]time.Time{}, pads: map[string][]string{}}

func init() {
	sinks.Register("memory", memDriver{mem})
	config.RegisterBuiltin("numbers") // runs in process: no plugin to build
}

// host opens a pipeline file whose numbers connector runs in process.
func host(t *testing.T, hcl string, store state.Store) *Host {
	return hostWith(t, hcl, store, &numbers.Connector{})
}

// hostWith opens a pipeline file whose connectors are all conn, in
// process.
func hostWith(t *testing.T, hcl string, store state.Store, conn connector.Connector) *Host {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.hcl")
	os.WriteFile(path, []byte(hcl), 0o644)
	f, diags := config.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	h, diags := Open(context.Background(), f, Options{State: store,
		Open: func(_ context.Context, name string, block *config.Connector, _ OpenEnv) (Opened, error) {
			return Opened{Conn: conn}, nil
		}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	t.Cleanup(h.Close)
	return h
}

// TestPullRunsCommitAndResume: in process, a pull commits every row with
// its checkpoint, the next run resumes after it (0 rows), a full refresh
// reads everything again, and the state store records each run.
func TestPullRunsCommitAndResume(t *testing.T) {
	store, _ := state.OpenLocal(t.TempDir())
	h := host(t, `
sink "memory" "m" {}
pipeline "nums" {
  from    = connector.numbers.numbers
  to      = sink.memory.m
  options = { count = 250, batch = 100 }
}`, store)
	pl := h.File.Pipeline("nums")
	if res := h.Run(context.Background(), pl, RunOptions{}); res.Err != nil || res.Rows != 250 {
		t.Fatalf("first run: %d rows, %v", res.Rows, res.Err)
	}
	if res := h.Run(context.Background(), pl, RunOptions{}); res.Err != nil || res.Rows != 0 {
		t.Fatalf("second run: %d rows, %v", res.Rows, res.Err)
	}
	e, _ := store.Get("nums", "numbers")
	if string(e.Bytes()) != "250" || e.LastRun == nil || e.LastRun.Status != "ok" || e.Binding == nil || e.Binding.Destination != "memory numbers" {
		t.Fatalf("state %+v", e)
	}
	if res, from := h.Plan(context.Background(), pl, RunOptions{}); res.Err != nil || from != "after checkpoint 250" {
		t.Fatalf("plan: %q %v", from, res.Err)
	}
	if mem.rows["nums/numbers"] != 250 {
		t.Fatalf("the sink holds %d rows", mem.rows["nums/numbers"])
	}
}

// TestARunRefusesAnotherRunsLock: the shared begin step records a run that
// could not take the lock as failed.
func TestARunRefusesAnotherRunsLock(t *testing.T) {
	store, _ := state.OpenLocal(t.TempDir())
	h := host(t, `
sink "memory" "m" {}
pipeline "locked" {
  from = connector.numbers.numbers
  to   = sink.memory.m
}`, store)
	unlock, err := store.Lock("locked")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	res := h.Run(context.Background(), h.File.Pipeline("locked"), RunOptions{})
	if res.Err == nil || !errors.Is(res.Err, state.ErrLocked) {
		t.Fatalf("run under another's lock: %v", res.Err)
	}
	if e, _ := store.Get("locked", "numbers"); e.LastRun == nil || e.LastRun.Status != "failed" {
		t.Fatalf("the refused run is not recorded: %+v", e.LastRun)
	}
}

// TestRunAllInParallelKeepsFileOrder: with Parallel 3, four pipelines run
// at once (three at a time), each commits its own rows and checkpoint, and
// the results come back in the order of the file; once ctx is cancelled,
// nothing more starts and what did not start says so.
func TestRunAllInParallelKeepsFileOrder(t *testing.T) {
	store, _ := state.OpenLocal(t.TempDir())
	h := host(t, `
sink "memory" "m" {}
pipeline "par1" {
  from    = connector.numbers.numbers
  to      = sink.memory.m
  options = { count = 4000, batch = 100 }
}
pipeline "par2" {
  from    = connector.numbers.numbers
  to      = sink.memory.m
  options = { count = 10, batch = 100 }
}
pipeline "par3" {
  from    = connector.numbers.numbers
  to      = sink.memory.m
  options = { count = 2000, batch = 50 }
}
pipeline "par4" {
  from    = connector.numbers.numbers
  to      = sink.memory.m
  options = { count = 300, batch = 100 }
}`, store)
	pls := h.File.Pipelines
	results := h.RunAll(context.Background(), pls, RunOptions{Parallel: 3})
	want := map[string]int64{"par1": 4000, "par2": 10, "par3": 2000, "par4": 300}
	for i, r := range results {
		if r.Pipeline != pls[i].Name || r.Err != nil || r.Rows != want[r.Pipeline] {
			t.Fatalf("result %d: %s, %d rows, %v", i, r.Pipeline, r.Rows, r.Err)
		}
		if e, _ := store.Get(r.Pipeline, "numbers"); string(e.Bytes()) != fmt.Sprint(want[r.Pipeline]) {
			t.Fatalf("%s: checkpoint %s", r.Pipeline, e.Bytes())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, r := range h.RunAll(ctx, pls, RunOptions{Parallel: 3}) {
		if !errors.Is(r.Err, ErrInterrupted) {
			t.Fatalf("%s after cancel: %v", r.Pipeline, r.Err)
		}
	}
}

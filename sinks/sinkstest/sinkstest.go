// Package sinkstest is the conformance suite every destination runs (as
// cloudquery's plugin/testing_write.go is for its destinations): rows are
// visible only with their commit and its checkpoint, an abort leaves
// nothing, a later writer resumes from the last checkpoint, an overwrite
// replaces what was there at its final commit, and a claim excludes a
// second run. A sink's own tests call Run with a Harness that opens fresh
// destinations and reads their rows back.
package sinkstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"pipehost/sinks"
)

// Schema is the rows the suite writes: a key and a number.
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "_id", Type: arrow.BinaryTypes.String},
	{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
}, nil)

// Harness opens destinations for the suite and reads them back.
type Harness struct {
	// Open returns a sink on a fresh destination of its own (a new folder,
	// schema or bucket) and a function that reads the _id values committed
	// for a stream, sorted (none when the stream has nothing yet).
	Open func(t *testing.T) (sinks.Sink, func(stream string) []string)
	// Modes are the write modes the sink's driver takes.
	Modes []string
}

// Rows makes a record of ids from to to (exclusive): _id "r<n>".
func Rows(from, to int) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, Schema)
	defer b.Release()
	for i := from; i < to; i++ {
		b.Field(0).(*array.StringBuilder).Append(id(i))
		b.Field(1).(*array.Int64Builder).Append(int64(i))
	}
	return b.NewRecord()
}

func id(i int) string {
	return "r" + string(rune('a'+i/26/26%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i%26))
}

func ids(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, id(i))
	}
	sort.Strings(out)
	return out
}

func same(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func write(t *testing.T, w sinks.Writer, from, to int) {
	t.Helper()
	rec := Rows(from, to)
	defer rec.Release()
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, s sinks.Sink, mode string) sinks.Writer {
	t.Helper()
	w, err := s.Open(context.Background(), sinks.Stream{Pipeline: "conformance", Name: "things", Schema: Schema, PrimaryKey: []string{"_id"}, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// Run runs the suite against the sinks h opens.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	t.Run("rows are visible with their commit and its checkpoint", func(t *testing.T) {
		s, read := h.Open(t)
		w := open(t, s, sinks.Append)
		defer w.Abort()
		write(t, w, 0, 100)
		if got := read("things"); len(got) != 0 {
			t.Fatalf("%d rows visible before the commit", len(got))
		}
		if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"at":1}`)}); err != nil {
			t.Fatal(err)
		}
		if got := read("things"); !same(got, ids(0, 100)) {
			t.Fatalf("%d rows after the commit, want 100", len(got))
		}
		write(t, w, 100, 150)
		if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"at":2}`), Final: true}); err != nil {
			t.Fatal(err)
		}
		if got := read("things"); !same(got, ids(0, 150)) {
			t.Fatalf("%d rows after two commits, want 150", len(got))
		}
		if cr, ok := s.(sinks.CheckpointReader); ok {
			cp, _, err := cr.Checkpoint(ctx, "conformance", "things")
			if err != nil || string(cp) != `{"at":2}` {
				t.Fatalf("checkpoint %s, %v; want the last commit's", cp, err)
			}
		}
	})
	t.Run("an abort leaves neither rows nor checkpoint", func(t *testing.T) {
		s, read := h.Open(t)
		w := open(t, s, sinks.Append)
		write(t, w, 0, 10)
		if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"at":1}`)}); err != nil {
			t.Fatal(err)
		}
		write(t, w, 10, 60)
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		w.Abort() // safe twice
		if got := read("things"); !same(got, ids(0, 10)) {
			t.Fatalf("%d rows after an abort, want the 10 committed", len(got))
		}
		if cr, ok := s.(sinks.CheckpointReader); ok {
			if cp, _, _ := cr.Checkpoint(ctx, "conformance", "things"); string(cp) != `{"at":1}` {
				t.Fatalf("checkpoint after an abort: %s", cp)
			}
		}
	})
	t.Run("a later writer resumes after the last checkpoint", func(t *testing.T) {
		s, read := h.Open(t)
		w := open(t, s, sinks.Append)
		write(t, w, 0, 20)
		if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"at":20}`), Final: true}); err != nil {
			t.Fatal(err)
		}
		w.Abort()
		w = open(t, s, sinks.Append)
		defer w.Abort()
		write(t, w, 20, 30)
		if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"at":30}`), Final: true}); err != nil {
			t.Fatal(err)
		}
		if got := read("things"); !same(got, ids(0, 30)) {
			t.Fatalf("%d rows, want 30 once each", len(got))
		}
	})
	t.Run("an overwrite replaces the rows at its final commit", func(t *testing.T) {
		if !contains(h.Modes, sinks.Overwrite) {
			t.Skip("the sink does not overwrite")
		}
		s, read := h.Open(t)
		w := open(t, s, sinks.Append)
		write(t, w, 0, 50)
		if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"at":1}`), Final: true}); err != nil {
			t.Fatal(err)
		}
		w.Abort()
		w = open(t, s, sinks.Overwrite)
		defer w.Abort()
		write(t, w, 100, 105)
		if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"at":2}`)}); err != nil {
			t.Fatal(err)
		}
		if got := read("things"); !same(got, ids(0, 50)) {
			t.Fatalf("before the final commit an overwrite shows %d rows, want the old 50", len(got))
		}
		write(t, w, 105, 110)
		if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"at":3}`), Final: true}); err != nil {
			t.Fatal(err)
		}
		if got := read("things"); !same(got, ids(100, 110)) {
			t.Fatalf("after the overwrite %d rows, want its 10", len(got))
		}
	})
	t.Run("two pipelines commit into one stream at once", func(t *testing.T) {
		// While one pipeline commits row after row, another opens writers
		// on the same stream again and again (each Open may sweep what a
		// killed run of it left) and commits rows of its own: no commit of
		// the first fails or loses its rows (a sweep took another
		// pipeline's closed, not yet renamed file before).
		s, read := h.Open(t)
		w := open(t, s, sinks.Append)
		defer w.Abort()
		stop, done := make(chan struct{}), make(chan error)
		go func() {
			var err error
			defer func() { done <- err }()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				other, oerr := s.Open(ctx, sinks.Stream{Pipeline: "other", Name: "things", Schema: Schema, PrimaryKey: []string{"_id"}, Mode: sinks.Append})
				if oerr != nil {
					err = oerr
					return
				}
				if n == 0 {
					rec := Rows(1000, 1010)
					err = other.Write(ctx, rec)
					rec.Release()
					if err == nil {
						_, err = other.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"other":1}`), Final: true})
					}
				}
				other.Abort()
				if err != nil {
					return
				}
			}
		}()
		const commits = 60
		var failed error
		for i := 0; i < commits && failed == nil; i++ {
			rec := Rows(i, i+1)
			failed = w.Write(ctx, rec)
			rec.Release()
			if failed == nil {
				_, failed = w.Commit(ctx, sinks.Commit{Checkpoint: []byte(fmt.Sprintf(`{"at":%d}`, i)), Final: i == commits-1})
			}
		}
		close(stop)
		if err := <-done; err != nil {
			t.Fatalf("the other pipeline: %v", err)
		}
		if failed != nil {
			t.Fatalf("a commit failed beside the other pipeline: %v", failed)
		}
		if got, want := read("things"), append(ids(0, commits), ids(1000, 1010)...); !same(got, sorted(want)) {
			t.Fatalf("%d rows, want the %d of both pipelines once each", len(got), len(want))
		}
		if cr, ok := s.(sinks.CheckpointReader); ok {
			if cp, _, err := cr.Checkpoint(ctx, "conformance", "things"); err != nil || string(cp) != fmt.Sprintf(`{"at":%d}`, commits-1) {
				t.Fatalf("checkpoint %s, %v; want the last commit's", cp, err)
			}
		}
	})
	t.Run("a claim excludes a second run until released", func(t *testing.T) {
		s, _ := h.Open(t)
		cl, ok := s.(sinks.Claimer)
		if !ok {
			t.Skip("the sink takes no claims")
		}
		release, err := cl.Claim(ctx, "conformance", "things", "store-a", "run A")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Claim(ctx, "conformance", "things", "store-b", "run B"); !errors.Is(err, sinks.ErrClaimed) {
			t.Fatalf("a second claim: %v, want ErrClaimed", err)
		}
		release()
		again, err := cl.Claim(ctx, "conformance", "things", "store-b", "run B")
		if err != nil {
			t.Fatalf("after the release: %v", err)
		}
		again()
	})
}

func sorted(list []string) []string {
	sort.Strings(list)
	return list
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// FileIDs reads back a file sink's rows: the ids parse finds in each file
// matching pattern (a filepath.Glob pattern), sorted. A file that cannot be
// opened or parsed fails the test.
func FileIDs(t *testing.T, pattern string, parse func(r io.Reader) ([]string, error)) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parse(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ids = append(ids, got...)
	}
	sort.Strings(ids)
	return ids
}

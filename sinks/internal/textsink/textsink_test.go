package textsink

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"pipehost/sinks"
	"pipehost/sinks/internal/commitfile"
)

type lines struct{}

func (lines) Ext() string { return ".txt" }
func (lines) Begin(w *bufio.Writer, _ *arrow.Schema) error {
	_, err := w.WriteString("n\n")
	return err
}
func (lines) Row(w *bufio.Writer, rec arrow.Record, i int) error {
	_, err := w.WriteString(rec.Column(0).ValueStr(i) + "\n")
	return err
}

var schema = arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)

func rec(vals ...int64) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	b.Field(0).(*array.Int64Builder).AppendValues(vals, nil)
	return b.NewRecord()
}

func TestCommitsCarryTheirCheckpoint(t *testing.T) {
	base := t.TempDir()
	s, err := Open(&Config{Path: "out"}, sinks.Env{BaseDir: base}, lines{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, _ := s.Open(ctx, sinks.Stream{Pipeline: "p", Name: "st", Schema: schema})
	w.Write(ctx, rec(1, 2))
	if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte("cp1")}); err != nil {
		t.Fatal(err)
	}
	w.Write(ctx, rec(3))
	w.Abort()
	files, _ := filepath.Glob(filepath.Join(base, "out", "st", "*.txt"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	b, _ := os.ReadFile(files[0])
	if string(b) != "n\n1\n2\n" {
		t.Fatalf("content %q", b)
	}
	cp, at, err := s.Checkpoint(ctx, "p", "st")
	if err != nil || string(cp) != "cp1" || at.IsZero() {
		t.Fatalf("checkpoint %q %v %v", cp, at, err)
	}
	if cp, _, _ := s.Checkpoint(ctx, "other", "st"); cp != nil {
		t.Fatalf("another pipeline's checkpoint: %q", cp)
	}
}

func TestACrashBetweenManifestAndRenameIsRolledForward(t *testing.T) {
	base := t.TempDir()
	s, _ := Open(&Config{Path: "out"}, sinks.Env{BaseDir: base}, lines{})
	ctx := context.Background()
	w, _ := s.Open(ctx, sinks.Stream{Pipeline: "p", Name: "st", Schema: schema})
	w.Write(ctx, rec(7))
	if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte("cp")}); err != nil {
		t.Fatal(err)
	}
	// Undo the last rename, as if the host died right after the manifest.
	dir := filepath.Join(base, "out", "st")
	files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	os.Rename(files[0], filepath.Join(dir, ".part-crashed.tmp"))
	man, _ := os.ReadFile(filepath.Join(dir, ".pipehost-p.json"))
	os.WriteFile(filepath.Join(dir, ".pipehost-p.json"), []byte(strings.Replace(string(man), `"temp":".part-`, `"temp":".part-crashed.tmp","x":".part-`, 1)), 0o644)
	cp, _, err := s.Checkpoint(ctx, "p", "st")
	if err != nil || string(cp) != "cp" {
		t.Fatalf("checkpoint %q %v", cp, err)
	}
	if got, _ := filepath.Glob(filepath.Join(dir, "*.txt")); len(got) != 1 {
		t.Fatalf("the commit was not rolled forward: %v", got)
	}
}

// TestAKilledRunsTemporaryFileIsRemovedByTheNextRun: a run killed while
// writing leaves a hidden .part-*.tmp; the next run's Open removes it at
// once, while a file a live writer holds stays.
func TestAKilledRunsTemporaryFileIsRemovedByTheNextRun(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "out", "st")
	os.MkdirAll(dir, 0o755)
	// p's killed run left a file (closed: its lock went with its process);
	// so did a host from before names carried their pipeline.
	killed, err := commitfile.CreateTemp(dir, "p")
	if err != nil {
		t.Fatal(err)
	}
	killed.WriteString("n\n1\n")
	killed.Close()
	os.WriteFile(filepath.Join(dir, ".part-123456.tmp"), []byte("n\n1\n"), 0o644)
	s, err := Open(&Config{Path: "out"}, sinks.Env{BaseDir: base}, lines{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	live, _ := s.Open(ctx, sinks.Stream{Pipeline: "other", Name: "st", Schema: schema})
	live.Write(ctx, rec(1))
	defer live.Abort()
	w, err := s.Open(ctx, sinks.Stream{Pipeline: "p", Name: "st", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	left, _ := filepath.Glob(filepath.Join(dir, ".part-*.tmp"))
	if len(left) != 1 || left[0] == killed.Name() || strings.HasSuffix(left[0], "-123456.tmp") {
		t.Fatalf("temporary files left: %v (want only the live writer's)", left)
	}
}

// TestAPlantedManifestCannotMoveFilesOutside: a manifest whose paths leave
// the stream's folder is refused with a clear error; nothing is moved.
func TestAPlantedManifestCannotMoveFilesOutside(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "out", "st")
	os.MkdirAll(dir, 0o755)
	victim := filepath.Join(base, "victim.txt")
	os.WriteFile(victim, []byte("keep me"), 0o644)
	for _, m := range []string{
		`{"file":"../../../moved.txt","temp":"../../victim.txt"}`,
		`{"file":"ok.txt","temp":"../../victim.txt"}`,
		`{"file":"/tmp/x.txt","temp":".part-1.tmp"}`,
	} {
		os.WriteFile(filepath.Join(dir, ".pipehost-p.json"), []byte(m), 0o644)
		s, err := Open(&Config{Path: "out"}, sinks.Env{BaseDir: base}, lines{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Open(context.Background(), sinks.Stream{Pipeline: "p", Name: "st", Schema: schema}); err == nil || !strings.Contains(err.Error(), "manifest") {
			t.Fatalf("manifest %s: %v", m, err)
		}
		if b, err := os.ReadFile(victim); err != nil || string(b) != "keep me" {
			t.Fatalf("manifest %s moved a file outside the folder", m)
		}
	}
}

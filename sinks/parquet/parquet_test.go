package parquet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"pipehost/sinks"
	"pipehost/sinks/internal/commitfile"
)

var schema = arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)

func batch(from, to int64) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := from; i < to; i++ {
		b.Field(0).(*array.Int64Builder).Append(i)
	}
	return b.NewRecord()
}

func open(t *testing.T, extra func(*Config)) (sinks.Writer, string) {
	t.Helper()
	base := t.TempDir()
	cfg := &Config{Path: "lake"}
	if extra != nil {
		extra(cfg)
	}
	s, err := Open(cfg, sinks.Env{BaseDir: base})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Open(context.Background(), sinks.Stream{Name: "things", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	return w, filepath.Join(base, "lake", "things")
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestNothingIsVisibleBeforeCommit(t *testing.T) {
	w, dir := open(t, nil)
	ctx := context.Background()
	rec := batch(0, 1000)
	defer rec.Release()
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if len(matches) != 0 {
		t.Fatalf("visible before commit: %v", matches)
	}
	info, err := w.Commit(ctx, sinks.Commit{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Rows != 1000 {
		t.Fatalf("committed %d rows", info.Rows)
	}
	if got := entries(t, dir); len(got) != 1 || filepath.Ext(got[0]) != ".parquet" {
		t.Fatalf("after commit: %v", got)
	}
	r, err := file.OpenParquetFile(info.Location, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRows() != 1000 {
		t.Fatalf("file holds %d rows", r.NumRows())
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	w, dir := open(t, nil)
	rec := batch(0, 10)
	defer rec.Release()
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Fatalf("abort left %v", got)
	}
}

func TestEachCommitIsOneFileAndRowGroupsAreCapped(t *testing.T) {
	rows := int64(100)
	w, dir := open(t, func(c *Config) { c.RowGroupRows = &rows })
	ctx := context.Background()
	for i := int64(0); i < 3; i++ {
		rec := batch(i*250, (i+1)*250)
		if err := w.Write(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		if _, err := w.Commit(ctx, sinks.Commit{}); err != nil {
			t.Fatal(err)
		}
	}
	got := entries(t, dir)
	if len(got) != 3 {
		t.Fatalf("files: %v", got)
	}
	r, err := file.OpenParquetFile(filepath.Join(dir, got[0]), false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRowGroups() != 3 {
		t.Fatalf("250 rows with row_group_rows=100 gave %d row groups", r.NumRowGroups())
	}
}

func TestStaleTemporaryFilesAreRemovedOnOpen(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "lake", "things")
	os.MkdirAll(dir, 0o755)
	// A killed run's file, written a moment ago (closed: its lock went
	// with its process), and one a live writer holds open and locked.
	killed, err := commitfile.CreateTemp(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	killed.WriteString("half")
	killed.Close()
	live, err := commitfile.CreateTemp(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	s, _ := Open(&Config{Path: "lake"}, sinks.Env{BaseDir: base})
	if _, err := s.Open(context.Background(), sinks.Stream{Name: "things", Schema: schema}); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dir); len(got) != 1 || got[0] != filepath.Base(live.Name()) {
		t.Fatalf("want only the live writer's file left, got %v", got)
	}
}

func TestBadCompressionIsRefused(t *testing.T) {
	lz := "lzo"
	if _, err := Open(&Config{Path: "x", FormatConfig: FormatConfig{Compression: &lz}}, sinks.Env{BaseDir: t.TempDir()}); err == nil {
		t.Fatal("lzo accepted")
	}
}

// TestOverwriteSwapsTheFolderAtTheFinalCommit: an overwrite's commits stay
// out of sight until the final one, which replaces the pipeline's files at
// once and keeps another pipeline's; an aborted overwrite leaves the folder
// as it was; a killed one's hidden folder is removed by the next writer.
func TestOverwriteSwapsTheFolderAtTheFinalCommit(t *testing.T) {
	base := t.TempDir()
	s, _ := Open(&Config{Path: "lake"}, sinks.Env{BaseDir: base})
	dir := filepath.Join(base, "lake", "things")
	ctx := context.Background()
	write := func(pipeline, mode string, from, to int64, final, abort bool) {
		w, err := s.Open(ctx, sinks.Stream{Pipeline: pipeline, Name: "things", Schema: schema, Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		rec := batch(from, to)
		defer rec.Release()
		w.Write(ctx, rec)
		if abort {
			w.Abort()
			return
		}
		if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte("cp"), Final: final}); err != nil {
			t.Fatal(err)
		}
		w.Abort()
	}
	write("a", sinks.Append, 0, 10, false, false)
	write("a", sinks.Append, 10, 20, false, false)
	write("b", sinks.Append, 0, 5, false, false)
	before := entries(t, dir)
	write("a", sinks.Overwrite, 0, 30, false, true) // aborted
	if got := entries(t, dir); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Fatalf("an aborted overwrite changed the folder: %v", got)
	}
	w, _ := s.Open(ctx, sinks.Stream{Pipeline: "a", Name: "things", Schema: schema, Mode: sinks.Overwrite})
	rec := batch(0, 30)
	w.Write(ctx, rec)
	rec.Release()
	w.Commit(ctx, sinks.Commit{Checkpoint: []byte("cp1")})
	if got := entries(t, dir); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Fatalf("an overwrite's first commit is visible: %v", got)
	}
	if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte("cp2"), Final: true}); err != nil {
		t.Fatal(err)
	}
	rows := map[string]int64{}
	for _, name := range entries(t, dir) {
		r, err := file.OpenParquetFile(filepath.Join(dir, name), false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rows[s.pipelineOf(filepath.Join(dir, name))] += r.NumRows()
		r.Close()
	}
	if rows["a"] != 30 || rows["b"] != 5 || len(rows) != 2 {
		t.Fatalf("after the overwrite: rows by pipeline %v, want a:30 b:5", rows)
	}
	// A killed overwrite leaves its hidden folder; the next writer removes it.
	os.MkdirAll(filepath.Join(base, "lake", ".things.replacing-killed"), 0o755)
	os.WriteFile(filepath.Join(base, "lake", ".things.replacing-killed", ".writer.lock"), nil, 0o600)
	write("a", sinks.Overwrite, 0, 3, true, false)
	if left, _ := filepath.Glob(filepath.Join(base, "lake", ".things.replacing-*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// TestRowGroupsAreCutBySize: wide rows are not buffered by the 50,000-row
// default; a row group ends once its rows reach row_group_mib.
func TestRowGroupsAreCutBySize(t *testing.T) {
	one := int64(1)
	base := t.TempDir()
	s, err := Open(&Config{Path: "lake", FormatConfig: FormatConfig{RowGroupMiB: &one}}, sinks.Env{BaseDir: base})
	if err != nil {
		t.Fatal(err)
	}
	recs := documents(10, 100) // 10 batches of 100 rows of ~4 KB: ~4 MB
	info := commitFile(t, s, "orders", recs)
	for _, r := range recs {
		r.Release()
	}
	r, err := file.OpenParquetFile(info.Location, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRows() != 1000 || r.NumRowGroups() < 3 {
		t.Fatalf("%d rows in %d row groups; want 1000 rows in several ~1 MiB groups", r.NumRows(), r.NumRowGroups())
	}
	for i := 0; i < r.NumRowGroups(); i++ {
		if r.MetaData().RowGroup(i).NumRows() == 0 {
			t.Fatalf("row group %d is empty", i)
		}
	}
}

// TestStringColumnsAreWrittenPlainUnlessADictionaryIsAsked: by default a
// string column's chunk has no dictionary page while an integer column's
// has one and a JSON document's has none; with dictionary = true the string
// column has one too. Both files read back the same values.
func TestStringColumnsAreWrittenPlainUnlessADictionaryIsAsked(t *testing.T) {
	for _, dict := range []bool{false, true} {
		base := t.TempDir()
		cfg := &Config{Path: "lake"}
		if dict {
			cfg.Dictionary = &dict
		}
		s, err := Open(cfg, sinks.Env{BaseDir: base})
		if err != nil {
			t.Fatal(err)
		}
		rec := lines(1, 3000)[0]
		info := commitFile(t, s, "order_lines", []arrow.Record{rec})
		r, err := file.OpenParquetFile(info.Location, false)
		if err != nil {
			t.Fatal(err)
		}
		has := dictionaryPages(t, r)
		want := map[string]bool{"order_id": dict, "season": dict, "quantity": true, "document": false}
		for col, w := range want {
			if has[col] != w {
				t.Errorf("dictionary = %v: column %s has a dictionary page: %v, want %v (all: %v)", dict, col, has[col], w, has)
			}
		}
		got := readBack(t, r)
		r.Close()
		if len(got) != 3000 || got[2999] != rec.Column(0).(*array.String).Value(2999)+"|"+rec.Column(1).(*array.String).Value(2999) {
			t.Fatalf("dictionary = %v: read back %d rows, last %q", dict, len(got), got[len(got)-1])
		}
	}
}

// dictionaryPages says, for each column of the first row group of r, by its
// path, whether its chunk has a dictionary page.
func dictionaryPages(t *testing.T, r *file.Reader) map[string]bool {
	t.Helper()
	rg := r.MetaData().RowGroup(0)
	has := map[string]bool{}
	for i := 0; i < rg.NumColumns(); i++ {
		cc, err := rg.ColumnChunk(i)
		if err != nil {
			t.Fatal(err)
		}
		has[cc.PathInSchema().String()] = cc.HasDictionaryPage()
	}
	return has
}

// readTable reads the whole of r; the caller releases it.
func readTable(t *testing.T, r *file.Reader) arrow.Table {
	t.Helper()
	fr, err := pqarrow.NewFileReader(r, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// readBack reads a file's order_id and season columns as "id|season" rows.
func readBack(t *testing.T, r *file.Reader) []string {
	t.Helper()
	tbl := readTable(t, r)
	defer tbl.Release()
	var out []string
	for _, a := range tbl.Column(0).Data().Chunks() {
		for i := 0; i < a.Len(); i++ {
			out = append(out, a.(*array.String).Value(i))
		}
	}
	k := 0
	for _, a := range tbl.Column(1).Data().Chunks() {
		for i := 0; i < a.Len(); i++ {
			out[k] += "|" + a.(*array.String).Value(i)
			k++
		}
	}
	return out
}

// TestNestedStringsAreWrittenPlainUnlessADictionaryIsAsked: a string inside
// a list of structs (orders' line items) is written plain by default, as
// top-level strings are, while a number beside it keeps its dictionary;
// with dictionary = true the string has one too. Both files read back the
// same values.
func TestNestedStringsAreWrittenPlainUnlessADictionaryIsAsked(t *testing.T) {
	item := arrow.StructOf(arrow.Field{Name: "style", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "qty", Type: arrow.PrimitiveTypes.Int64, Nullable: true})
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "items", Type: arrow.ListOf(item), Nullable: true}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	lb := b.Field(1).(*array.ListBuilder)
	sb := lb.ValueBuilder().(*array.StructBuilder)
	for i := 0; i < 500; i++ {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("order-%d", i))
		lb.Append(true)
		for k := 0; k < 3; k++ {
			sb.Append(true)
			sb.FieldBuilder(0).(*array.StringBuilder).Append(fmt.Sprintf("ST-%05d", (i+k)%40))
			sb.FieldBuilder(1).(*array.Int64Builder).Append(int64(k + 1))
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	for _, dict := range []bool{false, true} {
		cfg := &Config{Path: "lake"}
		if dict {
			cfg.Dictionary = &dict
		}
		s, err := Open(cfg, sinks.Env{BaseDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		info := commitFile(t, s, "orders", []arrow.Record{rec})
		r, err := file.OpenParquetFile(info.Location, false)
		if err != nil {
			t.Fatal(err)
		}
		has := dictionaryPages(t, r)
		want := map[string]bool{"id": dict, "items.list.element.style": dict, "items.list.element.qty": true}
		for col, w := range want {
			if has[col] != w {
				t.Errorf("dictionary = %v: column %s has a dictionary page: %v, want %v (all: %v)", dict, col, has[col], w, has)
			}
		}
		tbl := readTable(t, r)
		got := array.NewTableReader(tbl, 1<<16)
		got.Next()
		if !array.RecordEqual(got.Record(), rec) {
			t.Errorf("dictionary = %v: the file reads back other rows", dict)
		}
		got.Release()
		tbl.Release()
		r.Close()
	}
}

package parquet

import (
	"context"
	"path/filepath"
	"sort"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"pipehost/sinks"
	"pipehost/sinks/sinkstest"
)

// readIDs reads the _id column of every committed Parquet file of a
// stream's folder, sorted.
func readIDs(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	var out []string
	for _, f := range files {
		rdr, err := file.OpenParquetFile(f, false)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := fr.ReadTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range tbl.Column(0).Data().Chunks() {
			c := ch.(*array.String)
			for i := 0; i < c.Len(); i++ {
				out = append(out, c.Value(i))
			}
		}
		tbl.Release()
		rdr.Close()
	}
	sort.Strings(out)
	return out
}

func TestConformance(t *testing.T) {
	sinkstest.Run(t, sinkstest.Harness{Modes: Driver{}.Modes(), Open: func(t *testing.T) (sinks.Sink, func(string) []string) {
		base := t.TempDir()
		s, err := Open(&Config{Path: "lake"}, sinks.Env{BaseDir: base})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, func(stream string) []string { return readIDs(t, filepath.Join(base, "lake", stream)) }
	}})
}

package files

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"pipehost/connector"
)

// readAll reads a stream and returns its rows as column -> values, and the
// (row, line) of each.
func readAll(t *testing.T, dir, stream string, opts map[string]string) (map[string][]string, [][2]int64, error) {
	t.Helper()
	cols := map[string][]string{}
	var pos [][2]int64
	err := New(dir).Read(context.Background(), connector.ReadRequest{Stream: stream, Options: opts}, func(b connector.Batch) error {
		rec := b.Record
		for c, f := range rec.Schema().Fields() {
			for i := 0; i < int(rec.NumRows()); i++ {
				switch f.Name {
				case RowColumn:
					pos = append(pos, [2]int64{rec.Column(c).(*array.Int64).Value(i), 0})
				case LineColumn:
					if rec.Column(c).IsValid(i) {
						pos[len(pos)-int(rec.NumRows())+i][1] = rec.Column(c).(*array.Int64).Value(i)
					}
				default:
					cols[f.Name] = append(cols[f.Name], rec.Column(c).ValueStr(i))
				}
			}
		}
		return nil
	})
	return cols, pos, err
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCSVKeepsRowsAndLines(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "in.csv", "\ufeffUPC,Note\n111,plain\n222,\"two\nlines\"\n333,last\n")
	cols, pos, err := readAll(t, dir, "csv", map[string]string{"path": "in.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cols["UPC"], ",") != "111,222,333" || cols["Note"][1] != "two\nlines" {
		t.Fatalf("columns %v", cols)
	}
	if pos[2] != [2]int64{3, 5} {
		t.Fatalf("third row is at %v, want row 3 on line 5", pos[2])
	}
}

func TestCSVErrorsPointAtTheFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "bad.csv", "a,b\n1,2\n3,4,5\n")
	_, _, err := readAll(t, dir, "csv", map[string]string{"path": "bad.csv"})
	if err == nil || !strings.Contains(err.Error(), "bad.csv:3:1: row 2 has 3 fields") {
		t.Fatalf("error %v", err)
	}
	_, _, err = readAll(t, dir, "csv", map[string]string{"path": "bad.csv", "sep": ";"})
	if err == nil || !strings.Contains(err.Error(), "unknown option sep") {
		t.Fatalf("unknown option: %v", err)
	}
	_, _, err = readAll(t, dir, "csv", map[string]string{})
	if err == nil || !strings.Contains(err.Error(), "option path is required") {
		t.Fatalf("missing path: %v", err)
	}
}

func TestJSONLinesUnionOfKeys(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "in.jsonl", "{\"a\":\"x\",\"n\":1}\n\n{\"b\":true,\"n\":2.5,\"o\":{\"k\":1}}\n")
	cols, pos, err := readAll(t, dir, "jsonl", map[string]string{"path": "in.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	if cols["a"][0] != "x" || cols["a"][1] != "(null)" || cols["n"][1] != "2.5" || cols["o"][1] != `{"k":1}` || pos[1] != [2]int64{2, 3} {
		t.Fatalf("columns %v, positions %v", cols, pos)
	}
	write(t, dir, "bad.jsonl", "{\"a\":1}\n[1,2]\n")
	if _, _, err := readAll(t, dir, "jsonl", map[string]string{"path": "bad.jsonl"}); err == nil || !strings.Contains(err.Error(), "bad.jsonl:2:1") {
		t.Fatalf("error %v", err)
	}
}

func TestParquetKeepsTypes(t *testing.T) {
	dir := t.TempDir()
	schema := arrow.NewSchema([]arrow.Field{{Name: "qty", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{4, 5, 6}, nil)
	rec := b.NewRecord()
	f, _ := os.Create(filepath.Join(dir, "in.parquet"))
	w, err := pqarrow.NewFileWriter(schema, f, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	w.Write(rec)
	w.Close()
	cols, pos, err := readAll(t, dir, "parquet", map[string]string{"path": "in.parquet"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cols["qty"], ",") != "4,5,6" || pos[2][0] != 3 {
		t.Fatalf("columns %v positions %v", cols, pos)
	}
}

package files

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
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
	err := New(dir).Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: stream}}, Options: opts}, func(b connector.Batch) error {
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
	// A ragged record is one bad row with its position and reason (the
	// host rejects it); reading goes on.
	cols, pos, err := readAll(t, dir, "csv", map[string]string{"path": "bad.csv"})
	if err != nil || len(pos) != 2 || pos[1] != [2]int64{2, 3} || !strings.Contains(cols[ErrorColumn][1], "the record has 3 fields, the header has 2") ||
		cols[ErrorColumn][0] != "(null)" {
		t.Fatalf("a ragged record: %v %v %v", cols, pos, err)
	}
	_, _, err = readAll(t, dir, "csv", map[string]string{"path": "bad.csv", "sep": ";"})
	if err == nil || !strings.Contains(err.Error(), `no option "sep"`) {
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
	// A line that is not an object is one bad row at its line (the host
	// rejects it with the reason); reading goes on.
	write(t, dir, "bad.jsonl", "{\"a\":1}\n[1,2]\n")
	cols, pos, err = readAll(t, dir, "jsonl", map[string]string{"path": "bad.jsonl"})
	if err != nil || len(pos) != 2 || pos[1] != [2]int64{2, 2} || !strings.Contains(cols[ErrorColumn][1], "not a JSON object") {
		t.Fatalf("a line that is not an object: %v %v %v", cols, pos, err)
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

// TestAMalformedRecordIsOneBadRow: an unterminated quote, a bare quote or a
// bad JSON line is one row carrying its line and reason; the records after
// it are read; a file none of whose records reads fails, naming the first.
func TestAMalformedRecordIsOneBadRow(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("code,name\n")
	for i := 1; i <= 3000; i++ {
		switch i {
		case 1000:
			b.WriteString("C1000,\"unterminated name\n") // the quote never closes
		case 2000:
			b.WriteString("C2000,bare \" quote\n")
		default:
			b.WriteString("C" + strconv.Itoa(i) + ",\"Name, with comma\"\n")
		}
	}
	write(t, dir, "customers.csv", b.String())
	cols, pos, err := readAll(t, dir, "csv", map[string]string{"path": "customers.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pos) != 3000 {
		t.Fatalf("%d rows, want 3000 (2998 good, 2 bad)", len(pos))
	}
	bad := map[int64]string{}
	for i, e := range cols[ErrorColumn] {
		if e != "(null)" {
			bad[pos[i][1]] = e
		}
	}
	if len(bad) != 2 || !strings.Contains(bad[1001], "never closed") || !strings.Contains(bad[2001], "quote") {
		t.Fatalf("bad rows by line: %v", bad)
	}
	if cols["code"][2999] != "C3000" || cols["name"][2999] != "Name, with comma" {
		t.Fatalf("the last record: %s %s", cols["code"][2999], cols["name"][2999])
	}
	write(t, dir, "bad.jsonl", "{\"a\":1}\n{not json\n{\"a\":3}\n")
	cols, pos, err = readAll(t, dir, "jsonl", map[string]string{"path": "bad.jsonl"})
	if err != nil || len(pos) != 3 || cols["a"][2] != "3" || !strings.Contains(cols[ErrorColumn][1], "not a JSON object") || pos[1][1] != 2 {
		t.Fatalf("a bad JSON line: %v %v %v", cols, pos, err)
	}
	write(t, dir, "utf16.csv", "a,b\n\xff\xfe1\x00,\xff2\n\xfe\xff,\xff\n")
	if _, _, err := readAll(t, dir, "csv", map[string]string{"path": "utf16.csv"}); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Fatalf("a file in another encoding: %v", err)
	}
}

// TestJSONLinesWithABOMOrBadUTF8: a file that starts with a byte order mark
// keeps its first record (it was a reject), and a line whose bytes are not
// UTF-8 is a reject saying so (encoding/json sent U+FFFD in their place).
func TestJSONLinesWithABOMOrBadUTF8(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "bom.jsonl", "\ufeff{\"a\":\"first\"}\n{\"a\":\"caf\xe9\"}\n{\"a\":\"third\"}\n")
	cols, pos, err := readAll(t, dir, "jsonl", map[string]string{"path": "bom.jsonl"})
	if err != nil || len(pos) != 3 {
		t.Fatalf("%v %v %v", cols, pos, err)
	}
	if cols["a"][0] != "first" || cols[ErrorColumn][0] != "(null)" {
		t.Fatalf("the first record after a BOM: %q, error %q", cols["a"][0], cols[ErrorColumn][0])
	}
	if !strings.Contains(cols[ErrorColumn][1], "not valid UTF-8 (byte 10 of the line)") || strings.Contains(cols["a"][1], "\ufffd") {
		t.Fatalf("a line that is not UTF-8: %q, error %q", cols["a"][1], cols[ErrorColumn][1])
	}
	if cols["a"][2] != "third" {
		t.Fatalf("the third record: %q", cols["a"][2])
	}
}

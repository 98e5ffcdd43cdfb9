package files

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"pipehost/connector"
)

// FuzzReadCSVAndJSONLines: any file is read into rows (good or carrying an
// error) or refused as a whole, never a panic; every row has a position.
func FuzzReadCSVAndJSONLines(f *testing.F) {
	for _, seed := range []string{
		"a,b\n1,2\n", "a,b\n\"1\n2\",3\n", "a,b\n\"unterminated,1\n3,4\n", "a\n\"\"\"\n", "x\xff,y\n1,2\n",
		"{\"a\":1}\n{bad\n", "\n\n", "a;b\n1;2\n",
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		for _, stream := range []string{"csv", "jsonl"} {
			path := filepath.Join(dir, "in."+stream)
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Skip()
			}
			err := New(dir).Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: stream}}, Options: map[string]string{"path": path}}, func(b connector.Batch) error {
				for _, col := range b.Record.Columns() {
					if int64(col.Len()) != b.Record.NumRows() {
						t.Fatalf("%s: a column of %d rows in a batch of %d", stream, col.Len(), b.Record.NumRows())
					}
				}
				rows := b.Record.Column(b.Record.Schema().FieldIndices(RowColumn)[0])
				if rows.NullN() != 0 {
					t.Fatalf("%s: a row without its position", stream)
				}
				return nil
			})
			_ = err
		}
	})
}

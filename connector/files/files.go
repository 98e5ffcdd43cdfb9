// Package files is the built-in connector that reads input files, so that an
// ERP or WMS export can feed a connector's sink stream through the same
// contract as any other source. It runs inside the host (no plugin) and is
// available as connector.files in every pipeline file without a block.
//
// Streams (options: path, required, relative to the pipeline file):
//
//	csv      a CSV file with a header row; every column is a string.
//	         Options: delimiter (one character, default ","), header
//	         ("true" by default; "false" numbers the columns c1, c2, ...).
//	jsonl    JSON lines: one object per line; every key becomes a string
//	         column (objects and arrays as JSON text).
//	parquet  a Parquet file, with its own column types.
//
// The schema of each stream is the file's, known when it is read. Every
// batch carries two more columns: _row (int64, the 1-based data row) and
// _line (int64, the file line where the row starts; null for Parquet), so
// rejects can point at the input.
package files

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"pipehost/connector"
)

// The position columns every batch carries: connector.RowColumn,
// connector.LineColumn and, in CSV and JSON-lines batches,
// connector.ErrorColumn, which says why a record could not be read (null
// for good rows): a malformed record is one such row, with its position,
// and reading goes on at the next record.
const (
	RowColumn   = connector.RowColumn
	LineColumn  = connector.LineColumn
	ErrorColumn = connector.ErrorColumn
)

// maxRecordLines and maxRecordBytes bound how far a CSV record with an
// unterminated quote may reach: past them it is a malformed record, and
// reading starts again at the line after its first.
const (
	maxRecordLines = 1000
	maxRecordBytes = 8 << 20
)

// batchRows is how many rows go into one batch.
const batchRows = 1000

// Connector reads files. Configure with {"base_dir": "..."}.
type Connector struct {
	baseDir string
}

var _ connector.Reader = (*Connector)(nil)

// New returns a files connector resolving relative paths from baseDir.
func New(baseDir string) *Connector { return &Connector{baseDir: baseDir} }

// Info implements connector.Reader.
func (c *Connector) Info(context.Context) (connector.Info, error) {
	return connector.Info{Name: "files", Version: "1"}, nil
}

// ConfigSchema implements connector.Reader: no attributes.
func (c *Connector) ConfigSchema(context.Context) (connector.ConfigSchema, error) {
	return connector.ConfigSchema{}, nil
}

// Configure implements connector.Reader.
func (c *Connector) Configure(context.Context, connector.ConfigureRequest) error { return nil }

// Streams implements connector.Reader. Schemas are nil: each file brings
// its own.
func (c *Connector) Streams(context.Context) ([]connector.Stream, error) {
	return []connector.Stream{
		{Name: "csv", Kind: connector.Source, Description: "a CSV file with a header row (options: path, delimiter, header)",
			Options: csvOptions},
		{Name: "jsonl", Kind: connector.Source, Description: "a JSON-lines file (options: path)", Options: []connector.Option{pathOption}},
		{Name: "parquet", Kind: connector.Source, Description: "a Parquet file (options: path)", Options: []connector.Option{pathOption}},
	}, nil
}

// Check implements connector.Reader.
func (c *Connector) Check(context.Context) error { return nil }

// Close implements connector.Reader.
func (c *Connector) Close() error { return nil }

// Path resolves a read's path option.
func (c *Connector) Path(opts map[string]string) (string, error) {
	p := opts["path"]
	if p == "" {
		return "", errors.New("option path is required (the input file, relative to the pipeline file)")
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(c.baseDir, p)
	}
	return p, nil
}

// The files connector's options.
var (
	pathOption = connector.Option{Name: "path", Description: "the input file, relative to the pipeline file (required)"}
	csvOptions = []connector.Option{pathOption,
		{Name: "delimiter", Default: ",", Description: "the field separator, one character"},
		{Name: "header", Kind: connector.OptionBool, Default: "true", Description: "the first row names the columns (false: columns c1, c2, ...)"}}
)

// Read implements connector.Reader. It emits no checkpoint: a file is
// read whole each time.
func (c *Connector) Read(ctx context.Context, req connector.ReadRequest, emit connector.EmitFunc) error {
	streams, _ := c.Streams(ctx)
	st, err := connector.CheckRead(streams, req)
	if err != nil {
		return err
	}
	emit = emit.For(st.Name)
	path, err := c.Path(req.Options)
	if err != nil {
		return fmt.Errorf("files.%s: %w", st.Name, err)
	}
	switch st.Name {
	case "csv":
		if err := connector.CheckOptions("files.csv", csvOptions, req.Options); err != nil {
			return err
		}
		return readCSV(ctx, path, req.Options, emit)
	case "jsonl":
		if err := connector.CheckOptions("files.jsonl", []connector.Option{pathOption}, req.Options); err != nil {
			return err
		}
		return readJSONL(ctx, path, emit)
	case "parquet":
		if err := connector.CheckOptions("files.parquet", []connector.Option{pathOption}, req.Options); err != nil {
			return err
		}
		return readParquet(ctx, path, emit)
	}
	return fmt.Errorf("%w %q", connector.ErrUnknownStream, st.Name)
}

// stringBatcher builds batches of string columns plus the position columns.
type stringBatcher struct {
	schema    *arrow.Schema
	b         *array.RecordBuilder
	n         int
	good, bad int64
	emit      connector.EmitFunc
}

// unreadable fails a file of which no record could be read: a wrong
// encoding or format throughout, not a few bad records.
func (s *stringBatcher) unreadable(path, first string) error {
	if s.good == 0 && s.bad > 0 {
		return fmt.Errorf("%s cannot be read: none of its %d records is valid (wrong format or encoding?); the first: %s", path, s.bad, first)
	}
	return nil
}

func newStringBatcher(cols []string, emit connector.EmitFunc) *stringBatcher {
	fields := make([]arrow.Field, 0, len(cols)+2)
	for _, c := range cols {
		fields = append(fields, arrow.Field{Name: c, Type: arrow.BinaryTypes.String, Nullable: true})
	}
	fields = append(fields,
		arrow.Field{Name: RowColumn, Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: LineColumn, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: ErrorColumn, Type: arrow.BinaryTypes.String, Nullable: true})
	schema := arrow.NewSchema(fields, nil)
	return &stringBatcher{schema: schema, b: array.NewRecordBuilder(memory.DefaultAllocator, schema), emit: emit}
}

// addError adds a record that could not be read: its position and why.
func (s *stringBatcher) addError(row, line int64, reason string) error {
	n := len(s.schema.Fields()) - 3
	for i := 0; i < n; i++ {
		s.b.Field(i).AppendNull()
	}
	s.b.Field(n).(*array.Int64Builder).Append(row)
	s.b.Field(n + 1).(*array.Int64Builder).Append(line)
	s.b.Field(n + 2).(*array.StringBuilder).Append(reason)
	s.bad++
	if s.n++; s.n >= batchRows {
		return s.flush()
	}
	return nil
}

func (s *stringBatcher) add(values []string, present []bool, row, line int64) error {
	for i, v := range values {
		if present != nil && !present[i] {
			s.b.Field(i).AppendNull()
			continue
		}
		s.b.Field(i).(*array.StringBuilder).Append(v)
	}
	n := len(values)
	s.b.Field(n).(*array.Int64Builder).Append(row)
	if line > 0 {
		s.b.Field(n + 1).(*array.Int64Builder).Append(line)
	} else {
		s.b.Field(n + 1).AppendNull()
	}
	s.b.Field(n + 2).AppendNull()
	s.good++
	if s.n++; s.n >= batchRows {
		return s.flush()
	}
	return nil
}

func (s *stringBatcher) flush() error {
	if s.n == 0 {
		return nil
	}
	rec := s.b.NewRecord()
	defer rec.Release()
	s.n = 0
	return s.emit(connector.Batch{Record: rec})
}

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
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

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
	path, err := c.Path(req.Options)
	if err != nil {
		return fmt.Errorf("files.%s: %w", req.Stream, err)
	}
	switch req.Stream {
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
	return fmt.Errorf("%w %q", connector.ErrUnknownStream, req.Stream)
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

func readCSV(ctx context.Context, path string, opts map[string]string, emit connector.EmitFunc) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	comma := ','
	if d := opts["delimiter"]; d != "" {
		if utf8.RuneCountInString(d) != 1 {
			return fmt.Errorf("files.csv: delimiter %q must be one character", d)
		}
		comma, _ = utf8.DecodeRuneInString(d)
	}
	recs := &csvRecords{lines: bufio.NewReaderSize(f, 256<<10), comma: comma}
	header := opts["header"] != "false"
	first, firstLine, perr, err := recs.next(0)
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s is empty", path)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if perr != "" {
		return fmt.Errorf("%s:%d: the first record cannot be read: %s", path, firstLine, perr)
	}
	var cols []string
	if header {
		seen := map[string]int{}
		for i, h := range first {
			h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
			if h == "" {
				h = "c" + strconv.Itoa(i+1)
			}
			if prev, dup := seen[h]; dup {
				return fmt.Errorf("%s:1:%d: column %q repeats column %d", path, i+1, h, prev+1)
			}
			seen[h] = i + 1
			cols = append(cols, h)
		}
	} else {
		for i := range first {
			cols = append(cols, "c"+strconv.Itoa(i+1))
		}
	}
	bt := newStringBatcher(cols, emit)
	defer bt.b.Release()
	values := make([]string, len(cols))
	var row int64
	firstBad := ""
	process := func(rec []string, line int64, perr string) error {
		row++
		if perr == "" && len(rec) != len(cols) {
			perr = fmt.Sprintf("the record has %d fields, the header has %d", len(rec), len(cols))
		}
		if perr == "" {
			for _, v := range rec {
				if !utf8.ValidString(v) {
					perr = "the record is not valid UTF-8 (is the file in another encoding?)"
					break
				}
			}
		}
		if perr != "" {
			if firstBad == "" {
				firstBad = fmt.Sprintf("line %d: %s", line, perr)
			}
			return bt.addError(row, line, perr)
		}
		copy(values, rec)
		return bt.add(values, nil, row, line)
	}
	if !header {
		if err := process(first, firstLine, ""); err != nil {
			return err
		}
	}
	for {
		if row%batchRows == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec, line, perr, err := recs.next(len(cols))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := process(rec, line, perr); err != nil {
			return err
		}
	}
	if err := bt.unreadable(path, firstBad); err != nil {
		return err
	}
	return bt.flush()
}

// csvRecords splits a CSV file into records itself, so that one malformed
// record (an unterminated quote, a bare quote) is reported and skipped
// rather than ending the file: a record is complete when its quotes pair
// up; one that does not within maxRecordLines lines is malformed, and
// reading starts again at the line after its first.
type csvRecords struct {
	lines   *bufio.Reader
	comma   rune
	read    int64      // lines read from the file
	pending []numbered // lines read ahead and given back
}

// numbered is a line of the file and its number.
type numbered struct {
	no   int64
	text string
}

func (c *csvRecords) readLine() (numbered, error) {
	if len(c.pending) > 0 {
		l := c.pending[0]
		c.pending = c.pending[1:]
		return l, nil
	}
	l, err := c.lines.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && l != "") {
		return numbered{}, err
	}
	c.read++
	return numbered{c.read, strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")}, nil
}

// next returns the next record and the line it starts on, or the reason it
// cannot be read (perr); err is io.EOF at the end of the file. Empty lines
// are skipped, as encoding/csv does. want is the header's field count (0
// before the header): a record spanning lines must have it.
func (c *csvRecords) next(want int) (rec []string, line int64, perr string, err error) {
	first, err := c.readLine()
	for err == nil && strings.TrimSpace(first.text) == "" {
		first, err = c.readLine()
	}
	if err != nil {
		return nil, 0, "", err
	}
	text := first.text
	var extra []numbered
	for strings.Count(text, `"`)%2 == 1 && len(extra) < maxRecordLines && len(text) <= maxRecordBytes {
		l, err := c.readLine()
		if err != nil {
			break
		}
		extra = append(extra, l)
		text += "\n" + l.text
	}
	if strings.Count(text, `"`)%2 == 1 {
		// No closing quote: the record is the first line alone; the lines
		// read ahead are read again.
		c.pending = append(extra, c.pending...)
		return nil, first.no, "a quoted field is never closed (unterminated \")", nil
	}
	r := csv.NewReader(strings.NewReader(text))
	r.Comma, r.FieldsPerRecord = c.comma, -1
	rec, rerr := r.Read()
	if len(extra) > 0 && (rerr != nil || (want > 0 && len(rec) != want)) {
		// Spanning lines did not make a good record: the quote opened on
		// the first line is what is wrong; the other lines are read again.
		c.pending = append(extra, c.pending...)
		return nil, first.no, "a quoted field is never closed (unterminated \")", nil
	}
	if rerr != nil {
		var pe *csv.ParseError
		if errors.As(rerr, &pe) {
			return nil, first.no, fmt.Sprintf("column %d: %v", pe.Column, pe.Err), nil
		}
		return nil, first.no, rerr.Error(), nil
	}
	return rec, first.no, "", nil
}

// readJSONL reads the file twice: once for the set of keys (the schema),
// once for the rows, so memory holds one line at a time.
func readJSONL(ctx context.Context, path string, emit connector.EmitFunc) error {
	keys := map[string]bool{}
	err := eachLine(path, func(line int64, obj map[string]json.RawMessage) error {
		for k := range obj {
			keys[k] = true
		}
		return nil
	}, func(int64, string) error { return nil })
	if err != nil {
		return err
	}
	cols := make([]string, 0, len(keys))
	for k := range keys {
		cols = append(cols, k)
	}
	sort.Strings(cols)
	idx := map[string]int{}
	for i, c := range cols {
		idx[c] = i
	}
	bt := newStringBatcher(cols, emit)
	defer bt.b.Release()
	values := make([]string, len(cols))
	present := make([]bool, len(cols))
	var row int64
	firstBad := ""
	err = eachLine(path, func(line int64, obj map[string]json.RawMessage) error {
		if row%batchRows == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		row++
		for i := range present {
			present[i] = false
		}
		for k, raw := range obj {
			i := idx[k]
			var s string
			switch {
			case string(raw) == "null":
				continue
			case len(raw) > 0 && raw[0] == '"':
				json.Unmarshal(raw, &s)
			default:
				s = string(raw) // numbers, booleans, objects and arrays as written
			}
			values[i], present[i] = s, true
		}
		return bt.add(values, present, row, line)
	}, func(line int64, reason string) error {
		row++
		if firstBad == "" {
			firstBad = fmt.Sprintf("line %d: %s", line, reason)
		}
		return bt.addError(row, line, reason)
	})
	if err != nil {
		return err
	}
	if err := bt.unreadable(path, firstBad); err != nil {
		return err
	}
	return bt.flush()
}

func eachLine(path string, fn func(line int64, obj map[string]json.RawMessage) error, bad func(line int64, reason string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var line int64
	for sc.Scan() {
		line++
		raw := sc.Bytes()
		if line == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark, as Windows tools write
		}
		if !utf8.Valid(raw) {
			// encoding/json would turn the bytes into U+FFFD and send that.
			at := 0
			for at < len(raw) {
				r, size := utf8.DecodeRune(raw[at:])
				if r == utf8.RuneError && size == 1 {
					break
				}
				at += size
			}
			if err := bad(line, fmt.Sprintf("not valid UTF-8 (byte %d of the line): convert the file to UTF-8", at+1)); err != nil {
				return err
			}
			continue
		}
		text := strings.TrimSpace(string(raw))
		if text == "" {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(text), &obj); err != nil || obj == nil {
			reason := "not a JSON object"
			if err != nil {
				reason += ": " + err.Error()
			}
			if err := bad(line, reason); err != nil {
				return err
			}
			continue
		}
		if err := fn(line, obj); err != nil {
			return err
		}
	}
	return sc.Err()
}

func readParquet(ctx context.Context, path string, emit connector.EmitFunc) error {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: batchRows}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer rr.Release()
	var row int64
	for rr.Next() {
		rec := rr.Record()
		n := int(rec.NumRows())
		rb := array.NewInt64Builder(memory.DefaultAllocator)
		lb := array.NewInt64Builder(memory.DefaultAllocator)
		for i := 0; i < n; i++ {
			row++
			rb.Append(row)
			lb.AppendNull()
		}
		rows, lines := rb.NewArray(), lb.NewArray()
		rb.Release()
		lb.Release()
		fields := append(append([]arrow.Field(nil), rec.Schema().Fields()...),
			arrow.Field{Name: RowColumn, Type: arrow.PrimitiveTypes.Int64},
			arrow.Field{Name: LineColumn, Type: arrow.PrimitiveTypes.Int64, Nullable: true})
		cols := append(append([]arrow.Array(nil), rec.Columns()...), rows, lines)
		out := array.NewRecord(arrow.NewSchema(fields, nil), cols, int64(n))
		rows.Release()
		lines.Release()
		err := emit(connector.Batch{Record: out})
		out.Release()
		if err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

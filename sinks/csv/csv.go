// Package csv is the CSV destination: one file per commit under
// <path>/<stream>/, with a header row. Nested values (lists, structs) are
// written as JSON, timestamps as RFC 3339 in UTC, dates as YYYY-MM-DD, and
// nulls as empty cells. Files and checkpoints are committed together
// (see sinks/internal/commitfile); the mode is append.
package csv

import (
	"bufio"
	"encoding/csv"
	"pipehost/sinks/internal/jsonvalue"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"pipehost/sinks"
	"pipehost/sinks/internal/textsink"
)

func init() { sinks.Register("csv", textsink.Driver{Encoder: encoder{}}) }

type encoder struct{}

func (encoder) Ext() string { return ".csv" }

func (encoder) Begin(w *bufio.Writer, schema *arrow.Schema) error {
	cw := csv.NewWriter(w)
	var names []string
	for _, f := range schema.Fields() {
		names = append(names, f.Name)
	}
	cw.Write(names)
	cw.Flush()
	return cw.Error()
}

func (encoder) Row(w *bufio.Writer, rec arrow.Record, i int) error {
	cw := csv.NewWriter(w)
	cells := make([]string, rec.NumCols())
	for c := range cells {
		cells[c] = Cell(rec.Column(c), i)
	}
	cw.Write(cells)
	cw.Flush()
	return cw.Error()
}

// Cell renders one value as CSV text.
func Cell(col arrow.Array, i int) string {
	if col.IsNull(i) {
		return ""
	}
	switch c := col.(type) {
	case *array.String:
		return c.Value(i)
	case *array.Boolean:
		return strconv.FormatBool(c.Value(i))
	case *array.Int64:
		return strconv.FormatInt(c.Value(i), 10)
	case *array.Int32:
		return strconv.FormatInt(int64(c.Value(i)), 10)
	case *array.Float64:
		return strconv.FormatFloat(c.Value(i), 'f', -1, 64)
	case *array.Decimal128:
		return sinks.DecimalText(c, i)
	case *array.Timestamp:
		return c.Value(i).ToTime(c.DataType().(*arrow.TimestampType).Unit).UTC().Format(time.RFC3339Nano)
	case *array.Date32:
		return c.Value(i).ToTime().Format("2006-01-02")
	}
	// Lists and structs as JSON, with the one spelling every sink uses
	// (timestamps inside them RFC 3339 UTC, like the top-level ones).
	return string(jsonvalue.Append(nil, col, i))
}

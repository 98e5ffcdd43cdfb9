// Package jsonl is the JSON-lines destination: one file per commit under
// <path>/<stream>/, one JSON object per row. Columns that hold JSON documents
// (NuOrder's document column) are embedded as objects, not strings; other
// nested values keep their structure. Files and checkpoints are committed
// together (see sinks/internal/commitfile); the mode is append.
package jsonl

import (
	"bufio"
	"encoding/json"
	"pipehost/sinks/internal/jsonvalue"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"pipehost/connector"
	"pipehost/sinks"
	"pipehost/sinks/internal/textsink"
)

func init() { sinks.Register("jsonl", textsink.Driver{Encoder: encoder{}}) }

type encoder struct{}

func (encoder) Ext() string { return ".jsonl" }

func (encoder) Begin(*bufio.Writer, *arrow.Schema) error { return nil }

func (encoder) Row(w *bufio.Writer, rec arrow.Record, i int) error {
	w.WriteByte('{')
	for c := 0; c < int(rec.NumCols()); c++ {
		if c > 0 {
			w.WriteByte(',')
		}
		f := rec.Schema().Field(c)
		name, _ := json.Marshal(f.Name)
		w.Write(name)
		w.WriteByte(':')
		col := rec.Column(c)
		var v []byte
		var err error
		switch cc := col.(type) {
		case *array.String:
			if connector.IsJSON(f) && !cc.IsNull(i) && json.Valid([]byte(cc.Value(i))) {
				v = []byte(cc.Value(i))
				break
			}
			v, err = json.Marshal(col.GetOneForMarshal(i))
		case *array.Decimal128:
			if cc.IsNull(i) {
				v = []byte("null")
			} else {
				v = []byte(sinks.DecimalText(cc, i)) // a JSON number, exact
			}
		case *array.Timestamp:
			if cc.IsNull(i) {
				v = []byte("null")
			} else {
				v, err = json.Marshal(cc.Value(i).ToTime(cc.DataType().(*arrow.TimestampType).Unit).UTC().Format(time.RFC3339Nano))
			}
		default:
			// Lists, structs, numbers: the one spelling every sink uses
			// (timestamps inside lists and structs RFC 3339 UTC).
			v = jsonvalue.Append(nil, col, i)
		}
		if err != nil {
			return err
		}
		w.Write(v)
	}
	w.WriteString("}\n")
	return nil
}

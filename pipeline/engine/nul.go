package engine

import (
	"bytes"
	"strings"

	"pipehost/connector"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// NULs: one rule for every sink. A NUL character (U+0000) in a string from
// a source becomes U+FFFD, the replacement character, before any sink sees
// it, and in a JSON document column the escape \u0000 becomes \ufffd.
// PostgreSQL's text and jsonb cannot hold NUL at all; Parquet, CSV and JSON
// lines could, but then the same stream would hold different values in
// different destinations.
const nulReplacement = "\uFFFD"

// cleanNUL returns rec with every NUL replaced, or rec itself (and false)
// when it holds none: the check is one scan of each string buffer.
func cleanNUL(rec arrow.Record) (arrow.Record, bool) {
	var cols []arrow.Array
	for i, col := range rec.Columns() {
		f := rec.Schema().Field(i)
		jsonDoc := isJSONColumn(f)
		if !hasNUL(col.Data(), jsonDoc) {
			continue
		}
		if cols == nil {
			cols = append([]arrow.Array(nil), rec.Columns()...)
		}
		cols[i] = replaceNUL(col, jsonDoc)
	}
	if cols == nil {
		return rec, false
	}
	out := array.NewRecord(rec.Schema(), cols, rec.NumRows())
	for i, c := range cols {
		if c != rec.Column(i) {
			c.Release()
		}
	}
	return out, true
}

func isJSONColumn(f arrow.Field) bool { return connector.IsJSON(f) }

// hasNUL looks for a NUL byte in the string buffers of d and its children
// (or, in a JSON document column, for the escape \u0000).
func hasNUL(d arrow.ArrayData, jsonDoc bool) bool {
	switch d.DataType().ID() {
	case arrow.STRING, arrow.LARGE_STRING:
		if bufs := d.Buffers(); len(bufs) > 2 && bufs[2] != nil {
			if bytes.IndexByte(bufs[2].Bytes(), 0) >= 0 {
				return true
			}
			if jsonDoc && bytes.Contains(bufs[2].Bytes(), []byte(`\u0000`)) {
				return true
			}
		}
	}
	for _, c := range d.Children() {
		if hasNUL(c, false) {
			return true
		}
	}
	return false
}

// replaceNUL rebuilds a column without NULs: strings directly, nested
// columns through their JSON form (rare, so simplicity wins).
func replaceNUL(col arrow.Array, jsonDoc bool) arrow.Array {
	if s, ok := col.(*array.String); ok {
		b := array.NewStringBuilder(memory.DefaultAllocator)
		defer b.Release()
		for i := 0; i < s.Len(); i++ {
			if s.IsNull(i) {
				b.AppendNull()
				continue
			}
			v := strings.ReplaceAll(s.Value(i), "\x00", nulReplacement)
			if jsonDoc {
				v = replaceJSONNUL(v)
			}
			b.Append(v)
		}
		return b.NewArray()
	}
	js, err := col.MarshalJSON()
	if err != nil {
		col.Retain()
		return col
	}
	js = []byte(replaceJSONNUL(string(js)))
	out, _, err := array.FromJSON(memory.DefaultAllocator, col.DataType(), bytes.NewReader(js))
	if err != nil {
		col.Retain()
		return col
	}
	return out
}

// replaceJSONNUL replaces the escape \u0000 in JSON text by \ufffd, leaving
// an escaped backslash followed by "u0000" (the text \u0000) alone.
func replaceJSONNUL(s string) string {
	if !strings.Contains(s, `\u0000`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			if strings.HasPrefix(s[i+1:], "u0000") {
				b.WriteString(`\ufffd`)
				i += 5
				continue
			}
			b.WriteByte(s[i])
			b.WriteByte(s[i+1])
			i++
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

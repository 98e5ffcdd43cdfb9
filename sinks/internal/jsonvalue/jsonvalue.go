// Package jsonvalue writes Arrow values as JSON, the one spelling every
// sink that writes JSON uses for nested values (PostgreSQL's jsonb, JSON
// lines, CSV cells of lists and structs): the document Arrow's
// GetOneForMarshal + json.Marshal gives, written straight from the arrays,
// except timestamps, which are RFC 3339 in UTC ("2025-01-11T17:58:00Z"), as
// the sinks write top-level timestamps, instead of Arrow's zoneless
// "2025-01-11 17:58:00".
package jsonvalue

import (
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
)

// Append appends value i of arr as JSON: the document Arrow's
// GetOneForMarshal + json.Marshal gives (decimals as the same strings), but
// timestamps as RFC 3339 UTC strings. Nested values (line items, addresses)
// are most of what an orders table holds, and going through maps and
// reflection for each of them made PostgreSQL's COPY four times slower than
// the Parquet sink (BenchmarkOrdersIntoPostgresVsParquet).
func Append(b []byte, arr arrow.Array, i int) []byte {
	if arr.IsNull(i) {
		return append(b, "null"...)
	}
	switch a := arr.(type) {
	case *array.String:
		return appendJSONString(b, a.Value(i))
	case *array.Boolean:
		return strconv.AppendBool(b, a.Value(i))
	case *array.Int8:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int16:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int32:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int64:
		return strconv.AppendInt(b, a.Value(i), 10)
	case *array.Decimal128:
		typ := a.DataType().(*arrow.Decimal128Type)
		f := (&big.Float{}).SetInt(a.Value(i).BigInt())
		f.Quo(f, big.NewFloat(math.Pow10(int(typ.Scale))))
		return appendJSONString(b, f.Text('g', int(typ.Precision)))
	case *array.Timestamp:
		t := a.Value(i).ToTime(a.DataType().(*arrow.TimestampType).Unit)
		return appendJSONString(b, t.UTC().Format(time.RFC3339Nano))
	case *array.Struct:
		typ := a.DataType().(*arrow.StructType)
		b = append(b, '{')
		for j := 0; j < a.NumField(); j++ {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, typ.Field(j).Name)
			b = append(b, ':')
			b = Append(b, a.Field(j), i)
		}
		return append(b, '}')
	case *array.List:
		start, end := a.ValueOffsets(i)
		values := a.ListValues()
		b = append(b, '[')
		for k := start; k < end; k++ {
			if k > start {
				b = append(b, ',')
			}
			b = Append(b, values, int(k))
		}
		return append(b, ']')
	}
	v, err := json.Marshal(arr.GetOneForMarshal(i))
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, v...)
}

// AppendString appends s as a JSON string, as encoding/json writes it.
func AppendString(b []byte, s string) []byte { return appendJSONString(b, s) }

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

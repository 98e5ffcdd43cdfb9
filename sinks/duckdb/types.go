//go:build cgo

package duckdb

import (
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"

	"pipehost/connector"
)

// duckType maps an Arrow field to a DuckDB column type, in the spelling
// DuckDB's catalog shows it (information_schema's data_type), so a table's
// columns can be compared with a stream's.
func duckType(f arrow.Field) string {
	if connector.IsJSON(f) {
		return "JSON"
	}
	return typeOf(f.Type)
}

func typeOf(t arrow.DataType) string {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING:
		return "VARCHAR"
	case arrow.BOOL:
		return "BOOLEAN"
	case arrow.INT8:
		return "TINYINT"
	case arrow.INT16:
		return "SMALLINT"
	case arrow.INT32:
		return "INTEGER"
	case arrow.INT64:
		return "BIGINT"
	case arrow.UINT8:
		return "UTINYINT"
	case arrow.UINT16:
		return "USMALLINT"
	case arrow.UINT32:
		return "UINTEGER"
	case arrow.UINT64:
		return "UBIGINT"
	case arrow.FLOAT32:
		return "FLOAT"
	case arrow.FLOAT64:
		return "DOUBLE"
	case arrow.DECIMAL128:
		d := t.(*arrow.Decimal128Type)
		return fmt.Sprintf("DECIMAL(%d,%d)", d.Precision, d.Scale)
	case arrow.TIMESTAMP:
		if t.(*arrow.TimestampType).TimeZone == "" {
			return "TIMESTAMP"
		}
		return "TIMESTAMP WITH TIME ZONE"
	case arrow.DATE32, arrow.DATE64:
		return "DATE"
	case arrow.BINARY, arrow.LARGE_BINARY:
		return "BLOB"
	case arrow.LIST, arrow.LARGE_LIST:
		return typeOf(t.(arrow.ListLikeType).Elem()) + "[]"
	case arrow.STRUCT:
		var parts []string
		for _, f := range t.(*arrow.StructType).Fields() {
			parts = append(parts, ident(f.Name)+" "+typeOf(f.Type))
		}
		return "STRUCT(" + strings.Join(parts, ", ") + ")"
	}
	return "VARCHAR"
}

// ident quotes a name for DuckDB.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// normal is a type's spelling with quotes, spaces and case set aside, for
// comparing the catalog's rendering with ours.
func normal(t string) string {
	return strings.NewReplacer(`"`, "", " ", "").Replace(strings.ToUpper(t))
}

// compatible says whether a column of DuckDB type have can take values of
// type want: the same type, or a wider one of the same kind.
func compatible(have, want string) bool {
	have, want = normal(have), normal(want)
	if have == want {
		return true
	}
	wider := map[string][]string{
		"INTEGER":  {"BIGINT", "HUGEINT", "DOUBLE"},
		"SMALLINT": {"INTEGER", "BIGINT", "HUGEINT", "DOUBLE"},
		"BIGINT":   {"HUGEINT"},
		"JSON":     {"VARCHAR"},
		"VARCHAR":  {"JSON"},
		"FLOAT":    {"DOUBLE"},
	}
	for _, w := range wider[want] {
		if have == w {
			return true
		}
	}
	return false
}

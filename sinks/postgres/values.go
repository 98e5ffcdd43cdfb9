package postgres

import (
	"encoding/json"
	"fmt"
	"pipehost/connector"
	"pipehost/sinks/internal/jsonvalue"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/jackc/pgx/v5/pgtype"
)

// pgType maps an Arrow field to a PostgreSQL column type.
func pgType(f arrow.Field) string {
	if connector.IsJSON(f) {
		return "jsonb"
	}
	switch f.Type.ID() {
	case arrow.STRING, arrow.LARGE_STRING:
		return "text"
	case arrow.BOOL:
		return "boolean"
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.UINT8, arrow.UINT16:
		return "integer"
	case arrow.INT64, arrow.UINT32, arrow.UINT64:
		return "bigint"
	case arrow.FLOAT32, arrow.FLOAT64:
		return "double precision"
	case arrow.DECIMAL128:
		t := f.Type.(*arrow.Decimal128Type)
		return fmt.Sprintf("numeric(%d,%d)", t.Precision, t.Scale)
	case arrow.TIMESTAMP:
		return "timestamptz"
	case arrow.DATE32, arrow.DATE64:
		return "date"
	case arrow.BINARY, arrow.LARGE_BINARY:
		return "bytea"
	}
	return "jsonb" // lists, structs, maps
}

// compatible says whether a column of PostgreSQL type have can take values
// of type want.
func compatible(have, want string) bool {
	if have == want {
		return true
	}
	switch want {
	case "integer":
		return have == "bigint" || have == "numeric" || have == "double precision"
	case "bigint":
		return have == "numeric"
	case "text":
		return have == "character varying"
	case "timestamptz":
		return have == "timestamp with time zone"
	case "jsonb":
		return have == "json"
	}
	if strings.HasPrefix(want, "numeric") {
		return have == "numeric"
	}
	return false
}

// recordSource feeds a record's rows to COPY.
type recordSource struct {
	rec   arrow.Record
	row   int
	seq   int64
	jsonb []bool // per column: encode as jsonb
	vals  []any
	err   error
}

func (r *recordSource) Next() bool {
	r.row++
	return r.row < int(r.rec.NumRows())
}

func (r *recordSource) Values() ([]any, error) {
	if r.vals == nil {
		r.vals = make([]any, r.rec.NumCols()+1)
	}
	for c := 0; c < int(r.rec.NumCols()); c++ {
		v, err := value(r.rec.Column(c), r.jsonb[c], r.row)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", r.rec.ColumnName(c), err)
		}
		r.vals[c] = v
	}
	r.vals[len(r.vals)-1] = r.seq + int64(r.row)
	return r.vals, nil
}

func (r *recordSource) Err() error { return r.err }

// value converts one Arrow value to what pgx encodes for its column type.
func value(col arrow.Array, jsonb bool, i int) (any, error) {
	if col.IsNull(i) {
		return nil, nil
	}
	if jsonb {
		if c, ok := col.(*array.String); ok {
			return json.RawMessage(c.Value(i)), nil
		}
		return json.RawMessage(jsonvalue.Append(nil, col, i)), nil
	}
	switch c := col.(type) {
	case *array.String:
		return c.Value(i), nil
	case *array.Boolean:
		return c.Value(i), nil
	case *array.Int32:
		return c.Value(i), nil
	case *array.Int64:
		return c.Value(i), nil
	case *array.Int16:
		return int32(c.Value(i)), nil
	case *array.Int8:
		return int32(c.Value(i)), nil
	case *array.Float64:
		return c.Value(i), nil
	case *array.Float32:
		return float64(c.Value(i)), nil
	case *array.Decimal128:
		scale := c.DataType().(*arrow.Decimal128Type).Scale
		return pgtype.Numeric{Int: c.Value(i).BigInt(), Exp: -scale, Valid: true}, nil
	case *array.Timestamp:
		unit := c.DataType().(*arrow.TimestampType).Unit
		return c.Value(i).ToTime(unit), nil
	case *array.Date32:
		return c.Value(i).ToTime(), nil
	case *array.Date64:
		return c.Value(i).ToTime(), nil
	case *array.Binary:
		return c.Value(i), nil
	}
	return col.ValueStr(i), nil
}

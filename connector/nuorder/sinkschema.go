package nuorder

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"pipehost/connector"
)

var date32 = arrow.FixedWidthTypes.Date32

// InventorySchema is the schema of the inventory sink stream: one row per
// stock level. The SKU is given by sku_id (the size _id), or upc, or
// brand_id and size; the warehouse by id or code.
var InventorySchema = arrow.NewSchema([]arrow.Field{
	nullable("sku_id", str),
	nullable("upc", str),
	nullable("brand_id", str),
	nullable("size", str),
	nullable("warehouse", str),
	nullable("quantity", float64T),
	nullable("date", date32),
	nullable("prebook", boolean),
}, nil)

// FulfillmentSchema is the schema of the fulfillment sink stream: one row
// per shipment, or per shipped line when upc and quantity are given. Rows
// with the same order and tracking number form one shipment.
var FulfillmentSchema = arrow.NewSchema([]arrow.Field{
	nullable("order_id", str),
	nullable("order_number", str),
	nullable("tracking_number", str),
	nullable("carrier", str),
	nullable("shipped_date", date32),
	nullable("upc", str),
	nullable("quantity", float64T),
}, nil)

// CompaniesSinkSchema is the schema of the companies sink stream: one row
// per company, keyed by code, with its main address and rep.
var CompaniesSinkSchema = arrow.NewSchema([]arrow.Field{
	nullable("code", str),
	nullable("name", str),
	nullable("currency_code", str),
	nullable("payment_terms", str),
	nullable("active", boolean),
	nullable("archived", boolean),
	nullable("address_line_1", str),
	nullable("address_line_2", str),
	nullable("city", str),
	nullable("state", str),
	nullable("zip", str),
	nullable("country", str),
	nullable("rep_name", str),
	nullable("rep_email", str),
}, nil)

// row reads typed values from one row of a record by column name.
type row struct {
	rec arrow.Record
	i   int
}

func (r row) col(name string) arrow.Array {
	idx := r.rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil
	}
	return r.rec.Column(idx[0])
}

// str returns a string column's value; "" when null or absent.
func (r row) str(name string) string {
	c, ok := r.col(name).(*array.String)
	if !ok || c.IsNull(r.i) {
		return ""
	}
	return c.Value(r.i)
}

// num returns a float column's value and whether it is set.
func (r row) num(name string) (float64, bool) {
	c, ok := r.col(name).(*array.Float64)
	if !ok || c.IsNull(r.i) {
		return 0, false
	}
	return c.Value(r.i), true
}

// flag returns a bool column's value and whether it is set.
func (r row) flag(name string) (bool, bool) {
	c, ok := r.col(name).(*array.Boolean)
	if !ok || c.IsNull(r.i) {
		return false, false
	}
	return c.Value(r.i), true
}

// date returns a date32 column's value and whether it is set.
func (r row) date(name string) (time.Time, bool) {
	c, ok := r.col(name).(*array.Date32)
	if !ok || c.IsNull(r.i) {
		return time.Time{}, false
	}
	return c.Value(r.i).ToTime(), true
}

// checkSchema refuses a record that lacks the stream's columns.
func checkSchema(stream string, rec arrow.Record, want *arrow.Schema) error {
	if !rec.Schema().Equal(want) {
		return fmt.Errorf("rows for %s do not have its schema", stream)
	}
	return nil
}

// eachInputRow calls fn for every row a write receives, numbered from 0 over
// the whole write. fn returns a reason to reject the row ("" keeps it) or an
// error that stops the write. Rejections are reported once per batch.
func eachInputRow(stream string, schema *arrow.Schema, in connector.RecordIterator, results connector.ResultFunc, fn func(r row, n int64) (string, error)) error {
	var n int64
	for {
		rec, err := in.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := checkSchema(stream, rec, schema); err != nil {
			return err
		}
		var rejected []connector.RowResult
		for i := 0; i < int(rec.NumRows()); i++ {
			reason, err := fn(row{rec, i}, n)
			if err != nil {
				return err
			}
			if reason != "" {
				rejected = append(rejected, connector.RowResult{Row: n, Error: reason})
			}
			n++
		}
		if len(rejected) > 0 {
			if err := results(rejected); err != nil {
				return err
			}
		}
	}
}

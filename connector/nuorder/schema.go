package nuorder

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"pipehost/connector"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/decimal128"
)

// Column types shared by the streams' schemas. Timestamps are microseconds,
// UTC: the unit Spark, Trino, DuckDB and pandas read natively. With
// milliseconds, DuckDB 1.5 could not read a Parquet file whose nested
// timestamps (orders' shipments.shipment_date) were all in empty lists
// ("Could not convert Timestamp(MS) to Timestamp(US)").
var (
	tsType   = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	str      = arrow.BinaryTypes.String
	boolean  = arrow.FixedWidthTypes.Boolean
	float64T = arrow.PrimitiveTypes.Float64
	amountT  = &arrow.Decimal128Type{Precision: amountPrecision, Scale: amountScale}
	int32T   = arrow.PrimitiveTypes.Int32
)

// jsonMeta marks a string column that holds a JSON document, so sinks that
// have a JSON type (Postgres jsonb) can use it.
var jsonMeta = arrow.NewMetadata([]string{connector.FormatKey}, []string{connector.JSONFormat})

// Every source row carries these two columns last.
var (
	documentField  = arrow.Field{Name: "document", Type: str, Metadata: jsonMeta}
	extractedField = arrow.Field{Name: "_extracted_at", Type: tsType}
)

// priceType is one currency's price, as a list element.
var priceType = arrow.StructOf(
	arrow.Field{Name: "currency", Type: str},
	arrow.Field{Name: "wholesale", Type: amountT, Nullable: true},
	arrow.Field{Name: "retail", Type: amountT, Nullable: true},
	arrow.Field{Name: "disabled", Type: boolean, Nullable: true},
)

// sizeType is one size (SKU) of a product.
var sizeType = arrow.StructOf(
	arrow.Field{Name: "_id", Type: str, Nullable: true},
	arrow.Field{Name: "size", Type: str, Nullable: true},
	arrow.Field{Name: "upc", Type: str, Nullable: true},
	arrow.Field{Name: "size_group", Type: str, Nullable: true},
	arrow.Field{Name: "size_order", Type: int32T, Nullable: true},
	arrow.Field{Name: "pricing", Type: arrow.ListOf(priceType), Nullable: true},
)

func nullable(name string, t arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: true}
}

// ProductsSchema is the schema of the products stream. Columns are documented
// in the README; _id is the primary key, modified_on the cursor.
var ProductsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "_id", Type: str},
	nullable("brand_id", str),
	nullable("style_number", str),
	nullable("season", str),
	nullable("color", str),
	nullable("color_code", str),
	nullable("name", str),
	nullable("category", str),
	nullable("subcategory", str),
	nullable("department", str),
	nullable("division", str),
	nullable("description", str),
	nullable("active", boolean),
	nullable("archived", boolean),
	nullable("available_now", boolean),
	nullable("available_from", tsType),
	nullable("available_until", tsType),
	nullable("seasons", arrow.ListOf(str)),
	nullable("sizes", arrow.ListOf(sizeType)),
	nullable("pricing", arrow.ListOf(priceType)),
	nullable("warehouse_ids", arrow.ListOf(str)),
	nullable("created_on", tsType),
	nullable("modified_on", tsType),
	documentField,
	extractedField,
}, nil)

// LocationsSchema is the schema of the locations stream (NuOrder
// warehouses); id is the primary key.
var LocationsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: str},
	nullable("code", str),
	nullable("display_name", str),
	nullable("brand_id", str),
	nullable("active", boolean),
	nullable("sort", int32T),
	nullable("created_on", tsType),
	nullable("modified_on", tsType),
	documentField,
	extractedField,
}, nil)

// flexString decodes a JSON string, number or bool as text (NuOrder is not
// consistent about which it sends), and null as absent.
type flexString struct {
	v  string
	ok bool
}

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = flexString{}
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString{s, true}
	default:
		*f = flexString{string(b), true}
	}
	return nil
}

// flexNumber decodes a JSON number or a numeric string ("1", "$45.00" is
// not numeric and decodes as absent).
// The number's text is kept, so amounts become exact decimals.
type flexNumber struct {
	v    float64
	text string
	ok   bool
}

func (f *flexNumber) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil || !s.ok {
		*f = flexNumber{}
		return nil
	}
	text := strings.TrimSpace(s.v)
	v, err := strconv.ParseFloat(text, 64)
	*f = flexNumber{v, text, err == nil}
	return nil
}

// Amounts (totals, prices, discounts, surcharges) are exact decimals with
// amountScale digits after the point and amountPrecision digits in all:
// up to 99,999,999,999,999.9999. NuOrder sends them as JSON numbers or as
// strings ("1234.56"); either is read from its text, never through a
// float, so sums in a warehouse match NuOrder to the cent. A value with
// more decimal places is rounded half away from zero at the fourth; one too
// large for the type is null (the document column keeps it).
const (
	amountPrecision = 18
	amountScale     = 4
)

// parseDecimal reads a decimal number's text ("-1234.5", "1e3", "0.125")
// as an integer count of 10^-scale units, exactly; ok is false when the
// text is not a number or the value needs more than precision digits.
func parseDecimal(text string, precision, scale int) (unscaled int64, ok bool) {
	neg := false
	if text != "" && (text[0] == '-' || text[0] == '+') {
		neg, text = text[0] == '-', text[1:]
	}
	mant, exp := text, 0
	if i := strings.IndexAny(text, "eE"); i >= 0 {
		e, err := strconv.Atoi(text[i+1:])
		if err != nil || e > 100 || e < -100 {
			return 0, false
		}
		mant, exp = text[:i], e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	// digits * 10^(exp - len(frac)), wanted in units of 10^-scale.
	shift := exp - len(frac) + scale
	digits = strings.TrimLeft(digits, "0")
	roundUp := false
	if shift < 0 {
		cut := len(digits) + shift
		if cut < 0 {
			digits = ""
		} else {
			roundUp = digits[cut] >= '5'
			digits = digits[:cut]
		}
		shift = 0
	}
	if len(digits)+shift > precision {
		return 0, false
	}
	var v int64
	for _, d := range digits {
		v = v*10 + int64(d-'0')
	}
	for ; shift > 0; shift-- {
		v *= 10
	}
	if roundUp {
		v++
	}
	if v >= pow10(precision) {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

func pow10(n int) int64 {
	v := int64(1)
	for ; n > 0; n-- {
		v *= 10
	}
	return v
}

// flexBool decodes true/false, "true"/"false" and 1/0.
type flexBool struct {
	v  bool
	ok bool
}

func (f *flexBool) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil || !s.ok {
		*f = flexBool{}
		return nil
	}
	v, err := strconv.ParseBool(strings.TrimSpace(s.v))
	*f = flexBool{v, err == nil}
	return nil
}

// parseTime reads NuOrder's timestamps: ISO-8601 with or without
// milliseconds, or a bare date. Empty strings and anything unreadable are
// absent; the raw value stays in the document column.
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02", "2006/01/02", "01/02/2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func appendString(b array.Builder, f flexString) {
	if f.ok {
		b.(*array.StringBuilder).Append(f.v)
	} else {
		b.AppendNull()
	}
}

func appendBool(b array.Builder, f flexBool) {
	if f.ok {
		b.(*array.BooleanBuilder).Append(f.v)
	} else {
		b.AppendNull()
	}
}

// appendAmount appends an amount as an exact decimal (see amountScale).
func appendAmount(b array.Builder, f flexNumber) {
	if f.ok {
		if v, ok := parseDecimal(f.text, amountPrecision, amountScale); ok {
			b.(*array.Decimal128Builder).Append(decimal128.FromI64(v))
			return
		}
	}
	b.AppendNull()
}

func appendInt32(b array.Builder, f flexNumber) {
	if f.ok && f.v == float64(int32(f.v)) {
		b.(*array.Int32Builder).Append(int32(f.v))
	} else {
		b.AppendNull()
	}
}

func appendTime(b array.Builder, f flexString) {
	if t, ok := parseTime(f.v); f.ok && ok {
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(t.UnixMicro()))
	} else {
		b.AppendNull()
	}
}

func appendStrings(b array.Builder, xs []flexString) {
	lb := b.(*array.ListBuilder)
	if xs == nil {
		lb.AppendNull()
		return
	}
	lb.Append(true)
	for _, x := range xs {
		appendString(lb.ValueBuilder(), x)
	}
}

// addressType is a postal address of a company or an order.
var addressType = arrow.StructOf(
	nullable("ref", str),
	nullable("display_name", str),
	nullable("line_1", str),
	nullable("line_2", str),
	nullable("city", str),
	nullable("state", str),
	nullable("zip", str),
	nullable("country", str),
	nullable("code", str),
	nullable("shipping_code", str),
	nullable("billing_code", str),
	nullable("type", str),
	nullable("default_shipping", boolean),
	nullable("default_billing", boolean),
)

// personType is a rep or a buyer.
var personType = arrow.StructOf(
	nullable("name", str),
	nullable("email", str),
	nullable("title", str),
	nullable("phone_office", str),
	nullable("phone_cell", str),
)

// CompaniesSchema is the schema of the companies stream; _id is the primary
// key, modified_on the cursor.
var CompaniesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "_id", Type: str},
	nullable("code", str),
	nullable("name", str),
	nullable("currency_code", str),
	nullable("active", boolean),
	nullable("payment_terms", str),
	nullable("credit_status", str),
	nullable("pricing_template", str),
	nullable("warehouse", str),
	nullable("discount", amountT),
	nullable("surcharge", amountT),
	nullable("allow_bulk", boolean),
	nullable("customer_groups", arrow.ListOf(str)),
	nullable("addresses", arrow.ListOf(addressType)),
	nullable("reps", arrow.ListOf(personType)),
	nullable("buyers", arrow.ListOf(personType)),
	nullable("created_on", tsType),
	nullable("modified_on", tsType),
	documentField,
	extractedField,
}, nil)

// orderSizeType is one size line of an order line item.
var orderSizeType = arrow.StructOf(
	nullable("size", str),
	nullable("upc", str),
	nullable("quantity", arrow.PrimitiveTypes.Int64),
	nullable("price", amountT),
	nullable("original_price", amountT),
)

// lineItemType is one line item (product) of an order.
var lineItemType = arrow.StructOf(
	nullable("id", str),
	nullable("product_id", str),
	nullable("style_number", str),
	nullable("color", str),
	nullable("color_code", str),
	nullable("brand_id", str),
	nullable("season", str),
	nullable("warehouse", str),
	nullable("prebook", boolean),
	nullable("ship_start", tsType),
	nullable("ship_end", tsType),
	nullable("sizes", arrow.ListOf(orderSizeType)),
)

// shipmentType is one shipment recorded on an order.
var shipmentType = arrow.StructOf(
	nullable("type", str),
	nullable("status", str),
	nullable("shipment_date", tsType),
	nullable("tracking_numbers", arrow.ListOf(str)),
)

// OrdersSchema is the schema of the orders stream; _id is the primary key,
// modified_on the cursor.
var OrdersSchema = arrow.NewSchema([]arrow.Field{
	{Name: "_id", Type: str},
	nullable("order_number", str),
	nullable("status", str),
	nullable("currency_code", str),
	nullable("customer_po_number", str),
	nullable("external_id", str),
	nullable("order_type", str),
	nullable("retailer_id", str),
	nullable("retailer_name", str),
	nullable("retailer_code", str),
	nullable("buyer_name", str),
	nullable("buyer_email", str),
	nullable("rep_name", str),
	nullable("rep_email", str),
	nullable("billing_address", addressType),
	nullable("shipping_address", addressType),
	nullable("ship_start", tsType),
	nullable("ship_end", tsType),
	nullable("total", amountT),
	nullable("total_quantity", arrow.PrimitiveTypes.Int64),
	nullable("discount", amountT),
	nullable("original_total", amountT),
	nullable("discounted_total", amountT),
	nullable("payment_status", str),
	nullable("edited", boolean),
	nullable("edited_on", tsType),
	nullable("notes", str),
	nullable("line_items", arrow.ListOf(lineItemType)),
	nullable("shipments", arrow.ListOf(shipmentType)),
	nullable("created_on", tsType),
	nullable("modified_on", tsType),
	documentField,
	extractedField,
}, nil)

// OrderLinesSchema is the schema of the order_lines stream: one row per
// order x line item x size. The key is (order_id, line_id, size); the cursor
// is the order's modified_on. document holds the line item's JSON.
var OrderLinesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "order_id", Type: str},
	nullable("order_number", str),
	nullable("status", str),
	{Name: "line_id", Type: str},
	{Name: "line_no", Type: int32T},
	nullable("product_id", str),
	nullable("style_number", str),
	nullable("color", str),
	nullable("color_code", str),
	nullable("brand_id", str),
	nullable("season", str),
	{Name: "size", Type: str},
	nullable("upc", str),
	nullable("warehouse", str),
	nullable("quantity", arrow.PrimitiveTypes.Int64),
	nullable("price", amountT),
	nullable("currency_code", str),
	nullable("ship_start", tsType),
	nullable("ship_end", tsType),
	nullable("prebook", boolean),
	nullable("retailer_name", str),
	nullable("modified_on", tsType),
	documentField,
	extractedField,
}, nil)

func appendInt64(b array.Builder, f flexNumber) {
	if f.ok && f.v == float64(int64(f.v)) {
		b.(*array.Int64Builder).Append(int64(f.v))
	} else {
		b.AppendNull()
	}
}

// appendStructs appends a list of structs, null when items is nil, calling
// fill to set each element's fields.
func appendStructs[T any](b array.Builder, items []T, fill func(sb *array.StructBuilder, item T)) {
	lb := b.(*array.ListBuilder)
	if items == nil {
		lb.AppendNull()
		return
	}
	lb.Append(true)
	sb := lb.ValueBuilder().(*array.StructBuilder)
	for _, it := range items {
		sb.Append(true)
		fill(sb, it)
	}
}

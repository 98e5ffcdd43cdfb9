package nuorder

import (
	"pipehost/connector"

	"github.com/apache/arrow/go/v15/arrow"
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

// ShipmentsSchema is the schema of the shipments stream: one row per
// shipment recorded on an order. The key is (order_id, shipment_no), the
// shipment's place on the order (shipments are only ever added); the cursor
// is the order's modified_on. document holds the shipment's JSON, shipped
// lines and sizes included when NuOrder has them.
var ShipmentsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "order_id", Type: str},
	nullable("order_number", str),
	nullable("order_status", str),
	{Name: "shipment_no", Type: int32T},
	nullable("type", str),
	nullable("status", str),
	nullable("shipment_date", tsType),
	nullable("carrier", str),
	nullable("tracking_numbers", arrow.ListOf(str)),
	nullable("modified_on", tsType),
	documentField,
	extractedField,
}, nil)

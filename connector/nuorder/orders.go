package nuorder

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"pipehost/connector"
)

// DefaultOrderStatuses are the statuses an orders read lists, in order. An
// approved order that is later processed, shipped or cancelled leaves the
// approved listing, so following it needs the later statuses too.
var DefaultOrderStatuses = []string{"approved", "processed", "shipped", "cancelled"}

type orderSize struct {
	Size          flexString `json:"size"`
	UPC           flexString `json:"upc"`
	Quantity      flexNumber `json:"quantity"`
	Price         flexNumber `json:"price"`
	OriginalPrice flexNumber `json:"original_price"`
}

type lineItem struct {
	ID      flexString `json:"id"`
	Product struct {
		ID          flexString `json:"_id"`
		StyleNumber flexString `json:"style_number"`
		Color       flexString `json:"color"`
		ColorCode   flexString `json:"color_code"`
		BrandID     flexString `json:"brand_id"`
		Season      flexString `json:"season"`
	} `json:"product"`
	Warehouse flexString  `json:"warehouse"`
	Prebook   flexBool    `json:"prebook"`
	ShipStart flexString  `json:"ship_start"`
	ShipEnd   flexString  `json:"ship_end"`
	Sizes     []orderSize `json:"sizes"`
	// raw is the line item as NuOrder sent it (see lineItems).
	raw json.RawMessage
}

// lineItems decodes an order's line_items once, keeping each item's own
// text for order_lines' document column beside its decoded fields.
type lineItems []lineItem

func (l *lineItems) UnmarshalJSON(b []byte) error {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return err
	}
	items := make([]lineItem, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &items[i]); err != nil {
			return err
		}
		items[i].raw = raw
	}
	*l = items
	return nil
}

// shipment is one shipment recorded on an order.
type shipment struct {
	Type            flexString   `json:"type"`
	Status          flexString   `json:"status"`
	ShipmentDate    flexString   `json:"shipment_date"`
	TrackingNumbers []flexString `json:"tracking_numbers"`
}

type order struct {
	ID               flexString `json:"_id"`
	OrderNumber      flexString `json:"order_number"`
	Status           flexString `json:"status"`
	CurrencyCode     flexString `json:"currency_code"`
	CustomerPONumber flexString `json:"customer_po_number"`
	ExternalID       flexString `json:"external_id"`
	OrderType        flexString `json:"order_type"`
	Retailer         struct {
		ID         flexString `json:"_id"`
		Name       flexString `json:"retailer_name"`
		Code       flexString `json:"retailer_code"`
		BuyerName  flexString `json:"buyer_name"`
		BuyerEmail flexString `json:"buyer_email"`
	} `json:"retailer"`
	RepName         flexString `json:"rep_name"`
	RepEmail        flexString `json:"rep_email"`
	BillingAddress  *address   `json:"billing_address"`
	ShippingAddress *address   `json:"shipping_address"`
	StartShip       flexString `json:"start_ship"`
	EndShip         flexString `json:"end_ship"`
	Total           flexNumber `json:"total"`
	TotalQuantity   flexNumber `json:"total_quantity"`
	Discount        flexNumber `json:"discount"`
	Discounts       struct {
		OriginalTotal   flexNumber `json:"original_total"`
		DiscountedTotal flexNumber `json:"discounted_total"`
	} `json:"order_discounts"`
	PaymentStatus flexString `json:"payment_status"`
	Edited        flexBool   `json:"edited"`
	EditedOn      flexString `json:"edited_on"`
	Notes         flexString `json:"notes"`
	LineItems     lineItems  `json:"line_items"`
	Shipments     []shipment `json:"shipments"`
	CreatedOn     flexString `json:"created_on"`
	ModifiedOn    flexString `json:"modified_on"`
}

// orderFilter holds an orders read's options.
type orderFilter struct {
	statuses []string
	from, to time.Time // on created_on, inclusive dates; zero = open
}

// orderOptions are the options of the orders streams.
var orderOptions = []string{"statuses", "approved_from", "approved_to"}

// parseOrderOptions reads statuses ("approved,processed"), approved_from and
// approved_to (YYYY-MM-DD, compared with the order's created_on: NuOrder
// documents carry no approval date).
func parseOrderOptions(stream string, opts map[string]string) (orderFilter, error) {
	f := orderFilter{statuses: DefaultOrderStatuses}
	if err := options(stream, opts, orderOptions...); err != nil {
		return f, err
	}
	if v := strings.TrimSpace(opts["statuses"]); v != "" {
		f.statuses = nil
		for _, s := range strings.Split(v, ",") {
			if s = strings.ToLower(strings.TrimSpace(s)); s != "" {
				f.statuses = append(f.statuses, s)
			}
		}
	}
	for name, into := range map[string]*time.Time{"approved_from": &f.from, "approved_to": &f.to} {
		if v, ok := opts[name]; ok && v != "" {
			t, err := time.Parse("2006-01-02", v)
			if err != nil {
				return f, fmt.Errorf("stream %s: option %s = %q is not a date like 2026-01-31", stream, name, v)
			}
			*into = t
		}
	}
	if !f.to.IsZero() {
		f.to = f.to.AddDate(0, 0, 1) // inclusive day: up to the next midnight
	}
	return f, nil
}

func (f orderFilter) keep(o *order) bool {
	if f.from.IsZero() && f.to.IsZero() {
		return true
	}
	t, ok := parseTime(o.CreatedOn.v)
	if !ok {
		return false
	}
	return (f.from.IsZero() || !t.Before(f.from)) && (f.to.IsZero() || t.Before(f.to))
}

// readOrderStreams emits the orders created, modified or moved to another
// status since the checkpoint (see eachOrder), as the rows of each of
// streams ("orders": one row per order; "order_lines": one per order x line
// item x size): one download and one decode of each document feed them all.
// With more than one stream, each batch names its stream, and each stream
// resumes from its own checkpoint (req.Checkpoint for the first, then
// req.WithCheckpoints) and gets its own.
func (c *Connector) readOrderStreams(ctx context.Context, req connector.ReadRequest, streams []string, emit connector.EmitFunc) error {
	extracted := time.Now().UTC()
	var (
		batchers []*batcher
		appends  []func(o *order, raw json.RawMessage) error
	)
	defer func() {
		for _, bt := range batchers {
			bt.release()
		}
	}()
	for _, name := range streams {
		e := emit
		if len(streams) > 1 {
			name := name
			e = func(b connector.Batch) error { b.Stream = name; return emit(b) }
		}
		switch name {
		case "orders":
			bt := newBatcher(OrdersSchema, e)
			batchers = append(batchers, bt)
			appends = append(appends, func(o *order, raw json.RawMessage) error {
				appendOrder(bt.b, o, raw, extracted)
				return bt.added()
			})
		case "order_lines":
			bt := newBatcher(OrderLinesSchema, e)
			batchers = append(batchers, bt)
			appends = append(appends, func(o *order, _ json.RawMessage) error {
				if len(o.LineItems) == 0 && o.Status.v == DeletedStatus {
					appendDeletedOrderLine(bt.b, o, extracted)
					return bt.added()
				}
				for i := range o.LineItems {
					for _, sz := range o.LineItems[i].Sizes {
						appendOrderLine(bt.b, o, i, sz, extracted)
						if err := bt.added(); err != nil {
							return err
						}
					}
				}
				return nil
			})
		default:
			return fmt.Errorf("%w %q: it cannot be read with %s", connector.ErrUnknownStream, name, strings.Join(streams, ", "))
		}
	}
	targets := make([]orderTarget, len(streams))
	for i, name := range streams {
		cp := req.Checkpoint
		if i > 0 {
			cp = req.WithCheckpoints[name]
		}
		bt := batchers[i]
		targets[i] = orderTarget{stream: name, checkpoint: cp, fn: appends[i], flush: bt.flush}
	}
	return c.eachOrder(ctx, req.Stream, req.Options, targets)
}

func appendOrder(b *array.RecordBuilder, o *order, raw json.RawMessage, extracted time.Time) {
	col := func(name string) array.Builder { return column(b, name) }
	for _, c := range [...]named{{"_id", o.ID}, {"order_number", o.OrderNumber}, {"status", o.Status},
		{"currency_code", o.CurrencyCode}, {"customer_po_number", o.CustomerPONumber}, {"external_id", o.ExternalID},
		{"order_type", o.OrderType}, {"retailer_id", o.Retailer.ID}, {"retailer_name", o.Retailer.Name}, {"retailer_code", o.Retailer.Code},
		{"buyer_name", o.Retailer.BuyerName}, {"buyer_email", o.Retailer.BuyerEmail}, {"rep_name", o.RepName}, {"rep_email", o.RepEmail},
		{"payment_status", o.PaymentStatus}, {"notes", o.Notes}} {
		appendString(col(c.name), c.v)
	}
	appendAddress(col("billing_address"), o.BillingAddress)
	appendAddress(col("shipping_address"), o.ShippingAddress)
	appendTime(col("ship_start"), o.StartShip)
	appendTime(col("ship_end"), o.EndShip)
	appendAmount(col("total"), o.Total)
	appendInt64(col("total_quantity"), o.TotalQuantity)
	appendAmount(col("discount"), o.Discount)
	appendAmount(col("original_total"), o.Discounts.OriginalTotal)
	appendAmount(col("discounted_total"), o.Discounts.DiscountedTotal)
	appendBool(col("edited"), o.Edited)
	appendTime(col("edited_on"), o.EditedOn)
	appendStructs(col("line_items"), o.LineItems, func(sb *array.StructBuilder, li lineItem) {
		for _, c := range [...]named{{"id", li.ID}, {"product_id", li.Product.ID}, {"style_number", li.Product.StyleNumber},
			{"color", li.Product.Color}, {"color_code", li.Product.ColorCode}, {"brand_id", li.Product.BrandID}, {"season", li.Product.Season},
			{"warehouse", li.Warehouse}} {
			appendString(member(sb, lineItemType, c.name), c.v)
		}
		appendBool(member(sb, lineItemType, "prebook"), li.Prebook)
		appendTime(member(sb, lineItemType, "ship_start"), li.ShipStart)
		appendTime(member(sb, lineItemType, "ship_end"), li.ShipEnd)
		appendStructs(member(sb, lineItemType, "sizes"), li.Sizes, func(ssb *array.StructBuilder, sz orderSize) {
			appendString(member(ssb, orderSizeType, "size"), sz.Size)
			appendString(member(ssb, orderSizeType, "upc"), sz.UPC)
			appendInt64(member(ssb, orderSizeType, "quantity"), sz.Quantity)
			appendAmount(member(ssb, orderSizeType, "price"), sz.Price)
			appendAmount(member(ssb, orderSizeType, "original_price"), sz.OriginalPrice)
		})
	})
	appendStructs(col("shipments"), o.Shipments, func(sb *array.StructBuilder, s shipment) {
		appendString(member(sb, shipmentType, "type"), s.Type)
		appendString(member(sb, shipmentType, "status"), s.Status)
		appendTime(member(sb, shipmentType, "shipment_date"), s.ShipmentDate)
		appendStrings(member(sb, shipmentType, "tracking_numbers"), s.TrackingNumbers)
	})
	appendTime(col("created_on"), o.CreatedOn)
	appendTime(col("modified_on"), o.ModifiedOn)
	col("document").(*array.StringBuilder).Append(string(raw))
	col("_extracted_at").(*array.TimestampBuilder).Append(arrow.Timestamp(extracted.UnixMicro()))
}

func appendOrderLine(b *array.RecordBuilder, o *order, i int, sz orderSize, extracted time.Time) {
	li := &o.LineItems[i]
	col := func(name string) array.Builder { return column(b, name) }
	lineID := li.ID.v
	if !li.ID.ok || lineID == "" {
		lineID = "line-" + strconv.Itoa(i+1) // older orders have no line id
	}
	for _, c := range [...]named{{"order_id", o.ID}, {"order_number", o.OrderNumber}, {"status", o.Status},
		{"product_id", li.Product.ID}, {"style_number", li.Product.StyleNumber}, {"color", li.Product.Color},
		{"color_code", li.Product.ColorCode}, {"brand_id", li.Product.BrandID}, {"season", li.Product.Season},
		{"upc", sz.UPC}, {"warehouse", li.Warehouse}, {"currency_code", o.CurrencyCode}, {"retailer_name", o.Retailer.Name}} {
		appendString(col(c.name), c.v)
	}
	col("line_id").(*array.StringBuilder).Append(lineID)
	col("line_no").(*array.Int32Builder).Append(int32(i + 1))
	col("size").(*array.StringBuilder).Append(sz.Size.v)
	appendInt64(col("quantity"), sz.Quantity)
	appendAmount(col("price"), sz.Price)
	start, end := li.ShipStart, li.ShipEnd
	if !start.ok || start.v == "" {
		start = o.StartShip // the line inherits the order's ship window
	}
	if !end.ok || end.v == "" {
		end = o.EndShip
	}
	appendTime(col("ship_start"), start)
	appendTime(col("ship_end"), end)
	appendBool(col("prebook"), li.Prebook)
	appendTime(col("modified_on"), o.ModifiedOn)
	col("document").(*array.StringBuilder).Append(string(li.raw))
	col("_extracted_at").(*array.TimestampBuilder).Append(arrow.Timestamp(extracted.UnixMicro()))
}

// appendDeletedOrderLine appends the one row that says an order is gone
// from NuOrder: its _id, status DeletedStatus, empty line_id and size.
func appendDeletedOrderLine(b *array.RecordBuilder, o *order, extracted time.Time) {
	set := map[string]func(array.Builder){
		"order_id": func(fb array.Builder) { fb.(*array.StringBuilder).Append(o.ID.v) },
		"status":   func(fb array.Builder) { fb.(*array.StringBuilder).Append(DeletedStatus) },
		"line_id":  func(fb array.Builder) { fb.(*array.StringBuilder).Append("") },
		"size":     func(fb array.Builder) { fb.(*array.StringBuilder).Append("") },
		"line_no":  func(fb array.Builder) { fb.(*array.Int32Builder).Append(0) },
		"document": func(fb array.Builder) {
			fb.(*array.StringBuilder).Append(`{"_id":` + strconv.Quote(o.ID.v) + `,"status":"` + DeletedStatus + `"}`)
		},
		"_extracted_at": func(fb array.Builder) { fb.(*array.TimestampBuilder).Append(arrow.Timestamp(extracted.UnixMicro())) },
	}
	for i, f := range b.Schema().Fields() {
		if fn, ok := set[f.Name]; ok {
			fn(b.Field(i))
		} else {
			b.Field(i).AppendNull()
		}
	}
}

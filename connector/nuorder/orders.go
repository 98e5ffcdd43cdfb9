package nuorder

import (
	"bytes"
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

// shipmentList decodes an order's shipments once, keeping each one's own
// text for the shipments stream's document column. null leaves none (nil),
// as a plain slice would.
type shipmentList []shipment

func (l *shipmentList) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*l = nil
		return nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return err
	}
	items := make(shipmentList, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &items[i]); err != nil {
			return err
		}
		items[i].raw = raw
	}
	*l = items
	return nil
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
	// raw is the shipment as NuOrder sent it (see shipmentList).
	raw             json.RawMessage
	Type            flexString   `json:"type"`
	Status          flexString   `json:"status"`
	ShipmentDate    flexString   `json:"shipment_date"`
	Carrier         flexString   `json:"carrier"`
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
	PaymentStatus flexString   `json:"payment_status"`
	Edited        flexBool     `json:"edited"`
	EditedOn      flexString   `json:"edited_on"`
	Notes         flexString   `json:"notes"`
	LineItems     lineItems    `json:"line_items"`
	Shipments     shipmentList `json:"shipments"`
	CreatedOn     flexString   `json:"created_on"`
	ModifiedOn    flexString   `json:"modified_on"`
}

// orderFilter holds an orders read's options.
type orderFilter struct {
	statuses []string
	from, to time.Time // on created_on, inclusive dates; zero = open
	// ids: read = "ids" (status listings of ids, orders read by id);
	// refresh bounds how old an order's last read may grow then.
	ids     bool
	refresh time.Duration
}

// orderOptions are the options of the orders streams.
var orderOptions = []connector.Option{
	{Name: "statuses", Kind: connector.OptionList, Allowed: orderStatuses, Default: strings.Join(DefaultOrderStatuses, ","),
		Description: "the status listings read, comma-separated"},
	{Name: "approved_from", Kind: connector.OptionDate,
		Description: "keep orders created on or after this date (YYYY-MM-DD; NuOrder documents carry no approval date)"},
	{Name: "approved_to", Kind: connector.OptionDate,
		Description: "keep orders created on or before this date (YYYY-MM-DD)"},
	{Name: "read", Kind: connector.OptionString, Allowed: []string{"detail", "ids"}, Default: "detail",
		Description: "detail: every order of each status listing, whole, each run; ids: the listings' ids, then by id only the orders new to a status and a rolling share of the rest (see refresh_hours)"},
	{Name: "refresh_hours", Kind: connector.OptionInteger, Default: "24",
		Description: "with read = \"ids\": re-read each order at least this often (hours); an edit that leaves an order in its status is seen within this time"},
}

// parseOrderOptions reads statuses ("approved,processed"), approved_from and
// approved_to (YYYY-MM-DD, compared with the order's created_on: NuOrder
// documents carry no approval date).
func parseOrderOptions(stream string, opts map[string]string) (orderFilter, error) {
	f := orderFilter{statuses: DefaultOrderStatuses}
	if err := connector.CheckOptions(stream, orderOptions, opts); err != nil {
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
	f.ids = strings.EqualFold(strings.TrimSpace(opts["read"]), "ids")
	f.refresh = refreshOf(opts)
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
// Each batch names its stream, and each stream resumes from its own
// checkpoint and gets its own.
func (c *Connector) readOrderStreams(ctx context.Context, req connector.ReadRequest, emit connector.EmitFunc) error {
	streams := req.Names()
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
		e := emit.For(name)
		switch name {
		case "orders":
			bt := newBatcher(OrdersSchema, e)
			batchers = append(batchers, bt)
			cols := newOrderColumns(bt.b)
			appends = append(appends, func(o *order, raw json.RawMessage) error {
				appendOrder(cols, o, raw, extracted)
				return bt.added()
			})
		case "order_lines":
			bt := newBatcher(OrderLinesSchema, e)
			batchers = append(batchers, bt)
			cols := newOrderLineColumns(bt.b)
			appends = append(appends, func(o *order, _ json.RawMessage) error {
				if len(o.LineItems) == 0 && o.Status.v == DeletedStatus {
					appendDeletedOrderLine(bt.b, o, extracted)
					return bt.added()
				}
				for i := range o.LineItems {
					for _, sz := range o.LineItems[i].Sizes {
						appendOrderLine(cols, o, i, sz, extracted)
						if err := bt.added(); err != nil {
							return err
						}
					}
				}
				return nil
			})
		case "shipments":
			bt := newBatcher(ShipmentsSchema, e)
			batchers = append(batchers, bt)
			cols := newShipmentColumns(bt.b)
			appends = append(appends, func(o *order, _ json.RawMessage) error {
				for i := range o.Shipments {
					appendShipment(cols, o, i, extracted)
					if err := bt.added(); err != nil {
						return err
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
		bt := batchers[i]
		targets[i] = orderTarget{stream: name, checkpoint: req.Checkpoint(name), fn: appends[i], flush: bt.flush}
	}
	return c.eachOrder(ctx, req.First(), req.Options, targets)
}

// orderColumns are the builders of an orders batch, looked up by name once
// per batch builder (a name the schema lacks panics at once, naming it).
type orderColumns struct {
	strs                                                [16]*array.StringBuilder // in orderStringColumns order
	billing, shipping                                   array.Builder
	shipStart, shipEnd, editedOn, createdOn, modifiedOn array.Builder
	total, discount, originalTotal, discountedTotal     array.Builder
	totalQuantity, edited                               array.Builder
	document                                            *array.StringBuilder
	extracted                                           *array.TimestampBuilder

	lineItems, shipments *array.ListBuilder
	item                 *array.StructBuilder
	itemStrs             [8]*array.StringBuilder // in lineItemStringFields order
	itemPrebook          array.Builder
	itemStart, itemEnd   array.Builder
	itemSizes            *array.ListBuilder
	size                 *array.StructBuilder
	sizeSize, sizeUPC    array.Builder
	sizeQuantity         array.Builder
	sizePrice, sizeOrig  array.Builder
	ship                 *array.StructBuilder
	shipType, shipStatus array.Builder
	shipDate             array.Builder
	shipTracking         array.Builder
}

var orderStringColumns = [16]string{"_id", "order_number", "status", "currency_code", "customer_po_number", "external_id",
	"order_type", "retailer_id", "retailer_name", "retailer_code", "buyer_name", "buyer_email", "rep_name", "rep_email",
	"payment_status", "notes"}

var lineItemStringFields = [8]string{"id", "product_id", "style_number", "color", "color_code", "brand_id", "season", "warehouse"}

func newOrderColumns(b *array.RecordBuilder) *orderColumns {
	c := &orderColumns{}
	for i, name := range orderStringColumns {
		c.strs[i] = column(b, name).(*array.StringBuilder)
	}
	c.billing, c.shipping = column(b, "billing_address"), column(b, "shipping_address")
	c.shipStart, c.shipEnd, c.editedOn = column(b, "ship_start"), column(b, "ship_end"), column(b, "edited_on")
	c.createdOn, c.modifiedOn = column(b, "created_on"), column(b, "modified_on")
	c.total, c.discount = column(b, "total"), column(b, "discount")
	c.originalTotal, c.discountedTotal = column(b, "original_total"), column(b, "discounted_total")
	c.totalQuantity, c.edited = column(b, "total_quantity"), column(b, "edited")
	c.document = column(b, "document").(*array.StringBuilder)
	c.extracted = column(b, "_extracted_at").(*array.TimestampBuilder)
	c.lineItems = column(b, "line_items").(*array.ListBuilder)
	c.item = c.lineItems.ValueBuilder().(*array.StructBuilder)
	for i, name := range lineItemStringFields {
		c.itemStrs[i] = member(c.item, lineItemType, name).(*array.StringBuilder)
	}
	c.itemPrebook = member(c.item, lineItemType, "prebook")
	c.itemStart, c.itemEnd = member(c.item, lineItemType, "ship_start"), member(c.item, lineItemType, "ship_end")
	c.itemSizes = member(c.item, lineItemType, "sizes").(*array.ListBuilder)
	c.size = c.itemSizes.ValueBuilder().(*array.StructBuilder)
	c.sizeSize, c.sizeUPC = member(c.size, orderSizeType, "size"), member(c.size, orderSizeType, "upc")
	c.sizeQuantity = member(c.size, orderSizeType, "quantity")
	c.sizePrice, c.sizeOrig = member(c.size, orderSizeType, "price"), member(c.size, orderSizeType, "original_price")
	c.shipments = column(b, "shipments").(*array.ListBuilder)
	c.ship = c.shipments.ValueBuilder().(*array.StructBuilder)
	c.shipType, c.shipStatus = member(c.ship, shipmentType, "type"), member(c.ship, shipmentType, "status")
	c.shipDate, c.shipTracking = member(c.ship, shipmentType, "shipment_date"), member(c.ship, shipmentType, "tracking_numbers")
	return c
}

func appendOrder(c *orderColumns, o *order, raw json.RawMessage, extracted time.Time) {
	for i, v := range [16]flexString{o.ID, o.OrderNumber, o.Status, o.CurrencyCode, o.CustomerPONumber, o.ExternalID,
		o.OrderType, o.Retailer.ID, o.Retailer.Name, o.Retailer.Code, o.Retailer.BuyerName, o.Retailer.BuyerEmail,
		o.RepName, o.RepEmail, o.PaymentStatus, o.Notes} {
		appendString(c.strs[i], v)
	}
	appendAddress(c.billing, o.BillingAddress)
	appendAddress(c.shipping, o.ShippingAddress)
	appendTime(c.shipStart, o.StartShip)
	appendTime(c.shipEnd, o.EndShip)
	appendAmount(c.total, o.Total)
	appendInt64(c.totalQuantity, o.TotalQuantity)
	appendAmount(c.discount, o.Discount)
	appendAmount(c.originalTotal, o.Discounts.OriginalTotal)
	appendAmount(c.discountedTotal, o.Discounts.DiscountedTotal)
	appendBool(c.edited, o.Edited)
	appendTime(c.editedOn, o.EditedOn)
	if o.LineItems == nil {
		c.lineItems.AppendNull()
	} else {
		c.lineItems.Append(true)
		for i := range o.LineItems {
			li := &o.LineItems[i]
			c.item.Append(true)
			for k, v := range [8]flexString{li.ID, li.Product.ID, li.Product.StyleNumber, li.Product.Color, li.Product.ColorCode,
				li.Product.BrandID, li.Product.Season, li.Warehouse} {
				appendString(c.itemStrs[k], v)
			}
			appendBool(c.itemPrebook, li.Prebook)
			appendTime(c.itemStart, li.ShipStart)
			appendTime(c.itemEnd, li.ShipEnd)
			if li.Sizes == nil {
				c.itemSizes.AppendNull()
				continue
			}
			c.itemSizes.Append(true)
			for _, sz := range li.Sizes {
				c.size.Append(true)
				appendString(c.sizeSize, sz.Size)
				appendString(c.sizeUPC, sz.UPC)
				appendInt64(c.sizeQuantity, sz.Quantity)
				appendAmount(c.sizePrice, sz.Price)
				appendAmount(c.sizeOrig, sz.OriginalPrice)
			}
		}
	}
	if o.Shipments == nil {
		c.shipments.AppendNull()
	} else {
		c.shipments.Append(true)
		for _, s := range o.Shipments {
			c.ship.Append(true)
			appendString(c.shipType, s.Type)
			appendString(c.shipStatus, s.Status)
			appendTime(c.shipDate, s.ShipmentDate)
			appendStrings(c.shipTracking, s.TrackingNumbers)
		}
	}
	appendTime(c.createdOn, o.CreatedOn)
	appendTime(c.modifiedOn, o.ModifiedOn)
	c.document.BinaryBuilder.Append(raw) // the bytes, without a string copy
	c.extracted.Append(arrow.Timestamp(extracted.UnixMicro()))
}

// orderLineColumns are the builders of an order_lines batch, looked up by
// name once per batch builder.
type orderLineColumns struct {
	b                              *array.RecordBuilder
	strs                           [13]*array.StringBuilder // in orderLineStringColumns order
	lineID, size, document         *array.StringBuilder
	lineNo                         *array.Int32Builder
	quantity, price                array.Builder
	shipStart, shipEnd, modifiedOn array.Builder
	prebook                        array.Builder
	extracted                      *array.TimestampBuilder
}

var orderLineStringColumns = [13]string{"order_id", "order_number", "status", "product_id", "style_number", "color",
	"color_code", "brand_id", "season", "upc", "warehouse", "currency_code", "retailer_name"}

func newOrderLineColumns(b *array.RecordBuilder) *orderLineColumns {
	c := &orderLineColumns{b: b}
	for i, name := range orderLineStringColumns {
		c.strs[i] = column(b, name).(*array.StringBuilder)
	}
	c.lineID = column(b, "line_id").(*array.StringBuilder)
	c.size = column(b, "size").(*array.StringBuilder)
	c.document = column(b, "document").(*array.StringBuilder)
	c.lineNo = column(b, "line_no").(*array.Int32Builder)
	c.quantity, c.price = column(b, "quantity"), column(b, "price")
	c.shipStart, c.shipEnd, c.modifiedOn = column(b, "ship_start"), column(b, "ship_end"), column(b, "modified_on")
	c.prebook = column(b, "prebook")
	c.extracted = column(b, "_extracted_at").(*array.TimestampBuilder)
	return c
}

func appendOrderLine(c *orderLineColumns, o *order, i int, sz orderSize, extracted time.Time) {
	li := &o.LineItems[i]
	lineID := li.ID.v
	if !li.ID.ok || lineID == "" {
		lineID = "line-" + strconv.Itoa(i+1) // older orders have no line id
	}
	for k, v := range [13]flexString{o.ID, o.OrderNumber, o.Status, li.Product.ID, li.Product.StyleNumber, li.Product.Color,
		li.Product.ColorCode, li.Product.BrandID, li.Product.Season, sz.UPC, li.Warehouse, o.CurrencyCode, o.Retailer.Name} {
		appendString(c.strs[k], v)
	}
	c.lineID.Append(lineID)
	c.lineNo.Append(int32(i + 1))
	c.size.Append(sz.Size.v)
	appendInt64(c.quantity, sz.Quantity)
	appendAmount(c.price, sz.Price)
	start, end := li.ShipStart, li.ShipEnd
	if !start.ok || start.v == "" {
		start = o.StartShip // the line inherits the order's ship window
	}
	if !end.ok || end.v == "" {
		end = o.EndShip
	}
	appendTime(c.shipStart, start)
	appendTime(c.shipEnd, end)
	appendBool(c.prebook, li.Prebook)
	appendTime(c.modifiedOn, o.ModifiedOn)
	c.document.BinaryBuilder.Append(li.raw) // the bytes, without a string copy
	c.extracted.Append(arrow.Timestamp(extracted.UnixMicro()))
}

// shipmentColumns are the builders of a shipments batch, looked up by name
// once per batch builder.
type shipmentColumns struct {
	strs             [6]*array.StringBuilder // in shipmentStringColumns order
	no               *array.Int32Builder
	date, modifiedOn array.Builder
	tracking         array.Builder
	document         *array.StringBuilder
	extracted        *array.TimestampBuilder
}

var shipmentStringColumns = [6]string{"order_id", "order_number", "order_status", "type", "status", "carrier"}

func newShipmentColumns(b *array.RecordBuilder) *shipmentColumns {
	c := &shipmentColumns{}
	for i, name := range shipmentStringColumns {
		c.strs[i] = column(b, name).(*array.StringBuilder)
	}
	c.no = column(b, "shipment_no").(*array.Int32Builder)
	c.date, c.modifiedOn = column(b, "shipment_date"), column(b, "modified_on")
	c.tracking = column(b, "tracking_numbers")
	c.document = column(b, "document").(*array.StringBuilder)
	c.extracted = column(b, "_extracted_at").(*array.TimestampBuilder)
	return c
}

// appendShipment appends shipment i of an order.
func appendShipment(c *shipmentColumns, o *order, i int, extracted time.Time) {
	s := &o.Shipments[i]
	for k, v := range [6]flexString{o.ID, o.OrderNumber, o.Status, s.Type, s.Status, s.Carrier} {
		appendString(c.strs[k], v)
	}
	c.no.Append(int32(i + 1))
	appendTime(c.date, s.ShipmentDate)
	appendStrings(c.tracking, s.TrackingNumbers)
	appendTime(c.modifiedOn, o.ModifiedOn)
	c.document.BinaryBuilder.Append(s.raw) // the bytes, without a string copy
	c.extracted.Append(arrow.Timestamp(extracted.UnixMicro()))
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

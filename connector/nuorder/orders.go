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
	LineItems     []lineItem `json:"line_items"`
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

// readOrders emits the orders created, modified or moved to another status
// since the checkpoint (see eachOrder).
func (c *Connector) readOrders(ctx context.Context, req connector.ReadRequest, emit connector.EmitFunc) error {
	extracted := time.Now().UTC()
	bt := newBatcher(OrdersSchema, emit)
	defer bt.release()
	return c.eachOrder(ctx, "orders", req, func(o *order, raw json.RawMessage) error {
		appendOrder(bt.b, o, raw, extracted)
		return bt.added()
	}, bt.flush)
}

// readOrderLines emits the same orders as readOrders, one row per order x
// line item x size.
func (c *Connector) readOrderLines(ctx context.Context, req connector.ReadRequest, emit connector.EmitFunc) error {
	extracted := time.Now().UTC()
	bt := newBatcher(OrderLinesSchema, emit)
	defer bt.release()
	return c.eachOrder(ctx, "order_lines", req, func(o *order, raw json.RawMessage) error {
		var doc struct {
			LineItems []json.RawMessage `json:"line_items"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return err
		}
		if len(o.LineItems) == 0 && o.Status.v == DeletedStatus {
			appendDeletedOrderLine(bt.b, o, extracted)
			return bt.added()
		}
		for i := range o.LineItems {
			for _, sz := range o.LineItems[i].Sizes {
				appendOrderLine(bt.b, o, i, sz, doc.LineItems[i], extracted)
				if err := bt.added(); err != nil {
					return err
				}
			}
		}
		return nil
	}, bt.flush)
}

func appendOrder(b *array.RecordBuilder, o *order, raw json.RawMessage, extracted time.Time) {
	f := b.Fields()
	for i, s := range []flexString{o.ID, o.OrderNumber, o.Status, o.CurrencyCode, o.CustomerPONumber, o.ExternalID, o.OrderType,
		o.Retailer.ID, o.Retailer.Name, o.Retailer.Code, o.Retailer.BuyerName, o.Retailer.BuyerEmail, o.RepName, o.RepEmail} {
		appendString(f[i], s)
	}
	appendAddress(f[14], o.BillingAddress)
	appendAddress(f[15], o.ShippingAddress)
	appendTime(f[16], o.StartShip)
	appendTime(f[17], o.EndShip)
	appendAmount(f[18], o.Total)
	appendInt64(f[19], o.TotalQuantity)
	appendAmount(f[20], o.Discount)
	appendAmount(f[21], o.Discounts.OriginalTotal)
	appendAmount(f[22], o.Discounts.DiscountedTotal)
	appendString(f[23], o.PaymentStatus)
	appendBool(f[24], o.Edited)
	appendTime(f[25], o.EditedOn)
	appendString(f[26], o.Notes)

	appendStructs(f[27], o.LineItems, func(sb *array.StructBuilder, li lineItem) {
		for i, s := range []flexString{li.ID, li.Product.ID, li.Product.StyleNumber, li.Product.Color, li.Product.ColorCode,
			li.Product.BrandID, li.Product.Season, li.Warehouse} {
			appendString(sb.FieldBuilder(i), s)
		}
		appendBool(sb.FieldBuilder(8), li.Prebook)
		appendTime(sb.FieldBuilder(9), li.ShipStart)
		appendTime(sb.FieldBuilder(10), li.ShipEnd)
		appendStructs(sb.FieldBuilder(11), li.Sizes, func(ssb *array.StructBuilder, sz orderSize) {
			appendString(ssb.FieldBuilder(0), sz.Size)
			appendString(ssb.FieldBuilder(1), sz.UPC)
			appendInt64(ssb.FieldBuilder(2), sz.Quantity)
			appendAmount(ssb.FieldBuilder(3), sz.Price)
			appendAmount(ssb.FieldBuilder(4), sz.OriginalPrice)
		})
	})
	appendStructs(f[28], o.Shipments, func(sb *array.StructBuilder, s shipment) {
		appendString(sb.FieldBuilder(0), s.Type)
		appendString(sb.FieldBuilder(1), s.Status)
		appendTime(sb.FieldBuilder(2), s.ShipmentDate)
		appendStrings(sb.FieldBuilder(3), s.TrackingNumbers)
	})
	appendTime(f[29], o.CreatedOn)
	appendTime(f[30], o.ModifiedOn)
	f[31].(*array.StringBuilder).Append(string(raw))
	f[32].(*array.TimestampBuilder).Append(arrow.Timestamp(extracted.UnixMicro()))
}

func appendOrderLine(b *array.RecordBuilder, o *order, i int, sz orderSize, rawLine json.RawMessage, extracted time.Time) {
	li := &o.LineItems[i]
	f := b.Fields()
	appendString(f[0], o.ID)
	appendString(f[1], o.OrderNumber)
	appendString(f[2], o.Status)
	lineID := li.ID.v
	if !li.ID.ok || lineID == "" {
		lineID = "line-" + strconv.Itoa(i+1) // older orders have no line id
	}
	f[3].(*array.StringBuilder).Append(lineID)
	f[4].(*array.Int32Builder).Append(int32(i + 1))
	for k, s := range []flexString{li.Product.ID, li.Product.StyleNumber, li.Product.Color, li.Product.ColorCode, li.Product.BrandID, li.Product.Season} {
		appendString(f[5+k], s)
	}
	f[11].(*array.StringBuilder).Append(sz.Size.v)
	appendString(f[12], sz.UPC)
	appendString(f[13], li.Warehouse)
	appendInt64(f[14], sz.Quantity)
	appendAmount(f[15], sz.Price)
	appendString(f[16], o.CurrencyCode)
	start, end := li.ShipStart, li.ShipEnd
	if !start.ok || start.v == "" {
		start = o.StartShip // the line inherits the order's ship window
	}
	if !end.ok || end.v == "" {
		end = o.EndShip
	}
	appendTime(f[17], start)
	appendTime(f[18], end)
	appendBool(f[19], li.Prebook)
	appendString(f[20], o.Retailer.Name)
	appendTime(f[21], o.ModifiedOn)
	f[22].(*array.StringBuilder).Append(string(rawLine))
	f[23].(*array.TimestampBuilder).Append(arrow.Timestamp(extracted.UnixMicro()))
}

// appendDeletedOrderLine appends the one row that says an order is gone
// from NuOrder: its _id, status DeletedStatus, empty line_id and size.
func appendDeletedOrderLine(b *array.RecordBuilder, o *order, extracted time.Time) {
	f := b.Fields()
	for i, fb := range f {
		switch i {
		case 0:
			fb.(*array.StringBuilder).Append(o.ID.v)
		case 2:
			fb.(*array.StringBuilder).Append(DeletedStatus)
		case 3, 11:
			fb.(*array.StringBuilder).Append("")
		case 4:
			fb.(*array.Int32Builder).Append(0)
		case 22:
			fb.(*array.StringBuilder).Append(`{"_id":` + strconv.Quote(o.ID.v) + `,"status":"` + DeletedStatus + `"}`)
		case 23:
			fb.(*array.TimestampBuilder).Append(arrow.Timestamp(extracted.UnixMicro()))
		default:
			fb.AppendNull()
		}
	}
}

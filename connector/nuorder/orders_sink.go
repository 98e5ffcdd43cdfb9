package nuorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
)

// OrdersSinkSchema is the schema of the orders sink stream: one row per
// order line and size, the order's own fields repeated on each of its rows
// (as ERP and EDI exports have them). The SKU is named as the inventory
// stream names it: sku_id, upc, or brand_id and size.
var OrdersSinkSchema = arrow.NewSchema([]arrow.Field{
	nullable("order_number", str),
	nullable("external_id", str),
	nullable("currency_code", str),
	nullable("ship_start", date32),
	nullable("ship_end", date32),
	nullable("retailer_code", str),
	nullable("buyer_email", str),
	nullable("customer_po_number", str),
	nullable("notes", str),
	nullable("sku_id", str),
	nullable("upc", str),
	nullable("brand_id", str),
	nullable("size", str),
	nullable("quantity", float64T),
	nullable("price", float64T),
}, nil)

// ordersLedger remembers the order numbers this pipeline created (or found
// in NuOrder): a row of one of them is not sent again, nor read.
type ordersLedger map[string]bool

// newOrder is one order built from its input rows.
type newOrder struct {
	number, externalID, currency, retailer, buyer, po, notes string
	start, end                                               time.Time
	lines                                                    map[string]*newLine // by product id
	lineOrder                                                []string
	rows                                                     []int64
	reject                                                   string // the first reason the order cannot be sent
}

type newLine struct {
	productID string
	sizes     []map[string]any
}

// writeOrders creates orders in NuOrder (PUT /api/order/new, the fields S9
// sends, shared/nuorder-api.md §7.3). Every order is checked before
// anything is sent: its required fields, its SKUs (against the product
// catalog) and its retailer (GET /api/company/code/{code}); an order with a
// bad row is rejected whole, with the row's reason. An order is created
// once: the ledger skips the numbers this pipeline created, and any other
// number is first read from NuOrder (GET /api/order/number/{n}): an order
// that exists is left alone (NuOrder has no lookup by external id, so the
// order number is the key). A dry run makes the same reads and creates
// nothing.
func (c *Connector) writeOrders(ctx context.Context, req connector.WriteRequest, in connector.RecordIterator, results connector.ResultFunc) (connector.WriteSummary, error) {
	var sum connector.WriteSummary
	if err := connector.CheckOptions("orders", nil, req.Options); err != nil {
		return sum, err
	}
	ledger := ordersLedger{}
	if err := readJSONLedger("orders", req.Ledger, &ledger); err != nil {
		return sum, err
	}
	var ix *catalogIndex
	orders := map[string]*newOrder{}
	var byInput []*newOrder
	err := eachInputRow("orders", OrdersSinkSchema, in, results, func(r row, n int64) (string, error) {
		number := r.str("order_number")
		if number == "" {
			return "no order_number", nil
		}
		o, ok := orders[number]
		if !ok {
			o = &newOrder{number: number, externalID: r.str("external_id"), currency: strings.ToUpper(r.str("currency_code")),
				retailer: r.str("retailer_code"), buyer: r.str("buyer_email"), po: r.str("customer_po_number"), notes: r.str("notes"),
				lines: map[string]*newLine{}}
			o.start, _ = r.date("ship_start")
			o.end, _ = r.date("ship_end")
			orders[number] = o
			byInput = append(byInput, o)
		}
		o.rows = append(o.rows, n)
		if o.reject != "" || ledger[number] {
			return "", nil
		}
		if reason := o.check(r); reason != "" {
			o.reject = reason
			return "", nil
		}
		if ix == nil {
			var err error
			if ix, err = c.buildIndex(ctx); err != nil {
				return "", err
			}
		}
		ref, err := ix.sku(r)
		if err != nil {
			o.reject = err.Error()
			return "", nil
		}
		qty, ok := r.num("quantity")
		if !ok || qty <= 0 || qty != float64(int64(qty)) {
			o.reject = "quantity must be a whole number above 0"
			return "", nil
		}
		l, ok := o.lines[ref.productID]
		if !ok {
			l = &newLine{productID: ref.productID}
			o.lines[ref.productID] = l
			o.lineOrder = append(o.lineOrder, ref.productID)
		}
		size := map[string]any{"size": ref.size, "upc": ref.upc, "quantity": int64(qty)}
		if price, ok := r.num("price"); ok {
			size["price"] = price
		}
		l.sizes = append(l.sizes, size)
		return "", nil
	})
	if err != nil {
		return sum, err
	}
	retailers := map[string]bool{} // code -> known
	for _, o := range byInput {
		res := accepted(o.rows)
		switch {
		case ledger[o.number]:
			sum.Add("orders already created by an earlier push (not sent)", 1)
		case o.reject != "":
			res = rejectAll(o.rows, "order "+o.number+" not created: "+o.reject)
			sum.Add("orders rejected before sending", 1)
		default:
			known, seen := retailers[o.retailer]
			if !seen {
				err := c.client.getJSON(ctx, api.CompanyByCode, []string{o.retailer}, &json.RawMessage{})
				var apiErr *APIError
				switch {
				case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
				case err != nil:
					return sum, err
				default:
					known = true
				}
				retailers[o.retailer] = known
			}
			if !known {
				res = rejectAll(o.rows, fmt.Sprintf("order %s not created: no company with retailer_code %s in NuOrder", o.number, o.retailer))
				sum.Add("orders rejected before sending", 1)
				break
			}
			exists, err := c.orderExists(ctx, o.number)
			if err != nil {
				return sum, err
			}
			switch {
			case exists:
				ledger[o.number] = true
				sum.Add("orders already in NuOrder (not created)", 1)
			case req.DryRun:
				sum.Add("orders to create", 1)
			default:
				already, err := c.client.create(ctx, api.OrderCreate, nil, o.document(), func(ctx context.Context) (bool, error) {
					return c.orderExists(ctx, o.number)
				})
				var apiErr *APIError
				switch {
				case err == nil && already:
					ledger[o.number] = true // our own earlier attempt, whose answer was lost
					sum.Add("orders created", 1)
				case errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict:
					ledger[o.number] = true // created meanwhile (by another host)
					sum.Add("orders already in NuOrder (not created)", 1)
				case errors.As(err, &apiErr) && apiErr.RowLevel():
					res = rejectAll(o.rows, "order "+o.number+" not created: "+apiErr.Error())
					sum.Add("orders NuOrder refused", 1)
				case err != nil:
					return sum, err
				default:
					ledger[o.number] = true
					sum.Add("orders created", 1)
				}
				if err := commitJSONLedger(req, ledger); err != nil {
					return sum, err
				}
			}
		}
		if err := results(res); err != nil {
			return sum, err
		}
	}
	return sum, keepJSONLedger(req, &sum, ledger)
}

// check says what a row lacks, or that it disagrees with the order's first
// row on the order's own fields.
func (o *newOrder) check(r row) string {
	var missing []string
	for _, f := range []struct{ name, v string }{{"external_id", o.externalID}, {"currency_code", o.currency},
		{"retailer_code", o.retailer}, {"buyer_email", o.buyer}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if o.start.IsZero() {
		missing = append(missing, "ship_start")
	}
	if o.end.IsZero() {
		missing = append(missing, "ship_end")
	}
	if len(missing) > 0 {
		return "missing " + strings.Join(missing, ", ")
	}
	if o.end.Before(o.start) {
		return "ship_end is before ship_start"
	}
	for _, f := range []struct{ name, want string }{{"external_id", o.externalID}, {"currency_code", o.currency},
		{"retailer_code", o.retailer}, {"buyer_email", o.buyer}} {
		got := r.str(f.name)
		if f.name == "currency_code" {
			got = strings.ToUpper(got)
		}
		if got != f.want {
			return fmt.Sprintf("%s %q differs from the order's first row (%q)", f.name, got, f.want)
		}
	}
	return ""
}

// document is the body of PUT /api/order/new.
func (o *newOrder) document() map[string]any {
	lines := make([]any, 0, len(o.lineOrder))
	for _, id := range o.lineOrder {
		l := o.lines[id]
		sizes := make([]any, len(l.sizes))
		for i, s := range l.sizes {
			sizes[i] = s
		}
		lines = append(lines, map[string]any{"product": map[string]any{"_id": l.productID}, "sizes": sizes})
	}
	doc := map[string]any{
		"order_number": o.number, "external_id": o.externalID, "currency_code": o.currency,
		"ship_start": o.start.Format("2006-01-02T15:04:05.000Z"), "ship_end": o.end.Format("2006-01-02T15:04:05.000Z"),
		"retailer":   map[string]any{"retailer_code": o.retailer, "buyer_email": o.buyer},
		"line_items": lines,
	}
	if o.po != "" {
		doc["customer_po_number"] = o.po
	}
	if o.notes != "" {
		doc["notes"] = o.notes
	}
	return doc
}

// orderExists reads an order by number: true when NuOrder has it.
func (c *Connector) orderExists(ctx context.Context, number string) (bool, error) {
	err := c.getOrder(ctx, "", number, &json.RawMessage{})
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

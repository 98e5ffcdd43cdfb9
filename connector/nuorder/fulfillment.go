package nuorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
)

// shipmentDraft is one shipment built from input rows: the rows with the
// same order and tracking number.
type shipmentDraft struct {
	tracking []string
	carrier  string
	date     time.Time
	lines    map[string]float64 // upc -> quantity shipped
	rows     []int64
}

// orderDraft collects the shipments of one order.
type orderDraft struct {
	id        string
	number    string
	doc       map[string]any // the order as read before any change
	shipments []*shipmentDraft
	byKey     map[string]*shipmentDraft
	// byNumber: the input named the order by number only, so its status
	// moves through the by-number route production uses (§13.5).
	byNumber bool
}

// trackingKey normalises tracking numbers ("1Z9, 1Z8" and "1Z8 1Z9" are the
// same shipment).
func trackingKey(v string) (string, []string) {
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '|' })
	sort.Strings(fields)
	return strings.Join(fields, ","), fields
}

// writeFulfillment records shipments on orders and moves the orders to
// shipped. It reads each order first: a shipment whose tracking numbers the
// order already carries is not added again, so running the same input twice
// leaves each shipment once; the update sends the order's whole shipments
// array, so a retried request cannot add one twice either.
// recordShipments is the fulfillment stream's option.
var recordShipments = connector.Option{Name: "record_shipments", Kind: connector.OptionBool, Default: "true",
	Description: "record each shipment on its order (true), or only move the orders to shipped (false)"}

func (c *Connector) writeFulfillment(ctx context.Context, req connector.WriteRequest, in connector.RecordIterator, results connector.ResultFunc) (connector.WriteSummary, error) {
	var sum connector.WriteSummary
	if err := connector.CheckOptions("fulfillment", []connector.Option{recordShipments}, req.Options); err != nil {
		return sum, err
	}
	if v, ok := req.Options["record_shipments"]; ok {
		record, err := strconv.ParseBool(v)
		if err != nil {
			return sum, fmt.Errorf("stream fulfillment: option record_shipments = %q is not true or false", v)
		}
		if !record {
			return c.markShipped(ctx, req, in, results)
		}
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	orders := map[string]*orderDraft{}   // by _id
	byNumber := map[string]*orderDraft{} // by order number, including unknown ones (nil)
	var order []string

	lookup := func(id, number string) (*orderDraft, error) {
		if id != "" {
			if d, ok := orders[id]; ok {
				if d == nil {
					return nil, rowError{"unknown order " + id}
				}
				return d, nil
			}
		} else if d, ok := byNumber[number]; ok {
			if d == nil {
				return nil, rowError{"unknown order number " + number}
			}
			return d, nil
		}
		var doc map[string]any
		var err error
		if id != "" {
			err = c.client.getJSON(ctx, api.OrderByID, []string{id}, &doc)
		} else {
			err = c.client.getJSON(ctx, api.OrderByNumber, []string{number}, &doc)
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
			if id != "" {
				orders[id] = nil
				return nil, rowError{"unknown order " + id}
			}
			byNumber[number] = nil
			return nil, rowError{"unknown order number " + number}
		}
		if err != nil {
			return nil, err
		}
		d := &orderDraft{doc: doc, byKey: map[string]*shipmentDraft{}, byNumber: id == ""}
		d.id, _ = doc["_id"].(string)
		d.number, _ = doc["order_number"].(string)
		if prev, ok := orders[d.id]; ok && prev != nil {
			d = prev
		} else {
			orders[d.id] = d
			order = append(order, d.id)
		}
		if d.number != "" {
			byNumber[d.number] = d
		}
		return d, nil
	}

	err := eachInputRow("fulfillment", FulfillmentSchema, in, results, func(r row, n int64) (string, error) {
		id, number := r.str("order_id"), r.str("order_number")
		if id == "" && number == "" {
			return "no order: give order_id or order_number", nil
		}
		if id != "" {
			if d, seen := orders[id]; seen && d == nil {
				return fmt.Sprintf("unknown order %s", id), nil
			}
		}
		key, tracking := trackingKey(r.str("tracking_number"))
		if key == "" {
			return "tracking_number is missing", nil
		}
		d, err := lookup(id, number)
		if err != nil {
			var apiErr *APIError
			if errors.Is(err, errRowInvalid) || errors.As(err, &apiErr) && apiErr.RowLevel() {
				return err.Error(), nil
			}
			return "", err
		}
		upc := r.str("upc")
		qty, hasQty := r.num("quantity")
		if upc != "" {
			if !orderHasUPC(d.doc, upc) {
				return fmt.Sprintf("UPC %s is not on order %s", upc, d.number), nil
			}
			if !hasQty || qty <= 0 {
				return fmt.Sprintf("quantity must be positive for shipped UPC %s", upc), nil
			}
		}
		s, ok := d.byKey[key]
		if !ok {
			s = &shipmentDraft{tracking: tracking, carrier: r.str("carrier"), date: today, lines: map[string]float64{}}
			if dt, ok := r.date("shipped_date"); ok {
				s.date = dt
			}
			d.byKey[key] = s
			d.shipments = append(d.shipments, s)
		}
		if upc != "" {
			s.lines[upc] += qty
		}
		s.rows = append(s.rows, n)
		return "", nil
	})
	if err != nil {
		return sum, err
	}

	for _, id := range order {
		d := orders[id]
		existing, _ := d.doc["shipments"].([]any)
		have := map[string]bool{}
		for _, e := range existing {
			if m, ok := e.(map[string]any); ok {
				var nums []string
				if tn, ok := m["tracking_numbers"].([]any); ok {
					for _, t := range tn {
						if s, ok := t.(string); ok {
							nums = append(nums, s)
						}
					}
				}
				k, _ := trackingKey(strings.Join(nums, ","))
				have[k] = true
			}
		}
		all := append([]any(nil), existing...)
		var added []*shipmentDraft
		var rows []int64
		for _, s := range d.shipments {
			k, _ := trackingKey(strings.Join(s.tracking, ","))
			rows = append(rows, s.rows...)
			if have[k] {
				sum.Add("shipments already on the order (not added again)", 1)
				continue
			}
			all = append(all, shipmentDoc(d.doc, s))
			added = append(added, s)
		}
		status, _ := d.doc["status"].(string)
		res := accepted(rows)
		if len(added) > 0 && !req.DryRun {
			err := c.client.send(ctx, api.OrderUpdate, []string{d.id}, map[string]any{"shipments": all}, nil)
			if err == nil && status != "shipped" {
				_, err = c.setShipped(ctx, d.id, d.number, d.byNumber)
			}
			var apiErr *APIError
			if errors.As(err, &apiErr) && apiErr.RowLevel() {
				res = rejectAll(rows, apiErr.Error())
				added = nil
			} else if err != nil {
				return sum, err
			}
		}
		if len(added) > 0 {
			sum.Add("shipments recorded", int64(len(added)))
			if status != "shipped" {
				sum.Add("orders marked shipped", 1)
			}
		}
		if err := results(res); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// setShipped moves an order to shipped: by number with the route
// production uses (PUT /api/order/number/{n}/shipped, no body, §13.5) when
// byNumber, else by id. It reports whether the order changed (false for
// NuOrder's 304: it was shipped already).
func (c *Connector) setShipped(ctx context.Context, id, number string, byNumber bool) (bool, error) {
	e, params := api.OrderSetStatus, []string{id, "shipped"}
	if byNumber {
		e, params = api.OrderSetStatusByNumber, []string{number, "shipped"}
	}
	status, err := c.client.sendStatus(ctx, e, params, nil, nil)
	return status != http.StatusNotModified, err
}

// markShipped is the fulfillment stream with record_shipments = false: each
// order the input names moves to shipped, and nothing else is sent (no read,
// no shipments update, the one assumed route of this stream). Rows of an
// order NuOrder refuses (404 for an unknown number) are rejected with its
// answer.
func (c *Connector) markShipped(ctx context.Context, req connector.WriteRequest, in connector.RecordIterator, results connector.ResultFunc) (connector.WriteSummary, error) {
	var sum connector.WriteSummary
	type target struct {
		id, number string
		rows       []int64
	}
	var targets []*target
	byKey := map[string]*target{}
	err := eachInputRow("fulfillment", FulfillmentSchema, in, results, func(r row, n int64) (string, error) {
		id, number := r.str("order_id"), r.str("order_number")
		key := "id:" + id
		if id == "" {
			key = "number:" + number
		}
		if id == "" && number == "" {
			return "no order: give order_id or order_number", nil
		}
		t, ok := byKey[key]
		if !ok {
			t = &target{id: id, number: number}
			byKey[key] = t
			targets = append(targets, t)
		}
		t.rows = append(t.rows, n)
		return "", nil
	})
	if err != nil {
		return sum, err
	}
	for _, t := range targets {
		res := accepted(t.rows)
		switch {
		case req.DryRun:
			sum.Add("orders to mark shipped", 1)
		default:
			changed, err := c.setShipped(ctx, t.id, t.number, t.id == "")
			var apiErr *APIError
			switch {
			case errors.As(err, &apiErr) && apiErr.RowLevel():
				res = rejectAll(t.rows, apiErr.Error())
				sum.Add("orders NuOrder refused to mark shipped", 1)
			case err != nil:
				return sum, err
			case changed:
				sum.Add("orders marked shipped", 1)
			default:
				sum.Add("orders already shipped (not changed)", 1)
			}
		}
		if err := results(res); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// orderHasUPC says whether an order has a size line with this UPC.
func orderHasUPC(doc map[string]any, upc string) bool {
	lines, _ := doc["line_items"].([]any)
	for _, l := range lines {
		lm, _ := l.(map[string]any)
		sizes, _ := lm["sizes"].([]any)
		for _, s := range sizes {
			if sm, _ := s.(map[string]any); sm != nil && fmt.Sprint(sm["upc"]) == upc {
				return true
			}
		}
	}
	return false
}

// shipmentDoc builds a shipment in the shape orders carry (S5, S9): type,
// tracking numbers, status, date and the shipped lines in the order line
// shape (product fields with sizes).
func shipmentDoc(order map[string]any, s *shipmentDraft) map[string]any {
	kind := "full"
	var lines []map[string]any
	if len(s.lines) > 0 {
		kind = "partial"
		items, _ := order["line_items"].([]any)
		for _, l := range items {
			lm, _ := l.(map[string]any)
			prod, _ := lm["product"].(map[string]any)
			var sizes []map[string]any
			sz, _ := lm["sizes"].([]any)
			for _, x := range sz {
				sm, _ := x.(map[string]any)
				upc := fmt.Sprint(sm["upc"])
				if q, ok := s.lines[upc]; ok {
					sizes = append(sizes, map[string]any{"size": sm["size"], "upc": upc, "quantity": q})
				}
			}
			if len(sizes) > 0 {
				lines = append(lines, map[string]any{"brand_id": prod["brand_id"], "season": prod["season"],
					"style_number": prod["style_number"], "color": prod["color"], "sizes": sizes})
			}
		}
	}
	doc := map[string]any{"type": kind, "tracking_numbers": s.tracking, "status": "shipped",
		"shipment_date": s.date.Format("2006-01-02T15:04:05.000Z"), "line_items": lines}
	if s.carrier != "" {
		doc["carrier"] = s.carrier
	}
	if lines == nil {
		doc["line_items"] = []any{}
	}
	return doc
}

// jsonEqual compares two JSON-able values.
func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

package nuorder

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
)

// OrderStatusSchema is the schema of the order_status sink stream: one row
// per order to move, named by its _id or its number, and the status it must
// have.
var OrderStatusSchema = arrow.NewSchema([]arrow.Field{
	nullable("order_id", str),
	nullable("order_number", str),
	{Name: "status", Type: str},
}, nil)

// orderStatuses are the statuses an order can be moved to: those NuOrder's
// status routes are recorded with (shared/nuorder-api.md §7.3, §13.4-13.5).
// "pending" and "review" move an order back for editing (the honest form of
// "pause"); "cancelled" is how an order is removed, and it is final: NuOrder
// locks cancelled orders (§7.1).
var orderStatuses = []string{"approved", "cancelled", "draft", "pending", "processed", "review", "shipped"}

// statusLedger remembers, across pushes, the status each order was last
// moved to by this pipeline (key "id:..." or "number:..."): a row asking for
// the status the ledger holds is skipped without a request. Before each
// request the entry reads "sending:STATUS" (committed through
// WriteRequest.Commit, so the host has stored it), and after it STATUS: a
// push killed midway leaves the one request in flight marked, and its
// re-run reads that order back instead of sending blind (see
// interruptedSend).
type statusLedger map[string]string

// sendingPrefix marks a ledger entry whose request was in flight.
const sendingPrefix = "sending:"

// writeOrderStatus moves orders to statuses. By number it uses the route
// production integrations use (PUT /api/order/number/{n}/{status}, §13.5),
// by id POST /api/order/{id}/{status}. NuOrder's 304 (already in that
// status) is a no-op; 404 rejects the row (no such order); 409 rejects it as
// locked (a cancelled order; the status code is our guess, §7.1). A dry run
// reads each order instead and says what a write would do.
func (c *Connector) writeOrderStatus(ctx context.Context, req connector.WriteRequest, in connector.RecordIterator, results connector.ResultFunc) (connector.WriteSummary, error) {
	var sum connector.WriteSummary
	if err := connector.CheckOptions("order_status", nil, req.Options); err != nil {
		return sum, err
	}
	ledger := statusLedger{}
	if err := readJSONLedger("order_status", req.Ledger, &ledger); err != nil {
		return sum, err
	}
	type target struct {
		key, id, number, status string
		rows                    []int64
		// statuses lists every status the input asks for the order, when
		// more than one: then none is sent.
		statuses []string
	}
	var targets []*target
	byKey := map[string]*target{}
	err := eachInputRow("order_status", OrderStatusSchema, in, results, func(r row, n int64) (string, error) {
		id, number := r.str("order_id"), r.str("order_number")
		status := strings.ToLower(strings.TrimSpace(r.str("status")))
		if id == "" && number == "" {
			return "no order: give order_id or order_number", nil
		}
		if i := sort.SearchStrings(orderStatuses, status); i == len(orderStatuses) || orderStatuses[i] != status {
			return fmt.Sprintf("status %q is not one of %s", r.str("status"), strings.Join(orderStatuses, ", ")), nil
		}
		key := "id:" + id
		if id == "" {
			key = "number:" + number
		}
		t, ok := byKey[key]
		switch {
		case !ok:
			t = &target{key: key, id: id, number: number, status: status}
			byKey[key] = t
			targets = append(targets, t)
		case t.status != status && !slices.Contains(t.statuses, status):
			if len(t.statuses) == 0 {
				t.statuses = []string{t.status}
			}
			t.statuses = append(t.statuses, status)
		}
		t.rows = append(t.rows, n)
		return "", nil
	})
	if err != nil {
		return sum, err
	}
	// An order given by _id in some rows and by number in others is one
	// order: numbers are read back to their _id (only when the input mixes
	// both), so that its rows are weighed together.
	if hasID, hasNumber := slices.ContainsFunc(targets, func(t *target) bool { return t.id != "" }), slices.ContainsFunc(targets, func(t *target) bool { return t.id == "" }); hasID && hasNumber {
		var merged []*target
		for _, t := range targets {
			if t.id == "" {
				var doc struct {
					ID flexString `json:"_id"`
				}
				err := c.getOrder(ctx, "", t.number, &doc)
				var apiErr *APIError
				switch {
				case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
				case err != nil:
					return sum, err
				default:
					if into, ok := byKey["id:"+doc.ID.v]; ok {
						into.rows = append(into.rows, t.rows...)
						for _, st := range append([]string{t.status}, t.statuses...) {
							if st != into.status && !slices.Contains(into.statuses, st) {
								if len(into.statuses) == 0 {
									into.statuses = []string{into.status}
								}
								into.statuses = append(into.statuses, st)
							}
						}
						continue
					}
				}
			}
			merged = append(merged, t)
		}
		targets = merged
	}
	for _, t := range targets {
		res := accepted(t.rows)
		name := t.number
		if t.id != "" {
			name = t.id
		}
		if was, ok := strings.CutPrefix(ledger[t.key], sendingPrefix); ok && !req.DryRun && len(t.statuses) <= 1 {
			// An earlier push was killed while sending this order a status.
			skip, res2, err := c.interruptedSend(ctx, t.id, t.number, name, was, t.status, t.rows)
			if err != nil {
				return sum, err
			}
			if skip {
				if res2 == nil {
					ledger[t.key] = t.status
					sum.Add("orders already moved to "+t.status+" by an interrupted push (not sent)", 1)
				} else {
					delete(ledger, t.key)
					res = res2
					sum.Add("orders changed in NuOrder since an interrupted push (not sent)", 1)
				}
				if err := results(res); err != nil {
					return sum, err
				}
				continue
			}
		}
		switch {
		case len(t.statuses) > 1:
			res = rejectAll(t.rows, fmt.Sprintf("order %s is asked for statuses %s in the same input: none is sent (give each order one status)", name, strings.Join(t.statuses, " and ")))
			sum.Add("orders with conflicting statuses (none sent)", 1)
		case ledger[t.key] == t.status:
			sum.Add("orders already moved to "+t.status+" by an earlier push (not sent)", 1)
		case req.DryRun:
			current, err := c.currentStatus(ctx, t.id, t.number)
			var apiErr *APIError
			switch {
			case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
				res = rejectAll(t.rows, "no order "+name+" in NuOrder")
			case err != nil:
				return sum, err
			case current == t.status:
				sum.Add("orders already "+t.status, 1)
			case current == "cancelled":
				res = rejectAll(t.rows, lockedReason(name, t.status))
			default:
				sum.Add("orders to move to "+t.status, 1)
			}
		default:
			e, params := api.OrderSetStatus, []string{t.id, t.status}
			if t.id == "" {
				e, params = api.OrderSetStatusByNumber, []string{t.number, t.status}
			}
			// Marked as in flight, and stored, before it is sent.
			ledger[t.key] = sendingPrefix + t.status
			if err := commitJSONLedger(req, ledger); err != nil {
				return sum, err
			}
			code, err := c.client.sendStatus(ctx, e, params, nil, nil)
			var apiErr *APIError
			switch {
			case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
				delete(ledger, t.key)
				res = rejectAll(t.rows, "no order "+name+" in NuOrder")
			case errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict:
				delete(ledger, t.key)
				res = rejectAll(t.rows, lockedReason(name, t.status))
			case errors.As(err, &apiErr) && apiErr.RowLevel():
				delete(ledger, t.key)
				res = rejectAll(t.rows, apiErr.Error())
			case err != nil:
				return sum, err // the mark stays: the request may have been carried out
			case code == http.StatusNotModified:
				ledger[t.key] = t.status
				sum.Add("orders already "+t.status, 1)
			default:
				ledger[t.key] = t.status
				sum.Add("orders moved to "+t.status, 1)
			}
			if err := commitJSONLedger(req, ledger); err != nil {
				return sum, err
			}
		}
		if err := results(res); err != nil {
			return sum, err
		}
	}
	return sum, keepJSONLedger(req, &sum, ledger)
}

// interruptedSend settles an order whose status request (was) an earlier
// push had in flight when it was killed, now asked for want: it reads the
// order back. When NuOrder shows want, nothing is sent (skip, res nil).
// When the interrupted request was for want and NuOrder shows something
// else, the request never landed, or someone moved the order since: which
// one cannot be told, and a stale re-send would undo a change made in
// NuOrder meanwhile, so the rows are rejected saying so (skip, res); run
// again with --full-refresh to send it anyway. An order the file now asks
// another status for is a new instruction (not skipped).
func (c *Connector) interruptedSend(ctx context.Context, id, number, name, was, want string, rows []int64) (bool, []connector.RowResult, error) {
	current, err := c.currentStatus(ctx, id, number)
	var apiErr *APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
		return false, nil, nil // sent as usual: answered "no order"
	case err != nil:
		return false, nil, err
	case current == want:
		return true, nil, nil
	case was == want:
		return true, rejectAll(rows, fmt.Sprintf("a push was killed while moving order %s to %s, and NuOrder now shows %s: not sent again, in case %s was set since (run with --full-refresh to send it anyway)",
			name, want, current, current)), nil
	}
	return false, nil, nil
}

// lockedReason says why a cancelled order cannot move.
func lockedReason(order, status string) string {
	return fmt.Sprintf("order %s is cancelled, and NuOrder locks cancelled orders: it cannot move to %s", order, status)
}

// getOrder reads an order by id, or else by number, into v.
func (c *Connector) getOrder(ctx context.Context, id, number string, v any) error {
	e, params := api.OrderByID, []string{id}
	if id == "" {
		e, params = api.OrderByNumber, []string{number}
	}
	return c.client.getJSON(ctx, e, params, v)
}

// currentStatus reads an order's status, by id or else by number.
func (c *Connector) currentStatus(ctx context.Context, id, number string) (string, error) {
	var doc struct {
		Status flexString `json:"status"`
	}
	if err := c.getOrder(ctx, id, number, &doc); err != nil {
		return "", err
	}
	return strings.ToLower(doc.Status.v), nil
}

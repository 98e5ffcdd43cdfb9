package nuorder

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"pipehost/connector"
)

// listedIDBytes is about what one id costs in an id listing: 24 hex
// digits, quotes and a comma.
const listedIDBytes = 27

var _ connector.Estimator = (*Connector)(nil)

// Estimate implements connector.Estimator: what the next read costs, from
// the checkpoint of its first stream (what the last run knew: the catalog,
// the status listings' membership, the average document size) and the
// options. What no checkpoint can know (products added since, orders
// moved) is said in Parts, a request each.
func (c *Connector) Estimate(ctx context.Context, req connector.ReadRequest) (connector.Estimate, error) {
	var e connector.Estimate
	if c.client == nil {
		return e, connector.ErrNotConfigured
	}
	streams, _ := c.Streams(ctx)
	st, err := connector.CheckRead(streams, req)
	if err != nil {
		return e, err
	}
	raw := req.Streams[0].Checkpoint
	var cp checkpoint
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &cp); err != nil {
			return e, fmt.Errorf("unreadable checkpoint: %w", err)
		}
	}
	part := func(format string, a ...any) { e.Parts = append(e.Parts, fmt.Sprintf(format, a...)) }
	now := c.clock()
	switch st.Name {
	case "products":
		listings := int64(len(c.productListings()))
		e.Requests = listings
		part("%d listing(s) of product ids", listings)
		if cp.Known == "" {
			part("then 1 request per product: the first read (or one from a checkpoint without the catalog) reads them all")
			return e, nil
		}
		known, err := decodeCatalog(cp.Known)
		if err != nil {
			return e, err
		}
		listed := make(map[string]bool, len(known))
		for id := range known {
			listed[id] = true
		}
		w, err := openWindow(raw, now, c.lag())
		if err != nil {
			return e, err
		}
		since := w.since
		if t, err := time.Parse(time.RFC3339Nano, cp.Ran); err == nil {
			since = t
		}
		due := int64(len(toRefresh(known, listed, now, since, refreshOf(req.Options))))
		e.Requests += due
		e.Bytes = int64(len(known))*listedIDBytes + due*cp.AvgDoc
		part("%d of %d known products due for their refresh (refresh_hours %s)", due, len(known), optionOr(req.Options, "refresh_hours", "24"))
		part("plus 1 request per product added since the last run")
	case "locations":
		fromProducts := len(c.cfg.Warehouses) == 0
		if v, ok := req.Options["from_products"]; ok {
			fromProducts, _ = strconv.ParseBool(v)
		}
		if !fromProducts {
			part("no request: the warehouses come from the config")
			return e, nil
		}
		e.Requests = int64(len(c.productListings()))
		part("%d listing(s) of product ids, then 1 request per product (from_products)", e.Requests)
	case "companies":
		e.Requests = 1
		part("1 listing of company codes, then 1 request per company")
	default: // the orders streams
		f, err := parseOrderOptions(st.Name, req.Options)
		if err != nil {
			return e, err
		}
		var known int64
		membership := cp.Listed != nil
		var arc lap
		if f.ids && membership && len(raw) > 0 {
			w, err := openWindow(raw, now, c.lag())
			if err != nil {
				return e, err
			}
			arc = openRolling(cp, w, now, f.refresh).arc
		}
		for _, status := range f.statuses {
			text, ok := cp.Listed[status]
			if !ok {
				membership = false
				continue
			}
			s, err := decodeIDSet(text)
			if err != nil {
				return e, fmt.Errorf("checkpoint: orders listed as %s: %w", status, err)
			}
			known += int64(s.len())
			if f.ids && membership && len(raw) > 0 {
				s.each(func(id string) {
					if arc.holds(idPosition(id)) {
						e.Requests++
						e.Bytes += cp.AvgDoc
					}
				})
			}
		}
		// An interrupted run resumes after the listings it committed.
		statuses := int64(len(f.statuses) - min(cp.Part, len(f.statuses)))
		if f.ids && membership && len(raw) > 0 {
			due := e.Requests
			e.Requests += statuses
			e.Bytes += known * listedIDBytes
			part("%d listing(s) of order ids (read = \"ids\", about %d orders known)", statuses, known)
			part("%d orders due in the rolling re-read (refresh_hours %s)", due, optionOr(req.Options, "refresh_hours", "24"))
			part("plus 1 request per order new to a status or gone from the statuses read")
			return e, nil
		}
		e.Requests = statuses
		e.Bytes = known * cp.AvgDoc
		if known > 0 {
			part("%d listing(s) of whole orders (about %d orders known)", statuses, known)
		} else {
			part("%d listing(s) of whole orders (the first read: their size is not known yet)", statuses)
		}
		part("plus 1 request per order gone from the statuses read")
	}
	return e, nil
}

// optionOr is an option's value, or def when unset.
func optionOr(options map[string]string, name, def string) string {
	if v := strings.TrimSpace(options[name]); v != "" {
		return v
	}
	return def
}

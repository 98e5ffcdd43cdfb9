package nuorder

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
)

// errNoWarehouses fails an inventory push that knows no warehouse, rather
// than rejecting every row for the same reason.
var errNoWarehouses = errors.New("no NuOrder warehouse is known: NuOrder has no warehouse listing and the products carry none; " +
	`name the brand's warehouses in the nuorder connector's config: warehouses = [{ id = "<24-hex NuOrder id>", code = "MAIN" }]`)

// skuRef is a SKU (product size) and the product it belongs to.
type skuRef struct {
	productID, skuID string
	size, upc        string // as the product lists them
}

// catalogIndex resolves the ways an ERP names SKUs and warehouses to
// NuOrder ids. It is built from the SKU cache, brought up to date first
// (see skucache.go: read requests only, for the products it lacks or that
// are due).
type catalogIndex struct {
	byUPC       map[string]skuRef
	byBrandSize map[string]skuRef
	bySKU       map[string]skuRef
	whByID      map[string]string // id -> code
	whByCode    map[string]string // lower-case code -> id
}

func (c *Connector) buildIndex(ctx context.Context) (*catalogIndex, error) {
	ix := &catalogIndex{byUPC: map[string]skuRef{}, byBrandSize: map[string]skuRef{}, bySKU: map[string]skuRef{},
		whByID: map[string]string{}, whByCode: map[string]string{}}
	for _, w := range c.cfg.Warehouses {
		id := strings.ToLower(w.ID)
		ix.whByID[id] = ""
		if w.Name != nil && *w.Name != "" {
			ix.whByCode[strings.ToLower(*w.Name)] = id
		}
		if w.Code != nil && *w.Code != "" {
			ix.whByID[id] = *w.Code
			ix.whByCode[strings.ToLower(*w.Code)] = id // a code wins over a name
		}
	}
	products, err := c.refreshSKUCache(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range products {
		for _, s := range p.Sizes {
			ref := skuRef{productID: p.ID, skuID: s[0], size: s[1], upc: s[2]}
			ix.bySKU[s[0]] = ref
			if s[2] != "" && s[2] != "N/A" {
				ix.byUPC[s[2]] = ref
			}
			if p.Brand != "" {
				ix.byBrandSize[lowerBrandSize(p.Brand, s[1])] = ref
			}
		}
		for _, w := range p.Warehouses {
			k, code := w[0], w[1]
			if _, named := ix.whByID[k]; !named || ix.whByID[k] == "" {
				ix.whByID[k] = code
			}
			if code != "" {
				if _, taken := ix.whByCode[strings.ToLower(code)]; !taken {
					ix.whByCode[strings.ToLower(code)] = k
				}
			}
		}
	}
	return ix, nil
}

// warehouse resolves a warehouse id, code or name to its id.
func (ix *catalogIndex) warehouse(v string) (string, bool) {
	if _, ok := ix.whByID[strings.ToLower(v)]; ok {
		return strings.ToLower(v), true
	}
	id, ok := ix.whByCode[strings.ToLower(strings.TrimSpace(v))]
	return id, ok
}

func (ix *catalogIndex) warehouseCodes() string {
	var codes []string
	for id, c := range ix.whByID {
		if c == "" {
			c = id
		}
		codes = append(codes, c)
	}
	sort.Strings(codes)
	return strings.Join(codes, ", ")
}

// sku resolves a row's SKU; the error says which identifier was unknown.
func (ix *catalogIndex) sku(r row) (skuRef, error) {
	if v := r.str("sku_id"); v != "" {
		if ref, ok := ix.bySKU[v]; ok {
			return ref, nil
		}
		return skuRef{}, fmt.Errorf("unknown SKU: sku_id %s", v)
	}
	if v := r.str("upc"); v != "" {
		if ref, ok := ix.byUPC[v]; ok {
			return ref, nil
		}
		return skuRef{}, fmt.Errorf("unknown SKU: upc %s", v)
	}
	brand, size := r.str("brand_id"), r.str("size")
	if brand != "" && size != "" {
		if ref, ok := ix.byBrandSize[strings.ToLower(brand)+"\x00"+size]; ok {
			return ref, nil
		}
		return skuRef{}, fmt.Errorf("unknown SKU: brand_id %s size %s", brand, size)
	}
	return skuRef{}, errors.New("no SKU: give sku_id, upc, or brand_id and size")
}

// replenishment is one consolidated replenishment and the input rows it
// came from.
type replenishment struct {
	ref      skuRef
	kind     string // immediate, future, prebook
	date     time.Time
	quantity float64
	rows     []int64
}

// The display names NuOrder's production integration sends (S7).
var kindNames = map[string]string{"immediate": "immediate", "future": "future", "prebook": "Prebook"}

// replenishmentBatch is how many replenishments go into one bulk request.
// All replenishments of a SKU travel in the same request, since a request
// replaces the SKU's set.
const replenishmentBatch = 500

// writeInventory consolidates stock rows by warehouse, SKU and date, pushes
// them with one bulk replenishment request per warehouse and batch, then
// refreshes the inventory flags of the products touched, in batches.
// maxQuantity is the largest quantity sent: 2^53-1, the largest whole
// number a JavaScript service (NuOrder answers as Express) holds exactly;
// 1e18 would arrive as another number.
const maxQuantity = 1<<53 - 1

// inventoryReplace is the inventory stream's option.
var inventoryReplace = connector.Option{Name: "replace", Kind: connector.OptionBool, Default: "true",
	Description: "a pushed SKU's replenishments replace what NuOrder held for it in that warehouse (true), or are added (false)"}

func (c *Connector) writeInventory(ctx context.Context, req connector.WriteRequest, in connector.RecordIterator, results connector.ResultFunc) (connector.WriteSummary, error) {
	var sum connector.WriteSummary
	if err := connector.CheckOptions("inventory", []connector.Option{inventoryReplace}, req.Options); err != nil {
		return sum, err
	}
	replace := true
	if v, ok := req.Options["replace"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return sum, fmt.Errorf("stream inventory: option replace = %q is not true or false", v)
		}
		replace = b
	}
	ix, err := c.buildIndex(ctx)
	if err != nil {
		return sum, err
	}
	if len(ix.whByID) == 0 {
		return sum, errNoWarehouses
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	// warehouse id -> key -> replenishment
	byWarehouse := map[string]map[string]*replenishment{}
	err = eachInputRow("inventory", InventorySchema, in, results, func(r row, n int64) (string, error) {
		ref, err := ix.sku(r)
		if err != nil {
			return err.Error(), nil
		}
		whv := r.str("warehouse")
		if whv == "" {
			return "warehouse is missing", nil
		}
		wh, ok := ix.warehouse(whv)
		if !ok {
			return fmt.Sprintf("unknown warehouse %s (known: %s); add it to the nuorder connector's warehouses config attribute",
				whv, ix.warehouseCodes()), nil
		}
		prebook, _ := r.flag("prebook")
		qty, hasQty := r.num("quantity")
		rp := replenishment{ref: ref}
		switch {
		case prebook:
			rp.kind = "prebook" // prebook rows carry no quantity
		case !hasQty:
			return "quantity is missing", nil
		case math.IsNaN(qty):
			return "quantity is not a number (NaN)", nil
		case math.IsInf(qty, 0):
			return fmt.Sprintf("quantity is infinite (%v)", qty), nil
		case qty < 0:
			return fmt.Sprintf("negative quantity %v", qty), nil
		case qty > maxQuantity:
			return fmt.Sprintf("quantity %v is too large: NuOrder (a JavaScript service) holds whole numbers exactly up to %d", qty, int64(maxQuantity)), nil
		default:
			rp.quantity = qty
			rp.kind, rp.date = "immediate", today
			if d, ok := r.date("date"); ok && d.After(today) {
				rp.kind, rp.date = "future", d
			}
		}
		key := ref.skuID + "\x00" + rp.kind + "\x00" + rp.date.Format("2006-01-02")
		m := byWarehouse[wh]
		if m == nil {
			m = map[string]*replenishment{}
			byWarehouse[wh] = m
		}
		if have, ok := m[key]; ok {
			have.quantity += rp.quantity
			have.rows = append(have.rows, n)
		} else {
			rp.rows = []int64{n}
			m[key] = &rp
		}
		return "", nil
	})
	if err != nil {
		return sum, err
	}

	// Quantities that add up beyond what NuOrder holds exactly cannot be sent.
	for _, m := range byWarehouse {
		for key, rp := range m {
			if math.IsInf(rp.quantity, 0) || rp.quantity > maxQuantity {
				if err := results(rejectAll(rp.rows, "quantities of this SKU, warehouse and date add up to a number too large to send")); err != nil {
					return sum, err
				}
				delete(m, key)
			}
		}
	}
	ledger, err := decodeInventoryLedger(req.Ledger)
	if err != nil {
		return sum, err
	}
	tried, sent, digests := map[string]map[string]bool{}, map[string]map[string][8]byte{}, map[string]map[string][8]byte{}
	touched := map[string]bool{}
	for _, id := range ledger.pendingFlags() {
		touched[id] = true // sent by a push killed before it refreshed them
	}
	warehouses := make([]string, 0, len(byWarehouse))
	for wh := range byWarehouse {
		warehouses = append(warehouses, wh)
		tried[wh], sent[wh], digests[wh] = map[string]bool{}, map[string][8]byte{}, map[string][8]byte{}
		bySKU := map[string][]*replenishment{}
		for _, rp := range byWarehouse[wh] {
			bySKU[rp.ref.skuID] = append(bySKU[rp.ref.skuID], rp)
		}
		for sku, items := range bySKU {
			d := skuDigest(items)
			if !ledger.unchanged(wh, sku, d) {
				tried[wh][sku], digests[wh][sku] = true, d
				continue
			}
			// Sent before with these very values: NuOrder has them.
			var rows []int64
			for _, rp := range items {
				rows = append(rows, rp.rows...)
			}
			if err := results(accepted(rows)); err != nil {
				return sum, err
			}
			sum.Add("SKUs unchanged since the last push (not sent)", 1)
		}
		for key, rp := range byWarehouse[wh] {
			if !tried[wh][rp.ref.skuID] {
				delete(byWarehouse[wh], key)
			}
		}
	}
	sort.Strings(warehouses)
	for _, wh := range warehouses {
		code := ix.whByID[wh]
		for _, batch := range batchBySKU(byWarehouse[wh]) {
			var refused []connector.RowResult
			if replace {
				// The bulk PUT upserts: delete each SKU's set first, so
				// replenishments the push no longer names do not stay.
				var err error
				if batch, refused, err = c.deleteReplenishments(ctx, wh, batch, req.DryRun, &sum); err != nil {
					return sum, err
				}
				if err := results(refused); err != nil {
					return sum, err
				}
			}
			if len(batch) == 0 {
				continue
			}
			body := struct {
				Replenishments []map[string]any `json:"replenishments"`
			}{}
			var rows []int64
			for _, rp := range batch {
				item := map[string]any{
					"warehouse_id": wh, "sku_id": rp.ref.skuID, "display_name": kindNames[rp.kind],
					"prebook": rp.kind == "prebook", "active": true, "period_start": rp.date.Format("01/02/2006"),
					"period_end": nil, "quantity": nil,
				}
				if rp.kind == "prebook" {
					item["period_start"] = today.Format("01/02/2006")
				} else {
					item["quantity"] = rp.quantity
				}
				body.Replenishments = append(body.Replenishments, item)
				rows = append(rows, rp.rows...)
				sum.Add(fmt.Sprintf("replenishments to %s (%s)", code, rp.kind), 1)
			}
			var res []connector.RowResult
			if req.DryRun {
				res = accepted(rows)
			} else {
				err := c.client.send(ctx, api.Replenishments, []string{wh}, body, nil)
				var apiErr *APIError
				switch {
				case errors.As(err, &apiErr) && apiErr.RowLevel():
					res = rejectAll(rows, apiErr.Error())
					sum.Add("replenishment requests refused", 1)
				case err != nil:
					return sum, err
				default:
					res = accepted(rows)
					for _, rp := range batch {
						touched[rp.ref.productID] = true
						sent[wh][rp.ref.skuID] = digests[wh][rp.ref.skuID]
					}
				}
				// Stored before the next request: a push killed after it
				// does not send these SKUs again, and refreshes their flags.
				if req.Commit != nil {
					if err := req.Commit(ledger.next(tried, sent, touched)); err != nil {
						return sum, err
					}
				}
			}
			sum.Add("replenishment requests", 1)
			if err := results(res); err != nil {
				return sum, err
			}
		}
	}
	if req.DryRun {
		for _, wh := range warehouses {
			for _, rp := range byWarehouse[wh] {
				touched[rp.ref.productID] = true
			}
		}
	}
	ids := make([]string, 0, len(touched))
	for id := range touched {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for start := 0; start < len(ids); start += replenishmentBatch {
		end := min(start+replenishmentBatch, len(ids))
		if !req.DryRun {
			if err := c.client.send(ctx, api.InventoryFlags, nil, map[string]any{"product_ids": ids[start:end]}, nil); err != nil {
				return sum, fmt.Errorf("replenishments were sent, but refreshing inventory flags failed: %w", err)
			}
		}
		sum.Add("inventory flag refreshes", 1)
		sum.Add("products refreshed", int64(end-start))
	}
	if !req.DryRun {
		sum.Ledger = ledger.next(tried, sent, nil)
	}
	return sum, nil
}

// batchBySKU splits a warehouse's replenishments into request batches of
// at most replenishmentBatch items, never splitting one SKU's items.
func batchBySKU(m map[string]*replenishment) [][]*replenishment {
	bySKU := map[string][]*replenishment{}
	for _, rp := range m {
		bySKU[rp.ref.skuID] = append(bySKU[rp.ref.skuID], rp)
	}
	skus := make([]string, 0, len(bySKU))
	for s := range bySKU {
		skus = append(skus, s)
	}
	sort.Strings(skus)
	var out [][]*replenishment
	var cur []*replenishment
	for _, s := range skus {
		items := bySKU[s]
		sort.Slice(items, func(i, j int) bool {
			return items[i].kind+items[i].date.String() < items[j].kind+items[j].date.String()
		})
		if len(cur) > 0 && len(cur)+len(items) > replenishmentBatch {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, items...)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func accepted(rows []int64) []connector.RowResult {
	out := make([]connector.RowResult, len(rows))
	for i, r := range rows {
		out[i].Row = r
	}
	return out
}

func rejectAll(rows []int64, msg string) []connector.RowResult {
	out := make([]connector.RowResult, len(rows))
	for i, r := range rows {
		out[i] = connector.RowResult{Row: r, Error: msg}
	}
	return out
}

// deleteReplenishments deletes the replenishments every SKU of a batch has
// in warehouse wh, one request per SKU, up to the client's in-flight limit at
// once; a dry run only counts them. It returns the batch without the SKUs
// whose delete NuOrder refused (4xx), and a rejection for each of their rows.
func (c *Connector) deleteReplenishments(ctx context.Context, wh string, batch []*replenishment, dry bool,
	sum *connector.WriteSummary) ([]*replenishment, []connector.RowResult, error) {
	var skus []string
	for _, rp := range batch {
		if len(skus) == 0 || skus[len(skus)-1] != rp.ref.skuID { // batchBySKU keeps a SKU's items together
			skus = append(skus, rp.ref.skuID)
		}
	}
	sum.Add("replenishment deletes", int64(len(skus)))
	if dry {
		return batch, nil, nil
	}
	refusedBy := make([]string, len(skus))
	g, gctx := errgroup.WithContext(ctx)
	for i, sku := range skus {
		g.Go(func() error {
			err := c.client.do(gctx, api.ReplenishmentsDelete, []string{wh, sku}, discard)
			var apiErr *APIError
			if errors.As(err, &apiErr) && apiErr.RowLevel() {
				refusedBy[i] = "deleting the SKU's replenishments before replacing them: " + apiErr.Error()
				return nil
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, fmt.Errorf("deleting replenishments before replacing them: %w", err)
	}
	refused := map[string]string{}
	for i, msg := range refusedBy {
		if msg != "" {
			refused[skus[i]] = msg
		}
	}
	if len(refused) == 0 {
		return batch, nil, nil
	}
	sum.Add("replenishment deletes refused", int64(len(refused)))
	kept := batch[:0:0]
	var res []connector.RowResult
	for _, rp := range batch {
		if msg, ok := refused[rp.ref.skuID]; ok {
			res = append(res, rejectAll(rp.rows, msg)...)
			continue
		}
		kept = append(kept, rp)
	}
	return kept, res, nil
}

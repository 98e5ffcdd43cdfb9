package nuorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
)

// skuRef is a SKU (product size) and the product it belongs to.
type skuRef struct {
	productID, skuID string
}

// catalogIndex resolves the ways an ERP names SKUs and warehouses to
// NuOrder ids. It is built by reading every product (read requests only).
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
	for _, l := range c.productListings() {
		err := c.eachListed(ctx, l.e, l.params, resolveProduct, func(doc json.RawMessage) error {
			var p product
			if err := json.Unmarshal(doc, &p); err != nil {
				return fmt.Errorf("product document: %w", err)
			}
			for _, s := range p.Sizes {
				if !s.ID.ok {
					continue
				}
				ref := skuRef{p.ID.v, s.ID.v}
				ix.bySKU[s.ID.v] = ref
				if s.UPC.ok && s.UPC.v != "" && s.UPC.v != "N/A" {
					ix.byUPC[s.UPC.v] = ref
				}
				if p.BrandID.ok && s.Size.ok {
					ix.byBrandSize[strings.ToLower(p.BrandID.v)+"\x00"+s.Size.v] = ref
				}
			}
			for _, w := range p.Warehouses {
				if k := w.key(); k != "" {
					ix.whByID[k] = w.Code.v
					if w.Code.ok && w.Code.v != "" {
						ix.whByCode[strings.ToLower(w.Code.v)] = k
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading the product catalog to resolve SKUs: %w", err)
		}
	}
	return ix, nil
}

// warehouse resolves a warehouse id or code to its id.
func (ix *catalogIndex) warehouse(v string) (string, bool) {
	if _, ok := ix.whByID[v]; ok {
		return v, true
	}
	id, ok := ix.whByCode[strings.ToLower(strings.TrimSpace(v))]
	return id, ok
}

func (ix *catalogIndex) warehouseCodes() string {
	var codes []string
	for _, c := range ix.whByID {
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
func (c *Connector) writeInventory(ctx context.Context, req connector.WriteRequest, in connector.RecordIterator, results connector.ResultFunc) (connector.WriteSummary, error) {
	var sum connector.WriteSummary
	if err := options("inventory", req.Options); err != nil {
		return sum, err
	}
	ix, err := c.buildIndex(ctx)
	if err != nil {
		return sum, err
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
			return fmt.Sprintf("unknown warehouse %s (known: %s)", whv, ix.warehouseCodes()), nil
		}
		prebook, _ := r.flag("prebook")
		qty, hasQty := r.num("quantity")
		rp := replenishment{ref: ref}
		switch {
		case prebook:
			rp.kind = "prebook" // prebook rows carry no quantity
		case !hasQty:
			return "quantity is missing", nil
		case qty < 0:
			return fmt.Sprintf("negative quantity %v", qty), nil
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

	touched := map[string]bool{}
	warehouses := make([]string, 0, len(byWarehouse))
	for wh := range byWarehouse {
		warehouses = append(warehouses, wh)
	}
	sort.Strings(warehouses)
	for _, wh := range warehouses {
		code := ix.whByID[wh]
		for _, batch := range batchBySKU(byWarehouse[wh]) {
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
				case errors.As(err, &apiErr) && apiErr.Status/100 == 4:
					res = rejectAll(rows, apiErr.Error())
					sum.Add("replenishment requests refused", 1)
				case err != nil:
					return sum, err
				default:
					res = accepted(rows)
					for _, rp := range batch {
						touched[rp.ref.productID] = true
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

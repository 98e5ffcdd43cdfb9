package fakeapi

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var (
	cities = []struct{ city, state, zip, country string }{
		{"Austin", "TX", "78701", "US"}, {"Brooklyn", "NY", "11201", "US"}, {"Portland", "OR", "97205", "US"},
		{"Toronto", "ON", "M5V 2T6", "Canada"}, {"Amsterdam", "", "1012 AB", "Netherlands"}, {"Poznan", "", "61-737", "Poland"},
	}
	storeWords = []string{"Boutique", "Mercantile", "Supply", "General Store", "Atelier", "Outfitters"}
	storeNames = []string{"Juniper", "Harbor", "Wren", "Copper", "Meadow", "Linden", "Fable", "North"}
	reps       = []struct{ name, email string }{{"Dana Reyes", "dana@demobrand.example"}, {"Sam Okafor", "sam@demobrand.example"}, {"Lee Park", "lee@demobrand.example"}}
	terms      = []string{"NET30", "NET60", "Prepaid", "Credit Card"}
	currencies = []string{"USD", "USD", "USD", "CAD", "EUR"}
)

// CompanyID is the _id of company i.
func (c Catalog) CompanyID(i int) string { return c.objectID("company", i) }

// CompanyCode is the brand's customer code of company i.
func (c Catalog) CompanyCode(i int) string { return fmt.Sprintf("C%06d", 10000+i) }

// CompanyIndexByCode maps a company code back to its number (bounded by n).
func (c Catalog) CompanyIndexByCode(code string, n int) (int, bool) {
	if len(code) != 7 || code[0] != 'C' {
		return 0, false
	}
	v, err := strconv.Atoi(code[1:])
	if err != nil || v < 10000 || v-10000 >= n {
		return 0, false
	}
	return v - 10000, true
}

// CompanyIndex maps a company _id back to its number (bounded by n).
func (c Catalog) CompanyIndex(id string, n int) (int, bool) { return c.index("company", id, n) }

// Company returns the document of company i, as GET /api/company/{id} would:
// addresses, reps, buyers, currency, terms, and a custom field.
func (c Catalog) Company(i int) map[string]any {
	r := c.rng("company", i)
	name := fmt.Sprintf("%s %s", pick(r, storeNames), pick(r, storeWords))
	loc := pick(r, cities)
	code := c.CompanyCode(i)
	rep := pick(r, reps)
	created := spread(i, max(c.Companies, 1))
	modified := created.Add(time.Duration(r.IntN(30*24*60)) * time.Minute)
	addr := func(kind, display string, defShip, defBill bool) map[string]any {
		return map[string]any{
			"ref": c.objectID("address", i*4+len(display)%4), "display_name": display,
			"line_1": fmt.Sprintf("%d %s St", 1+r.IntN(900), pick(r, storeNames)), "line_2": "",
			"city": loc.city, "state": loc.state, "zip": loc.zip, "country": loc.country,
			"shipping_code": code, "billing_code": code, "default_shipping": defShip, "default_billing": defBill, "type": kind,
		}
	}
	addresses := []map[string]any{addr("both", name+" - Main", true, true)}
	if r.IntN(3) == 0 {
		addresses = append(addresses, addr("shipping", name+" - Warehouse", false, false))
	}
	buyer := map[string]any{
		"name": "Buyer " + strconv.Itoa(i), "email": fmt.Sprintf("buyer%d@retailer%d.example", i, i), "title": "Head Buyer",
		"phone_office": "555-0100", "phone_cell": "", "reps": []map[string]any{{"name": rep.name, "email": rep.email}},
	}
	return map[string]any{
		"_id": c.CompanyID(i), "schema_id": c.objectID("schema", 2), "name": name, "code": code,
		"currency_code": pick(r, currencies), "active": r.IntN(25) > 0, "allow_bulk": false,
		"discount": 0, "default_discount": 0, "surcharge": 0, "payment_terms": pick(r, terms), "credit_status": "",
		"pricing_template": "", "customer_groups": []string{}, "warehouse": c.objectID("warehouse", 0),
		"reps":      []map[string]any{{"name": rep.name, "email": rep.email, "_id": c.objectID("rep", i)}},
		"addresses": addresses, "buyers": []map[string]any{buyer},
		"created_on": isoMillis(created), "modified_on": isoMillis(modified),
		"__sortable_name": name, "sales_rep_id": fmt.Sprintf("SR-%02d", r.IntN(40)), // custom field
	}
}

// Order statuses the generator assigns, with their share of orders.
var orderStatuses = []string{"approved", "approved", "approved", "approved", "approved", "approved", "processed", "processed", "shipped", "cancelled", "pending"}

// OrderID is the _id of order i.
func (c Catalog) OrderID(i int) string { return c.objectID("order", i) }

// OrderIndex maps an order _id back to its number (bounded by n).
func (c Catalog) OrderIndex(id string, n int) (int, bool) { return c.index("order", id, n) }

// OrderStatus is the generated status of order i, before any change.
func (c Catalog) OrderStatus(i int) string {
	return orderStatuses[c.rng("order-status", i).IntN(len(orderStatuses))]
}

// Order returns the document of order i, shaped like NuOrder's
// /api/orders/{status}/detail elements: retailer, addresses, line items with
// sizes, totals, discounts, shipments, "__" fields and custom fields.
func (c Catalog) Order(i int) map[string]any {
	r := c.rng("order", i)
	status := c.OrderStatus(i)
	created := spread(i, max(c.Orders, 1))
	modified := created.Add(time.Duration(r.IntN(10*24*60)) * time.Minute)
	var company map[string]any
	if c.Companies > 0 {
		company = cached("company", c.Seed, r.IntN(c.Companies), c.Companies, func(i int) map[string]any { return c.Company(i) })
	} else {
		company = cached("company", c.Seed, 0, 1, func(int) map[string]any { return Catalog{Seed: c.Seed, Companies: 1}.Company(0) })
	}
	addrs := company["addresses"].([]map[string]any)
	shipStart := time.Date(2026, time.Month(1+r.IntN(12)), 1, 0, 0, 0, 0, time.UTC)
	shipEnd := shipStart.AddDate(0, 1, -1)
	var lines []map[string]any
	total, qty := 0.0, 0
	nLines := 1 + r.IntN(4)
	for l := 0; l < nLines; l++ {
		pi := r.IntN(max(c.Products, 1))
		p := cached("product", c.Seed, pi, max(c.Products, 1), func(i int) map[string]any {
			return Catalog{Seed: c.Seed, Products: max(c.Products, 1)}.Product(i)
		})
		sizes := p["sizes"].([]map[string]any)
		price := p["pricing"].(map[string]any)["USD"].(map[string]any)["wholesale"].(float64)
		var lineSizes []map[string]any
		for _, s := range sizes {
			if r.IntN(3) == 0 {
				continue
			}
			q := 1 + r.IntN(12)
			qty += q
			total += float64(q) * price
			lineSizes = append(lineSizes, map[string]any{
				"size": s["size"], "upc": s["upc"], "quantity": q, "price": price, "original_price": price,
				"price_precise": strconv.FormatFloat(price, 'f', 2, 64), "units_per_pack": 1,
				"discounts": map[string]any{"total_discount": 0, "applied": []any{}},
			})
		}
		if len(lineSizes) == 0 {
			s := sizes[0]
			qty++
			total += price
			lineSizes = append(lineSizes, map[string]any{"size": s["size"], "upc": s["upc"], "quantity": 1, "price": price})
		}
		prebook := r.IntN(6) == 0
		lines = append(lines, map[string]any{
			"id": c.objectID("line", i*8+l),
			"product": map[string]any{
				"_id": p["_id"], "style_number": p["style_number"], "color": p["color"], "color_code": p["color_code"],
				"brand_id": p["brand_id"], "season": p["season"], "department": p["department"],
			},
			"warehouse": "MAIN", "prebook": prebook, "ship_start": isoMillis(shipStart), "ship_end": isoMillis(shipEnd),
			"notes": "", "discount": 0, "sizes": lineSizes, "retail_string": fmt.Sprintf("$%.2f", price*2.2),
		})
	}
	total = round2(total)
	shipments := []map[string]any{} // "shipments": [] as recorded in 2023 (S6)
	if status == "shipped" {
		shipments = append(shipments, map[string]any{
			"type": "full", "tracking_numbers": []string{fmt.Sprintf("1Z%012d", i)}, "status": "shipped",
			"shipment_date": isoMillis(modified), "line_items": []any{},
		})
	}
	retailer := map[string]any{
		"_id": company["_id"], "retailer_name": company["name"], "retailer_code": company["code"],
		"buyer_name": company["buyers"].([]map[string]any)[0]["name"], "buyer_email": company["buyers"].([]map[string]any)[0]["email"],
	}
	amount := strconv.FormatFloat(total, 'f', 2, 64)
	doc := map[string]any{
		"_id": c.OrderID(i), "schema_id": c.objectID("schema", 3), "order_number": strconv.Itoa(100000 + i),
		"status": status, "currency_code": company["currency_code"], "customer_po_number": fmt.Sprintf("PO-%d", 5000+i%9000),
		"external_id": "", "notes": "", "discount": 0, "additional_percentage": 0, "total": total, "total_quantity": qty,
		"submitted_by": "web", "split": false, "edited": false, "easy_order_ready": false, "order_tags": []string{},
		"order_type": []string{"Immediate Order", "Booking"}[r.IntN(2)],
		"created_on": isoMillis(created), "modified_on": isoMillis(modified),
		"start_ship": isoMillis(shipStart), "end_ship": isoMillis(shipEnd),
		"rep_name": company["reps"].([]map[string]any)[0]["name"], "rep_code": "", "rep_email": company["reps"].([]map[string]any)[0]["email"],
		"retailer": retailer, "billing_address": addrs[0], "shipping_address": addrs[len(addrs)-1],
		"line_items": lines, "shipments": shipments, "__shipment_status": []any{},
		"order_discounts": map[string]any{"original_total": amount, "discounted_total": amount, "total_applied": "0.00",
			"total_order_level_discount": "0.00", "applied": []any{}},
		"payment_status": "Not Paid", "__brand_name": "Demo Brand", "__exported": false,
		"season_code": p2(r), // custom field
	}
	if status != "shipped" && i%13 == 5 {
		// Orders as recorded in 2014 (S1) carry no shipments key at all;
		// those of 2023 (S6) carry "shipments": [].
		delete(doc, "shipments")
	}
	return doc
}

func p2(r *rand.Rand) string { return fmt.Sprintf("S%02d", r.IntN(4)+24) }

// docKey identifies a generated document for the cache below.
type docKey struct {
	kind    string
	seed    uint64
	i, size int
}

// docCache keeps the product and company documents orders embed, read-only,
// so generating an order does not regenerate them. It holds at most
// maxCached documents: beyond that, documents are generated each time.
var (
	docCache   sync.Map
	cachedDocs atomic.Int64
)

const maxCached = 50_000

func cached(kind string, seed uint64, i, size int, gen func(int) map[string]any) map[string]any {
	k := docKey{kind, seed, i, size}
	if v, ok := docCache.Load(k); ok {
		return v.(map[string]any)
	}
	doc := gen(i)
	if cachedDocs.Load() < maxCached {
		if _, loaded := docCache.LoadOrStore(k, doc); !loaded {
			cachedDocs.Add(1)
		}
	}
	return doc
}

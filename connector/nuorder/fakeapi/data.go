package fakeapi

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// SandboxCatalog is the demo catalog of --sandbox.
var SandboxCatalog = Catalog{Seed: 42, Products: 240, Companies: 60, Orders: 500}

// Catalog generates NuOrder documents deterministically from a seed. Nothing
// is stored: document i is computed from (seed, i) whenever it is asked for,
// so a catalog of any size costs no memory, and two catalogs with the same
// seed and sizes serve the same bytes.
type Catalog struct {
	Seed      uint64
	Products  int
	Companies int
	Orders    int
	// EmbedWarehouses makes products list the warehouses that stock them.
	// Off by default: every recorded NuOrder product carries "warehouses": []
	// (shared/nuorder-api.md §13.3), and NuOrder has no warehouse listing,
	// so a client learns the warehouses from its user.
	EmbedWarehouses bool
}

// epoch is the first creation time of generated documents; documents are
// spread over span after it, so every generated time is in the past.
var (
	epoch = time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)
	span  = 500 * 24 * time.Hour
)

// spread places document i of n in time, in order of i.
func spread(i, n int) time.Time {
	if n < 1 {
		n = 1
	}
	return epoch.Add(time.Duration(int64(span) / int64(n) * int64(i))).Truncate(time.Millisecond)
}

func (c Catalog) rng(kind string, i int) *rand.Rand {
	h := sha256.Sum256([]byte(fmt.Sprintf("%d/%s/%d", c.Seed, kind, i)))
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(h[:8]), binary.LittleEndian.Uint64(h[8:16])))
}

// objectID makes a 24-hex MongoDB-style id whose last 8 hex digits are i, so
// an id can be mapped back to its document without a lookup table.
func (c Catalog) objectID(kind string, i int) string {
	return c.idPrefix(kind) + fmt.Sprintf("%08x", uint32(i))
}

func (c Catalog) idPrefix(kind string) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%d/%s", c.Seed, kind)))
	return fmt.Sprintf("%x", h[:8])
}

// index maps an id made by objectID back to its number.
func (c Catalog) index(kind, id string, n int) (int, bool) {
	if len(id) != 24 || id[:16] != c.idPrefix(kind) {
		return 0, false
	}
	i, err := strconv.ParseUint(id[16:], 16, 32)
	if err != nil || int(i) >= n {
		return 0, false
	}
	return int(i), true
}

func isoMillis(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Warehouse is a generated NuOrder warehouse, in the shape products embed.
type Warehouse struct {
	ID          string `json:"id"`
	BrandID     string `json:"brand_id"`
	DisplayName string `json:"display_name"`
	Code        string `json:"code"`
	Sort        int    `json:"sort"`
	Active      bool   `json:"active"`
	CreatedOn   string `json:"created_on"`
	ModifiedOn  string `json:"modified_on"`
}

var warehouseNames = []struct{ name, code string }{
	{"Main Distribution Center", "MAIN"},
	{"West Coast Warehouse", "WEST"},
	{"EU Hub Rotterdam", "EU"},
}

// Warehouses returns the brand's warehouses.
func (c Catalog) Warehouses() []Warehouse {
	out := make([]Warehouse, len(warehouseNames))
	for i, w := range warehouseNames {
		out[i] = Warehouse{
			ID: c.objectID("warehouse", i), BrandID: c.objectID("brand", 0),
			DisplayName: w.name, Code: w.code, Sort: i + 1, Active: true,
			CreatedOn: isoMillis(epoch.Add(-24 * time.Hour)), ModifiedOn: isoMillis(epoch),
		}
	}
	return out
}

// ProductID is the _id of product i.
func (c Catalog) ProductID(i int) string { return c.objectID("product", i) }

// ProductIndex maps a product _id back to its number.
func (c Catalog) ProductIndex(id string) (int, bool) { return c.index("product", id, c.Products) }

var (
	seasons     = []string{"SS26", "FW26", "SS27"}
	colors      = []struct{ name, code string }{{"Black", "BLK"}, {"Ivory", "IVR"}, {"Navy", "NVY"}, {"Sage", "SGE"}, {"Rust", "RST"}, {"Heather Grey", "HGR"}}
	adjectives  = []string{"Relaxed", "Cropped", "Tailored", "Oversized", "Classic", "Ribbed", "Quilted", "Pleated"}
	garments    = []struct{ noun, category, sub string }{{"Tee", "Tops", "T-Shirts"}, {"Shirt", "Tops", "Shirts"}, {"Trouser", "Bottoms", "Trousers"}, {"Jean", "Bottoms", "Denim"}, {"Jacket", "Outerwear", "Jackets"}, {"Knit", "Tops", "Knitwear"}, {"Dress", "Dresses", "Midi"}, {"Tote", "Accessories", "Bags"}}
	departments = []string{"Womens", "Mens", "Kids"}
	sizeRuns    = map[string][]string{
		"Tops": {"XS", "S", "M", "L", "XL"}, "Outerwear": {"S", "M", "L", "XL"}, "Dresses": {"0", "2", "4", "6", "8", "10"},
		"Bottoms": {"26", "28", "30", "32", "34", "36"}, "Accessories": {"OS"},
	}
	origins  = []string{"Portugal", "Italy", "India", "Vietnam", "Peru", "Turkey"}
	fabrics  = []string{"100% organic cotton", "70% wool, 30% polyamide", "55% linen, 45% cotton", "100% recycled polyester", "98% cotton, 2% elastane"}
	currency = []struct {
		code string
		rate float64
	}{{"USD", 1}, {"EUR", 0.92}, {"CAD", 1.36}}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// Product returns the document of product i as NuOrder's GET /api/product/{id}
// would: sizes with their _id (the SKU id), UPC and size order, pricing per
// currency, warehouses, dates as ISO strings ("" when empty), server-computed
// "__" fields and a few brand custom fields.
func (c Catalog) Product(i int) map[string]any {
	r := c.rng("product", i)
	g := pick(r, garments)
	col := colors[i%len(colors)]
	season := seasons[i%len(seasons)]
	style := fmt.Sprintf("ST-%05d", i/len(colors)+10000)
	created := spread(i, c.Products)
	modified := created.Add(time.Duration(r.IntN(30*24*60)) * time.Minute)
	wholesale := float64(15+r.IntN(120)) + 0.5*float64(r.IntN(2))
	pricing := map[string]any{}
	for _, cur := range currency {
		pricing[cur.code] = map[string]any{"wholesale": round2(wholesale * cur.rate), "retail": round2(wholesale * 2.2 * cur.rate), "disabled": false}
	}
	var sizes []map[string]any
	var sizeIDs []map[string]any
	for k, s := range sizeRuns[g.category] {
		id := c.objectID("size", i*16+k)
		sizes = append(sizes, map[string]any{
			"_id": id, "size": s, "upc": fmt.Sprintf("8%011d", (i*16+k)%100000000000),
			"size_group": g.category, "size_order": strconv.Itoa(k + 1), "units_per_pack": 1,
			"pricing": map[string]any{"USD": map[string]any{"wholesale": round2(wholesale), "retail": round2(wholesale * 2.2)}},
		})
		sizeIDs = append(sizeIDs, map[string]any{"_id": id, "size": s, "__global_id": c.objectID("gsize", i*16+k)})
	}
	whs := c.Warehouses()
	warehouses := []Warehouse{}
	for k, w := range whs {
		if (k == 0 || r.IntN(2) == 0) && c.EmbedWarehouses {
			warehouses = append(warehouses, w)
		}
	}
	availableFrom := ""
	if r.IntN(4) > 0 {
		availableFrom = isoMillis(time.Date(2026, time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC))
	}
	active := r.IntN(20) > 0
	doc := map[string]any{
		"_id": c.ProductID(i), "schema_id": c.objectID("schema", 1),
		"style_number": style, "season": season, "seasons": []string{season},
		"color": col.name, "color_code": col.code,
		"name":     fmt.Sprintf("%s %s", pick(r, adjectives), g.noun),
		"brand_id": fmt.Sprintf("%s_%s_%s", style, season, col.code), "unique_key": strings.Join([]string{style, season, col.name}, ","),
		"category": g.category, "subcategory": g.sub, "department": pick(r, departments), "division": "Mainline",
		"description":   fmt.Sprintf("%s %s in %s.", pick(r, adjectives), strings.ToLower(g.noun), strings.ToLower(col.name)),
		"available_now": availableFrom == "", "active": active, "archived": !active && r.IntN(2) == 0, "cancelled": false,
		"available_from": availableFrom, "available_until": "", "order_closing": "",
		"pricing": pricing, "sizes": sizes, "__size_ids": sizeIDs,
		"warehouses": warehouses, "banners": []string{}, "images": []string{}, "size_groups": []string{g.category},
		"created_on": isoMillis(created), "modified_on": isoMillis(modified),
		"__brand_name": "Demo Brand", "__sold_out": false, "__tracks_inventory": true,
		// Brand-specific custom fields (NuOrder's "fluent schemas").
		"country_of_origin": pick(r, origins), "fabric_content": pick(r, fabrics),
		"hs_code": fmt.Sprintf("6%03d.%02d", 100+r.IntN(900), r.IntN(100)),
	}
	return doc
}

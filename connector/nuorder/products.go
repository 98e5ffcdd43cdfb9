package nuorder

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
)

// price is one currency's entry of a pricing map.
type price struct {
	Wholesale flexNumber `json:"wholesale"`
	Retail    flexNumber `json:"retail"`
	Disabled  flexBool   `json:"disabled"`
}

// warehouse is the warehouse object products embed.
type warehouse struct {
	ID          flexString `json:"id"`
	UnderID     flexString `json:"_id"`
	BrandID     flexString `json:"brand_id"`
	DisplayName flexString `json:"display_name"`
	Code        flexString `json:"code"`
	Sort        flexNumber `json:"sort"`
	Active      flexBool   `json:"active"`
	CreatedOn   flexString `json:"created_on"`
	ModifiedOn  flexString `json:"modified_on"`
}

// key is the warehouse's id (NuOrder spells it id; _id is accepted too).
func (w warehouse) key() string {
	if w.ID.ok {
		return w.ID.v
	}
	return w.UnderID.v
}

// productSize is one size (SKU) of a product document.
type productSize struct {
	ID        flexString       `json:"_id"`
	Size      flexString       `json:"size"`
	UPC       flexString       `json:"upc"`
	SizeGroup flexString       `json:"size_group"`
	SizeOrder flexNumber       `json:"size_order"`
	Pricing   map[string]price `json:"pricing"`
}

// product holds the fields of a product document the stream's columns use;
// the whole document is kept as it came in the document column.
type product struct {
	ID             flexString       `json:"_id"`
	BrandID        flexString       `json:"brand_id"`
	StyleNumber    flexString       `json:"style_number"`
	Season         flexString       `json:"season"`
	Color          flexString       `json:"color"`
	ColorCode      flexString       `json:"color_code"`
	Name           flexString       `json:"name"`
	Category       flexString       `json:"category"`
	Subcategory    flexString       `json:"subcategory"`
	Department     flexString       `json:"department"`
	Division       flexString       `json:"division"`
	Description    flexString       `json:"description"`
	Active         flexBool         `json:"active"`
	Archived       flexBool         `json:"archived"`
	AvailableNow   flexBool         `json:"available_now"`
	AvailableFrom  flexString       `json:"available_from"`
	AvailableUntil flexString       `json:"available_until"`
	Seasons        []flexString     `json:"seasons"`
	Sizes          []productSize    `json:"sizes"`
	Pricing        map[string]price `json:"pricing"`
	Warehouses     []warehouse      `json:"warehouses"`
	CreatedOn      flexString       `json:"created_on"`
	ModifiedOn     flexString       `json:"modified_on"`
}

// appendPricing writes a currency map as a list of structs, sorted by
// currency so equal documents give equal rows.
func appendPricing(b array.Builder, m map[string]price) {
	lb := b.(*array.ListBuilder)
	if m == nil {
		lb.AppendNull()
		return
	}
	lb.Append(true)
	sb := lb.ValueBuilder().(*array.StructBuilder)
	codes := make([]string, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		p := m[c]
		sb.Append(true)
		member(sb, priceType, "currency").(*array.StringBuilder).Append(c)
		appendAmount(member(sb, priceType, "wholesale"), p.Wholesale)
		appendAmount(member(sb, priceType, "retail"), p.Retail)
		appendBool(member(sb, priceType, "disabled"), p.Disabled)
	}
}

// decodeProduct decodes a product document, once: the read's filters and
// the row both use the result. It errors on a document that is not a JSON
// object of the expected shape.
func decodeProduct(raw json.RawMessage) (product, error) {
	var p product
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, fmt.Errorf("product document: %w", err)
	}
	return p, nil
}

// appendProduct adds one product row from p, decoded from raw, the document
// as NuOrder sent it. It errors on a product without an _id.
func appendProduct(b *array.RecordBuilder, p *product, raw json.RawMessage, extracted time.Time) error {
	if !p.ID.ok {
		return fmt.Errorf("product document without _id")
	}
	col := func(name string) array.Builder { return column(b, name) }
	for _, c := range [...]named{{"_id", p.ID}, {"brand_id", p.BrandID}, {"style_number", p.StyleNumber}, {"season", p.Season},
		{"color", p.Color}, {"color_code", p.ColorCode}, {"name", p.Name}, {"category", p.Category}, {"subcategory", p.Subcategory},
		{"department", p.Department}, {"division", p.Division}, {"description", p.Description}} {
		appendString(col(c.name), c.v)
	}
	appendBool(col("active"), p.Active)
	appendBool(col("archived"), p.Archived)
	appendBool(col("available_now"), p.AvailableNow)
	appendTime(col("available_from"), p.AvailableFrom)
	appendTime(col("available_until"), p.AvailableUntil)
	appendStrings(col("seasons"), p.Seasons)
	appendStructs(col("sizes"), p.Sizes, func(sb *array.StructBuilder, s productSize) {
		appendString(member(sb, sizeType, "_id"), s.ID)
		appendString(member(sb, sizeType, "size"), s.Size)
		appendString(member(sb, sizeType, "upc"), s.UPC)
		appendString(member(sb, sizeType, "size_group"), s.SizeGroup)
		appendInt32(member(sb, sizeType, "size_order"), s.SizeOrder)
		appendPricing(member(sb, sizeType, "pricing"), s.Pricing)
	})
	appendPricing(col("pricing"), p.Pricing)
	var whIDs []flexString
	if p.Warehouses != nil {
		whIDs = make([]flexString, 0, len(p.Warehouses))
		for _, w := range p.Warehouses {
			whIDs = append(whIDs, flexString{w.key(), w.key() != ""})
		}
	}
	appendStrings(col("warehouse_ids"), whIDs)
	appendTime(col("created_on"), p.CreatedOn)
	appendTime(col("modified_on"), p.ModifiedOn)
	col("document").(*array.StringBuilder).BinaryBuilder.Append(raw) // the bytes, without a string copy
	col("_extracted_at").(*array.TimestampBuilder).Append(arrow.Timestamp(extracted.UnixMicro()))
	return nil
}

// productListings are the listings (parts) a products read goes through:
// the whole catalog, or one listing per configured season.
func (c *Connector) productListings() []listing {
	if len(c.cfg.Seasons) == 0 {
		return []listing{{api.ProductList, nil}}
	}
	var out []listing
	for _, s := range c.cfg.Seasons {
		out = append(out, listing{api.ProductSeasonList, []string{s}})
	}
	return out
}

// listing is one endpoint call that lists documents.
type listing struct {
	e      api.Endpoint
	params []string
}

// readProducts emits the products that changed since the last run, reading
// only what the catalog it keeps says may have (see catalog.go). A first
// (or full-refresh) read reads every product and emits the active ones;
// later reads emit every new or changed product, active or not, so a
// deactivation reaches the destination. A checkpoint from before the
// catalog was kept is read as before once: every product, those modified
// in the read's window emitted.
func (c *Connector) readProducts(ctx context.Context, cp []byte, options map[string]string, emit connector.EmitFunc) error {
	if err := connector.CheckOptions("products", []connector.Option{productRefresh}, options); err != nil {
		return err
	}
	now := c.clock()
	w, err := openWindow(cp, now, c.lag())
	if err != nil {
		return err
	}
	var prev checkpoint
	json.Unmarshal(cp, &prev) // openWindow read it
	var known catalog         // nil: nothing known, every product is read
	if !w.full && prev.Known != "" {
		if known, err = decodeCatalog(prev.Known); err != nil {
			return err
		}
	}
	var since time.Time
	if prev.Ran != "" {
		since, _ = time.Parse(time.RFC3339Nano, prev.Ran)
	}
	extracted := now.UTC()
	bt := newBatcher(ProductsSchema, emit)
	defer bt.release()
	next := catalog{}
	read := map[string]cachedProduct{} // for the SKU cache pushes use
	var docs, docBytes int64
	handle := func(id string, doc json.RawMessage) error {
		docs, docBytes = docs+1, docBytes+int64(len(doc))
		p, err := decodeProduct(doc)
		if err != nil {
			return err
		}
		if id == "" {
			id = p.ID.v
		}
		d := docDigest(doc)
		next[id] = catalogEntry{read: minutes(now), digest: d}
		if c.cacheDir != "" {
			read[id] = cachedOf(&p, doc, now)
		}
		if known != nil {
			if e, ok := known[id]; ok && e.digest == d {
				return nil // read again, unchanged
			}
		} else if !w.contains(cursorOf(p.ModifiedOn, p.CreatedOn)) || (w.full && p.Active.ok && !p.Active.v) {
			return nil
		}
		if err := appendProduct(bt.b, &p, doc, extracted); err != nil {
			return err
		}
		return bt.added()
	}
	listed := map[string]bool{}
	for _, l := range c.productListings() {
		err := c.client.streamArray(ctx, l.e, l.params, func(el json.RawMessage) error {
			doc, _, params, err := resolveProduct(el)
			if err != nil {
				return err
			}
			if doc != nil {
				return handle("", doc) // the listing gives documents
			}
			listed[params[0]] = true
			return nil
		})
		if err != nil {
			return err
		}
	}
	refresh := toRefresh(known, listed, now, since, refreshOf(options))
	var ids []string
	for id := range listed {
		if _, done := next[id]; done {
			continue
		}
		if e, ok := known[id]; ok && !refresh[id] {
			next[id] = e // known, not due: not read
			continue
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if err := c.readProductIDs(ctx, ids, handle); err != nil {
		return err
	}
	avg := prev.AvgDoc
	if docs > 0 {
		avg = docBytes / docs
	}
	final, _ := json.Marshal(checkpoint{Cursor: w.until.Format(tsLayout), Known: encodeCatalog(next), Ran: now.UTC().Format(tsLayout), AvgDoc: avg})
	if err := bt.flush(final); err != nil {
		return err
	}
	c.keepInSKUCache(now, read, next)
	return nil
}

// readLocations emits the warehouses the config names and those embedded in
// products, one row per warehouse id, sorted by code. NuOrder has no known
// warehouse listing endpoint (shared/nuorder-api.md §6) and recorded
// products carry "warehouses": [] (§13.3), so the config is the main
// source; products are still read, for tenants whose products name theirs.
// A warehouse embedded in products is emitted when its modified_on lies in
// the read's window; the configured ones on a full read and whenever the
// configured list changed since the checkpoint. A product's document of a
// warehouse wins over the config's.
// locationsFromProducts is the locations stream's option.
var locationsFromProducts = connector.Option{Name: "from_products", Kind: connector.OptionBool,
	Default:     "true without warehouses in the config, else false",
	Description: "also read every product (one request each) for the warehouses its document embeds"}

func (c *Connector) readLocations(ctx context.Context, cp []byte, options map[string]string, emit connector.EmitFunc) error {
	if err := connector.CheckOptions("locations", []connector.Option{locationsFromProducts}, options); err != nil {
		return err
	}
	// With the warehouses in the config, the products are not read: their
	// documents carry "warehouses": [] as recorded (shared/nuorder-api.md),
	// and reading them is one request per product.
	fromProducts := len(c.cfg.Warehouses) == 0
	if v, ok := options["from_products"]; ok {
		fromProducts, _ = strconv.ParseBool(v) // checked above
	}
	w, err := openWindow(cp, time.Now(), c.lag())
	if err != nil {
		return err
	}
	var prev checkpoint
	json.Unmarshal(cp, &prev)
	configured, digest := c.configuredWarehouses()
	extracted := time.Now().UTC()
	seen := map[string]json.RawMessage{}
	if w.full || prev.Config != digest {
		for id, raw := range configured {
			seen[id] = raw
		}
	}
	listings := c.productListings()
	if !fromProducts {
		listings = nil
	}
	for _, l := range listings {
		_, err := c.eachListed(ctx, l.e, l.params, resolveProduct, func(doc json.RawMessage) error {
			var p struct {
				Warehouses []json.RawMessage `json:"warehouses"`
			}
			if err := json.Unmarshal(doc, &p); err != nil {
				return fmt.Errorf("product document: %w", err)
			}
			for _, raw := range p.Warehouses {
				var wh warehouse
				if err := json.Unmarshal(raw, &wh); err != nil {
					return fmt.Errorf("warehouse in product document: %w", err)
				}
				if k := wh.key(); k != "" && w.contains(cursorOf(wh.ModifiedOn, wh.CreatedOn)) {
					if _, fromConfig := configured[k]; fromConfig || seen[k] == nil {
						seen[k] = raw
						delete(configured, k) // the first product document wins
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	type row struct {
		w   warehouse
		raw json.RawMessage
	}
	rows := make([]row, 0, len(seen))
	for _, raw := range seen {
		var wh warehouse
		json.Unmarshal(raw, &wh)
		rows = append(rows, row{wh, raw})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].w.Code.v != rows[j].w.Code.v {
			return rows[i].w.Code.v < rows[j].w.Code.v
		}
		return rows[i].w.key() < rows[j].w.key()
	})
	bt := newBatcher(LocationsSchema, emit)
	defer bt.release()
	col := func(name string) array.Builder { return column(bt.b, name) }
	for _, r := range rows {
		col("id").(*array.StringBuilder).Append(r.w.key())
		appendString(col("code"), r.w.Code)
		appendString(col("display_name"), r.w.DisplayName)
		appendString(col("brand_id"), r.w.BrandID)
		appendBool(col("active"), r.w.Active)
		appendInt32(col("sort"), r.w.Sort)
		appendTime(col("created_on"), r.w.CreatedOn)
		appendTime(col("modified_on"), r.w.ModifiedOn)
		col("document").(*array.StringBuilder).BinaryBuilder.Append(r.raw) // the bytes, without a string copy
		col("_extracted_at").(*array.TimestampBuilder).Append(arrow.Timestamp(extracted.UnixMicro()))
		if err := bt.added(); err != nil {
			return err
		}
	}
	var next checkpoint
	json.Unmarshal(w.final(), &next)
	next.Config = digest
	final, _ := json.Marshal(next)
	return bt.flush(final)
}

// configuredWarehouses returns the config's warehouses as documents in the
// shape products embed, by id, and a digest of the list for checkpoints.
func (c *Connector) configuredWarehouses() (map[string]json.RawMessage, string) {
	out := map[string]json.RawMessage{}
	for _, wc := range c.cfg.Warehouses {
		doc := map[string]any{"id": strings.ToLower(wc.ID), "__source": "connector config"}
		if wc.Code != nil {
			doc["code"] = *wc.Code
		}
		if wc.Name != nil {
			doc["display_name"] = *wc.Name
		}
		out[strings.ToLower(wc.ID)], _ = json.Marshal(doc)
	}
	if len(out) == 0 {
		return out, ""
	}
	ids := make([]string, 0, len(out))
	for id := range out {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write(out[id])
	}
	return out, fmt.Sprintf("%x", h.Sum(nil))[:16]
}

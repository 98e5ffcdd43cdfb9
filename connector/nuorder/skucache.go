package nuorder

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The SKU cache: what pushes need of each product (its SKUs with their
// sizes and UPCs, its brand, the warehouses it embeds), kept in a file of
// the folder the host gives the connector for it (ConfigureRequest.CacheDir)
// so that a push resolves its rows without reading the whole catalog. A
// products run and every push that reads products keep it up to date; a
// push lists the product ids (one request), reads the products the cache
// lacks and a rolling share of the rest (every product at most a day old),
// and resolves from the cache. Losing the file costs requests only: the
// next push reads the whole catalog again, as it did before the cache.

// skuCacheFile is the cache's file name in the cache folder.
const skuCacheFile = "products.jsonl"

// cachedProduct is one product of the SKU cache (one JSON line).
type cachedProduct struct {
	ID         string      `json:"id"`
	Read       uint32      `json:"read"` // minutes since the Unix epoch
	Digest     uint32      `json:"digest"`
	Brand      string      `json:"brand,omitempty"`
	Sizes      [][3]string `json:"sizes,omitempty"`      // SKU id, size, UPC
	Warehouses [][2]string `json:"warehouses,omitempty"` // id, code
}

// skuCacheHeader is the file's first line.
type skuCacheHeader struct {
	Version int    `json:"version"`
	Ran     string `json:"ran"` // when the read that wrote it started
}

// skuCache is the loaded cache: products by id.
type skuCache struct {
	ran      time.Time
	products map[string]cachedProduct
}

// skuCacheMu serialises the connector's own writes of the file (runs in
// one process); writes from other processes replace it whole (rename).
var skuCacheMu sync.Mutex

// cachedOf is what the cache keeps of a product document.
func cachedOf(p *product, raw json.RawMessage, read time.Time) cachedProduct {
	cp := cachedProduct{ID: p.ID.v, Read: minutes(read), Digest: docDigest(raw), Brand: p.BrandID.v}
	for _, s := range p.Sizes {
		if s.ID.ok {
			cp.Sizes = append(cp.Sizes, [3]string{s.ID.v, s.Size.v, s.UPC.v})
		}
	}
	for _, w := range p.Warehouses {
		if k := w.key(); k != "" {
			cp.Warehouses = append(cp.Warehouses, [2]string{k, w.Code.v})
		}
	}
	return cp
}

// loadSKUCache reads the cache (empty when there is none, or it cannot be
// read: the reason is logged, and the products are read again).
func (c *Connector) loadSKUCache() skuCache {
	out := skuCache{products: map[string]cachedProduct{}}
	if c.cacheDir == "" {
		return out
	}
	f, err := os.Open(filepath.Join(c.cacheDir, skuCacheFile))
	if errors.Is(err, fs.ErrNotExist) {
		return out
	}
	if err != nil {
		c.logger.Warn("the SKU cache cannot be read; the products are read again", "error", err)
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var h skuCacheHeader
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &h) != nil || h.Version != 1 {
		c.logger.Warn("the SKU cache is not one this version wrote; the products are read again", "file", f.Name())
		return out
	}
	out.ran, _ = time.Parse(time.RFC3339Nano, h.Ran)
	for sc.Scan() {
		var p cachedProduct
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil || p.ID == "" {
			c.logger.Warn("the SKU cache has a damaged line; the products are read again", "file", f.Name())
			return skuCache{products: map[string]cachedProduct{}}
		}
		out.products[p.ID] = p
	}
	if err := sc.Err(); err != nil {
		c.logger.Warn("the SKU cache cannot be read; the products are read again", "error", err)
		return skuCache{products: map[string]cachedProduct{}}
	}
	return out
}

// saveSKUCache replaces the cache file with products (sorted by id), as of
// a read that started at ran. A failure is logged: it costs the next push
// requests, not correctness.
func (c *Connector) saveSKUCache(ran time.Time, products map[string]cachedProduct) {
	if c.cacheDir == "" {
		return
	}
	skuCacheMu.Lock()
	defer skuCacheMu.Unlock()
	if err := c.writeSKUCache(ran, products); err != nil {
		c.logger.Warn("the SKU cache was not saved; the next push reads the products it lacks", "error", err)
	}
}

func (c *Connector) writeSKUCache(ran time.Time, products map[string]cachedProduct) error {
	if err := os.MkdirAll(c.cacheDir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.cacheDir, ".products-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	enc := json.NewEncoder(w)
	enc.Encode(skuCacheHeader{Version: 1, Ran: ran.UTC().Format(tsLayout)})
	ids := make([]string, 0, len(products))
	for id := range products {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := enc.Encode(products[id]); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(c.cacheDir, skuCacheFile))
}

// refreshSKUCache brings the cache up to date for a push: it lists the
// product ids, reads those the cache lacks and the rolling share of the
// rest that is due (every product at most defaultRefresh old), drops the
// products no longer listed, saves the cache and returns it. A listing that
// gives whole documents is used as it is.
func (c *Connector) refreshSKUCache(ctx context.Context) (map[string]cachedProduct, error) {
	now := c.clock()
	cache := c.loadSKUCache()
	known := catalog{}
	for id, p := range cache.products {
		known[id] = catalogEntry{read: p.Read, digest: p.Digest}
	}
	next := map[string]cachedProduct{}
	keep := func(raw json.RawMessage) error {
		p, err := decodeProduct(raw)
		if err != nil {
			return err
		}
		next[p.ID.v] = cachedOf(&p, raw, now)
		return nil
	}
	listed := map[string]bool{}
	for _, l := range c.productListings() {
		err := c.client.streamArray(ctx, l.e, l.params, func(el json.RawMessage) error {
			doc, _, params, err := resolveProduct(el)
			if err != nil {
				return err
			}
			if doc != nil {
				return keep(doc)
			}
			listed[params[0]] = true
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("listing the products to resolve SKUs: %w", err)
		}
	}
	due := toRefresh(known, listed, now, cache.ran, defaultRefresh)
	var ids []string
	for id := range listed {
		if _, done := next[id]; done {
			continue
		}
		if p, ok := cache.products[id]; ok && !due[id] {
			next[id] = p
			continue
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) > 0 {
		c.logger.Info("reading products to resolve SKUs", "products", len(ids), "known", len(next))
	}
	err := c.readProductIDs(ctx, ids, func(_ string, raw json.RawMessage) error { return keep(raw) })
	if err != nil {
		return nil, fmt.Errorf("reading the product catalog to resolve SKUs: %w", err)
	}
	c.saveSKUCache(now, next)
	return next, nil
}

// keepInSKUCache records, after a products run, the products it read (by
// id, with their documents' digest and SKUs) and drops those its listing
// no longer holds (listed: the catalog the run ends with).
func (c *Connector) keepInSKUCache(ran time.Time, read map[string]cachedProduct, listed catalog) {
	if c.cacheDir == "" {
		return
	}
	cache := c.loadSKUCache()
	for id := range cache.products {
		if _, ok := listed[id]; !ok {
			delete(cache.products, id)
		}
	}
	for id, p := range read {
		cache.products[id] = p
	}
	c.saveSKUCache(ran, cache.products)
}

// lowerBrandSize is the byBrandSize key of a brand and size.
func lowerBrandSize(brand, size string) string { return strings.ToLower(brand) + "\x00" + size }

package nuorder

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

// cached is configured with a cache folder, as the host configures it.
func cached(t testing.TB, srv *fakeapi.Server, extra, dir string) *Connector {
	t.Helper()
	c := New(nil, nil)
	cfg := fmt.Sprintf(`{"base_url":%q,"consumer_key":%q,"consumer_secret":%q,"token":%q,"token_secret":%q,"cursor_lag_seconds":0%s}`,
		srv.URL(), testCreds.ConsumerKey, testCreds.ConsumerSecret, testCreds.Token, testCreds.TokenSecret, extra)
	if err := c.Configure(context.Background(), connector.ConfigureRequest{Config: json.RawMessage(cfg), CacheDir: dir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestAPushAfterAProductsRunReadsAFewProducts: against 20,000 products, a
// products run fills the SKU cache; an inventory push of 10 SKUs a few
// seconds later (the clock held: a slow machine must not change the
// figure) lists the ids once and reads at most a few products (it read all
// 20,000 before), and every row is sent. A second process (a new connector
// on the same folder) does the same; without the folder, the push reads
// the whole catalog, as before.
func TestAPushAfterAProductsRunReadsAFewProducts(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 23, Products: 20000}
	srv := startCatalog(t, cat)
	dir := t.TempDir()
	extra := warehousesConfig(cat, -1)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	cached := func(t *testing.T, srv *fakeapi.Server, extra, dir string) *Connector {
		c := cached(t, srv, extra, dir)
		c.now = now
		return c
	}
	c := cached(t, srv, extra, dir)
	if _, _ = read(t, c, "products", nil, nil); srv.Requests(api.ProductByID) != 20000 {
		t.Fatalf("products run: %d product reads", srv.Requests(api.ProductByID))
	}
	wh := cat.Warehouses()[0]
	var rows [][]any
	for i := 0; i < 10; i++ {
		s := cat.Product(i * 1999)["sizes"].([]map[string]any)[0]
		rows = append(rows, []any{nil, s["upc"], nil, nil, wh.Code, float64(i + 1), time.Now().UTC(), false})
	}
	push := func(c *Connector) (reads, listings int) {
		t.Helper()
		clock.Add(int64(3 * time.Second))
		r0, l0 := srv.Requests(api.ProductByID), srv.Requests(api.ProductList)
		res, _ := write(t, c, "inventory", InventorySchema, rows, false)
		for _, r := range res {
			if r.Error != "" {
				t.Fatalf("row %d rejected: %s", r.Row, r.Error)
			}
		}
		return srv.Requests(api.ProductByID) - r0, srv.Requests(api.ProductList) - l0
	}
	if reads, listings := push(c); reads > 5 || listings != 1 {
		t.Fatalf("the push after a products run: %d product reads, %d listings", reads, listings)
	}
	if reads, _ := push(cached(t, srv, extra, dir)); reads > 5 {
		t.Fatalf("a push from another process on the same cache: %d product reads", reads)
	}
	if reads, _ := push(cached(t, srv, extra, "")); reads != 20000 {
		t.Fatalf("a push without a cache folder: %d product reads, want the whole catalog", reads)
	}
}

// TestADamagedSKUCacheCostsRequestsNotRows: a cache file that is not one
// (truncated, garbage) is ignored with a warning: the push reads the
// catalog again and sends every row.
func TestADamagedSKUCacheCostsRequestsNotRows(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 29, Products: 200}
	srv := startCatalog(t, cat)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, skuCacheFile), []byte("{\"version\":1}\n{\"id\":"), 0o600)
	c := cached(t, srv, warehousesConfig(cat, -1), dir)
	s := cat.Product(3)["sizes"].([]map[string]any)[0]
	res, _ := write(t, c, "inventory", InventorySchema, [][]any{{nil, s["upc"], nil, nil, cat.Warehouses()[0].Code, 4.0, time.Now().UTC(), false}}, false)
	if res[0].Error != "" || srv.Requests(api.ProductByID) != 200 {
		t.Fatalf("row: %q after %d product reads", res[0].Error, srv.Requests(api.ProductByID))
	}
	if got := c.loadSKUCache(); len(got.products) != 200 {
		t.Fatalf("the cache was not rewritten: %d products", len(got.products))
	}
}

package nuorder

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

var testCreds = fakeapi.Credentials{ConsumerKey: "ck-1", ConsumerSecret: "cs-1-very-secret", Token: "tk-1", TokenSecret: "ts-1-very-secret"}

func startFake(t *testing.T, products int) *fakeapi.Server {
	t.Helper()
	srv, err := fakeapi.Start(fakeapi.Options{Credentials: testCreds, Catalog: fakeapi.Catalog{Seed: 7, Products: products}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func configured(t testing.TB, base string, creds fakeapi.Credentials, extra string) *Connector {
	t.Helper()
	c := New(nil, nil)
	cfg := fmt.Sprintf(`{"base_url":%q,"consumer_key":%q,"consumer_secret":%q,"token":%q,"token_secret":%q%s}`,
		base, creds.ConsumerKey, creds.ConsumerSecret, creds.Token, creds.TokenSecret, extra)
	if err := c.Configure(context.Background(), connector.ConfigureRequest{Config: json.RawMessage(cfg)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// collect reads a stream and returns its rows' first column and documents.
func collect(t *testing.T, c connector.Connector, stream string) (ids, docs []string, err error) {
	return collectWith(t, c, stream, nil)
}

// collectWith is collect with the read's options.
func collectWith(t *testing.T, c connector.Connector, stream string, opts map[string]string) (ids, docs []string, err error) {
	err = c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: stream}}, Options: opts}, func(b connector.Batch) error {
		if b.Record == nil {
			return nil
		}
		idCol := b.Record.Column(0).(*array.String)
		docCol := b.Record.Column(b.Record.Schema().FieldIndices("document")[0]).(*array.String)
		for i := 0; i < idCol.Len(); i++ {
			ids = append(ids, idCol.Value(i))
			docs = append(docs, docCol.Value(i))
		}
		return nil
	})
	return ids, docs, err
}

func TestProductsReadEveryProductThroughConfirmedReads(t *testing.T) {
	srv := startFake(t, 1234)
	c := configured(t, srv.URL(), testCreds, "")
	ids, docs, err := collect(t, c, "products")
	if err != nil {
		t.Fatal(err)
	}
	// A first read emits the active products, in listing order.
	cat := fakeapi.Catalog{Seed: 7, Products: 1234}
	var want []string
	for i := 0; i < cat.Products; i++ {
		if cat.Product(i)["active"] == true {
			want = append(want, cat.ProductID(i))
		}
	}
	if len(ids) != len(want) || len(want) < 1000 {
		t.Fatalf("got %d products, want the %d active ones", len(ids), len(want))
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("row %d is %s, want %s (listing order)", i, ids[i], want[i])
		}
	}
	// Custom fields survive in the document column.
	if !strings.Contains(docs[0], `"country_of_origin"`) || !strings.Contains(docs[0], `"__size_ids"`) {
		t.Fatalf("document lost fields: %s", docs[0][:200])
	}
	if got := srv.Requests(api.ProductList); got != 1 {
		t.Fatalf("listing requests: %d, want 1", got)
	}
	if got := srv.Requests(api.ProductByID); got != 1234 {
		t.Fatalf("product reads: %d, want 1234", got)
	}
}

func TestProductColumnsComeFromTheDocument(t *testing.T) {
	srv := startFake(t, 3)
	c := configured(t, srv.URL(), testCreds, "")
	doc := fakeapi.Catalog{Seed: 7, Products: 3}.Product(1)
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "products"}}}, func(b connector.Batch) error {
		r := b.Record
		col := func(name string) int { return r.Schema().FieldIndices(name)[0] }
		if got := r.Column(col("style_number")).(*array.String).Value(1); got != doc["style_number"] {
			t.Errorf("style_number = %q, want %q", got, doc["style_number"])
		}
		sizes := r.Column(col("sizes")).(*array.List)
		start, end := sizes.ValueOffsets(1)
		if int(end-start) != len(doc["sizes"].([]map[string]any)) {
			t.Errorf("sizes: %d, want %d", end-start, len(doc["sizes"].([]map[string]any)))
		}
		pricing := r.Column(col("pricing")).(*array.List)
		ps, pe := pricing.ValueOffsets(1)
		if pe-ps != 3 {
			t.Errorf("pricing entries: %d, want 3 currencies", pe-ps)
		}
		if r.Column(col("modified_on")).IsNull(1) {
			t.Errorf("modified_on is null")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// warehousesConfig is the connector config's warehouses attribute naming
// the first n of a catalog's warehouses (all with n < 0), as extra JSON.
func warehousesConfig(cat fakeapi.Catalog, n int) string {
	whs := cat.Warehouses()
	if n >= 0 {
		whs = whs[:n]
	}
	var items []string
	for _, w := range whs {
		items = append(items, fmt.Sprintf(`{"id":%q,"code":%q,"name":%q}`, w.ID, w.Code, w.DisplayName))
	}
	return `,"warehouses":[` + strings.Join(items, ",") + `]`
}

// TestLocationsAreTheConfiguredWarehouses: recorded products carry
// "warehouses": [] (shared/nuorder-api.md §13.3), as the fake's do, so the
// locations stream is the warehouses the config names; it says so by
// emitting nothing without them, and emits them again when the list changes.
func TestLocationsAreTheConfiguredWarehouses(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 7, Products: 50}
	srv := startCatalog(t, cat)
	if ids, _, err := collect(t, configured(t, srv.URL(), testCreds, ""), "locations"); err != nil || len(ids) != 0 {
		t.Fatalf("no warehouses configured, none in products: %v locations (%v)", ids, err)
	}
	c := configured(t, srv.URL(), testCreds, warehousesConfig(cat, 2))
	ids, cp := read(t, c, "locations", nil, nil)
	whs := cat.Warehouses()
	if strings.Join(sorted(ids), ",") != strings.Join(sorted([]string{whs[0].ID, whs[1].ID}), ",") {
		t.Fatalf("locations %v, want the 2 configured", ids)
	}
	if again, _ := read(t, c, "locations", cp, nil); len(again) != 0 {
		t.Fatalf("no change, yet %v", again)
	}
	c3 := configured(t, srv.URL(), testCreds, warehousesConfig(cat, 3))
	if changed, _ := read(t, c3, "locations", cp, nil); len(changed) != 3 {
		t.Fatalf("a warehouse added to the config: %d locations emitted, want the 3 configured", len(changed))
	}
}

// TestLocationsMergeWhatProductsEmbed: for a tenant whose products do name
// their warehouses, with from_products those join the configured ones, and
// a product's document of a configured warehouse replaces the config's.
// Without the option, configured warehouses cost no request at all (the
// whole catalog was read before, one request per product).
func TestLocationsMergeWhatProductsEmbed(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 7, Products: 50, EmbedWarehouses: true}
	srv := startCatalog(t, cat)
	c := configured(t, srv.URL(), testCreds, warehousesConfig(cat, 1))
	ids, _, err := collect(t, c, "locations")
	if err != nil || len(ids) != 1 || srv.TotalRequests() != 0 {
		t.Fatalf("configured warehouses only: %d locations, %d requests, %v; want 1 and 0", len(ids), srv.TotalRequests(), err)
	}
	ids, docs, err := collectWith(t, c, "locations", map[string]string{"from_products": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(cat.Warehouses()) {
		t.Fatalf("got %d locations, want %d", len(ids), len(cat.Warehouses()))
	}
	for _, d := range docs {
		if strings.Contains(d, "connector config") {
			t.Fatalf("a configured warehouse the products embed kept the config's document: %s", d)
		}
	}
}

// TestInventoryWithoutWarehousesSaysWhatToConfigure: with no warehouse
// configured and none in the products, a push fails once with what to set,
// rather than rejecting every row, and the catalog carries a notice.
func TestInventoryWithoutWarehousesSaysWhatToConfigure(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 7, Products: 5}
	srv := startCatalog(t, cat)
	c := configured(t, srv.URL(), testCreds, "")
	streams, _ := c.Streams(context.Background())
	st, _ := connector.FindStream(streams, "inventory", connector.Sink)
	if !strings.Contains(st.Notice, "warehouses = [") {
		t.Fatalf("inventory notice %q", st.Notice)
	}
	s := cat.Product(1)["sizes"].([]map[string]any)[0]
	_, err := c.Write(context.Background(), connector.WriteRequest{Stream: "inventory", DryRun: true},
		&recs{rowsOf(InventorySchema, [][]any{{s["_id"], nil, nil, nil, "MAIN", 1.0, nil, false}}, 10)}, func([]connector.RowResult) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "warehouses = [{ id =") {
		t.Fatalf("push without warehouses: %v", err)
	}
	c = configured(t, srv.URL(), testCreds, warehousesConfig(cat, -1))
	streams, _ = c.Streams(context.Background())
	if st, _ := connector.FindStream(streams, "inventory", connector.Sink); st.Notice != "" {
		t.Fatalf("warehouses configured, yet notice %q", st.Notice)
	}
	w := cat.Warehouses()
	for _, bad := range []string{
		`,"warehouses":[{"id":"MAIN","code":null,"name":null}]`,                                                            // a code where the id goes
		fmt.Sprintf(`,"warehouses":[{"id":%q,"code":"X","name":null},{"id":%q,"code":"x","name":null}]`, w[0].ID, w[1].ID), // one code, two ids
	} {
		cfg := fmt.Sprintf(`{"base_url":%q,"consumer_key":"a","consumer_secret":"b","token":"c","token_secret":"d"%s}`, srv.URL(), bad)
		if err := New(nil, nil).Configure(context.Background(), connector.ConfigureRequest{Config: json.RawMessage(cfg)}); err == nil {
			t.Fatalf("config %s accepted", bad)
		}
	}
}

func TestWrongSecretIsA401ThatShowsNoSecret(t *testing.T) {
	srv := startFake(t, 5)
	bad := testCreds
	bad.ConsumerSecret = "not-the-secret-xyz"
	c := configured(t, srv.URL(), bad, "")
	_, _, err := collect(t, c, "products")
	if err == nil {
		t.Fatal("a wrong consumer secret was accepted")
	}
	msg := err.Error()
	if !strings.Contains(msg, "authentication refused by NuOrder (401") {
		t.Fatalf("error does not say authentication was refused: %s", msg)
	}
	for _, secret := range []string{bad.ConsumerSecret, bad.TokenSecret} {
		if strings.Contains(msg, secret) {
			t.Fatalf("error shows a secret: %s", msg)
		}
	}
	if err := c.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Check with a wrong secret: %v", err)
	}
}

func TestDisabledStreamSaysWhy(t *testing.T) {
	srv := startFake(t, 5)
	c := configured(t, srv.URL(), testCreds, `,"fetch_products":false`)
	_, _, err := collect(t, c, "products")
	if err == nil || !strings.Contains(err.Error(), "fetch_products = false") {
		t.Fatalf("reading a disabled stream: %v", err)
	}
}

func TestSeasonsUseTheSeasonListing(t *testing.T) {
	srv := startFake(t, 30)
	c := configured(t, srv.URL(), testCreds, `,"seasons":["FW26"]`)
	ids, _, err := collect(t, c, "products")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) < 8 || len(ids) > 10 || srv.Requests(api.ProductSeasonList) != 1 || srv.Requests(api.ProductList) != 0 || srv.Requests(api.ProductByID) != 10 {
		t.Fatalf("got %d products with %d season listings", len(ids), srv.Requests(api.ProductSeasonList))
	}
}

// TestDefaultHostIsTheCurrentProductionHost: integrations of 2024-26 call
// https://next.nuorder.com (shared/nuorder-api.md §13.7).
func TestDefaultHostIsTheCurrentProductionHost(t *testing.T) {
	c := New(nil, nil)
	cfg := `{"consumer_key":"a","consumer_secret":"b","token":"c","token_secret":"d"}`
	if err := c.Configure(context.Background(), connector.ConfigureRequest{Config: json.RawMessage(cfg)}); err != nil {
		t.Fatal(err)
	}
	if c.client.base != "https://next.nuorder.com" {
		t.Fatalf("default base_url %s", c.client.base)
	}
}

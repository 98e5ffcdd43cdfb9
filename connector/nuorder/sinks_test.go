package nuorder

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

// rowsOf builds records of a schema from rows of values (nil = null); a
// value's Go type must suit its column: string, float64, bool, time.Time
// (date32).
func rowsOf(schema *arrow.Schema, rows [][]any, perBatch int) []arrow.Record {
	var out []arrow.Record
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	flush := func() {
		if b.Field(0).Len() > 0 {
			out = append(out, b.NewRecord())
		}
	}
	for n, r := range rows {
		for i, v := range r {
			fb := b.Field(i)
			if v == nil {
				fb.AppendNull()
				continue
			}
			switch x := v.(type) {
			case string:
				fb.(*array.StringBuilder).Append(x)
			case float64:
				fb.(*array.Float64Builder).Append(x)
			case bool:
				fb.(*array.BooleanBuilder).Append(x)
			case time.Time:
				fb.(*array.Date32Builder).Append(arrow.Date32FromTime(x))
			}
		}
		if (n+1)%perBatch == 0 {
			flush()
		}
	}
	flush()
	return out
}

type recs struct{ rs []arrow.Record }

func (r *recs) Next() (arrow.Record, error) {
	if len(r.rs) == 0 {
		return nil, io.EOF
	}
	x := r.rs[0]
	r.rs = r.rs[1:]
	return x, nil
}

func write(t *testing.T, c connector.Connector, stream string, schema *arrow.Schema, rows [][]any, dry bool) ([]connector.RowResult, connector.WriteSummary) {
	t.Helper()
	var got []connector.RowResult
	sum, err := c.Write(context.Background(), connector.WriteRequest{Stream: stream, DryRun: dry}, &recs{rowsOf(schema, rows, 1000)}, func(r []connector.RowResult) error {
		got = append(got, r...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) {
		t.Fatalf("%d results for %d rows", len(got), len(rows))
	}
	byRow := make([]connector.RowResult, len(rows))
	for _, r := range got {
		byRow[r.Row] = r
	}
	return byRow, sum
}

func TestInventoryConsolidatesAndPushesPerWarehouse(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 41, Products: 1000}
	srv := startCatalog(t, cat)
	c := configured(t, srv.URL(), testCreds, warehousesConfig(cat, -1))
	whs := cat.Warehouses()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	future := today.AddDate(0, 2, 0)
	// 10,000 rows over 3 warehouses: each SKU appears several times per
	// warehouse and date, given by UPC, and the quantities add up.
	type key struct{ wh, sku, kind string }
	want := map[key]float64{}
	var rows [][]any
	products := map[string]bool{}
	for n := 0; n < 10000; n++ {
		p := cat.Product(n % 1000)
		sizes := p["sizes"].([]map[string]any)
		s := sizes[(n/1000)%len(sizes)]
		wh := whs[n%3]
		date, kind := today, "immediate"
		if n%4 == 0 {
			date, kind = future, "future"
		}
		q := float64(1 + n%7)
		whRef := wh.Code
		if n%2 == 0 {
			whRef = wh.ID // warehouses given by id or by code
		}
		rows = append(rows, []any{nil, s["upc"], nil, nil, whRef, q, date, false})
		want[key{wh.ID, s["_id"].(string), kind}] += q
		products[p["_id"].(string)] = true
	}
	res, sum := write(t, c, "inventory", InventorySchema, rows, false)
	for _, r := range res {
		if r.Error != "" {
			t.Fatalf("row %d rejected: %s", r.Row, r.Error)
		}
	}
	held := 0
	for _, wh := range whs {
		for sku, rs := range srv.Replenishments(wh.ID) {
			for _, rp := range rs {
				held++
				q := want[key{wh.ID, sku, rp.DisplayName}]
				if rp.Quantity == nil || math.Abs(*rp.Quantity-q) > 1e-9 {
					t.Fatalf("%s %s %s: fake holds %v, want %v", wh.Code, sku, rp.DisplayName, rp.Quantity, q)
				}
				if rp.DisplayName == "future" && rp.PeriodStart != future.Format("01/02/2006") {
					t.Fatalf("future replenishment dated %s", rp.PeriodStart)
				}
			}
		}
	}
	if held != len(want) {
		t.Fatalf("fake holds %d replenishments, want %d consolidated ones", held, len(want))
	}
	batchesPerWarehouse := (len(want)/3 + replenishmentBatch - 1) / replenishmentBatch
	if got := srv.Requests(api.Replenishments); got > 3*(batchesPerWarehouse+1) {
		t.Fatalf("%d replenishment requests for %d replenishments over 3 warehouses", got, len(want))
	}
	flagBatches := (len(products) + replenishmentBatch - 1) / replenishmentBatch
	refreshed := map[string]bool{}
	for _, ids := range srv.FlagRefreshes() {
		for _, id := range ids {
			refreshed[id] = true
		}
	}
	if len(srv.FlagRefreshes()) != flagBatches || len(refreshed) != len(products) {
		t.Fatalf("%d flag refreshes covering %d products, want %d covering %d", len(srv.FlagRefreshes()), len(refreshed), flagBatches, len(products))
	}
	t.Logf("10,000 rows -> %d replenishments in %d bulk requests after %d SKU deletes, %d flag refresh(es); summary %+v",
		held, srv.Requests(api.Replenishments), srv.Requests(api.ReplenishmentsDelete), len(srv.FlagRefreshes()), sum.Actions)
}

func TestInventoryRejectsBadRowsAndAppliesTheRest(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 43, Products: 30}
	srv := startCatalog(t, cat)
	c := configured(t, srv.URL(), testCreds, warehousesConfig(cat, -1))
	wh := cat.Warehouses()[0]
	var rows [][]any
	for n := 0; n < 100; n++ {
		s := cat.Product(n % 30)["sizes"].([]map[string]any)[0]
		rows = append(rows, []any{s["_id"], nil, nil, nil, wh.Code, float64(n), nil, false})
	}
	rows[3] = []any{nil, "000000000000", nil, nil, wh.Code, 5.0, nil, false} // unknown UPC
	rows[17][4] = "NOWHERE"                                                  // unknown warehouse
	rows[42][5] = -4.0                                                       // negative quantity
	rows[58][5] = nil                                                        // no quantity
	rows[77] = []any{nil, nil, "nope_brand", "M", wh.Code, 1.0, nil, false}  // unknown brand id + size
	res, _ := write(t, c, "inventory", InventorySchema, rows, false)
	reasons := map[int64]string{}
	for _, r := range res {
		if r.Error != "" {
			reasons[r.Row] = r.Error
		}
	}
	for row, want := range map[int64]string{3: "unknown SKU: upc", 17: "unknown warehouse NOWHERE", 42: "negative quantity", 58: "quantity is missing", 77: "unknown SKU: brand_id nope_brand"} {
		if !strings.Contains(reasons[row], want) {
			t.Fatalf("row %d: %q, want %q", row, reasons[row], want)
		}
	}
	if len(reasons) != 5 {
		t.Fatalf("%d rejected rows: %v", len(reasons), reasons)
	}
	if n := len(srv.Replenishments(wh.ID)); n != 30 {
		t.Fatalf("fake holds replenishments for %d SKUs, want 30", n)
	}
}

func TestInventoryDryRunSendsNothing(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 47, Products: 10}
	srv := startCatalog(t, cat)
	c := configured(t, srv.URL(), testCreds, warehousesConfig(cat, -1))
	s := cat.Product(1)["sizes"].([]map[string]any)[0]
	_, sum := write(t, c, "inventory", InventorySchema, [][]any{{nil, s["upc"], nil, nil, "MAIN", 3.0, nil, false}, {nil, s["upc"], nil, nil, "WEST", nil, nil, true}}, true)
	if srv.Requests(api.Replenishments)+srv.Requests(api.ReplenishmentsDelete)+srv.Requests(api.InventoryFlags) != 0 {
		t.Fatal("a dry run sent writes")
	}
	text := fmt.Sprint(sum.Actions)
	if !strings.Contains(text, "replenishments to MAIN (immediate) 1") || !strings.Contains(text, "replenishments to WEST (prebook) 1") ||
		!strings.Contains(text, "replenishment deletes 2") || !strings.Contains(text, "replenishment requests 2") {
		t.Fatalf("plan: %s", text)
	}
}

func TestFulfillmentTwiceLeavesEachShipmentOnce(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 53, Products: 20, Companies: 5, Orders: 40}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	var approved []int
	for i := 0; i < cat.Orders && len(approved) < 3; i++ {
		if cat.OrderStatus(i) == "approved" {
			approved = append(approved, i)
		}
	}
	o2 := srv.Order(approved[2])
	upc := o2["line_items"].([]map[string]any)[0]["sizes"].([]map[string]any)[0]["upc"]
	shipped := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	rows := [][]any{
		{cat.OrderID(approved[0]), nil, "1ZA1", "UPS", shipped, nil, nil},
		{nil, srv.Order(approved[1])["order_number"], "1ZB1, 1ZB2", "FedEx", shipped, nil, nil},
		{cat.OrderID(approved[2]), nil, "1ZC1", "UPS", shipped, upc, 1.0},
		{cat.OrderID(approved[2]), nil, "1ZC1", "UPS", shipped, "999999999999", 1.0}, // not on the order
		{"000000000000000000000000", nil, "1ZX", "UPS", shipped, nil, nil},           // unknown order
	}
	for run := 1; run <= 2; run++ {
		res, sum := write(t, c, "fulfillment", FulfillmentSchema, rows, false)
		if res[3].Error == "" || !strings.Contains(res[3].Error, "not on order") || !strings.Contains(res[4].Error, "unknown order") {
			t.Fatalf("run %d results: %+v", run, res)
		}
		t.Logf("run %d: %v", run, sum.Actions)
	}
	for k, i := range approved {
		o := srv.Order(i)
		ships, _ := o["shipments"].([]any)
		if len(ships) != 1 || o["status"] != "shipped" {
			t.Fatalf("order %d: %d shipments, status %v", k, len(ships), o["status"])
		}
	}
	tn := srv.Order(approved[1])["shipments"].([]any)[0].(map[string]any)["tracking_numbers"]
	if fmt.Sprint(tn) != "[1ZB1 1ZB2]" {
		t.Fatalf("tracking numbers %v", tn)
	}
}

func TestCompaniesAreCreatedUpdatedAndArchived(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 59, Companies: 10}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	existing := cat.CompanyCode(3)
	rows := [][]any{
		{"NEW001", "Fresh Boutique", "USD", "NET30", nil, nil, "1 Main St", nil, "Austin", "TX", "78701", "US", "Dana Reyes", "dana@demobrand.example"},
		{existing, "Renamed Store", nil, "NET60", nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
		{cat.CompanyCode(4), nil, nil, nil, nil, true, nil, nil, nil, nil, nil, nil, nil, nil},
		{"NEW002", "No Currency", nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
		{"GONE01", nil, nil, nil, nil, true, nil, nil, nil, nil, nil, nil, nil, nil},
	}
	res, sum := write(t, c, "companies", CompaniesSinkSchema, rows, false)
	if res[0].Error != "" || res[1].Error != "" || res[2].Error != "" || !strings.Contains(res[3].Error, "currency_code") || !strings.Contains(res[4].Error, "cannot archive") {
		t.Fatalf("results %+v", res)
	}
	doc, ok := srv.CompanyByCode("NEW001")
	if !ok || doc["name"] != "Fresh Boutique" || doc["active"] != true {
		t.Fatalf("created company: %v", doc)
	}
	if doc, _ := srv.CompanyByCode(existing); doc["name"] != "Renamed Store" || doc["payment_terms"] != "NET60" {
		t.Fatalf("updated company: %v %v", doc["name"], doc["payment_terms"])
	}
	if doc, _ := srv.CompanyByCode(cat.CompanyCode(4)); doc["active"] != false {
		t.Fatalf("archived company is active=%v", doc["active"])
	}
	text := fmt.Sprint(sum.Actions)
	for _, want := range []string{"companies created 1", "companies updated 1", "companies archived 1"} {
		if !strings.Contains(text, want) {
			t.Fatalf("summary %s lacks %s", text, want)
		}
	}
	// The same input again changes nothing.
	writes := srv.Requests(api.CompanyCreate) + srv.Requests(api.CompanyUpdate)
	_, sum = write(t, c, "companies", CompaniesSinkSchema, rows, false)
	if got := srv.Requests(api.CompanyCreate) + srv.Requests(api.CompanyUpdate); got != writes {
		t.Fatalf("the second run made %d more writes: %v", got-writes, sum.Actions)
	}
}

// TestInventoryPushReplacesEachPushedSKU: NuOrder's bulk PUT upserts
// (shared/nuorder-api.md §13.2), so a push must delete a SKU's replenishments
// before sending its new set: push A (immediate and two future dates for a
// SKU), then push B (one immediate row) leaves exactly B's row. A SKU push B
// does not name keeps what push A gave it.
func TestInventoryPushReplacesEachPushedSKU(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 59, Products: 10}
	srv := startCatalog(t, cat)
	c := configured(t, srv.URL(), testCreds, warehousesConfig(cat, -1))
	wh := cat.Warehouses()[0]
	sizes := cat.Product(2)["sizes"].([]map[string]any)
	x, y := sizes[0]["_id"].(string), sizes[1]["_id"].(string)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	pushA := [][]any{
		{x, nil, nil, nil, wh.Code, 10.0, nil, false},
		{x, nil, nil, nil, wh.Code, 5.0, today.AddDate(0, 1, 0), false},
		{x, nil, nil, nil, wh.Code, 7.0, today.AddDate(0, 2, 0), false},
		{y, nil, nil, nil, wh.Code, 4.0, nil, false},
	}
	write(t, c, "inventory", InventorySchema, pushA, false)
	if n := len(srv.Replenishments(wh.ID)[x]); n != 3 {
		t.Fatalf("after push A the fake holds %d replenishments for the SKU, want 3", n)
	}
	deletes, puts := srv.Requests(api.ReplenishmentsDelete), srv.Requests(api.Replenishments)
	res, sum := write(t, c, "inventory", InventorySchema, [][]any{{x, nil, nil, nil, wh.Code, 3.0, nil, false}}, false)
	if res[0].Error != "" {
		t.Fatalf("push B rejected: %s", res[0].Error)
	}
	held := srv.Replenishments(wh.ID)
	if len(held[x]) != 1 || held[x][0].DisplayName != "immediate" || *held[x][0].Quantity != 3 {
		t.Fatalf("after push B the fake holds %+v for the SKU, want B's one immediate row of 3", held[x])
	}
	if len(held[y]) != 1 || *held[y][0].Quantity != 4 {
		t.Fatalf("a SKU push B did not name now holds %+v", held[y])
	}
	if d, p := srv.Requests(api.ReplenishmentsDelete)-deletes, srv.Requests(api.Replenishments)-puts; d != 1 || p != 1 {
		t.Fatalf("push B made %d deletes and %d bulk requests, want 1 and 1", d, p)
	}
	if text := fmt.Sprint(sum.Actions); !strings.Contains(text, "replenishment deletes 1") || !strings.Contains(text, "replenishment requests 1") {
		t.Fatalf("summary %s does not count the requests", text)
	}
}

// writeWithLedger writes rows with a ledger and returns the summary.
func writeWithLedger(t *testing.T, c connector.Connector, rows [][]any, ledger []byte) connector.WriteSummary {
	t.Helper()
	sum, err := c.Write(context.Background(), connector.WriteRequest{Stream: "inventory", Ledger: ledger}, &recs{rowsOf(InventorySchema, rows, 1000)},
		func(r []connector.RowResult) error {
			for _, x := range r {
				if x.Error != "" {
					t.Fatalf("row %d rejected: %s", x.Row, x.Error)
				}
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestInventoryLedgerSkipsUnchangedSKUs: with the ledger of the last push,
// a push sends (delete + PUT) only the SKUs whose set changed since.
func TestInventoryLedgerSkipsUnchangedSKUs(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 61, Products: 40}
	srv := startCatalog(t, cat)
	c := configured(t, srv.URL(), testCreds, warehousesConfig(cat, -1))
	wh := cat.Warehouses()[1]
	var rows [][]any
	for p := 0; p < 40; p++ {
		rows = append(rows, []any{cat.Product(p)["sizes"].([]map[string]any)[0]["_id"], nil, nil, nil, wh.ID, float64(p + 1), nil, false})
	}
	first := writeWithLedger(t, c, rows, nil)
	if srv.Requests(api.ReplenishmentsDelete) != 40 || first.Ledger == nil {
		t.Fatalf("first push: %d deletes, ledger %d bytes", srv.Requests(api.ReplenishmentsDelete), len(first.Ledger))
	}
	writes := func() int {
		return srv.Requests(api.ReplenishmentsDelete) + srv.Requests(api.Replenishments) + srv.Requests(api.InventoryFlags)
	}
	before := writes()
	again := writeWithLedger(t, c, rows, first.Ledger)
	if n := writes() - before; n != 0 || !strings.Contains(fmt.Sprint(again.Actions), "SKUs unchanged since the last push (not sent) 40") {
		t.Fatalf("the same push again made %d write requests, summary %v", n, again.Actions)
	}
	rows[7][5] = 99.0
	deletes, puts := srv.Requests(api.ReplenishmentsDelete), srv.Requests(api.Replenishments)
	writeWithLedger(t, c, rows, again.Ledger)
	if d, p := srv.Requests(api.ReplenishmentsDelete)-deletes, srv.Requests(api.Replenishments)-puts; d != 1 || p != 1 {
		t.Fatalf("one SKU changed: %d deletes, %d bulk requests", d, p)
	}
	if q := *srv.Replenishments(wh.ID)[rows[7][0].(string)][0].Quantity; q != 99 {
		t.Fatalf("the changed SKU holds %v", q)
	}
	// Without a ledger (--full-refresh), everything is sent again.
	deletes = srv.Requests(api.ReplenishmentsDelete)
	writeWithLedger(t, c, rows, nil)
	if d := srv.Requests(api.ReplenishmentsDelete) - deletes; d != 40 {
		t.Fatalf("a push without a ledger deleted %d SKU sets, want 40", d)
	}
}

// TestCompanyConflictAfterNotFoundIsARowError: reading a company by code
// answers 404 (the route is assumed, shared/nuorder-api.md §13.6) while
// creating it answers 409: the row is rejected with both facts, after a
// bounded number of requests, instead of looping.
func TestCompanyConflictAfterNotFoundIsARowError(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 67, Companies: 5}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	srv.InjectFault(api.CompanyByCode, fakeapi.Fault{Status: 404})
	done := make(chan []connector.RowResult, 1)
	go func() {
		res, _ := write(t, c, "companies", CompaniesSinkSchema, [][]any{{cat.CompanyCode(1), "Renamed", "USD", nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil}}, false)
		done <- res
	}()
	select {
	case res := <-done:
		if !strings.Contains(res[0].Error, "409") || !strings.Contains(res[0].Error, "404") {
			t.Fatalf("row result %q, want a rejection naming the 404 and the 409", res[0].Error)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("404 then 409 loops")
	}
	if n := srv.Requests(api.CompanyCreate); n > 2 {
		t.Fatalf("%d create requests for one row", n)
	}
}

// TestCompaniesForceUpsert: method = "force" sends each row with the upsert
// production integrations use (PUT /api/company/new/force, S4), without
// reading the company first, and still counts what was created, updated and
// archived.
func TestCompaniesForceUpsert(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 71, Companies: 10}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	rows := [][]any{
		{"NEW101", "Force Boutique", "USD", "NET30", nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
		{cat.CompanyCode(2), "Forced Rename", nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
		{cat.CompanyCode(5), nil, nil, nil, nil, true, nil, nil, nil, nil, nil, nil, nil, nil},
	}
	var got []connector.RowResult
	sum, err := c.Write(context.Background(), connector.WriteRequest{Stream: "companies", Options: map[string]string{"method": "force"}},
		&recs{rowsOf(CompaniesSinkSchema, rows, 10)}, func(r []connector.RowResult) error { got = append(got, r...); return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if r.Error != "" {
			t.Fatalf("row %d: %s", r.Row, r.Error)
		}
	}
	if srv.Requests(api.CompanyByCode)+srv.Requests(api.CompanyCreate)+srv.Requests(api.CompanyUpdate) != 0 || srv.Requests(api.CompanyForce) != 3 {
		t.Fatalf("force made %d reads, %d creates, %d updates, %d force upserts", srv.Requests(api.CompanyByCode),
			srv.Requests(api.CompanyCreate), srv.Requests(api.CompanyUpdate), srv.Requests(api.CompanyForce))
	}
	text := fmt.Sprint(sum.Actions)
	for _, want := range []string{"companies created 1", "companies updated 1", "companies archived 1"} {
		if !strings.Contains(text, want) {
			t.Fatalf("summary %s lacks %s", text, want)
		}
	}
	if doc, _ := srv.CompanyByCode(cat.CompanyCode(2)); doc["name"] != "Forced Rename" || doc["currency_code"] == nil {
		t.Fatalf("force-updated company %v", doc)
	}
	if doc, _ := srv.CompanyByCode(cat.CompanyCode(5)); doc["active"] != false {
		t.Fatalf("force-archived company active=%v", doc["active"])
	}
	if doc, ok := srv.CompanyByCode("NEW101"); !ok || doc["name"] != "Force Boutique" {
		t.Fatalf("force-created company %v", doc)
	}
}

// TestFulfillmentByNumberOnlyMovesStatus: with record_shipments = false and
// an export that has order numbers only, each order moves to shipped with
// the route production uses (PUT /api/order/number/{n}/shipped, shared/
// nuorder-api.md §13.5), without reading the order or the assumed shipments
// update; a second run finds them shipped (NuOrder's 304) and counts them so;
// an unknown number is a row rejection.
func TestFulfillmentByNumberOnlyMovesStatus(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 79, Products: 10, Companies: 5, Orders: 40}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	approved := ordersIn(cat, "approved", 2)
	shipped := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	rows := [][]any{
		{nil, srv.Order(approved[0])["order_number"], "1ZA1", "UPS", shipped, nil, nil},
		{nil, srv.Order(approved[1])["order_number"], "1ZB1", "UPS", shipped, nil, nil},
		{nil, srv.Order(approved[1])["order_number"], "1ZB2", "UPS", shipped, nil, nil},
		{nil, "999999999", "1ZX", "UPS", shipped, nil, nil},
	}
	opts := map[string]string{"record_shipments": "false"}
	for run := 1; run <= 2; run++ {
		var res []connector.RowResult
		sum, err := c.Write(context.Background(), connector.WriteRequest{Stream: "fulfillment", Options: opts},
			&recs{rowsOf(FulfillmentSchema, rows, 10)}, func(r []connector.RowResult) error { res = append(res, r...); return nil })
		if err != nil {
			t.Fatal(err)
		}
		errs := map[int64]string{}
		for _, r := range res {
			errs[r.Row] = r.Error
		}
		if len(res) != 4 || errs[0] != "" || errs[1] != "" || errs[2] != "" || !strings.Contains(errs[3], "404") {
			t.Fatalf("run %d results %+v", run, res)
		}
		want := "orders marked shipped 2"
		if run == 2 {
			want = "orders already shipped (not changed) 2"
		}
		if !strings.Contains(fmt.Sprint(sum.Actions), want) {
			t.Fatalf("run %d summary %v, want %q", run, sum.Actions, want)
		}
	}
	for _, i := range approved {
		if o := srv.Order(i); o["status"] != "shipped" || !jsonEqual(o["shipments"], []any{}) {
			t.Fatalf("order %d: status %v, shipments %v", i, o["status"], o["shipments"])
		}
	}
	if srv.Requests(api.OrderByNumber)+srv.Requests(api.OrderUpdate)+srv.Requests(api.OrderSetStatus) != 0 || srv.Requests(api.OrderSetStatusByNumber) != 6 {
		t.Fatalf("%d reads, %d updates, %d status changes by id, %d by number", srv.Requests(api.OrderByNumber), srv.Requests(api.OrderUpdate),
			srv.Requests(api.OrderSetStatus), srv.Requests(api.OrderSetStatusByNumber))
	}
}

// TestFulfillmentOfACancelledOrderIsRejected: NuOrder locks cancelled
// orders (shared/nuorder-api.md §7.1), and so does the fake: shipping one is
// a rejected row carrying NuOrder's answer, not a silent success.
func TestFulfillmentOfACancelledOrderIsRejected(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 101, Products: 10, Companies: 5, Orders: 60}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	i := ordersIn(cat, "cancelled", 1)[0]
	for _, opts := range []map[string]string{nil, {"record_shipments": "false"}} {
		var res []connector.RowResult
		_, err := c.Write(context.Background(), connector.WriteRequest{Stream: "fulfillment", Options: opts},
			&recs{rowsOf(FulfillmentSchema, [][]any{{cat.OrderID(i), nil, "1ZQ", "UPS", nil, nil, nil}}, 10)},
			func(r []connector.RowResult) error { res = append(res, r...); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || !strings.Contains(res[0].Error, "locked") {
			t.Fatalf("options %v: shipping a cancelled order gave %+v", opts, res)
		}
	}
	if srv.Order(i)["status"] != "cancelled" {
		t.Fatalf("the cancelled order is now %v", srv.Order(i)["status"])
	}
}

// TestInventoryRejectsNonNumbersAndOverflow: NaN, infinities and quantities
// whose sum overflows are rejected rows with a reason, not a failed push
// ("json: unsupported value"); the other rows are sent.
func TestInventoryRejectsNonNumbersAndOverflow(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 131, Products: 10}
	srv := startCatalog(t, cat)
	c := configured(t, srv.URL(), testCreds, warehousesConfig(cat, -1))
	wh := cat.Warehouses()[0]
	sku := func(p int) any { return cat.Product(p)["sizes"].([]map[string]any)[0]["_id"] }
	rows := [][]any{
		{sku(1), nil, nil, nil, wh.Code, math.NaN(), nil, false},
		{sku(2), nil, nil, nil, wh.Code, math.Inf(1), nil, false},
		{sku(3), nil, nil, nil, wh.Code, 1e308, nil, false},
		{sku(3), nil, nil, nil, wh.Code, 1e308, nil, false}, // the sum overflows
		{sku(4), nil, nil, nil, wh.Code, 7.0, nil, false},
		{sku(5), nil, nil, nil, wh.Code, 1e18, nil, false}, // beyond what NuOrder holds exactly (was accepted)
		{sku(6), nil, nil, nil, wh.Code, float64(1 << 52), nil, false},
		{sku(6), nil, nil, nil, wh.Code, float64(1 << 52), nil, false}, // the sum is 2^53
	}
	res, _ := write(t, c, "inventory", InventorySchema, rows, false)
	for i, want := range []string{"not a number", "infinite", "too large", "too large", "", "too large", "too large", "too large"} {
		if !strings.Contains(res[i].Error, want) || (want == "") != (res[i].Error == "") {
			t.Fatalf("row %d: %q, want %q", i, res[i].Error, want)
		}
	}
	if got := srv.Replenishments(wh.ID); len(got) != 1 || got[sku(4).(string)] == nil {
		t.Fatalf("the fake holds %v, want only the good row's SKU", got)
	}
}

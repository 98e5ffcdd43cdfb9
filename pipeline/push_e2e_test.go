package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

// examplesDir copies examples/ into a temp dir and returns the copy's
// sinks.hcl. The examples name no plugin: the host finds the freshly built
// one beside itself.
func examplesDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir("../examples")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("../examples", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "sinks.hcl")
}

// sandboxFake serves the sandbox catalog (the one examples/ refers to) with
// the e2e credentials; env points the example pipelines at it.
func sandboxFake(t *testing.T) (*fakeapi.Server, []string) {
	t.Helper()
	return sandboxFakeWith(t, fakeapi.Options{Catalog: fakeapi.SandboxCatalog})
}

// sandboxFakeWith is sandboxFake with options of its own (a catalog, a
// latency); the server stops when the test ends.
func sandboxFakeWith(t *testing.T, opts fakeapi.Options) (*fakeapi.Server, []string) {
	t.Helper()
	opts.Credentials = e2eCreds
	srv, err := fakeapi.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := e2eCreds
	return srv, []string{"NUORDER_BASE_URL=" + srv.URL(), "NUORDER_CONSUMER_KEY=" + c.ConsumerKey, "NUORDER_CONSUMER_SECRET=" + c.ConsumerSecret,
		"NUORDER_TOKEN=" + c.Token, "NUORDER_TOKEN_SECRET=" + c.TokenSecret}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestStockExampleAppliesGoodRowsAndRejectsBadOnes(t *testing.T) {
	srv, env := sandboxFake(t)
	path := examplesDir(t)
	dir := filepath.Dir(path)
	r := runPipeline(t, dir, env, "run", "-f", path, "stock")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "stock: 5 rejected row(s)") {
		t.Fatalf("summary:\n%s", r.stdout)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "rejects", "stock-*.csv"))
	if len(files) != 1 {
		t.Fatalf("rejects files: %v", files)
	}
	rows := readCSV(t, files[0])
	want := map[string]string{"12": "unknown SKU: upc 899999999999", "28": "unknown warehouse NORTH", "49": "negative quantity -12",
		"67": "is not a date in the format %m/%d/%Y", "91": "quantity is missing"}
	if len(rows) != 6 || strings.Join(rows[0], ",") != "row,line,column,value,reason" {
		t.Fatalf("rejects file:\n%v", rows)
	}
	for _, row := range rows[1:] {
		if !strings.Contains(row[4], want[row[0]]) || want[row[0]] == "" {
			t.Fatalf("reject %v: want row %s to say %q", row, row[0], want[row[0]])
		}
		delete(want, row[0])
	}
	// The 95 good rows are applied: every accepted stock row is held.
	held := 0
	for _, wh := range fakeapi.SandboxCatalog.Warehouses() {
		for _, rs := range srv.Replenishments(wh.ID) {
			held += len(rs)
		}
	}
	if held == 0 || srv.Requests(api.Replenishments) != 3 || len(srv.FlagRefreshes()) != 1 {
		t.Fatalf("fake holds %d replenishments after %d requests and %d flag refreshes", held, srv.Requests(api.Replenishments), len(srv.FlagRefreshes()))
	}
	if !strings.Contains(r.stdout, "stock  ") || !strings.Contains(r.stdout, " 95 ") {
		t.Fatalf("summary does not count 95 accepted rows:\n%s", r.stdout)
	}
}

func TestTenThousandInventoryRowsLandConsolidated(t *testing.T) {
	srv, env := sandboxFake(t)
	cat := fakeapi.SandboxCatalog
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "stock.csv"))
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write([]string{"SKU", "Warehouse", "Qty", "Available"})
	whs := cat.Warehouses()
	today := time.Now().UTC()
	type key struct{ wh, sku, kind string }
	want := map[key]float64{}
	products := map[string]bool{}
	for n := 0; n < 10000; n++ {
		p := cat.Product(n % cat.Products)
		sizes := p["sizes"].([]map[string]any)
		s := sizes[(n/cat.Products)%len(sizes)]
		wh := whs[n%3]
		date, kind := today.Format("2006-01-02"), "immediate"
		if n%5 == 0 {
			date, kind = today.AddDate(0, 3, 0).Format("2006-01-02"), "future"
		}
		w.Write([]string{s["_id"].(string), wh.Code, fmt.Sprint(n%9 + 1), date})
		want[key{wh.ID, s["_id"].(string), kind}] += float64(n%9 + 1)
		products[p["_id"].(string)] = true
	}
	w.Flush()
	f.Close()
	path := writeFile(t, fmt.Sprintf(`
%spipeline "stock" {
  from    = connector.files.csv
  options = { path = %q }
  to      = connector.nuorder.inventory
  columns = { sku_id = "SKU", warehouse = "Warehouse", quantity = "Qty", date = "Available" }
}
`, envConnector(warehousesHCL(whs)), filepath.Join(dir, "stock.csv")))
	r := runPipeline(t, filepath.Dir(path), env, "run", "-f", path)
	if r.code != 0 || !strings.Contains(r.stdout, " 10000 ") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	held := 0
	for _, wh := range whs {
		for sku, rs := range srv.Replenishments(wh.ID) {
			for _, rp := range rs {
				held++
				if rp.Quantity == nil || *rp.Quantity != want[key{wh.ID, sku, rp.DisplayName}] {
					t.Fatalf("%s %s %s holds %v, want %v", wh.Code, sku, rp.DisplayName, rp.Quantity, want[key{wh.ID, sku, rp.DisplayName}])
				}
			}
		}
	}
	if held != len(want) {
		t.Fatalf("fake holds %d replenishments, want the %d consolidated ones", held, len(want))
	}
	perWarehouse := (len(want)/3 + 499) / 500
	if got := srv.Requests(api.Replenishments); got > 3*perWarehouse+3 {
		t.Fatalf("%d requests for %d replenishments over 3 warehouses (batches of 500)", got, len(want))
	}
	if got, wantRefresh := len(srv.FlagRefreshes()), (len(products)+499)/500; got != wantRefresh {
		t.Fatalf("%d flag refreshes for %d products, want %d", got, len(products), wantRefresh)
	}
	t.Logf("10,000 rows -> %d replenishments in %d requests after %d SKU deletes; %d flag refresh(es) for %d products",
		held, srv.Requests(api.Replenishments), srv.Requests(api.ReplenishmentsDelete), len(srv.FlagRefreshes()), len(products))

	// The same file again: the ledger the host kept says NuOrder holds all
	// of it, so nothing is sent; --full-refresh sends it all again.
	writes := func() int {
		return srv.Requests(api.Replenishments) + srv.Requests(api.ReplenishmentsDelete) + srv.Requests(api.InventoryFlags)
	}
	before := writes()
	r = runPipeline(t, filepath.Dir(path), env, "run", "-f", path)
	if r.code != 0 || writes() != before || !strings.Contains(r.stdout, "SKUs unchanged since the last push (not sent)") {
		t.Fatalf("second push: exit %d, %d write requests\n%s\n%s", r.code, writes()-before, r.stdout, r.stderr)
	}
	deletes := srv.Requests(api.ReplenishmentsDelete)
	if r = runPipeline(t, filepath.Dir(path), env, "run", "-f", path, "--full-refresh"); r.code != 0 || srv.Requests(api.ReplenishmentsDelete) == deletes {
		t.Fatalf("--full-refresh push: exit %d, %d deletes\n%s", r.code, srv.Requests(api.ReplenishmentsDelete)-deletes, r.stderr)
	}
}

// warehousesHCL is the nuorder config's warehouses attribute naming whs.
func warehousesHCL(whs []fakeapi.Warehouse) string {
	var b strings.Builder
	b.WriteString("\n    warehouses = [")
	for _, w := range whs {
		fmt.Fprintf(&b, "\n      { id = %q, code = %q },", w.ID, w.Code)
	}
	b.WriteString("\n    ]")
	return b.String()
}

func TestShipmentsTwiceLeaveEachShipmentOnce(t *testing.T) {
	srv, env := sandboxFake(t)
	path := examplesDir(t)
	for run := 1; run <= 2; run++ {
		r := runPipeline(t, filepath.Dir(path), env, "run", "-f", path, "shipments")
		if r.code != 0 {
			t.Fatalf("run %d: exit %d\n%s", run, r.code, r.stderr)
		}
		if run == 2 && !strings.Contains(r.stdout, "shipments already on the order (not added again): 4") {
			t.Fatalf("second run:\n%s", r.stdout)
		}
	}
	rows := readCSV(t, filepath.Join(filepath.Dir(path), "shipments.csv"))[1:]
	numbers := map[string]map[string]bool{}
	for _, row := range rows {
		if numbers[row[0]] == nil {
			numbers[row[0]] = map[string]bool{}
		}
		numbers[row[0]][row[1]] = true
	}
	for num, tracking := range numbers {
		var i int
		fmt.Sscan(num, &i)
		o := srv.Order(i - 100000)
		ships, _ := o["shipments"].([]any)
		if len(ships) != len(tracking) || o["status"] != "shipped" {
			t.Fatalf("order %s: %d shipments (want %d), status %v", num, len(ships), len(tracking), o["status"])
		}
	}
	if srv.Requests(api.OrderUpdate) != 3 {
		t.Fatalf("%d order updates for 3 orders over two runs", srv.Requests(api.OrderUpdate))
	}
}

func TestCustomersAreCreatedUpdatedAndArchived(t *testing.T) {
	srv, env := sandboxFake(t)
	path := examplesDir(t)
	r := runPipeline(t, filepath.Dir(path), env, "run", "-f", path, "customers")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"companies created: 2", "companies updated: 1", "companies archived: 1"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	if c, ok := srv.CompanyByCode("ERP-20002"); !ok || c["name"] != "Maison Lumiere" || c["currency_code"] != "EUR" {
		t.Fatalf("created company: %v", c)
	}
	cat := fakeapi.SandboxCatalog
	if c, _ := srv.CompanyByCode(cat.CompanyCode(3)); c["payment_terms"] != "NET45" {
		t.Fatalf("updated company: %v", c["payment_terms"])
	}
	if c, _ := srv.CompanyByCode(cat.CompanyCode(5)); c["active"] != false {
		t.Fatalf("archived company active = %v", c["active"])
	}
}

func TestPlanSendsNothing(t *testing.T) {
	srv, env := sandboxFake(t)
	path := examplesDir(t)
	r := runPipeline(t, filepath.Dir(path), env, "plan", "-f", path)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"95 row(s) would be accepted, 5 rejected", "replenishments to MAIN (immediate): 20",
		"orders marked shipped: 3", "companies to create: 2", "companies to update: 1", "companies to archive: 1",
		"row 28 (line 29): unknown warehouse NORTH"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("plan lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, e := range []api.Endpoint{api.Replenishments, api.InventoryFlags, api.OrderUpdate, api.OrderSetStatus, api.CompanyCreate, api.CompanyUpdate} {
		if n := srv.Requests(e); n != 0 {
			t.Fatalf("plan called %s %d times", e.Pattern(), n)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "rejects", "*")); len(files) != 0 {
		t.Fatalf("plan wrote rejects: %v", files)
	}
}

func TestValidateReportsAMappingToAColumnTheStreamLacks(t *testing.T) {
	path := writeFile(t, fmt.Sprintf(`connector "nuorder" {
  plugin = %q
}
pipeline "stock" {
  from    = connector.files.csv
  options = { path = "stock.csv" }
  to      = connector.nuorder.inventory
  columns = { upc = "UPC", qty = "Avail" }
}
`, plugin("nuorder")))
	r := runPipeline(t, filepath.Dir(path), nil, "validate", "--sandbox", "-f", path)
	if r.code == 0 || !strings.Contains(r.stderr, path+":8:28") || !strings.Contains(r.stderr, `no column "qty"`) {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

// TestRejectsAreSafeToOpenAndHoldABigCellOnce: cells that a spreadsheet would
// run as formulas are neutralised with a leading apostrophe, and a huge bad
// cell is stored once (its value), not again in the reason.
func TestRejectsAreSafeToOpenAndHoldABigCellOnce(t *testing.T) {
	srv, env := sandboxFake(t)
	_ = srv
	dir := t.TempDir()
	sku := fakeapi.SandboxCatalog.Product(1)["sizes"].([]map[string]any)[0]["_id"].(string)
	huge := strings.Repeat("9x", 500_000) // 1 MB, not a number
	csvText := "SKU,Warehouse,Qty\n" +
		sku + ",MAIN,\"=HYPERLINK(\"\"http://evil.example\"\")\"\n" +
		sku + ",MAIN,@SUM(A1)\n" +
		sku + ",MAIN," + huge + "\n" +
		sku + ",MAIN,4\n"
	os.WriteFile(filepath.Join(dir, "stock.csv"), []byte(csvText), 0o644)
	path := writeFile(t, fmt.Sprintf(`
%spipeline "stock" {
  from    = connector.files.csv
  options = { path = %q }
  to      = connector.nuorder.inventory
  columns = { sku_id = "SKU", warehouse = "Warehouse", quantity = "Qty" }
  rejects = "rejects"
}
`, envConnector(warehousesHCL(fakeapi.SandboxCatalog.Warehouses())), filepath.Join(dir, "stock.csv")))
	r := runPipeline(t, filepath.Dir(path), env, "run", "-f", path)
	if r.code != 0 || !strings.Contains(r.stdout, "3 rejected") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "rejects", "stock-*.csv"))
	if len(files) != 1 {
		t.Fatalf("rejects files %v", files)
	}
	fi, _ := os.Stat(files[0])
	if fi.Size() > int64(len(huge))+10_000 {
		t.Fatalf("the rejects file is %d bytes for a %d-byte bad cell: stored twice", fi.Size(), len(huge))
	}
	rows := readCSV(t, files[0])
	for _, row := range rows[1:] {
		for _, cell := range row[2:] {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Fatalf("a rejects cell a spreadsheet would run: %q", cell[:min(len(cell), 60)])
			}
		}
	}
	if rows[1][3] != `'=HYPERLINK("http://evil.example")` {
		t.Fatalf("the neutralised value is %q", rows[1][3])
	}
}

// TestAMalformedLineIsARejectNotTheEndOfThePush: 3,000 customers with an
// unterminated quote and a ragged row in the middle: both go to the rejects
// file with their line and reason, and every other customer is sent.
func TestAMalformedLineIsARejectNotTheEndOfThePush(t *testing.T) {
	srv, env := sandboxFake(t)
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("Customer No,Customer Name,Currency\n")
	for i := 1; i <= 3000; i++ {
		switch i {
		case 1200:
			fmt.Fprintf(&b, "N%05d,\"Unterminated Name,USD\n", i)
		case 2400:
			fmt.Fprintf(&b, "N%05d,Ragged,USD,extra\n", i)
		default:
			fmt.Fprintf(&b, "N%05d,\"Store %d, Inc\",USD\n", i, i)
		}
	}
	os.WriteFile(filepath.Join(dir, "customers.csv"), []byte(b.String()), 0o644)
	path := writeFile(t, fmt.Sprintf(`
%spipeline "customers" {
  from       = connector.files.csv
  options    = { path = %q }
  to         = connector.nuorder.companies
  to_options = { method = "force" }
  columns    = { code = "Customer No", name = "Customer Name", currency_code = "Currency" }
}
`, envConnector(""), filepath.Join(dir, "customers.csv")))
	r := runPipeline(t, filepath.Dir(path), env, "run", "-f", path)
	if r.code != 0 || !strings.Contains(r.stdout, "customers: 2 rejected") || rowsOf(t, r.stdout, "customers") != 2998 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if n := srv.Requests(api.CompanyForce); n != 2998 {
		t.Fatalf("%d companies sent, want 2998", n)
	}
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "rejects", "customers-*.csv"))
	rows := readCSV(t, files[0])
	if len(rows) != 3 || rows[1][1] != "1201" || !strings.Contains(rows[1][4], "never closed") || rows[2][1] != "2401" || !strings.Contains(rows[2][4], "4 fields") {
		t.Fatalf("rejects: %v", rows)
	}
	if _, ok := srv.CompanyByCode("N03000"); !ok {
		t.Fatal("the last customer was not sent")
	}
}

// envConnector is a nuorder connector block taking its base URL and
// credentials from the environment (as sandboxFake sets them), with extra
// attributes added to its config.
func envConnector(extra string) string {
	return fmt.Sprintf(`connector "nuorder" {
  plugin = %q
  config {
    base_url        = env("NUORDER_BASE_URL")
    consumer_key    = env("NUORDER_CONSUMER_KEY")
    consumer_secret = env("NUORDER_CONSUMER_SECRET")
    token           = env("NUORDER_TOKEN")
    token_secret    = env("NUORDER_TOKEN_SECRET")%s
  }
}
`, plugin("nuorder"), extra)
}

// TestOrderStatusesMoveOnceAndLockedOrdersAreRefused: the example's
// statuses push moves orders by number (two cancellations, one back to
// pending, one shipped); run again it sends no request at all; plan sends
// no write; a cancelled order asked for another status, and an unknown
// number, are rejected with their reasons.
func TestOrderStatusesMoveOnceAndLockedOrdersAreRefused(t *testing.T) {
	srv, env := sandboxFake(t)
	path := examplesDir(t)
	dir := filepath.Dir(path)
	cat := fakeapi.SandboxCatalog
	writes := func() int {
		return srv.Requests(api.OrderSetStatusByNumber) + srv.Requests(api.OrderSetStatus)
	}
	r := runPipeline(t, dir, env, "plan", "-f", path, "statuses")
	if r.code != 0 || writes() != 0 || !strings.Contains(r.stdout, "orders to move to cancelled: 2") {
		t.Fatalf("plan: exit %d, %d writes\n%s%s", r.code, writes(), r.stdout, r.stderr)
	}
	r = runPipeline(t, dir, env, "run", "-f", path, "statuses")
	if r.code != 0 || !strings.Contains(r.stdout, "orders moved to cancelled: 2") {
		t.Fatalf("run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for i, want := range map[int]string{6: "cancelled", 7: "cancelled", 12: "pending", 3: "shipped"} {
		if got := srv.Order(i)["status"]; got != want {
			t.Fatalf("order %v is %v, want %s", cat.Order(i)["order_number"], got, want)
		}
	}
	before := srv.TotalRequests()
	r = runPipeline(t, dir, env, "run", "-f", path, "statuses")
	if r.code != 0 || srv.TotalRequests() != before || !strings.Contains(r.stdout, "by an earlier push (not sent)") {
		t.Fatalf("second run: exit %d, %d requests\n%s%s", r.code, srv.TotalRequests()-before, r.stdout, r.stderr)
	}

	// A cancelled order cannot move; an unknown number is no order.
	os.WriteFile(filepath.Join(dir, "order_status.csv"), []byte("Order #,ERP Status\n100006,approved\n999999,cancelled\n100013,on hold\n"), 0o644)
	r = runPipeline(t, dir, env, "run", "-f", path, "statuses")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "rejects", "statuses-*.csv"))
	if len(files) != 1 {
		t.Fatalf("rejects files %v\n%s", files, r.stdout)
	}
	rejects := readCSV(t, files[0])
	text := fmt.Sprint(rejects)
	for _, want := range []string{"NuOrder locks cancelled orders: it cannot move to approved", "no order 999999", `"on hold" is not one of`} {
		if !strings.Contains(text, want) {
			t.Fatalf("rejects lack %q:\n%v", want, rejects)
		}
	}
	if srv.Order(6)["status"] != "cancelled" {
		t.Fatal("a cancelled order moved")
	}
}

// TestNewOrdersAreCreatedOnceAndBadOnesRejectedBeforeSending: the
// example's new_orders push creates the two good orders of three (the third
// has an unknown UPC and is rejected whole, before anything is sent), with
// their lines, sizes and retailer; plan creates nothing; run again it
// creates nothing new; an order number NuOrder already has is left alone.
func TestNewOrdersAreCreatedOnceAndBadOnesRejectedBeforeSending(t *testing.T) {
	srv, env := sandboxFake(t)
	path := examplesDir(t)
	dir := filepath.Dir(path)
	r := runPipeline(t, dir, env, "plan", "-f", path, "new_orders")
	if r.code != 0 || srv.Requests(api.OrderCreate) != 0 || !strings.Contains(r.stdout, "orders to create: 2") {
		t.Fatalf("plan: exit %d, %d creates\n%s%s", r.code, srv.Requests(api.OrderCreate), r.stdout, r.stderr)
	}
	r = runPipeline(t, dir, env, "run", "-f", path, "new_orders")
	if r.code != 0 || !strings.Contains(r.stdout, "orders created: 2") {
		t.Fatalf("run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	created := srv.CreatedOrders()
	if len(created) != 2 || created[0]["order_number"] != "PH-24001" || created[1]["order_number"] != "PH-24002" {
		t.Fatalf("created %v", created)
	}
	lines, _ := created[0]["line_items"].([]any)
	retailer, _ := created[0]["retailer"].(map[string]any)
	if len(lines) != 2 || retailer["retailer_code"] != "C010000" || created[0]["external_id"] != "EDI-77001" || created[0]["ship_start"] != "2026-12-01T00:00:00.000Z" {
		t.Fatalf("order PH-24001 as created: %v", created[0])
	}
	files, _ := filepath.Glob(filepath.Join(dir, "rejects", "new_orders-*.csv"))
	if len(files) != 1 || !strings.Contains(fmt.Sprint(readCSV(t, files[0])), "order PH-24003 not created: unknown SKU: upc 999999999999") {
		t.Fatalf("rejects %v", files)
	}
	// Again: the ledger knows both; PH-24003 is still rejected before sending.
	r = runPipeline(t, dir, env, "run", "-f", path, "new_orders")
	if r.code != 0 || srv.Requests(api.OrderCreate) != 2 || len(srv.CreatedOrders()) != 2 || !strings.Contains(r.stdout, "by an earlier push (not sent): 2") {
		t.Fatalf("second run: exit %d, %d creates\n%s%s", r.code, srv.Requests(api.OrderCreate), r.stdout, r.stderr)
	}
	// A number NuOrder has (a generated order), asked with --full-refresh
	// (no ledger): read first, not created.
	os.WriteFile(filepath.Join(dir, "new_orders.csv"), []byte("Order No,EDI Ref,Currency,Ship From,Ship To,Customer,Buyer Email,PO,UPC,Qty,Unit Price\n"+
		"100001,EDI-1,USD,12/01/2026,12/31/2026,C010000,b@x.example,,800000000000,1,\n"), 0o644)
	r = runPipeline(t, dir, env, "run", "-f", path, "--full-refresh", "new_orders")
	if r.code != 0 || srv.Requests(api.OrderCreate) != 2 || !strings.Contains(r.stdout, "orders already in NuOrder (not created): 1") {
		t.Fatalf("existing number: exit %d, %d creates\n%s%s", r.code, srv.Requests(api.OrderCreate), r.stdout, r.stderr)
	}
}

// TestShipmentsStreamThroughThePlugin: the shipments stream emits the
// shipments the fake's orders carry; after the fulfillment example records
// shipments on three orders, the next run emits exactly those shipments;
// the run after that, nothing.
func TestShipmentsStreamThroughThePlugin(t *testing.T) {
	srv, env := sandboxFake(t)
	push := examplesDir(t)
	cat := fakeapi.SandboxCatalog
	want := 0
	for i := 0; i < cat.Orders; i++ {
		o := srv.Order(i)
		if st, _ := o["status"].(string); st == "approved" || st == "processed" || st == "shipped" || st == "cancelled" {
			if ships, ok := o["shipments"].([]map[string]any); ok {
				want += len(ships)
			} else if ships, ok := o["shipments"].([]any); ok {
				want += len(ships)
			}
		}
	}
	path := nuorderFile(t, srv.URL(), `
pipeline "shipments" {
  from = connector.nuorder.shipments
  to   = sink.parquet.lake
}`)
	dir := filepath.Dir(path)
	out := filepath.Join(dir, "out", "shipments")
	run := func() []string {
		before := fileSet(out)
		time.Sleep(5 * time.Millisecond)
		r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		return idsIn(t, newFiles(t, out, before), "order_number")
	}
	if first := run(); len(first) != want || want == 0 {
		t.Fatalf("first run: %d shipments, the fake's orders carry %d", len(first), want)
	}
	time.Sleep(5 * time.Millisecond)
	if r := runPipeline(t, filepath.Dir(push), env, "run", "-f", push, "shipments"); r.code != 0 {
		t.Fatalf("fulfillment push: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	second := run()
	// The example records one shipment on 100001, two on 100004 and one
	// (with its lines) on 100006.
	if strings.Join(second, ",") != "100001,100004,100004,100006" {
		t.Fatalf("after the example recorded shipments, the run emitted shipments of %v", second)
	}
	if third := run(); len(third) != 0 {
		t.Fatalf("nothing changed, yet %v", third)
	}
}

// TestTheSandboxRemembersWhatItWasSent: the sandbox keeps what it is sent
// with the file's state, so a second sandbox push of the same customers
// meets the companies the first created, archived and updated (all
// unchanged, nothing sent), as a second push to NuOrder would; before, each
// run's sandbox started afresh and the second push created them again.
func TestTheSandboxRemembersWhatItWasSent(t *testing.T) {
	path := examplesDir(t)
	dir := filepath.Dir(path)
	actions := func() map[string]int {
		t.Helper()
		r := runPipeline(t, dir, nil, "run", "--sandbox", "--json", "-f", path, "customers")
		var doc struct {
			Pipelines []struct {
				Actions []struct {
					What  string `json:"what"`
					Count int    `json:"count"`
				} `json:"actions"`
			} `json:"pipelines"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &doc) != nil || len(doc.Pipelines) != 1 {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		out := map[string]int{}
		for _, a := range doc.Pipelines[0].Actions {
			out[a.What] = a.Count
		}
		return out
	}
	first := actions()
	if first["companies created"] == 0 {
		t.Fatalf("the first push created nothing: %v", first)
	}
	if _, err := os.Stat(filepath.Join(dir, ".pipeline-state", "sinks", "sandbox", "nuorder", "nuorder-sandbox.json")); err != nil {
		t.Fatalf("the sandbox's memory is not kept with the state: %v", err)
	}
	second := actions()
	if second["companies created"] != 0 || second["companies unchanged"] != 4 {
		t.Fatalf("the second push: %v, want the 4 companies unchanged", second)
	}
}

// TestAPushWithWrongCredentialsFails: a 401 on a push stops it with the
// error (exit 1), as on a pull, for every push stream, instead of turning
// every row into a reject under an "ok" (order_status and fulfillment
// without shipments answered exit 0 before).
func TestAPushWithWrongCredentialsFails(t *testing.T) {
	path := examplesDir(t)
	dir := filepath.Dir(path)
	os.WriteFile(path, []byte(mustRead(t, path)+`
pipeline "shipped_only" {
  from       = connector.files.csv
  options    = { path = "shipments.csv" }
  to         = connector.nuorder.fulfillment
  to_options = { record_shipments = false }
  columns    = { order_number = "Order #", tracking_number = "Tracking" }
}
`), 0o644)
	_, env := sandboxFake(t)
	for i, e := range env {
		if strings.HasPrefix(e, "NUORDER_CONSUMER_SECRET=") {
			env[i] = "NUORDER_CONSUMER_SECRET=wrong-secret-value-789"
		}
	}
	for _, pl := range []string{"stock", "shipments", "shipped_only", "customers", "statuses", "new_orders"} {
		r := runPipeline(t, dir, env, "run", "--json", "-f", path, pl)
		if r.code != 1 || !strings.Contains(r.stdout, `"ok": false`) || !strings.Contains(r.stdout+r.stderr, "401") {
			t.Fatalf("%s with a wrong secret: exit %d\n%s\n%s", pl, r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, "wrong-secret-value-789") {
			t.Fatalf("%s: the secret was printed", pl)
		}
	}
	// Rows the mapping refuses (bad input) are rejects still; none for the 401.
	rejects, _ := filepath.Glob(filepath.Join(dir, "rejects", "*"))
	for _, f := range rejects {
		if b := mustRead(t, f); strings.Contains(b, "401") || strings.Contains(b, "authentication") {
			t.Fatalf("rows were turned into rejects for a 401 in %s:\n%s", f, b)
		}
	}
}

// TestALostAnswerToAnOrderCreateIsReadBackNotSentAgain: NuOrder creates the
// first order, but a proxy loses the answer (502). The connector reads the
// order back by number before trying again, finds it, and sends no second
// create: 2 create requests for 2 orders (3 before: the create was retried
// blind, and only the fake's 409 stopped a second order).
func TestALostAnswerToAnOrderCreateIsReadBackNotSentAgain(t *testing.T) {
	srv, env := sandboxFake(t)
	path := examplesDir(t)
	srv.InjectFault(api.OrderCreate, fakeapi.Fault{LoseAnswer: 502, Times: 1})
	r := runPipeline(t, filepath.Dir(path), env, "run", "-f", path, "new_orders")
	if r.code != 0 || !strings.Contains(r.stdout, "orders created: 2") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := srv.Requests(api.OrderCreate); n != 2 || len(srv.CreatedOrders()) != 2 {
		t.Fatalf("%d create requests, %d orders created; want 2 and 2", n, len(srv.CreatedOrders()))
	}
	if srv.Requests(api.OrderByNumber) == 0 {
		t.Fatal("the order was not read back")
	}
}

// TestConflictingStatusesForOneOrderSendNone: rows that ask one order for
// two statuses (by number twice, or by _id in one row and by number in
// another) are all rejected before anything is sent for that order; the
// other orders of the file move. Before, the first status was sent and only
// the second row rejected, and an order given by _id and by number got
// both statuses sent.
func TestConflictingStatusesForOneOrderSendNone(t *testing.T) {
	srv, env := sandboxFake(t)
	path := examplesDir(t)
	dir := filepath.Dir(path)
	cat := fakeapi.SandboxCatalog
	var approved []int
	for i := 0; i < cat.Orders && len(approved) < 3; i++ {
		if cat.OrderStatus(i) == "approved" {
			approved = append(approved, i)
		}
	}
	num := func(i int) string { return fmt.Sprint(cat.Order(i)["order_number"]) }
	os.WriteFile(filepath.Join(dir, "order_status.csv"), []byte("Order #,Order ID,ERP Status\n"+
		num(approved[0])+",,shipped\n"+num(approved[0])+",,processed\n"+
		","+cat.OrderID(approved[1])+",processed\n"+num(approved[1])+",,cancelled\n"+
		num(approved[2])+",,processed\n"), 0o644)
	os.WriteFile(path, []byte(strings.Replace(mustRead(t, path), `columns = { order_number = "Order #", status = "ERP Status" }`,
		`columns = { order_number = "Order #", order_id = "Order ID", status = "ERP Status" }`, 1)), 0o644)
	r := runPipeline(t, dir, env, "run", "-f", path, "statuses")
	if r.code != 0 || !strings.Contains(r.stdout, "orders with conflicting statuses (none sent): 2") || !strings.Contains(r.stdout, "orders moved to processed: 1") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := srv.Requests(api.OrderSetStatusByNumber) + srv.Requests(api.OrderSetStatus); n != 1 {
		t.Fatalf("%d status requests, want 1 (the order without a conflict)", n)
	}
	for _, i := range approved[:2] {
		if st := srv.Order(i)["status"]; st != "approved" {
			t.Fatalf("order %s moved to %v", num(i), st)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "rejects", "statuses-*.csv"))
	if len(files) != 1 || len(readCSV(t, files[0])) != 5 { // header + 4 rows
		t.Fatalf("rejects %v", files)
	}
}

// TestAKilledStatusPushSendsNoStatusTwice: a push of 400 statuses is killed
// (SIGKILL, host and plugin) at a random moment, 10 trials; an operator
// then moves one order the push had moved to approved in NuOrder; the
// re-run finishes. The connector records each order before and after its
// request, and the host stores that before the next: no order receives its
// status twice, the operator's change is kept, and the one request a kill
// can leave in flight is read back, not re-sent blind (when NuOrder does not
// show it, the row is rejected saying so). Before, the record was kept only
// at the end: the re-run sent every status again and undid the change.
func TestAKilledStatusPushSendsNoStatusTwice(t *testing.T) {
	t.Parallel()
	trials := 10
	if testing.Short() {
		trials = 2
	}
	cat := fakeapi.SandboxCatalog
	var picked []int
	for i := 0; i < cat.Orders && len(picked) < 400; i++ {
		if st := cat.OrderStatus(i); st != "cancelled" && st != "review" {
			picked = append(picked, i)
		}
	}
	if len(picked) < 400 {
		t.Fatalf("the catalog has %d orders to move", len(picked))
	}
	var csvText strings.Builder
	csvText.WriteString("Order #,ERP Status\n")
	for _, i := range picked {
		fmt.Fprintf(&csvText, "%v,review\n", cat.Order(i)["order_number"])
	}
	kept, inFlightRejected := 0, 0
	for trial := 0; trial < trials; trial++ {
		srv, env := sandboxFakeWith(t, fakeapi.Options{Catalog: cat, Latency: 3 * time.Millisecond})
		path := examplesDir(t)
		dir := filepath.Dir(path)
		os.WriteFile(filepath.Join(dir, "order_status.csv"), []byte(csvText.String()), 0o644)
		cmd := exec.Command(filepath.Join(binDir, "pipeline"), "run", "-f", path, "statuses")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once some orders have moved, at a random point of the push.
		target := 20 + rand.IntN(300)
		deadline := time.Now().Add(60 * time.Second)
		for len(srv.StatusSends()) < target && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		// The operator moves an order the push had moved back to approved.
		sends := srv.StatusSends()
		changed := -1
		for _, i := range picked {
			if sends[i] > 0 && srv.Order(i)["status"] == "review" {
				changed = i
				break
			}
		}
		if changed < 0 {
			t.Fatalf("trial %d: no order had moved at the kill (%d sends)", trial, len(sends))
		}
		srv.SetOrderStatus(changed, "approved")
		r := runPipeline(t, dir, env, "run", "-f", path, "statuses")
		if r.code != 0 {
			t.Fatalf("trial %d: the re-run: exit %d\n%s%s", trial, r.code, r.stdout, r.stderr)
		}
		for i, n := range srv.StatusSends() {
			if n > 1 {
				t.Fatalf("trial %d: order %v received %d status requests", trial, cat.Order(i)["order_number"], n)
			}
		}
		if st := srv.Order(changed)["status"]; st != "approved" {
			t.Fatalf("trial %d: the operator's change to order %v was undone (%v)", trial, cat.Order(changed)["order_number"], st)
		}
		kept++
		moved, rejected := 0, 0
		for _, i := range picked {
			if srv.Order(i)["status"] == "review" {
				moved++
			}
		}
		if files, _ := filepath.Glob(filepath.Join(dir, "rejects", "statuses-*.csv")); len(files) > 0 {
			rows := readCSV(t, files[len(files)-1])
			rejected = len(rows) - 1
			for _, row := range rows[1:] {
				if !strings.Contains(strings.Join(row, ","), "was killed while moving order") {
					t.Fatalf("trial %d: a reject that is not the interrupted request: %v", trial, row)
				}
			}
		}
		if rejected > 1 || moved+rejected+1 != len(picked) {
			t.Fatalf("trial %d: %d moved, %d rejected, 1 changed by the operator, of %d", trial, moved, rejected, len(picked))
		}
		inFlightRejected += rejected
		srv.Close()
	}
	t.Logf("%d trials: no status sent twice, the operator's change kept each time; %d in-flight requests rejected on re-run for a person to check", kept, inFlightRejected)
}

// TestAKilledInventoryPushResendsOnlyWhatWasInFlight: an inventory push of
// every SKU of the sandbox catalog (several bulk requests per warehouse) is
// killed at a random moment after its second request, 5 trials; an
// operator then edits a SKU of a batch the push had finished (the push sends
// a batch only after storing the one before, so any batch but the last to
// arrive); the re-run sends again at most the batch in flight at the kill
// (before: every SKU), keeps the operator's edit, and refreshes the
// inventory flags of every product sent, including those the killed push had
// not refreshed. (The batch in flight is sent again: an edit made to one of
// its SKUs before the re-run is replaced, as docs/pushing.md says.)
func TestAKilledInventoryPushResendsOnlyWhatWasInFlight(t *testing.T) {
	t.Parallel()
	trials := 5
	if testing.Short() {
		trials = 1
	}
	cat := fakeapi.SandboxCatalog
	whs := cat.Warehouses()
	var csvText strings.Builder
	csvText.WriteString("Item UPC,Whse,Avail,ETA,Prebook\n")
	skus := 0
	for i := 0; i < cat.Products; i++ {
		sizes, _ := cat.Product(i)["sizes"].([]map[string]any)
		for k, s := range sizes {
			fmt.Fprintf(&csvText, "%v,%s,%d,,N\n", s["upc"], whs[(i+k)%len(whs)].Code, 1+(i*7+k)%40)
			skus++
		}
	}
	for trial := 0; trial < trials; trial++ {
		srv, env := sandboxFakeWith(t, fakeapi.Options{Catalog: cat, Latency: 2 * time.Millisecond})
		path := examplesDir(t)
		dir := filepath.Dir(path)
		os.WriteFile(filepath.Join(dir, "stock.csv"), []byte(csvText.String()), 0o644)
		cmd := exec.Command(filepath.Join(binDir, "pipeline"), "run", "-f", path, "stock")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		// Two batches recorded by the fake (not two requests arrived: a
		// request is counted before its body is read, and a kill then
		// left one recorded batch, the last, and none finished to edit).
		for len(srv.ReplenishBatches()) < 2 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		before := srv.ReplenishSends()
		if len(before) == 0 {
			t.Fatalf("trial %d: nothing was sent before the kill", trial)
		}
		// An operator edits a SKU of a batch the push had finished: one
		// with another batch after it.
		batches := srv.ReplenishBatches()
		finished := map[string]bool{}
		for _, b := range batches[:len(batches)-1] {
			for _, sku := range b {
				finished[sku] = true
			}
		}
		var editedWH, editedSKU string
		for _, wh := range whs {
			for sku := range srv.Replenishments(wh.ID) {
				if finished[sku] && editedSKU == "" {
					editedWH, editedSKU = wh.ID, sku
				}
			}
		}
		if editedSKU == "" {
			t.Fatalf("trial %d: no finished batch before the kill (%d requests)", trial, len(batches))
		}
		q := 999.0
		edit := []fakeapi.Replenishment{{WarehouseID: editedWH, SKUID: editedSKU, DisplayName: "edited in NuOrder", Active: true, PeriodStart: "01/01/2026", Quantity: &q}}
		srv.SetReplenishments(editedWH, editedSKU, edit)
		r := runPipeline(t, dir, env, "run", "-f", path, "stock")
		if r.code != 0 {
			t.Fatalf("trial %d: the re-run: exit %d\n%s%s", trial, r.code, r.stdout, r.stderr)
		}
		after := srv.ReplenishSends()
		twice := 0
		for sku, n := range after {
			if n > 1 {
				twice++
			}
			if n == 0 {
				t.Fatalf("trial %d: SKU %s never sent", trial, sku)
			}
		}
		if len(after) != skus || twice > 500 {
			t.Fatalf("trial %d: %d SKUs sent of %d, %d of them twice (one batch of 500 may be in flight)", trial, len(after), skus, twice)
		}
		if got := srv.Replenishments(editedWH)[editedSKU]; len(got) != 1 || got[0].DisplayName != "edited in NuOrder" {
			t.Fatalf("trial %d: the operator's edit of %s was undone: %+v", trial, editedSKU, got)
		}
		refreshed := map[string]bool{}
		for _, ids := range srv.FlagRefreshes() {
			for _, id := range ids {
				refreshed[id] = true
			}
		}
		if len(refreshed) != cat.Products {
			t.Fatalf("trial %d: flags refreshed for %d products of %d", trial, len(refreshed), cat.Products)
		}
		t.Logf("trial %d: %d SKUs sent before the kill, %d sent twice (in flight), the edit kept", trial, len(before), twice)
		srv.Close()
	}
}

// TestAConnectorsReasonQuotesAtMostTheStartOfAValue: a 2 MB status cell is
// refused by the connector, whose reason quotes the value; the rejects file
// holds the row once and a reason cut to a few hundred bytes (the reason
// quoted the whole 2 MB before).
func TestAConnectorsReasonQuotesAtMostTheStartOfAValue(t *testing.T) {
	_, env := sandboxFake(t)
	path := examplesDir(t)
	dir := filepath.Dir(path)
	huge := strings.Repeat("x", 2<<20)
	os.WriteFile(filepath.Join(dir, "order_status.csv"), []byte("Order #,ERP Status\n100006,"+huge+"\n"), 0o644)
	r := runPipeline(t, dir, env, "run", "-f", path, "statuses")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "rejects", "statuses-*.csv"))
	if len(files) != 1 {
		t.Fatalf("rejects %v", files)
	}
	rows := readCSV(t, files[0])
	reason := ""
	for i, h := range rows[0] {
		if strings.Contains(strings.ToLower(h), "reason") || strings.Contains(strings.ToLower(h), "error") {
			reason = rows[1][i]
		}
	}
	if len(reason) == 0 || len(reason) > 400 || !strings.Contains(reason, "reason cut") {
		t.Fatalf("the reason is %d bytes: %.120q", len(reason), reason)
	}
}

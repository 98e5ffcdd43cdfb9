package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipehost/connector/nuorder/fakeapi"
)

// duckdbFile reads a DuckDB database file with DuckDB's own reader (the
// Node.js package the Parquet tests use), attached read-only as wh.
func duckdbFile(t *testing.T, file string, queries ...string) []duckdbResult {
	t.Helper()
	res := duckdb(t, append([]string{fmt.Sprintf("ATTACH '%s' AS wh (READ_ONLY)", file)}, queries...))
	for i, r := range res {
		if r.Error != "" {
			t.Fatalf("DuckDB: %s: %s", append([]string{"ATTACH"}, queries...)[i], r.Error)
		}
	}
	return res[1:]
}

// TestTheDuckDBExampleKeepsOneRowPerOrderAcrossStatusChanges: the example
// file examples/duckdb.hcl, against a fake NuOrder, loads every source
// stream into one DuckDB file: DuckDB's reader finds every stream's rows,
// nested columns as LIST and STRUCT, amounts as DECIMAL(18,4) equal to
// the documents', times as TIMESTAMPTZ; after status changes (which leave
// modified_on alone) and two more runs, one row per order, order line and
// shipment, each order in the status NuOrder shows, its lines too.
func TestTheDuckDBExampleKeepsOneRowPerOrderAcrossStatusChanges(t *testing.T) {
	t.Parallel()
	cat := fakeapi.Catalog{Seed: 37, Products: 40, Companies: 15, Orders: 500}
	srv, env := sandboxFakeWith(t, fakeapi.Options{Catalog: cat})
	path := writeFile(t, mustRead(t, "../examples/duckdb.hcl"))
	dir := filepath.Dir(path)
	file := filepath.Join(dir, "nuorder.duckdb")
	run := func() result {
		t.Helper()
		r := runPipeline(t, dir, env, "run", "-f", path)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		return r
	}
	first := run()
	res := duckdbFile(t, file,
		`SELECT table_name || '.' || column_name AS col, data_type AS type FROM information_schema.columns WHERE table_catalog = 'wh'`,
		`SELECT count(*) AS n FROM wh.orders WHERE total IS DISTINCT FROM CAST(json_extract_string(document, '$.total') AS DECIMAL(18,4))`,
		`SELECT count(*) AS n FROM wh.orders o WHERE len(o.line_items) <> (SELECT count(DISTINCT line_id) FROM wh.order_lines l WHERE l.order_id = o._id)`)
	types := map[string]string{}
	for _, row := range res[0].Rows {
		types[fmt.Sprint(row["col"])] = fmt.Sprint(row["type"])
	}
	for col, want := range map[string]string{
		"orders._id": "VARCHAR", "orders.total": "DECIMAL(18,4)", "order_lines.price": "DECIMAL(18,4)", "orders.total_quantity": "BIGINT",
		"orders.edited": "BOOLEAN", "orders.modified_on": "TIMESTAMP WITH TIME ZONE", "orders.document": "JSON",
		"order_lines.ship_start": "TIMESTAMP WITH TIME ZONE", "shipments.order_id": "VARCHAR",
	} {
		if types[col] != want {
			t.Fatalf("%s is %q, want %q", col, types[col], want)
		}
	}
	for _, col := range []string{"orders.line_items", "orders.billing_address"} {
		if !strings.HasPrefix(types[col], "STRUCT(") {
			t.Fatalf("%s is %q, want DuckDB's STRUCT (LIST of STRUCT for line_items), not JSON text", col, types[col])
		}
	}
	if !strings.HasSuffix(types["orders.line_items"], ")[]") {
		t.Fatalf("orders.line_items is %q, want a LIST of STRUCT", types["orders.line_items"])
	}
	if n := res[1].Rows[0]["n"]; n != "0" {
		t.Fatalf("%v orders whose total differs from their document's", n)
	}
	if n := res[2].Rows[0]["n"]; n != "0" {
		t.Fatalf("%v orders whose line_items list differs from their order_lines", n)
	}

	var approved []int
	for i := 0; i < cat.Orders && len(approved) < 5; i++ {
		if cat.OrderStatus(i) == "approved" {
			approved = append(approved, i)
		}
	}
	want := map[int]string{0: "processed", 1: "shipped", 2: "cancelled", 3: "processed"}
	for k, st := range want {
		srv.SetOrderStatus(approved[k], st)
	}
	run()
	srv.SetOrderStatus(approved[3], "shipped") // processed, then shipped
	want[3] = "shipped"
	run()
	if r := run(); rowsOf(t, r.stdout, "orders") != 0 {
		t.Fatalf("a run with no change wrote %d orders", rowsOf(t, r.stdout, "orders"))
	}
	queries := []string{
		"SELECT count(*) AS n, count(DISTINCT _id) AS ids FROM wh.orders",
		"SELECT count(*) AS n, count(DISTINCT (order_id, line_id, size)) AS ids FROM wh.order_lines",
		"SELECT count(*) AS n, count(DISTINCT (order_id, shipment_no)) AS ids FROM wh.shipments",
		"SELECT count(*) AS n, count(DISTINCT _id) AS ids FROM wh.products",
		"SELECT count(*) AS n, count(DISTINCT _id) AS ids FROM wh.companies",
		"SELECT count(*) AS n FROM wh.locations",
	}
	for k, st := range want {
		id := cat.OrderID(approved[k])
		queries = append(queries,
			fmt.Sprintf("SELECT count(*) AS n FROM wh.orders WHERE _id = '%s' AND status = '%s'", id, st),
			fmt.Sprintf("SELECT count(*) AS n FROM wh.order_lines WHERE order_id = '%s' AND status <> '%s'", id, st))
	}
	res = duckdbFile(t, file, queries...)
	wantOrders := len(nonPendingOrders(cat))
	if n, ids := res[0].Rows[0]["n"], res[0].Rows[0]["ids"]; n != fmt.Sprint(wantOrders) || ids != n {
		t.Fatalf("orders: %v rows, %v distinct, want %d once each", n, ids, wantOrders)
	}
	if n := rowsOf(t, first.stdout, "orders"); n != wantOrders {
		t.Fatalf("the first run wrote %d orders, want %d", n, wantOrders)
	}
	for i, stream := range []string{"order_lines", "shipments", "products", "companies"} {
		if n, ids := res[1+i].Rows[0]["n"], res[1+i].Rows[0]["ids"]; n == "0" || ids != n {
			t.Fatalf("%s: %v rows, %v distinct keys", stream, n, ids)
		}
		if n := fmt.Sprint(res[1+i].Rows[0]["n"]); n != fmt.Sprint(rowsOf(t, first.stdout, stream)) && stream != "order_lines" {
			t.Fatalf("%s: %s rows, the first run wrote %d", stream, n, rowsOf(t, first.stdout, stream))
		}
	}
	if n := fmt.Sprint(res[5].Rows[0]["n"]); n != fmt.Sprint(rowsOf(t, first.stdout, "locations")) {
		t.Fatalf("locations: %s rows, the first run wrote %d", n, rowsOf(t, first.stdout, "locations"))
	}
	for j := 6; j < len(res); j += 2 {
		if res[j].Rows[0]["n"] != "1" || res[j+1].Rows[0]["n"] != "0" {
			t.Fatalf("%s: %v; %s: %v", queries[j], res[j].Rows[0]["n"], queries[j+1], res[j+1].Rows[0]["n"])
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".nuorder.duckdb.staging", "*")); len(left) != 0 {
		t.Fatalf("staging files left: %v", left)
	}
	t.Logf("%v orders, %v order lines, %v shipments, one row per key after 3 status changes and one twice", res[0].Rows[0]["n"], res[1].Rows[0]["n"], res[2].Rows[0]["n"])
}

// duckdbOrdersFile is a pipeline file with one "orders" pipeline appending
// into a DuckDB file (append: a repeated row would show).
func duckdbOrdersFile(t *testing.T, baseURL string) string {
	return writeFile(t, fmt.Sprintf(`
connector "nuorder" {
  plugin = %q
  config {
    base_url           = %q
    cursor_lag_seconds = 0%s
  }
}
sink "duckdb" "db" {
  path = "out.duckdb"
}
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.duckdb.db
}`, plugin("nuorder"), baseURL, nuorderCreds))
}

func duckdbOrderIDs(t *testing.T, dir string) []string {
	file := filepath.Join(dir, "out.duckdb")
	if _, err := os.Stat(file); err != nil {
		return nil
	}
	res := duckdbFile(t, file, "SELECT _id FROM wh.orders ORDER BY _id")
	var ids []string
	for _, row := range res[0].Rows {
		ids = append(ids, fmt.Sprint(row["_id"]))
	}
	return ids
}

// TestAKilledHostNeverDuplicatesOrLosesRowsInDuckDB: the host and its
// plugin are killed with SIGKILL before a commit and after the sink's
// commit but before the state store's; after a rerun every order is in the
// file once (the checkpoint the file holds, committed with the rows, wins
// over the state store's older one).
func TestAKilledHostNeverDuplicatesOrLosesRowsInDuckDB(t *testing.T) {
	t.Parallel()
	cat := fakeapi.Catalog{Seed: 67, Products: 20, Companies: 10, Orders: 1500}
	srv := serveFake(t, cat)
	want := nonPendingOrders(cat)
	for _, fp := range []string{"before-commit", "after-sink-commit"} {
		t.Run(fp, func(t *testing.T) {
			path := duckdbOrdersFile(t, srv.URL())
			dir := filepath.Dir(path)
			killAt(t, dir, path, credEnv(e2eCreds), fp)
			before := duckdbOrderIDs(t, dir)
			if fp == "before-commit" && len(before) != 0 {
				t.Fatalf("%d rows visible though the host died before committing", len(before))
			}
			if fp == "after-sink-commit" && len(before) == 0 {
				t.Fatal("nothing committed before the kill")
			}
			if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path, "orders"); r.code != 0 {
				t.Fatalf("rerun: exit %d\n%s", r.code, r.stderr)
			}
			if all := duckdbOrderIDs(t, dir); strings.Join(all, ",") != strings.Join(want, ",") {
				t.Fatalf("after the kill (%d rows visible) and the rerun: %d rows, want the %d orders once each", len(before), len(all), len(want))
			}
			t.Logf("%s: %d rows visible after SIGKILL, %d once each after the rerun", fp, len(before), len(want))
		})
	}
}

// TestRandomCrashesLoseAndRepeatNothingInDuckDB is TestRandomCrashes's
// trials (the host or the plugin killed at random moments, once or twice a
// trial) into a DuckDB file.
func TestRandomCrashesLoseAndRepeatNothingInDuckDB(t *testing.T) {
	t.Parallel()
	cat := fakeapi.Catalog{Seed: 137, Products: 20, Companies: 20, Orders: 3000}
	srv := serveFake(t, cat)
	randomCrashes(t, cat,
		func() (string, []string) { return duckdbOrdersFile(t, srv.URL()), credEnv(e2eCreds) },
		func(dir string) []string { return duckdbOrderIDs(t, dir) })
}

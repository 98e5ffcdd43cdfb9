package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

func pgDSN(t testing.TB) string {
	t.Helper()
	d := os.Getenv("PIPEHOST_TEST_PG_DSN")
	if d == "" {
		t.Skip("PIPEHOST_TEST_PG_DSN is not set: run the tests with `make test` (scripts/with-postgres.sh starts a server)")
	}
	return d
}

// pgSchema makes a fresh schema name, dropped at the end of the test.
func pgSchema(t testing.TB) (string, *pgx.Conn) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pgDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("e2e_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+name+" CASCADE")
		conn.Close(context.Background())
	})
	return name, conn
}

func warehouseFile(t testing.TB, baseURL, schema, pipelines string) string {
	return writeFile(t.(*testing.T), fmt.Sprintf(`
connector "nuorder" {
  plugin = %q
  config {
    base_url           = %q
    cursor_lag_seconds = 0%s
  }
}
sink "postgres" "wh" {
  dsn    = env("E2E_DSN")
  schema = %q
}
%s`, plugin("nuorder"), baseURL, nuorderCreds, schema, pipelines))
}

func count(t *testing.T, conn *pgx.Conn, q string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestOrdersLandInPostgresAndMergeKeepsTheLatest(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 61, Products: 30, Companies: 20, Orders: 400}
	srv := serveFake(t, cat)
	schema, conn := pgSchema(t)
	path := warehouseFile(t, srv.URL(), schema, `
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.postgres.wh
  mode = "merge"
}
pipeline "order_lines" {
  from = connector.nuorder.order_lines
  to   = sink.postgres.wh
  mode = "merge"
}`)
	env := append(credEnv(e2eCreds), "E2E_DSN="+pgDSN(t))
	if r := runPipeline(t, filepath.Dir(path), env, "run", "-f", path); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	types := map[string]string{}
	rows, _ := conn.Query(context.Background(), `SELECT table_name || '.' || column_name, data_type FROM information_schema.columns WHERE table_schema = $1`, schema)
	for rows.Next() {
		var c, ty string
		rows.Scan(&c, &ty)
		types[c] = ty
	}
	for col, want := range map[string]string{"orders._id": "text", "orders.total": "numeric", "order_lines.price": "numeric", "orders.total_quantity": "bigint",
		"orders.edited": "boolean", "orders.modified_on": "timestamp with time zone", "orders.line_items": "jsonb", "orders.billing_address": "jsonb",
		"orders.document": "jsonb", "order_lines.quantity": "bigint", "order_lines.line_no": "integer", "order_lines.ship_start": "timestamp with time zone"} {
		if types[col] != want {
			t.Fatalf("%s is %q, want %q", col, types[col], want)
		}
	}
	// Amounts are exact: the warehouse's sums match the documents' to the cent.
	if n := count(t, conn, "SELECT count(*) FROM "+schema+".orders WHERE total <> (document->>'total')::numeric OR original_total <> (document->'order_discounts'->>'original_total')::numeric"); n != 0 {
		t.Fatalf("%d orders whose total differs from the document's", n)
	}
	if n := count(t, conn, "SELECT count(*) FROM information_schema.columns WHERE table_schema = '"+schema+"' AND column_name = 'total' AND numeric_precision = 18 AND numeric_scale = 4"); n != 1 {
		t.Fatal("orders.total is not numeric(18,4)")
	}
	want := len(nonPendingOrders(cat))
	if n := count(t, conn, "SELECT count(*) FROM "+schema+".orders"); n != want {
		t.Fatalf("%d orders, want %d", n, want)
	}
	var approved []int
	for i := 0; i < cat.Orders && len(approved) < 5; i++ {
		if cat.OrderStatus(i) == "approved" {
			approved = append(approved, i)
		}
	}
	time.Sleep(5 * time.Millisecond)
	// Status changes leave modified_on alone, in NuOrder as in the fake
	// (shared/nuorder-api.md §13.1); the run must notice them all the same.
	srv.EditOrders(approved[0], approved[1])
	srv.SetOrderStatus(approved[2], "shipped")
	srv.SetOrderStatus(approved[3], "processed")
	srv.SetOrderStatus(approved[4], "cancelled")
	if r := runPipeline(t, filepath.Dir(path), env, "run", "-f", path); r.code != 0 || rowsOf(t, r.stdout, "orders") != 5 {
		t.Fatalf("second run: exit %d, want 5 orders\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for k, want := range map[int]string{2: "shipped", 3: "processed", 4: "cancelled", 0: "approved"} {
		if n := count(t, conn, fmt.Sprintf("SELECT count(*) FROM %s.orders WHERE _id = '%s' AND status = '%s'", schema, cat.OrderID(approved[k]), want)); n != 1 {
			t.Fatalf("order %s is not %s in the warehouse", cat.OrderID(approved[k]), want)
		}
		if n := count(t, conn, fmt.Sprintf("SELECT count(*) FROM %s.order_lines WHERE order_id = '%s' AND status <> '%s'", schema, cat.OrderID(approved[k]), want)); n != 0 {
			t.Fatalf("%d lines of order %s are not %s in the warehouse", n, cat.OrderID(approved[k]), want)
		}
	}
	if r := runPipeline(t, filepath.Dir(path), env, "run", "-f", path); r.code != 0 || rowsOf(t, r.stdout, "orders") != 0 || rowsOf(t, r.stdout, "order_lines") != 0 {
		t.Fatalf("a run with no change: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if n := count(t, conn, "SELECT count(*) FROM "+schema+".orders"); n != want {
		t.Fatalf("after merge: %d orders, want %d (one per _id)", n, want)
	}
	if n := count(t, conn, "SELECT count(DISTINCT _id) FROM "+schema+".orders"); n != want {
		t.Fatalf("after merge: %d distinct orders", n)
	}
	if n := count(t, conn, fmt.Sprintf("SELECT count(*) FROM %s.orders WHERE _id IN ('%s','%s') AND edited AND document->>'notes' = 'edited after approval'", schema, cat.OrderID(approved[0]), cat.OrderID(approved[1]))); n != 2 {
		t.Fatalf("%d edited orders carry their new version", n)
	}
	if n := count(t, conn, fmt.Sprintf("SELECT count(*) FROM %s.orders WHERE _id = '%s' AND status = 'shipped'", schema, cat.OrderID(approved[2]))); n != 1 {
		t.Fatal("the shipped order is not shipped in the warehouse")
	}
	if a, b := count(t, conn, "SELECT count(*) FROM "+schema+".order_lines"), count(t, conn, "SELECT count(*) FROM (SELECT DISTINCT order_id, line_id, size FROM "+schema+".order_lines) x"); a != b {
		t.Fatalf("order_lines: %d rows, %d keys", a, b)
	}
}

// killAt runs the orders pipeline with a failpoint armed, kills the host and
// its plugin with SIGKILL when it is reached, and returns what it printed.
func killAt(t *testing.T, dir, path string, env []string, failpoint string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "pipeline"), "run", "-f", path, "--log-format", "json", "orders")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), env...), "PIPEHOST_FAILPOINT="+failpoint)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	reached := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "failpoint "+failpoint) {
				reached <- true
			}
		}
		close(reached)
	}()
	select {
	case ok := <-reached:
		if !ok {
			t.Fatalf("the host exited before the failpoint:\n%s", log.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("failpoint never reached")
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	return log.String()
}

func TestAKilledHostNeverDuplicatesOrLosesRowsInPostgres(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 67, Products: 20, Companies: 10, Orders: 1500}
	srv := serveFake(t, cat)
	want := len(nonPendingOrders(cat))
	for _, fp := range []string{"before-commit", "after-sink-commit"} {
		t.Run(fp, func(t *testing.T) {
			schema, conn := pgSchema(t)
			path := warehouseFile(t, srv.URL(), schema, `
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.postgres.wh
}`) // append: a duplicate would show
			dir := filepath.Dir(path)
			env := append(credEnv(e2eCreds), "E2E_DSN="+pgDSN(t))
			killAt(t, dir, path, env, fp)
			before := count(t, conn, "SELECT count(*) FROM "+schema+".orders")
			if fp == "before-commit" && before != 0 {
				t.Fatalf("%d rows visible though the host died before committing", before)
			}
			if fp == "after-sink-commit" && before == 0 {
				t.Fatal("nothing committed before the kill")
			}
			r := runPipeline(t, dir, env, "run", "-f", path, "orders")
			if r.code != 0 {
				t.Fatalf("rerun: exit %d\n%s", r.code, r.stderr)
			}
			n := count(t, conn, "SELECT count(*) FROM "+schema+".orders")
			distinct := count(t, conn, "SELECT count(DISTINCT _id) FROM "+schema+".orders")
			if n != want || distinct != want {
				t.Fatalf("after the kill (%d rows committed) and the rerun: %d rows, %d distinct, want %d once each", before, n, distinct, want)
			}
			t.Logf("%s: %d rows committed before SIGKILL, %d after the rerun, each once", fp, before, n)
		})
	}
}

func TestWarehouseExampleLoadsEveryStreamAndHidesThePassword(t *testing.T) {
	schema, conn := pgSchema(t)
	password := "Wh-s3cret-do-not-print"
	dsn := strings.Replace(pgDSN(t), "postgres@", "postgres:"+password+"@", 1)
	src, err := os.ReadFile("../examples/warehouse.hcl")
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, string(src))
	env := []string{"WAREHOUSE_DSN=" + dsn, "WAREHOUSE_SCHEMA=" + schema}
	for _, args := range [][]string{{"validate", "--sandbox"}, {"plan", "--sandbox"}, {"run", "--sandbox", "--log-level", "debug"}} {
		r := runPipeline(t, filepath.Dir(path), env, append(args, "-f", path)...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, password) {
			t.Fatalf("%v printed the DSN's password", args)
		}
	}
	cat := fakeapi.SandboxCatalog
	for table, min := range map[string]int{"companies": cat.Companies, "products": 200, "locations": 3, "orders": 400, "order_lines": 1000, "shipments": 20} {
		if n := count(t, conn, "SELECT count(*) FROM "+schema+"."+table); n < min {
			t.Fatalf("%s: %d rows", table, n)
		}
	}
	// A wrong database name fails with a message that still hides it.
	bad := strings.Replace(dsn, "/postgres?", "/no_such_db?", 1)
	r := runPipeline(t, filepath.Dir(path), []string{"WAREHOUSE_DSN=" + bad, "WAREHOUSE_SCHEMA=" + schema}, "run", "--sandbox", "-f", path, "orders")
	if r.code == 0 || strings.Contains(r.stdout+r.stderr, password) || !strings.Contains(r.stderr, "no_such_db") {
		t.Fatalf("exit %d, output:\n%s", r.code, r.stderr)
	}
}

// prerenderedFakeAndPostgres starts the fake API on cat with its order
// listings rendered once into files (so the fake's own encoding is not
// measured) and connects to the test's PostgreSQL; both end with b.
func prerenderedFakeAndPostgres(b *testing.B, cat fakeapi.Catalog, dsn string) (*fakeapi.Server, *pgx.Conn) {
	b.Helper()
	srv, err := fakeapi.Start(fakeapi.Options{Credentials: e2eCreds, Catalog: cat, Prerender: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	if _, err := srv.PrerenderListings(); err != nil {
		b.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	return srv, conn
}

// BenchmarkOrdersIntoPostgresVsParquet runs the same orders pipeline (the
// real binaries, against the fake API serving pre-rendered listings, so
// that the fake's own encoding does not hide the sinks) into Parquet and
// into PostgreSQL, one after the other in each iteration, and reports both
// rates and their ratio:
//
//	make build && scripts/with-postgres.sh go test ./pipeline -run '^$' -bench PostgresVsParquet -benchtime 3x
func BenchmarkOrdersIntoPostgresVsParquet(b *testing.B) {
	dsn := pgDSN(b)
	srv, conn := prerenderedFakeAndPostgres(b, fakeapi.Catalog{Seed: 73, Products: 100, Companies: 50, Orders: 40000}, dsn)
	var parquetTime, pgTime time.Duration
	var rows int
	for i := 0; i < b.N; i++ {
		schema := fmt.Sprintf("bench_%d", time.Now().UnixNano())
		dir := b.TempDir()
		hcl := fmt.Sprintf(`
connector "nuorder" {
  plugin = %q
  config {
    base_url = %q%s
  }
}
sink "parquet" "lake" {
  path = "out"
}
sink "postgres" "wh" {
  dsn    = env("E2E_DSN")
  schema = %q
}
pipeline "to_parquet" {
  from = connector.nuorder.orders
  to   = sink.parquet.lake
}
pipeline "to_postgres" {
  from = connector.nuorder.orders
  to   = sink.postgres.wh
}
`, plugin("nuorder"), srv.URL(), nuorderCreds, schema)
		path := filepath.Join(dir, "pipeline.hcl")
		os.WriteFile(path, []byte(hcl), 0o644)
		env := append(credEnv(e2eCreds), "E2E_DSN="+dsn)
		for _, target := range []string{"to_parquet", "to_postgres"} {
			cmd := exec.Command(filepath.Join(binDir, "pipeline"), "run", "-f", path, target)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), env...)
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", target, err, out)
			}
			if target == "to_parquet" {
				parquetTime += time.Since(start)
			} else {
				pgTime += time.Since(start)
			}
		}
		conn.QueryRow(context.Background(), "SELECT count(*) FROM "+schema+".orders").Scan(&rows)
		conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	}
	pq := float64(rows) * float64(b.N) / parquetTime.Seconds()
	pg := float64(rows) * float64(b.N) / pgTime.Seconds()
	b.ReportMetric(float64(rows), "rows/run")
	b.ReportMetric(pq, "parquet-rows/s")
	b.ReportMetric(pg, "postgres-rows/s")
	b.ReportMetric(pg/pq, "postgres/parquet")
}

func TestCSVAndJSONLinesSinks(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 79, Products: 10, Companies: 5, Orders: 200}
	srv := serveFake(t, cat)
	path := nuorderFile(t, srv.URL(), `
sink "csv" "files" {
  path = "csv"
}
sink "jsonl" "files" {
  path = "jsonl"
}
pipeline "orders_csv" {
  from = connector.nuorder.orders
  to   = sink.csv.files
}
pipeline "orders_jsonl" {
  from = connector.nuorder.orders
  to   = sink.jsonl.files
}`)
	dir := filepath.Dir(path)
	if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path, "orders_csv", "orders_jsonl"); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	want := len(nonPendingOrders(cat))
	csvFiles, _ := filepath.Glob(filepath.Join(dir, "csv", "orders", "*.csv"))
	rows := 0
	for _, f := range csvFiles {
		recs := readCSV(t, f)
		if recs[0][0] != "_id" || recs[0][len(recs[0])-2] != "document" {
			t.Fatalf("header %v", recs[0])
		}
		for _, r := range recs[1:] {
			if !strings.HasPrefix(r[27], `[{"`) || !strings.Contains(r[27], `"sizes":[{`) { // line_items as JSON
				t.Fatalf("line_items cell %.60s", r[27])
			}
		}
		rows += len(recs) - 1
	}
	jsonFiles, _ := filepath.Glob(filepath.Join(dir, "jsonl", "orders", "*.jsonl"))
	lines := 0
	for _, f := range jsonFiles {
		b, _ := os.ReadFile(f)
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var row struct {
				ID       string `json:"_id"`
				Document struct {
					ID string `json:"_id"`
				} `json:"document"`
				LineItems []struct {
					Sizes []struct{ Quantity int64 } `json:"sizes"`
				} `json:"line_items"`
				Modified string `json:"modified_on"`
			}
			if err := json.Unmarshal([]byte(l), &row); err != nil {
				t.Fatalf("line %.80s: %v", l, err)
			}
			if row.Document.ID != row.ID || len(row.LineItems) == 0 || row.LineItems[0].Sizes[0].Quantity < 1 || !strings.HasSuffix(row.Modified, "Z") {
				t.Fatalf("row %.200s", l)
			}
			lines++
		}
	}
	if rows != want || lines != want {
		t.Fatalf("csv %d rows, jsonl %d rows, want %d", rows, lines, want)
	}
}

func TestPostgresStateIsSharedAndLocksAcrossHosts(t *testing.T) {
	t.Parallel()
	schema, _ := pgSchema(t)
	srv := serveFake(t, fakeapi.Catalog{Seed: 83, Products: 30})
	// The hosts share the state and the destination (a shared volume, say):
	// state is bound to the data it describes.
	lake := t.TempDir()
	hcl := func() string {
		return writeFile(t, fmt.Sprintf(`
state {
  backend = "postgres"
  dsn     = env("E2E_DSN")
  schema  = %q
}
connector "nuorder" {
  plugin = %q
  config {
    base_url = %q%s
  }
}
sink "parquet" "lake" {
  path = %q
}
pipeline "products" {
  from = connector.nuorder.products
  to   = sink.parquet.lake
}`, schema, plugin("nuorder"), srv.URL(), nuorderCreds, lake))
	}
	// Two "hosts": two folders, one database.
	a, b := hcl(), hcl()
	env := append(credEnv(e2eCreds), "E2E_DSN="+pgDSN(t))
	srv.InjectFault(api.ProductList, fakeapi.Fault{Delay: 6 * time.Second, Times: 1})
	first := exec.Command(filepath.Join(binDir, "pipeline"), "run", "-f", a)
	first.Dir = filepath.Dir(a)
	first.Env = append(os.Environ(), env...)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	// The first run holds the lock once it has asked for the listing.
	waitFor(t, "the first host's listing request", func() bool { return srv.Requests(api.ProductList) >= 1 })
	r := runPipeline(t, filepath.Dir(b), env, "run", "-f", b)
	if r.code != 3 || !strings.Contains(r.stderr, "already running on another host") {
		t.Fatalf("second host: exit %d\n%s", r.code, r.stderr)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first host: %v", err)
	}
	// The second host sees the first one's checkpoint.
	show := runPipeline(t, filepath.Dir(b), env, "state", "show", "-f", b)
	if !strings.Contains(show.stdout, "cursor=") || !strings.Contains(show.stdout, "ok, ") {
		t.Fatalf("state show on the other host:\n%s%s", show.stdout, show.stderr)
	}
	if r := runPipeline(t, filepath.Dir(b), env, "run", "-f", b); r.code != 0 || !regexp.MustCompile(`products\s+connector.nuorder.products\s+sink.parquet.lake\s+0\s`).MatchString(r.stdout) {
		t.Fatalf("the second host's run after the first: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A host whose file writes somewhere else may not resume from the
	// shared checkpoint: its destination holds none of those rows.
	elsewhere := writeFile(t, strings.Replace(readFileString(t, hcl()), lake, t.TempDir(), 1))
	if r := runPipeline(t, filepath.Dir(elsewhere), env, "run", "-f", elsewhere); r.code != 1 || !strings.Contains(r.stderr, "belongs to other data") ||
		!strings.Contains(r.stderr, "state reset products") {
		t.Fatalf("a host with another destination: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func readFileString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOverwriteReplacesTheTableOnEveryRun(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 89, Products: 60}
	srv := serveFake(t, cat)
	schema, conn := pgSchema(t)
	path := warehouseFile(t, srv.URL(), schema, `
pipeline "products" {
  from = connector.nuorder.products
  to   = sink.postgres.wh
  mode = "overwrite"
}`)
	env := append(credEnv(e2eCreds), "E2E_DSN="+pgDSN(t))
	active := 0
	for i := 0; i < cat.Products; i++ {
		if cat.Product(i)["active"] == true {
			active++
		}
	}
	for run := 1; run <= 2; run++ {
		if r := runPipeline(t, filepath.Dir(path), env, "run", "-f", path); r.code != 0 {
			t.Fatalf("run %d: exit %d\n%s", run, r.code, r.stderr)
		}
		if n := count(t, conn, "SELECT count(*) FROM "+schema+".products"); n != active {
			t.Fatalf("after run %d: %d rows, want the %d active products (a full read replacing the table)", run, n, active)
		}
	}
	if n := count(t, conn, fmt.Sprintf("SELECT count(*) FROM information_schema.tables WHERE table_schema = '%s' AND table_name LIKE 'products__pipehost%%'", schema)); n != 0 {
		t.Fatalf("%d leftover shadow tables", n)
	}
}

// rowsOf reads the ROWS column of a pipeline's line in a run's summary table.
func rowsOf(t *testing.T, stdout, pipeline string) int {
	t.Helper()
	for _, line := range strings.Split(stdout, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == pipeline {
			var n int
			if _, err := fmt.Sscan(f[3], &n); err == nil {
				return n
			}
		}
	}
	t.Fatalf("no summary line for pipeline %s in\n%s", pipeline, stdout)
	return -1
}

// TestTableNamesThatPostgresWouldTruncateAreRefused: PostgreSQL cuts names
// at 63 bytes, so a long table_prefix made orders and order_lines land in
// one table. validate refuses such names (and odd characters) before
// anything runs, pointing at the pipeline.
func TestTableNamesThatPostgresWouldTruncateAreRefused(t *testing.T) {
	prefix := strings.Repeat("brand_wholesale_", 4) // 64 bytes: every table would be cut
	path := writeFile(t, fmt.Sprintf(`
connector "nuorder" {
  plugin = %q
}
sink "postgres" "wh" {
  dsn          = "postgres://loader@127.0.0.1:1/db"
  table_prefix = %q
}
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.postgres.wh
}
pipeline "order_lines" {
  from = connector.nuorder.order_lines
  to   = sink.postgres.wh
}`, plugin("nuorder"), prefix))
	r := runPipeline(t, filepath.Dir(path), nil, "validate", "--sandbox", "-f", path)
	if r.code != 2 || !strings.Contains(r.stderr, "63") || !strings.Contains(r.stderr, "pipeline.hcl:11:10") || !strings.Contains(r.stderr, "pipeline.hcl:15:10") {
		t.Fatalf("long prefix: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bad := strings.Replace(readFileString(t, path), prefix, `my"prefix`, 1)
	path = writeFile(t, bad)
	if r := runPipeline(t, filepath.Dir(path), nil, "validate", "--sandbox", "-f", path); r.code != 2 || !strings.Contains(r.stderr, "table_prefix") {
		t.Fatalf("a quote in the prefix: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestNULCharactersLandTheSameEverywhere: NuOrder strings can hold NUL
// (a pasted note); PostgreSQL cannot store it, and used to refuse the batch
// on every run. One rule for every sink: NUL becomes U+FFFD, in plain
// columns, nested ones and the JSON document.
func TestNULCharactersLandTheSameEverywhere(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 137, Products: 10, Companies: 5, Orders: 40}
	srv := serveFake(t, cat)
	i := 0
	for cat.OrderStatus(i) != "approved" {
		i++
	}
	lines := srv.Order(i)["line_items"].([]map[string]any)
	lines[0]["warehouse"] = "MA\x00IN"
	srv.PatchOrder(i, map[string]any{"notes": "call\x00back", "line_items": lines})
	schema, conn := pgSchema(t)
	path := warehouseFile(t, srv.URL(), schema, `
sink "parquet" "lake" {
  path = "out"
}
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.postgres.wh
  mode = "merge"
}
pipeline "orders_lake" {
  from = connector.nuorder.orders
  to   = sink.parquet.lake
}`)
	env := append(credEnv(e2eCreds), "E2E_DSN="+pgDSN(t))
	if r := runPipeline(t, filepath.Dir(path), env, "run", "-f", path); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var notes, wh, docNotes string
	err := conn.QueryRow(context.Background(), fmt.Sprintf(`SELECT notes, line_items->0->>'warehouse', document->>'notes' FROM %s.orders WHERE _id = $1`, schema),
		cat.OrderID(i)).Scan(&notes, &wh, &docNotes)
	if err != nil || notes != "call\uFFFDback" || wh != "MA\uFFFDIN" || docNotes != "call\uFFFDback" {
		t.Fatalf("in PostgreSQL: %q %q %q (%v)", notes, wh, docNotes, err)
	}
	tbl, _ := readParquet(t, filepath.Join(filepath.Dir(path), "out", "orders"))
	ids, pq := stringColumn(t, tbl, "_id"), stringColumn(t, tbl, "notes")
	for k := range ids {
		if ids[k] == cat.OrderID(i) && pq[k] != "call\uFFFDback" {
			t.Fatalf("in Parquet: %q", pq[k])
		}
	}
}

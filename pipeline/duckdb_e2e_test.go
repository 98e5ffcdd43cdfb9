package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"pipehost/connector/nuorder/fakeapi"
)

// duckdbScript runs the SQL queries it reads as a JSON array on stdin with
// DuckDB's Node.js package and prints, per query, its rows or its error.
const duckdbScript = `
const { DuckDBInstance } = require(process.env.PIPEHOST_TEST_DUCKDB);
(async () => {
  const queries = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  const out = [];
  for (const q of queries) {
    try {
      const r = await conn.runAndReadAll(q);
      out.push({ rows: r.getRowObjectsJson() });
    } catch (e) {
      out.push({ error: e.message });
    }
  }
  process.stdout.write(JSON.stringify(out));
})();
`

// duckdbResult is one query's answer.
type duckdbResult struct {
	Rows  []map[string]any `json:"rows"`
	Error string           `json:"error"`
}

// duckdb runs queries with DuckDB (the npm package PIPEHOST_TEST_DUCKDB
// names; `make test` installs it through scripts/with-duckdb.sh).
func duckdb(t *testing.T, queries []string) []duckdbResult {
	t.Helper()
	if os.Getenv("PIPEHOST_TEST_DUCKDB") == "" {
		t.Skip("PIPEHOST_TEST_DUCKDB is not set: run the tests with `make test` (scripts/with-duckdb.sh installs DuckDB's Node.js package)")
	}
	script := filepath.Join(t.TempDir(), "duckdb.cjs")
	if err := os.WriteFile(script, []byte(duckdbScript), 0o644); err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(queries)
	cmd := exec.Command("node", script)
	cmd.Stdin = bytes.NewReader(in)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\n%s", err, errb.String())
	}
	var res []duckdbResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res) != len(queries) {
		t.Fatalf("DuckDB answered %q (%v)", out.String(), err)
	}
	return res
}

// TestDuckDBReadsEveryColumnOfEveryStream: every Parquet file every source
// stream writes is read whole by DuckDB, and each list column's lengths are
// summed, in files whose lists are all empty ("shipments": [] as NuOrder
// recorded in 2023, products' "warehouses": []), null (documents without
// the key, as in 2014) or filled. Timestamps are read as TIMESTAMP WITH
// TIME ZONE.
func TestDuckDBReadsEveryColumnOfEveryStream(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 83, Products: 30, Companies: 20, Orders: 300}
	srv := serveFake(t, cat)
	path := incrementalFile(t, srv.URL(), cat)
	dir := filepath.Dir(path)
	os.WriteFile(path, []byte(mustRead(t, path)+"\npipeline \"shipments\" {\n  from = connector.nuorder.shipments\n  to   = sink.parquet.lake\n}\n"), 0o644)
	if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var queries, what []string
	for _, stream := range []string{"products", "locations", "companies", "orders", "order_lines", "shipments"} {
		files, _ := filepath.Glob(filepath.Join(dir, "out", stream, "*.parquet"))
		if len(files) == 0 {
			t.Fatalf("no files for %s", stream)
		}
		tbl, _ := readParquet(t, filepath.Join(dir, "out", stream))
		var lists []string
		for _, f := range tbl.Schema().Fields() {
			if strings.HasPrefix(f.Type.String(), "list<") {
				lists = append(lists, f.Name)
			}
		}
		tbl.Release()
		for _, f := range files {
			src := fmt.Sprintf("read_parquet('%s')", f)
			queries = append(queries, "SELECT count(*) AS n FROM (SELECT * FROM "+src+")")
			what = append(what, f+": every column")
			for _, l := range lists {
				queries = append(queries, fmt.Sprintf("SELECT sum(len(%q)) AS n, count(*) FILTER (WHERE %q IS NULL) AS nulls, count(*) FILTER (WHERE len(%q) = 0) AS empties FROM %s", l, l, l, src))
				what = append(what, f+": list "+l)
			}
			// Every file's metadata, statistics included, reads (3 of 4
			// orders files were refused: nested all-null timestamps had
			// min > max flagged as set); top-level columns keep theirs.
			queries = append(queries, fmt.Sprintf("SELECT count(*) AS n, count(*) FILTER (WHERE path_in_schema = '_extracted_at' AND stats_min IS NOT NULL) AS top FROM parquet_metadata('%s')", f))
			what = append(what, f+": metadata")
			queries = append(queries, "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "+src+") WHERE column_type LIKE 'TIMESTAMP%'")
			what = append(what, f+": timestamp types")
			if stream == "orders" {
				queries = append(queries, "SELECT column_type FROM (DESCRIBE SELECT total FROM "+src+")")
				what = append(what, f+": amount type")
			}
		}
	}
	res := duckdb(t, queries)
	shapes := map[string]bool{}
	for i, r := range res {
		if r.Error != "" {
			t.Fatalf("DuckDB cannot read %s: %s", what[i], r.Error)
		}
		if strings.HasSuffix(what[i], ": timestamp types") {
			for _, row := range r.Rows {
				if row["column_type"] != "TIMESTAMP WITH TIME ZONE" {
					t.Fatalf("%s: %s is %s", what[i], row["column_name"], row["column_type"])
				}
			}
		}
		if strings.HasSuffix(what[i], ": metadata") && (r.Rows[0]["n"] == "0" || r.Rows[0]["top"] == "0") {
			t.Fatalf("%s: %v (no statistics for the top-level _extracted_at)", what[i], r.Rows[0])
		}
		if strings.HasSuffix(what[i], ": amount type") && r.Rows[0]["column_type"] != "DECIMAL(18,4)" {
			t.Fatalf("%s: orders.total is %v, want DECIMAL(18,4)", what[i], r.Rows[0]["column_type"])
		}
		if strings.Contains(what[i], ": list shipments") {
			row := r.Rows[0]
			if row["nulls"] != "0" {
				shapes["null"] = true
			}
			if row["empties"] != "0" {
				shapes["empty"] = true
			}
			if row["n"] != nil && row["n"] != "0" {
				shapes["filled"] = true
			}
		}
	}
	if !shapes["null"] || !shapes["empty"] || !shapes["filled"] {
		t.Fatalf("the orders read did not give null, empty and filled shipments lists: %v", shapes)
	}
	t.Logf("DuckDB answered %d queries over every file of 6 streams", len(queries))
}

// TestTheLatestVersionQueryFollowsStatusChanges: orders change status
// between runs (NuOrder leaves modified_on alone), one of them twice; the
// query examples/latest_orders.sql ships returns, for every order, the
// status NuOrder shows now. The README's former query (ORDER BY
// modified_on DESC) tied the versions.
func TestTheLatestVersionQueryFollowsStatusChanges(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 29, Products: 20, Companies: 10, Orders: 300}
	srv := serveFake(t, cat)
	path := incrementalFile(t, srv.URL(), cat)
	dir := filepath.Dir(path)
	run := func() {
		t.Helper()
		if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path, "orders"); r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
	}
	run()
	var approved []int
	for i := 0; i < cat.Orders && len(approved) < 6; i++ {
		if cat.OrderStatus(i) == "approved" {
			approved = append(approved, i)
		}
	}
	if len(approved) < 6 {
		t.Fatal("the catalog has too few approved orders")
	}
	want := map[string]string{}
	for n, st := range []string{"processed", "processed", "shipped", "cancelled", "processed", "shipped"} {
		srv.SetOrderStatus(approved[n], st)
		want[cat.OrderID(approved[n])] = st
	}
	run()
	srv.SetOrderStatus(approved[0], "shipped") // processed, then shipped
	want[cat.OrderID(approved[0])] = "shipped"
	srv.SetOrderStatus(approved[1], "cancelled")
	want[cat.OrderID(approved[1])] = "cancelled"
	run()

	sql := mustRead(t, "../examples/latest_orders.sql")
	glob := filepath.Join(dir, "out", "orders", "*.parquet")
	if !strings.Contains(sql, "'data/orders/*.parquet'") {
		t.Fatal("examples/latest_orders.sql no longer reads data/orders")
	}
	sql = strings.Replace(sql, "'data/orders/*.parquet'", "'"+glob+"'", 1)
	res := duckdb(t, []string{
		"SELECT _id, status FROM (" + strings.TrimSuffix(strings.TrimSpace(stripComments(sql)), ";") + ")",
		"SELECT count(*) AS versions FROM read_parquet('" + glob + "') WHERE _id = '" + cat.OrderID(approved[0]) + "'",
	})
	if res[0].Error != "" || res[1].Error != "" {
		t.Fatalf("DuckDB: %s %s", res[0].Error, res[1].Error)
	}
	if v := res[1].Rows[0]["versions"]; v != "3" {
		t.Fatalf("order %s has %v versions in the lake, want 3", cat.OrderID(approved[0]), v)
	}
	seen := 0
	for _, row := range res[0].Rows {
		id, _ := row["_id"].(string)
		if st, ok := want[id]; ok {
			seen++
			if row["status"] != st {
				t.Fatalf("the latest version of order %s says %v, NuOrder says %s", id, row["status"], st)
			}
		}
	}
	if seen != len(want) {
		t.Fatalf("the query returned %d of the %d changed orders", seen, len(want))
	}
}

// stripComments drops SQL line comments.
func stripComments(sql string) string {
	var out []string
	for _, l := range strings.Split(sql, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

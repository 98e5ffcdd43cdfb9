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
	if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var queries, what []string
	for _, stream := range []string{"products", "locations", "companies", "orders", "order_lines"} {
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
	t.Logf("DuckDB answered %d queries over every file of 5 streams", len(queries))
}

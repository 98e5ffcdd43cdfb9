package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestTheExamplesRunOneAfterAnotherInOneFolder: warehouse.hcl, lake-s3.hcl,
// duckdb.hcl and sinks.hcl declare pipelines of the same names (orders, companies,
// shipments) into different destinations. Run one after another, twice, in
// one folder against the sandbox (a throwaway PostgreSQL and S3 server),
// none is refused as "other data": each file has its own state, state show
// lists that file's pipelines only, and the second round adds no row.
func TestTheExamplesRunOneAfterAnotherInOneFolder(t *testing.T) {
	t.Parallel()
	schema, conn := pgSchema(t)
	lake := newS3Lake(t)
	sinksFile := examplesDir(t)
	dir := filepath.Dir(sinksFile)
	env := append([]string{"WAREHOUSE_DSN=" + pgDSN(t), "WAREHOUSE_SCHEMA=" + schema, "LAKE_BUCKET=" + lake.bucket, "LAKE_ENDPOINT=" + lake.endpoint}, lake.env...)
	files := []string{"warehouse.hcl", "lake-s3.hcl", "duckdb.hcl", "sinks.hcl"}
	var ordersInWarehouse, objects int
	for round := 1; round <= 2; round++ {
		for _, f := range files {
			r := runPipeline(t, dir, env, "run", "--sandbox", "-f", f)
			if r.code != 0 {
				t.Fatalf("round %d, %s: exit %d\n%s\n%s", round, f, r.code, r.stdout, r.stderr)
			}
		}
		n := count(t, conn, "SELECT count(*) FROM "+schema+".orders")
		if d := count(t, conn, "SELECT count(DISTINCT _id) FROM "+schema+".orders"); n == 0 || d != n {
			t.Fatalf("round %d: the warehouse holds %d orders, %d distinct", round, n, d)
		}
		if round == 1 {
			ordersInWarehouse, objects = n, len(lake.keys(t, "nuorder/"))
			ids := lake.idsUnder(t, "nuorder/orders/")
			if len(ids) == 0 || len(ids) != len(dedupe(ids)) {
				t.Fatalf("the lake holds %d orders, %d distinct", len(ids), len(dedupe(ids)))
			}
		} else if n != ordersInWarehouse || len(lake.keys(t, "nuorder/")) != objects {
			t.Fatalf("the second round changed the destinations: %d orders in the warehouse (was %d), %d objects (was %d)",
				n, ordersInWarehouse, len(lake.keys(t, "nuorder/")), objects)
		}
	}
	if res := duckdbFile(t, filepath.Join(dir, "nuorder.duckdb"), "SELECT count(*) AS n, count(DISTINCT _id) AS ids FROM wh.orders"); res[0].Rows[0]["n"] != fmt.Sprint(ordersInWarehouse) || res[0].Rows[0]["ids"] != res[0].Rows[0]["n"] {
		t.Fatalf("the DuckDB file holds %v orders (%v distinct), the warehouse %d", res[0].Rows[0]["n"], res[0].Rows[0]["ids"], ordersInWarehouse)
	}
	for _, f := range files {
		r := runPipeline(t, dir, nil, "state", "show", "--json", "-f", f)
		var doc struct {
			Entries []struct{ Pipeline string }
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &doc) != nil {
			t.Fatalf("state show -f %s: exit %d\n%s%s", f, r.code, r.stdout, r.stderr)
		}
		declared := map[string]bool{}
		for _, pl := range pipelinesOf(t, filepath.Join(dir, f)) {
			declared[pl] = true
		}
		if len(doc.Entries) == 0 {
			t.Fatalf("state show -f %s shows nothing", f)
		}
		for _, e := range doc.Entries {
			if !declared[e.Pipeline] {
				t.Fatalf("state show -f %s shows pipeline %s, which another file declares", f, e.Pipeline)
			}
		}
	}
}

// pipelinesOf lists the pipeline names a file declares.
func pipelinesOf(t *testing.T, path string) []string {
	var out []string
	for _, line := range strings.Split(mustRead(t, path), "\n") {
		if strings.HasPrefix(line, `pipeline "`) {
			out = append(out, strings.Split(line, `"`)[1])
		}
	}
	return out
}

func dedupe(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"pipehost/connector/nuorder/fakeapi"
)

// BenchmarkPostgresAgainstTheCopyFloor measures, side by side in each
// iteration, orders and order lines (one read) from a fake NuOrder serving
// pre-rendered listings into Parquet files, into PostgreSQL appending, and
// into PostgreSQL merging; then the floor: the server loading the very same
// rows with psql's \copy from a file (text format, as psql writes it) into
// tables of the same definition and indexes (none for append, the key's for
// merge). It reports each load's time and the ratios of rates:
// postgres_append/copy_floor, postgres_merge/copy_floor and
// postgres/parquet (append). 100,000 orders unless BENCH_PG_ORDERS says:
//
//	make build && scripts/with-postgres.sh go test ./pipeline -run '^$' -bench PostgresAgainstTheCopyFloor -benchtime 1x
func BenchmarkPostgresAgainstTheCopyFloor(b *testing.B) {
	dsn := pgDSN(b)
	psql, err := exec.LookPath("psql")
	if err != nil {
		b.Skip("psql is not installed")
	}
	orders := 100_000
	if n, err := strconv.Atoi(os.Getenv("BENCH_PG_ORDERS")); err == nil && n > 0 {
		orders = n
	}
	cat := fakeapi.Catalog{Seed: 73, Products: 100, Companies: 50, Orders: orders}
	srv, conn := prerenderedFakeAndPostgres(b, cat, dsn)
	ctx := context.Background()
	var tParquet, tAppend, tMerge, tFloorAppend, tFloorMerge time.Duration
	streams := []string{"orders", "order_lines"}
	for i := 0; i < b.N; i++ {
		base := fmt.Sprintf("bench_%d", time.Now().UnixNano())
		appendSchema, mergeSchema, floorSchema := base+"_append", base+"_merge", base+"_floor"
		defer func() {
			for _, s := range []string{appendSchema, mergeSchema, floorSchema} {
				conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE")
			}
		}()
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
sink "postgres" "append" {
  dsn    = env("E2E_DSN")
  schema = %q
}
sink "postgres" "merge" {
  dsn    = env("E2E_DSN")
  schema = %q
}
`, plugin("nuorder"), srv.URL(), nuorderCreds, appendSchema, mergeSchema)
		for _, target := range []string{"parquet", "append", "merge"} {
			for _, st := range streams {
				sink, mode := "sink.postgres."+target, "append"
				if target == "parquet" {
					sink = "sink.parquet.lake"
				}
				if target == "merge" {
					mode = "merge"
				}
				hcl += fmt.Sprintf("pipeline %q {\n  from = connector.nuorder.%s\n  to = %s\n  mode = %q\n}\n", target+"_"+st, st, sink, mode)
			}
		}
		path := filepath.Join(dir, "pipeline.hcl")
		os.WriteFile(path, []byte(hcl), 0o644)
		env := append(credEnv(e2eCreds), "E2E_DSN="+dsn)
		for _, target := range []struct {
			name string
			into *time.Duration
		}{{"parquet", &tParquet}, {"append", &tAppend}, {"merge", &tMerge}} {
			cmd := exec.Command(filepath.Join(binDir, "pipeline"), "run", "-f", path, target.name+"_orders", target.name+"_order_lines")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), env...)
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", target.name, err, out)
			}
			*target.into += time.Since(start)
		}
		// The floor: the same rows, from a file, by the server's COPY.
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+floorSchema); err != nil {
			b.Fatal(err)
		}
		for _, st := range streams {
			file := filepath.Join(dir, st+".copy")
			run := func(cmd string) time.Duration {
				start := time.Now()
				if out, err := exec.Command(psql, dsn, "-v", "ON_ERROR_STOP=1", "-q", "-c", cmd).CombinedOutput(); err != nil {
					b.Fatalf("psql %s: %v\n%s", cmd, err, out)
				}
				return time.Since(start)
			}
			run(fmt.Sprintf(`\copy %s.%s TO '%s'`, appendSchema, st, file))
			for _, floor := range []struct {
				like string
				into *time.Duration
			}{{appendSchema, &tFloorAppend}, {mergeSchema, &tFloorMerge}} {
				table := floorSchema + "." + st
				if _, err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s; CREATE TABLE %s (LIKE %s.%s INCLUDING ALL)", table, table, floor.like, st)); err != nil {
					b.Fatal(err)
				}
				*floor.into += run(fmt.Sprintf(`\copy %s FROM '%s'`, table, file))
			}
			var n int
			conn.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s.%s", floorSchema, st)).Scan(&n)
			if st == "orders" && n != len(nonPendingOrders(cat)) {
				b.Fatalf("the floor loaded %d orders", n)
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(tParquet.Seconds()/n, "parquet-s")
	b.ReportMetric(tAppend.Seconds()/n, "append-s")
	b.ReportMetric(tMerge.Seconds()/n, "merge-s")
	b.ReportMetric(tFloorAppend.Seconds()/n, "floor-append-s")
	b.ReportMetric(tFloorMerge.Seconds()/n, "floor-merge-s")
	b.ReportMetric(tFloorAppend.Seconds()/tAppend.Seconds(), "postgres_append/copy_floor")
	b.ReportMetric(tFloorMerge.Seconds()/tMerge.Seconds(), "postgres_merge/copy_floor")
	b.ReportMetric(tParquet.Seconds()/tAppend.Seconds(), "postgres/parquet")
	fmt.Fprintf(os.Stderr, "RESULT postgres orders=%d postgres_append/copy_floor=%.2f postgres_merge/copy_floor=%.2f postgres/parquet=%.2f\n",
		orders, tFloorAppend.Seconds()/tAppend.Seconds(), tFloorMerge.Seconds()/tMerge.Seconds(), tParquet.Seconds()/tAppend.Seconds())
}

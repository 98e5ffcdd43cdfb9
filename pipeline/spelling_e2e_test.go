package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"pipehost/connector/nuorder/fakeapi"
)

// nestedTime finds a nested timestamp member as a text sink writes it.
var nestedTime = regexp.MustCompile(`"(ship_start|shipment_date)":"([^"]*)"`)

// TestNestedTimestampsCarryTheirZoneInEverySink: timestamps inside lists and
// structs (line_items[].ship_start, shipments[].shipment_date) are written
// as RFC 3339 UTC, like the top-level ones, in CSV, JSON lines and
// PostgreSQL's jsonb; they were "2025-01-11 17:58:00", without a zone.
func TestNestedTimestampsCarryTheirZoneInEverySink(t *testing.T) {
	schema, conn := pgSchema(t)
	cat := fakeapi.Catalog{Seed: 79, Products: 10, Companies: 5, Orders: 200}
	srv := serveFake(t, cat)
	path := nuorderFile(t, srv.URL(), `
sink "csv" "files" {
  path = "csv"
}
sink "jsonl" "files" {
  path = "jsonl"
}
sink "postgres" "wh" {
  dsn    = env("E2E_DSN")
  schema = "`+schema+`"
}
pipeline "orders_csv" {
  from = connector.nuorder.orders
  to   = sink.csv.files
}
pipeline "orders_jsonl" {
  from = connector.nuorder.orders
  to   = sink.jsonl.files
}
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.postgres.wh
}`)
	dir := filepath.Dir(path)
	if r := runPipeline(t, dir, append(credEnv(e2eCreds), "E2E_DSN="+pgDSN(t)), "run", "-f", path); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	check := func(where, text string) int {
		t.Helper()
		n := 0
		for _, m := range nestedTime.FindAllStringSubmatch(text, -1) {
			if _, err := time.Parse(time.RFC3339Nano, m[2]); err != nil || !strings.HasSuffix(m[2], "Z") {
				t.Fatalf("%s: %s = %q is not RFC 3339 UTC", where, m[1], m[2])
			}
			n++
		}
		return n
	}
	for _, sink := range []string{"csv", "jsonl"} {
		files, _ := filepath.Glob(filepath.Join(dir, sink, "orders", "*"))
		n := 0
		for _, f := range files {
			b, _ := os.ReadFile(f)
			text := string(b)
			if sink == "csv" {
				text = strings.ReplaceAll(text, `""`, `"`) // CSV doubles the quotes inside a cell
			}
			n += check(f, text)
		}
		if n == 0 {
			t.Fatalf("%s: no nested timestamp found", sink)
		}
	}
	rows, err := conn.Query(context.Background(), "SELECT line_items::text || shipments::text FROM "+schema+".orders")
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for rows.Next() {
		var s string
		rows.Scan(&s)
		all.WriteString(strings.ReplaceAll(s, `": "`, `":"`)) // jsonb's text has a space after the colon
	}
	rows.Close()
	if n := check("postgres jsonb", all.String()); n == 0 {
		t.Fatal("postgres: no nested timestamp found")
	}
}

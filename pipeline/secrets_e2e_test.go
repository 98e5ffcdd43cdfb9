package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipehost/connector/nuorder/fakeapi"
)

// TestNoSecretAnywhere runs every command at trace level, through successes
// and failures (a refused credential, an unreachable warehouse whose DSN has
// a password, a push with rejects), then scans everything the host printed
// or wrote (stdout, stderr, state files and run history, Parquet files with
// their metadata, CSV and JSON lines with their manifests, rejects) for the
// secrets it was given.
func TestNoSecretAnywhere(t *testing.T) {
	srv, env := sandboxFake(t)
	const dsnPassword = "Pg-Pa55w0rd-9e1c"
	secrets := []string{e2eCreds.ConsumerSecret, e2eCreds.TokenSecret, dsnPassword}
	dir := t.TempDir()
	sku := fakeapi.SandboxCatalog.Product(2)["sizes"].([]map[string]any)[0]["_id"].(string)
	os.WriteFile(filepath.Join(dir, "stock.csv"), []byte("SKU,Warehouse,Qty\n"+sku+",MAIN,5\n"+sku+",NOWHERE,5\n"+sku+",MAIN,"+e2eCreds.ConsumerKey+"\n"), 0o644)
	path := filepath.Join(dir, "pipeline.hcl")
	os.WriteFile(path, []byte(fmt.Sprintf(`
%ssink "parquet" "lake" {
  path = "lake"
}
sink "csv" "flat" {
  path = "flat"
}
sink "jsonl" "events" {
  path = "events"
}
sink "postgres" "wh" {
  dsn = "postgres://loader:%s@127.0.0.1:1/analytics?connect_timeout=1"
}
pipeline "products" {
  from = connector.nuorder.products
  to   = sink.parquet.lake
}
pipeline "companies_csv" {
  from = connector.nuorder.companies
  to   = sink.csv.flat
}
pipeline "orders_jsonl" {
  from    = connector.nuorder.orders
  options = { statuses = "approved" }
  to      = sink.jsonl.events
}
pipeline "orders_wh" {
  from = connector.nuorder.orders
  to   = sink.postgres.wh
}
pipeline "stock" {
  from    = connector.files.csv
  options = { path = "stock.csv" }
  to      = connector.nuorder.inventory
  columns = { sku_id = "SKU", warehouse = "Warehouse", quantity = "Qty" }
}
`, envConnector(warehousesHCL(fakeapi.SandboxCatalog.Warehouses())), dsnPassword)), 0o644)
	var printed bytes.Buffer
	trace := []string{"--log-level", "trace", "-f", path}
	for _, args := range [][]string{
		{"validate"}, {"streams"}, {"check"}, {"plan"},
		{"run", "products", "companies_csv", "orders_jsonl", "stock"},
		{"run", "orders_wh"}, // fails: the warehouse cannot be reached
		{"state", "show"},
	} {
		r := runPipeline(t, dir, env, append(args, trace...)...)
		printed.WriteString(r.stdout + r.stderr)
	}
	// A refused secret, too.
	bad := append([]string(nil), env...)
	for i, kv := range bad {
		if strings.HasPrefix(kv, "NUORDER_CONSUMER_SECRET=") {
			bad[i] = "NUORDER_CONSUMER_SECRET=wrong-" + e2eCreds.ConsumerSecret
		}
	}
	for _, args := range [][]string{{"check"}, {"run", "products"}} {
		r := runPipeline(t, dir, bad, append(args, trace...)...)
		if r.code == 0 {
			t.Fatalf("%v with a wrong secret succeeded", args)
		}
		printed.WriteString(r.stdout + r.stderr)
	}
	if !strings.Contains(printed.String(), "authentication refused") || !strings.Contains(printed.String(), "orders_wh") {
		t.Fatal("the failures this test needs did not happen")
	}
	scanned := 0
	check := func(where string, b []byte) {
		scanned++
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Fatalf("%s holds a secret (%s...)", where, s[:4])
			}
		}
	}
	check("the output", printed.Bytes())
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == path {
			return nil
		}
		b, _ := os.ReadFile(p)
		check(p, b)
		return nil
	})
	for _, want := range []string{".pipeline-state/pipeline/products.json", "lake/products", "flat/companies/.pipehost-companies_csv.json", "events/orders", "rejects"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Fatalf("%s was not written, so not scanned", want)
		}
	}
	t.Logf("scanned the output of 9 commands and %d files", scanned-1)
	_ = srv
}

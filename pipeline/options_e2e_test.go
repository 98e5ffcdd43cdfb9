package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadOptionValuesAreRefusedWhereTheyAreWritten: a misspelt status and a
// date that does not exist in a pipeline's options are refused by
// validate, plan and run, each at the value's file:line:col with what was
// meant; nothing runs and no state is written (the misspelt status used to
// read nothing in it and be stored in the checkpoint).
func TestBadOptionValuesAreRefusedWhereTheyAreWritten(t *testing.T) {
	srv := startFake(t, 10)
	path := nuorderFile(t, srv.URL(), `
pipeline "orders" {
  from    = connector.nuorder.orders
  to      = sink.parquet.lake
  options = { statuses = "aproved,shipped", approved_from = "2026-13-01" }
}`)
	dir := filepath.Dir(path)
	line := 0
	for i, l := range strings.Split(mustRead(t, path), "\n") {
		if strings.Contains(l, "options =") {
			line = i + 1
		}
	}
	for _, cmd := range [][]string{{"validate"}, {"plan"}, {"run"}} {
		r := runPipeline(t, dir, credEnv(e2eCreds), append(cmd, "-f", path)...)
		if r.code != exitUsage {
			t.Fatalf("%v: exit %d, want %d\n%s", cmd, r.code, exitUsage, r.stderr)
		}
		for _, want := range []string{
			fmt.Sprintf("at %s:%d:26", path, line), `"aproved" is not one of`, `did you mean "approved"?`,
			fmt.Sprintf("at %s:%d:61", path, line), `approved_from = "2026-13-01" is not a date`,
		} {
			if !strings.Contains(r.stderr, want) {
				t.Fatalf("%v: the diagnostics lack %q:\n%s", cmd, want, r.stderr)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".pipeline-state")); !os.IsNotExist(err) {
		t.Fatal("a refused run wrote state")
	}
	if n := srv.TotalRequests(); n != 0 {
		t.Fatalf("the fake received %d requests", n)
	}
}

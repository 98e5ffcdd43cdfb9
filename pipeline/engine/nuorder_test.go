package engine

// In-process tests of the engine with the NuOrder connector linked against
// its fake and the real Parquet sink: what needs no process boundary is
// tested here, not through the binaries.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipehost/connector/files"
	"pipehost/connector/nuorder"
	"pipehost/connector/nuorder/fakeapi"
	"pipehost/pipeline/config"
	"pipehost/pipeline/state"
	_ "pipehost/sinks/parquet"
)

var linkedCreds = fakeapi.Credentials{ConsumerKey: "ck", ConsumerSecret: "cs", Token: "tk", TokenSecret: "ts"}

// linkedOpener opens the NuOrder connector in process, and the files
// connector for a file that uses it.
func linkedOpener(_ context.Context, name string, block *config.Connector, env OpenEnv) (Opened, error) {
	if block == nil {
		return Opened{Conn: files.New(env.BaseDir)}, nil
	}
	return Opened{Conn: nuorder.New(nil, nil)}, nil
}

// nuorderHost opens a pipeline file against a fake NuOrder at url, with a
// state folder, in process.
func nuorderHost(t *testing.T, dir, url, pipelines string) *Host {
	t.Helper()
	path := filepath.Join(dir, "p.hcl")
	os.WriteFile(path, []byte(fmt.Sprintf(`
connector "nuorder" {
  config {
    base_url           = %q
    consumer_key       = %q
    consumer_secret    = %q
    token              = %q
    token_secret       = %q
    cursor_lag_seconds = 0
  }
}
sink "parquet" "lake" {
  path = "out"
}
%s`, url, linkedCreds.ConsumerKey, linkedCreds.ConsumerSecret, linkedCreds.Token, linkedCreds.TokenSecret, pipelines)), 0o644)
	f, diags := config.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	store, err := state.OpenLocal(filepath.Join(dir, ".state"))
	if err != nil {
		t.Fatal(err)
	}
	h, diags := Open(context.Background(), f, Options{State: store, Open: linkedOpener})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	t.Cleanup(h.Close)
	return h
}

func fakeNuOrder(t *testing.T, cat fakeapi.Catalog) *fakeapi.Server {
	t.Helper()
	srv, err := fakeapi.Start(fakeapi.Options{Credentials: linkedCreds, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestInProcessOrdersResumeFollowStatusAndBindToTheirAccount: orders read
// in process commit into Parquet, the next run resumes (0 rows), a status
// change NuOrder makes without moving modified_on is the next run's one
// row, plan says where it resumes, and the same state pointed at another
// account is refused as other data.
func TestInProcessOrdersResumeFollowStatusAndBindToTheirAccount(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 29, Products: 10, Companies: 5, Orders: 120}
	srv := fakeNuOrder(t, cat)
	dir := t.TempDir()
	const orders = `
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.parquet.lake
}`
	h := nuorderHost(t, dir, srv.URL(), orders)
	pl := h.File.Pipeline("orders")
	first := h.Run(context.Background(), pl, RunOptions{})
	if first.Err != nil || first.Rows == 0 {
		t.Fatalf("first run: %d rows, %v", first.Rows, first.Err)
	}
	if again := h.Run(context.Background(), pl, RunOptions{}); again.Err != nil || again.Rows != 0 {
		t.Fatalf("second run: %d rows, %v", again.Rows, again.Err)
	}
	moved := -1
	for i := 0; i < cat.Orders; i++ {
		if cat.OrderStatus(i) == "approved" {
			moved = i
			break
		}
	}
	srv.SetOrderStatus(moved, "processed")
	if r := h.Run(context.Background(), pl, RunOptions{}); r.Err != nil || r.Rows != 1 {
		t.Fatalf("after a status change: %d rows, %v", r.Rows, r.Err)
	}
	if res, from := h.Plan(context.Background(), pl, RunOptions{}); res.Err != nil || !strings.HasPrefix(from, "after checkpoint") {
		t.Fatalf("plan: %q, %v", from, res.Err)
	}
	h.Close()
	other := fakeNuOrder(t, fakeapi.Catalog{Seed: 31, Products: 5, Orders: 20})
	h2 := nuorderHost(t, dir, other.URL(), orders)
	r := h2.Run(context.Background(), h2.File.Pipeline("orders"), RunOptions{})
	if !errors.Is(r.Err, ErrStateMismatch) || !strings.Contains(r.Err.Error(), "run --full-refresh orders") {
		t.Fatalf("another account: %v", r.Err)
	}
}

// TestInProcessOptionsAreCheckedAtTheirValue: Open refuses an option value
// the stream does not allow, at the value, before any request.
func TestInProcessOptionsAreCheckedAtTheirValue(t *testing.T) {
	srv := fakeNuOrder(t, fakeapi.Catalog{Seed: 29, Products: 5, Orders: 10})
	dir := t.TempDir()
	path := filepath.Join(dir, "p.hcl")
	os.WriteFile(path, []byte(fmt.Sprintf(`
connector "nuorder" {
  config {
    base_url = %q
    consumer_key = "ck"
    consumer_secret = "cs"
    token = "tk"
    token_secret = "ts"
  }
}
sink "parquet" "lake" {
  path = "out"
}
pipeline "orders" {
  from    = connector.nuorder.orders
  to      = sink.parquet.lake
  options = { statuses = "aproved" }
}`, srv.URL())), 0o644)
	f, _ := config.Load(path)
	_, diags := Open(context.Background(), f, Options{Open: linkedOpener})
	if !diags.HasErrors() || diags[0].Subject == nil || diags[0].Subject.Start.Line != 17 || !strings.Contains(diags[0].Detail, `did you mean "approved"?`) {
		t.Fatalf("diagnostics: %v", diags)
	}
	if srv.TotalRequests() != 0 {
		t.Fatalf("%d requests before a refusal", srv.TotalRequests())
	}
}

// TestInProcessAPushRejectsBadRowsAndSendsTheRest: an inventory push of a
// CSV with a row the mapping refuses (not a number) and a row NuOrder
// cannot take (an unknown UPC): both are rejects with their reasons, in a
// rejects file; the good row is sent.
func TestInProcessAPushRejectsBadRowsAndSendsTheRest(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 41, Products: 5}
	srv := fakeNuOrder(t, cat)
	dir := t.TempDir()
	upc := cat.Product(1)["sizes"].([]map[string]any)[0]["upc"]
	wh := cat.Warehouses()[0]
	os.WriteFile(filepath.Join(dir, "stock.csv"), []byte(fmt.Sprintf("UPC,Whse,Qty\n%v,%s,5\n%v,%s,lots\n999999999999,%s,1\n", upc, wh.Code, upc, wh.Code, wh.Code)), 0o644)
	path := filepath.Join(dir, "p.hcl")
	os.WriteFile(path, []byte(fmt.Sprintf(`
connector "nuorder" {
  config {
    base_url = %q
    consumer_key = "ck"
    consumer_secret = "cs"
    token = "tk"
    token_secret = "ts"
    warehouses = [{ id = %q, code = %q, name = "Main" }]
  }
}
pipeline "stock" {
  from    = connector.files.csv
  options = { path = "stock.csv" }
  to      = connector.nuorder.inventory
  columns = { upc = "UPC", warehouse = "Whse", quantity = "Qty" }
}`, srv.URL(), wh.ID, wh.Code)), 0o644)
	f, diags := config.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	h, diags := Open(context.Background(), f, Options{Open: linkedOpener})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	defer h.Close()
	res := h.Run(context.Background(), h.File.Pipeline("stock"), RunOptions{})
	if res.Err != nil || res.Rows != 1 || res.Rejected() != 2 || res.Push.RejectsFile == "" {
		t.Fatalf("push: %d accepted, %d rejected (%s), %v", res.Rows, res.Rejected(), res.Push.RejectSample, res.Err)
	}
	b, _ := os.ReadFile(res.Push.RejectsFile)
	if !strings.Contains(string(b), "lots") || !strings.Contains(string(b), "999999999999") {
		t.Fatalf("rejects file:\n%s", b)
	}
	if got := srv.Replenishments(wh.ID); len(got) != 1 {
		t.Fatalf("the fake holds %d SKUs, want the good row's", len(got))
	}
}

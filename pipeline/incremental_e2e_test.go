package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

// incrementalFile declares every NuOrder source stream against a fake API,
// with no cursor lag so that changes the test makes are seen at once, and
// the fake's warehouses named in the config (NuOrder has no listing).
func incrementalFile(t testing.TB, baseURL string, cat fakeapi.Catalog) string {
	return writeFile(t, fmt.Sprintf(`
connector "nuorder" {
  plugin = %q
  config {
    base_url           = %q
    cursor_lag_seconds = 0%s%s
  }
}
sink "parquet" "lake" {
  path = "out"
}
pipeline "products" {
  from = connector.nuorder.products
  to   = sink.parquet.lake
}
pipeline "locations" {
  from = connector.nuorder.locations
  to   = sink.parquet.lake
}
pipeline "companies" {
  from = connector.nuorder.companies
  to   = sink.parquet.lake
}
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.parquet.lake
}
pipeline "order_lines" {
  from = connector.nuorder.order_lines
  to   = sink.parquet.lake
}
`, plugin("nuorder"), baseURL, nuorderCreds, warehousesHCL(cat.Warehouses())))
}

// newFiles returns the parquet files of a stream folder not in before.
func newFiles(t *testing.T, dir string, before map[string]bool) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	var out []string
	for _, f := range files {
		if !before[f] {
			out = append(out, f)
		}
	}
	return out
}

func fileSet(dir string) map[string]bool {
	files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	m := map[string]bool{}
	for _, f := range files {
		m[f] = true
	}
	return m
}

// idsIn reads the first column of some parquet files.
func idsIn(t *testing.T, files []string, column string) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		tmp := t.TempDir()
		if err := os.Link(f, filepath.Join(tmp, filepath.Base(f))); err != nil {
			t.Fatal(err)
		}
		tbl, _ := readParquet(t, tmp)
		out = append(out, stringColumn(t, tbl, column)...)
	}
	sort.Strings(out)
	return out
}

func TestIncrementalRunsEmitOnlyWhatChanged(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 31, Products: 40, Companies: 30, Orders: 300}
	srv := serveFake(t, cat)
	path := incrementalFile(t, srv.URL(), cat)
	dir := filepath.Dir(path)
	out := func(stream string) string { return filepath.Join(dir, "out", stream) }
	streams := []string{"products", "locations", "companies", "orders", "order_lines"}

	r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path)
	if r.code != 0 {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stderr)
	}
	before := map[string]map[string]bool{}
	for _, s := range streams {
		before[s] = fileSet(out(s))
		if len(before[s]) == 0 {
			t.Fatalf("first run wrote nothing for %s", s)
		}
	}
	time.Sleep(5 * time.Millisecond)

	// Second run, nothing changed: no stream adds a row.
	r = runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path)
	if r.code != 0 {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stderr)
	}
	for _, s := range streams {
		if added := newFiles(t, out(s), before[s]); len(added) != 0 {
			t.Fatalf("a run with no changes added %v to %s\n%s", added, s, r.stdout)
		}
	}
	time.Sleep(5 * time.Millisecond)

	// Change 3 orders (two edits, one shipped) and add 2 companies.
	var approved []int
	for i := 0; i < cat.Orders && len(approved) < 3; i++ {
		if cat.OrderStatus(i) == "approved" {
			approved = append(approved, i)
		}
	}
	srv.EditOrders(approved[0], approved[1])
	srv.SetOrderStatus(approved[2], "shipped")
	added := srv.AddCompanies(2)

	r = runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path)
	if r.code != 0 {
		t.Fatalf("third run: exit %d\n%s", r.code, r.stderr)
	}
	wantOrders := []string{cat.OrderID(approved[0]), cat.OrderID(approved[1]), cat.OrderID(approved[2])}
	sort.Strings(wantOrders)
	if got := idsIn(t, newFiles(t, out("orders"), before["orders"]), "_id"); strings.Join(got, ",") != strings.Join(wantOrders, ",") {
		t.Fatalf("third run emitted orders %v, want exactly %v", got, wantOrders)
	}
	lineOrders := idsIn(t, newFiles(t, out("order_lines"), before["order_lines"]), "order_id")
	if len(lineOrders) == 0 {
		t.Fatal("no order lines for the changed orders")
	}
	for _, id := range lineOrders {
		if id != wantOrders[0] && id != wantOrders[1] && id != wantOrders[2] {
			t.Fatalf("order line of unchanged order %s", id)
		}
	}
	wantCompanies := []string{cat.CompanyID(added[0]), cat.CompanyID(added[1])}
	sort.Strings(wantCompanies)
	if got := idsIn(t, newFiles(t, out("companies"), before["companies"]), "_id"); strings.Join(got, ",") != strings.Join(wantCompanies, ",") {
		t.Fatalf("third run emitted companies %v, want exactly %v", got, wantCompanies)
	}
	for _, s := range []string{"products", "locations"} {
		if added := newFiles(t, out(s), before[s]); len(added) != 0 {
			t.Fatalf("unchanged stream %s added %v", s, added)
		}
	}
	// The shipped order's new status landed.
	tmp := t.TempDir()
	for _, f := range newFiles(t, out("orders"), before["orders"]) {
		os.Link(f, filepath.Join(tmp, filepath.Base(f)))
	}
	tbl, _ := readParquet(t, tmp)
	ids, statuses := stringColumn(t, tbl, "_id"), stringColumn(t, tbl, "status")
	for i := range ids {
		if ids[i] == cat.OrderID(approved[2]) && statuses[i] != "shipped" {
			t.Fatalf("order %s has status %s, want shipped", ids[i], statuses[i])
		}
	}
}

func TestAKilledRunLosesNoOrderWhenRerun(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 37, Products: 20, Companies: 20, Orders: 2000}
	srv := serveFake(t, cat)
	path := incrementalFile(t, srv.URL(), cat)
	dir := filepath.Dir(path)
	// The first status listing (approved) is answered; the second hangs.
	srv.InjectFault(api.OrdersDetail, fakeapi.Fault{Skip: 1, Delay: time.Minute, Times: 1})

	cmd := exec.Command(filepath.Join(binDir, "pipeline"), "run", "-f", path, "orders")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), credEnv(e2eCreds)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the host and its plugin, killed together
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stateFile := filepath.Join(dir, ".pipeline-state", "pipeline", "orders.json")
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(stateFile)
		if strings.Contains(string(b), `"part": 1`) {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Fatalf("the first listing was never committed; state: %s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // a crash: no cleanup, no goodbye
	cmd.Wait()
	srv.ClearFaults()

	committed := idsIn(t, listFiles(filepath.Join(dir, "out", "orders")), "_id")
	if len(committed) == 0 {
		t.Fatal("nothing was committed before the kill")
	}
	r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path, "orders")
	if r.code != 0 {
		t.Fatalf("rerun: exit %d\n%s", r.code, r.stderr)
	}
	all := idsIn(t, listFiles(filepath.Join(dir, "out", "orders")), "_id")
	want := nonPendingOrders(cat)
	if strings.Join(all, ",") != strings.Join(want, ",") {
		t.Fatalf("after the kill and the rerun: %d rows (%d committed before the kill), want the %d orders once each", len(all), len(committed), len(want))
	}
	var st struct {
		Streams map[string]struct {
			Checkpoint json.RawMessage `json:"checkpoint"`
		} `json:"streams"`
	}
	b, _ := os.ReadFile(stateFile)
	json.Unmarshal(b, &st)
	if cp := string(st.Streams["orders"].Checkpoint); strings.Contains(cp, "until") || !strings.Contains(cp, "cursor") {
		t.Fatalf("checkpoint after the rerun: %s", cp)
	}
}

func listFiles(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	return files
}

func TestSandboxSecondRunAddsNothing(t *testing.T) {
	src, err := os.ReadFile("../pipeline.hcl")
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, strings.Replace(string(src), `"bin/nuorder-plugin"`, fmt.Sprintf("%q", plugin("nuorder")), 1))
	dir := filepath.Dir(path)
	if r := runPipeline(t, dir, nil, "run", "--sandbox", "-f", path); r.code != 0 {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stderr)
	}
	first := map[string]int{}
	for _, s := range []string{"products", "locations", "companies", "orders", "order_lines"} {
		if first[s] = len(listFiles(filepath.Join(dir, "data", s))); first[s] == 0 {
			t.Fatalf("%s: no file after the first run", s)
		}
	}
	orders, _ := readParquet(t, filepath.Join(dir, "data", "orders"))
	cat := fakeapi.SandboxCatalog
	want := len(nonPendingOrders(cat))
	if int(orders.NumRows()) != want {
		t.Fatalf("sandbox orders: %d, want %d", orders.NumRows(), want)
	}
	r := runPipeline(t, dir, nil, "run", "--sandbox", "-f", path)
	if r.code != 0 {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stderr)
	}
	for _, s := range []string{"products", "locations", "companies", "orders", "order_lines"} {
		if n := len(listFiles(filepath.Join(dir, "data", s))); n != first[s] {
			t.Fatalf("%s: the second run added files (%d, then %d)\n%s", s, first[s], n, r.stdout)
		}
	}
}

func TestParquetCommitsTheCheckpointWithTheFile(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 71, Products: 20, Companies: 10, Orders: 1500}
	srv := serveFake(t, cat)
	path := incrementalFile(t, srv.URL(), cat)
	dir := filepath.Dir(path)
	// The host dies right after the first file is renamed into place,
	// before its state store learns the checkpoint.
	killAt(t, dir, path, credEnv(e2eCreds), "after-sink-commit")
	before := idsIn(t, listFiles(filepath.Join(dir, "out", "orders")), "_id")
	if len(before) == 0 {
		t.Fatal("nothing committed before the kill")
	}
	// plan already knows where the rerun will resume: after the first
	// status listing, from the checkpoint in the file's footer; and what
	// the read costs, through the plugin.
	if r := runPipeline(t, dir, credEnv(e2eCreds), "plan", "-f", path, "orders"); r.code != 0 || !strings.Contains(r.stdout, `"part":1`) ||
		!strings.Contains(r.stdout, "the read would make at least 3 request(s):") || !strings.Contains(r.stdout, "3 listing(s) of whole orders") {
		t.Fatalf("plan: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path, "orders"); r.code != 0 {
		t.Fatalf("rerun: exit %d\n%s", r.code, r.stderr)
	}
	all := idsIn(t, listFiles(filepath.Join(dir, "out", "orders")), "_id")
	want := nonPendingOrders(cat)
	if strings.Join(all, ",") != strings.Join(want, ",") {
		t.Fatalf("after the kill (%d rows committed) and the rerun: %d rows, want the %d orders once each", len(before), len(all), len(want))
	}
}

// nonPendingOrders lists, sorted, the _id of every order an orders read
// emits by default (every status but pending).
func nonPendingOrders(cat fakeapi.Catalog) []string {
	var out []string
	for i := 0; i < cat.Orders; i++ {
		if cat.OrderStatus(i) != "pending" {
			out = append(out, cat.OrderID(i))
		}
	}
	sort.Strings(out)
	return out
}

// TestOrdersAndOrderLinesShareOneRead: a run of the orders and order_lines
// pipelines downloads each status listing once, not twice, through the
// plugin; each pipeline keeps its own checkpoint, so running one alone in
// between does not stop the next run sharing the read or emitting exactly
// what changed.
func TestOrdersAndOrderLinesShareOneRead(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 41, Products: 30, Companies: 10, Orders: 400}
	srv := serveFake(t, cat)
	path := incrementalFile(t, srv.URL(), cat)
	dir := filepath.Dir(path)
	out := func(stream string) string { return filepath.Join(dir, "out", stream) }
	listings := func() int { return srv.Requests(api.OrdersDetail) }

	r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path, "--json", "orders", "order_lines")
	if r.code != 0 {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stderr)
	}
	if n := listings(); n != 4 {
		t.Fatalf("the first run downloaded %d status listings for the two pipelines, want 4 (one per status)", n)
	}
	var sum struct {
		Pipelines []struct {
			Name string `json:"name"`
			Rows int64  `json:"rows"`
		} `json:"pipelines"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || len(sum.Pipelines) != 2 {
		t.Fatalf("run --json: %v\n%s", err, r.stdout)
	}
	orders, lines := sum.Pipelines[0].Rows, sum.Pipelines[1].Rows
	if sum.Pipelines[0].Name != "orders" || orders == 0 || lines <= orders {
		t.Fatalf("first run: %+v", sum.Pipelines)
	}
	if got := int64(len(idsIn(t, newFiles(t, out("order_lines"), nil), "order_id"))); got != lines {
		t.Fatalf("order_lines files hold %d rows, the summary says %d", got, lines)
	}

	// order_lines alone: its checkpoint moves on, orders' stays.
	if r = runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path, "order_lines"); r.code != 0 {
		t.Fatalf("order_lines alone: exit %d\n%s", r.code, r.stderr)
	}
	before := map[string]map[string]bool{"orders": fileSet(out("orders")), "order_lines": fileSet(out("order_lines"))}
	var approved []int
	for i := 0; i < cat.Orders && len(approved) < 2; i++ {
		if cat.OrderStatus(i) == "approved" {
			approved = append(approved, i)
		}
	}
	srv.SetOrderStatus(approved[0], "processed")
	srv.EditOrders(approved[1])
	time.Sleep(5 * time.Millisecond)

	start := listings()
	if r = runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path, "orders", "order_lines"); r.code != 0 {
		t.Fatalf("third run: exit %d\n%s", r.code, r.stderr)
	}
	if n := listings() - start; n != 4 {
		t.Fatalf("the third run downloaded %d listings, want 4", n)
	}
	want := []string{cat.OrderID(approved[0]), cat.OrderID(approved[1])}
	sort.Strings(want)
	if got := idsIn(t, newFiles(t, out("orders"), before["orders"]), "_id"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("orders emitted %v, want %v", got, want)
	}
	lineOrders := idsIn(t, newFiles(t, out("order_lines"), before["order_lines"]), "order_id")
	if len(lineOrders) == 0 {
		t.Fatal("order_lines emitted nothing for the two changed orders")
	}
	for _, id := range lineOrders {
		if id != want[0] && id != want[1] {
			t.Fatalf("order_lines emitted a line of unchanged order %s", id)
		}
	}
}

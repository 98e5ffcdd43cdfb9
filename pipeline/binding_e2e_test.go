package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"pipehost/connector/nuorder/fakeapi"
)

// productIDs returns the _id of every row of the products folder, sorted.
func productIDs(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if len(files) == 0 {
		return nil
	}
	tbl, _ := readParquet(t, dir)
	defer tbl.Release()
	ids := stringColumn(t, tbl, "_id")
	sort.Strings(ids)
	return ids
}

// TestAnEmptiedDestinationIsReadAgain: `rm -rf data` (or make clean) while
// the state keeps its checkpoints: the next run does not report 0 rows over
// an empty lake; it says the data is gone and reads it again.
func TestAnEmptiedDestinationIsReadAgain(t *testing.T) {
	srv := startFake(t, 60)
	path := nuorderFile(t, srv.URL(), productsPipeline)
	dir := filepath.Dir(path)
	if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	first := productIDs(t, filepath.Join(dir, "out", "products"))
	if len(first) == 0 {
		t.Fatal("no rows")
	}
	os.RemoveAll(filepath.Join(dir, "out"))
	r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path)
	if r.code != 0 || !strings.Contains(r.stderr, "no longer holds") {
		t.Fatalf("after rm -rf out: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if again := productIDs(t, filepath.Join(dir, "out", "products")); strings.Join(again, ",") != strings.Join(first, ",") {
		t.Fatalf("after rm -rf out the lake holds %d products, want the %d of the first run", len(again), len(first))
	}
	// And now it is in step again: nothing more.
	if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path); r.code != 0 || rowsOf(t, r.stdout, "products") != 0 {
		t.Fatalf("third run: exit %d\n%s", r.code, r.stdout)
	}
}

// TestASandboxCheckpointIsNotUsedForTheRealAccount: the same file and state
// folder, first run with --sandbox, then against "real" NuOrder: the real
// run refuses to resume from the sandbox's checkpoint (it would skip every
// real row older than the sandbox's newest), naming both and the ways out.
func TestASandboxCheckpointIsNotUsedForTheRealAccount(t *testing.T) {
	srv := serveFake(t, fakeapi.SandboxCatalog)
	path := nuorderFile(t, srv.URL(), productsPipeline)
	dir := filepath.Dir(path)
	if r := runPipeline(t, dir, nil, "run", "--sandbox", "-f", path); r.code != 0 {
		t.Fatalf("sandbox run: exit %d\n%s", r.code, r.stderr)
	}
	r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path)
	if r.code == 0 || !strings.Contains(r.stderr, "sandbox") || !strings.Contains(r.stderr, "state reset products") ||
		!strings.Contains(r.stderr, "--full-refresh") {
		t.Fatalf("real run after a sandbox run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, e2eCreds.ConsumerKey) {
		t.Fatal("the message shows the consumer key")
	}
	// The way out works: state reset, then the real rows arrive. (The
	// folder still holds the sandbox's rows, so a reset alone is refused
	// by the destination's own checkpoint; --full-refresh reads anew.)
	if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "--full-refresh", "-f", path); r.code != 0 || rowsOf(t, r.stdout, "products") == 0 {
		t.Fatalf("--full-refresh: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestTwoStateStoresOnOneDestinationDoNotDoubleIt: two pipeline files with
// their own state folders write the same folder. The second resumes from
// the checkpoint the destination holds instead of reading everything again
// (which doubled every row); once it has committed there, the first is
// refused, since its state no longer describes the folder.
func TestTwoStateStoresOnOneDestinationDoNotDoubleIt(t *testing.T) {
	// Every product re-read each run, so that an edit is the next run's row.
	const productsEveryRun = `
pipeline "products" {
  from    = connector.nuorder.products
  to      = sink.parquet.lake
  options = { refresh_hours = 0 }
}`
	srv := startFake(t, 40)
	lake := t.TempDir()
	file := func(stateDir string) string {
		return writeFile(t, fmt.Sprintf(`
state {
  path = %q
}
connector "nuorder" {
  plugin = %q
  config {
    base_url           = %q
    cursor_lag_seconds = 0%s
  }
}
sink "parquet" "lake" {
  path = %q
}
%s`, stateDir, plugin("nuorder"), srv.URL(), nuorderCreds, lake, productsEveryRun))
	}
	a, b := file("state-a"), file("state-b")
	if r := runPipeline(t, filepath.Dir(a), credEnv(e2eCreds), "run", "-f", a); r.code != 0 {
		t.Fatalf("A: exit %d\n%s", r.code, r.stderr)
	}
	n := len(productIDs(t, filepath.Join(lake, "products")))
	r := runPipeline(t, filepath.Dir(b), credEnv(e2eCreds), "run", "-f", b)
	if r.code != 0 || rowsOf(t, r.stdout, "products") != 0 || !strings.Contains(r.stderr, "another state store") {
		t.Fatalf("B after A: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := len(productIDs(t, filepath.Join(lake, "products"))); got != n {
		t.Fatalf("the folder holds %d rows after B, want the %d of A (not doubled)", got, n)
	}
	srv.UpdateProducts(nil, 3)
	if r := runPipeline(t, filepath.Dir(b), credEnv(e2eCreds), "run", "-f", b); r.code != 0 || rowsOf(t, r.stdout, "products") != 1 {
		t.Fatalf("B after a change: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runPipeline(t, filepath.Dir(a), credEnv(e2eCreds), "run", "-f", a)
	if r.code == 0 || !strings.Contains(r.stderr, "another state store") || !strings.Contains(r.stderr, `backend = "postgres"`) {
		t.Fatalf("A after B committed: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestALakeIsReadableStateIsPrivate: data files are created with the mode
// the umask allows (0644 under 022), so other users and services can read
// the lake; the state folder and its files stay private to the owner.
func TestALakeIsReadableStateIsPrivate(t *testing.T) {
	srv := startFake(t, 20)
	path := nuorderFile(t, srv.URL(), productsPipeline)
	dir := filepath.Dir(path)
	if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	mask := syscall.Umask(0)
	syscall.Umask(mask)
	files, _ := filepath.Glob(filepath.Join(dir, "out", "products", "*.parquet"))
	for _, f := range files {
		if fi, _ := os.Stat(f); fi.Mode().Perm() != os.FileMode(0o666&^mask) {
			t.Fatalf("%s is %v, want %v", f, fi.Mode().Perm(), os.FileMode(0o666&^mask))
		}
	}
	states, _ := filepath.Glob(filepath.Join(dir, ".pipeline-state", "*", "*"))
	if len(states) == 0 {
		t.Fatal("no state file was written")
	}
	for _, f := range append(states, filepath.Join(dir, ".pipeline-state"), filepath.Join(dir, ".pipeline-state", "pipeline")) {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s is readable by others (%v)", f, fi.Mode().Perm())
		}
	}
}

// TestAFullRefreshReplacesTheFilesItRefreshes: --full-refresh into Parquet
// replaces the pipeline's files at its final commit (one folder swap), so
// the lake holds one copy of each row, not two; another pipeline's files
// in the same folder stay. Into CSV, which cannot swap, it is refused while
// the folder holds the pipeline's rows, saying what to do.
func TestAFullRefreshReplacesTheFilesItRefreshes(t *testing.T) {
	srv := startFake(t, 50)
	path := nuorderFile(t, srv.URL(), productsPipeline+`
pipeline "more_products" {
  from = connector.nuorder.products
  to   = sink.parquet.lake
}
sink "csv" "flat" {
  path = "flat"
}
pipeline "flat_products" {
  from = connector.nuorder.products
  to   = sink.csv.flat
}`)
	dir := filepath.Dir(path)
	if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	lake := filepath.Join(dir, "out", "products")
	both := productIDs(t, lake) // two pipelines' copies
	r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path, "--full-refresh", "products", "flat_products")
	if r.code != 1 || rowsOf(t, r.stdout, "products") == 0 || !strings.Contains(r.stderr, "would add a second copy") {
		t.Fatalf("full refresh: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if after := productIDs(t, lake); strings.Join(after, ",") != strings.Join(both, ",") {
		t.Fatalf("after a full refresh of one pipeline the folder holds %d rows, want the same %d (one copy per pipeline)", len(after), len(both))
	}
	hidden, _ := filepath.Glob(filepath.Join(dir, "out", ".products.replacing-*"))
	if len(hidden) != 0 {
		t.Fatalf("the replacement folder was left behind: %v", hidden)
	}
}

// TestAForeignFileInTheLakeDoesNotBlockRuns: a 0-byte or foreign .parquet
// file in a stream's folder is ignored with a warning naming it, instead of
// failing every run ("parquet: file too small").
func TestAForeignFileInTheLakeDoesNotBlockRuns(t *testing.T) {
	srv := startFake(t, 20)
	path := nuorderFile(t, srv.URL(), productsPipeline)
	dir := filepath.Dir(path)
	if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	os.WriteFile(filepath.Join(dir, "out", "products", "part-zzzz-empty.parquet"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "out", "products", "part-zzzz-notes.parquet"), []byte("not parquet at all"), 0o644)
	r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path)
	if r.code != 0 || !strings.Contains(r.stderr, "part-zzzz-empty.parquet") || rowsOf(t, r.stdout, "products") != 0 {
		t.Fatalf("with foreign files: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestCommandsThatOnlyLookLeaveNoTrace: validate, streams, plan and check
// create no folder (a sink's path, the state folder) and write no file; and
// validate refuses an option key that run would refuse later.
func TestCommandsThatOnlyLookLeaveNoTrace(t *testing.T) {
	srv := startFake(t, 10)
	root := t.TempDir()
	lake, stateDir := filepath.Join(root, "not", "yet", "lake"), filepath.Join(root, "state-here")
	path := writeFile(t, fmt.Sprintf(`
state {
  path = %q
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
sink "csv" "flat" {
  path = %q
}
pipeline "products" {
  from = connector.nuorder.products
  to   = sink.parquet.lake
}
pipeline "flat" {
  from = connector.nuorder.products
  to   = sink.csv.flat
}`, stateDir, plugin("nuorder"), srv.URL(), nuorderCreds, lake, filepath.Join(root, "flat")))
	dir := filepath.Dir(path)
	before, _ := os.ReadDir(dir)
	for _, args := range [][]string{{"validate"}, {"streams"}, {"plan"}, {"check"}, {"state", "show"}} {
		r := runPipeline(t, dir, credEnv(e2eCreds), append(args, "-f", path)...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("looking created %v in %s", entries, root)
	}
	if after, _ := os.ReadDir(dir); len(after) != len(before) {
		t.Fatalf("looking wrote into the file's folder: %d entries, then %d", len(before), len(after))
	}
	bad := writeFile(t, strings.Replace(readFileString(t, path), `to   = sink.parquet.lake`, "to   = sink.parquet.lake\n  options = { statuses = \"approved\" }", 1))
	if r := runPipeline(t, filepath.Dir(bad), credEnv(e2eCreds), "validate", "-f", bad); r.code != 2 || !strings.Contains(r.stderr, `no option "statuses"`) {
		t.Fatalf("an option products does not take: exit %d\n%s", r.code, r.stderr)
	}
}

// TestRunJSONNamesTheFilesAsTheyAreAfterTheCommit: a full refresh commits
// into a hidden folder that is swapped in at its final commit; run --json
// names every file where it is after the run (it named the hidden folder's
// paths, gone by then).
func TestRunJSONNamesTheFilesAsTheyAreAfterTheCommit(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 31, Products: 10, Companies: 5, Orders: 300}
	srv := serveFake(t, cat)
	path := incrementalFile(t, srv.URL(), cat)
	dir := filepath.Dir(path)
	if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path, "orders"); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	r := runPipeline(t, dir, credEnv(e2eCreds), "run", "--json", "--full-refresh", "-f", path, "orders")
	var doc struct {
		Pipelines []struct {
			Name  string   `json:"name"`
			Files []string `json:"files"`
		} `json:"pipelines"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &doc) != nil || len(doc.Pipelines) != 1 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	files := doc.Pipelines[0].Files
	if len(files) < 2 {
		t.Fatalf("the full refresh committed %d files, want several (one per status listing)", len(files))
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("run --json names %s: %v", f, err)
		}
	}
}

// TestStateMovesFromAFolderToPostgres: a team moving from a laptop's state
// folder to PostgreSQL state exports the folder's state and imports it
// into the PostgreSQL store; the next run there resumes (0 rows, no
// refusal: the lake's commits name the old store, and the imported state
// vouches for them), and state show shows the same checkpoints.
func TestStateMovesFromAFolderToPostgres(t *testing.T) {
	schema, _ := pgSchema(t)
	cat := fakeapi.Catalog{Seed: 31, Products: 20, Companies: 10, Orders: 200}
	srv := serveFake(t, cat)
	laptop := incrementalFile(t, srv.URL(), cat)
	dir := filepath.Dir(laptop)
	if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", laptop); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	k8s := filepath.Join(dir, "k8s.hcl")
	os.WriteFile(k8s, []byte(fmt.Sprintf("state {\n  backend = \"postgres\"\n  dsn = env(\"E2E_DSN\")\n  schema = %q\n}\n", schema)+mustRead(t, laptop)), 0o644)
	env := append(credEnv(e2eCreds), "E2E_DSN="+pgDSN(t))
	exp := runPipeline(t, dir, nil, "state", "export", "-f", laptop)
	if exp.code != 0 {
		t.Fatalf("export: exit %d\n%s", exp.code, exp.stderr)
	}
	os.WriteFile(filepath.Join(dir, "state.json"), []byte(exp.stdout), 0o600)
	if r := runPipeline(t, dir, env, "state", "import", "state.json", "-f", "k8s.hcl"); r.code != 0 || !strings.Contains(r.stdout, "Imported the state of") {
		t.Fatalf("import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	before := runPipeline(t, dir, nil, "state", "show", "-f", laptop)
	after := runPipeline(t, dir, env, "state", "show", "-f", "k8s.hcl")
	if before.stdout != after.stdout || !strings.Contains(after.stdout, "orders") {
		t.Fatalf("state show differs after the move:\n%s\n%s%s", before.stdout, after.stdout, after.stderr)
	}
	r := runPipeline(t, dir, env, "run", "-f", "k8s.hcl")
	if r.code != 0 {
		t.Fatalf("the first run on PostgreSQL state: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, pl := range []string{"products", "companies", "orders", "order_lines"} {
		if n := rowsOf(t, r.stdout, pl); n != 0 {
			t.Fatalf("%s read %d rows again after the move", pl, n)
		}
	}
	// Importing again over state that has moved on is refused, unless asked.
	srv.UpdateProducts(nil, 2)
	if r := runPipeline(t, dir, env, "run", "-f", "k8s.hcl", "products"); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if r := runPipeline(t, dir, env, "state", "import", "state.json", "-f", "k8s.hcl"); r.code == 0 || !strings.Contains(r.stderr, "--replace") {
		t.Fatalf("a conflicting import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

package main

// End-to-end tests: they build the real binaries once (TestMain), run
// bin/pipeline as a child process against real plugin processes and the fake
// NuOrder API, and assert on the Parquet files it leaves and the requests the
// fake received.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"pipehost/connector/nuorder"
	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

// binDir holds pipeline, nuorder-plugin and numbers-plugin, built once.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pipehost-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "pipehost/pipeline", "pipehost/plugins/nuorder-plugin", "pipehost/plugins/numbers-plugin")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.Exit(1)
	}
	// go build names a binary after its package folder: the plugins'
	// folders are named as the host looks for them.
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func plugin(name string) string { return filepath.Join(binDir, name+"-plugin") }

type result struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// runPipeline runs bin/pipeline with args in dir, with extra environment.
func runPipeline(t testing.TB, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "pipeline"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String(), elapsed}
}

// writeFile writes a pipeline file into a new temp dir and returns its path.
func writeFile(t testing.TB, hcl string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(path, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readParquet reads every committed Parquet file of a stream folder into one
// table (in file name order) and returns it with the file names.
func readParquet(t *testing.T, dir string) (arrow.Table, []string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatalf("no parquet file in %s", dir)
	}
	var recs []arrow.Record
	var schema *arrow.Schema
	for _, f := range files {
		rdr, err := file.OpenParquetFile(f, false)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := fr.ReadTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		schema = tbl.Schema()
		tr := array.NewTableReader(tbl, 1<<16)
		for tr.Next() {
			r := tr.Record()
			r.Retain()
			recs = append(recs, r)
		}
		tr.Release()
		rdr.Close()
	}
	return array.NewTableFromRecords(schema, recs), files
}

// stringColumn returns every value of a string column.
func stringColumn(t *testing.T, tbl arrow.Table, name string) []string {
	t.Helper()
	idx := tbl.Schema().FieldIndices(name)
	if len(idx) == 0 {
		t.Fatalf("no column %s in %s", name, tbl.Schema())
	}
	var out []string
	for _, chunk := range tbl.Column(idx[0]).Data().Chunks() {
		c := chunk.(*array.String)
		for i := 0; i < c.Len(); i++ {
			out = append(out, c.Value(i))
		}
	}
	return out
}

func int64Column(t *testing.T, tbl arrow.Table, name string) []int64 {
	t.Helper()
	var out []int64
	for _, chunk := range tbl.Column(tbl.Schema().FieldIndices(name)[0]).Data().Chunks() {
		out = append(out, chunk.(*array.Int64).Int64Values()...)
	}
	return out
}

// sameColumns fails unless got has exactly the names and types of want.
func sameColumns(t *testing.T, got, want *arrow.Schema) {
	t.Helper()
	if got.NumFields() != want.NumFields() {
		t.Fatalf("got %d columns, want %d:\n%s", got.NumFields(), want.NumFields(), got)
	}
	for i, f := range want.Fields() {
		g := got.Field(i)
		if g.Name != f.Name || !arrow.TypeEqual(g.Type, f.Type) {
			t.Fatalf("column %d is %s %s, want %s %s", i, g.Name, g.Type, f.Name, f.Type)
		}
	}
}

const nuorderCreds = `
    consumer_key    = env("E2E_CK")
    consumer_secret = env("E2E_CS")
    token           = env("E2E_TK")
    token_secret    = env("E2E_TS")`

var e2eCreds = fakeapi.Credentials{ConsumerKey: "e2e-key", ConsumerSecret: "e2e-consumer-secret-123", Token: "e2e-token", TokenSecret: "e2e-token-secret-456"}

func credEnv(c fakeapi.Credentials) []string {
	return []string{"E2E_CK=" + c.ConsumerKey, "E2E_CS=" + c.ConsumerSecret, "E2E_TK=" + c.Token, "E2E_TS=" + c.TokenSecret}
}

func TestSandboxRunWritesProductsAndLocations(t *testing.T) {
	path := writeFile(t, fmt.Sprintf(`
connector "nuorder" {
  plugin = %q
  config {%s
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
`, plugin("nuorder"), nuorderCreds))
	// No credentials in the environment: --sandbox does not need them.
	r := runPipeline(t, filepath.Dir(path), nil, "run", "--sandbox", "-f", path)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	out := filepath.Join(filepath.Dir(path), "out")
	products, _ := readParquet(t, filepath.Join(out, "products"))
	sameColumns(t, products.Schema(), nuorder.ProductsSchema)
	ids := stringColumn(t, products, "_id")
	cat := fakeapi.SandboxCatalog
	var want []string // a first run reads the active products, in listing order
	for i := 0; i < cat.Products; i++ {
		if cat.Product(i)["active"] == true {
			want = append(want, cat.ProductID(i))
		}
	}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("products: %d rows, want the %d active products in order", len(ids), len(want))
	}
	docs := stringColumn(t, products, "document")
	if !strings.Contains(docs[7], `"fabric_content"`) {
		t.Fatalf("the document column lost the custom fields: %.200s", docs[7])
	}
	locations, _ := readParquet(t, filepath.Join(out, "locations"))
	sameColumns(t, locations.Schema(), nuorder.LocationsSchema)
	codes := stringColumn(t, locations, "code")
	if strings.Join(codes, ",") != "EU,MAIN,WEST" {
		t.Fatalf("locations: %v", codes)
	}
	// The summary names both pipelines with their row counts.
	if !regexp.MustCompile(fmt.Sprintf(`products\s+connector.nuorder.products\s+sink.parquet.lake\s+%d\s`, len(want))).MatchString(r.stdout) {
		t.Fatalf("summary:\n%s", r.stdout)
	}
	// The plugin's own log line reached the host's log.
	if !strings.Contains(r.stderr, "using the NuOrder sandbox") {
		t.Fatalf("plugin log not forwarded; stderr:\n%s", r.stderr)
	}
}

// serveFake starts a fake NuOrder API with the e2e credentials, stopped
// when the test ends.
func serveFake(t testing.TB, cat fakeapi.Catalog) *fakeapi.Server {
	t.Helper()
	srv, err := fakeapi.Start(fakeapi.Options{Credentials: e2eCreds, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func startFake(t *testing.T, products int) *fakeapi.Server {
	return serveFake(t, fakeapi.Catalog{Seed: 99, Products: products})
}

func nuorderFile(t *testing.T, baseURL, pipelines string) string {
	return writeFile(t, fmt.Sprintf(`
connector "nuorder" {
  plugin = %q
  config {
    base_url = %q%s
  }
}
sink "parquet" "lake" {
  path = "out"
}
%s`, plugin("nuorder"), baseURL, nuorderCreds, pipelines))
}

const productsPipeline = `
pipeline "products" {
  from = connector.nuorder.products
  to   = sink.parquet.lake
}`

func TestRunAgainstTheFakeAPIThroughThePlugin(t *testing.T) {
	srv := startFake(t, 1500)
	path := nuorderFile(t, srv.URL(), productsPipeline)
	r := runPipeline(t, filepath.Dir(path), credEnv(e2eCreds), "run", "-f", path, "--log-level", "trace")
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	// Even the most verbose log never shows a secret.
	for _, secret := range []string{e2eCreds.ConsumerSecret, e2eCreds.TokenSecret} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Fatalf("the trace log shows a secret")
		}
	}
	tbl, files := readParquet(t, filepath.Join(filepath.Dir(path), "out", "products"))
	cat := fakeapi.Catalog{Seed: 99, Products: 1500}
	active := map[string]bool{}
	for i := 0; i < cat.Products; i++ {
		if cat.Product(i)["active"] == true {
			active[cat.ProductID(i)] = true
		}
	}
	if int(tbl.NumRows()) != len(active) || len(files) != 1 {
		t.Fatalf("%d rows in %d files, want the %d active products in 1", tbl.NumRows(), len(files), len(active))
	}
	for _, id := range stringColumn(t, tbl, "_id") {
		if !active[id] {
			t.Fatalf("product %s is not active or not in the catalog", id)
		}
		delete(active, id)
	}
	// One listing, then one confirmed read per product.
	if srv.Requests(api.ProductList) != 1 || srv.Requests(api.ProductByID) != 1500 {
		t.Fatalf("fake received %d listings and %d product reads", srv.Requests(api.ProductList), srv.Requests(api.ProductByID))
	}
}

func TestWrongConsumerSecretFailsWith401AndNoSecret(t *testing.T) {
	srv := startFake(t, 10)
	path := nuorderFile(t, srv.URL(), productsPipeline)
	bad := e2eCreds
	bad.ConsumerSecret = "wrong-secret-value-789"
	r := runPipeline(t, filepath.Dir(path), credEnv(bad), "run", "-f", path)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "authentication refused by NuOrder (401 Unauthorized)") || !strings.Contains(r.stderr, "pipeline products failed") {
		t.Fatalf("stderr does not say NuOrder refused authentication:\n%s", r.stderr)
	}
	for _, secret := range []string{bad.ConsumerSecret, bad.TokenSecret, e2eCreds.ConsumerSecret} {
		if strings.Contains(r.stderr+r.stdout, secret) {
			t.Fatalf("output shows a secret (%s):\n%s\n%s", secret, r.stdout, r.stderr)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "out", "products", "*")); len(files) != 0 {
		t.Fatalf("a failed run left files: %v", files)
	}
}

var location = regexp.MustCompile(`at (\S+\.hcl):(\d+):(\d+)`)

func TestValidateReportsATypoInTheConnectorConfig(t *testing.T) {
	path := writeFile(t, fmt.Sprintf(`connector "nuorder" {
  plugin = %q
  config {
    consumer_key   = "k"
    consumer_secrt = "this-must-not-be-printed"
    token          = "t"
    token_secret   = "ts"
  }
}
`, plugin("nuorder")))
	r := runPipeline(t, filepath.Dir(path), nil, "validate", "-f", path)
	if r.code == 0 {
		t.Fatalf("validate accepted a typo:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("Error: Unsupported argument\n\n  at %s:5:5\n", path)) {
		t.Fatalf("no diagnostic at file:line:col %s:5:5:\n%s", path, r.stderr)
	}
	if !strings.Contains(r.stderr, `Did you mean "consumer_secret"?`) || !strings.Contains(r.stderr, "5 |     consumer_secrt") {
		t.Fatalf("diagnostic lacks the hint or the snippet:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "this-must-not-be-printed") {
		t.Fatalf("the misspelt secret's value was printed:\n%s", r.stderr)
	}
}

func TestValidateReportsAnUnknownStream(t *testing.T) {
	path := writeFile(t, fmt.Sprintf(`connector "nuorder" {
  plugin = %q
}
sink "parquet" "lake" {
  path = "out"
}
pipeline "p" {
  to   = sink.parquet.lake
  from = connector.nuorder.prodcts
}
`, plugin("nuorder")))
	r := runPipeline(t, filepath.Dir(path), nil, "validate", "--sandbox", "-f", path)
	if r.code == 0 {
		t.Fatalf("validate accepted an unknown stream")
	}
	m := location.FindStringSubmatch(r.stderr)
	if m == nil || m[2] != "9" || m[3] != "10" || !strings.Contains(r.stderr, `no stream "prodcts". Did you mean "products"?`) {
		t.Fatalf("diagnostic does not point at line 9, column 10:\n%s", r.stderr)
	}
}

func TestValidateAcceptsTheDefaultPipelineFile(t *testing.T) {
	// The repository's own pipeline.hcl, with the plugin path pointed at the
	// freshly built binary.
	src, err := os.ReadFile("../pipeline.hcl")
	if err != nil {
		t.Fatal(err)
	}
	hcl := strings.Replace(string(src), `"bin/nuorder-plugin"`, fmt.Sprintf("%q", plugin("nuorder")), 1)
	path := writeFile(t, hcl)
	r := runPipeline(t, filepath.Dir(path), nil, "validate", "--sandbox", "-f", path)
	if r.code != 0 || !strings.Contains(r.stdout, "is valid") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Without --sandbox and without credentials, the missing ones are named.
	r = runPipeline(t, filepath.Dir(path), []string{"NUORDER_CONSUMER_KEY=", "NUORDER_CONSUMER_SECRET="}, "validate", "-f", path)
	if r.code == 0 || !strings.Contains(r.stderr, `requires token, which reads env("NUORDER_TOKEN"), but NUORDER_TOKEN is not set`) {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

func TestPinnedChecksumRefusesADifferentBinary(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "started")
	// A "plugin" that would leave a marker if it were ever executed.
	fake := filepath.Join(dir, "impostor-plugin")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	real, err := os.ReadFile(plugin("numbers"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(real)
	pinned := hex.EncodeToString(sum[:])
	hclFor := func(binary string) string {
		return fmt.Sprintf(`
connector "numbers" {
  plugin = %q
  sha256 = %q
}
sink "parquet" "lake" {
  path = "out"
}
pipeline "n" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 10 }
}
`, binary, pinned)
	}
	path := writeFile(t, hclFor(fake))
	r := runPipeline(t, filepath.Dir(path), nil, "run", "-f", path)
	if r.code == 0 || !strings.Contains(r.stderr, "refusing to start plugin") || !strings.Contains(r.stderr, pinned) {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the binary with the wrong checksum was executed")
	}
	// The binary that matches the pin runs.
	path = writeFile(t, hclFor(plugin("numbers")))
	if r := runPipeline(t, filepath.Dir(path), nil, "run", "-f", path); r.code != 0 {
		t.Fatalf("the pinned binary was refused: exit %d\n%s", r.code, r.stderr)
	}
}

func numbersFile(t *testing.T, pipelines string) string {
	return writeFile(t, fmt.Sprintf(`
connector "numbers" {
  plugin = %q
  config {
    offset = 3
    token  = "numbers-token-secret"
  }
}
sink "parquet" "lake" {
  path = "out"
}
%s`, plugin("numbers"), pipelines))
}

func TestTheHostCarriesAnyConnector(t *testing.T) {
	path := numbersFile(t, `
pipeline "numbers" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 5000, batch = 700 }
}`)
	r := runPipeline(t, filepath.Dir(path), nil, "run", "-f", path)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	tbl, _ := readParquet(t, filepath.Join(filepath.Dir(path), "out", "numbers"))
	ns, squares := int64Column(t, tbl, "n"), int64Column(t, tbl, "square")
	if len(ns) != 5000 {
		t.Fatalf("%d rows, want 5000", len(ns))
	}
	for i, n := range ns {
		if n != int64(i+1) || squares[i] != n*n+3 {
			t.Fatalf("row %d: n=%d square=%d", i, n, squares[i])
		}
	}
}

func TestBatchesLargerThanAMessageAreSplitNotDropped(t *testing.T) {
	// 600 rows of 100 KB: one 60 MB batch, above gRPC's 4 MiB default and
	// the plugin's split threshold.
	path := numbersFile(t, `
pipeline "wide" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 600, batch = 600, width = 100000 }
}`)
	r := runPipeline(t, filepath.Dir(path), nil, "run", "-f", path)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	tbl, _ := readParquet(t, filepath.Join(filepath.Dir(path), "out", "numbers"))
	if tbl.NumRows() != 600 {
		t.Fatalf("%d rows, want 600", tbl.NumRows())
	}
	if pad := stringColumn(t, tbl, "pad"); len(pad[599]) != 100000 {
		t.Fatalf("last row's pad is %d bytes", len(pad[599]))
	}
}

func TestAFailedRunKeepsItsLastCheckpointAndTheRerunResumes(t *testing.T) {
	pipelines := func(opts string) string {
		return fmt.Sprintf(`
pipeline "numbers" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 5000, batch = 1000%s }
}`, opts)
	}
	path := numbersFile(t, pipelines(", fail_at = 4321"))
	dir := filepath.Dir(path)
	r := runPipeline(t, dir, nil, "run", "-f", path)
	if r.code != 1 || !strings.Contains(r.stderr, "failing at row 4321") || !strings.Contains(r.stderr, "pipeline numbers failed") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	// The four whole batches before the failure are committed with their
	// checkpoint; the partial fifth is not.
	tbl, _ := readParquet(t, filepath.Join(dir, "out", "numbers"))
	if tbl.NumRows() != 4000 {
		t.Fatalf("%d rows committed before the failure, want 4000", tbl.NumRows())
	}
	hidden, _ := filepath.Glob(filepath.Join(dir, "out", "numbers", ".*"))
	if len(hidden) != 0 {
		t.Fatalf("the failed run left temporary files: %v", hidden)
	}
	show := runPipeline(t, dir, nil, "state", "show", "-f", path)
	if !regexp.MustCompile(`numbers\s+numbers\s+4000\s.*failed, 4000 rows`).MatchString(show.stdout) {
		t.Fatalf("state show:\n%s%s", show.stdout, show.stderr)
	}
	// The rerun reads only what is after the checkpoint: each row once.
	if err := os.WriteFile(path, []byte(strings.Replace(mustRead(t, path), ", fail_at = 4321", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runPipeline(t, dir, nil, "run", "-f", path); r.code != 0 {
		t.Fatalf("rerun: exit %d\n%s", r.code, r.stderr)
	}
	tbl, _ = readParquet(t, filepath.Join(dir, "out", "numbers"))
	ns := int64Column(t, tbl, "n")
	sort.Slice(ns, func(i, j int) bool { return ns[i] < ns[j] })
	for i, n := range ns {
		if n != int64(i+1) {
			t.Fatalf("after the rerun row %d is %d: rows lost or repeated (%d rows)", i, n, len(ns))
		}
	}
	if len(ns) != 5000 {
		t.Fatalf("%d rows, want 5000", len(ns))
	}
	// A third run finds nothing new; --full-refresh reads everything again.
	if r := runPipeline(t, dir, nil, "run", "-f", path); r.code != 0 || !regexp.MustCompile(`numbers\s+connector.numbers.numbers\s+sink.parquet.lake\s+0\s`).MatchString(r.stdout) {
		t.Fatalf("third run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runPipeline(t, dir, nil, "run", "--full-refresh", "-f", path); r.code != 0 || !strings.Contains(r.stdout, " 5000 ") {
		t.Fatalf("full refresh: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// state reset forgets the checkpoint.
	if r := runPipeline(t, dir, nil, "state", "reset", "numbers", "-f", path); r.code != 0 {
		t.Fatalf("reset: %s", r.stderr)
	}
	if show := runPipeline(t, dir, nil, "state", "show", "-f", path); !strings.Contains(show.stdout, "No state") {
		t.Fatalf("after reset:\n%s", show.stdout)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPluginsStartWithACleanEnvironment(t *testing.T) {
	path := numbersFile(t, `
pipeline "env" {
  from = connector.numbers.environment
  to   = sink.parquet.lake
}`)
	r := runPipeline(t, filepath.Dir(path), []string{"E2E_HOST_ONLY_SECRET=do-not-pass"}, "run", "-f", path)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	tbl, _ := readParquet(t, filepath.Join(filepath.Dir(path), "out", "environment"))
	for _, name := range stringColumn(t, tbl, "name") {
		if !strings.HasPrefix(name, "PLUGIN_") && name != "PIPEHOST_PLUGIN" {
			t.Fatalf("the plugin sees the host's variable %s", name)
		}
	}
}

func TestStreamsListsTheCatalog(t *testing.T) {
	path := writeFile(t, fmt.Sprintf(`connector "nuorder" {
  plugin = %q
}
connector "numbers" {
  plugin = %q
}
`, plugin("nuorder"), plugin("numbers")))
	r := runPipeline(t, filepath.Dir(path), nil, "streams", "--sandbox", "-f", path)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"nuorder.products", "nuorder.locations", "numbers.numbers", "numbers.ledger",
		"key: _id", "cursor: modified_on", "style_number", "timestamp[us, tz=UTC]"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("streams output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestStreamsShowsAStreamTheConfigDisables(t *testing.T) {
	path := writeFile(t, fmt.Sprintf(`connector "nuorder" {
  plugin = %q
  config {
    consumer_key   = env("NO_SUCH_VARIABLE_E2E")
    fetch_products = false
  }
}
`, plugin("nuorder")))
	r := runPipeline(t, filepath.Dir(path), nil, "streams", "-f", path)
	if r.code != 0 || !strings.Contains(r.stdout, "DISABLED: fetch_products = false in the connector config") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestCheckAsksTheServiceOnce(t *testing.T) {
	srv := startFake(t, 10)
	path := nuorderFile(t, srv.URL(), "")
	r := runPipeline(t, filepath.Dir(path), credEnv(e2eCreds), "check", "-f", path)
	if r.code != 0 || !strings.Contains(r.stdout, "connector nuorder: ok") || srv.TotalRequests() != 1 {
		t.Fatalf("exit %d after %d requests\n%s%s", r.code, srv.TotalRequests(), r.stdout, r.stderr)
	}
	bad := e2eCreds
	bad.TokenSecret = "not-the-token-secret"
	r = runPipeline(t, filepath.Dir(path), credEnv(bad), "check", "-f", path)
	if r.code != 1 || !strings.Contains(r.stdout, "authentication refused by NuOrder (401") || strings.Contains(r.stdout+r.stderr, bad.TokenSecret) {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestARelativePluginPathIsTheFileBesideThePipelineFile: plugin =
// "./numbers-plugin", run from the pipeline file's folder with -f given
// relative, starts the file beside the pipeline file, never a binary of the
// same name on PATH (which ran before); a bare name is looked up in the
// file's folder first. With a pin, a refused binary's message shows its
// own hash and the pinned one.
func TestARelativePluginPathIsTheFileBesideThePipelineFile(t *testing.T) {
	dir := t.TempDir()
	decoys := t.TempDir()
	marker := filepath.Join(decoys, "decoy-ran")
	os.WriteFile(filepath.Join(decoys, "numbers-plugin"), []byte("#!/bin/sh\ntouch "+marker+"\nexit 1\n"), 0o755)
	real, err := os.ReadFile(plugin("numbers"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "numbers-plugin"), real, 0o755)
	env := []string{"PATH=" + decoys + string(os.PathListSeparator) + os.Getenv("PATH")}
	for _, ref := range []string{"./numbers-plugin", "numbers-plugin"} {
		os.WriteFile(filepath.Join(dir, "p.hcl"), []byte(fmt.Sprintf(`
connector "numbers" {
  plugin = %q
}
sink "parquet" "lake" {
  path = "out"
}
pipeline "n" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 10 }
}
`, ref)), 0o644)
		if r := runPipeline(t, dir, env, "run", "--full-refresh", "-f", "p.hcl"); r.code != 0 {
			t.Fatalf("plugin = %q: exit %d\n%s", ref, r.code, r.stderr)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("plugin = %q ran the binary on PATH", ref)
		}
	}
	// A pin the file does not match: both hashes, and they differ.
	sum := sha256.Sum256([]byte("something else"))
	os.WriteFile(filepath.Join(dir, "p.hcl"), []byte(fmt.Sprintf(`
connector "numbers" {
  plugin = "./numbers-plugin"
  sha256 = %q
}
`, hex.EncodeToString(sum[:]))), 0o644)
	realSum := sha256.Sum256(real)
	r := runPipeline(t, dir, env, "validate", "-f", "p.hcl")
	if r.code == 0 || !strings.Contains(r.stderr, "its sha256 is "+hex.EncodeToString(realSum[:])) || !strings.Contains(r.stderr, "pins "+hex.EncodeToString(sum[:])) {
		t.Fatalf("a wrong pin: exit %d\n%s", r.code, r.stderr)
	}
}

// lockedBuffer is a bytes.Buffer a child process writes while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

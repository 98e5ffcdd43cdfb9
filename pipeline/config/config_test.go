package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipehost/connector"
)

func load(t *testing.T, src string) (*File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, diags := Load(path)
	var buf bytes.Buffer
	WriteDiagnostics(&buf, f, diags, nil, false)
	return f, buf.String()
}

func TestLoadResolvesBlocksAndReferences(t *testing.T) {
	f, out := load(t, `
connector "nuorder" {
  plugin = "bin/nuorder-plugin"
  sha256 = "abc"
  config {
    token = "x"
  }
}
sink "parquet" "lake" {
  path = "data"
}
pipeline "orders" {
  from     = connector.nuorder.orders
  to       = sink.parquet.lake
  options  = { approved_from = "2026-01-01", limit = 10, deep = true }
  schedule = "@hourly"
}
`)
	if out != "" {
		t.Fatal(out)
	}
	c := f.Connector("nuorder")
	if c.Plugin != filepath.Join(f.Dir, "bin/nuorder-plugin") || c.SHA256 != "abc" {
		t.Fatalf("connector: %+v", c)
	}
	pl := f.Pipeline("orders")
	if pl.From.String() != "connector.nuorder.orders" || pl.To.String() != "sink.parquet.lake" || pl.Schedule != "@hourly" {
		t.Fatalf("pipeline: %+v", pl)
	}
	if pl.Options["approved_from"] != "2026-01-01" || pl.Options["limit"] != "10" || pl.Options["deep"] != "true" {
		t.Fatalf("options: %v", pl.Options)
	}
}

func TestLoadReportsUndeclaredBlocksWithTheirLocation(t *testing.T) {
	_, out := load(t, `
sink "parquet" "lake" {
  path = "data"
}
pipeline "p" {
  from = connector.nope.products
  to   = sink.parquet.lak
}
`)
	if !strings.Contains(out, "p.hcl:6:10") || !strings.Contains(out, `No connector block named "nope"`) {
		t.Fatalf("connector diagnostic:\n%s", out)
	}
	if !strings.Contains(out, "p.hcl:7:10") || !strings.Contains(out, "Declared: parquet.lake") {
		t.Fatalf("sink diagnostic:\n%s", out)
	}
}

func TestLoadRejectsQuotedReferencesAndDuplicates(t *testing.T) {
	_, out := load(t, `
connector "a" {
  plugin = "x"
}
connector "a" {
  plugin = "y"
}
pipeline "p" {
  from = "connector.a.s"
  to   = sink.parquet.lake
}
`)
	if !strings.Contains(out, "Duplicate connector block") || !strings.Contains(out, "without quotes") {
		t.Fatalf("diagnostics:\n%s", out)
	}
}

func TestEnvReadsVariablesWithDefaultsAndNull(t *testing.T) {
	t.Setenv("CFG_TEST_SET", "from-env")
	f, out := load(t, `
connector "c" {
  plugin = "p"
  config {
    a = env("CFG_TEST_SET")
    b = env("CFG_TEST_UNSET", "fallback")
    c = env("CFG_TEST_UNSET")
  }
}
`)
	if out != "" {
		t.Fatal(out)
	}
	schema := connector.ConfigSchema{Attributes: []connector.Attribute{
		{Name: "a", Type: json.RawMessage(`"string"`)},
		{Name: "b", Type: json.RawMessage(`"string"`)},
		{Name: "c", Type: json.RawMessage(`"string"`)},
	}}
	raw, diags := DecodeConnectorConfig(f.Connector("c"), schema, false)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var got map[string]*string
	json.Unmarshal(raw, &got)
	if *got["a"] != "from-env" || *got["b"] != "fallback" || got["c"] != nil {
		t.Fatalf("decoded %s", raw)
	}
}

func TestRequiredNullIsReportedUnlessSandbox(t *testing.T) {
	f, _ := load(t, `
connector "c" {
  plugin = "p"
  config {
    secret = env("CFG_TEST_UNSET")
  }
}
`)
	schema := connector.ConfigSchema{Attributes: []connector.Attribute{
		{Name: "secret", Type: json.RawMessage(`"string"`), Required: true, Sensitive: true},
		{Name: "n", Type: json.RawMessage(`"number"`)},
	}}
	_, diags := DecodeConnectorConfig(f.Connector("c"), schema, false)
	var buf bytes.Buffer
	WriteDiagnostics(&buf, f, diags, SensitiveAttributes(f.Connector("c"), schema), false)
	if !strings.Contains(buf.String(), "p.hcl:5:14") || !strings.Contains(buf.String(), "requires secret") {
		t.Fatalf("diagnostic:\n%s", buf.String())
	}
	// The sensitive attribute's line is not printed; the variable it reads
	// is named (a name, not a secret).
	if strings.Contains(buf.String(), "secret = env(") || !strings.Contains(buf.String(), `reads env("CFG_TEST_UNSET"), but CFG_TEST_UNSET is not set`) {
		t.Fatalf("sensitive line printed, or the variable not named:\n%s", buf.String())
	}
	if _, diags := DecodeConnectorConfig(f.Connector("c"), schema, true); diags.HasErrors() {
		t.Fatalf("sandbox mode: %v", diags)
	}
}

func TestWrongTypeIsReported(t *testing.T) {
	f, _ := load(t, `
connector "c" {
  plugin = "p"
  config {
    n = "not a number"
  }
}
`)
	schema := connector.ConfigSchema{Attributes: []connector.Attribute{{Name: "n", Type: json.RawMessage(`"number"`)}}}
	_, diags := DecodeConnectorConfig(f.Connector("c"), schema, false)
	var buf bytes.Buffer
	WriteDiagnostics(&buf, f, diags, nil, false)
	if !diags.HasErrors() || !strings.Contains(buf.String(), "p.hcl:5:9") || !strings.Contains(buf.String(), "a number is required") {
		t.Fatalf("diagnostic:\n%s", buf.String())
	}
}

// TestPathLikeOrEmptyPipelineNamesAreRefused: a pipeline's name becomes part
// of file names (state, rejects): one that is empty or holds a path is
// refused where it is written.
func TestPathLikeOrEmptyPipelineNamesAreRefused(t *testing.T) {
	for _, name := range []string{"", "../escape", "a/b", "..", ".hidden", `a\b`} {
		_, out := load(t, fmt.Sprintf(`
connector "a" {
  plugin = "x"
}
sink "parquet" "lake" {
  path = "out"
}
pipeline %q {
  from = connector.a.s
  to   = sink.parquet.lake
}
`, name))
		if !strings.Contains(out, "Invalid pipeline name") || !strings.Contains(out, "p.hcl:8:") {
			t.Fatalf("name %q:\n%s", name, out)
		}
	}
	if _, out := load(t, `
connector "a" {
  plugin = "x"
}
sink "parquet" "lake" {
  path = "out"
}
pipeline "orders-daily_v2.1" {
  from = connector.a.s
  to   = sink.parquet.lake
}
`); strings.Contains(out, "Invalid pipeline name") {
		t.Fatalf("a good name refused:\n%s", out)
	}
}

// TestHostileFilesAreRefusedWithADiagnostic: 60,000 nested brackets (which
// overflowed the parser's stack) and an endless file are refused with a
// diagnostic, quickly.
func TestHostileFilesAreRefusedWithADiagnostic(t *testing.T) {
	_, out := load(t, "pipeline \"p\" {\n  options = "+strings.Repeat("[", 60000)+"\n}\n")
	if !strings.Contains(out, "Nested too deeply") || !strings.Contains(out, "p.hcl:2:") {
		t.Fatalf("deep nesting:\n%.400s", out)
	}
	_, diags := Load("/dev/zero")
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "larger than") {
		t.Fatalf("/dev/zero: %v", diags)
	}
}

// TestASecretIsNotShownInADiagnosticAboutIt: a diagnostic about the state
// block's DSN itself, found before any sink or plugin says what is
// sensitive, does not print the line that holds it.
func TestASecretIsNotShownInADiagnosticAboutIt(t *testing.T) {
	_, out := load(t, `
state {
  dsn     = "postgres://u:Secr3tPW@127.0.0.1:1/db" + 1
  backend = "postgres"
}
`)
	if !strings.Contains(out, "p.hcl:3:") || strings.Contains(out, "Secr3tPW") {
		t.Fatalf("diagnostic:\n%s", out)
	}
}

// TestAnUnsetVariableIsNamedWhereverItIsRead: a sink attribute and the
// state block's dsn that read an unset variable are reported with the
// attribute, the variable and the line (the sink said "Unsuitable value
// type ... null value is not allowed").
func TestAnUnsetVariableIsNamedWhereverItIsRead(t *testing.T) {
	f, out := load(t, `
sink "postgres" "wh" {
  dsn = env("CFG_TEST_UNSET_DSN")
}
`)
	if out != "" {
		t.Fatal(out)
	}
	var into struct {
		DSN string `hcl:"dsn,attr"`
	}
	diags := DecodeSinkConfig(f.Sink("postgres", "wh"), &into)
	var buf bytes.Buffer
	WriteDiagnostics(&buf, f, diags, nil, false)
	for _, want := range []string{"p.hcl:3:9", "Environment variable not set", `dsn = env("CFG_TEST_UNSET_DSN"), but CFG_TEST_UNSET_DSN is not set`} {
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("sink: no %q in\n%s", want, buf.String())
		}
	}
	_, out = load(t, `
state {
  backend = "postgres"
  dsn     = env("CFG_TEST_UNSET_STATE")
}
`)
	for _, want := range []string{"p.hcl:4:13", `dsn = env("CFG_TEST_UNSET_STATE"), but CFG_TEST_UNSET_STATE is not set`} {
		if !strings.Contains(out, want) {
			t.Fatalf("state: no %q in\n%s", want, out)
		}
	}
}

// TestFileReadsAMountedSecret: file("path") reads a file (as Kubernetes
// and Docker mount secrets), relative to the pipeline file's folder, without
// its trailing newline; a missing one is an error at its line naming the
// path; the value is never printed with a diagnostic about a secret.
func TestFileReadsAMountedSecret(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "dsn.txt"), []byte("postgres://u:s3cret-from-file@db/x\n"), 0o600)
	path := filepath.Join(dir, "p.hcl")
	os.WriteFile(path, []byte(`
sink "postgres" "wh" {
  dsn = file("dsn.txt")
}
state {
  backend = "postgres"
  dsn     = file("missing.txt")
}
`), 0o644)
	f, diags := Load(path)
	var buf bytes.Buffer
	WriteDiagnostics(&buf, f, diags, nil, false)
	if !strings.Contains(buf.String(), "p.hcl:7:13") || !strings.Contains(buf.String(), `file("missing.txt")`) || strings.Contains(buf.String(), "s3cret") {
		t.Fatalf("a missing file:\n%s", buf.String())
	}
	var into struct {
		DSN string `hcl:"dsn,attr"`
	}
	if d := DecodeSinkConfig(f.Sink("postgres", "wh"), &into); d.HasErrors() || into.DSN != "postgres://u:s3cret-from-file@db/x" {
		t.Fatalf("file() gave %q, %v", into.DSN, d)
	}
}

// TestNotifyBlocks: a notify block takes a url (from env or file, like any
// value), when to post and a format, with defaults; a bad url is refused
// at its location without quoting it (webhook addresses are secrets), as
// are an unknown event and format.
func TestNotifyBlocks(t *testing.T) {
	t.Setenv("HOOK", "https://hooks.example.test/services/T0/SECRET")
	f, _ := load(t, `
notify "ops" {
  url = env("HOOK")
}
notify "all" {
  url    = "http://127.0.0.1:9/x"
  on     = ["every"]
  format = "slack"
}`)
	if len(f.Notify) != 2 || f.Notify[0].URL != "https://hooks.example.test/services/T0/SECRET" || strings.Join(f.Notify[0].On, ",") != "failure,recovery" ||
		f.Notify[0].Format != "json" || f.Notify[1].Format != "slack" || f.Notify[1].On[0] != "every" || f.Notify[0].URLRange.Start.Line != 3 {
		t.Fatalf("%+v %+v", f.Notify[0], f.Notify[1])
	}
	path := filepath.Join(t.TempDir(), "p.hcl")
	os.WriteFile(path, []byte(`
notify "bad" {
  url    = "ftp://SECRET@host/x"
  on     = ["failure", "sometimes"]
  format = "xml"
}`), 0o644)
	bad, diags := Load(path)
	var buf bytes.Buffer
	WriteDiagnostics(&buf, bad, diags, bad.Sensitive(), false)
	text := buf.String()
	if !strings.Contains(text, "Invalid notify url") || strings.Contains(text, "SECRET") || !strings.Contains(text, `"sometimes" is not one of failure, recovery, every`) ||
		!strings.Contains(text, `format is "xml"`) || diags[0].Subject.Start.Line != 3 {
		t.Fatalf("%s", text)
	}
}

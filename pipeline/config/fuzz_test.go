package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad: any pipeline file loads or gets diagnostics, never a panic or a
// stack overflow, and diagnostics print.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"connector \"nuorder\" {\n  plugin = \"bin/p\"\n  config {\n    base_url = env(\"X\", \"y\")\n  }\n}\nsink \"parquet\" \"lake\" {\n  path = \"data\"\n}\npipeline \"p\" {\n  from = connector.nuorder.orders\n  to = sink.parquet.lake\n  options = { statuses = \"approved\" }\n  schedule = \"@hourly\"\n}\n",
		"state {\n  backend = \"postgres\"\n  dsn = \"postgres://u:pw@h/db\"\n}\n",
		"pipeline \"../x\" {}", "{{{{", "connector \"a\" { config { x = [[[[1]]]] } }",
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src string) {
		path := filepath.Join(dir, "p.hcl")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Skip()
		}
		file, diags := Load(path)
		var buf bytes.Buffer
		WriteDiagnostics(&buf, file, diags, nil, false)
	})
}

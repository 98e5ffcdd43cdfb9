package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTheCommandLineBehavesLikeOtherTools: help goes to stdout with exit 0
// (`--help`, `COMMAND --help`, `help COMMAND`); `version` and `--version`
// print the host's version and Go's, and the plugins' with a file at hand;
// global flags come before or after the command; a flag a command does not
// take is an error (exit 2); shell completion is generated and completes
// pipeline names from the file.
func TestTheCommandLineBehavesLikeOtherTools(t *testing.T) {
	path := numbersFile(t, `
pipeline "numbers" {
  from = connector.numbers.numbers
  to   = sink.parquet.lake
}
pipeline "numbers_again" {
  from = connector.numbers.numbers
  to   = sink.parquet.lake
}`)
	dir := filepath.Dir(path)
	for _, tc := range []struct {
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{[]string{"--help"}, 0, []string{"Available Commands", "validate", "serve"}, nil},
		{[]string{"run", "--help"}, 0, []string{"Usage:", "pipeline run [NAME...]", "--full-refresh", "Examples:"}, nil},
		{[]string{"help", "run"}, 0, []string{"pipeline run [NAME...]"}, nil},
		{[]string{"version", "-f", path}, 0, []string{"pipeline 0.2.0", "go1.", "connector numbers: plugin numbers"}, nil},
		{[]string{"--version"}, 0, []string{"pipeline 0.2.0"}, nil},
		{[]string{"-f", path, "validate"}, 0, []string{"is valid"}, nil},
		{[]string{"validate", "-f", path}, 0, []string{"is valid"}, nil},
		{[]string{"state", "show", "-f", path, "--sandbox", "--full-refresh"}, 2, nil, []string{"unknown flag: --sandbox"}},
		{[]string{"validate", "--full-refresh", "-f", path}, 2, nil, []string{"unknown flag: --full-refresh"}},
		{[]string{"frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`}},
		{[]string{}, 2, nil, []string{"Available Commands"}},
		{[]string{"completion", "bash"}, 0, []string{"bash completion"}, nil},
		{[]string{"__complete", "-f", path, "run", "numbers_"}, 0, []string{"numbers_again"}, nil},
		{[]string{"plan", "-f", path, "numbers*", "numbers"}, 0, []string{"pipeline numbers:", "pipeline numbers_again:"}, nil},
		{[]string{"plan", "-f", path, "orders*"}, 2, nil, []string{`no pipeline matching "orders*" (the file has: numbers, numbers_again)`}},
		{[]string{"plan", "-f", path, "number"}, 2, nil, []string{`no pipeline "number"`}},
	} {
		r := runPipeline(t, dir, nil, tc.args...)
		if r.code != tc.code {
			t.Fatalf("%v: exit %d, want %d\n%s\n%s", tc.args, r.code, tc.code, r.stdout, r.stderr)
		}
		for _, want := range tc.stdout {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("%v: stdout lacks %q:\n%s", tc.args, want, r.stdout)
			}
		}
		for _, want := range tc.stderr {
			if !strings.Contains(r.stderr, want) {
				t.Fatalf("%v: stderr lacks %q:\n%s", tc.args, want, r.stderr)
			}
		}
	}
}

// TestSettingsComeFromTheEnvironment: PIPELINE_FILE names the file and
// PIPELINE_LOG_FORMAT the log format when no flag does; a flag wins.
func TestSettingsComeFromTheEnvironment(t *testing.T) {
	path := numbersFile(t, `
pipeline "numbers" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 10 }
}`)
	r := runPipeline(t, t.TempDir(), []string{"PIPELINE_FILE=" + path, "PIPELINE_LOG_FORMAT=json"}, "run")
	if r.code != 0 || !strings.Contains(r.stderr, `"@message":"pipeline finished"`) {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runPipeline(t, t.TempDir(), []string{"PIPELINE_FILE=/nowhere.hcl"}, "validate", "-f", path); r.code != 0 {
		t.Fatalf("-f does not win over PIPELINE_FILE: exit %d\n%s", r.code, r.stderr)
	}
}

// TestJSONOutputsParse: validate, plan and run --json print one JSON
// document in the documented shape, with the same exit code as without.
func TestJSONOutputsParse(t *testing.T) {
	path := numbersFile(t, `
pipeline "numbers" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 25 }
}`)
	dir := filepath.Dir(path)
	var v validateJSON
	r := runPipeline(t, dir, nil, "validate", "--json", "-f", path)
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || !v.Valid || v.FormatVersion != "1" || v.ErrorCount != 0 {
		t.Fatalf("validate --json: exit %d\n%s", r.code, r.stdout)
	}
	bad := writeFile(t, strings.Replace(readFileString(t, path), "options = {", "optoins = {", 1))
	r = runPipeline(t, filepath.Dir(bad), nil, "validate", "--json", "-f", bad)
	if r.code != 2 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Valid || v.ErrorCount != 1 || v.Diagnostics[0].Range == nil ||
		v.Diagnostics[0].Range.Start.Line != 16 || !strings.Contains(v.Diagnostics[0].Summary, "Unsupported argument") {
		t.Fatalf("validate --json of a typo: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var out runJSON
	r = runPipeline(t, dir, nil, "run", "--json", "-f", path)
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || !out.OK || len(out.Pipelines) != 1 ||
		out.Pipelines[0].Rows != 25 || out.Pipelines[0].Status != "ok" || out.Pipelines[0].Kind != "pull" || len(out.Pipelines[0].Files) != 1 {
		t.Fatalf("run --json: exit %d\n%s", r.code, r.stdout)
	}
	r = runPipeline(t, dir, nil, "plan", "--json", "-f", path)
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || !strings.Contains(out.Pipelines[0].ResumeFrom, "after checkpoint") {
		t.Fatalf("plan --json: exit %d\n%s", r.code, r.stdout)
	}
	var st stateJSON
	r = runPipeline(t, dir, nil, "state", "show", "--json", "-f", path)
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || len(st.Entries) != 1 || st.Entries[0].Checkpoint != "25" ||
		st.Entries[0].LastRun == nil || st.Entries[0].LastRun.Rows != 25 || st.Entries[0].Binding == nil {
		t.Fatalf("state show --json: exit %d\n%s", r.code, r.stdout)
	}
	var cat streamsJSON
	r = runPipeline(t, dir, nil, "streams", "--json", "-f", path)
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &cat) != nil || len(cat.Connectors) != 1 || cat.Connectors[0].Streams[0].Name != "numbers" ||
		cat.Connectors[0].Streams[0].Columns[0].Name != "n" || cat.Connectors[0].Streams[0].Columns[0].Type != "int64" {
		t.Fatalf("streams --json: exit %d\n%s", r.code, r.stdout)
	}
}

// TestInitWritesAFileThatRuns: `pipeline init` into an empty folder writes a
// starter file that validates and runs against the sandbox there, finding
// the plugin beside the pipeline binary; a second init refuses to
// overwrite it. A connector whose plugin cannot be found says where the
// host looked.
func TestInitWritesAFileThatRuns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lake")
	if r := runPipeline(t, t.TempDir(), nil, "init", dir); r.code != 0 || !strings.Contains(r.stdout, "Wrote") {
		t.Fatalf("init: exit %d\n%s", r.code, r.stderr)
	}
	if r := runPipeline(t, dir, nil, "validate", "--sandbox"); r.code != 0 {
		t.Fatalf("validate the starter file: exit %d\n%s", r.code, r.stderr)
	}
	if r := runPipeline(t, dir, nil, "run", "--sandbox", "products", "orders"); r.code != 0 || rowsOf(t, r.stdout, "orders") == 0 {
		t.Fatalf("run the starter file: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runPipeline(t, dir, nil, "init", dir); r.code != 1 || !strings.Contains(r.stderr, "does not overwrite") {
		t.Fatalf("init over a file: exit %d\n%s", r.code, r.stderr)
	}
	missing := writeFile(t, "connector \"nosuch\" {}\n")
	if r := runPipeline(t, filepath.Dir(missing), nil, "validate", "-f", missing); r.code != 2 || !strings.Contains(r.stderr, "no plugin nosuch-plugin found (looked in") {
		t.Fatalf("a plugin that cannot be found: exit %d\n%s", r.code, r.stderr)
	}
}

// TestProfilesOfTheHostAndItsPluginsAreWritten: with PIPEHOST_CPUPROFILE
// set, a run writes the host's CPU profile there and each plugin's beside
// it (NAME.CONNECTOR), though a plugin gets none of the host's environment
// otherwise; each is a gzipped pprof profile naming its own binary.
func TestProfilesOfTheHostAndItsPluginsAreWritten(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lake")
	if r := runPipeline(t, t.TempDir(), nil, "init", dir); r.code != 0 {
		t.Fatalf("init: exit %d\n%s", r.code, r.stderr)
	}
	prof := filepath.Join(dir, "host.prof")
	if r := runPipeline(t, dir, []string{"PIPEHOST_CPUPROFILE=" + prof}, "run", "--sandbox", "orders"); r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	for path, binary := range map[string]string{prof: "pipeline", prof + ".nuorder": "nuorder-plugin"} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatalf("no profile: %v", err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s is not a gzipped profile: %v", path, err)
		}
		raw, err := io.ReadAll(zr)
		f.Close()
		if err != nil || !bytes.Contains(raw, []byte(string(os.PathSeparator)+binary)) {
			t.Fatalf("%s: %d bytes, error %v, does not name %s", path, len(raw), err, binary)
		}
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipehost/sinks"
)

// run calls the command line in process and returns its exit code and
// output.
func runInProcess(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := execute(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestAWrongWordSuggestsTheClosest: an unknown flag, command, subcommand
// or value of a flag is answered with the closest one the host knows.
func TestAWrongWordSuggestsTheClosest(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--full-refres"}, "unknown flag: --full-refres; did you mean --full-refresh?"},
		{[]string{"--fil", "x.hcl", "validate"}, "did you mean --file?"},
		{[]string{"stat"}, `unknown command "stat" for "pipeline"; did you mean "state"?`},
		{[]string{"state", "shw"}, `did you mean "show"?`},
		{[]string{"--log-level", "inf", "validate", "-f", "/nonexistent.hcl"}, `--log-level "inf" is not one of trace, debug, info, warn, error; did you mean "info"?`},
		{[]string{"--log-format", "jsn", "validate", "-f", "/nonexistent.hcl"}, `did you mean "json"?`},
	} {
		code, _, stderr := runInProcess(tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestHelpListsEverySink: --help names every sink this build registers.
func TestHelpListsEverySink(t *testing.T) {
	code, out, _ := runInProcess("--help")
	if code != exitOK || len(sinks.Names()) < 5 {
		t.Fatalf("exit %d, sinks %v", code, sinks.Names())
	}
	for _, name := range sinks.Names() {
		if !strings.Contains(out, name) {
			t.Fatalf("--help does not name sink %s:\n%s", name, out)
		}
	}
}

// TestABadSinkAttributeIsUnderlined: a value a sink refuses is pointed at
// where it is written, not at its block.
func TestABadSinkAttributeIsUnderlined(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.hcl")
	os.WriteFile(path, []byte(`sink "parquet" "lake" {
  path        = "data"
  compression = "zsdt"
}
sink "postgres" "wh" {
  dsn    = "postgres://u@127.0.0.1:1/db"
  schema = "a b"
}
`), 0o644)
	code, _, stderr := runInProcess("validate", "-f", path)
	for _, want := range []string{path + ":3:17", `3 |   compression = "zsdt"`, path + ":7:12", `compression "zsdt" is not one of`} {
		if code != exitUsage || !strings.Contains(stderr, want) {
			t.Fatalf("exit %d, no %q in\n%s", code, want, stderr)
		}
	}
}

// TestMetricsOnEveryInterfaceAreNoticed: serve warns when --metrics-addr
// listens on every interface (":9464" did so without a word).
func TestMetricsOnEveryInterfaceAreNoticed(t *testing.T) {
	for addr, want := range map[string]bool{":9464": true, "0.0.0.0:9464": true, "[::]:9464": true, "127.0.0.1:9464": false, "[::1]:0": false, "10.1.2.3:9464": false} {
		if got := everyInterface(addr); got != want {
			t.Errorf("%s: %v, want %v", addr, got, want)
		}
	}
}

// TestInitWritesTheDefaultPipelineFile: pipeline init writes the
// repository's pipeline.hcl, one text (it was a drifted copy).
func TestInitWritesTheDefaultPipelineFile(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := runInProcess("init", dir); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "pipeline.hcl"))
	want, _ := os.ReadFile("../pipeline.hcl")
	if len(want) == 0 || string(got) != string(want) {
		t.Fatal("init wrote a file that is not pipeline.hcl")
	}
}

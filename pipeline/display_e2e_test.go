package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"

	"github.com/creack/pty"
)

// TestATerminalSeesTheLiveDisplayAFileOnlyLogLines: run under a
// pseudo-terminal shows a line per running pipeline (rows, rows/s, time,
// then how it ended) and the summary; with output to a file, the same run
// writes log lines only, with millisecond timestamps, and no display.
func TestATerminalSeesTheLiveDisplayAFileOnlyLogLines(t *testing.T) {
	path := numbersFile(t, `
pipeline "wide" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 300000, batch = 2000, width = 64 }
}
pipeline "small" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 500 }
}`)
	dir := filepath.Dir(path)
	cmd := exec.Command(filepath.Join(binDir, "pipeline"), "run", "-f", path)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TERM=xterm")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 160})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&out, tty); close(copied) }() // ends with EIO when the command exits
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run under a terminal: %v\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("run under a terminal did not end")
	}
	select {
	case <-copied:
	case <-time.After(5 * time.Second):
	}
	screen := out.String()
	for _, want := range []string{"wide", "small", "rows/s", "300000 rows", " ok", "PIPELINE", "FROM"} {
		if !strings.Contains(screen, want) {
			t.Fatalf("the terminal did not show %q:\n%s", want, screen)
		}
	}

	// The same run into files: log lines only.
	stderr, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd = exec.Command(filepath.Join(binDir, "pipeline"), "run", "-f", path, "--full-refresh")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	var ee *exec.ExitError
	if err := cmd.Run(); err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(stderr.Name())
	log := string(b)
	if strings.Contains(log, "rows/s ") || strings.Contains(log, "\x1b[") || !strings.Contains(log, `"@message":"pipeline finished"`) {
		t.Fatalf("output to a file:\n%.3000s", log)
	}
	if !strings.Contains(log, `"@timestamp":"`) || !strings.Contains(strings.SplitN(strings.SplitN(log, `"@timestamp":"`, 2)[1], `"`, 2)[0], ".") {
		t.Fatalf("log lines without millisecond timestamps:\n%.600s", log)
	}
}

// TestTheLiveDisplayShowsRequestsAsTheyHappen: on a terminal, a NuOrder read
// whose second listing is slow shows its requests while it still runs, not
// only at the end.
func TestTheLiveDisplayShowsRequestsAsTheyHappen(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 41, Products: 10, Companies: 10, Orders: 200}
	srv := serveFake(t, cat)
	srv.InjectFault(api.OrdersDetail, fakeapi.Fault{Skip: 1, Delay: 3 * time.Second, Times: 1})
	path := incrementalFile(t, srv.URL(), cat)
	cmd := exec.Command(filepath.Join(binDir, "pipeline"), "run", "-f", path, "orders")
	cmd.Dir = filepath.Dir(path)
	cmd.Env = append(append(os.Environ(), "TERM=xterm"), credEnv(e2eCreds)...)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&out, tty); close(copied) }()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run under a terminal: %v\n%s", err, out.String())
	}
	select {
	case <-copied:
	case <-time.After(5 * time.Second):
	}
	live := regexp.MustCompile(`\b([1-9][0-9]*) requests +[0-9]+ retries +[0-9.]+s +running`)
	if !live.MatchString(out.String()) {
		t.Fatalf("no frame showed requests while the run was running:\n%s", out.String())
	}
}

// onTerminal runs the host under a pseudo-terminal with extra environment
// and returns what the terminal showed.
func onTerminal(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "pipeline"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 160})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&out, tty); close(copied) }()
	cmd.Wait()
	select {
	case <-copied:
	case <-time.After(5 * time.Second):
	}
	return out.String()
}

// TestTheTerminalHonoursNOCOLORAndDumbTerminals: NO_COLOR removes colour
// and bold from diagnostics and log lines; TERM=dumb (no cursor movement)
// gets log lines and the summary, no live display.
func TestTheTerminalHonoursNOCOLORAndDumbTerminals(t *testing.T) {
	path := numbersFile(t, `
pipeline "small" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 500 }
}`)
	dir := filepath.Dir(path)
	bad := writeFile(t, strings.Replace(readFileString(t, path), "count = 500", "count = 500, cuont = 1", 1))
	sgr := regexp.MustCompile("\x1b\\[[0-9;]*m")
	if out := onTerminal(t, dir, []string{"TERM=xterm"}, "validate", "-f", bad); !sgr.MatchString(out) {
		t.Fatalf("a terminal shows no bold diagnostics (so the next check proves nothing):\n%q", out)
	}
	if out := onTerminal(t, dir, []string{"TERM=xterm", "NO_COLOR=1"}, "validate", "-f", bad); sgr.MatchString(out) || !strings.Contains(out, "Unknown option") {
		t.Fatalf("NO_COLOR, yet colour or bold:\n%q", out)
	}
	out := onTerminal(t, dir, []string{"TERM=dumb"}, "run", "-f", path)
	if strings.Contains(out, "rows/s") || strings.Contains(out, "\x1b[") || !strings.Contains(out, "PIPELINE") || !strings.Contains(out, "pipeline finished") {
		t.Fatalf("TERM=dumb:\n%q", out)
	}
}

// TestTheLiveDisplayAgreesWithTheSummary: orders and order_lines share one
// read, whose requests count on the first pipeline; each line of the
// display ends with the requests and the time the summary table shows for
// it (the second line showed the connector's whole count before).
func TestTheLiveDisplayAgreesWithTheSummary(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 41, Products: 10, Companies: 10, Orders: 200}
	srv := serveFake(t, cat)
	path := incrementalFile(t, srv.URL(), cat)
	out := onTerminal(t, filepath.Dir(path), append([]string{"TERM=xterm"}, credEnv(e2eCreds)...), "run", "-f", path, "orders", "order_lines")
	final := regexp.MustCompile(`(orders|order_lines)\s+(\d+) rows\s+\d+ rows/s\s+(\d+) requests\s+\d+ retries\s+(\S+)\s+ok`)
	table := regexp.MustCompile(`(?m)^(orders|order_lines)\s+connector\S+\s+sink\S+\s+(\d+)\s+\d+\s+(\d+)\s+\d+\s+(\S+)\s+ok`)
	shown := map[string][]string{}
	for _, m := range final.FindAllStringSubmatch(out, -1) {
		shown[m[1]] = m[2:] // the last frame wins
	}
	rows := table.FindAllStringSubmatch(out, -1)
	if len(rows) != 2 || len(shown) != 2 {
		t.Fatalf("display %v, table %v:\n%s", shown, rows, out)
	}
	for _, m := range rows {
		if d := shown[m[1]]; d[0] != m[2] || d[1] != m[3] || d[2] != m[4] {
			t.Fatalf("%s: the display ends with %v (rows, requests, time), the summary says %v", m[1], d, m[2:])
		}
	}
}

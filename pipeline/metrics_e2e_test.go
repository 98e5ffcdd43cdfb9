package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

// metricValue finds a sample of a metric with a pipeline label in the text
// format, or -1.
func metricValue(text, name, pipeline string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{[^}]*pipeline="` + regexp.QuoteMeta(pipeline) + `"[^}]*\} (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// serveWithMetrics starts serve --metrics-addr on a free port and returns
// the process and the base URL of its metrics server. The process gets
// SIGTERM when the test ends.
func serveWithMetrics(t *testing.T, path string, env []string, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "pipeline"), append([]string{"serve", "-f", path, "--log-format", "json", "--metrics-addr", "127.0.0.1:0"}, extra...)...)
	cmd.Dir = filepath.Dir(path)
	cmd.Env = append(os.Environ(), env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var base string
	deadline := time.After(30 * time.Second)
	for base == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("serve ended before it said where its metrics are")
			}
			var rec map[string]any
			if json.Unmarshal([]byte(l), &rec) == nil && rec["@message"] == "serving metrics" {
				base = strings.TrimSuffix(rec["url"].(string), "/metrics")
			}
		case <-deadline:
			t.Fatal("no 'serving metrics' log line")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return cmd, base
}

// TestServeExposesMetricsAndHealth: serve --metrics-addr serves Prometheus
// metrics with the rows of the last run and its success time, and /healthz.
func TestServeExposesMetricsAndHealth(t *testing.T) {
	path := numbersFile(t, `
pipeline "numbers" {
  from     = connector.numbers.numbers
  to       = sink.parquet.lake
  schedule = "@every 1s"
  options  = { count = 300, batch = 100 }
}`)
	_, base := serveWithMetrics(t, path, nil)
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	var text string
	for end := time.Now().Add(30 * time.Second); ; {
		_, text = get(t, base+"/metrics")
		if metricValue(text, "pipehost_rows_written_total", "numbers") == 300 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("no run's rows in the metrics after 30 s:\n%s", text)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if v := metricValue(text, "pipehost_rows_read_total", "numbers"); v != 300 {
		t.Fatalf("rows read %v, want 300", v)
	}
	last := metricValue(text, "pipehost_last_success_timestamp_seconds", "numbers")
	if now := float64(time.Now().Unix()); last < now-60 || last > now+1 {
		t.Fatalf("last success at %v, now is %v", last, now)
	}
	if metricValue(text, "pipehost_last_run_success", "numbers") != 1 || !regexp.MustCompile(`(?m)^pipehost_runs_total\{pipeline="numbers",status="ok"\} [1-9]`).MatchString(text) {
		t.Fatalf("last run status or run count missing:\n%s", text)
	}
	if !strings.Contains(text, `pipehost_run_duration_seconds_count{pipeline="numbers"}`) {
		t.Fatal("no run duration histogram")
	}
	if v := metricValue(text, "pipehost_schedule_interval_seconds", "numbers"); v != 1 {
		t.Fatalf("schedule interval %v s, want 1 (@every 1s)", v)
	}
}

// TestRunWritesAMetricsTextfile: run --metrics-file leaves the run's
// figures where node_exporter's textfile collector reads them.
func TestRunWritesAMetricsTextfile(t *testing.T) {
	path := numbersFile(t, `
pipeline "numbers" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 250 }
}`)
	dir := filepath.Dir(path)
	prom := filepath.Join(dir, "pipehost.prom")
	r := runPipeline(t, dir, nil, "run", "-f", path, "--metrics-file", prom)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	b, err := os.ReadFile(prom)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if metricValue(text, "pipehost_rows_written_total", "numbers") != 250 || metricValue(text, "pipehost_last_run_success", "numbers") != 1 {
		t.Fatalf("textfile:\n%s", text)
	}
	// A file that cannot be written fails the run loudly.
	r = runPipeline(t, dir, nil, "run", "-f", path, "--metrics-file", filepath.Join(dir, "no", "such", "dir", "x.prom"))
	if r.code == 0 || !strings.Contains(r.stderr, "--metrics-file") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

// TestHistoryListsTheLastRuns: history shows each run the state store
// recorded, newest first, in text and JSON.
func TestHistoryListsTheLastRuns(t *testing.T) {
	path := numbersFile(t, `
pipeline "numbers" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 40 }
}
pipeline "failing" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 40, fail_at = 10 }
}`)
	dir := filepath.Dir(path)
	runPipeline(t, dir, nil, "run", "-f", path)
	runPipeline(t, dir, nil, "run", "-f", path, "numbers")
	r := runPipeline(t, dir, nil, "history", "-f", path, "--json")
	var h struct {
		Runs []struct {
			Pipeline string `json:"pipeline"`
			Status   string `json:"status"`
			Rows     int64  `json:"rows"`
			Error    string `json:"error"`
		} `json:"runs"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &h) != nil {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if len(h.Runs) != 3 || h.Runs[0].Pipeline != "numbers" || h.Runs[0].Rows != 0 || h.Runs[1].Rows != 40 ||
		h.Runs[2].Pipeline != "failing" || h.Runs[2].Status != "failed" || !strings.Contains(h.Runs[2].Error, "failing at row 10") {
		t.Fatalf("history %+v", h.Runs)
	}
	r = runPipeline(t, dir, nil, "history", "-f", path, "failing")
	if r.code != 0 || !strings.Contains(r.stdout, "PIPELINE") || !strings.Contains(r.stdout, "failed") || strings.Contains(r.stdout, "numbers  ") {
		t.Fatalf("exit %d\n%s", r.code, r.stdout)
	}
}

// TestRequestsAndRetriesAreCountedByEndpoint: the summary counts each
// pipeline's requests and retries, and the metrics file has them by
// endpoint and status class: a listing answered 503 once, then 200.
func TestRequestsAndRetriesAreCountedByEndpoint(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 95, Products: 5, Companies: 5, Orders: 200}
	srv := serveFake(t, cat)
	srv.InjectFault(api.OrdersDetail, fakeapi.Fault{Status: 503, Times: 1})
	path := incrementalFile(t, srv.URL(), cat)
	dir := filepath.Dir(path)
	prom := filepath.Join(dir, "m.prom")
	r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path, "--json", "--metrics-file", prom, "orders")
	var sum struct {
		Pipelines []struct {
			Requests int64 `json:"requests"`
			Retries  int64 `json:"retries"`
		} `json:"pipelines"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &sum) != nil || len(sum.Pipelines) != 1 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if p := sum.Pipelines[0]; p.Requests != 5 || p.Retries != 1 {
		t.Fatalf("summary: %d requests, %d retries; want 5 (4 listings, one of them twice) and 1", p.Requests, p.Retries)
	}
	b, _ := os.ReadFile(prom)
	text := string(b)
	for _, want := range []string{
		`pipehost_requests_total{class="2xx",connector="nuorder",endpoint="GET /api/orders/{status}/detail"} 4`,
		`pipehost_requests_total{class="5xx",connector="nuorder",endpoint="GET /api/orders/{status}/detail"} 1`,
		`pipehost_retries_total{connector="nuorder",endpoint="GET /api/orders/{status}/detail"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("metrics lack %s:\n%s", want, text)
		}
	}
	if srv.Requests(api.OrdersDetail) != 5 {
		t.Fatalf("the fake answered %d listing requests", srv.Requests(api.OrdersDetail))
	}
}

// TestAKilledPluginCountsAsARestart: a plugin killed in the middle of a
// scheduled run fails that run, is counted in pipehost_plugin_restarts_total
// under its connector, and the next turn runs with a fresh plugin.
func TestAKilledPluginCountsAsARestart(t *testing.T) {
	srv := startFake(t, 5)
	srv.InjectFault(api.ProductList, fakeapi.Fault{Delay: time.Minute, Times: 1})
	path := nuorderFile(t, srv.URL(), `
pipeline "products" {
  from     = connector.nuorder.products
  to       = sink.parquet.lake
  schedule = "@every 1s"
}`)
	cmd, base := serveWithMetrics(t, path, credEnv(e2eCreds))
	var plugins []int
	waitFor(t, "the run to reach NuOrder", func() bool {
		plugins = childrenOf(cmd.Process.Pid)
		return srv.Requests(api.ProductList) > 0 && len(plugins) > 0
	})
	for _, pid := range plugins {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	var text string
	waitFor(t, "the restart and a good run in the metrics", func() bool {
		_, text = get(t, base+"/metrics")
		return metricValue(text, "pipehost_last_run_success", "products") == 1
	})
	if !strings.Contains(text, `pipehost_plugin_restarts_total{connector="nuorder"} 1`) ||
		!strings.Contains(text, `pipehost_runs_total{pipeline="products",status="failed"} 1`) {
		t.Fatalf("metrics after the kill:\n%s", text)
	}
}

// TestServeSkipsATurnHeldElsewhereWithoutFailing: while another run holds a
// pipeline's lock (a replica, a manual run), serve's turns of it are
// skipped and counted as skipped, not as failed runs; once it is free, the
// next turn runs.
func TestServeSkipsATurnHeldElsewhereWithoutFailing(t *testing.T) {
	path := numbersFile(t, `
pipeline "numbers" {
  from     = connector.numbers.numbers
  to       = sink.parquet.lake
  schedule = "@every 1s"
  options  = { count = 100 }
}`)
	lockDir := filepath.Join(filepath.Dir(path), ".pipeline-state", "pipeline")
	os.MkdirAll(lockDir, 0o700)
	lock, err := os.OpenFile(filepath.Join(lockDir, "numbers.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	_, base := serveWithMetrics(t, path, nil)
	var text string
	for end := time.Now().Add(20 * time.Second); ; {
		_, text = get(t, base+"/metrics")
		if metricValue(text, "pipehost_turns_skipped_total", "numbers") >= 2 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("no skipped turn counted:\n%s", text)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if regexp.MustCompile(`(?m)^pipehost_runs_total\{pipeline="numbers",status="failed"\} [1-9]`).MatchString(text) {
		t.Fatalf("a turn blocked by the lock counted as a failed run:\n%s", text)
	}
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	for end := time.Now().Add(20 * time.Second); metricValue(text, "pipehost_rows_written_total", "numbers") != 100; {
		if time.Now().After(end) {
			t.Fatalf("no run after the lock was freed:\n%s", text)
		}
		time.Sleep(200 * time.Millisecond)
		_, text = get(t, base+"/metrics")
	}
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

func TestServeRunsPipelinesOnTheirSchedule(t *testing.T) {
	path := numbersFile(t, `
pipeline "numbers" {
  from     = connector.numbers.numbers
  to       = sink.parquet.lake
  schedule = "@every 1s"
  options  = { count = 300, batch = 300 }
}
pipeline "unscheduled" {
  from = connector.numbers.numbers
  to   = sink.parquet.lake
}`)
	dir := filepath.Dir(path)
	cmd := exec.Command(filepath.Join(binDir, "pipeline"), "serve", "-f", path, "--log-format", "json")
	cmd.Dir = dir
	cmd.Env = os.Environ()
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two scheduled runs", func() bool { return strings.Count(stderr.String(), "scheduled run finished") >= 2 })
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("serve did not stop on SIGTERM\n%s", stderr.String())
	}
	runs := strings.Count(stderr.String(), "scheduled run finished")
	if runs < 2 {
		t.Fatalf("%d scheduled runs of @every 1s\n%s", runs, stderr.String())
	}
	// The first run read the 300 rows; later ones found nothing new.
	tbl, _ := readParquet(t, filepath.Join(dir, "out", "numbers"))
	if tbl.NumRows() != 300 {
		t.Fatalf("%d rows after %d runs, want 300", tbl.NumRows(), runs)
	}
	if strings.Contains(stderr.String(), `"pipeline":"unscheduled"`) {
		t.Fatal("a pipeline without a schedule was run")
	}
}

func TestAnInvalidScheduleIsReportedWhereItIs(t *testing.T) {
	path := numbersFile(t, `
pipeline "numbers" {
  from     = connector.numbers.numbers
  to       = sink.parquet.lake
  schedule = "every hour"
}`)
	r := runPipeline(t, filepath.Dir(path), nil, "validate", "-f", path)
	if r.code == 0 || !strings.Contains(r.stderr, "Invalid schedule") || !strings.Contains(r.stderr, path+":16:14") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

func TestRunningPipelinesLogTheirProgress(t *testing.T) {
	path := numbersFile(t, `
pipeline "numbers" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 400000, batch = 2000, width = 64 }
}`)
	r := runPipeline(t, filepath.Dir(path), nil, "run", "-f", path, "--progress-every", "20ms", "--log-format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, `"@message":"progress"`) || !strings.Contains(r.stderr, `"rows_per_s":`) {
		t.Fatalf("no progress line:\n%.2000s", r.stderr)
	}
	// --progress-every 0 switches the line off (the run still logs its end).
	r = runPipeline(t, filepath.Dir(path), nil, "run", "-f", path, "--progress-every", "0", "--log-format", "json", "--full-refresh")
	if r.code != 0 || strings.Contains(r.stderr, `"@message":"progress"`) || !strings.Contains(r.stderr, `"@message":"pipeline finished"`) {
		t.Fatalf("exit %d with --progress-every 0:\n%.2000s", r.code, r.stderr)
	}
}

// TestServeSaysWhenATurnIsSkipped: a run still going when its next turn
// comes is not started twice, and the skipped turn is logged with the
// pipeline's name, so a stuck pipeline does not go quiet.
func TestServeSaysWhenATurnIsSkipped(t *testing.T) {
	srv := startFake(t, 5)
	srv.InjectFault(api.ProductList, fakeapi.Fault{Delay: 2500 * time.Millisecond})
	path := nuorderFile(t, srv.URL(), `
pipeline "products" {
  from     = connector.nuorder.products
  to       = sink.parquet.lake
  schedule = "@every 1s"
}`)
	cmd := exec.Command(filepath.Join(binDir, "pipeline"), "serve", "-f", path, "--log-format", "json")
	cmd.Dir = filepath.Dir(path)
	cmd.Env = append(os.Environ(), credEnv(e2eCreds)...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a skipped turn", func() bool { return strings.Contains(stderr.String(), "turn skipped") })
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM) // interrupt the slow run
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("serve did not stop\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "turn skipped: the previous run of this pipeline is still going") ||
		!strings.Contains(stderr.String(), `"pipeline":"products"`) {
		t.Fatalf("no skipped turn logged:\n%s", stderr.String())
	}
}

// BenchmarkRunParallel runs the five default NuOrder pipelines (products,
// locations, companies, orders, order_lines; the last two on one read)
// through the real binaries against a fake that answers each request after
// 200 ms (NuOrder builds a whole listing before it answers), with
// max_in_flight = 10, --parallel 1 and --parallel 3 side by side in each
// iteration, and reports both times and their ratio:
//
//	make build && go test ./pipeline -run '^$' -bench RunParallel -benchtime 2x
func BenchmarkRunParallel(b *testing.B) {
	cat := fakeapi.Catalog{Seed: 91, Products: 60, Companies: 60, Orders: 2000}
	srv, err := fakeapi.Start(fakeapi.Options{Credentials: e2eCreds, Catalog: cat, Latency: 200 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	var took [2]time.Duration
	for i := 0; i < b.N; i++ {
		for k, parallel := range []string{"1", "3"} {
			path := incrementalFile(b, srv.URL(), cat)
			hcl, _ := os.ReadFile(path)
			os.WriteFile(path, []byte(strings.Replace(string(hcl), "cursor_lag_seconds = 0", "cursor_lag_seconds = 0\n    max_in_flight = 10", 1)), 0o644)
			r := runPipeline(b, filepath.Dir(path), credEnv(e2eCreds), "run", "-f", path, "--parallel", parallel, "--log-level", "warn")
			if r.code != 0 {
				b.Fatalf("--parallel %s: exit %d\n%s", parallel, r.code, r.stderr)
			}
			took[k] += r.elapsed
		}
	}
	b.ReportMetric(took[0].Seconds()/float64(b.N), "s/run-parallel-1")
	b.ReportMetric(took[1].Seconds()/float64(b.N), "s/run-parallel-3")
	b.ReportMetric(took[0].Seconds()/took[1].Seconds(), "speedup")
}

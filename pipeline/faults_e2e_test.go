package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

// storedCheckpoint reads a pipeline's stored checkpoint from the local
// state folder ("" when none).
func storedCheckpoint(t *testing.T, dir, pipeline, stream string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".pipeline-state", "pipeline", pipeline+".json"))
	if err != nil {
		return ""
	}
	var f struct {
		Streams map[string]struct {
			Checkpoint json.RawMessage `json:"checkpoint"`
		} `json:"streams"`
	}
	json.Unmarshal(b, &f)
	return string(f.Streams[stream].Checkpoint)
}

func parquetFiles(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	sort.Strings(files)
	return files
}

// TestFaultSuite: NuOrder misbehaving in every way we know of, through the
// real binaries. For each fault the run makes a bounded number of attempts,
// fails with a message naming the endpoint and the cause, commits no row and
// leaves the stored checkpoint where it was; once the fault is gone, the
// next run picks up exactly what changed.
func TestFaultSuite(t *testing.T) {
	t.Parallel()
	cat := fakeapi.Catalog{Seed: 113, Products: 10, Companies: 10, Orders: 400}
	srv := serveFake(t, cat)
	other := serveFake(t, cat) // the host a redirect points at
	// Two files for the same pipeline, state and lake: generous timeouts, so
	// a loaded machine (CI runs the race detector beside) does not turn a
	// fault into a timeout, and 1 s ones for the cases that test them.
	file := func(timeout int) string {
		return fmt.Sprintf(`
connector "nuorder" {
  plugin = %q
  config {
    base_url                 = %q
    cursor_lag_seconds       = 0
    response_timeout_seconds = %d
    idle_timeout_seconds     = %d
    max_retries              = 2
    retry_max_wait_seconds   = 2%s
  }
}
sink "parquet" "lake" {
  path = "out"
}
pipeline "orders" {
  from    = connector.nuorder.orders
  options = { statuses = "approved" }
  to      = sink.parquet.lake
}`, plugin("nuorder"), srv.URL(), timeout, timeout, nuorderCreds)
	}
	path := writeFile(t, file(30))
	dir := filepath.Dir(path)
	tight := filepath.Join(dir, "tight.hcl")
	if err := os.WriteFile(tight, []byte(file(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out", "orders")
	if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path); r.code != 0 {
		t.Fatalf("baseline: exit %d\n%s", r.code, r.stderr)
	}
	baseFiles, baseCP := parquetFiles(out), storedCheckpoint(t, dir, "orders", "orders")
	if len(baseFiles) == 0 || baseCP == "" {
		t.Fatal("the baseline run committed nothing")
	}
	var edited []int
	for i := 0; i < cat.Orders && len(edited) < 2; i++ {
		if cat.OrderStatus(i) == "approved" {
			edited = append(edited, i)
		}
	}
	time.Sleep(5 * time.Millisecond)
	srv.EditOrders(edited...) // a successful run would now commit 2 rows

	detail := "GET /api/orders/approved/detail"
	cases := []struct {
		name     string
		fault    fakeapi.Fault
		says     []string
		attempts int
	}{
		{"429 without Retry-After", fakeapi.Fault{Status: 429}, []string{detail, "429"}, 3},
		{"429 whose Retry-After (seconds) exceeds the wait budget", fakeapi.Fault{Status: 429, RetryAfter: "3600"}, []string{detail, "come back after 1h0m0s", "run again later"}, 1},
		{"429 whose Retry-After (HTTP date) exceeds the wait budget", fakeapi.Fault{Status: 429, RetryAfter: time.Now().Add(2 * time.Hour).UTC().Format(http.TimeFormat)}, []string{detail, "come back after"}, 1},
		{"a burst of 503", fakeapi.Fault{Status: 503}, []string{detail, "503 Service Unavailable"}, 3},
		{"a connection dropped mid-body", fakeapi.Fault{DropAfterBytes: 3000}, []string{detail, "failed after 3 attempts"}, 3},
		{"a truncated array", fakeapi.Fault{TruncateAfterBytes: 3000}, []string{detail, "unexpected EOF"}, 3},
		{"an HTML page with status 200", fakeapi.Fault{HTML: true}, []string{detail, "HTML page instead of JSON", "Bad Gateway"}, 3},
		{"an answer slower than the timeout", fakeapi.Fault{Delay: 60 * time.Second}, []string{detail, "within 1s (response_timeout_seconds)"}, 3},
		{"a hung connection", fakeapi.Fault{StallAfterBytes: 3000}, []string{detail, "within 1s (idle_timeout_seconds)"}, 3},
		// A 401 is tried once more signed in NuOrder's own scheme (then both are refused).
		{"401", fakeapi.Fault{Status: 401}, []string{detail, "authentication refused by NuOrder (401 Unauthorized)", "refused in both signature schemes"}, 2},
		{"403", fakeapi.Fault{Status: 403}, []string{detail, "403 Forbidden"}, 1},
		{"a redirect to another host", fakeapi.Fault{RedirectTo: other.URL()}, []string{"redirect to another host", other.URL()}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv.ClearFaults()
			srv.InjectFault(api.OrdersDetail, tc.fault)
			before := srv.Requests(api.OrdersDetail)
			start := time.Now()
			f := path
			if strings.Contains(tc.name, "timeout") || strings.Contains(tc.name, "hung") {
				f = tight
			}
			r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", f)
			took := time.Since(start)
			if r.code != 1 {
				t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			for _, want := range tc.says {
				if !strings.Contains(r.stderr, want) {
					t.Fatalf("the error does not say %q:\n%s", want, r.stderr)
				}
			}
			if n := srv.Requests(api.OrdersDetail) - before; n != tc.attempts {
				t.Fatalf("%d attempts, want %d", n, tc.attempts)
			}
			if files := parquetFiles(out); strings.Join(files, ",") != strings.Join(baseFiles, ",") {
				t.Fatalf("a failed run committed files: %v", files)
			}
			if cp := storedCheckpoint(t, dir, "orders", "orders"); cp != baseCP {
				t.Fatal("a failed run moved the stored checkpoint")
			}
			if strings.Contains(r.stdout+r.stderr, e2eCreds.ConsumerSecret) || strings.Contains(r.stdout+r.stderr, e2eCreds.TokenSecret) {
				t.Fatal("a secret in the output")
			}
			t.Logf("failed in %v after %d attempt(s)", took.Round(10*time.Millisecond), tc.attempts)
		})
	}
	if n := other.TotalRequests(); n != 0 {
		t.Fatalf("the host a redirect pointed at got %d requests", n)
	}
	srv.ClearFaults()
	r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path)
	if r.code != 0 || rowsOf(t, r.stdout, "orders") != 2 {
		t.Fatalf("after the faults: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

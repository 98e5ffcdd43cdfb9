package main

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// silentListener accepts connections and never answers on them, as a
// NuOrder behind a dead proxy would; it is closed when the test ends.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "http://" + ln.Addr().String()
}

// TestCheckReportsASilentNuOrderWithinAMinute: with the default config
// (a run waits 120 s for an answer, five times), check has its own limits
// and reports a NuOrder that never answers in under a minute, naming the
// request. It took 485 s before.
func TestCheckReportsASilentNuOrderWithinAMinute(t *testing.T) {
	t.Parallel()
	path := nuorderFile(t, silentListener(t), "")
	r := runPipeline(t, t.TempDir(), credEnv(e2eCreds), "check", "-f", path)
	if r.code == 0 || r.elapsed >= 60*time.Second || !strings.Contains(r.stderr+r.stdout, "/api/products") ||
		!strings.Contains(r.stderr+r.stdout, "no answer") {
		t.Fatalf("check against a silent NuOrder: exit %d after %v\n%s%s", r.code, r.elapsed, r.stdout, r.stderr)
	}
	t.Logf("check failed after %v", r.elapsed.Round(100*time.Millisecond))
}

// TestASilentConnectorFailsTheRunsOtherPipelinesAtOnce: once one pipeline
// has found NuOrder silent after all its attempts, the connector's other
// pipelines of the run fail at once, saying why, instead of each waiting as
// long again: three pipelines fail within the time of one.
func TestASilentConnectorFailsTheRunsOtherPipelinesAtOnce(t *testing.T) {
	t.Parallel()
	url := silentListener(t)
	path := writeFile(t, fmt.Sprintf(`
connector "nuorder" {
  plugin = %q
  config {
    base_url                 = %q
    response_timeout_seconds = 2
    max_retries              = 1%s
  }
}
sink "parquet" "lake" {
  path = "out"
}
pipeline "products" {
  from = connector.nuorder.products
  to   = sink.parquet.lake
}
pipeline "companies" {
  from = connector.nuorder.companies
  to   = sink.parquet.lake
}
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.parquet.lake
}`, plugin("nuorder"), url, nuorderCreds))
	one := runPipeline(t, t.TempDir(), credEnv(e2eCreds), "run", "-f", path, "products")
	if one.code == 0 {
		t.Fatalf("one pipeline against a silent NuOrder: exit 0\n%s", one.stdout)
	}
	three := runPipeline(t, t.TempDir(), credEnv(e2eCreds), "run", "-f", path)
	out := three.stdout + three.stderr
	if three.code == 0 || strings.Count(three.stdout, "FAILED") != 3 {
		t.Fatalf("three pipelines: exit %d\n%s", three.code, out)
	}
	if !strings.Contains(out, "not run: pipeline products found it unreachable earlier in this run") {
		t.Fatalf("the other pipelines do not say why they did not run:\n%s", out)
	}
	if three.elapsed > one.elapsed+3*time.Second {
		t.Fatalf("three pipelines took %v, one took %v", three.elapsed, one.elapsed)
	}
	t.Logf("one pipeline failed after %v, three after %v", one.elapsed.Round(100*time.Millisecond), three.elapsed.Round(100*time.Millisecond))
}

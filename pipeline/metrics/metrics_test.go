package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCountersAreExportedAtZeroBeforeTheirFirstEvent: every counter of a
// declared pipeline and connector is on /metrics at 0 before the first run,
// so the first failure or restart is an increase that alerts see.
func TestCountersAreExportedAtZeroBeforeTheirFirstEvent(t *testing.T) {
	m := New()
	m.Declare([]string{"orders"}, []string{"nuorder"})
	srv := httptest.NewServer(m.Handler(func(context.Context) error { return nil }))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`pipehost_runs_total{pipeline="orders",status="failed"} 0`,
		`pipehost_runs_total{pipeline="orders",status="ok"} 0`,
		`pipehost_rows_written_total{pipeline="orders"} 0`,
		`pipehost_rows_read_total{pipeline="orders"} 0`,
		`pipehost_rows_rejected_total{pipeline="orders"} 0`,
		`pipehost_plugin_restarts_total{connector="nuorder"} 0`,
	} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("no %q in\n%s", want, b)
		}
	}
}

//go:build !cgo

package duckdb

import (
	"strings"
	"testing"

	"pipehost/sinks"
)

// TestWithoutCgoTheSinkSaysSo: a host built without cgo refuses the block
// and says how to get one that has the sink.
func TestWithoutCgoTheSinkSaysSo(t *testing.T) {
	d, ok := sinks.Lookup("duckdb")
	if !ok {
		t.Fatal("no duckdb driver registered")
	}
	_, err := d.Open(func(any) error { return nil }, sinks.Env{})
	if err == nil || !strings.Contains(err.Error(), "built without cgo") || !strings.Contains(err.Error(), "CGO_ENABLED=1") {
		t.Fatalf("open: %v", err)
	}
}

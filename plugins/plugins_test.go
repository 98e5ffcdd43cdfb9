package plugins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"pipehost/connector"
	"pipehost/connector/numbers"
)

// dial serves the numbers connector over an in-process gRPC connection and
// returns the host-side half.
func dial(t *testing.T) connector.Connector {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		pluginName: &grpcPlugin{impl: &numbers.Connector{}},
	})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(pluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(connector.Connector)
}

func TestCatalogCrossesTheWire(t *testing.T) {
	c := dial(t)
	streams, err := c.Streams(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != 3 {
		t.Fatalf("got %d streams, want 3", len(streams))
	}
	st, ok := connector.FindStream(streams, "numbers", connector.Source)
	if !ok || !st.Schema.Equal(numbers.Schema) || st.CursorField != "n" || st.PrimaryKey[0] != "n" {
		t.Fatalf("numbers stream came back as %+v", st)
	}
	schema, err := c.ConfigSchema(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(schema.Attributes) != 2 || !schema.Attributes[1].Sensitive {
		t.Fatalf("config schema came back as %+v", schema)
	}
}

func readAll(t *testing.T, c connector.Connector, req connector.ReadRequest) (rows []int64, checkpoints []string, err error) {
	t.Helper()
	err = c.Read(context.Background(), req, func(b connector.Batch) error {
		if b.Record != nil {
			col := b.Record.Column(0).(*array.Int64)
			rows = append(rows, col.Int64Values()...)
		}
		if b.Checkpoint != nil {
			checkpoints = append(checkpoints, string(b.Checkpoint))
		}
		return nil
	})
	return rows, checkpoints, err
}

func TestReadCarriesBatchesAndCheckpoints(t *testing.T) {
	c := dial(t)
	if err := c.Configure(context.Background(), connector.ConfigureRequest{Config: []byte(`{"offset":5,"token":null}`)}); err != nil {
		t.Fatal(err)
	}
	rows, cps, err := readAll(t, c, connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "numbers"}}, Options: map[string]string{"count": "250", "batch": "100"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 250 || rows[0] != 1 || rows[249] != 250 {
		t.Fatalf("got %d rows (%v...)", len(rows), rows[:3])
	}
	if strings.Join(cps, ",") != "100,200,250" {
		t.Fatalf("checkpoints %v, want 100,200,250", cps)
	}
	// Resume after a checkpoint: only the rows after it.
	rows, _, err = readAll(t, c, connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "numbers", Checkpoint: []byte("200")}}, Options: map[string]string{"count": "250"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 50 || rows[0] != 201 {
		t.Fatalf("resumed read gave %d rows starting at %d", len(rows), rows[0])
	}
}

func TestReadErrorsKeepTheirText(t *testing.T) {
	c := dial(t)
	rows, _, err := readAll(t, c, connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "numbers"}}, Options: map[string]string{"count": "500", "fail_at": "301"}})
	if err == nil || !strings.Contains(err.Error(), "failing at row 301") || strings.Contains(err.Error(), "rpc error") {
		t.Fatalf("error = %v", err)
	}
	if len(rows) != 300 {
		t.Fatalf("rows before the failure: %d, want 300", len(rows))
	}
	_, _, err = readAll(t, c, connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "nope"}}})
	if !errors.Is(err, connector.ErrUnknownStream) {
		t.Fatalf("unknown stream error = %v", err)
	}
}

type sliceIter struct{ recs []arrow.Record }

func (s *sliceIter) Next() (arrow.Record, error) {
	if len(s.recs) == 0 {
		return nil, io.EOF
	}
	r := s.recs[0]
	s.recs = s.recs[1:]
	return r, nil
}

func ledgerBatch(vals ...int64) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, numbers.LedgerSchema)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues(vals, nil)
	return b.NewRecord()
}

func TestWriteReturnsOneResultPerRow(t *testing.T) {
	c := dial(t)
	in := &sliceIter{recs: []arrow.Record{ledgerBatch(1, -2, 3), ledgerBatch(-4, 5)}}
	var got []connector.RowResult
	sum, err := c.Write(context.Background(), connector.WriteRequest{Stream: "ledger"}, in, func(r []connector.RowResult) error {
		got = append(got, r...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Actions) != 1 || sum.Actions[0].Count != 3 {
		t.Fatalf("summary %+v, want 3 numbers recorded", sum)
	}
	if len(got) != 5 {
		t.Fatalf("got %d results, want 5", len(got))
	}
	for i, r := range got {
		rejected := r.Error != ""
		if r.Row != int64(i) || rejected != (i == 1 || i == 3) {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	if !strings.Contains(got[3].Error, "negative (-4)") {
		t.Fatalf("reason = %q", got[3].Error)
	}
	// Writing a source stream is refused with a clear message.
	_, err = c.Write(context.Background(), connector.WriteRequest{Stream: "numbers"}, &sliceIter{}, func([]connector.RowResult) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "cannot be written") {
		t.Fatalf("writing a source stream: %v", err)
	}
}

func TestSplitRecordKeepsEveryRow(t *testing.T) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, numbers.Schema)
	defer b.Release()
	pad := strings.Repeat("x", 1000)
	for i := int64(0); i < 10000; i++ {
		b.Field(0).(*array.Int64Builder).Append(i)
		b.Field(1).(*array.Int64Builder).Append(i)
		b.Field(2).(*array.StringBuilder).Append(pad)
	}
	rec := b.NewRecord()
	defer rec.Release()
	var pieces, lasts int
	var next int64
	err := splitRecord(rec, 1<<20, func(p arrow.Record, last bool) error {
		pieces++
		if last {
			lasts++
		}
		col := p.Column(0).(*array.Int64)
		for i := 0; i < col.Len(); i++ {
			if col.Value(i) != next {
				t.Fatalf("row %d out of order", next)
			}
			next++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if next != 10000 || pieces < 10 || lasts != 1 {
		t.Fatalf("rows %d, pieces %d, last flags %d", next, pieces, lasts)
	}
}

// unconfigured answers every Check with the contract's ErrNotConfigured.
type unconfigured struct{ numbers.Connector }

func (unconfigured) Check(context.Context) error {
	return fmt.Errorf("check before configure: %w", connector.ErrNotConfigured)
}

func TestSentinelErrorsCrossTheWireBothWays(t *testing.T) {
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		pluginName: &grpcPlugin{impl: &unconfigured{}},
	})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(pluginName)
	if err != nil {
		t.Fatal(err)
	}
	c := raw.(connector.Connector)
	err = c.Check(context.Background())
	if !errors.Is(err, connector.ErrNotConfigured) {
		t.Fatalf("Check through the plugin = %v; want it to wrap connector.ErrNotConfigured", err)
	}
	if err.Error() != "check before configure: connector is not configured" {
		t.Fatalf("the plugin's text changed on the way: %q", err)
	}
	_, _, err = readAll(t, c, connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "nope"}}})
	if !errors.Is(err, connector.ErrUnknownStream) || errors.Is(err, connector.ErrNotConfigured) || err.Error() != `unknown stream "nope"` {
		t.Fatalf("unknown stream through the plugin = %q", err)
	}
	for _, s := range sentinels {
		if got := (&flightConnector{exited: func() bool { return false }}).fromStatus(toStatus(fmt.Errorf("x: %w", s.err))); !errors.Is(got, s.err) {
			t.Errorf("%v does not survive toStatus then fromStatus: %v", s.err, got)
		}
	}
}

// TestForwardedPluginLinesCarryOneTime: the plugin's own timestamp, which
// go-plugin adds to each forwarded line, is dropped; the host stamps it.
func TestForwardedPluginLinesCarryOneTime(t *testing.T) {
	var buf strings.Builder
	l := forwarded(hclog.New(&hclog.LoggerOptions{Output: &buf, JSONFormat: true}))
	l.Named("nuorder").Info("listing read", "timestamp", "2026-11-30T09:00:00.000Z", "rows", 3)
	line := buf.String()
	if strings.Contains(line, `"timestamp"`) || !strings.Contains(line, `"@timestamp"`) || !strings.Contains(line, `"rows":3`) {
		t.Fatalf("forwarded line: %s", line)
	}
}

// TestAPluginThatFailsItsHandshakeSaysWhy: a plugin binary that prints its
// trouble on stderr and exits before the handshake: the host's error quotes
// what it printed (it was only in the log before).
func TestAPluginThatFailsItsHandshakeSaysWhy(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "broken-plugin")
	os.WriteFile(bin, []byte("#!/bin/sh\necho 'error while loading shared libraries: libfoo.so.1' >&2\nexit 127\n"), 0o755)
	_, err := Open(Config{Name: "broken", Path: bin})
	if err == nil || !strings.Contains(err.Error(), "libfoo.so.1") {
		t.Fatalf("%v", err)
	}
}

// TestAPluginPrintingGarbageFailsAtOnce: a binary that prints something
// other than the handshake and leaves a child holding its output fails the
// start at once, saying what it printed (the host waited 30 s before).
func TestAPluginPrintingGarbageFailsAtOnce(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "garbage-plugin")
	os.WriteFile(bin, []byte("#!/bin/sh\nsleep 60 &\necho 'hello, I am not a plugin'\nsleep 60\n"), 0o755)
	start := time.Now()
	_, err := Open(Config{Name: "garbage", Path: bin})
	if err == nil {
		t.Fatal("a garbage-printing binary started")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("failing took %v: %v", took, err)
	}
	t.Logf("failed in %v: %v", time.Since(start).Round(10*time.Millisecond), err)
}

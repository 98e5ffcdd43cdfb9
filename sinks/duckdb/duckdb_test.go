//go:build cgo

package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"pipehost/connector"
	"pipehost/sinks"
)

// orderSchema is shaped like NuOrder's orders: a key, an exact amount, a
// UTC time, a list of structs and a JSON document.
var orderSchema = arrow.NewSchema([]arrow.Field{
	{Name: "_id", Type: arrow.BinaryTypes.String},
	{Name: "status", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "total", Type: &arrow.Decimal128Type{Precision: 18, Scale: 4}, Nullable: true},
	{Name: "modified_on", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "line_items", Type: arrow.ListOf(arrow.StructOf(
		arrow.Field{Name: "sku", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "quantity", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: "ship_start", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	)), Nullable: true},
	{Name: "custom", Type: arrow.BinaryTypes.String, Nullable: true,
		Metadata: arrow.NewMetadata([]string{connector.FormatKey}, []string{connector.JSONFormat})},
}, nil)

func orders(t *testing.T, schema *arrow.Schema, jsonRows string) arrow.Record {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader(jsonRows))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func openSink(t *testing.T) *Sink {
	t.Helper()
	s, err := Open(&Config{Path: filepath.Join(t.TempDir(), "w.duckdb")}, sinks.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func commit(t *testing.T, s *Sink, st sinks.Stream, recs ...arrow.Record) {
	t.Helper()
	ctx := context.Background()
	w, err := s.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, r := range recs {
		if err := w.Write(ctx, r); err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{}`), Final: true}); err != nil {
		t.Fatal(err)
	}
}

// TestNestedColumnsAreDuckDBsOwnTypes: lists of structs land as LIST of
// STRUCT, amounts as exact DECIMAL(18,4), times as TIMESTAMPTZ, documents
// as JSON, and the values read back through them.
func TestNestedColumnsAreDuckDBsOwnTypes(t *testing.T) {
	s := openSink(t)
	st := sinks.Stream{Pipeline: "orders", Name: "orders", Schema: orderSchema, PrimaryKey: []string{"_id"}, Mode: sinks.Append}
	commit(t, s, st, orders(t, orderSchema, `[
{"_id":"a","status":"approved","total":"1234.5678","modified_on":"2026-03-01T10:00:00Z",
 "line_items":[{"sku":"S1","quantity":2,"ship_start":"2026-04-01T00:00:00Z"},{"sku":"S2","quantity":3,"ship_start":null}],
 "custom":"{\"season\":\"FW26\"}"}]`))
	types := map[string]string{}
	query(t, s, `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders'`, func(scan func(...any) error) {
		var n, ty string
		scan(&n, &ty)
		types[n] = ty
	})
	want := map[string]string{
		"total": "DECIMAL(18,4)", "modified_on": "TIMESTAMP WITH TIME ZONE", "custom": "JSON",
		"line_items": "STRUCT(sku VARCHAR, quantity BIGINT, ship_start TIMESTAMP WITH TIME ZONE)[]",
	}
	for col, ty := range want {
		if normal(types[col]) != normal(ty) {
			t.Errorf("column %s is %q, want %q", col, types[col], ty)
		}
	}
	var total, sku, season, mod string
	var qty int64
	query(t, s, `SELECT total::VARCHAR, line_items[2].sku, line_items[2].quantity, custom->>'season', strftime(modified_on AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S') FROM orders`, func(scan func(...any) error) {
		if err := scan(&total, &sku, &qty, &season, &mod); err != nil {
			t.Fatal(err)
		}
	})
	if total != "1234.5678" || sku != "S2" || qty != 3 || season != "FW26" || mod != "2026-03-01T10:00:00" {
		t.Fatalf("read back total %q, sku %q, quantity %d, season %q, modified_on %q", total, sku, qty, season, mod)
	}
}

// TestMergeKeepsTheLatestVersionOfEachRow: within a commit the last row of
// a key wins, across commits the later commit's.
func TestMergeKeepsTheLatestVersionOfEachRow(t *testing.T) {
	s := openSink(t)
	st := sinks.Stream{Pipeline: "orders", Name: "orders", Schema: orderSchema, PrimaryKey: []string{"_id"}, Mode: sinks.Merge}
	commit(t, s, st, orders(t, orderSchema, `[{"_id":"a","status":"approved"},{"_id":"b","status":"approved"}]`),
		orders(t, orderSchema, `[{"_id":"a","status":"processed"}]`))
	commit(t, s, st, orders(t, orderSchema, `[{"_id":"b","status":"shipped"},{"_id":"c","status":"approved"}]`))
	got := map[string]string{}
	n := 0
	query(t, s, `SELECT _id, status FROM orders`, func(scan func(...any) error) {
		var id, status string
		scan(&id, &status)
		got[id] = status
		n++
	})
	if n != 3 || got["a"] != "processed" || got["b"] != "shipped" || got["c"] != "approved" {
		t.Fatalf("%d rows: %v", n, got)
	}
}

// TestAColumnTheStreamGainsIsAdded: the table gains it (old rows null); a
// column whose type changed is refused before anything is written.
func TestAColumnTheStreamGainsIsAdded(t *testing.T) {
	s := openSink(t)
	small := arrow.NewSchema(orderSchema.Fields()[:2], nil)
	commit(t, s, sinks.Stream{Pipeline: "p", Name: "orders", Schema: small, Mode: sinks.Append}, orders(t, small, `[{"_id":"a","status":"approved"}]`))
	commit(t, s, sinks.Stream{Pipeline: "p", Name: "orders", Schema: orderSchema, Mode: sinks.Append}, orders(t, orderSchema, `[{"_id":"b","status":"approved","total":"1.5"}]`))
	var nulls, ones int
	query(t, s, `SELECT count(*) FILTER (WHERE total IS NULL), count(*) FILTER (WHERE total = 1.5) FROM orders`, func(scan func(...any) error) { scan(&nulls, &ones) })
	if nulls != 1 || ones != 1 {
		t.Fatalf("after the new column: %d null, %d of 1.5", nulls, ones)
	}
	changed := arrow.NewSchema([]arrow.Field{{Name: "_id", Type: arrow.BinaryTypes.String}, {Name: "status", Type: arrow.PrimitiveTypes.Int64}}, nil)
	_, err := s.Open(context.Background(), sinks.Stream{Pipeline: "p", Name: "orders", Schema: changed, Mode: sinks.Append})
	if err == nil || !strings.Contains(err.Error(), "column status") || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("a changed type: %v", err)
	}
}

// TestAFileHeldByAnotherProcessIsAHeldClaim: while another process has the
// file open, a claim is refused as held (the engine's exit 3), naming the
// process; once it lets go, the claim is taken.
func TestAFileHeldByAnotherProcessIsAHeldClaim(t *testing.T) {
	if os.Getenv("DUCKDB_TEST_HOLD") != "" {
		d, err := acquire(context.Background(), os.Getenv("DUCKDB_TEST_HOLD"), limits{memoryMiB: 64, threads: 1})
		if err != nil {
			fmt.Println("hold:", err)
			os.Exit(1)
		}
		fmt.Println("holding")
		time.Sleep(time.Minute)
		d.release()
		os.Exit(0)
	}
	s := openSink(t)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestAFileHeldByAnotherProcessIsAHeldClaim$")
	cmd.Env = append(os.Environ(), "DUCKDB_TEST_HOLD="+s.path)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "holding" {
		t.Fatalf("the holder said %q, %v", buf, err)
	}
	_, err := s.Claim(context.Background(), "p", "orders", "store", "run B")
	if !errors.Is(err, sinks.ErrClaimed) || !strings.Contains(err.Error(), fmt.Sprintf("PID %d", cmd.Process.Pid)) {
		t.Fatalf("claim while another process holds the file: %v", err)
	}
	t.Log(err)
	cmd.Process.Kill()
	cmd.Wait()
	release, err := s.Claim(context.Background(), "p", "orders", "store", "run B")
	if err != nil {
		t.Fatalf("after the holder exited: %v", err)
	}
	release()
}

// TestTheFileIsFreeBetweenRuns: after a writer and a claim are let go, the
// process no longer holds the file (another process may open it).
func TestTheFileIsFreeBetweenRuns(t *testing.T) {
	s := openSink(t)
	release, err := s.Claim(context.Background(), "p", "orders", "store", "run A")
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, sinks.Stream{Pipeline: "p", Name: "orders", Schema: orderSchema, Mode: sinks.Append}, orders(t, orderSchema, `[{"_id":"a"}]`))
	release()
	openMu.Lock()
	n := len(opened)
	openMu.Unlock()
	if n != 0 {
		t.Fatalf("%d files still open", n)
	}
	if left, _ := filepath.Glob(filepath.Join(s.stagingRoot(), "*", "*")); len(left) != 0 {
		t.Fatalf("staging files left: %v", left)
	}
}

// TestDuckDBsLimitsAreTheSinks: the file is opened with the sink's memory
// limit and threads (defaults 256 MiB and 1), and values DuckDB cannot work
// with are refused at their attribute.
func TestDuckDBsLimitsAreTheSinks(t *testing.T) {
	for _, c := range []struct {
		mem, threads *int
		wantMem      string
		wantThreads  int64
		refusedAttr  string
	}{
		{wantMem: "256.0 MiB", wantThreads: 1},
		{mem: ptr(512), threads: ptr(2), wantMem: "512.0 MiB", wantThreads: 2},
		{mem: ptr(10), refusedAttr: "memory_limit_mib"},
		{threads: ptr(0), refusedAttr: "threads"},
	} {
		s, err := Open(&Config{Path: filepath.Join(t.TempDir(), "w.duckdb"), MemoryLimitMiB: c.mem, Threads: c.threads}, sinks.Env{})
		if c.refusedAttr != "" {
			var ae *sinks.AttributeError
			if !errors.As(err, &ae) || ae.Attribute != c.refusedAttr {
				t.Fatalf("%s refused with %v", c.refusedAttr, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var mem string
		var threads int64
		query(t, s, "SELECT current_setting('memory_limit'), current_setting('threads')", func(scan func(...any) error) {
			if err := scan(&mem, &threads); err != nil {
				t.Fatal(err)
			}
		})
		if mem != c.wantMem || threads != c.wantThreads {
			t.Fatalf("memory_limit %q, threads %d; want %q, %d", mem, threads, c.wantMem, c.wantThreads)
		}
	}
}

func ptr(n int) *int { return &n }

// TestReadingACheckpointCreatesNoFile: plan reads every pull's checkpoint;
// a DuckDB file that does not exist yet is not created by it.
func TestReadingACheckpointCreatesNoFile(t *testing.T) {
	s := openSink(t)
	cp, _, err := s.Checkpoint(context.Background(), "p", "orders")
	if err != nil || cp != nil {
		t.Fatalf("checkpoint %q, %v", cp, err)
	}
	if _, err := os.Stat(s.path); !os.IsNotExist(err) {
		t.Fatalf("the file exists after a checkpoint read: %v", err)
	}
}

// TestConnectionsOpenedLaterDoNotNeedTheOpenersContext: the pool opens new
// connections long after the call that opened the file; their settings
// must not run under that call's (by then cancelled) context.
func TestConnectionsOpenedLaterDoNotNeedTheOpenersContext(t *testing.T) {
	s := openSink(t)
	ctx, cancel := context.WithCancel(context.Background())
	d, err := acquire(ctx, s.path, s.limits)
	if err != nil {
		t.Fatal(err)
	}
	defer d.release()
	cancel()
	var txs []*sql.Tx
	for i := 0; i < 4; i++ { // four open transactions: four connections
		tx, err := d.db.BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		txs = append(txs, tx)
	}
	for _, tx := range txs {
		tx.Rollback()
	}
}

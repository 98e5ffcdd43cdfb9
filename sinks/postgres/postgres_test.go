package postgres

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/jackc/pgx/v5"

	"pipehost/internal/pgconfig"
	"pipehost/sinks"
)

// dsn is the test server, started by scripts/with-postgres.sh (make test).
func dsn(t *testing.T) string {
	t.Helper()
	d := os.Getenv("PIPEHOST_TEST_PG_DSN")
	if d == "" {
		t.Skip("PIPEHOST_TEST_PG_DSN is not set: run the tests with `make test` (scripts/with-postgres.sh starts a server)")
	}
	return d
}

// freshSchema returns a sink writing into a new schema of its own.
func freshSchema(t *testing.T) (*Sink, *pgx.Conn) {
	t.Helper()
	d := dsn(t)
	schema := fmt.Sprintf("t_%d", time.Now().UnixNano())
	s, err := Open(&Config{DSN: d, Schema: &schema}, sinks.Env{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+ident(schema)+" CASCADE")
		conn.Close(context.Background())
	})
	return s, conn
}

var jsonMeta = arrow.NewMetadata([]string{"pipehost.format"}, []string{"json"})

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "_id", Type: arrow.BinaryTypes.String},
	{Name: "status", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "total", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "qty", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "line_no", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "edited", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "modified_on", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "ship_date", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	{Name: "document", Type: arrow.BinaryTypes.String, Metadata: jsonMeta},
}, nil)

type order struct {
	id, status string
	total      float64
}

func batch(orders ...order) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i, o := range orders {
		b.Field(0).(*array.StringBuilder).Append(o.id)
		b.Field(1).(*array.StringBuilder).Append(o.status)
		b.Field(2).(*array.Float64Builder).Append(o.total)
		b.Field(3).(*array.Int64Builder).Append(int64(i) + 1<<40)
		b.Field(4).(*array.Int32Builder).Append(int32(i))
		b.Field(5).(*array.BooleanBuilder).Append(i%2 == 0)
		b.Field(6).(*array.TimestampBuilder).Append(arrow.Timestamp(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC).UnixMilli()))
		b.Field(7).(*array.Date32Builder).Append(arrow.Date32FromTime(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)))
		lb := b.Field(8).(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.StringBuilder).Append("a")
		b.Field(9).(*array.StringBuilder).Append(fmt.Sprintf(`{"_id":%q,"custom":{"x":1}}`, o.id))
	}
	return b.NewRecord()
}

func open(t *testing.T, s *Sink, mode string, sch *arrow.Schema) sinks.Writer {
	t.Helper()
	w, err := s.Open(context.Background(), sinks.Stream{Pipeline: "p", Name: "orders", Schema: sch, PrimaryKey: []string{"_id"}, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Abort() })
	return w
}

func load(t *testing.T, w sinks.Writer, cp string, final bool, orders ...order) {
	t.Helper()
	rec := batch(orders...)
	defer rec.Release()
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	var c []byte
	if cp != "" {
		c = []byte(cp)
	}
	if _, err := w.Commit(context.Background(), sinks.Commit{Checkpoint: c, Final: final}); err != nil {
		t.Fatal(err)
	}
}

func TestTypesAndCheckpointLandTogether(t *testing.T) {
	s, conn := freshSchema(t)
	w := open(t, s, sinks.Append, schema)
	load(t, w, `{"cursor":"A"}`, false, order{"o1", "approved", 10.5}, order{"o2", "shipped", 20})

	types := map[string]string{}
	rows, _ := conn.Query(context.Background(), `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema=$1 AND table_name='orders'`, s.schema)
	for rows.Next() {
		var n, ty string
		rows.Scan(&n, &ty)
		types[n] = ty
	}
	want := map[string]string{"_id": "text", "status": "text", "total": "double precision", "qty": "bigint", "line_no": "integer",
		"edited": "boolean", "modified_on": "timestamp with time zone", "ship_date": "date", "tags": "jsonb", "document": "jsonb"}
	for col, ty := range want {
		if types[col] != ty {
			t.Fatalf("column %s is %q, want %q (all: %v)", col, types[col], ty, types)
		}
	}
	var custom int
	var tags string
	var mod time.Time
	err := conn.QueryRow(context.Background(), fmt.Sprintf(`SELECT (document->'custom'->>'x')::int, tags::text, modified_on FROM %s WHERE _id='o1'`, s.qualified("orders"))).Scan(&custom, &tags, &mod)
	if err != nil || custom != 1 || tags != `["a"]` || !mod.Equal(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("values: %v %v %v %v", err, custom, tags, mod)
	}
	cp, at, err := s.Checkpoint(context.Background(), "p", "orders")
	if err != nil || string(cp) != `{"cursor":"A"}` || at.IsZero() {
		t.Fatalf("checkpoint %s %v %v", cp, at, err)
	}
}

func TestAbortLeavesNeitherRowsNorCheckpoint(t *testing.T) {
	s, conn := freshSchema(t)
	w := open(t, s, sinks.Append, schema)
	load(t, w, `1`, false, order{"o1", "approved", 1})
	rec := batch(order{"o2", "approved", 2})
	w.Write(context.Background(), rec)
	w.Abort()
	var n int
	conn.QueryRow(context.Background(), "SELECT count(*) FROM "+s.qualified("orders")).Scan(&n)
	cp, _, _ := s.Checkpoint(context.Background(), "p", "orders")
	if n != 1 || string(cp) != "1" {
		t.Fatalf("%d rows, checkpoint %s", n, cp)
	}
}

func TestMergeKeepsTheLatestVersionOfEachRow(t *testing.T) {
	s, conn := freshSchema(t)
	w := open(t, s, sinks.Merge, schema)
	load(t, w, "1", false, order{"o1", "approved", 10}, order{"o2", "approved", 20})
	// o1 changes twice in one batch: the later version wins.
	load(t, w, "2", false, order{"o1", "processed", 11}, order{"o3", "approved", 30}, order{"o1", "shipped", 12})
	got := map[string]string{}
	rows, _ := conn.Query(context.Background(), "SELECT _id, status || ':' || total FROM "+s.qualified("orders"))
	for rows.Next() {
		var id, v string
		rows.Scan(&id, &v)
		got[id] = v
	}
	if fmt.Sprint(got) != "map[o1:shipped:12 o2:approved:20 o3:approved:30]" {
		t.Fatalf("after merge: %v", got)
	}
	// A second run of the merge opens the table it created with its primary
	// key: no second unique index on the same key.
	w.Abort()
	load(t, open(t, s, sinks.Merge, schema), "3", false, order{"o4", "approved", 40})
	var n int
	conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE ns.nspname = $1 AND c.relname = 'orders' AND i.indisunique`, s.schema).Scan(&n)
	if n != 1 {
		t.Fatalf("%d unique indexes on the merged table, want its primary key only", n)
	}
}

func TestOverwriteSwapsAtomically(t *testing.T) {
	s, conn := freshSchema(t)
	var old []order
	for i := 0; i < 5000; i++ {
		old = append(old, order{fmt.Sprint("old", i), "approved", 1})
	}
	load(t, open(t, s, sinks.Append, schema), "", true, old...)

	// A reader counts the table in a loop while the overwrite runs.
	var seen sync.Map
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rc, err := pgx.Connect(context.Background(), dsn(t))
		if err != nil {
			return
		}
		defer rc.Close(context.Background())
		for !stop.Load() {
			var n int
			if err := rc.QueryRow(context.Background(), "SELECT count(*) FROM "+s.qualified("orders")).Scan(&n); err != nil {
				seen.Store("error: "+err.Error(), true)
				continue
			}
			seen.Store(n, true)
		}
	}()
	w := open(t, s, sinks.Overwrite, schema)
	for k := 0; k < 4; k++ { // 4 commits of 2,000 rows before the final one
		var rows []order
		for i := 0; i < 2000; i++ {
			rows = append(rows, order{fmt.Sprintf("new%d-%d", k, i), "approved", 2})
		}
		load(t, w, fmt.Sprint(k), k == 3, rows...)
	}
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	var counts []string
	seen.Range(func(k, _ any) bool { counts = append(counts, fmt.Sprint(k)); return true })
	for _, c := range counts {
		if c != "5000" && c != "8000" {
			t.Fatalf("a reader saw %s rows during the overwrite (saw: %v)", c, counts)
		}
	}
	var n int
	conn.QueryRow(context.Background(), "SELECT count(*) FROM "+s.qualified("orders")).Scan(&n)
	if n != 8000 {
		t.Fatalf("after the overwrite: %d rows", n)
	}
	t.Logf("reader saw counts %v", counts)
}

func TestSchemaEvolution(t *testing.T) {
	s, conn := freshSchema(t)
	load(t, open(t, s, sinks.Append, schema), "", false, order{"o1", "approved", 1})

	// A new column is added; a removed one is kept.
	fields := append([]arrow.Field{}, schema.Fields()[:2]...)
	fields = append(fields, arrow.Field{Name: "carrier", Type: arrow.BinaryTypes.String, Nullable: true})
	narrow := arrow.NewSchema(fields, nil)
	w := open(t, s, sinks.Append, narrow)
	b := array.NewRecordBuilder(memory.DefaultAllocator, narrow)
	b.Field(0).(*array.StringBuilder).Append("o2")
	b.Field(1).(*array.StringBuilder).Append("shipped")
	b.Field(2).(*array.StringBuilder).Append("UPS")
	rec := b.NewRecord()
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(context.Background(), sinks.Commit{Final: true}); err != nil {
		t.Fatal(err)
	}
	var carrier string
	var total *float64
	conn.QueryRow(context.Background(), "SELECT carrier, total FROM "+s.qualified("orders")+" WHERE _id='o2'").Scan(&carrier, &total)
	if carrier != "UPS" || total != nil {
		t.Fatalf("carrier %q total %v", carrier, total)
	}
	// An incompatible change fails before anything is written.
	bad := arrow.NewSchema([]arrow.Field{{Name: "_id", Type: arrow.BinaryTypes.String}, {Name: "total", Type: arrow.BinaryTypes.String}}, nil)
	_, err := s.Open(context.Background(), sinks.Stream{Pipeline: "p", Name: "orders", Schema: bad, Mode: sinks.Append})
	if err == nil || !strings.Contains(err.Error(), "column total of table") || !strings.Contains(err.Error(), "double precision") {
		t.Fatalf("incompatible type: %v", err)
	}
}

func TestConnectionErrorsShowNoPassword(t *testing.T) {
	secret := "s3cret-Pa55word"
	s, err := Open(&Config{DSN: "postgres://alice:" + secret + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"}, sinks.Env{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Open(context.Background(), sinks.Stream{Pipeline: "p", Name: "x", Schema: schema})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("error: %v", err)
	}
	_, err = Open(&Config{DSN: "postgres://alice:" + secret + "@127.0.0.1:notaport/db"}, sinks.Env{})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("parse error: %v", err)
	}
}

// TestAServerThatNeverAnswersFailsTheConnect: a PostgreSQL address that
// accepts the connection and says nothing fails within the connect timeout
// rather than hanging.
func TestAServerThatNeverAnswersFailsTheConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent
		}
	}()
	s, err := Open(&Config{DSN: "postgres://u:pw-secret@" + ln.Addr().String() + "/db?sslmode=disable"}, sinks.Env{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Open(context.Background(), sinks.Stream{Pipeline: "p", Name: "orders", Schema: schema, Mode: sinks.Append})
	if err == nil || time.Since(start) > pgconfig.DefaultConnectTimeout+5*time.Second || strings.Contains(err.Error(), "pw-secret") {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
}

// TestLargeDocumentsAreStoredWithLZ4: a document large enough to be
// compressed is stored with LZ4 where the server offers it (PostgreSQL 14+
// built with it, as the test server is); elsewhere the test is skipped.
func TestLargeDocumentsAreStoredWithLZ4(t *testing.T) {
	s, conn := freshSchema(t)
	var offered bool
	if err := conn.QueryRow(context.Background(), `SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'`).Scan(&offered); err != nil || !offered {
		t.Skipf("the server offers no LZ4 compression (%v)", err)
	}
	docSchema := arrow.NewSchema([]arrow.Field{
		{Name: "_id", Type: arrow.BinaryTypes.String},
		{Name: "document", Type: arrow.BinaryTypes.String, Metadata: jsonMeta},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, docSchema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append("o1")
	b.Field(1).(*array.StringBuilder).Append(`{"line_items":[` + strings.Repeat(`{"style_number":"ST-00042","color":"navy","quantity":3},`, 200) + `{}]}`)
	rec := b.NewRecord()
	defer rec.Release()
	w := open(t, s, sinks.Append, docSchema)
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(context.Background(), sinks.Commit{Checkpoint: []byte("1"), Final: true}); err != nil {
		t.Fatal(err)
	}
	var method string
	var styles int
	err := conn.QueryRow(context.Background(), fmt.Sprintf(`SELECT coalesce(pg_column_compression(document), 'none'), jsonb_array_length(document->'line_items') FROM %s`, s.qualified("orders"))).Scan(&method, &styles)
	if err != nil || method != "lz4" || styles != 201 {
		t.Fatalf("document stored with %q, %d line items (%v); want lz4, 201", method, styles, err)
	}
}

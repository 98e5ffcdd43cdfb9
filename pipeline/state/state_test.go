package state

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// stores returns every Store implementation to test: the local one always,
// the PostgreSQL one when a test server is given (make test starts one).
func stores(t *testing.T) map[string]func(t *testing.T) Store {
	out := map[string]func(t *testing.T) Store{
		"local": func(t *testing.T) Store {
			s, err := OpenLocal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	if dsn := os.Getenv("PIPEHOST_TEST_PG_DSN"); dsn != "" {
		out["postgres"] = func(t *testing.T) Store {
			schema := fmt.Sprintf("state_%d", time.Now().UnixNano())
			s, err := OpenPostgres(context.Background(), dsn, schema)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				s.Close()
				if c, err := pgx.Connect(context.Background(), dsn); err == nil {
					c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
					c.Close(context.Background())
				}
			})
			return s
		}
	} else {
		t.Log("PIPEHOST_TEST_PG_DSN is not set: the PostgreSQL store is not tested (make test sets it)")
	}
	return out
}

func TestStores(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			if e, err := s.Get("p", "orders"); err != nil || e.Bytes() != nil {
				t.Fatalf("fresh store: %v %v", e, err)
			}
			if err := s.Commit("p", "orders", []byte(`{"cursor":"a"}`), CommitMeta{}); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit("p", "orders", []byte(`{"cursor":"b"}`), CommitMeta{}); err != nil {
				t.Fatal(err)
			}
			s.Commit("p", "raw", []byte{0xff, 0x00}, CommitMeta{})
			s.RecordRun("p", "orders", Run{Status: "ok", Rows: 42})
			e, err := s.Get("p", "orders")
			if err != nil || string(e.Bytes()) != `{"cursor":"b"}` || e.LastRun == nil || e.LastRun.Rows != 42 || e.UpdatedAt.IsZero() {
				t.Fatalf("entry %+v %v", e, err)
			}
			if raw, _ := s.Get("p", "raw"); string(raw.Bytes()) != "\xff\x00" {
				t.Fatalf("binary checkpoint came back as %q", raw.Bytes())
			}
			list, _ := s.List("")
			if len(list) != 2 || list[0].Stream != "orders" {
				t.Fatalf("list %+v", list)
			}
			// Two runs of one pipeline exclude each other; others are free.
			unlock, err := s.Lock("p")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Lock("p"); err == nil || !strings.Contains(err.Error(), "already running") {
				t.Fatalf("second lock: %v", err)
			}
			other, err := s.Lock("q")
			if err != nil {
				t.Fatal(err)
			}
			other()
			unlock()
			again, err := s.Lock("p")
			if err != nil {
				t.Fatalf("lock after release: %v", err)
			}
			again()
			// Reset forgets the checkpoint and remembers when.
			before := time.Now().Add(-time.Second)
			if err := s.Reset("p", "orders"); err != nil {
				t.Fatal(err)
			}
			e, _ = s.Get("p", "orders")
			if e.Bytes() != nil || e.ResetAt.Before(before) {
				t.Fatalf("after reset: %+v", e)
			}
			if err := s.Reset("p", ""); err != nil {
				t.Fatal(err)
			}
			if raw, _ := s.Get("p", "raw"); raw.Bytes() != nil || raw.ResetAt.Before(before) {
				t.Fatalf("after resetting the pipeline: %+v", raw)
			}
			if list, _ := s.List("p"); len(list) != 0 {
				t.Fatalf("list after reset: %+v", list)
			}
		})
	}
}

func TestDescribeShortensLongCheckpointValues(t *testing.T) {
	long := strings.Repeat("A", 5000)
	got := Describe([]byte(`{"cursor":"2026-11-29T10:00:00.000Z","listed":{"approved":"` + long + `"}}`))
	if !strings.Contains(got, `"cursor":"2026-11-29T10:00:00.000Z"`) || !strings.Contains(got, "(5000 bytes)") || len(got) > 200 {
		t.Fatalf("described as %s", got)
	}
	if got := Describe([]byte("12345")); got != "12345" {
		t.Fatalf("a short checkpoint described as %s", got)
	}
	// One line, whatever the checkpoint holds.
	for _, cp := range []string{"{\n  \"cursor\": \"a\"\n}", "line one\nline two", "\xff\x00raw"} {
		if got := Describe([]byte(cp)); strings.ContainsAny(got, "\n\r") {
			t.Fatalf("%q described on several lines: %q", cp, got)
		}
	}
}

// TestStoresKeepBindingsAndAnID: a checkpoint's binding and the digest of
// its last data-carrying checkpoint are kept, a commit without a binding
// keeps the one before, a reset forgets them, and a store has an id.
func TestStoresKeepBindingsAndAnID(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			if len(s.ID()) < 8 {
				t.Fatalf("store id %q", s.ID())
			}
			b := &Binding{Source: "nuorder (sandbox)", Destination: "parquet /data/orders"}
			s.Commit("p", "orders", []byte(`{"cursor":"a"}`), CommitMeta{Binding: b, Rows: true})
			s.Commit("p", "orders", []byte(`{"cursor":"b"}`), CommitMeta{})
			e, err := s.Get("p", "orders")
			if err != nil || e.Binding == nil || *e.Binding != *b || e.DataDigest != Digest([]byte(`{"cursor":"a"}`)) {
				t.Fatalf("entry %+v (%v)", e, err)
			}
			s.Reset("p", "")
			if e, _ := s.Get("p", "orders"); e.Binding != nil || e.DataDigest != "" {
				t.Fatalf("after a reset: %+v", e)
			}
		})
	}
	dir := t.TempDir()
	a, _ := OpenLocal(dir)
	a.Commit("p", "s", []byte("1"), CommitMeta{}) // the id is kept from the first write
	b, _ := OpenLocal(dir)
	c, _ := OpenLocal(t.TempDir())
	if a.ID() != b.ID() || a.ID() == c.ID() {
		t.Fatalf("ids %s %s %s: one per folder, kept", a.ID(), b.ID(), c.ID())
	}
}

// TestALockFileThatIsASymlinkIsRefused: the host never truncates what a
// planted symlink points at.
func TestALockFileThatIsASymlinkIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenLocal(dir)
	target := filepath.Join(t.TempDir(), "precious.txt")
	os.WriteFile(target, []byte("precious"), 0o644)
	os.Symlink(target, filepath.Join(dir, "p.lock"))
	if _, err := s.Lock("p"); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("lock through a symlink: %v", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "precious" {
		t.Fatalf("the symlink's target became %q", b)
	}
}

// TestStoresKeepARunHistory: each store keeps the last HistoryRuns runs of
// a stream, newest first, and a reset (which forgets the checkpoint) keeps
// them: they are what happened.
func TestStoresKeepARunHistory(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			start := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
			for i := 0; i < HistoryRuns+5; i++ {
				run := Run{StartedAt: start.Add(time.Duration(i) * time.Hour), FinishedAt: start.Add(time.Duration(i)*time.Hour + time.Minute), Status: "ok", Rows: int64(i)}
				if i%7 == 3 {
					run.Status, run.Error = "failed", fmt.Sprintf("failure %d", i)
				}
				if err := s.RecordRun("hist", "orders", run); err != nil {
					t.Fatal(err)
				}
			}
			e, err := s.Get("hist", "orders")
			if err != nil {
				t.Fatal(err)
			}
			if len(e.Runs) != HistoryRuns || e.Runs[0].Rows != HistoryRuns+4 || e.Runs[HistoryRuns-1].Rows != 5 {
				t.Fatalf("%d runs kept, newest %d rows, oldest %d", len(e.Runs), e.Runs[0].Rows, e.Runs[len(e.Runs)-1].Rows)
			}
			if e.Runs[0].Rows != e.LastRun.Rows || e.Runs[HistoryRuns+4-31].Error != "failure 31" {
				t.Fatalf("history %+v", e.Runs[:3])
			}
			if err := s.Reset("hist", ""); err != nil {
				t.Fatal(err)
			}
			if e, _ = s.Get("hist", "orders"); len(e.Runs) != HistoryRuns || e.Checkpoint != nil {
				t.Fatalf("after a reset: %d runs, checkpoint %s", len(e.Runs), e.Checkpoint)
			}
		})
	}
}

// TestAFileAdoptsItsPipelinesFromTheSharedFolder: a folder every pipeline
// file shared (before each had its own) is read in place of the file's own
// until the first write, which copies the file's pipelines (and the store's
// id, which sinks' commits name) into its own folder; the shared folder is
// left as it was, for the other files.
func TestAFileAdoptsItsPipelinesFromTheSharedFolder(t *testing.T) {
	root := t.TempDir()
	shared := filepath.Join(root, ".pipeline-state")
	old, err := OpenLocal(shared)
	if err != nil {
		t.Fatal(err)
	}
	for _, pl := range []string{"orders", "stock"} {
		if err := old.Commit(pl, pl, []byte(`{"cursor":"`+pl+`"}`), CommitMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	own := filepath.Join(shared, "warehouse")
	s, err := OpenLocalAdopting(own, shared, []string{"orders"})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID() != old.ID() {
		t.Fatalf("id %s, want the shared folder's %s", s.ID(), old.ID())
	}
	if e, _ := s.Get("orders", "orders"); string(e.Bytes()) != `{"cursor":"orders"}` {
		t.Fatalf("before any write: %s", e.Bytes())
	}
	if _, err := os.Stat(own); !os.IsNotExist(err) {
		t.Fatal("reading made the file's folder")
	}
	if err := s.RecordRun("orders", "orders", Run{Status: "ok"}); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Get("orders", "orders"); string(e.Bytes()) != `{"cursor":"orders"}` || e.LastRun == nil {
		t.Fatalf("after the first write: %s %+v", e.Bytes(), e.LastRun)
	}
	if e, _ := s.Get("stock", "stock"); e.Bytes() != nil {
		t.Fatalf("another file's pipeline was adopted: %s", e.Bytes())
	}
	again, _ := OpenLocal(own)
	if again.ID() != old.ID() {
		t.Fatalf("the file's folder has id %s, want %s", again.ID(), old.ID())
	}
	if e, _ := old.Get("orders", "orders"); e.LastRun != nil {
		t.Fatal("the shared folder was changed")
	}
	// A folder of the new kind only: nothing to adopt.
	fresh, _ := OpenLocalAdopting(filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "none"), []string{"orders"})
	if e, _ := fresh.Get("orders", "orders"); e.Bytes() != nil {
		t.Fatal("a fresh store has state")
	}
}

// TestHostsOpeningAFreshPostgresStoreAtOnceAllSucceed: eight hosts open the
// PostgreSQL store on a schema that does not exist yet, at the same moment;
// each succeeds with the same store id (the slower CREATE SCHEMA IF NOT
// EXISTS failed with a raw unique violation on pg_namespace before).
func TestHostsOpeningAFreshPostgresStoreAtOnceAllSucceed(t *testing.T) {
	dsn := os.Getenv("PIPEHOST_TEST_PG_DSN")
	if dsn == "" {
		t.Skip("PIPEHOST_TEST_PG_DSN is not set (make test sets it)")
	}
	for round := 0; round < 5; round++ {
		schema := fmt.Sprintf("race_%d_%d", time.Now().UnixNano(), round)
		var wg sync.WaitGroup
		stores := make([]*Postgres, 8)
		errs := make([]error, 8)
		for i := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stores[i], errs[i] = OpenPostgres(context.Background(), dsn, schema)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, host %d: %v", round, i, err)
			}
			if stores[i].ID() != stores[0].ID() {
				t.Fatalf("round %d: store ids %s and %s", round, stores[i].ID(), stores[0].ID())
			}
		}
		stores[0].pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		for _, s := range stores {
			s.Close()
		}
	}
}

// TestATurnIsClaimedOnce: of several callers claiming a pipeline's turn at
// once through the same PostgreSQL store, exactly one gets it; another
// turn, or another pipeline's, is claimed afresh; claims over a day old
// are forgotten.
func TestATurnIsClaimedOnce(t *testing.T) {
	open, ok := stores(t)["postgres"]
	if !ok {
		t.Skip("PIPEHOST_TEST_PG_DSN is not set")
	}
	s := open(t).(TurnClaimer)
	turn := time.Date(2026, 12, 6, 10, 15, 0, 0, time.UTC)
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine, err := s.ClaimTurn("orders", turn)
			if err != nil {
				t.Error(err)
			}
			if mine {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d callers got the turn, want 1", won)
	}
	for _, c := range []struct {
		pipeline string
		turn     time.Time
		want     bool
	}{
		{"orders", turn, false},
		{"orders", turn.Add(15 * time.Minute), true},
		{"products", turn, true},
		{"orders", turn.Add(48 * time.Hour), true},
		{"orders", turn, true}, // forgotten: the claim above was two days later
	} {
		if got, err := s.ClaimTurn(c.pipeline, c.turn); err != nil || got != c.want {
			t.Errorf("claim %s at %s: %v, %v; want %v", c.pipeline, c.turn, got, err, c.want)
		}
	}
}

//go:build cgo

package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/hashicorp/go-hclog"

	"pipehost/sinks"
	"pipehost/sinks/parquet"
)

func init() { sinks.Register("duckdb", Driver{}) }

// Config is the `sink "duckdb" "NAME"` block.
type Config struct {
	// Path is the database file, relative to the pipeline file's folder;
	// it is created when missing.
	Path string `hcl:"path"`
	// Schema is the DuckDB schema of the tables (default main).
	Schema *string `hcl:"schema,optional"`
	// TablePrefix is put before every stream's table name.
	TablePrefix *string `hcl:"table_prefix,optional"`
	// MemoryLimitMiB is DuckDB's memory_limit in the host (default 256).
	MemoryLimitMiB *int `hcl:"memory_limit_mib,optional"`
	// Threads is DuckDB's threads in the host (default 1: the pipeline's
	// own reading and staging already keep the cores busy).
	Threads *int `hcl:"threads,optional"`
}

// Defaults of the sink's DuckDB limits. DuckDB's own defaults (80% of the
// machine's memory, a thread per core) let one commit of 100,000 order
// documents take the host to 1.5 GiB; with these it stayed under 1 GiB
// at 100,000 and at 1,000,000 orders and ran as fast on two cores
// (docs/sinks.md).
const (
	defaultMemoryMiB = 256
	defaultThreads   = 1
)

// Driver opens DuckDB sinks.
type Driver struct{}

var _ sinks.Driver = Driver{}

// Modes implements sinks.Driver.
func (Driver) Modes() []string { return []string{sinks.Append, sinks.Merge, sinks.Overwrite} }

// Open implements sinks.Driver: it checks the block; the file is opened by
// the first claim, writer or checkpoint read.
func (Driver) Open(decode sinks.Decode, env sinks.Env) (sinks.Sink, error) {
	var c Config
	if err := decode(&c); err != nil {
		return nil, err
	}
	return Open(&c, env)
}

// Open returns a sink for c without touching the file. It errors on an
// empty path, a path DuckDB would read options from ("?"), and names that
// need quoting.
func Open(c *Config, env sinks.Env) (*Sink, error) {
	if strings.TrimSpace(c.Path) == "" {
		return nil, sinks.BadAttribute("path", "path is empty: name the DuckDB database file, e.g. \"warehouse.duckdb\"")
	}
	if strings.Contains(c.Path, "?") || c.Path == ":memory:" {
		return nil, sinks.BadAttribute("path", "path = %q: name a database file (no \"?\", no :memory:, which would be gone at the end of the run)", c.Path)
	}
	path := c.Path
	if !filepath.IsAbs(path) {
		path = filepath.Join(env.BaseDir, path)
	}
	s := &Sink{path: filepath.Clean(path), schema: "main", log: env.Logger, limits: limits{memoryMiB: defaultMemoryMiB, threads: defaultThreads}}
	if c.MemoryLimitMiB != nil {
		if *c.MemoryLimitMiB < 64 {
			return nil, sinks.BadAttribute("memory_limit_mib", "memory_limit_mib = %d: DuckDB needs at least 64 MiB to load order documents", *c.MemoryLimitMiB)
		}
		s.limits.memoryMiB = *c.MemoryLimitMiB
	}
	if c.Threads != nil {
		if *c.Threads < 1 {
			return nil, sinks.BadAttribute("threads", "threads = %d: use 1 or more", *c.Threads)
		}
		s.limits.threads = *c.Threads
	}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if c.Schema != nil && *c.Schema != "" {
		s.schema = *c.Schema
	}
	if c.TablePrefix != nil {
		s.prefix = *c.TablePrefix
	}
	if err := sinks.CheckPlainNames([]string{"schema", "table_prefix"}, map[string]string{"schema": s.schema, "table_prefix": s.prefix}); err != nil {
		return nil, err
	}
	return s, nil
}

// Sink writes streams into tables of one DuckDB file.
type Sink struct {
	path, schema, prefix string
	log                  hclog.Logger
	limits               limits
}

var (
	_ sinks.Sink             = (*Sink)(nil)
	_ sinks.CheckpointReader = (*Sink)(nil)
	_ sinks.Locator          = (*Sink)(nil)
	_ sinks.Claimer          = (*Sink)(nil)
	_ sinks.Writer           = (*Writer)(nil)
)

func (s *Sink) table(stream string) string { return s.prefix + stream }

func (s *Sink) qualified(table string) string { return ident(s.schema) + "." + ident(table) }

// Location implements sinks.Locator.
func (s *Sink) Location(stream string) string {
	return "DuckDB file " + s.path + " table " + s.schema + "." + s.table(stream)
}

// Close implements sinks.Sink.
func (s *Sink) Close() error { return nil }

// checkpointTable holds one checkpoint per pipeline and stream, written in
// the same transaction as the rows.
const checkpointTable = "_pipehost_checkpoints"

// Checkpoint implements sinks.CheckpointReader. A file that does not exist
// has nothing committed, and is not created (plan reads checkpoints).
func (s *Sink) Checkpoint(ctx context.Context, pipeline, stream string) ([]byte, time.Time, error) {
	if _, err := os.Stat(s.path); errors.Is(err, fs.ErrNotExist) {
		return nil, time.Time{}, nil
	}
	d, err := acquire(ctx, s.path, s.limits)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer d.release()
	var cp []byte
	var at time.Time
	err = d.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT checkpoint, committed_at FROM %s WHERE pipeline = ? AND stream = ?`, s.qualified(checkpointTable)),
		pipeline, stream).Scan(&cp, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows), err != nil && strings.Contains(err.Error(), "does not exist"):
		return nil, time.Time{}, nil // no table yet: nothing committed
	case err != nil:
		return nil, time.Time{}, fmt.Errorf("reading the checkpoint from %s: %w", s.path, err)
	}
	return cp, at, nil
}

var (
	claimMu sync.Mutex
	claimed = map[string]string{} // path, table, pipeline -> holder
)

// Claim implements sinks.Claimer. The file itself is the claim against
// other processes: the run keeps it open (DuckDB's lock) until release,
// and a run that finds it held is refused naming the process. Within the
// process, one run at a time holds a pipeline's table.
func (s *Sink) Claim(ctx context.Context, pipeline, stream, _, holder string) (func(), error) {
	d, err := acquire(ctx, s.path, s.limits)
	if err != nil {
		return nil, err
	}
	key := s.path + "\x00" + s.schema + "." + s.table(stream) + "\x00" + pipeline
	claimMu.Lock()
	if who, held := claimed[key]; held {
		claimMu.Unlock()
		d.release()
		return nil, fmt.Errorf("%w: %s is held by %s", sinks.ErrClaimed, s.Location(stream), who)
	}
	claimed[key] = holder
	claimMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			claimMu.Lock()
			delete(claimed, key)
			claimMu.Unlock()
			d.release()
		})
	}, nil
}

// Open implements sinks.Sink: it opens the file, creates or evolves the
// table (a column the stream gains is added; a column whose type changed
// stops the run before any row is written) and starts a staging file.
func (s *Sink) Open(ctx context.Context, st sinks.Stream) (sinks.Writer, error) {
	d, err := acquire(ctx, s.path, s.limits)
	if err != nil {
		return nil, err
	}
	w := &Writer{sink: s, db: d, stream: st, table: s.table(st.Name)}
	if err := w.prepare(ctx); err != nil {
		w.Abort()
		return nil, err
	}
	return w, nil
}

// Writer loads one stream.
type Writer struct {
	sink   *Sink
	db     *database
	stream sinks.Stream
	table  string
	cols   []string // quoted column names, in schema order
	shadow string   // overwrite: the quoted table being loaded

	dir     string // this writer's staging folder
	file    string // the open staging file
	enc     *parquet.Encoder
	staged  int64
	nfile   int
	aborted bool
}

// stagingFormat writes the staging files: no compression (they live for
// one commit on the local disk; compressing them only costs CPU twice).
var stagingFormat = func() parquet.Format {
	none := "none"
	f, err := parquet.FormatConfig{Compression: &none}.Format()
	if err != nil {
		panic(err)
	}
	return f
}()

// stagingRoot is the folder beside the database file that holds the
// writers' staging files.
func (s *Sink) stagingRoot() string {
	return filepath.Join(filepath.Dir(s.path), "."+filepath.Base(s.path)+".staging")
}

// stagingTag names a pipeline's stream among the staging folders; a writer
// sweeps its own pipeline's leftovers only.
func stagingTag(pipeline, stream string) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s", pipeline, stream)
	return fmt.Sprintf("%016x", h.Sum64())
}

var (
	liveMu sync.Mutex
	live   = map[string]bool{} // staging folders of open writers
)

func (w *Writer) prepare(ctx context.Context) error {
	s := w.sink
	target := s.qualified(w.table)
	var defs []string
	for _, f := range w.stream.Schema.Fields() {
		w.cols = append(w.cols, ident(f.Name))
		defs = append(defs, ident(f.Name)+" "+duckType(f))
	}
	if w.stream.Mode == sinks.Merge && len(w.stream.PrimaryKey) == 0 {
		return fmt.Errorf("merge into %s needs the stream's key, and stream %s has none: use append or overwrite", target, w.stream.Name)
	}
	w.db.commit.Lock()
	err := func() error {
		if _, err := w.db.db.ExecContext(ctx, fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %s;
CREATE TABLE IF NOT EXISTS %s (pipeline VARCHAR NOT NULL, stream VARCHAR NOT NULL, checkpoint BLOB, committed_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (pipeline, stream))`,
			ident(s.schema), s.qualified(checkpointTable))); err != nil {
			return fmt.Errorf("creating %s in %s: %w", checkpointTable, s.path, err)
		}
		existing, err := w.columns(ctx)
		if err != nil {
			return err
		}
		if existing == nil {
			if _, err := w.db.db.ExecContext(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s)", target, strings.Join(defs, ", "))); err != nil {
				return fmt.Errorf("creating table %s in %s: %w", target, s.path, err)
			}
		} else {
			// Check every type before changing anything.
			var add []string
			for _, f := range w.stream.Schema.Fields() {
				have, ok := existing[f.Name]
				if !ok {
					add = append(add, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", target, ident(f.Name), duckType(f)))
					continue
				}
				if want := duckType(f); !compatible(have, want) {
					return fmt.Errorf("column %s of table %s in %s is %s, but stream %s now has %s there: migrate the column or load into a new table (table_prefix); nothing was written",
						f.Name, target, s.path, have, w.stream.Name, want)
				}
			}
			for _, q := range add {
				if _, err := w.db.db.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("adding a column to %s in %s: %w", target, s.path, err)
				}
			}
		}
		if w.stream.Mode == sinks.Overwrite {
			w.shadow = s.qualified(w.table + "__pipehost_new")
			if _, err := w.db.db.ExecContext(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s; CREATE TABLE %s (%s)", w.shadow, w.shadow, strings.Join(defs, ", "))); err != nil {
				return fmt.Errorf("creating the table that will replace %s in %s: %w", target, s.path, err)
			}
		}
		return nil
	}()
	w.db.commit.Unlock()
	if err != nil {
		return err
	}
	return w.newStagingDir()
}

// newStagingDir makes the writer's staging folder, sweeping what a killed
// run of the same pipeline's stream left.
func (w *Writer) newStagingDir() error {
	root := w.sink.stagingRoot()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("making the staging folder: %w", err)
	}
	tag := stagingTag(w.stream.Pipeline, w.stream.Name)
	liveMu.Lock()
	defer liveMu.Unlock()
	old, _ := filepath.Glob(filepath.Join(root, tag+"-*"))
	for _, dir := range old {
		if !live[dir] {
			os.RemoveAll(dir)
		}
	}
	dir, err := os.MkdirTemp(root, tag+"-*")
	if err != nil {
		return fmt.Errorf("making the staging folder: %w", err)
	}
	w.dir = dir
	live[dir] = true
	return nil
}

// columns returns the table's columns and their types, or nil when the
// table does not exist.
func (w *Writer) columns(ctx context.Context) (map[string]string, error) {
	rows, err := w.db.db.QueryContext(ctx, `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ?`, w.sink.schema, w.table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out map[string]string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = typ
	}
	return out, rows.Err()
}

// Write implements sinks.Writer: the rows go to the staging file.
func (w *Writer) Write(ctx context.Context, rec arrow.Record) error {
	if rec.NumRows() == 0 {
		return nil
	}
	if w.enc == nil {
		w.nfile++
		w.file = filepath.Join(w.dir, fmt.Sprintf("%08d.parquet", w.nfile))
		f, err := os.Create(w.file)
		if err != nil {
			return fmt.Errorf("staging rows: %w", err)
		}
		enc, err := stagingFormat.NewEncoder(f, w.stream.Schema)
		if err != nil {
			f.Close()
			return fmt.Errorf("staging rows: %w", err)
		}
		w.enc = enc
	}
	if err := w.enc.Write(rec); err != nil {
		return fmt.Errorf("staging rows: %w", err)
	}
	w.staged += rec.NumRows()
	return nil
}

// Commit implements sinks.Writer: in one transaction the staged rows move
// into the table (by mode) and the checkpoint is stored; an overwrite's
// final commit swaps the loaded table in.
func (w *Writer) Commit(ctx context.Context, c sinks.Commit) (sinks.CommitInfo, error) {
	s := w.sink
	target := s.qualified(w.table)
	info := sinks.CommitInfo{Rows: w.staged, Location: s.path + " " + s.schema + "." + w.table}
	staged := ""
	if w.enc != nil {
		err := w.enc.Finish(w.stream.Pipeline, nil)
		w.enc = nil
		if err != nil {
			return info, fmt.Errorf("staging rows: %w", err)
		}
		staged = w.file
	}
	w.db.commit.Lock()
	defer w.db.commit.Unlock()
	err := func() error {
		tx, err := w.db.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if staged != "" {
			if err := w.move(ctx, tx, staged); err != nil {
				return err
			}
		}
		if w.stream.Mode == sinks.Overwrite && c.Final {
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s; ALTER TABLE %s RENAME TO %s", target, w.shadow, ident(w.table))); err != nil {
				return fmt.Errorf("swapping in the new %s: %w", target, err)
			}
		}
		if c.Checkpoint != nil {
			_, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (pipeline, stream, checkpoint, committed_at) VALUES (?, ?, ?, now())
ON CONFLICT (pipeline, stream) DO UPDATE SET checkpoint = excluded.checkpoint, committed_at = excluded.committed_at`, s.qualified(checkpointTable)),
				w.stream.Pipeline, w.stream.Name, c.Checkpoint)
			if err != nil {
				return fmt.Errorf("storing the checkpoint: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("committing into %s: %w", s.path, err)
		}
		return nil
	}()
	if err != nil {
		return info, err
	}
	if w.stream.Mode == sinks.Overwrite && c.Final {
		w.shadow = ""
	}
	if staged != "" {
		os.Remove(staged)
	}
	w.staged = 0
	return info, nil
}

// move inserts the staged file's rows into the table (or the shadow
// table), by mode. Nothing sorts or holds the commit's whole rows: append
// and overwrite insert the file in its order (DuckDB keeps the insertion
// order of one file's scan), and merge finds each key's last row from the
// key columns alone (max of the row's position in the file), so a commit
// of wide documents costs DuckDB row groups, not the commit, in memory.
func (w *Writer) move(ctx context.Context, tx *sql.Tx, file string) error {
	target := w.sink.qualified(w.table)
	cols := strings.Join(w.cols, ", ")
	src := fmt.Sprintf("read_parquet(%s, file_row_number = true)", quote(file))
	var qs []string
	switch w.stream.Mode {
	case sinks.Merge:
		var keys, on []string
		for _, k := range w.stream.PrimaryKey {
			keys = append(keys, ident(k))
			on = append(on, fmt.Sprintf("t.%s IS NOT DISTINCT FROM s.%s", ident(k), ident(k)))
		}
		qs = append(qs,
			fmt.Sprintf("DELETE FROM %s t USING (SELECT DISTINCT %s FROM %s) s WHERE %s", target, strings.Join(keys, ", "), src, strings.Join(on, " AND ")),
			fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s WHERE file_row_number IN (SELECT max(file_row_number) FROM %s GROUP BY %s)",
				target, cols, cols, src, src, strings.Join(keys, ", ")))
	case sinks.Overwrite:
		qs = append(qs, fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s", w.shadow, cols, cols, src))
	default:
		qs = append(qs, fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s", target, cols, cols, src))
	}
	for _, q := range qs {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("moving rows into %s in %s: %w", target, w.sink.path, err)
		}
	}
	return nil
}

// quote is a SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Abort implements sinks.Writer: staged rows are removed with their
// folder; an overwrite's half-loaded table is dropped; the file is let go.
func (w *Writer) Abort() error {
	if w.aborted {
		return nil
	}
	w.aborted = true
	if w.enc != nil {
		w.enc.Abort()
		w.enc = nil
	}
	if w.dir != "" {
		os.RemoveAll(w.dir)
		liveMu.Lock()
		delete(live, w.dir)
		os.Remove(filepath.Dir(w.dir)) // the staging root, when no other writer uses it
		liveMu.Unlock()
	}
	if w.shadow != "" {
		w.db.commit.Lock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		w.db.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+w.shadow)
		cancel()
		w.db.commit.Unlock()
		w.shadow = ""
	}
	w.db.release()
	return nil
}

// Package postgres is the PostgreSQL destination: each stream lands in a
// table named after it, loaded with COPY into a staging table and moved into
// place in one transaction, together with the stream's checkpoint.
//
// Type mapping (Arrow -> PostgreSQL): string -> text (jsonb for columns
// marked as JSON documents), bool -> boolean, int32 -> integer, int64 ->
// bigint, float64 -> double precision, timestamp -> timestamptz, date32 ->
// date, lists and structs -> jsonb.
//
// Modes: append inserts; merge upserts on the stream's primary key (the
// latest version of a row in a commit wins); overwrite loads a shadow table
// and swaps it in at the final commit, in one transaction, so readers see
// the old table or the new one, never an empty or half-loaded one.
//
// Schema evolution is safe: a column the stream gains is added to the table;
// a column it loses is kept (and left null); a column whose type changed
// incompatibly stops the run with a clear message before any row is written.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"pipehost/internal/pgconfig"
	"pipehost/sinks"
)

func init() { sinks.Register("postgres", Driver{}) }

// Config is the `sink "postgres" "NAME"` block.
type Config struct {
	// DSN is a libpq connection string or URL. Sensitive.
	DSN string `hcl:"dsn"`
	// Schema is the PostgreSQL schema of the tables (default public).
	Schema *string `hcl:"schema,optional"`
	// TablePrefix is put before every stream's table name.
	TablePrefix *string `hcl:"table_prefix,optional"`
	// StatementTimeoutSeconds bounds each statement (default 3600; 0: no
	// bound).
	StatementTimeoutSeconds *int `hcl:"statement_timeout_seconds,optional"`
}

// Driver opens PostgreSQL sinks.
type Driver struct{}

var (
	_ sinks.Driver              = Driver{}
	_ sinks.SensitiveAttributes = Driver{}
)

// Modes implements sinks.Driver.
func (Driver) Modes() []string { return []string{sinks.Append, sinks.Merge, sinks.Overwrite} }

// Sensitive implements sinks.SensitiveAttributes: the DSN may hold a password.
func (Driver) Sensitive() []string { return []string{"dsn"} }

// Open implements sinks.Driver.
func (Driver) Open(decode sinks.Decode, env sinks.Env) (sinks.Sink, error) {
	var c Config
	if err := decode(&c); err != nil {
		return nil, err
	}
	return Open(&c, env)
}

// Open returns a sink for c. It parses the DSN but does not connect; an
// error never holds the DSN's password.
func Open(c *Config, env sinks.Env) (*Sink, error) {
	red := pgconfig.NewRedactor(c.DSN)
	if _, err := pgx.ParseConfig(c.DSN); err != nil {
		return nil, red.Err(fmt.Errorf("dsn: %w", err))
	}
	s := &Sink{dsn: c.DSN, red: red, schema: "public", log: env.Logger}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if c.Schema != nil && *c.Schema != "" {
		s.schema = *c.Schema
	}
	if c.TablePrefix != nil {
		s.prefix = *c.TablePrefix
	}
	s.statementTimeout = pgconfig.DefaultStatementTimeout
	if c.StatementTimeoutSeconds != nil {
		if *c.StatementTimeoutSeconds < 0 {
			return nil, sinks.BadAttribute("statement_timeout_seconds", "statement_timeout_seconds must be 0 (no bound) or more, got %d", *c.StatementTimeoutSeconds)
		}
		s.statementTimeout = time.Duration(*c.StatementTimeoutSeconds) * time.Second
	}
	if err := sinks.CheckPlainNames([]string{"schema", "table_prefix"}, map[string]string{"schema": s.schema, "table_prefix": s.prefix}); err != nil {
		return nil, err
	}
	if len(s.schema) > maxIdent {
		return nil, sinks.BadAttribute("schema", "schema = %q is %d bytes: PostgreSQL cuts names at %d", s.schema, len(s.schema), maxIdent)
	}
	return s, nil
}

// maxIdent is PostgreSQL's identifier limit (NAMEDATALEN - 1): longer names
// are cut silently, and two cut names can be the same table.
const maxIdent = 63

// longestSuffix is the longest suffix the sink adds to a table's name for
// the tables and indexes it makes beside it ("__pipehost_new" shadows).
const longestSuffix = len("__pipehost_new")

// CheckStream implements sinks.StreamChecker: the stream's table name, and
// the names made from it, must fit PostgreSQL's identifiers uncut.
func (s *Sink) CheckStream(stream string) error {
	table := s.table(stream)
	if !sinks.PlainName.MatchString(table) {
		return fmt.Errorf("table name %q needs quoting: use letters, digits and _ in table_prefix", table)
	}
	if len(table)+longestSuffix > maxIdent {
		return fmt.Errorf("table name %q is %d bytes; with the %d bytes of its shadow table's suffix it exceeds PostgreSQL's %d-byte names, "+
			"which are cut silently (two streams could share one table): shorten table_prefix to at most %d bytes",
			table, len(table), longestSuffix, maxIdent, max(0, maxIdent-longestSuffix-len(stream)))
	}
	return nil
}

// Sink writes streams into tables of one database.
type Sink struct {
	dsn            string
	red            pgconfig.Redactor
	schema, prefix string
	log            hclog.Logger
	// statementTimeout bounds each statement (0: none).
	statementTimeout time.Duration
}

var (
	_ sinks.Sink             = (*Sink)(nil)
	_ sinks.CheckpointReader = (*Sink)(nil)
	_ sinks.Locator          = (*Sink)(nil)
	_ sinks.StreamChecker    = (*Sink)(nil)
)

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

func (s *Sink) table(stream string) string { return s.prefix + stream }

// Location implements sinks.Locator: server, database and table, never the
// user or password.
func (s *Sink) Location(stream string) string {
	where := "PostgreSQL"
	if cfg, err := pgx.ParseConfig(s.dsn); err == nil {
		where = fmt.Sprintf("PostgreSQL at %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	}
	return where + " table " + s.schema + "." + s.table(stream)
}

func (s *Sink) qualified(table string) string { return pgx.Identifier{s.schema, table}.Sanitize() }

func (s *Sink) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.dsn)
	if err != nil {
		return nil, s.red.Err(fmt.Errorf("dsn: %w", err))
	}
	pgconfig.ApplyTimeouts(cfg, s.statementTimeout)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, s.red.Err(fmt.Errorf("connecting to PostgreSQL: %w", err))
	}
	preferLZ4(ctx, conn)
	return conn, nil
}

// preferLZ4 makes the session compress the values it stores out of line
// (order documents of a few KB) with LZ4 instead of pglz, where the server
// can (PostgreSQL 14 or later, built with LZ4, as Debian's and the official
// images are): the server's pglz compression of every document took a
// large share of a load, and rows/s rose 31% with LZ4
// (BenchmarkOrdersIntoPostgresVsParquet). Readers need nothing: each value
// records its method. Elsewhere the server's default stays; the setting is
// the session's, so the server and its other clients are left alone.
func preferLZ4(ctx context.Context, conn *pgx.Conn) {
	major, _, _ := strings.Cut(conn.PgConn().ParameterStatus("server_version"), ".")
	if n, err := strconv.Atoi(major); err != nil || n < 14 {
		return
	}
	// A server built without LZ4 refuses the value; its default stays.
	conn.Exec(ctx, "SET default_toast_compression = 'lz4'")
}

// checkpointTable holds one checkpoint per pipeline and stream, written in
// the same transaction as the rows.
const checkpointTable = "_pipehost_checkpoints"

func (s *Sink) ensureCheckpointTable(ctx context.Context, conn *pgx.Conn) error {
	return pgconfig.ExecDDL(ctx, func(ctx context.Context) error {
		_, err := conn.Exec(ctx, fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %s;
CREATE TABLE IF NOT EXISTS %s (
  pipeline text NOT NULL, stream text NOT NULL, checkpoint bytea, committed_at timestamptz NOT NULL,
  PRIMARY KEY (pipeline, stream))`, ident(s.schema), s.qualified(checkpointTable)))
		return err
	})
}

// Checkpoint implements sinks.CheckpointReader.
func (s *Sink) Checkpoint(ctx context.Context, pipeline, stream string) ([]byte, time.Time, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer conn.Close(context.Background())
	var cp []byte
	var at time.Time
	err = conn.QueryRow(ctx, fmt.Sprintf(`SELECT checkpoint, committed_at FROM %s WHERE pipeline = $1 AND stream = $2`, s.qualified(checkpointTable)),
		pipeline, stream).Scan(&cp, &at)
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000"):
		return nil, time.Time{}, nil // no table or schema yet: nothing committed
	case err != nil:
		return nil, time.Time{}, s.red.Err(err)
	}
	return cp, at, nil
}

// Close implements sinks.Sink.
func (s *Sink) Close() error { return nil }

func (s *Sink) Open(ctx context.Context, st sinks.Stream) (sinks.Writer, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	w := &Writer{sink: s, conn: conn, stream: st, table: s.table(st.Name)}
	if err := w.prepare(ctx); err != nil {
		conn.Close(context.Background())
		return nil, s.red.Err(err)
	}
	return w, nil
}

// Writer loads one stream.
type Writer struct {
	sink    *Sink
	conn    *pgx.Conn
	stream  sinks.Stream
	table   string   // target table name
	cols    []string // quoted column names, in schema order
	staging string   // quoted temp table
	seq     int64
	rows    int64  // rows in staging
	shadow  string // overwrite: the quoted table being loaded
}

var _ sinks.Writer = (*Writer)(nil)

func (w *Writer) prepare(ctx context.Context) error {
	s := w.sink
	if err := s.ensureCheckpointTable(ctx, w.conn); err != nil {
		return fmt.Errorf("creating %s: %w", checkpointTable, err)
	}
	target := s.qualified(w.table)
	existing, err := w.columns(ctx, w.table)
	if err != nil {
		return err
	}
	var defs []string
	for _, f := range w.stream.Schema.Fields() {
		w.cols = append(w.cols, ident(f.Name))
		defs = append(defs, ident(f.Name)+" "+pgType(f))
	}
	pk := ""
	if len(w.stream.PrimaryKey) > 0 && w.stream.Mode == sinks.Merge {
		var keys []string
		for _, k := range w.stream.PrimaryKey {
			keys = append(keys, ident(k))
		}
		pk = ", PRIMARY KEY (" + strings.Join(keys, ", ") + ")"
	}
	if existing == nil {
		// IF NOT EXISTS, retried: another pipeline into the same table may
		// create it at the same moment.
		if err := pgconfig.ExecDDL(ctx, func(ctx context.Context) error {
			_, err := w.conn.Exec(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s%s)", target, strings.Join(defs, ", "), pk))
			return err
		}); err != nil {
			return fmt.Errorf("creating table %s: %w", target, err)
		}
	} else {
		// Check every type before changing anything.
		var add []string
		for _, f := range w.stream.Schema.Fields() {
			have, ok := existing[f.Name]
			if !ok {
				add = append(add, "ADD COLUMN "+ident(f.Name)+" "+pgType(f))
				continue
			}
			want := pgType(f)
			if strings.HasPrefix(want, "numeric") && have == "double precision" {
				// Amounts were float64 before they became exact decimals:
				// the column still takes them, rounded to a float.
				s.log.Warn("column holds floats but the stream's amounts are exact decimals; migrate it to keep them exact",
					"table", target, "column", f.Name, "migrate", fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s", target, ident(f.Name), want))
				continue
			}
			if !compatible(have, want) {
				return fmt.Errorf("column %s of table %s is %s, but stream %s now has %s there (%s): migrate the column or load into a new table (table_prefix); nothing was written",
					f.Name, target, have, w.stream.Name, want, f.Type)
			}
		}
		if len(add) > 0 {
			if _, err := w.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s %s", target, strings.Join(add, ", "))); err != nil {
				return fmt.Errorf("adding columns to %s: %w", target, err)
			}
		}
		if pk != "" && !w.hasUniqueKey(ctx, target) {
			var keys []string
			for _, k := range w.stream.PrimaryKey {
				keys = append(keys, ident(k))
			}
			idx := ident(w.table + "_pipehost_key")
			if _, err := w.conn.Exec(ctx, fmt.Sprintf("CREATE UNIQUE INDEX IF NOT EXISTS %s ON %s (%s)", idx, target, strings.Join(keys, ", "))); err != nil {
				return fmt.Errorf("merge needs a unique key on %s (%s): %w", target, strings.Join(w.stream.PrimaryKey, ", "), err)
			}
		}
	}
	w.staging = ident("_pipehost_staging_" + w.table)
	_, err = w.conn.Exec(ctx, fmt.Sprintf("CREATE TEMP TABLE %s (%s, _pipehost_seq bigint)", w.staging, strings.Join(defs, ", ")))
	if err != nil {
		return fmt.Errorf("creating the staging table: %w", err)
	}
	if w.stream.Mode == sinks.Overwrite {
		w.shadow = s.qualified(w.table + "__pipehost_new")
		_, err := w.conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s; CREATE TABLE %s (LIKE %s INCLUDING ALL)", w.shadow, w.shadow, target))
		if err != nil {
			return fmt.Errorf("creating the table that will replace %s: %w", target, err)
		}
	}
	return nil
}

// hasUniqueKey says whether the table already has a primary key or unique
// index on exactly the stream's key columns (a table merge created, or one
// the user keyed), so merge adds no second index.
func (w *Writer) hasUniqueKey(ctx context.Context, target string) bool {
	var n int
	err := w.conn.QueryRow(ctx, `SELECT count(*) FROM pg_index i
WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL AND
  (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
   WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) = (SELECT array_agg(k ORDER BY k) FROM unnest($2::text[]) k)
  AND i.indnkeyatts = cardinality($2::text[])`, target, w.stream.PrimaryKey).Scan(&n)
	return err == nil && n > 0
}

// columns returns a table's columns and their types, or nil when the table
// does not exist.
func (w *Writer) columns(ctx context.Context, table string) (map[string]string, error) {
	rows, err := w.conn.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, w.sink.schema, table)
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
		switch typ {
		case "timestamp with time zone":
			typ = "timestamptz"
		}
		out[name] = typ
	}
	return out, rows.Err()
}

// Write implements sinks.Writer: the rows are COPYed into the staging table.
func (w *Writer) Write(ctx context.Context, rec arrow.Record) error {
	if rec.NumRows() == 0 {
		return nil
	}
	src := &recordSource{rec: rec, row: -1, seq: w.seq, jsonb: make([]bool, rec.NumCols())}
	for c, f := range rec.Schema().Fields() {
		src.jsonb[c] = pgType(f) == "jsonb" // decided once per column, not per value
	}
	names := make([]string, 0, len(w.cols)+1)
	for _, f := range w.stream.Schema.Fields() {
		names = append(names, f.Name)
	}
	names = append(names, "_pipehost_seq")
	n, err := w.conn.CopyFrom(ctx, pgx.Identifier{strings.Trim(w.staging, `"`)}, names, src)
	if err != nil {
		return w.sink.red.Err(fmt.Errorf("COPY into the staging table: %w", err))
	}
	w.seq += n
	w.rows += n
	return nil
}

// Commit implements sinks.Writer: in one transaction, the staged rows move
// into the table (by mode) and the checkpoint is stored; an overwrite's
// final commit swaps the loaded table in.
func (w *Writer) Commit(ctx context.Context, c sinks.Commit) (sinks.CommitInfo, error) {
	s := w.sink
	target := s.qualified(w.table)
	info := sinks.CommitInfo{Rows: w.rows, Location: s.schema + "." + w.table}
	tx, err := w.conn.Begin(ctx)
	if err != nil {
		return info, s.red.Err(err)
	}
	defer tx.Rollback(context.Background())
	cols := strings.Join(w.cols, ", ")
	if w.rows > 0 {
		var q string
		switch w.stream.Mode {
		case sinks.Merge:
			var keys, sets []string
			for _, k := range w.stream.PrimaryKey {
				keys = append(keys, ident(k))
			}
			for _, col := range w.cols {
				sets = append(sets, col+" = EXCLUDED."+col)
			}
			q = fmt.Sprintf(`INSERT INTO %s (%s) SELECT DISTINCT ON (%s) %s FROM %s ORDER BY %s, _pipehost_seq DESC
ON CONFLICT (%s) DO UPDATE SET %s`, target, cols, strings.Join(keys, ", "), cols, w.staging, strings.Join(keys, ", "),
				strings.Join(keys, ", "), strings.Join(sets, ", "))
		case sinks.Overwrite:
			q = fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s ORDER BY _pipehost_seq", w.shadow, cols, cols, w.staging)
		default:
			q = fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s ORDER BY _pipehost_seq", target, cols, cols, w.staging)
		}
		if _, err := tx.Exec(ctx, q); err != nil {
			return info, s.red.Err(fmt.Errorf("moving rows into %s: %w", target, err))
		}
		if _, err := tx.Exec(ctx, "TRUNCATE "+w.staging); err != nil {
			return info, err
		}
	}
	if w.stream.Mode == sinks.Overwrite && c.Final {
		old := ident(w.table + "__pipehost_old")
		_, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s RENAME TO %s; ALTER TABLE %s RENAME TO %s; DROP TABLE %s",
			target, old, w.shadow, ident(w.table), s.qualified(w.table+"__pipehost_old")))
		if err != nil {
			return info, fmt.Errorf("swapping in the new %s: %w", target, err)
		}
		w.shadow = ""
	}
	if c.Checkpoint != nil {
		_, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (pipeline, stream, checkpoint, committed_at) VALUES ($1, $2, $3, now())
ON CONFLICT (pipeline, stream) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, committed_at = EXCLUDED.committed_at`, s.qualified(checkpointTable)),
			w.stream.Pipeline, w.stream.Name, c.Checkpoint)
		if err != nil {
			return info, fmt.Errorf("storing the checkpoint: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return info, s.red.Err(fmt.Errorf("committing: %w", err))
	}
	w.rows = 0
	return info, nil
}

// Abort implements sinks.Writer: staged rows are dropped with the session;
// an overwrite's half-loaded table is removed.
func (w *Writer) Abort() error {
	if w.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if w.shadow != "" {
		w.conn.Exec(ctx, "DROP TABLE IF EXISTS "+w.shadow)
		w.shadow = ""
	}
	err := w.conn.Close(ctx)
	w.conn = nil
	return err
}

package state

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"pipehost/internal/pgconfig"
)

// Postgres is a Store in a PostgreSQL table, for hosts that share work (a
// CronJob per pipeline, say): every host sees the same checkpoints, and a
// session-level advisory lock per pipeline keeps two runs of one pipeline
// apart across machines. PostgreSQL drops the lock when the session ends,
// so a killed run never leaves a stale lock.
type Postgres struct {
	id    string
	pool  *pgxpool.Pool
	table string
	turns string
	red   pgconfig.Redactor
}

var (
	_ Store       = (*Postgres)(nil)
	_ TurnClaimer = (*Postgres)(nil)
)

// OpenPostgres connects to the database of dsn and creates the state table
// (schema.pipehost_state) when missing. Errors never show the DSN's password.
func OpenPostgres(ctx context.Context, dsn, schema string) (*Postgres, error) {
	p := &Postgres{red: pgconfig.NewRedactor(dsn), table: pgx.Identifier{schema, "pipehost_state"}.Sanitize(),
		turns: pgx.Identifier{schema, "pipehost_turns"}.Sanitize()}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, p.redact(fmt.Errorf("state dsn: %w", err))
	}
	// The store's statements are small: a minute is generous; a lock wait
	// never hangs a run.
	pgconfig.ApplyTimeouts(cfg.ConnConfig, time.Minute)
	cfg.MaxConns = 4
	if p.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, p.redact(err)
	}
	err = pgconfig.ExecDDL(ctx, func(ctx context.Context) error {
		_, err := p.pool.Exec(ctx, fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %s;
CREATE TABLE IF NOT EXISTS %s (
  pipeline text NOT NULL, stream text NOT NULL, checkpoint bytea, updated_at timestamptz,
  last_run jsonb, reset_at timestamptz, PRIMARY KEY (pipeline, stream));
ALTER TABLE %[2]s ADD COLUMN IF NOT EXISTS binding jsonb, ADD COLUMN IF NOT EXISTS data_digest text, ADD COLUMN IF NOT EXISTS runs jsonb;
CREATE TABLE IF NOT EXISTS %[3]s (one boolean PRIMARY KEY DEFAULT true CHECK (one), id text NOT NULL);
INSERT INTO %[3]s (id) VALUES ('%[4]s') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS %[5]s (pipeline text NOT NULL, turn timestamptz NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (pipeline, turn))`, pgx.Identifier{schema}.Sanitize(), p.table,
			pgx.Identifier{schema, "pipehost_store"}.Sanitize(), newID(), p.turns))
		return err
	})
	if err == nil {
		err = p.pool.QueryRow(ctx, fmt.Sprintf("SELECT id FROM %s", pgx.Identifier{schema, "pipehost_store"}.Sanitize())).Scan(&p.id)
	}
	if err != nil {
		p.pool.Close()
		return nil, p.redact(fmt.Errorf("creating the state table: %w", err))
	}
	return p, nil
}

// ID implements Store: the id kept in the schema's pipehost_store table,
// the same for every host sharing the store.
func (p *Postgres) ID() string { return p.id }

func (p *Postgres) redact(err error) error { return p.red.Err(err) }

// Close releases the connections.
func (p *Postgres) Close() { p.pool.Close() }

func (p *Postgres) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// Get implements Store.
func (p *Postgres) Get(pipeline, stream string) (Entry, error) {
	ctx, cancel := p.ctx()
	defer cancel()
	e := Entry{Pipeline: pipeline, Stream: stream}
	var cp []byte
	var updated, reset, allReset *time.Time
	var last, binding, runs []byte
	var digest *string
	err := p.pool.QueryRow(ctx, fmt.Sprintf(`SELECT s.checkpoint, s.updated_at, s.last_run, s.reset_at, s.binding, s.data_digest, s.runs,
  (SELECT reset_at FROM %[1]s WHERE pipeline = $1 AND stream = '*')
FROM (SELECT 1) one LEFT JOIN %[1]s s ON s.pipeline = $1 AND s.stream = $2`, p.table), pipeline, stream).Scan(&cp, &updated, &last, &reset, &binding, &digest, &runs, &allReset)
	if err != nil {
		return e, p.redact(err)
	}
	if runs != nil {
		json.Unmarshal(runs, &e.Runs)
	}
	if binding != nil {
		var b Binding
		if json.Unmarshal(binding, &b) == nil {
			e.Binding = &b
		}
	}
	if digest != nil {
		e.DataDigest = *digest
	}
	if cp != nil {
		e.Checkpoint = encodeCheckpoint(cp)
	}
	if updated != nil {
		e.UpdatedAt = *updated
	}
	if reset != nil {
		e.ResetAt = *reset
	}
	if allReset != nil && allReset.After(e.ResetAt) {
		e.ResetAt = *allReset
	}
	if last != nil {
		var r Run
		if json.Unmarshal(last, &r) == nil {
			e.LastRun = &r
		}
	}
	return e, nil
}

// Commit implements Store.
func (p *Postgres) Commit(pipeline, stream string, cp []byte, meta CommitMeta) error {
	ctx, cancel := p.ctx()
	defer cancel()
	var binding []byte
	if meta.Binding != nil {
		binding, _ = json.Marshal(meta.Binding)
	}
	var digest *string
	if meta.Rows {
		d := Digest(cp)
		digest = &d
	}
	_, err := p.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (pipeline, stream, checkpoint, updated_at, binding, data_digest) VALUES ($1, $2, $3, now(), $4, $5)
ON CONFLICT (pipeline, stream) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, updated_at = EXCLUDED.updated_at,
  binding = coalesce(EXCLUDED.binding, %[1]s.binding), data_digest = coalesce(EXCLUDED.data_digest, %[1]s.data_digest)`, p.table),
		pipeline, stream, cp, binding, digest)
	return p.redact(err)
}

// RecordRun implements Store.
func (p *Postgres) RecordRun(pipeline, stream string, run Run) error {
	ctx, cancel := p.ctx()
	defer cancel()
	b, err := json.Marshal(run)
	if err != nil {
		return err
	}
	// runs keeps the last HistoryRuns, newest first.
	_, err = p.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s (pipeline, stream, last_run, runs) VALUES ($1, $2, $3, jsonb_build_array($3::jsonb))
ON CONFLICT (pipeline, stream) DO UPDATE SET last_run = EXCLUDED.last_run,
  runs = (SELECT jsonb_agg(r ORDER BY n) FROM jsonb_array_elements(jsonb_build_array($3::jsonb) || coalesce(%[1]s.runs, '[]'::jsonb)) WITH ORDINALITY AS t(r, n) WHERE n <= %[2]d)`,
		p.table, HistoryRuns), pipeline, stream, b)
	return p.redact(err)
}

// Put implements Store.
func (p *Postgres) Put(e Entry) error {
	ctx, cancel := p.ctx()
	defer cancel()
	var binding, last, runs []byte
	if e.Binding != nil {
		binding, _ = json.Marshal(e.Binding)
	}
	if e.LastRun == nil && len(e.Runs) > 0 {
		e.LastRun = &e.Runs[0]
	}
	if e.LastRun != nil {
		last, _ = json.Marshal(e.LastRun)
	}
	if e.Runs != nil {
		runs, _ = json.Marshal(e.Runs)
	}
	nullTime := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	var digest *string
	if e.DataDigest != "" {
		digest = &e.DataDigest
	}
	_, err := p.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (pipeline, stream, checkpoint, updated_at, last_run, reset_at, binding, data_digest, runs)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (pipeline, stream) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, updated_at = EXCLUDED.updated_at, last_run = EXCLUDED.last_run,
  reset_at = EXCLUDED.reset_at, binding = EXCLUDED.binding, data_digest = EXCLUDED.data_digest, runs = EXCLUDED.runs`, p.table),
		e.Pipeline, e.Stream, e.Bytes(), nullTime(e.UpdatedAt), last, nullTime(e.ResetAt), binding, digest, runs)
	return p.redact(err)
}

// List implements Store.
func (p *Postgres) List(pipeline string) ([]Entry, error) {
	ctx, cancel := p.ctx()
	defer cancel()
	rows, err := p.pool.Query(ctx, fmt.Sprintf(`SELECT pipeline, stream FROM %s
WHERE ($1 = '' OR pipeline = $1) AND stream <> '*' AND (checkpoint IS NOT NULL OR last_run IS NOT NULL)
ORDER BY pipeline, stream`, p.table), pipeline)
	if err != nil {
		return nil, p.redact(err)
	}
	var keys [][2]string
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			rows.Close()
			return nil, err
		}
		keys = append(keys, k)
	}
	rows.Close()
	var out []Entry
	for _, k := range keys {
		e, err := p.Get(k[0], k[1])
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Reset implements Store: the stream's row (or every row of the pipeline)
// becomes a tombstone carrying reset_at.
func (p *Postgres) Reset(pipeline, stream string) error {
	ctx, cancel := p.ctx()
	defer cancel()
	if stream != "" {
		tag, err := p.pool.Exec(ctx, fmt.Sprintf(`UPDATE %s SET checkpoint = NULL, updated_at = NULL, last_run = NULL, binding = NULL, data_digest = NULL, reset_at = now()
WHERE pipeline = $1 AND stream = $2`, p.table), pipeline, stream)
		if err != nil {
			return p.redact(err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("pipeline %s has no state for stream %s", pipeline, stream)
		}
		return nil
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return p.redact(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET checkpoint = NULL, updated_at = NULL, last_run = NULL, binding = NULL, data_digest = NULL, reset_at = now() WHERE pipeline = $1`, p.table), pipeline); err != nil {
		return p.redact(err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (pipeline, stream, reset_at) VALUES ($1, '*', now()) ON CONFLICT (pipeline, stream) DO UPDATE SET reset_at = now()`, p.table), pipeline); err != nil {
		return p.redact(err)
	}
	return p.redact(tx.Commit(ctx))
}

// Lock implements Store with pg_try_advisory_lock on a connection held until
// the lock is released.
func (p *Postgres) Lock(pipeline string) (func(), error) {
	ctx, cancel := p.ctx()
	defer cancel()
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, p.redact(err)
	}
	var ok bool
	key := "pipehost:" + pipeline
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, p.redact(err)
	}
	if !ok {
		conn.Release()
		return nil, fmt.Errorf("pipeline %s is already running on another host or process (PostgreSQL advisory lock %q is held): %w", pipeline, key, ErrLocked)
	}
	return func() {
		ctx, cancel := p.ctx()
		defer cancel()
		conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key)
		conn.Release()
	}, nil
}

// ClaimTurn implements TurnClaimer with a row per turn in the schema's
// pipehost_turns table: the insert that creates it wins, the others find
// it there. Rows of turns over a day old are deleted as claims go.
func (p *Postgres) ClaimTurn(pipeline string, turn time.Time) (bool, error) {
	ctx, cancel := p.ctx()
	defer cancel()
	tag, err := p.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (pipeline, turn) VALUES ($1, $2) ON CONFLICT DO NOTHING`, p.turns), pipeline, turn.UTC())
	if err != nil {
		return false, p.redact(err)
	}
	if tag.RowsAffected() == 1 {
		if _, err := p.pool.Exec(ctx, fmt.Sprintf(`DELETE FROM %s WHERE pipeline = $1 AND turn < $2`, p.turns), pipeline, turn.UTC().Add(-turnsKept)); err != nil {
			return true, p.redact(err)
		}
		return true, nil
	}
	return false, nil
}

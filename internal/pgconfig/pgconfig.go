// Package pgconfig holds what every part of the host that talks to PostgreSQL
// shares (the sink and the state store): keeping the DSN and its password
// out of error texts, and the timeouts every connection gets.
package pgconfig

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Redactor removes a DSN and its password from error texts: pgx names the
// host and database in its errors, and a DSN that fails to parse can be
// echoed whole. The PostgreSQL state store uses it too.
type Redactor struct {
	dsn, password string
}

// NewRedactor returns the Redactor of a DSN; a DSN that does not parse is
// still removed whole.
func NewRedactor(dsn string) Redactor {
	r := Redactor{dsn: dsn}
	if pc, err := pgx.ParseConfig(dsn); err == nil {
		r.password = pc.Password
	}
	return r
}

// Err returns err with the DSN and the password replaced; nil stays nil.
func (r Redactor) Err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if r.dsn != "" {
		msg = strings.ReplaceAll(msg, r.dsn, "(dsn)")
	}
	if r.password != "" {
		msg = strings.ReplaceAll(msg, r.password, "xxxxx")
		msg = strings.ReplaceAll(msg, url.QueryEscape(r.password), "xxxxx")
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// DefaultConnectTimeout bounds connecting to PostgreSQL when the DSN sets
// no connect_timeout: a server that does not answer fails the run instead
// of hanging it.
const DefaultConnectTimeout = 10 * time.Second

// DefaultStatementTimeout bounds every statement of the sink unless the
// sink's statement_timeout_seconds (or the DSN's statement_timeout) says
// otherwise: long enough for a merge of millions of rows, short of hanging
// forever on a lock another session holds.
const DefaultStatementTimeout = time.Hour

// ApplyTimeouts sets the default connect timeout when the DSN has none, and
// statement_timeout for the session unless the DSN sets it; 0 leaves
// statements unbounded. The PostgreSQL state store uses it too.
func ApplyTimeouts(cfg *pgx.ConnConfig, statement time.Duration) {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if _, set := cfg.RuntimeParams["statement_timeout"]; !set && statement > 0 {
		cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(statement.Milliseconds(), 10)
	}
}

// ExecDDL runs idempotent DDL (CREATE ... IF NOT EXISTS) and retries it
// when two sessions create the same object at once: PostgreSQL's IF NOT
// EXISTS checks, then creates, and the slower of two sessions fails with a
// unique violation on the catalog (pg_namespace_nspname_index, pg_type)
// although the object now exists. A retry finds it and does nothing.
func ExecDDL(ctx context.Context, exec func(ctx context.Context) error) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = exec(ctx); err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "23505" && pgErr.Code != "42P07" && pgErr.Code != "42P06") {
			return err
		}
	}
	return err
}

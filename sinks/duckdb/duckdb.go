//go:build cgo

package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/duckdb/duckdb-go/v2"

	"pipehost/sinks"
)

// database is one DuckDB file opened by this process. Every claim, writer
// and checkpoint read of the file in the process shares it (DuckDB lets one
// process hold a file for writing; a second open in the same process would
// be refused as if another process held it). It is closed when its last
// user lets go, so the file is free between runs.
type database struct {
	path string
	db   *sql.DB
	refs int
	// commit serialises the statements that change the catalog or move
	// rows in (DDL, commits): DuckDB's optimistic concurrency would fail
	// one of two such transactions touching the same table instead of
	// waiting for it.
	commit sync.Mutex
}

var (
	openMu sync.Mutex
	opened = map[string]*database{}
)

// heldBy pulls the holder out of DuckDB's lock error: "Conflicting lock is
// held in /usr/bin/duckdb (PID 123) by user x".
var heldBy = regexp.MustCompile(`Conflicting lock is held in (.*?) \(PID (\d+)\)(?: by user ([^.\s]+))?`)

// acquire opens path (or shares this process's open handle of it) with
// limits. When another process holds the file, the error wraps
// sinks.ErrClaimed (the file is the claim: the engine's exit 3) and names
// that process.
func acquire(ctx context.Context, path string, limits limits) (*database, error) {
	openMu.Lock()
	defer openMu.Unlock()
	if d := opened[path]; d != nil {
		d.refs++
		return d, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("making the DuckDB file's folder: %w", err)
	}
	settings := []string{
		fmt.Sprintf("SET memory_limit = '%dMiB'", limits.memoryMiB),
		fmt.Sprintf("SET threads = %d", limits.threads),
	}
	// Each new connection of the pool runs this, later too: not under the
	// ctx of the call that opened the file, which may be over by then.
	c, err := duckdb.NewConnector(path, func(ex driver.ExecerContext) error {
		for _, q := range settings {
			if _, err := ex.ExecContext(context.Background(), q, nil); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, describeOpenError(path, err)
	}
	db := sql.OpenDB(c)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, describeOpenError(path, err)
	}
	d := &database{path: path, db: db, refs: 1}
	opened[path] = d
	return d, nil
}

// limits bound what DuckDB itself takes of the host: its buffer memory
// and its threads. They are the file's first opener's in the process.
type limits struct {
	memoryMiB, threads int
}

func describeOpenError(path string, err error) error {
	if m := heldBy.FindStringSubmatch(err.Error()); m != nil {
		who := fmt.Sprintf("%s (PID %s", m[1], m[2])
		if m[3] != "" {
			who += ", user " + m[3]
		}
		return fmt.Errorf("%w: %s is held by %s): DuckDB lets one process write a file at a time; "+
			"close that process's connection (a DuckDB shell, a notebook, another run) and run again", sinks.ErrClaimed, path, who)
	}
	return fmt.Errorf("opening the DuckDB file %s: %w", path, err)
}

// release lets go of d; the last user closes the file.
func (d *database) release() {
	openMu.Lock()
	defer openMu.Unlock()
	d.refs--
	if d.refs == 0 {
		delete(opened, d.path)
		d.db.Close()
	}
}

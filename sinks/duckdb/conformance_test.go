//go:build cgo

package duckdb

import (
	"context"
	"path/filepath"
	"sort"
	"testing"

	"pipehost/sinks"
	"pipehost/sinks/sinkstest"
)

func TestConformance(t *testing.T) {
	sinkstest.Run(t, sinkstest.Harness{Modes: Driver{}.Modes(), Open: func(t *testing.T) (sinks.Sink, func(string) []string) {
		s, err := Open(&Config{Path: filepath.Join(t.TempDir(), "w.duckdb")}, sinks.Env{})
		if err != nil {
			t.Fatal(err)
		}
		return s, func(stream string) []string {
			var ids []string
			query(t, s, "SELECT _id FROM "+s.qualified(s.table(stream)), func(scan func(...any) error) {
				var id string
				if err := scan(&id); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			})
			sort.Strings(ids)
			return ids
		}
	}})
}

// query runs q on the sink's file through this process's handle, calling
// each for every row; a missing table is no rows.
func query(t *testing.T, s *Sink, q string, each func(scan func(...any) error), args ...any) {
	t.Helper()
	d, err := acquire(context.Background(), s.path, s.limits)
	if err != nil {
		t.Fatal(err)
	}
	defer d.release()
	rows, err := d.db.Query(q, args...)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		each(rows.Scan)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

package postgres

import (
	"context"
	"sort"
	"testing"

	"pipehost/sinks"
	"pipehost/sinks/sinkstest"
)

func TestConformance(t *testing.T) {
	sinkstest.Run(t, sinkstest.Harness{Modes: Driver{}.Modes(), Open: func(t *testing.T) (sinks.Sink, func(string) []string) {
		s, conn := freshSchema(t)
		t.Cleanup(func() { s.Close() })
		return s, func(stream string) []string {
			rows, err := conn.Query(context.Background(), "SELECT _id FROM "+s.qualified(s.table(stream)))
			if err != nil {
				return nil // no table yet: nothing committed
			}
			defer rows.Close()
			var ids []string
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			sort.Strings(ids)
			return ids
		}
	}})
}

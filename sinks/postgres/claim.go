package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"pipehost/sinks"
	"time"
)

// Open implements sinks.Sink: it connects, creates or evolves the table and
// prepares the staging table.
// Claim implements sinks.Claimer with a session advisory lock on the
// stream's table and the pipeline, held by a connection of its own for the
// run (PostgreSQL drops it if the host dies). The holding session names
// the holder in its application_name, which a refused claim reports.
func (s *Sink) Claim(ctx context.Context, pipeline, stream, _, holder string) (func(), error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "pipehost-claim\x00%s\x00%s\x00%s", s.schema, s.table(stream), pipeline)
	key := int64(h.Sum64())
	name := "pipehost claim: " + holder
	if len(name) > 63 {
		name = name[:63]
	}
	conn.Exec(ctx, "SELECT set_config('application_name', $1, false)", name)
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil {
		conn.Close(context.Background())
		return nil, s.red.Err(fmt.Errorf("claiming %s: %w", s.Location(stream), err))
	}
	if !got {
		var who string
		conn.QueryRow(ctx, `SELECT coalesce(a.application_name, '') || ' (backend pid ' || a.pid || ', since ' || to_char(a.backend_start, 'YYYY-MM-DD"T"HH24:MI:SSOF') || ')'
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = $1 LIMIT 1`, key).Scan(&who)
		conn.Close(context.Background())
		if who == "" {
			who = "another session"
		}
		return nil, fmt.Errorf("%w: %s is held by %s", sinks.ErrClaimed, s.Location(stream), who)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", key)
		conn.Close(ctx)
	}, nil
}

package nuorder

import (
	"encoding/json"
	"fmt"
	"time"
)

// checkpoint is the NuOrder connector's checkpoint, as JSON:
//
//	{"cursor":"2026-11-29T10:00:00.000Z"}                         run complete
//	{"cursor":"...","until":"2026-11-29T11:00:00.000Z","part":2}  run interrupted
//
// Cursor is the exclusive lower bound of the next read (absent: read from
// the beginning). Until and Part describe a run that committed its first
// Part listings (one listing per order status, say) and then stopped: the
// next read finishes that run with the same bounds before starting anew.
//
// NuOrder's listings cannot be filtered or sorted by modification time, so
// the connector reads whole listings and keeps the documents whose cursor
// value lies in (cursor, until]. It emits a checkpoint only at the end of a
// listing: positions inside a listing are not stable enough to resume from.
//
// The orders streams add the status listings' membership (see eachOrder):
// Listed holds, per status, the ids the last complete run found in that
// status's listing; Seen, in an interrupted run, the ids found in the
// listings it had finished. Both are encoded idSets.
type checkpoint struct {
	Cursor string            `json:"cursor,omitempty"`
	Until  string            `json:"until,omitempty"`
	Part   int               `json:"part,omitempty"`
	Listed map[string]string `json:"listed,omitempty"`
	Seen   map[string]string `json:"seen,omitempty"`
	// Config is, for locations, a digest of the warehouses the config
	// names: when it changes, they are emitted again.
	Config string `json:"config,omitempty"`
	// Known is, for products, what the stream knows of the catalog (an
	// encoded catalog: each product's last read and document digest), and
	// Ran when the run that stored it started (see catalog.go).
	Known string `json:"known,omitempty"`
	Ran   string `json:"ran,omitempty"`
	// Laps and Slice are, for the orders streams read by ids, the rolling
	// re-read's history and where the next run's arc starts (see
	// orders_ids.go); Ran is when that run started.
	Laps  []lap   `json:"laps,omitempty"`
	Slice float64 `json:"slice,omitempty"`
	// AvgDoc is the average size in bytes of the documents the last run
	// read (products, orders), for plan's estimate of the next run.
	AvgDoc int64 `json:"avg_doc,omitempty"`
}

const tsLayout = "2006-01-02T15:04:05.000Z07:00"

// window is the cursor range of one read.
type window struct {
	since     time.Time // exclusive; zero with full
	full      bool      // no lower bound: first read or full refresh
	until     time.Time // inclusive, fixed when the run starts
	startPart int       // listings already committed by an interrupted run
}

// openWindow fixes the bounds of a read from the committed checkpoint: an
// interrupted run is finished with its own bounds; otherwise the upper bound
// is now minus lag, which absorbs clock skew between NuOrder and this host
// and documents changed while a listing was being produced.
func openWindow(raw []byte, now time.Time, lag time.Duration) (window, error) {
	w := window{full: true, until: now.Add(-lag).UTC().Truncate(time.Millisecond)}
	if len(raw) == 0 {
		return w, nil
	}
	var cp checkpoint
	if err := json.Unmarshal(raw, &cp); err != nil {
		return w, fmt.Errorf("unreadable checkpoint %q: %w (reset the stream's state)", raw, err)
	}
	if cp.Cursor != "" {
		t, err := time.Parse(time.RFC3339Nano, cp.Cursor)
		if err != nil {
			return w, fmt.Errorf("checkpoint cursor %q: %w", cp.Cursor, err)
		}
		w.since, w.full = t.UTC(), false
	}
	if cp.Until != "" {
		t, err := time.Parse(time.RFC3339Nano, cp.Until)
		if err != nil {
			return w, fmt.Errorf("checkpoint until %q: %w", cp.Until, err)
		}
		w.until, w.startPart = t.UTC(), cp.Part
	}
	if !w.full && w.until.Before(w.since) {
		w.until = w.since // a clock that went back: read nothing new, lose nothing
	}
	return w, nil
}

// contains says whether a document with this cursor value belongs to the
// read. A document without a readable cursor value is read only by a full
// read: there is no telling whether it changed.
func (w window) contains(t time.Time, ok bool) bool {
	if !ok {
		return w.full
	}
	if t.After(w.until) {
		return false
	}
	return w.full || t.After(w.since)
}

// afterPart is the checkpoint once listing part (0-based) is committed.
func (w window) afterPart(part int) []byte {
	cp := checkpoint{Until: w.until.Format(tsLayout), Part: part + 1}
	if !w.full {
		cp.Cursor = w.since.Format(tsLayout)
	}
	b, _ := json.Marshal(cp)
	return b
}

// final is the checkpoint once the whole read is committed.
func (w window) final() []byte {
	b, _ := json.Marshal(checkpoint{Cursor: w.until.Format(tsLayout)})
	return b
}

// cursorOf reads a document's cursor: modified_on, else created_on.
func cursorOf(modified, created flexString) (time.Time, bool) {
	if t, ok := parseTime(modified.v); modified.ok && ok {
		return t, true
	}
	if t, ok := parseTime(created.v); created.ok && ok {
		return t, true
	}
	return time.Time{}, false
}

// Package state keeps what the host remembers between runs: per pipeline and
// stream, the last checkpoint whose rows the sink has committed, and the
// outcome of the last run. Connectors never store state themselves; the
// engine hands them the checkpoint it committed.
//
// The default store is a folder of JSON files, one per pipeline, each
// replaced atomically (written aside, synced, renamed), so a crash leaves
// the old state or the new one, never a mix. A file lock per pipeline keeps
// two runs of one pipeline apart.
package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Run is the outcome of one run of a stream.
type Run struct {
	StartedAt   time.Time `json:"started_at"`
	FinishedAt  time.Time `json:"finished_at"`
	Status      string    `json:"status"` // "ok" or "failed"
	Rows        int64     `json:"rows"`   // rows the sink committed in this run
	FullRefresh bool      `json:"full_refresh,omitempty"`
	Error       string    `json:"error,omitempty"`
}

// HistoryRuns is how many runs a stream's history keeps: a day of hourly
// runs and then some, in a few kilobytes.
const HistoryRuns = 30

// Entry is the state of one stream of one pipeline.
type Entry struct {
	Pipeline string `json:"-"`
	Stream   string `json:"-"`
	// Checkpoint is the last committed checkpoint: the connector's bytes as
	// JSON when they are JSON (readable in the file), else a JSON string
	// holding them in base64.
	Checkpoint json.RawMessage `json:"checkpoint,omitempty"`
	UpdatedAt  time.Time       `json:"updated_at,omitempty"`
	LastRun    *Run            `json:"last_run,omitempty"`
	// Runs are the last HistoryRuns runs, newest first (LastRun is the
	// first of them). A reset keeps them: they are what happened.
	Runs []Run `json:"runs,omitempty"`
	// ResetAt is when `state reset` last forgot this stream: checkpoints a
	// sink committed before then are ignored too.
	ResetAt time.Time `json:"reset_at,omitempty"`
	// Binding is the source and destination the checkpoint describes (nil
	// in state written before bindings existed).
	Binding *Binding `json:"binding,omitempty"`
	// DataDigest identifies the last checkpoint committed together with
	// rows: the sink must still hold it, else its data is gone.
	DataDigest string `json:"data_digest,omitempty"`
}

// Binding ties a checkpoint to the data it describes: what was read and
// where the rows went. Neither holds a secret.
type Binding struct {
	// Source names the connector and a fingerprint of its account ("nuorder
	// (account 3fa2c1d94e0b)", or "... (sandbox)").
	Source string `json:"source"`
	// Destination names the sink and the place (a folder, a table).
	Destination string `json:"destination"`
}

// String says both halves, for messages.
func (b *Binding) String() string {
	if b == nil {
		return "(unknown source and destination)"
	}
	return "reading " + b.Source + " into " + b.Destination
}

// CommitMeta is what a checkpoint commit says besides the checkpoint.
type CommitMeta struct {
	// Binding, when not nil, replaces the entry's binding.
	Binding *Binding
	// Rows is set when the sink committed rows with this checkpoint.
	Rows bool
}

// Digest identifies a checkpoint without holding it; a JSON checkpoint is
// compacted first, so a copy that went through a JSON document (a sink's
// envelope, the state file) has the same digest.
func Digest(cp []byte) string {
	if cp == nil {
		return ""
	}
	var buf bytes.Buffer
	if json.Compact(&buf, cp) == nil {
		cp = buf.Bytes()
	}
	sum := sha256.Sum256(cp)
	return hex.EncodeToString(sum[:12])
}

// apply records a commit in e.
func (e *Entry) apply(cp []byte, meta CommitMeta) {
	e.Checkpoint = encodeCheckpoint(cp)
	e.UpdatedAt = time.Now().UTC()
	if meta.Binding != nil {
		e.Binding = meta.Binding
	}
	if meta.Rows {
		e.DataDigest = Digest(cp)
	}
}

// Bytes returns the checkpoint as the connector made it (nil: none).
func (e *Entry) Bytes() []byte {
	if len(e.Checkpoint) == 0 {
		return nil
	}
	if raw, ok := base64Wrapped(e.Checkpoint); ok {
		return raw
	}
	// The state file is indented for people; connectors get compact JSON
	// (the same value: a JSON checkpoint may come back compacted).
	var buf bytes.Buffer
	if json.Compact(&buf, e.Checkpoint) == nil {
		return buf.Bytes()
	}
	return []byte(e.Checkpoint)
}

// base64Wrapped decodes {"base64": "..."}: an object with that one key.
func base64Wrapped(b []byte) ([]byte, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil || len(m) != 1 || m["base64"] == nil {
		return nil, false
	}
	var raw []byte
	if json.Unmarshal(m["base64"], &raw) != nil {
		return nil, false
	}
	return raw, true
}

// encodeCheckpoint stores JSON checkpoints as they are (readable in the
// file) and anything else, or JSON that looks like the wrapper, wrapped.
func encodeCheckpoint(cp []byte) json.RawMessage {
	if _, looksWrapped := base64Wrapped(cp); json.Valid(cp) && !looksWrapped {
		return append(json.RawMessage(nil), cp...)
	}
	b, _ := json.Marshal(struct {
		Base64 []byte `json:"base64"`
	}{cp})
	return b
}

// ErrLocked is returned (wrapped) by Lock when another run holds the
// pipeline's lock.
var ErrLocked = errors.New("another run holds the lock")

// Store is where state lives. Implementations are safe for use by one run
// of each pipeline at a time; Lock enforces that across processes.
type Store interface {
	// Get returns a stream's entry; a stream never run has a zero Entry.
	Get(pipeline, stream string) (Entry, error)
	// Commit durably records cp as the stream's checkpoint, with what meta
	// says. Call it only after the sink has committed every row before cp.
	Commit(pipeline, stream string, cp []byte, meta CommitMeta) error
	// ID identifies the store: the host stores it with the checkpoints it
	// commits into a sink, to tell this store's checkpoints from another's.
	ID() string
	// Close releases the store's connections; whoever opened it closes it.
	Close()
	// RecordRun records the outcome of a run; the checkpoint is unchanged.
	RecordRun(pipeline, stream string, run Run) error
	// List returns the entries of one pipeline, or of all when pipeline is "".
	List(pipeline string) ([]Entry, error)
	// Reset forgets a pipeline's state: one stream, or all when stream is "".
	Reset(pipeline, stream string) error
	// Lock takes the pipeline's run lock, or fails at once naming the
	// holder when another run has it. The returned func releases it.
	Lock(pipeline string) (func(), error)
	// Put replaces a stream's entry whole (checkpoint, binding, digest,
	// runs, reset time), as `state import` moves it from another store.
	// Call it with the pipeline's lock held.
	Put(e Entry) error
}

var _ Store = (*Local)(nil)

// TurnClaimer is a Store shared by several `serve` processes (replicas)
// that hands each scheduled turn of a pipeline to one of them. The
// pipeline's lock keeps two runs from overlapping; a claim also keeps a
// replica whose clock fires after another's run has finished from running
// the same turn again. A local store does not implement it: its folder is
// one host's.
type TurnClaimer interface {
	// ClaimTurn reports whether the caller got the pipeline's turn
	// scheduled at turn: true for the first caller, false for every later
	// one. It errors only when the store cannot be asked; the caller then
	// runs the turn (the lock still refuses an overlap).
	ClaimTurn(pipeline string, turn time.Time) (bool, error)
}

// turnsKept is how long a claimed turn is remembered: far longer than any
// two replicas' clocks disagree, short enough to keep the table small.
const turnsKept = 24 * time.Hour

// Describe renders a checkpoint for people (`state show`, `plan`): a JSON
// checkpoint with its long string values cut to their first characters and
// their length (a connector may keep large encoded sets in one), anything
// else cut at 200 bytes. The stored checkpoint is not changed.
func Describe(cp []byte) string {
	const long = 48
	var v any
	if json.Unmarshal(cp, &v) != nil {
		text := string(cp)
		if len(text) > 200 {
			text = fmt.Sprintf("%s… (%d bytes)", text[:200], len(cp))
		}
		if strings.ContainsAny(text, "\n\r\t") || !utf8.ValidString(text) {
			text = strconv.Quote(text) // one line, whatever the bytes
		}
		return text
	}
	var cut func(any) any
	cut = func(v any) any {
		switch x := v.(type) {
		case string:
			if len(x) > long {
				return fmt.Sprintf("%s… (%d bytes)", x[:24], len(x))
			}
		case map[string]any:
			for k, e := range x {
				x[k] = cut(e)
			}
		case []any:
			for i, e := range x {
				x[i] = cut(e)
			}
		}
		return v
	}
	b, _ := json.Marshal(cut(v))
	return string(b)
}

// Summary describes a checkpoint in one short line for people: the short
// scalar members of a JSON object as name=value, and each longer or nested
// member by its size only (the orders stream's encoded id sets), in the
// object's member order sorted by name. Other checkpoints are Describe'd.
func Summary(cp []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(cp, &m) != nil || len(m) == 0 {
		return Describe(cp)
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		v := m[k]
		var scalar any
		if json.Unmarshal(v, &scalar) == nil {
			switch x := scalar.(type) {
			case string:
				if len(x) <= 40 && utf8.ValidString(x) && !strings.ContainsAny(x, "\n\r\t") {
					parts = append(parts, k+"="+x)
					continue
				}
			case float64, bool, nil:
				parts = append(parts, k+"="+string(v))
				continue
			}
		}
		parts = append(parts, fmt.Sprintf("%s=(%d bytes)", k, len(v)))
	}
	return strings.Join(parts, " ")
}

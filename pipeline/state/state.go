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
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"pipehost/internal/filelock"
	"sort"
	"strconv"
	"strings"
	"sync"
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

// Local is the default Store: a folder of JSON files.
type Local struct {
	dir string

	mu   sync.Mutex // guards id and made: pipelines may run at once
	id   string
	made bool // the folder and its store-id exist

	// shared, when set, is the folder the pipelines' state was in before
	// dir existed (one folder shared by every pipeline file of a folder):
	// until the first write it is read in dir's place, and the first write
	// copies the state files of adopt into dir.
	shared string
	adopt  []string
}

var _ Store = (*Local)(nil)

// OpenLocal returns the store kept in dir. Nothing is created until the
// first write (a commit, a run's record, a lock, a reset): reading state,
// as plan and state show do, leaves no trace on disk. The store's random id
// is kept in the file store-id.
func OpenLocal(dir string) (*Local, error) {
	b, err := os.ReadFile(filepath.Join(dir, "store-id"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &Local{dir: dir, id: newID()}, nil // written by the first write
	case err != nil:
		return nil, fmt.Errorf("state folder: %w", err)
	}
	return &Local{dir: dir, id: strings.TrimSpace(string(b)), made: true}, nil
}

// OpenLocalAdopting returns the store kept in dir, as OpenLocal does; when
// dir holds no store yet and shared does (the folder every pipeline file of
// a folder shared, before each file had its own), it carries on from
// shared: its id (which the sinks' commits name), and the state of the
// pipelines named, read from shared until the first write copies it into
// dir. shared itself is never changed, so other files adopt their own
// pipelines from it in turn.
func OpenLocalAdopting(dir, shared string, pipelines []string) (*Local, error) {
	l, err := OpenLocal(dir)
	if err != nil || l.made || shared == "" {
		return l, err
	}
	b, err := os.ReadFile(filepath.Join(shared, "store-id"))
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state folder: %w", err)
	}
	l.id, l.shared, l.adopt = strings.TrimSpace(string(b)), shared, pipelines
	return l, nil
}

// mkdir makes the folder and writes the store's id, once, before the first
// write; a store adopting a shared folder's state copies it in first.
func (l *Local) mkdir() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.made {
		return nil
	}
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return fmt.Errorf("state folder: %w", err)
	}
	for _, name := range l.adopt {
		from := filepath.Join(l.shared, url.PathEscape(name)+".json")
		b, err := os.ReadFile(from)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = writeFileAtomic(l.path(name, ".json"), b)
		}
		if err != nil {
			return fmt.Errorf("state folder: carrying over %s: %w", from, err)
		}
	}
	idPath := filepath.Join(l.dir, "store-id")
	fh, err := os.OpenFile(idPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		_, err = fh.WriteString(l.id)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
	case errors.Is(err, os.ErrExist): // another process made it first
		var b []byte
		if b, err = os.ReadFile(idPath); err == nil {
			l.id = strings.TrimSpace(string(b))
		}
	}
	if err != nil {
		return fmt.Errorf("state folder: %w", err)
	}
	l.made = true
	return nil
}

// newID makes a random store id.
func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ID implements Store.
func (l *Local) ID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.id
}

// Close implements Store: a folder holds nothing open.
func (l *Local) Close() {}

// file is one pipeline's state file.
type file struct {
	Version  int               `json:"version"`
	Pipeline string            `json:"pipeline"`
	Streams  map[string]*Entry `json:"streams"`
}

func (l *Local) path(pipeline, ext string) string {
	return filepath.Join(l.dir, url.PathEscape(pipeline)+ext)
}

func (l *Local) load(pipeline string) (*file, error) {
	f := &file{Version: 1, Pipeline: pipeline, Streams: map[string]*Entry{}}
	path := l.path(pipeline, ".json")
	l.mu.Lock()
	if !l.made && l.shared != "" {
		path = filepath.Join(l.shared, url.PathEscape(pipeline)+".json")
	}
	l.mu.Unlock()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("state file %s is damaged: %w (fix it, or remove it to start the pipeline over)", path, err)
	}
	if f.Streams == nil {
		f.Streams = map[string]*Entry{}
	}
	return f, nil
}

// save replaces the pipeline's file atomically.
func (l *Local) save(f *file) error {
	if err := l.mkdir(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(l.path(f.Pipeline, ".json"), append(b, '\n'))
}

// writeFileAtomic replaces the file at final with b: written aside, synced,
// renamed, and the folder synced, so a crash leaves the old file or the new.
func writeFileAtomic(final string, b []byte) error {
	dir := filepath.Dir(final)
	tmp, err := os.CreateTemp(dir, ".state-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (l *Local) update(pipeline, stream string, fn func(e *Entry)) error {
	f, err := l.load(pipeline)
	if err != nil {
		return err
	}
	e, ok := f.Streams[stream]
	if !ok {
		e = &Entry{}
		f.Streams[stream] = e
	}
	fn(e)
	return l.save(f)
}

// Get implements Store.
func (l *Local) Get(pipeline, stream string) (Entry, error) {
	f, err := l.load(pipeline)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Pipeline: pipeline, Stream: stream}
	if got, ok := f.Streams[stream]; ok {
		e.Checkpoint, e.UpdatedAt, e.LastRun, e.ResetAt, e.Runs = got.Checkpoint, got.UpdatedAt, got.LastRun, got.ResetAt, got.Runs
		e.Binding, e.DataDigest = got.Binding, got.DataDigest
	}
	if all, ok := f.Streams["*"]; ok && all.ResetAt.After(e.ResetAt) {
		e.ResetAt = all.ResetAt
	}
	return e, nil
}

// Commit implements Store.
func (l *Local) Commit(pipeline, stream string, cp []byte, meta CommitMeta) error {
	return l.update(pipeline, stream, func(e *Entry) { e.apply(cp, meta) })
}

// RecordRun implements Store.
func (l *Local) RecordRun(pipeline, stream string, run Run) error {
	return l.update(pipeline, stream, func(e *Entry) {
		e.LastRun = &run
		e.Runs = append([]Run{run}, e.Runs[:min(len(e.Runs), HistoryRuns-1)]...)
	})
}

// List implements Store.
func (l *Local) List(pipeline string) ([]Entry, error) {
	var names []string
	if pipeline != "" {
		names = []string{pipeline}
	} else {
		dir := l.dir
		l.mu.Lock()
		if !l.made && l.shared != "" {
			dir = l.shared
		}
		l.mu.Unlock()
		matches, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, m := range matches {
			if name, err := url.PathUnescape(strings.TrimSuffix(filepath.Base(m), ".json")); err == nil {
				names = append(names, name)
			}
		}
	}
	var out []Entry
	for _, name := range names {
		f, err := l.load(name)
		if err != nil {
			return nil, err
		}
		for stream, e := range f.Streams {
			if stream == "*" || (len(e.Checkpoint) == 0 && e.LastRun == nil) {
				continue // a reset stream
			}
			out = append(out, Entry{Pipeline: name, Stream: stream, Checkpoint: e.Checkpoint, UpdatedAt: e.UpdatedAt, LastRun: e.LastRun, Runs: e.Runs, ResetAt: e.ResetAt,
				Binding: e.Binding, DataDigest: e.DataDigest})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pipeline != out[j].Pipeline {
			return out[i].Pipeline < out[j].Pipeline
		}
		return out[i].Stream < out[j].Stream
	})
	return out, nil
}

// Reset implements Store. It keeps a tombstone (ResetAt) per stream, so
// checkpoints a sink stored with its rows before the reset are ignored too.
func (l *Local) Reset(pipeline, stream string) error {
	f, err := l.load(pipeline)
	if err != nil {
		if stream != "" {
			return err
		}
		f = &file{Version: 1, Pipeline: pipeline, Streams: map[string]*Entry{}}
	}
	now := time.Now().UTC()
	if stream != "" {
		if _, ok := f.Streams[stream]; !ok {
			return fmt.Errorf("pipeline %s has no state for stream %s", pipeline, stream)
		}
		f.Streams[stream] = &Entry{ResetAt: now, Runs: f.Streams[stream].Runs}
		return l.save(f)
	}
	for name, e := range f.Streams {
		f.Streams[name] = &Entry{ResetAt: now, Runs: e.Runs}
	}
	f.Streams["*"] = &Entry{ResetAt: now}
	return l.save(f)
}

// Put implements Store.
func (l *Local) Put(e Entry) error {
	f, err := l.load(e.Pipeline)
	if err != nil {
		return err
	}
	cp := e
	cp.Pipeline, cp.Stream = "", ""
	if len(cp.Runs) > 0 && cp.LastRun == nil {
		cp.LastRun = &cp.Runs[0]
	}
	f.Streams[e.Stream] = &cp
	return l.save(f)
}

// Lock implements Store with an flock on <pipeline>.lock; the kernel drops
// it when the process dies, so a killed run never leaves a stale lock.
func (l *Local) Lock(pipeline string) (func(), error) {
	if err := l.mkdir(); err != nil {
		return nil, err
	}
	path := l.path(pipeline, ".lock")
	// O_NOFOLLOW: a lock file planted as a symlink must not make the host
	// truncate what it points at.
	f, err := filelock.OpenNoFollow(path, os.O_CREATE|os.O_RDWR, 0o600)
	if errors.Is(err, filelock.ErrSymlink) {
		return nil, fmt.Errorf("lock file %s is a symbolic link: refusing to use it (remove it)", path)
	}
	if err != nil {
		return nil, err
	}
	if err := filelock.TryLock(f); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("pipeline %s is already running (lock %s held by %s): %w", pipeline, path, strings.TrimSpace(string(holder)), ErrLocked)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "pid %d since %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	return func() {
		f.Truncate(0)
		filelock.Unlock(f)
		f.Close()
	}, nil
}

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

package state

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"pipehost/internal/atomicfile"
	"pipehost/internal/filelock"
	"sort"
	"strings"
	"sync"
	"time"
)

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

// writeFileAtomic replaces the file at final with b, readable by its owner
// only (atomicfile.Write): a crash leaves the old file or the new.
func writeFileAtomic(final string, b []byte) error { return atomicfile.Write(final, b, 0o600) }

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
	release, heldBy, err := filelock.Hold(path, 0o600, fmt.Sprintf("pid %d since %s", os.Getpid(), time.Now().UTC().Format(time.RFC3339)))
	switch {
	case errors.Is(err, filelock.ErrSymlink):
		return nil, fmt.Errorf("lock file %s is a symbolic link: refusing to use it (remove it)", path)
	case errors.Is(err, filelock.ErrLocked):
		return nil, fmt.Errorf("pipeline %s is already running (lock %s held by %s): %w", pipeline, path, heldBy, ErrLocked)
	case err != nil:
		return nil, err
	}
	return release, nil
}

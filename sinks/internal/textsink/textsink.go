// Package textsink is the machinery shared by the text file sinks (CSV, JSON
// lines): one file per commit under <path>/<stream>/, streamed as rows
// arrive, committed with its checkpoint through package commitfile.
package textsink

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v15/arrow"

	"pipehost/sinks"
	"pipehost/sinks/internal/commitfile"
)

// Encoder writes rows in one text format.
type Encoder interface {
	// Ext is the file extension, with the dot.
	Ext() string
	// Begin writes what starts a file (a CSV header).
	Begin(w *bufio.Writer, schema *arrow.Schema) error
	// Row writes row i of rec.
	Row(w *bufio.Writer, rec arrow.Record, i int) error
}

// Config is the block of a text sink.
type Config struct {
	// Path is the output folder, relative to the pipeline file's folder.
	Path string `hcl:"path"`
}

// Driver is the sinks.Driver of a text format: append only, configured
// with a path.
type Driver struct {
	Encoder Encoder
}

var _ sinks.Driver = Driver{}

// Modes implements sinks.Driver.
func (Driver) Modes() []string { return []string{sinks.Append} }

// Open implements sinks.Driver.
func (d Driver) Open(decode sinks.Decode, env sinks.Env) (sinks.Sink, error) {
	var c Config
	if err := decode(&c); err != nil {
		return nil, err
	}
	return Open(&c, env, d.Encoder)
}

// Sink writes streams as text files under one folder.
type Sink struct {
	dir string
	enc Encoder
}

var (
	_ sinks.Sink             = (*Sink)(nil)
	_ sinks.CheckpointReader = (*Sink)(nil)
	_ sinks.Locator          = (*Sink)(nil)
	_ sinks.Claimer          = (*Sink)(nil)
)

// Claim implements sinks.Claimer with a lock file beside the stream's
// folder (commitfile.Claim).
func (s *Sink) Claim(_ context.Context, pipeline, stream, _, holder string) (func(), error) {
	return commitfile.Claim(s.dir, stream, pipeline, holder, sinks.ErrClaimed)
}

// Location implements sinks.Locator: the stream's folder.
func (s *Sink) Location(stream string) string {
	dir, _ := filepath.Abs(filepath.Join(s.dir, stream))
	return strings.TrimPrefix(s.enc.Ext(), ".") + " files in " + dir
}

// Open returns a sink for cfg, creating the folder.
func Open(cfg *Config, env sinks.Env, enc Encoder) (*Sink, error) {
	dir := cfg.Path
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(env.BaseDir, dir)
	}
	// The folder is made by the first write (commitfile.Open), not here:
	// validate, plan, streams and check leave no trace on disk.
	return &Sink{dir: dir, enc: enc}, nil
}

var seq atomic.Int64

// Open implements sinks.Sink.
func (s *Sink) Open(_ context.Context, st sinks.Stream) (sinks.Writer, error) {
	if st.Mode != "" && st.Mode != sinks.Append {
		return nil, fmt.Errorf("mode %s is not supported by text file sinks (append only)", st.Mode)
	}
	folder, err := commitfile.Open(filepath.Join(s.dir, st.Name), st.Pipeline)
	if err != nil {
		return nil, err
	}
	return &writer{sink: s, folder: folder, schema: st.Schema,
		prefix: fmt.Sprintf("part-%s-%d", time.Now().UTC().Format("20060102T150405.000Z"), seq.Add(1))}, nil
}

// Checkpoint implements sinks.CheckpointReader.
func (s *Sink) Checkpoint(_ context.Context, pipeline, stream string) ([]byte, time.Time, error) {
	dir := filepath.Join(s.dir, stream)
	if _, err := os.Stat(dir); err != nil {
		return nil, time.Time{}, nil
	}
	folder, err := commitfile.Open(dir, pipeline)
	if err != nil {
		return nil, time.Time{}, err
	}
	return folder.Checkpoint()
}

// Close implements sinks.Sink.
func (s *Sink) Close() error { return nil }

type writer struct {
	sink   *Sink
	folder *commitfile.Folder
	schema *arrow.Schema
	prefix string
	n      int

	f    *os.File
	w    *bufio.Writer
	rows int64
}

func (w *writer) Write(_ context.Context, rec arrow.Record) error {
	if rec.NumRows() == 0 {
		return nil
	}
	if w.f == nil {
		f, err := w.folder.Create()
		if err != nil {
			return err
		}
		w.f, w.w = f, bufio.NewWriterSize(f, 256<<10)
		if err := w.sink.enc.Begin(w.w, w.schema); err != nil {
			return err
		}
	}
	for i := 0; i < int(rec.NumRows()); i++ {
		if err := w.sink.enc.Row(w.w, rec, i); err != nil {
			return err
		}
	}
	w.rows += rec.NumRows()
	return nil
}

func (w *writer) Commit(_ context.Context, c sinks.Commit) (sinks.CommitInfo, error) {
	if w.f == nil {
		return sinks.CommitInfo{}, nil
	}
	f, rows := w.f, w.rows
	w.f, w.rows = nil, 0
	if err := w.w.Flush(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return sinks.CommitInfo{}, err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return sinks.CommitInfo{}, err
	}
	w.n++
	name := fmt.Sprintf("%s-%05d%s", w.prefix, w.n, w.sink.enc.Ext())
	if err := w.folder.Commit(f.Name(), name, c.Checkpoint); err != nil {
		return sinks.CommitInfo{}, err
	}
	return sinks.CommitInfo{Rows: rows, Location: filepath.Join(filepath.Dir(f.Name()), name)}, nil
}

func (w *writer) Abort() error {
	if w.f == nil {
		return nil
	}
	name := w.f.Name()
	w.f.Close()
	w.f = nil
	return os.Remove(name)
}

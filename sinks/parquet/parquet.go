// Package parquet is the default destination: Parquet files under a folder,
// one subfolder per stream, written atomically.
//
// Each commit turns the rows written since the previous one into one file,
// <path>/<stream>/part-<UTC start time>-<sequence>.parquet. The file is
// written under a hidden temporary name in the same folder, synced, and
// renamed into place, and the folder is synced: readers (DuckDB, Spark,
// pyarrow globbing *.parquet) see a whole file or none, and a crash leaves at
// most a hidden temporary file, which a writer of the stream opened a day
// later removes.
//
// A commit's checkpoint is written into the file's footer (key-value
// metadata pipehost.pipeline and pipehost.checkpoint), so the rename that
// makes the rows visible also commits the checkpoint: one atomic step. The
// engine reads it back (Checkpoint) when the host died before it could
// update its state store.
package parquet

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/hashicorp/go-hclog"

	"pipehost/sinks"
	"pipehost/sinks/internal/commitfile"
)

func init() { sinks.Register("parquet", Driver{}) }

// Config is the `sink "parquet" "NAME"` block.
type Config struct {
	// Path is the output folder, relative to the pipeline file's folder.
	Path string `hcl:"path"`
	// FormatConfig holds the file format's settings (compression, row
	// groups, dictionary), the same attributes as the s3 sink's.
	FormatConfig `hcl:",remain"`
}

// Driver opens Parquet sinks.
type Driver struct{}

var _ sinks.Driver = Driver{}

// Modes implements sinks.Driver: files are appended, or (overwrite) a
// run's files replace the pipeline's files of the stream at its final
// commit, all at once.
func (Driver) Modes() []string { return []string{sinks.Append, sinks.Overwrite} }

// Open implements sinks.Driver.
func (Driver) Open(decode sinks.Decode, env sinks.Env) (sinks.Sink, error) {
	var c Config
	if err := decode(&c); err != nil {
		return nil, err
	}
	return Open(&c, env)
}

// Open returns a sink writing under c.Path. It errors on an unknown
// compression or a row group size below 1; the folder is made by the first
// write, not here.
func Open(c *Config, env sinks.Env) (*Sink, error) {
	format, err := c.FormatConfig.Format()
	if err != nil {
		return nil, err
	}
	dir := c.Path
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(env.BaseDir, dir)
	}
	// The folder is made by the first write, not here: validate, plan,
	// streams and check open sinks and must leave no trace on disk.
	log := env.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Sink{dir: dir, format: format, log: log}, nil
}

// Sink writes streams as Parquet files under one folder.
type Sink struct {
	dir    string
	format Format
	log    hclog.Logger
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

// Checkpoint implements sinks.CheckpointReader: the checkpoint in the footer
// of the newest file of the stream that the pipeline committed with one.
func (s *Sink) Checkpoint(_ context.Context, pipeline, stream string) ([]byte, time.Time, error) {
	files, _ := filepath.Glob(filepath.Join(s.dir, stream, "part-*.parquet"))
	sort.Sort(sort.Reverse(sort.StringSlice(files)))
	for _, f := range files {
		rdr, err := file.OpenParquetFile(f, false)
		if err != nil {
			// Not a file the host wrote (0 bytes, another tool's, damaged):
			// it holds no checkpoint of ours; say so and go on.
			s.log.Warn("ignoring a file in the stream's folder that is not a readable Parquet file", "file", f, "error", err)
			continue
		}
		md := rdr.MetaData().KeyValueMetadata()
		p, cp := md.FindValue(pipelineKey), md.FindValue(checkpointKey)
		rdr.Close()
		if p != nil && *p == pipeline && cp != nil {
			fi, err := os.Stat(f)
			if err != nil {
				return nil, time.Time{}, err
			}
			b, err := base64.StdEncoding.DecodeString(*cp)
			if err != nil {
				return nil, time.Time{}, fmt.Errorf("checkpoint in %s: %w", f, err)
			}
			return b, fi.ModTime(), nil
		}
	}
	return nil, time.Time{}, nil
}

// Location implements sinks.Locator: the stream's folder.
func (s *Sink) Location(stream string) string {
	dir, _ := filepath.Abs(filepath.Join(s.dir, stream))
	return "parquet files in " + dir
}

// runSeq tells apart writers opened in the same millisecond.
var runSeq atomic.Int64

// Open implements sinks.Sink: it creates <path>/<stream> and removes
// temporary files a killed or crashed writer left there (those no live
// writer holds locked; on a folder shared between hosts, the file system
// must support flock, as NFSv4 does).
func (s *Sink) Open(_ context.Context, st sinks.Stream) (sinks.Writer, error) {
	dir := filepath.Join(s.dir, st.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	commitfile.RemoveStale(dir, st.Pipeline)
	w := &Writer{
		sink: s, dir: dir, live: dir, schema: st.Schema, pipeline: st.Pipeline,
		prefix: fmt.Sprintf("part-%s-%d", time.Now().UTC().Format("20060102T150405.000Z"), runSeq.Add(1)),
	}
	if st.Mode == sinks.Overwrite {
		// Files are committed into a hidden folder beside the stream's, which
		// replaces it at the final commit.
		r, err := commitfile.StartReplacement(dir)
		if err != nil {
			return nil, err
		}
		w.replace, w.dir = r, r.Dir()
	}
	return w, nil
}

// Close implements sinks.Sink.
func (s *Sink) Close() error { return nil }

// Writer writes one stream; each Commit closes one file.
type Writer struct {
	sink     *Sink
	pipeline string
	dir      string // where files are committed: live, or the replacement's folder
	live     string // the stream's folder
	replace  *commitfile.Replacement
	schema   *arrow.Schema
	prefix   string
	seq      int

	tmp *os.File
	enc *Encoder
}

var _ sinks.Writer = (*Writer)(nil)

func (w *Writer) start() error {
	f, err := commitfile.CreateTemp(w.dir, w.pipeline)
	if err != nil {
		return err
	}
	enc, err := w.sink.format.NewEncoder(f, w.schema)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	w.tmp, w.enc = f, enc
	return nil
}

// Write implements sinks.Writer.
func (w *Writer) Write(_ context.Context, rec arrow.Record) error {
	if rec.NumRows() == 0 {
		return nil
	}
	if w.enc == nil {
		if err := w.start(); err != nil {
			return err
		}
	}
	return w.enc.Write(rec)
}

// Commit implements sinks.Writer: the open file is finished, synced and
// renamed into place. With no rows since the last commit it does nothing.
func (w *Writer) Commit(ctx context.Context, c sinks.Commit) (sinks.CommitInfo, error) {
	info, err := w.commitFile(c)
	if err != nil || !c.Final || w.replace == nil {
		return info, err
	}
	// The overwrite takes effect: the pipeline's files are replaced by this
	// run's, other pipelines' files of the stream are carried over.
	err = w.replace.Finish(func(name string) bool {
		return strings.HasSuffix(name, ".parquet") && w.sink.pipelineOf(filepath.Join(w.live, name)) != w.pipeline
	})
	w.replace, w.dir = nil, w.live
	if err != nil {
		return sinks.CommitInfo{}, err
	}
	info.Location = w.live
	if info.Rows > 0 {
		info.Location = filepath.Join(w.live, filepath.Base(info.Location))
	}
	return info, nil
}

// pipelineOf reads which pipeline committed a file ("" when unreadable).
func (s *Sink) pipelineOf(path string) string {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return ""
	}
	defer rdr.Close()
	if p := rdr.MetaData().KeyValueMetadata().FindValue(pipelineKey); p != nil {
		return *p
	}
	return ""
}

// commitFile finishes the open file, syncs it and renames it into w.dir.
func (w *Writer) commitFile(c sinks.Commit) (sinks.CommitInfo, error) {
	if w.enc == nil {
		return sinks.CommitInfo{Location: w.dir}, nil
	}
	enc, f := w.enc, w.tmp
	w.enc, w.tmp = nil, nil
	rows := enc.Rows()
	// Finish writes the footer and closes f.
	if err := enc.Finish(w.pipeline, c.Checkpoint); err != nil {
		os.Remove(f.Name())
		return sinks.CommitInfo{}, err
	}
	if err := commitfile.Sync(f.Name()); err != nil {
		os.Remove(f.Name())
		return sinks.CommitInfo{}, err
	}
	w.seq++
	final := filepath.Join(w.dir, fmt.Sprintf("%s-%05d.parquet", w.prefix, w.seq))
	if err := os.Rename(f.Name(), final); err != nil {
		os.Remove(f.Name())
		return sinks.CommitInfo{}, err
	}
	if err := commitfile.Sync(w.dir); err != nil {
		return sinks.CommitInfo{}, err
	}
	loc := final
	if w.replace != nil {
		// An overwrite's files are swapped into the stream's folder at its
		// final commit: name them where they will be read.
		loc = filepath.Join(w.live, filepath.Base(final))
	}
	return sinks.CommitInfo{Rows: rows, Location: loc}, nil
}

// Abort implements sinks.Writer: the unfinished file is removed, and an
// unfinished overwrite with it (the stream's folder is untouched).
func (w *Writer) Abort() error {
	if w.replace != nil {
		defer func() { w.replace.Abandon(); w.replace, w.dir = nil, w.live }()
	}
	if w.enc == nil {
		return nil
	}
	name := w.tmp.Name()
	w.enc.Abort() // also closes the file
	w.enc, w.tmp = nil, nil
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

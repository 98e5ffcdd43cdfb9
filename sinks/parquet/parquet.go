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
	"github.com/apache/arrow/go/v15/arrow/util"
	pq "github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/compress"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"
	"github.com/hashicorp/go-hclog"

	"pipehost/connector"
	"pipehost/sinks"
	"pipehost/sinks/internal/commitfile"
)

func init() { sinks.Register("parquet", Driver{}) }

// Config is the `sink "parquet" "NAME"` block.
type Config struct {
	// Path is the output folder, relative to the pipeline file's folder.
	Path string `hcl:"path"`
	// Compression is zstd (default), snappy, gzip or none.
	Compression *string `hcl:"compression,optional"`
	// RowGroupRows caps the rows of one row group (default 50,000).
	RowGroupRows *int64 `hcl:"row_group_rows,optional"`
	// RowGroupMiB caps a row group by the in-memory size of its rows
	// (default 32). A row group is buffered before it is written, so this
	// bounds the sink's memory whatever the width of the rows: 50,000 order
	// documents of 5 KB would otherwise hold 250 MB.
	RowGroupMiB *int64 `hcl:"row_group_mib,optional"`
	// CompressionLevel is the codec's level (zstd: 1 fastest ... 22; gzip
	// 1 ... 9). Default: zstd 1, which writes about 1.5x faster than zstd's
	// own default on order documents (BenchmarkWriteDocuments) for files a
	// little larger; other codecs their library default.
	CompressionLevel *int `hcl:"compression_level,optional"`
}

// Driver opens Parquet sinks.
type Driver struct{}

var _ sinks.Driver = Driver{}

// Modes implements sinks.Driver: files are appended, or (overwrite) a
// run's files replace the pipeline's files of the stream at its final
// commit, all at once.
func (Driver) Modes() []string { return []string{sinks.Append, sinks.Overwrite} }

var codecs = map[string]compress.Compression{
	"zstd": compress.Codecs.Zstd, "snappy": compress.Codecs.Snappy,
	"gzip": compress.Codecs.Gzip, "none": compress.Codecs.Uncompressed,
}

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
	codec := compress.Codecs.Zstd
	if c.Compression != nil {
		var ok bool
		if codec, ok = codecs[strings.ToLower(*c.Compression)]; !ok {
			return nil, fmt.Errorf("compression %q is not one of zstd, snappy, gzip, none", *c.Compression)
		}
	}
	rows := int64(50_000)
	if c.RowGroupRows != nil {
		if *c.RowGroupRows < 1 {
			return nil, fmt.Errorf("row_group_rows must be positive, got %d", *c.RowGroupRows)
		}
		rows = *c.RowGroupRows
	}
	groupBytes := int64(32 << 20)
	if c.RowGroupMiB != nil {
		if *c.RowGroupMiB < 1 {
			return nil, fmt.Errorf("row_group_mib must be positive, got %d", *c.RowGroupMiB)
		}
		groupBytes = *c.RowGroupMiB << 20
	}
	level := compress.DefaultCompressionLevel
	if codec == compress.Codecs.Zstd {
		level = 1
	}
	if c.CompressionLevel != nil {
		level = *c.CompressionLevel
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
	return &Sink{dir: dir, codec: codec, level: level, rowGroupRows: rows, rowGroupBytes: groupBytes, log: log}, nil
}

// Sink writes streams as Parquet files under one folder.
type Sink struct {
	dir          string
	codec        compress.Compression
	rowGroupRows int64
	// rowGroupBytes cuts a row group once the Arrow size of its rows
	// reaches it.
	rowGroupBytes int64
	level         int
	log           hclog.Logger
}

var (
	_ sinks.Sink             = (*Sink)(nil)
	_ sinks.CheckpointReader = (*Sink)(nil)
	_ sinks.Locator          = (*Sink)(nil)
)

// Footer keys of the checkpoint a file commits.
const (
	pipelineKey   = "pipehost.pipeline"
	checkpointKey = "pipehost.checkpoint"
)

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
	commitfile.RemoveStale(dir)
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

	tmp  *os.File
	fw   *pqarrow.FileWriter
	rows int64
	// groupBytes is the Arrow size of the rows buffered in the open row
	// group.
	groupBytes int64
}

var _ sinks.Writer = (*Writer)(nil)

func (w *Writer) start() error {
	f, err := commitfile.CreateTemp(w.dir)
	if err != nil {
		return err
	}
	opts := []pq.WriterProperty{
		pq.WithCompression(w.sink.codec),
		pq.WithMaxRowGroupLength(w.sink.rowGroupRows),
		pq.WithCreatedBy("pipehost"),
		pq.WithCompressionLevel(w.sink.level),
	}
	// Whole JSON documents are all different: a dictionary of them is
	// built only to be abandoned at its size limit, and min/max statistics
	// of kilobyte strings prune nothing. Both cost the writer time
	// (BenchmarkWriteDocuments) for no reader's gain.
	for _, f := range w.schema.Fields() {
		if connector.IsJSON(f) {
			opts = append(opts, pq.WithDictionaryFor(f.Name, false), pq.WithStatsFor(f.Name, false))
		}
	}
	props := pq.NewWriterProperties(opts...)
	fw, err := pqarrow.NewFileWriter(w.schema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	w.tmp, w.fw, w.rows, w.groupBytes = f, fw, 0, 0
	return nil
}

// Write implements sinks.Writer.
func (w *Writer) Write(_ context.Context, rec arrow.Record) error {
	if rec.NumRows() == 0 {
		return nil
	}
	if w.fw == nil {
		if err := w.start(); err != nil {
			return err
		}
	}
	// Row groups are also cut by size, so that wide rows (whole order
	// documents) do not hold hundreds of MB before they are written. The
	// cut is made before a write, so a file never ends in an empty group.
	if w.groupBytes >= w.sink.rowGroupBytes {
		w.fw.NewBufferedRowGroup()
		w.groupBytes = 0
	}
	if err := w.fw.WriteBuffered(rec); err != nil {
		return fmt.Errorf("writing parquet: %w", err)
	}
	w.rows += rec.NumRows()
	w.groupBytes += util.TotalRecordSize(rec)
	return nil
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
	if w.fw == nil {
		return sinks.CommitInfo{Location: w.dir}, nil
	}
	fw, f, rows := w.fw, w.tmp, w.rows
	w.fw, w.tmp, w.rows = nil, nil, 0
	fw.AppendKeyValueMetadata(pipelineKey, w.pipeline) // whose file it is, for overwrites
	if c.Checkpoint != nil {
		fw.AppendKeyValueMetadata(checkpointKey, base64.StdEncoding.EncodeToString(c.Checkpoint))
	}
	// FileWriter.Close writes the footer and closes f.
	if err := fw.Close(); err != nil {
		os.Remove(f.Name())
		return sinks.CommitInfo{}, fmt.Errorf("finishing parquet file: %w", err)
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
	return sinks.CommitInfo{Rows: rows, Location: final}, nil
}

// Abort implements sinks.Writer: the unfinished file is removed, and an
// unfinished overwrite with it (the stream's folder is untouched).
func (w *Writer) Abort() error {
	if w.replace != nil {
		defer func() { w.replace.Abandon(); w.replace, w.dir = nil, w.live }()
	}
	if w.fw == nil {
		return nil
	}
	name := w.tmp.Name()
	w.fw.Close() // also closes the file
	w.fw, w.tmp = nil, nil
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

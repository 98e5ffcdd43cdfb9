package s3

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"pipehost/internal/failpoint"
	"pipehost/internal/filelock"
	"sort"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"golang.org/x/sync/errgroup"

	"pipehost/sinks"
	"pipehost/sinks/parquet"
)

// Open implements sinks.Sink: it finishes a commit a crash interrupted,
// removes what killed runs staged more than a day ago, and starts a writer
// at the pipeline's next sequence number. It errors when the server cannot
// be reached or refuses the credentials, and when the partition column is
// missing or not a timestamp or date.
func (s *Sink) Open(ctx context.Context, st sinks.Stream) (sinks.Writer, error) {
	if st.Mode != "" && st.Mode != sinks.Append && st.Mode != sinks.Overwrite {
		return nil, fmt.Errorf("the s3 sink appends or overwrites; mode %q is not supported", st.Mode)
	}
	var part *partitioner
	if s.cfg.PartitionBy != nil {
		var err error
		if part, err = newPartitioner(st.Schema, *s.cfg.PartitionBy); err != nil {
			return nil, fmt.Errorf("stream %s: %w", st.Name, err)
		}
	}
	c, err := s.s3(ctx)
	if err != nil {
		return nil, err
	}
	store := s.store(c, st.Name, st.Pipeline)
	head, err := store.head(ctx)
	if err != nil {
		return nil, err
	}
	staged, err := store.stagedObjects(ctx)
	if err != nil {
		return nil, err
	}
	seq := int64(0)
	if head != nil {
		if err := store.rollForward(ctx, head, staged); err != nil {
			return nil, err
		}
		if head.Replace {
			if err := store.replace(ctx, head); err != nil {
				return nil, err
			}
		}
		seq = head.Seq
		for _, f := range head.Files {
			delete(staged, f.Staged) // in place now, deleted or not
		}
	}
	store.removeStale(ctx, staged)
	spool, lock, err := startSpool(s.spool)
	if err != nil {
		return nil, fmt.Errorf("making the local spool folder: %w", err)
	}
	token := make([]byte, 4)
	rand.Read(token)
	return &Writer{
		sink: s, store: store, schema: st.Schema, part: part, seq: seq, spool: spool, lock: lock,
		overwrite: st.Mode == sinks.Overwrite,
		parts:     map[string]*partSpool{},
		run:       fmt.Sprintf("part-%s-%s", time.Now().UTC().Format("20060102T150405.000Z"), hex.EncodeToString(token)),
	}, nil
}

// maxOpenSpools bounds the partition spool files a writer keeps open; data
// that jumps between more dates closes the least recently used one (its
// next rows start a new segment of the same file). An open spool costs a
// file descriptor and no buffer.
const maxOpenSpools = 256

// Writer writes one stream; each Commit makes one commit record.
//
// Unpartitioned, rows are encoded straight into one local Parquet file.
// Partitioned, rows are first appended, grouped by partition, to one local
// Arrow IPC file per partition value; the commit then encodes each into one
// Parquet file, one at a time. A Parquet encoder holds column writers and a
// row group's pages, so hundreds of them open at once (a full read of
// orders spans years of dates) would not fit; IPC files hold nothing in
// memory, and each commit still makes one file per partition.
type Writer struct {
	sink   *Sink
	store  *store
	schema *arrow.Schema
	part   *partitioner // nil: unpartitioned
	run    string       // file name stem of this writer's files
	seq    int64        // the last committed sequence number
	n      int          // files started by this writer
	spool  string       // this writer's local folder
	lock   *os.File     // held while the writer lives; a folder without it is stale

	one   *spoolFile            // unpartitioned: the file being filled
	parts map[string]*partSpool // partitioned: value → its IPC spool
	lru   []string              // partition values with an open spool, least recently used first
	done  []*spoolFile          // finished Parquet files waiting for the commit

	// overwrite: the run replaces the stream's objects. Its commits before
	// the final one only stage their files (held); the final commit puts
	// one record naming them all, which replaces everything else.
	overwrite bool
	held      []object
	heldRows  int64
}

var _ sinks.Writer = (*Writer)(nil)

// spoolFile is a Parquet file written locally before upload.
type spoolFile struct {
	key  string // its object key once committed
	path string
	enc  *parquet.Encoder
	rows int64
	size int64
}

// partSpool is the local Arrow IPC file of one partition value: a series
// of IPC streams (segments), one per time it was opened.
type partSpool struct {
	path string
	f    *os.File    // nil when closed
	w    *ipc.Writer // the open segment
	rows int64
}

// newFile starts a local Parquet file for the object key's folder dir.
func (w *Writer) newFile(dir string) (*spoolFile, error) {
	tmp, err := os.CreateTemp(w.spool, "*.parquet")
	if err != nil {
		return nil, fmt.Errorf("starting a local spool file: %w", err)
	}
	enc, err := w.sink.format.NewEncoder(tmp, w.schema)
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	w.n++
	return &spoolFile{key: fmt.Sprintf("%s%s-%05d.parquet", dir, w.run, w.n), path: tmp.Name(), enc: enc}, nil
}

// finish writes the footer of f (closing its file) and queues it for the
// commit.
func (w *Writer) finish(f *spoolFile) error {
	f.rows = f.enc.Rows()
	if err := f.enc.Finish(w.store.pipeline, nil); err != nil {
		os.Remove(f.path)
		return err
	}
	fi, err := os.Stat(f.path)
	if err != nil {
		os.Remove(f.path)
		return err
	}
	f.size = fi.Size()
	w.done = append(w.done, f)
	return nil
}

// Write implements sinks.Writer.
func (w *Writer) Write(_ context.Context, rec arrow.Record) error {
	if rec.NumRows() == 0 {
		return nil
	}
	if w.part == nil {
		if w.one == nil {
			f, err := w.newFile(w.store.dataPrefix())
			if err != nil {
				return err
			}
			w.one = f
		}
		return w.one.enc.Write(rec)
	}
	groups, order := w.part.group(rec)
	for _, v := range order {
		sub, err := gather(rec, groups[v])
		if err != nil {
			return err
		}
		err = w.appendSpool(v, sub)
		sub.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// appendSpool appends rec to the IPC spool of partition value v.
func (w *Writer) appendSpool(v string, rec arrow.Record) error {
	p := w.parts[v]
	if p == nil {
		tmp, err := os.CreateTemp(w.spool, "*.arrows")
		if err != nil {
			return fmt.Errorf("starting a local spool file: %w", err)
		}
		p = &partSpool{path: tmp.Name(), f: tmp}
		w.parts[v] = p
		w.lru = append(w.lru, v)
	} else if p.f == nil {
		f, err := os.OpenFile(p.path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		p.f = f
		w.lru = append(w.lru, v)
	} else {
		for i, o := range w.lru {
			if o == v {
				w.lru = append(append(w.lru[:i:i], w.lru[i+1:]...), v)
				break
			}
		}
	}
	if p.w == nil {
		p.w = ipc.NewWriter(p.f, ipc.WithSchema(w.schema))
	}
	if err := p.w.Write(rec); err != nil {
		return fmt.Errorf("writing the local spool: %w", err)
	}
	p.rows += rec.NumRows()
	for len(w.lru) > maxOpenSpools {
		if err := w.parts[w.lru[0]].close(); err != nil {
			return err
		}
		w.lru = w.lru[1:]
	}
	return nil
}

// close ends the open segment and closes the file.
func (p *partSpool) close() error {
	if p.f == nil {
		return nil
	}
	err := p.w.Close() // writes the segment's end-of-stream marker
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	p.f, p.w = nil, nil
	return err
}

// encode turns a partition's IPC spool into one Parquet file under dir.
func (w *Writer) encode(p *partSpool, dir string) error {
	if err := p.close(); err != nil {
		return err
	}
	in, err := os.Open(p.path)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := w.newFile(dir)
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(in, 1<<20)
	for {
		if _, err := br.Peek(1); err == io.EOF {
			break
		}
		rdr, err := ipc.NewReader(br, ipc.WithSchema(w.schema))
		if err != nil {
			f.enc.Abort()
			os.Remove(f.path)
			return fmt.Errorf("reading the local spool %s: %w", p.path, err)
		}
		for rdr.Next() {
			if err := f.enc.Write(rdr.Record()); err != nil {
				rdr.Release()
				f.enc.Abort()
				os.Remove(f.path)
				return err
			}
		}
		err = rdr.Err()
		rdr.Release()
		if err != nil {
			f.enc.Abort()
			os.Remove(f.path)
			return fmt.Errorf("reading the local spool %s: %w", p.path, err)
		}
	}
	return w.finish(f)
}

// Commit implements sinks.Writer: the files are finished and staged, the
// commit record is put (the commit point), and the files are copied into
// place. With no rows since the last commit it does nothing.
func (w *Writer) Commit(ctx context.Context, c sinks.Commit) (sinks.CommitInfo, error) {
	if w.one != nil {
		f := w.one
		w.one = nil
		if err := w.finish(f); err != nil {
			return sinks.CommitInfo{}, err
		}
	}
	values := make([]string, 0, len(w.parts))
	for v := range w.parts {
		values = append(values, v)
	}
	sort.Strings(values)
	for _, v := range values {
		p := w.parts[v]
		delete(w.parts, v)
		err := w.encode(p, w.store.dataPrefix()+w.part.dir(v)+"/")
		os.Remove(p.path)
		if err != nil {
			return sinks.CommitInfo{}, err
		}
	}
	w.lru = nil
	loc := w.sink.Location(w.store.stream)
	replacing := w.overwrite && c.Final
	if len(w.done) == 0 && !replacing {
		return sinks.CommitInfo{Location: loc}, nil
	}
	rec := &record{Pipeline: w.store.pipeline, Stream: w.store.stream, Seq: w.seq + 1, Checkpoint: c.Checkpoint, Replace: replacing}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inFlight)
	for _, f := range w.done {
		if f.rows == 0 {
			continue
		}
		staged := w.store.stagedKey(f.key)
		g.Go(func() error { return w.store.upload(gctx, staged, f.path) })
		rec.Files = append(rec.Files, object{Key: f.key, Staged: staged, Rows: f.rows, Bytes: f.size})
		rec.Rows += f.rows
	}
	if err := g.Wait(); err != nil {
		w.unstage(rec)
		return sinks.CommitInfo{}, err
	}
	if w.overwrite && !c.Final {
		// Staged, not committed: an overwrite becomes visible whole at
		// its final commit, so a crash before it leaves the old objects.
		w.held = append(w.held, rec.Files...)
		w.heldRows += rec.Rows
		w.discardSpool()
		return sinks.CommitInfo{Location: loc}, nil
	}
	if replacing {
		rec.Files = append(w.held, rec.Files...)
		rec.Rows += w.heldRows
	}
	rec.CommittedAt = time.Now().UTC()
	if err := w.store.commit(ctx, rec); err != nil {
		// Only a refused put is known not to have landed. After any other
		// failure (a timeout, a dropped connection) the record may exist:
		// its staged files stay for the next writer to roll forward, or to
		// remove a day later if it does not.
		if errors.Is(err, ErrConcurrentCommit) {
			w.unstage(rec)
		}
		w.held, w.heldRows = nil, 0
		return sinks.CommitInfo{}, err
	}
	w.held, w.heldRows = nil, 0
	if failpoint.Armed("after-s3-commit-record") {
		w.sink.log.Warn("failpoint after-s3-commit-record: committed, files not yet in place; waiting to be killed")
		<-ctx.Done()
		return sinks.CommitInfo{}, ctx.Err()
	}
	w.seq = rec.Seq
	w.discardSpool()
	if err := w.store.rollForward(ctx, rec, nil); err != nil {
		return sinks.CommitInfo{}, fmt.Errorf("the rows are committed, but putting them in place failed (the next run finishes it): %w", err)
	}
	if rec.Replace {
		if err := w.store.replace(ctx, rec); err != nil {
			return sinks.CommitInfo{}, fmt.Errorf("the rows are committed, but removing the objects they replace failed (the next run finishes it): %w", err)
		}
	}
	if len(rec.Files) == 1 {
		loc = w.store.url(rec.Files[0].Key)
	}
	return sinks.CommitInfo{Rows: rec.Rows, Location: loc}, nil
}

// unstage deletes the staged objects of a commit that did not happen.
func (w *Writer) unstage(rec *record) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, f := range rec.Files {
		w.store.deleteObject(ctx, f.Staged)
	}
}

// discardSpool removes the local files of the finished files.
func (w *Writer) discardSpool() {
	for _, f := range w.done {
		os.Remove(f.path)
	}
	w.done = nil
}

// Abort implements sinks.Writer: the local files are removed, and the files
// an overwrite staged for its final commit are deleted, so nothing of the
// writer is left in the bucket.
func (w *Writer) Abort() error {
	if len(w.held) > 0 {
		w.unstage(&record{Files: w.held})
		w.held, w.heldRows = nil, 0
	}
	if w.one != nil {
		w.one.enc.Abort()
		os.Remove(w.one.path)
		w.one = nil
	}
	for v, p := range w.parts {
		p.close()
		os.Remove(p.path)
		delete(w.parts, v)
	}
	w.lru = nil
	w.discardSpool()
	if w.lock != nil {
		os.RemoveAll(w.spool)
		w.lock.Close()
		w.lock = nil
	}
	return nil
}

// startSpool makes a writer's own folder under root, holding an exclusive
// lock on its .lock file for as long as the writer lives, and removes the
// folders under root whose lock no one holds: those of killed runs.
func startSpool(root string) (string, *os.File, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", nil, err
	}
	olds, _ := filepath.Glob(filepath.Join(root, "w-*"))
	for _, d := range olds {
		// A folder a minute old has its lock taken, or never will.
		if fi, err := os.Stat(d); err != nil || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		fh, err := os.Open(filepath.Join(d, ".lock"))
		if err != nil {
			continue
		}
		if filelock.TryLock(fh) == nil {
			os.RemoveAll(d)
		}
		fh.Close()
	}
	dir, err := os.MkdirTemp(root, "w-*")
	if err != nil {
		return "", nil, err
	}
	lock, err := os.Create(filepath.Join(dir, ".lock"))
	if err == nil {
		err = filelock.TryLock(lock)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, lock, nil
}

// partitioner maps a row to its Hive-style partition folder.
type partitioner struct {
	col  int
	name string // the folder's key: <column>_date
	date func(arr arrow.Array, i int) string
}

// defaultPartition is Hive's folder value for rows without one.
const defaultPartition = "__HIVE_DEFAULT_PARTITION__"

func newPartitioner(schema *arrow.Schema, column string) (*partitioner, error) {
	idx := schema.FieldIndices(column)
	if len(idx) == 0 {
		return nil, fmt.Errorf("partition_by: the stream has no column %q; give streams without it a second s3 sink block without partition_by", column)
	}
	p := &partitioner{col: idx[0], name: column + "_date"}
	switch t := schema.Field(idx[0]).Type.(type) {
	case *arrow.TimestampType:
		p.date = func(arr arrow.Array, i int) string {
			return arr.(*array.Timestamp).Value(i).ToTime(t.Unit).UTC().Format(time.DateOnly)
		}
	case *arrow.Date32Type:
		p.date = func(arr arrow.Array, i int) string {
			return arr.(*array.Date32).Value(i).ToTime().UTC().Format(time.DateOnly)
		}
	case *arrow.Date64Type:
		p.date = func(arr arrow.Array, i int) string {
			return arr.(*array.Date64).Value(i).ToTime().UTC().Format(time.DateOnly)
		}
	default:
		return nil, fmt.Errorf("partition_by: column %q is %s, not a timestamp or date", column, t)
	}
	return p, nil
}

// value is row i's partition value: its UTC date, or Hive's default.
func (p *partitioner) value(rec arrow.Record, i int64) string {
	arr := rec.Column(p.col)
	if arr.IsNull(int(i)) {
		return defaultPartition
	}
	return p.date(arr, int(i))
}

// dir is the folder of a partition value.
func (p *partitioner) dir(value string) string { return p.name + "=" + value }

// group maps each partition value of rec to its runs of consecutive rows,
// [start, end) pairs, and lists the values in order of first appearance.
func (p *partitioner) group(rec arrow.Record) (map[string][]int64, []string) {
	groups := map[string][]int64{}
	var order []string
	rows := rec.NumRows()
	start, cur := int64(0), p.value(rec, 0)
	for i := int64(1); i <= rows; i++ {
		var v string
		if i < rows {
			if v = p.value(rec, i); v == cur {
				continue
			}
		}
		if _, ok := groups[cur]; !ok {
			order = append(order, cur)
		}
		groups[cur] = append(groups[cur], start, i)
		start, cur = i, v
	}
	return groups, order
}

// gather makes one record of rec's rows in runs ([start, end) pairs): a
// slice when there is one run, else each column's runs concatenated.
func gather(rec arrow.Record, runs []int64) (arrow.Record, error) {
	if len(runs) == 2 {
		return rec.NewSlice(runs[0], runs[1]), nil
	}
	cols := make([]arrow.Array, rec.NumCols())
	slices := make([]arrow.Array, len(runs)/2)
	rows := int64(0)
	for r := 0; r < len(runs); r += 2 {
		rows += runs[r+1] - runs[r]
	}
	release := func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}
	for c := range cols {
		for r := 0; r < len(runs); r += 2 {
			slices[r/2] = array.NewSlice(rec.Column(c), runs[r], runs[r+1])
		}
		col, err := array.Concatenate(slices, memory.DefaultAllocator)
		for _, sl := range slices {
			sl.Release()
		}
		if err != nil {
			release()
			return nil, fmt.Errorf("grouping rows by partition: %w", err)
		}
		cols[c] = col
	}
	out := array.NewRecord(rec.Schema(), cols, rows)
	release()
	return out, nil
}

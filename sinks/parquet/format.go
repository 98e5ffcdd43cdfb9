package parquet

import (
	"encoding/base64"
	"fmt"
	"io"
	"pipehost/sinks"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/util"
	pq "github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/compress"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"
	pqschema "github.com/apache/arrow/go/v15/parquet/schema"

	"pipehost/connector"
	// Every Parquet file the host writes compresses its pages with pooled
	// zstd encoders (see the package).
	_ "pipehost/sinks/parquet/internal/zstdpool"
)

// FormatConfig is the file-format part of a sink block that writes Parquet
// files: this sink's and the object-storage sink's. Nil fields take the
// defaults Format documents.
type FormatConfig struct {
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
	// Dictionary dictionary-encodes string columns too, top-level and
	// inside lists and structs (default false: plain strings under zstd
	// make files about as small, and the writer spends 14% less CPU on
	// orders and order lines, 15% less again on orders' line items; see
	// Format). Numbers, timestamps and dates are dictionary-encoded either
	// way, whole JSON documents never.
	Dictionary *bool `hcl:"dictionary,optional"`
}

// Format is how a Parquet file is written: codec, level, row group limits.
// Its zero value is not usable; FormatConfig.Format makes one.
type Format struct {
	codec         compress.Compression
	level         int
	rowGroupRows  int64
	rowGroupBytes int64
	dictionary    bool
}

var codecs = map[string]compress.Compression{
	"zstd": compress.Codecs.Zstd, "snappy": compress.Codecs.Snappy,
	"gzip": compress.Codecs.Gzip, "none": compress.Codecs.Uncompressed,
}

// Format validates c and fills in the defaults. It errors on an unknown
// compression and on a row group limit below 1.
func (c FormatConfig) Format() (Format, error) {
	f := Format{codec: compress.Codecs.Zstd, rowGroupRows: 50_000, rowGroupBytes: 32 << 20}
	if c.Compression != nil {
		var ok bool
		if f.codec, ok = codecs[strings.ToLower(*c.Compression)]; !ok {
			return Format{}, sinks.BadAttribute("compression", "compression %q is not one of zstd, snappy, gzip, none", *c.Compression)
		}
	}
	if c.RowGroupRows != nil {
		if *c.RowGroupRows < 1 {
			return Format{}, sinks.BadAttribute("row_group_rows", "row_group_rows must be positive, got %d", *c.RowGroupRows)
		}
		f.rowGroupRows = *c.RowGroupRows
	}
	if c.RowGroupMiB != nil {
		if *c.RowGroupMiB < 1 {
			return Format{}, sinks.BadAttribute("row_group_mib", "row_group_mib must be positive, got %d", *c.RowGroupMiB)
		}
		f.rowGroupBytes = *c.RowGroupMiB << 20
	}
	f.level = compress.DefaultCompressionLevel
	if f.codec == compress.Codecs.Zstd {
		f.level = 1
	}
	if c.CompressionLevel != nil {
		f.level = *c.CompressionLevel
	}
	if c.Dictionary != nil {
		f.dictionary = *c.Dictionary
	}
	return f, nil
}

// Footer keys of the checkpoint a file commits.
const (
	pipelineKey   = "pipehost.pipeline"
	checkpointKey = "pipehost.checkpoint"
)

// Encoder writes one Parquet file of one schema to an io.Writer. It is used
// by one goroutine at a time.
type Encoder struct {
	fw     *pqarrow.FileWriter
	format Format
	rows   int64
	// groupBytes is the Arrow size of the rows buffered in the open row
	// group.
	groupBytes int64
}

// NewEncoder starts a file on w. Whole JSON document columns
// (connector.IsJSON) get neither a dictionary nor statistics; other string
// columns, top-level or nested, get a dictionary only when the format asks
// for one. When w is an io.Closer, Finish and Abort close it. It errors when
// schema has no Parquet form.
func (f Format) NewEncoder(w io.Writer, schema *arrow.Schema) (*Encoder, error) {
	opts := []pq.WriterProperty{
		pq.WithCompression(f.codec),
		pq.WithMaxRowGroupLength(f.rowGroupRows),
		pq.WithCreatedBy("pipehost"),
		pq.WithCompressionLevel(f.level),
	}
	// Whole JSON documents are all different: a dictionary of them is
	// built only to be abandoned at its size limit, and min/max statistics
	// of kilobyte strings prune nothing. Both cost the writer time
	// (BenchmarkWriteDocuments) for no reader's gain.
	//
	// Other string columns are written plain unless asked: arrow-go v15's
	// dictionary encoder boxes every value it hashes, which cost the host
	// 14% of its CPU on orders and order lines (make bench), while zstd
	// compresses plain repeated strings as well (order lines 4% smaller,
	// orders 1% larger). The same holds inside lists and structs: orders'
	// line items, plain, write 15% faster for a file 6% larger
	// (BenchmarkWriteNuOrderStreams).
	//
	// Statistics are written for top-level columns only. Readers prune on
	// those; for a column inside a list or struct that is null in every
	// row of a row group, arrow-go v15 writes min INT64_MAX and max
	// INT64_MIN flagged as set, which DuckDB's parquet_metadata() refuses
	// ("Date out of range") for orders' nested timestamps.
	opts = append(opts, pq.WithStats(false))
	for _, fld := range schema.Fields() {
		if !connector.IsJSON(fld) && fld.Type.ID() != arrow.LIST && fld.Type.ID() != arrow.STRUCT && fld.Type.ID() != arrow.LARGE_LIST && fld.Type.ID() != arrow.MAP {
			opts = append(opts, pq.WithStatsFor(fld.Name, true))
		}
		if connector.IsJSON(fld) {
			opts = append(opts, pq.WithDictionaryFor(fld.Name, false))
		}
	}
	arrowProps := pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())
	if !f.dictionary {
		paths, err := stringColumns(schema, arrowProps)
		if err != nil {
			return nil, err
		}
		for _, path := range paths {
			opts = append(opts, pq.WithDictionaryFor(path, false))
		}
	}
	fw, err := pqarrow.NewFileWriter(schema, w, pq.NewWriterProperties(opts...), arrowProps)
	if err != nil {
		return nil, err
	}
	return &Encoder{fw: fw, format: f}, nil
}

// stringColumns are the paths of the Parquet leaf columns of schema that
// hold strings, top-level ("order_id") or inside a list or struct
// ("line_items.list.element.color"). It errors when schema has no Parquet
// form.
func stringColumns(schema *arrow.Schema, props pqarrow.ArrowWriterProperties) ([]string, error) {
	sc, err := pqarrow.ToParquet(schema, pq.NewWriterProperties(), props)
	if err != nil {
		return nil, err
	}
	var paths []string
	for i := 0; i < sc.NumColumns(); i++ {
		if col := sc.Column(i); col.LogicalType().Equals(pqschema.StringLogicalType{}) {
			paths = append(paths, col.Path())
		}
	}
	return paths, nil
}

// Write adds rec's rows. Row groups are cut by rows and by the Arrow size of
// the rows they buffer, so wide rows (whole order documents) do not hold
// hundreds of MB before they are written; the cut is made before a write,
// so a file never ends in an empty group.
func (e *Encoder) Write(rec arrow.Record) error {
	return e.WriteSized(rec, util.TotalRecordSize(rec))
}

// WriteSized is Write for a caller that knows rec's Arrow size: a slice of
// a larger record, whose buffers Arrow would count whole.
func (e *Encoder) WriteSized(rec arrow.Record, size int64) error {
	if rec.NumRows() == 0 {
		return nil
	}
	if e.groupBytes >= e.format.rowGroupBytes {
		e.CutRowGroup()
	}
	if err := e.fw.WriteBuffered(rec); err != nil {
		return fmt.Errorf("writing parquet: %w", err)
	}
	e.rows += rec.NumRows()
	e.groupBytes += size
	return nil
}

// Buffered is the Arrow size of the rows held in the open row group, which
// the next cut writes out and frees.
func (e *Encoder) Buffered() int64 { return e.groupBytes }

// CutRowGroup writes the open row group out, freeing what it buffered; the
// next write starts a new one. With nothing buffered it does nothing.
func (e *Encoder) CutRowGroup() {
	if e.groupBytes == 0 {
		return
	}
	e.fw.NewBufferedRowGroup()
	e.groupBytes = 0
}

// Rows is the number of rows written so far.
func (e *Encoder) Rows() int64 { return e.rows }

// Finish writes the footer, with pipeline (whose file it is) and, when not
// nil, the checkpoint the file commits, and closes the writer.
func (e *Encoder) Finish(pipeline string, checkpoint []byte) error {
	e.fw.AppendKeyValueMetadata(pipelineKey, pipeline)
	if checkpoint != nil {
		e.fw.AppendKeyValueMetadata(checkpointKey, base64.StdEncoding.EncodeToString(checkpoint))
	}
	if err := e.fw.Close(); err != nil {
		return fmt.Errorf("finishing parquet file: %w", err)
	}
	return nil
}

// Abort closes the writer without caring for the file, which the caller
// discards.
func (e *Encoder) Abort() { e.fw.Close() }

// RowGroupBytes is the Arrow size at which a row group is cut: also the
// budget a writer filling several files at once keeps their buffered rows
// within.
func (f Format) RowGroupBytes() int64 { return f.rowGroupBytes }

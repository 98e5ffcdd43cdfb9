package parquet

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/arrow/util"

	"pipehost/connector"
	"pipehost/sinks"
)

var docSchema = arrow.NewSchema([]arrow.Field{
	{Name: "n", Type: arrow.PrimitiveTypes.Int64},
	{Name: "document", Type: arrow.BinaryTypes.String, Metadata: arrow.NewMetadata([]string{connector.FormatKey}, []string{connector.JSONFormat})},
}, nil)

// documents builds batches of rows shaped like NuOrder orders in the sink:
// a key and a ~4 KB JSON document, compressible as real ones are.
func documents(batches, rows int) []arrow.Record {
	rnd := rand.New(rand.NewSource(1))
	words := strings.Fields("order line_items sizes quantity price style_number color season retailer buyer_email shipping_address billing_address USD EUR pending approved shipped warehouse prebook")
	out := make([]arrow.Record, batches)
	n := int64(0)
	for i := range out {
		b := array.NewRecordBuilder(memory.DefaultAllocator, docSchema)
		for r := 0; r < rows; r++ {
			var sb strings.Builder
			sb.WriteString("{")
			for sb.Len() < 4000 {
				fmt.Fprintf(&sb, `"%s":"%s-%d",`, words[rnd.Intn(len(words))], words[rnd.Intn(len(words))], rnd.Intn(100000))
			}
			sb.WriteString(`"end":true}`)
			b.Field(0).(*array.Int64Builder).Append(n)
			b.Field(1).(*array.StringBuilder).Append(sb.String())
			n++
		}
		out[i] = b.NewRecord()
		b.Release()
	}
	return out
}

// BenchmarkWriteDocuments writes 20,000 order-sized rows (80 MB) per
// iteration into one committed file, with each codec; MB/s counts the
// rows' Arrow bytes.
//
//	go test ./sinks/parquet -run '^$' -bench WriteDocuments -benchmem
func BenchmarkWriteDocuments(b *testing.B) {
	recs := documents(20, 1000)
	size := arrowBytes(recs)
	for _, codec := range []string{"zstd", "snappy"} {
		b.Run(codec, func(b *testing.B) {
			b.SetBytes(size)
			s, err := Open(&Config{Path: "lake", FormatConfig: FormatConfig{Compression: &codec}}, sinks.Env{BaseDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < b.N; i++ {
				commitFile(b, s, "orders", recs)
			}
		})
	}
}

var lineSchema = arrow.NewSchema([]arrow.Field{
	{Name: "order_id", Type: arrow.BinaryTypes.String},
	{Name: "season", Type: arrow.BinaryTypes.String},
	{Name: "style_number", Type: arrow.BinaryTypes.String},
	{Name: "color", Type: arrow.BinaryTypes.String},
	{Name: "upc", Type: arrow.BinaryTypes.String},
	{Name: "currency_code", Type: arrow.BinaryTypes.String},
	{Name: "quantity", Type: arrow.PrimitiveTypes.Int64},
	{Name: "document", Type: arrow.BinaryTypes.String, Metadata: arrow.NewMetadata([]string{connector.FormatKey}, []string{connector.JSONFormat})},
}, nil)

// lines builds batches shaped like NuOrder order lines: ids repeated over
// an order's ~8 lines, a few seasons and currencies, 2,000 styles, and a
// ~400-byte line document.
func lines(batches, rows int) []arrow.Record {
	rnd := rand.New(rand.NewSource(2))
	seasons := []string{"SS26", "FW26", "SS27", "FW27"}
	colors := []string{"black", "navy", "ivory", "olive", "rust", "heather grey"}
	out := make([]arrow.Record, batches)
	order := 0
	for i := range out {
		b := array.NewRecordBuilder(memory.DefaultAllocator, lineSchema)
		for r := 0; r < rows; r++ {
			if rnd.Intn(8) == 0 {
				order++
			}
			style := rnd.Intn(2000)
			str := func(k int, v string) { b.Field(k).(*array.StringBuilder).Append(v) }
			str(0, fmt.Sprintf("65a1f0c2e4b0%012x", order))
			str(1, seasons[style%len(seasons)])
			str(2, fmt.Sprintf("ST-%05d", style))
			str(3, colors[rnd.Intn(len(colors))])
			str(4, fmt.Sprintf("0%011d", 400000000000+style*10+rnd.Intn(8)))
			str(5, []string{"USD", "EUR"}[order%2])
			b.Field(6).(*array.Int64Builder).Append(int64(1 + rnd.Intn(24)))
			str(7, fmt.Sprintf(`{"product":{"style_number":"ST-%05d","season":"%s"},"sizes":[{"size":"M","quantity":%d,"price":%d.00}],"warehouse":"main","prebook":false,"ship_start":"2026-12-01T00:00:00.000Z"}`,
				style, seasons[style%len(seasons)], rnd.Intn(24), 10+rnd.Intn(90)))
		}
		out[i] = b.NewRecord()
		b.Release()
	}
	return out
}

// BenchmarkWriteOrderLines writes 100,000 order-line-shaped rows per
// iteration into one committed file, with string columns dictionary-encoded
// and plain (the default), side by side; it reports the file's size too.
//
//	go test ./sinks/parquet -run '^$' -bench WriteOrderLines -count 3
func BenchmarkWriteOrderLines(b *testing.B) {
	recs := lines(50, 2000)
	size := arrowBytes(recs)
	for _, dict := range []bool{true, false} {
		b.Run(fmt.Sprintf("dictionary=%v", dict), func(b *testing.B) {
			b.SetBytes(size)
			s, err := Open(&Config{Path: "lake", FormatConfig: FormatConfig{Dictionary: &dict}}, sinks.Env{BaseDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			var fileBytes int64
			for i := 0; i < b.N; i++ {
				info := commitFile(b, s, "order_lines", recs)
				if fi, err := os.Stat(info.Location); err == nil {
					fileBytes = fi.Size()
				}
			}
			b.ReportMetric(float64(fileBytes), "file-bytes")
		})
	}
}

// commitFile writes recs (all of one schema) into one file of stream that
// its final commit makes visible, and returns where it went.
func commitFile(tb testing.TB, s *Sink, stream string, recs []arrow.Record) sinks.CommitInfo {
	tb.Helper()
	ctx := context.Background()
	w, err := s.Open(ctx, sinks.Stream{Pipeline: "bench", Name: stream, Schema: recs[0].Schema()})
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Abort()
	for _, r := range recs {
		if err := w.Write(ctx, r); err != nil {
			tb.Fatal(err)
		}
	}
	info, err := w.Commit(ctx, sinks.Commit{Final: true})
	if err != nil {
		tb.Fatal(err)
	}
	return info
}

// arrowBytes is the Arrow size of recs: what a benchmark's MB/s counts.
func arrowBytes(recs []arrow.Record) int64 {
	var n int64
	for _, r := range recs {
		n += util.TotalRecordSize(r)
	}
	return n
}

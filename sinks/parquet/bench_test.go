package parquet

import (
	"context"
	"fmt"
	"math/rand"
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
	var size int64
	for _, r := range recs {
		size += util.TotalRecordSize(r)
	}
	for _, codec := range []string{"zstd", "snappy"} {
		b.Run(codec, func(b *testing.B) {
			b.SetBytes(size)
			s, err := Open(&Config{Path: "lake", Compression: &codec}, sinks.Env{BaseDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				w, err := s.Open(ctx, sinks.Stream{Pipeline: "bench", Name: "orders", Schema: docSchema})
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range recs {
					if err := w.Write(ctx, r); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := w.Commit(ctx, sinks.Commit{Final: true}); err != nil {
					b.Fatal(err)
				}
				w.Abort()
			}
		})
	}
}

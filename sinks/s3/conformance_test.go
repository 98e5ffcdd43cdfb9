package s3

import (
	"bytes"
	"context"
	"io"
	"sort"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"
	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"pipehost/sinks"
	"pipehost/sinks/sinkstest"
)

func TestConformance(t *testing.T) {
	sinkstest.Run(t, sinkstest.Harness{Modes: Driver{}.Modes(), Open: func(t *testing.T) (sinks.Sink, func(string) []string) {
		b, c, ep := bucket(t)
		s := newSink(t, b, ep, nil)
		return s, func(stream string) []string {
			var ids []string
			for _, key := range keys(t, c, b, "lake/nuorder/"+stream+"/") {
				obj, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(key)})
				if err != nil {
					t.Fatal(err)
				}
				data, _ := io.ReadAll(obj.Body)
				obj.Body.Close()
				rdr, err := file.NewParquetReader(bytes.NewReader(data))
				if err != nil {
					t.Fatalf("%s: %v", key, err)
				}
				fr, _ := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
				tbl, err := fr.ReadTable(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for _, ch := range tbl.Column(0).Data().Chunks() {
					col := ch.(*array.String)
					for i := 0; i < col.Len(); i++ {
						ids = append(ids, col.Value(i))
					}
				}
				tbl.Release()
			}
			sort.Strings(ids)
			return ids
		}
	}})
}

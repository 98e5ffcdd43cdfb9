package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"pipehost/connector"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"
)

func readParquet(ctx context.Context, path string, emit connector.EmitFunc) error {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: batchRows}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer rr.Release()
	var row int64
	for rr.Next() {
		rec := rr.Record()
		n := int(rec.NumRows())
		rb := array.NewInt64Builder(memory.DefaultAllocator)
		lb := array.NewInt64Builder(memory.DefaultAllocator)
		for i := 0; i < n; i++ {
			row++
			rb.Append(row)
			lb.AppendNull()
		}
		rows, lines := rb.NewArray(), lb.NewArray()
		rb.Release()
		lb.Release()
		fields := append(append([]arrow.Field(nil), rec.Schema().Fields()...),
			arrow.Field{Name: RowColumn, Type: arrow.PrimitiveTypes.Int64},
			arrow.Field{Name: LineColumn, Type: arrow.PrimitiveTypes.Int64, Nullable: true})
		cols := append(append([]arrow.Array(nil), rec.Columns()...), rows, lines)
		out := array.NewRecord(arrow.NewSchema(fields, nil), cols, int64(n))
		rows.Release()
		lines.Release()
		err := emit(connector.Batch{Record: out})
		out.Release()
		if err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

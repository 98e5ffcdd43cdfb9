// Package numbers is a minimal connector with no remote service, used by the
// tests to show that the host and the plugin transport carry any connector:
// its source stream emits numbered rows, its sink stream rejects negative ones.
//
// Read options (all optional): count (rows, default 1000), batch (rows per
// batch, default 100), width (bytes of padding per row, default 0) and fail_at
// (fail once this row number would be emitted). The checkpoint is the last
// emitted number in decimal; a read resumes after it.
package numbers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"pipehost/connector"
)

// Schema is the numbers stream's schema: n (the row number, from 1), square
// (n*n, offset by the configured start) and pad (width bytes of 'x').
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "n", Type: arrow.PrimitiveTypes.Int64},
	{Name: "square", Type: arrow.PrimitiveTypes.Int64},
	{Name: "pad", Type: arrow.BinaryTypes.String},
}, nil)

// EnvironmentSchema is the environment stream's schema: the names of the
// environment variables the connector's process sees, so tests can show
// that a plugin starts with a clean environment.
var EnvironmentSchema = arrow.NewSchema([]arrow.Field{
	{Name: "name", Type: arrow.BinaryTypes.String},
}, nil)

// LedgerSchema is the ledger sink stream's schema.
var LedgerSchema = arrow.NewSchema([]arrow.Field{
	{Name: "n", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// Connector is the numbers connector. The zero value is ready to use.
type Connector struct {
	configured bool
	offset     int64
}

var _ connector.Connector = (*Connector)(nil)

// Info implements connector.Connector.
func (c *Connector) Info(context.Context) (connector.Info, error) {
	return connector.Info{Name: "numbers", Version: "1"}, nil
}

// ConfigSchema implements connector.Connector: an optional numeric offset added
// to every square, and an optional sensitive token that is never used.
func (c *Connector) ConfigSchema(context.Context) (connector.ConfigSchema, error) {
	return connector.ConfigSchema{Attributes: []connector.Attribute{
		{Name: "offset", Type: json.RawMessage(`"number"`), Description: "added to every square"},
		{Name: "token", Type: json.RawMessage(`"string"`), Sensitive: true, Description: "accepted and ignored"},
	}}, nil
}

// Configure implements connector.Connector.
func (c *Connector) Configure(_ context.Context, req connector.ConfigureRequest) error {
	var cfg struct {
		Offset *float64 `json:"offset"`
	}
	if err := json.Unmarshal(req.Config, &cfg); err != nil {
		return err
	}
	if cfg.Offset != nil {
		c.offset = int64(*cfg.Offset)
	}
	c.configured = true
	return nil
}

// Streams implements connector.Connector.
func (c *Connector) Streams(context.Context) ([]connector.Stream, error) {
	return []connector.Stream{
		{Name: "numbers", Kind: connector.Source, Schema: Schema, PrimaryKey: []string{"n"}, CursorField: "n",
			Description: "numbered rows", Options: []connector.Option{{Name: "count", Kind: connector.OptionInteger}, {Name: "batch", Kind: connector.OptionInteger}, {Name: "width", Kind: connector.OptionInteger}, {Name: "fail_at", Kind: connector.OptionInteger}}},
		{Name: "environment", Kind: connector.Source, Schema: EnvironmentSchema, PrimaryKey: []string{"name"},
			Description: "names of the environment variables the connector sees"},
		{Name: "ledger", Kind: connector.Sink, Schema: LedgerSchema, PrimaryKey: []string{"n"},
			Description: "accepts non-negative numbers, rejects negative ones"},
	}, nil
}

// Check implements connector.Connector; there is nothing remote to check.
func (c *Connector) Check(context.Context) error { return nil }

func intOption(opts map[string]string, name string, def int64) (int64, error) {
	v, ok := opts[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("option %s: %q is not a whole number", name, v)
	}
	return n, nil
}

// Read implements connector.Connector.
func (c *Connector) Read(ctx context.Context, req connector.ReadRequest, emit connector.EmitFunc) error {
	streams, _ := c.Streams(ctx)
	st, err := connector.CheckRead(streams, req)
	if err != nil {
		return err
	}
	emit = emit.For(st.Name)
	switch st.Name {
	case "numbers":
	case "environment":
		b := array.NewRecordBuilder(memory.DefaultAllocator, EnvironmentSchema)
		defer b.Release()
		for _, kv := range os.Environ() {
			name, _, _ := strings.Cut(kv, "=")
			b.Field(0).(*array.StringBuilder).Append(name)
		}
		rec := b.NewRecord()
		defer rec.Release()
		return emit(connector.Batch{Record: rec})
	}
	count, err := intOption(req.Options, "count", 1000)
	if err != nil {
		return err
	}
	batch, err := intOption(req.Options, "batch", 100)
	if err != nil {
		return err
	}
	width, err := intOption(req.Options, "width", 0)
	if err != nil {
		return err
	}
	failAt, err := intOption(req.Options, "fail_at", -1)
	if err != nil {
		return err
	}
	var from int64
	if cp := req.Streams[0].Checkpoint; len(cp) > 0 {
		if from, err = strconv.ParseInt(string(cp), 10, 64); err != nil {
			return fmt.Errorf("bad checkpoint %q", cp)
		}
	}
	pad := strings.Repeat("x", int(width))
	b := array.NewRecordBuilder(memory.DefaultAllocator, Schema)
	defer b.Release()
	for n := from + 1; n <= count; {
		if err := ctx.Err(); err != nil {
			return err
		}
		for i := int64(0); i < batch && n <= count; i, n = i+1, n+1 {
			if n == failAt {
				return fmt.Errorf("numbers: failing at row %d as asked", n)
			}
			b.Field(0).(*array.Int64Builder).Append(n)
			b.Field(1).(*array.Int64Builder).Append(n*n + c.offset)
			b.Field(2).(*array.StringBuilder).Append(pad)
		}
		rec := b.NewRecord()
		err := emit(connector.Batch{Record: rec, Checkpoint: []byte(strconv.FormatInt(n-1, 10))})
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// Write implements connector.Connector: each batch is answered as it arrives.
func (c *Connector) Write(ctx context.Context, req connector.WriteRequest, in connector.RecordIterator, results connector.ResultFunc) (connector.WriteSummary, error) {
	var sum connector.WriteSummary
	if req.Stream != "ledger" {
		return sum, fmt.Errorf("%w %q", connector.ErrUnknownStream, req.Stream)
	}
	var row int64
	for {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		rec, err := in.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return sum, nil
			}
			return sum, err
		}
		col := rec.Column(0).(*array.Int64)
		out := make([]connector.RowResult, col.Len())
		for i := 0; i < col.Len(); i++ {
			out[i].Row = row
			if col.IsNull(i) {
				out[i].Error = "n is missing"
			} else if v := col.Value(i); v < 0 {
				out[i].Error = fmt.Sprintf("n is negative (%d)", v)
			} else {
				sum.Add("numbers recorded", 1)
			}
			row++
		}
		if err := results(out); err != nil {
			return sum, err
		}
	}
}

// Close implements connector.Connector.
func (c *Connector) Close() error { return nil }

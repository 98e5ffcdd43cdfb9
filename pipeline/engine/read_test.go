package engine

// In-process tests of the one pull path: a read of one stream or several,
// every batch naming its stream, and what the engine does to the values on
// the way (NULs) and to batches across many emits.

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"pipehost/connector"
	"pipehost/connector/numbers"
	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
	"pipehost/pipeline/config"
	"pipehost/pipeline/state"
)

// altered is the numbers connector with its batches changed on the way
// out: the stream's name dropped (a connector's bug), or every pad value
// replaced.
type altered struct {
	numbers.Connector
	nameless bool
	pad      string
}

func (a *altered) Read(ctx context.Context, req connector.ReadRequest, emit connector.EmitFunc) error {
	return a.Connector.Read(ctx, req, func(b connector.Batch) error {
		if a.nameless {
			b.Stream = ""
		}
		if a.pad != "" && b.Record != nil {
			pb := array.NewStringBuilder(memory.DefaultAllocator)
			defer pb.Release()
			for i := 0; i < int(b.Record.NumRows()); i++ {
				pb.Append(a.pad)
			}
			pads := pb.NewArray()
			defer pads.Release()
			cols := append([]arrow.Array(nil), b.Record.Columns()...)
			cols[2] = pads
			rec := array.NewRecord(b.Record.Schema(), cols, b.Record.NumRows())
			defer rec.Release()
			b.Record = rec
		}
		return emit(b)
	})
}

// TestABatchNamingNoStreamFailsTheRun: a connector whose batches do not
// name their stream fails the run, saying so; nothing is committed and the
// checkpoint does not move.
func TestABatchNamingNoStreamFailsTheRun(t *testing.T) {
	store, _ := state.OpenLocal(t.TempDir())
	h := hostWith(t, `
sink "memory" "m" {}
pipeline "nameless" {
  from    = connector.numbers.numbers
  to      = sink.memory.m
  options = { count = 50, batch = 10 }
}`, store, &altered{nameless: true})
	res := h.Run(context.Background(), h.File.Pipeline("nameless"), RunOptions{})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "names no stream") || res.Rows != 0 {
		t.Fatalf("run: %d rows, %v", res.Rows, res.Err)
	}
	if e, _ := store.Get("nameless", "numbers"); len(e.Bytes()) != 0 || mem.rows["nameless/numbers"] != 0 {
		t.Fatalf("checkpoint %q, %d rows committed", e.Bytes(), mem.rows["nameless/numbers"])
	}
}

// TestNULsBecomeTheReplacementCharacterBeforeTheSink: a string holding NUL
// reaches the sink with U+FFFD in its place, in every batch of a read of
// many batches; every row arrives once, with its checkpoint.
func TestNULsBecomeTheReplacementCharacterBeforeTheSink(t *testing.T) {
	store, _ := state.OpenLocal(t.TempDir())
	h := hostWith(t, `
sink "memory" "m" {}
pipeline "nuls" {
  from    = connector.numbers.numbers
  to      = sink.memory.m
  options = { count = 1234, batch = 100 }
}`, store, &altered{pad: "a\x00b\x00"})
	res := h.Run(context.Background(), h.File.Pipeline("nuls"), RunOptions{})
	if res.Err != nil || res.Rows != 1234 {
		t.Fatalf("run: %d rows, %v", res.Rows, res.Err)
	}
	pads := mem.pads["nuls/numbers"]
	if len(pads) != 1234 {
		t.Fatalf("the sink saw %d values", len(pads))
	}
	for _, p := range pads {
		if p != "a\uFFFDb\uFFFD" {
			t.Fatalf("the sink saw %q", p)
		}
	}
	if e, _ := store.Get("nuls", "numbers"); string(e.Bytes()) != "1234" {
		t.Fatalf("checkpoint %q", e.Bytes())
	}
}

// TestInProcessOrdersAndLinesShareOneRead: the orders and order_lines
// pipelines run together download each status listing once (as many as
// orders alone), each commits its own rows, and each resumes from its own
// checkpoint: after order_lines ran alone and one order changed, a joint
// run gives orders and order_lines only that order.
func TestInProcessOrdersAndLinesShareOneRead(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 43, Products: 10, Companies: 5, Orders: 150}
	const pipelines = `
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.parquet.lake
}
pipeline "order_lines" {
  from = connector.nuorder.order_lines
  to   = sink.parquet.lake
}`
	alone := fakeNuOrder(t, cat)
	ha := nuorderHost(t, t.TempDir(), alone.URL(), pipelines)
	if r := ha.Run(context.Background(), ha.File.Pipeline("orders"), RunOptions{}); r.Err != nil {
		t.Fatal(r.Err)
	}
	listings := alone.Requests(api.OrdersDetail)

	srv := fakeNuOrder(t, cat)
	h := nuorderHost(t, t.TempDir(), srv.URL(), pipelines)
	both := []*config.Pipeline{h.File.Pipeline("orders"), h.File.Pipeline("order_lines")}
	res := h.RunAll(context.Background(), both, RunOptions{})
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("joint run: %v, %v", res[0].Err, res[1].Err)
	}
	if n := srv.Requests(api.OrdersDetail); n != listings {
		t.Fatalf("the joint run downloaded %d listings; orders alone downloads %d", n, listings)
	}
	if res[0].Rows == 0 || res[1].Rows <= res[0].Rows {
		t.Fatalf("joint run: %d orders, %d order lines", res[0].Rows, res[1].Rows)
	}
	if r := h.Run(context.Background(), both[1], RunOptions{}); r.Err != nil || r.Rows != 0 {
		t.Fatalf("order_lines alone: %d rows, %v", r.Rows, r.Err)
	}
	changed := -1
	for i := 0; i < cat.Orders && changed < 0; i++ {
		if cat.OrderStatus(i) == "approved" {
			changed = i
		}
	}
	srv.SetOrderStatus(changed, "processed")
	start := srv.Requests(api.OrdersDetail)
	res = h.RunAll(context.Background(), both, RunOptions{})
	if res[0].Err != nil || res[1].Err != nil || res[0].Rows != 1 || res[1].Rows == 0 {
		t.Fatalf("after one change: %d orders (%v), %d lines (%v)", res[0].Rows, res[0].Err, res[1].Rows, res[1].Err)
	}
	if n := srv.Requests(api.OrdersDetail) - start; n != listings {
		t.Fatalf("the second joint run downloaded %d listings, want %d", n, listings)
	}
}

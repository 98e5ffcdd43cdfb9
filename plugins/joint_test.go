package plugins

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/hashicorp/go-plugin"

	"pipehost/connector"
)

var twinSchema = arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)

// twins has two source streams read in one pass: evens and odds of 1..100,
// in batches of 10 numbers, a checkpoint after each.
// With nameless, its batches name no stream (a connector's bug).
type twins struct {
	reads, catalogs atomic.Int64
	nameless        bool
}

func (*twins) Info(context.Context) (connector.Info, error) {
	return connector.Info{Name: "twins"}, nil
}
func (*twins) ConfigSchema(context.Context) (connector.ConfigSchema, error) {
	return connector.ConfigSchema{}, nil
}
func (*twins) Configure(context.Context, connector.ConfigureRequest) error { return nil }
func (*twins) Check(context.Context) error                                 { return nil }
func (*twins) Close() error                                                { return nil }
func (t *twins) Streams(context.Context) ([]connector.Stream, error) {
	t.catalogs.Add(1)
	return []connector.Stream{
		{Name: "evens", Kind: connector.Source, Schema: twinSchema, ReadsWith: []string{"odds"}},
		{Name: "odds", Kind: connector.Source, Schema: twinSchema, ReadsWith: []string{"evens"}},
	}, nil
}

func (t *twins) Read(ctx context.Context, req connector.ReadRequest, emit connector.EmitFunc) error {
	t.reads.Add(1)
	streams := req.Names()
	for from := int64(1); from <= 100; from += 10 {
		for _, name := range streams {
			b := array.NewInt64Builder(memory.DefaultAllocator)
			for n := from; n < from+10; n++ {
				if (n%2 == 0) == (name == "evens") {
					b.Append(n)
				}
			}
			col := b.NewArray()
			rec := array.NewRecord(twinSchema, []arrow.Array{col}, int64(col.Len()))
			named := name
			if t.nameless {
				named = ""
			}
			err := emit(connector.Batch{Stream: named, Record: rec, Checkpoint: []byte(fmt.Sprint(from + 9))})
			rec.Release()
			col.Release()
			b.Release()
			if err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

func dialTwins(t *testing.T) (connector.Connector, *twins) {
	return dialTwinsOf(t, &twins{})
}

func dialTwinsOf(t *testing.T, impl *twins) (connector.Connector, *twins) {
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{pluginName: &grpcPlugin{impl: impl}})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(pluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(connector.Connector), impl
}

// TestJointReadCrossesTheWireOnce: a read of two streams runs the
// connector's Read once in the plugin and delivers each stream's rows and
// checkpoints, tagged, to the host.
func TestJointReadCrossesTheWireOnce(t *testing.T) {
	c, impl := dialTwins(t)
	var mu sync.Mutex
	sums, last := map[string]int64{}, map[string]string{}
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "evens"}, {Stream: "odds"}}}, func(b connector.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		if b.Record != nil {
			for _, v := range b.Record.Column(0).(*array.Int64).Int64Values() {
				sums[b.Stream] += v
			}
		}
		if b.Checkpoint != nil {
			last[b.Stream] = string(b.Checkpoint)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if impl.reads.Load() != 1 {
		t.Fatalf("the connector was read %d times", impl.reads.Load())
	}
	if sums["evens"] != 2550 || sums["odds"] != 2500 || last["evens"] != "100" || last["odds"] != "100" {
		t.Fatalf("sums %v, last checkpoints %v", sums, last)
	}
}

// TestJointReadStopsWhenOnePartFails: an error from the host's emit for
// one stream ends the whole read, and the error is the caller's.
func TestJointReadStopsWhenOnePartFails(t *testing.T) {
	c, _ := dialTwins(t)
	boom := errors.New("sink full")
	var odds atomic.Int64
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "evens"}, {Stream: "odds"}}}, func(b connector.Batch) error {
		if b.Stream == "odds" && odds.Add(1) == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("read ended with %v, want the emit's error", err)
	}
}

// TestTheCatalogIsListedOncePerConfiguration: the plugin resolves each
// read's stream against a catalog it lists once, not once per read;
// Configure (which may change it) lists it again.
func TestTheCatalogIsListedOncePerConfiguration(t *testing.T) {
	c, impl := dialTwins(t)
	read := func() {
		if err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "evens"}}}, func(connector.Batch) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	read()
	read()
	read()
	if n := impl.catalogs.Load(); n != 1 {
		t.Fatalf("three reads listed the catalog %d times", n)
	}
	if err := c.Configure(context.Background(), connector.ConfigureRequest{Config: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	read()
	if n := impl.catalogs.Load(); n != 2 {
		t.Fatalf("after Configure the catalog was listed %d times in all, want 2", n)
	}
}

// TestABatchNamingNoStreamFailsTheRead: a connector that emits a batch
// without its stream's name fails the read, saying so, instead of the
// batch being lost or given to another stream.
func TestABatchNamingNoStreamFailsTheRead(t *testing.T) {
	c, _ := dialTwinsOf(t, &twins{nameless: true})
	rows := 0
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "evens"}}}, func(b connector.Batch) error {
		if b.Record != nil {
			rows += int(b.Record.NumRows())
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "names no stream") || rows != 0 {
		t.Fatalf("read: %v, %d rows", err, rows)
	}
}

// TestAReadOfStreamsTheFirstDoesNotReadWithIsRefused: the plugin checks a
// read against the catalog before the connector runs.
func TestAReadOfStreamsTheFirstDoesNotReadWithIsRefused(t *testing.T) {
	c, impl := dialTwins(t)
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "evens"}, {Stream: "evens"}}}, func(connector.Batch) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "named twice") || impl.reads.Load() != 0 {
		t.Fatalf("read: %v after %d connector reads", err, impl.reads.Load())
	}
	err = c.Read(context.Background(), connector.ReadRequest{}, func(connector.Batch) error { return nil })
	if !errors.Is(err, connector.ErrUnknownStream) {
		t.Fatalf("a read of no stream: %v", err)
	}
}

// lateEmitter is twins whose Read keeps its emit func and returns; a
// connector's bug that the plugin half must survive.
type lateEmitter struct {
	twins
	emit connector.EmitFunc
}

func (l *lateEmitter) Read(ctx context.Context, req connector.ReadRequest, emit connector.EmitFunc) error {
	if err := l.twins.Read(ctx, req, emit); err != nil {
		return err
	}
	l.emit = emit
	return nil
}

// TestAnEmitAfterTheReadReturnedIsAnError: emit queues a batch for its
// stream's writer and returns; once the read has returned and its queues
// are closed, a late emit (a connector's leftover goroutine) gets an error
// saying so, and the read delivered every batch emitted before it ended.
func TestAnEmitAfterTheReadReturnedIsAnError(t *testing.T) {
	impl := &lateEmitter{}
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{pluginName: &grpcPlugin{impl: impl}})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(pluginName)
	if err != nil {
		t.Fatal(err)
	}
	var sum atomic.Int64 // emit runs on one goroutine per stream
	err = raw.(connector.Connector).Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "evens"}, {Stream: "odds"}}}, func(b connector.Batch) error {
		if b.Record != nil {
			for _, v := range b.Record.Column(0).(*array.Int64).Int64Values() {
				sum.Add(v)
			}
		}
		return nil
	})
	if err != nil || sum.Load() != 5050 {
		t.Fatalf("read: sum %d, %v; want 5050", sum.Load(), err)
	}
	col := array.NewInt64Builder(memory.DefaultAllocator)
	col.Append(2)
	arr := col.NewArray()
	rec := array.NewRecord(twinSchema, []arrow.Array{arr}, 1)
	defer rec.Release()
	err = impl.emit(connector.Batch{Stream: "evens", Record: rec})
	if err == nil || !strings.Contains(err.Error(), "after its read returned") {
		t.Fatalf("a late emit returned %v", err)
	}
}

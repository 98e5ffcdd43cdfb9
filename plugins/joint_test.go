package plugins

import (
	"context"
	"errors"
	"fmt"
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
type twins struct{ reads, catalogs atomic.Int64 }

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
	streams := append([]string{req.Stream}, req.With...)
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
			err := emit(connector.Batch{Stream: name, Record: rec, Checkpoint: []byte(fmt.Sprint(from + 9))})
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
	impl := &twins{}
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{pluginName: &grpcPlugin{impl: impl}})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(pluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(connector.Connector), impl
}

// TestJointReadCrossesTheWireOnce: a read With another stream runs the
// connector's Read once in the plugin and delivers each stream's rows and
// checkpoints, tagged, to the host.
func TestJointReadCrossesTheWireOnce(t *testing.T) {
	c, impl := dialTwins(t)
	var mu sync.Mutex
	sums, last := map[string]int64{}, map[string]string{}
	err := c.Read(context.Background(), connector.ReadRequest{Stream: "evens", With: []string{"odds"}}, func(b connector.Batch) error {
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
	err := c.Read(context.Background(), connector.ReadRequest{Stream: "evens", With: []string{"odds"}}, func(b connector.Batch) error {
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
		if err := c.Read(context.Background(), connector.ReadRequest{Stream: "evens"}, func(connector.Batch) error { return nil }); err != nil {
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

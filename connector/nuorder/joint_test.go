package nuorder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

// TestOrdersAndLinesReadInOnePass: a read of orders With order_lines
// downloads each status listing once and emits exactly the rows (and the
// checkpoints) two separate reads emit, each batch naming its stream.
func TestOrdersAndLinesReadInOnePass(t *testing.T) {
	srv := startCatalog(t, fakeapi.Catalog{Seed: 12, Products: 40, Companies: 10, Orders: 300})
	c := noLag(t, srv)
	orders, ordersCP := read(t, c, "orders", nil, nil)
	lines, linesCP := read(t, c, "order_lines", nil, nil)
	separate := srv.Requests(api.OrdersDetail)

	got := map[string][]string{}
	cps := map[string][]byte{}
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders"}, {Stream: "order_lines"}}}, func(b connector.Batch) error {
		if b.Stream != "orders" && b.Stream != "order_lines" {
			t.Fatalf("a batch of stream %q", b.Stream)
		}
		if b.Record != nil {
			col := b.Record.Column(0).(*array.String)
			for i := 0; i < col.Len(); i++ {
				got[b.Stream] = append(got[b.Stream], col.Value(i))
			}
		}
		if b.Checkpoint != nil {
			cps[b.Stream] = b.Checkpoint
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	joint := srv.Requests(api.OrdersDetail) - separate
	if joint*2 != separate || joint != len(DefaultOrderStatuses) {
		t.Fatalf("listings downloaded: %d by the joint read, %d by two reads; want one per status (%d)", joint, separate, len(DefaultOrderStatuses))
	}
	if len(orders) == 0 || len(lines) <= len(orders) {
		t.Fatalf("the catalog gave %d orders and %d lines", len(orders), len(lines))
	}
	if !equal(got["orders"], orders) || !equal(got["order_lines"], lines) {
		t.Fatalf("joint read emitted %d orders and %d lines; separate reads %d and %d", len(got["orders"]), len(got["order_lines"]), len(orders), len(lines))
	}
	if string(cps["orders"]) != string(cps["order_lines"]) || cps["orders"] == nil {
		t.Fatalf("the two streams ended on different checkpoints")
	}
	// Resuming the joint read from its checkpoint emits what the
	// separate reads emit from theirs: nothing new.
	again, _ := read(t, c, "orders", cps["orders"], nil)
	if len(again) != 0 || len(ordersCP) == 0 || len(linesCP) == 0 {
		t.Fatalf("%d orders emitted again after the joint read's checkpoint", len(again))
	}

	err = c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders"}, {Stream: "companies"}}}, func(connector.Batch) error { return nil })
	if err == nil {
		t.Fatal("orders read with companies was accepted")
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestOrdersAndLinesReadTogetherFromTheirOwnCheckpoints: streams read in
// one pass need not resume from the same point. orders resumes after a
// complete read and emits only the orders that changed status since, in
// its own stream; order_lines, never read, emits every line; both end on
// the same checkpoint, which a separate read of orders from the old
// checkpoint agrees with.
func TestOrdersAndLinesReadTogetherFromTheirOwnCheckpoints(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 13, Products: 40, Companies: 10, Orders: 300}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	_, ordersCP := read(t, c, "orders", nil, nil)
	allLines, _ := read(t, c, "order_lines", nil, nil)
	var moved []int
	for i := 0; len(moved) < 3 && i < cat.Orders; i++ {
		if srv.Order(i)["status"] == "approved" {
			moved = append(moved, i)
		}
	}
	srv.SetOrderStatus(moved[0], "processed")
	srv.SetOrderStatus(moved[1], "cancelled")
	srv.SetOrderStatus(moved[2], "pending") // leaves every listed status: read by id
	before := srv.Requests(api.OrdersDetail)
	got := map[string][]string{}
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders", Checkpoint: ordersCP},
		{Stream: "order_lines"}}}, func(b connector.Batch) error {
		if b.Record != nil {
			col := b.Record.Column(0).(*array.String)
			for i := 0; i < col.Len(); i++ {
				got[b.Stream] = append(got[b.Stream], col.Value(i))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Requests(api.OrdersDetail) - before; n != len(DefaultOrderStatuses) {
		t.Fatalf("%d listings downloaded for the two streams, want %d", n, len(DefaultOrderStatuses))
	}
	want := map[string]bool{cat.OrderID(moved[0]): true, cat.OrderID(moved[1]): true, cat.OrderID(moved[2]): true}
	if len(got["orders"]) != 3 || !want[got["orders"][0]] || !want[got["orders"][1]] || !want[got["orders"][2]] {
		t.Fatalf("orders emitted %v, want the 3 moved ones", got["orders"])
	}
	// order_lines from the beginning: what a first read of it alone
	// emits now (the order back in pending is in no listed status).
	fresh, _ := read(t, c, "order_lines", nil, nil)
	if !equal(got["order_lines"], fresh) || len(fresh) == 0 || len(fresh) >= len(allLines) {
		t.Fatalf("order_lines emitted %d lines from the beginning; a first read alone gives %d (before the changes %d)", len(got["order_lines"]), len(fresh), len(allLines))
	}
}

// TestPrerenderedListingsServeTheGeneratedDocuments: the benchmark's fake
// serves order listings from files rendered once; a read of them emits the
// same orders, documents included, as a read of the generating fake, and a
// change made after rendering is not hidden by the files.
func TestPrerenderedListingsServeTheGeneratedDocuments(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 14, Products: 30, Companies: 10, Orders: 200}
	docs := func(srv *fakeapi.Server) map[string]string {
		c := noLag(t, srv)
		out := map[string]string{}
		err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders"}}}, func(b connector.Batch) error {
			if b.Record == nil {
				return nil
			}
			ids := b.Record.Column(0).(*array.String)
			doc := b.Record.Column(b.Record.Schema().FieldIndices("document")[0]).(*array.String)
			for i := 0; i < ids.Len(); i++ {
				out[ids.Value(i)] = doc.Value(i)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	generated := docs(startCatalog(t, cat))
	pre, err := fakeapi.Start(fakeapi.Options{Credentials: testCreds, Catalog: cat, Prerender: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pre.Close() })
	files, err := pre.PrerenderListings()
	if err != nil || len(files) != len(fakeapi.OrderListingStatuses()) {
		t.Fatalf("rendered %v: %v", files, err)
	}
	rendered := docs(pre)
	if len(rendered) != len(generated) || len(generated) == 0 {
		t.Fatalf("%d orders from the files, %d generated", len(rendered), len(generated))
	}
	for id, doc := range generated {
		if rendered[id] != doc {
			t.Fatalf("order %s differs:\n%s\n%s", id, rendered[id], doc)
		}
	}
	pre.SetOrderStatus(0, "cancelled")
	if after := docs(pre); len(after) == len(rendered) && after[cat.OrderID(0)] == rendered[cat.OrderID(0)] && cat.OrderStatus(0) != "cancelled" {
		t.Fatal("a change after rendering was hidden by the rendered files")
	}
}

// BenchmarkOrdersAndLinesDecode reads orders and order_lines in one pass
// from pre-rendered listings of 10,000 orders and discards the batches:
// the connector's own cost (download, decode, Arrow builders). MB/s counts
// the listings' JSON.
//
//	go test ./connector/nuorder -run '^$' -bench OrdersAndLinesDecode -cpuprofile cpu.out
func BenchmarkOrdersAndLinesDecode(b *testing.B) {
	cat := fakeapi.Catalog{Seed: 42, Products: 2000, Companies: 500, Orders: 10_000}
	srv, err := fakeapi.Start(fakeapi.Options{Credentials: testCreds, Catalog: cat, Prerender: filepath.Join(os.TempDir(), "pipehost-bench", "listings")})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	files, err := srv.PrerenderListings()
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	for _, st := range DefaultOrderStatuses {
		fi, _ := os.Stat(files[st])
		size += fi.Size()
	}
	c := noLag(b, srv)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rows := int64(0)
		err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders"}, {Stream: "order_lines"}}}, func(bt connector.Batch) error {
			if bt.Record != nil {
				rows += bt.Record.NumRows()
			}
			return nil
		})
		if err != nil || rows == 0 {
			b.Fatal(rows, err)
		}
	}
}

// TestShipmentsStreamEmitsEachShipmentAndThenOnlyNewOnes: a first read
// emits one row per shipment the listed orders carry; after a shipment is
// recorded on an order (the fulfillment sink's update), the next read
// emits that order's shipments only, with carrier and tracking numbers;
// then nothing.
func TestShipmentsStreamEmitsEachShipmentAndThenOnlyNewOnes(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 15, Products: 30, Companies: 10, Orders: 300}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	want := 0
	approved := -1
	for i := 0; i < cat.Orders; i++ {
		o := srv.Order(i)
		st, _ := o["status"].(string)
		if !slices.Contains(DefaultOrderStatuses, st) {
			continue
		}
		if ships, ok := o["shipments"].([]map[string]any); ok {
			want += len(ships)
		} else if ships, ok := o["shipments"].([]any); ok {
			want += len(ships)
		}
		if st == "approved" && approved < 0 {
			approved = i
		}
	}
	orderIDs, cp := read(t, c, "shipments", nil, nil)
	if len(orderIDs) != want || want == 0 {
		t.Fatalf("first read: %d shipment rows, the listed orders carry %d", len(orderIDs), want)
	}
	time.Sleep(5 * time.Millisecond)
	ship := map[string]any{"shipments": []any{map[string]any{"type": "full", "status": "shipped", "carrier": "UPS",
		"tracking_numbers": []string{"1ZTEST0001"}, "shipment_date": "2026-11-30T08:00:00.000Z", "line_items": []any{}}}}
	if err := c.client.send(context.Background(), api.OrderUpdate, []string{cat.OrderID(approved)}, ship, nil); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "shipments", Checkpoint: cp}}}, func(b connector.Batch) error {
		if b.Checkpoint != nil {
			cp = b.Checkpoint
		}
		if b.Record == nil {
			return nil
		}
		for i := 0; i < int(b.Record.NumRows()); i++ {
			row := map[string]any{}
			for k, f := range b.Record.Schema().Fields() {
				row[f.Name] = b.Record.Column(k).GetOneForMarshal(i)
			}
			rows = append(rows, row)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0]["order_id"] != cat.OrderID(approved) || rows[0]["carrier"] != "UPS" || rows[0]["shipment_no"] != int32(1) ||
		!strings.Contains(fmt.Sprintf("%s", rows[0]["tracking_numbers"]), "1ZTEST0001") || !strings.Contains(rows[0]["document"].(string), `"1ZTEST0001"`) {
		t.Fatalf("after recording a shipment: %v", rows)
	}
	if again, _ := read(t, c, "shipments", cp, nil); len(again) != 0 {
		t.Fatalf("%d shipment rows with nothing new", len(again))
	}
}

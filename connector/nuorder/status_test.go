package nuorder

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

// readStatuses reads a stream from a checkpoint and returns each emitted
// order's status by _id (the first and the status columns), and the last
// checkpoint.
func readStatuses(t *testing.T, c connector.Connector, stream string, cp []byte) (map[string]string, []byte) {
	t.Helper()
	got := map[string]string{}
	last := cp
	statusCol := map[string]int{"orders": 2, "order_lines": 2}[stream]
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: stream, Checkpoint: cp}}}, func(b connector.Batch) error {
		if b.Record != nil {
			ids := b.Record.Column(0).(*array.String)
			st := b.Record.Column(statusCol).(*array.String)
			for i := 0; i < ids.Len(); i++ {
				got[ids.Value(i)] = st.Value(i)
			}
		}
		if b.Checkpoint != nil {
			last = append([]byte(nil), b.Checkpoint...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, last
}

// ordersIn returns the first n orders the catalog generates in a status.
func ordersIn(cat fakeapi.Catalog, status string, n int) []int {
	var out []int
	for i := 0; i < cat.Orders && len(out) < n; i++ {
		if cat.OrderStatus(i) == status {
			out = append(out, i)
		}
	}
	return out
}

// TestStatusChangesReachTheNextRead: NuOrder moves an order between status
// listings without moving modified_on (shared/nuorder-api.md §13.1), and the
// fake does the same; the next incremental read must still emit the order,
// with its new status, in orders and in order_lines.
func TestStatusChangesReachTheNextRead(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 29, Products: 20, Companies: 10, Orders: 300}
	for _, stream := range []string{"orders", "order_lines"} {
		t.Run(stream, func(t *testing.T) {
			srv := startCatalog(t, cat)
			c := noLag(t, srv)
			_, cp := readStatuses(t, c, stream, nil)
			if again, _ := readStatuses(t, c, stream, cp); len(again) != 0 {
				t.Fatalf("no change, yet %d orders emitted", len(again))
			}
			_, cp = readStatuses(t, c, stream, cp)
			approved := ordersIn(cat, "approved", 5)
			processed, cancelled, pending, deleted, edited := approved[0], approved[1], approved[2], approved[3], approved[4]
			before := srv.Order(processed)["modified_on"]
			srv.SetOrderStatus(processed, "processed")
			srv.SetOrderStatus(cancelled, "cancelled")
			srv.SetOrderStatus(pending, "pending") // leaves every status the read lists
			srv.DeleteOrders(deleted)
			srv.EditOrders(edited)
			if after := srv.Order(processed)["modified_on"]; after != before {
				t.Fatalf("the fake moved modified_on on a status change (%v -> %v); NuOrder does not", before, after)
			}
			got, cp := readStatuses(t, c, stream, cp)
			want := map[string]string{
				cat.OrderID(processed): "processed", cat.OrderID(cancelled): "cancelled",
				cat.OrderID(pending): "pending", cat.OrderID(deleted): "deleted", cat.OrderID(edited): "approved",
			}
			if len(got) != len(want) {
				t.Fatalf("emitted %v, want %v", got, want)
			}
			for id, st := range want {
				if got[id] != st {
					t.Fatalf("order %s emitted with status %q, want %q (all: %v)", id, got[id], st, got)
				}
			}
			if again, _ := readStatuses(t, c, stream, cp); len(again) != 0 {
				t.Fatalf("no change since, yet %v emitted", again)
			}
			// Back to approved from pending: it enters a listed status again.
			srv.SetOrderStatus(pending, "approved")
			got, _ = readStatuses(t, c, stream, cp)
			if len(got) != 1 || got[cat.OrderID(pending)] != "approved" {
				t.Fatalf("order back in approved: emitted %v", got)
			}
		})
	}
}

// TestProcessAndCancelRoutesLeaveModifiedOn: the fake's own write routes
// behave as the recordings: 200 with the order, status changed, modified_on
// unchanged; a change to the status the order already has is a 304 no-op.
func TestProcessAndCancelRoutesLeaveModifiedOn(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 31, Products: 5, Companies: 3, Orders: 40}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	i := ordersIn(cat, "approved", 1)[0]
	before := srv.Order(i)["modified_on"]
	var doc map[string]any
	if err := c.client.send(context.Background(), api.OrderSetStatus, []string{cat.OrderID(i), "process"}, struct{}{}, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["status"] != "processed" || doc["modified_on"] != before {
		t.Fatalf("process answered status %v modified_on %v (was %v)", doc["status"], doc["modified_on"], before)
	}
	// Already processed: NuOrder's 304 is a successful no-op.
	if err := c.client.send(context.Background(), api.OrderSetStatus, []string{cat.OrderID(i), "processed"}, struct{}{}, nil); err != nil {
		t.Fatalf("a no-op status change: %v", err)
	}
	raw, _ := json.Marshal(srv.Order(i))
	if !strings.Contains(string(raw), `"status":"processed"`) {
		t.Fatalf("order now %s", raw)
	}
}

func TestIDSetRoundTrip(t *testing.T) {
	s := &idSet{}
	ids := []string{"543d059f8c60318201c231cb", "not-an-object-id", "543d059f8c60318201c231cb", "543D059F8C60318201C231CC", "", "541c2769663e94c8129f4631"}
	for _, id := range ids {
		s.add(id)
	}
	back, err := decodeIDSet(s.encode())
	if err != nil {
		t.Fatal(err)
	}
	if back.len() != 5 {
		t.Fatalf("%d ids after a round trip, want 5 distinct", back.len())
	}
	for _, id := range ids {
		if !back.has(id) {
			t.Fatalf("%q lost", id)
		}
	}
	if back.has("543d059f8c60318201c231cd") || back.has("not-an-object") {
		t.Fatal("an id never added is found")
	}
	if _, err := decodeIDSet("AQID"); err == nil {
		t.Fatal("a corrupt set decodes")
	}
}

// realisticObjectIDs makes n MongoDB ObjectIds the way a NuOrder server
// would over five years: 4 bytes of creation second, 5 bytes of a random
// value per server process (a new process every 20,000 ids, several in
// parallel), 3 bytes of a counter.
func realisticObjectIDs(n int) []string {
	r := rand.New(rand.NewPCG(7, 11))
	start := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	span := int64(5 * 365 * 24 * 3600)
	procs := make([][5]byte, 4)
	counters := make([]uint32, 4)
	out := make([]string, n)
	for i := range out {
		if i%20000 == 0 {
			for p := range procs {
				for b := range procs[p] {
					procs[p][b] = byte(r.IntN(256))
				}
				counters[p] = r.Uint32()
			}
		}
		p := r.IntN(len(procs))
		counters[p]++
		var id [12]byte
		binary.BigEndian.PutUint32(id[:4], uint32(start+span*int64(i)/int64(n)))
		copy(id[4:9], procs[p][:])
		id[9], id[10], id[11] = byte(counters[p]>>16), byte(counters[p]>>8), byte(counters[p])
		out[i] = hex.EncodeToString(id[:])
	}
	return out
}

// BenchmarkOrderIDSet reports what the orders checkpoint's membership
// weighs for a million orders, with realistic ObjectIds and with the fake's
// (which share a prefix and compress better):
//
//	go test ./connector/nuorder -run '^$' -bench OrderIDSet -benchtime 1x
func BenchmarkOrderIDSet(b *testing.B) {
	const n = 1_000_000
	cat := fakeapi.Catalog{Seed: 1, Orders: n}
	for name, ids := range map[string]func() []string{
		"realistic": func() []string { return realisticObjectIDs(n) },
		"fake": func() []string {
			out := make([]string, n)
			for i := range out {
				out[i] = cat.OrderID(i)
			}
			return out
		},
	} {
		b.Run(name, func(b *testing.B) {
			all := ids()
			for i := 0; i < b.N; i++ {
				s := &idSet{}
				for _, id := range all {
					s.add(id)
				}
				text := s.encode()
				back, err := decodeIDSet(text)
				if err != nil || back.len() != n {
					b.Fatalf("%v, %d ids", err, back.len())
				}
				b.ReportMetric(float64(len(text))/(1<<20), "checkpoint-MiB")
				b.ReportMetric(float64(len(text))/n, "bytes/order")
			}
		})
	}
}

// BenchmarkOrdersIncremental measures an incremental orders run over a
// catalog of N orders after 100 orders changed status (50 processed, 30
// cancelled, 20 back to pending) without a modified_on move: the requests
// the run makes, the rows it emits, the checkpoint it ends with and the peak
// live heap sampled during the run (the fake runs in the same process and is
// counted). Run with -benchtime=1x:
//
//	go test ./connector/nuorder -run '^$' -bench OrdersIncremental -benchtime 1x -timeout 60m
func BenchmarkOrdersIncremental(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("orders=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				cat := fakeapi.Catalog{Seed: 37, Products: 50, Companies: 50, Orders: n}
				srv := startCatalog(b, cat)
				c := noLag(b, srv)
				var cp []byte
				drain := func(b connector.Batch) error {
					if b.Checkpoint != nil {
						cp = append(cp[:0], b.Checkpoint...)
					}
					return nil
				}
				if err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders"}}}, drain); err != nil {
					b.Fatal(err)
				}
				approved := ordersIn(cat, "approved", 100)
				for k, i := range approved {
					srv.SetOrderStatus(i, []string{"processed", "cancelled", "pending"}[min(k/50+k/80, 2)])
				}
				before := srv.TotalRequests()
				rows := 0
				peak := maxLiveHeap(func() {
					err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders", Checkpoint: cp}}}, func(bt connector.Batch) error {
						if bt.Record != nil {
							rows += int(bt.Record.NumRows())
						}
						return drain(bt)
					})
					if err != nil {
						b.Fatal(err)
					}
				})
				if rows != 100 {
					b.Fatalf("the run emitted %d orders, want the 100 that changed status", rows)
				}
				b.ReportMetric(float64(srv.TotalRequests()-before), "requests")
				b.ReportMetric(float64(rows), "rows")
				b.ReportMetric(float64(len(cp))/(1<<20), "checkpoint-MiB")
				b.ReportMetric(float64(peak)/(1<<20), "peak-live-MiB")
			}
		})
	}
}

// TestACheckpointWithoutMembershipReadsEveryOrderOnce: a checkpoint written
// before status tracking has a cursor and no membership; the run cannot
// tell which orders changed status since, so it emits every order once (a
// merge sink then holds every current status) and tracks from there.
func TestACheckpointWithoutMembershipReadsEveryOrderOnce(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 97, Products: 5, Companies: 5, Orders: 120}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	all, _ := read(t, c, "orders", nil, nil)
	old := []byte(`{"cursor":"` + time.Now().UTC().Format(tsLayout) + `"}`)
	again, cp := read(t, c, "orders", old, nil)
	if len(again) != len(all) {
		t.Fatalf("from a checkpoint without membership: %d orders, want all %d", len(again), len(all))
	}
	if more, _ := read(t, c, "orders", cp, nil); len(more) != 0 {
		t.Fatalf("then %d more with no change", len(more))
	}
	// An interrupted run's checkpoint of that version: the same.
	interrupted := []byte(`{"cursor":"` + time.Now().UTC().Format(tsLayout) + `","until":"` + time.Now().UTC().Format(tsLayout) + `","part":2}`)
	if again, _ := read(t, c, "orders", interrupted, nil); len(again) != len(all) {
		t.Fatalf("from an interrupted checkpoint without membership: %d orders, want all %d", len(again), len(all))
	}
}

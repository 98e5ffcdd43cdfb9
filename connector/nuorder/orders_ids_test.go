package nuorder

import (
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

// TestOrdersReadByIDsFollowStatusAndEdits: with read = "ids", against 3,000
// orders, a first run reads the /detail listings; after 10 status changes
// and 40 edits, the next run lists ids (one request per status), reads by
// id only the 10 moved orders and its small share of the rest, emits the
// 10, and downloads a small fraction of the first run's bytes. The 40
// edits are emitted by the runs of the next day, each exactly once, as the
// rolling re-read reaches them (12 hours later, then 24), and never again.
func TestOrdersReadByIDsFollowStatusAndEdits(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 47, Products: 10, Companies: 10, Orders: 3000}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	c.now, srv.Now = now, now
	later := func(d time.Duration) { clock.Add(int64(d)) }
	opts := map[string]string{"read": "ids"}

	first, cp := read(t, c, "orders", nil, opts)
	firstBytes := srv.Stats().BodyBytes
	if srv.Requests(api.OrdersList) != 0 || srv.Requests(api.OrdersDetail) != len(DefaultOrderStatuses) || len(first) == 0 {
		t.Fatalf("first run: %d id listings, %d detail listings, %d orders", srv.Requests(api.OrdersList), srv.Requests(api.OrdersDetail), len(first))
	}
	var moved, edited []string
	for i := 0; i < cat.Orders && len(edited) < 40; i++ {
		switch st := cat.OrderStatus(i); {
		case st == "approved" && len(moved) < 10:
			srv.SetOrderStatus(i, "processed")
			moved = append(moved, cat.OrderID(i))
		case st != "pending" && st != "draft" && st != "review":
			later(time.Millisecond)
			srv.EditOrders(i)
			edited = append(edited, cat.OrderID(i))
		}
	}
	later(time.Minute)
	bytesBefore, byIDBefore := srv.Stats().BodyBytes, srv.Requests(api.OrderByID)
	second, cp := read(t, c, "orders", cp, opts)
	secondBytes, byID := srv.Stats().BodyBytes-bytesBefore, srv.Requests(api.OrderByID)-byIDBefore
	if srv.Requests(api.OrdersList) != len(DefaultOrderStatuses) || srv.Requests(api.OrdersDetail) != len(DefaultOrderStatuses) {
		t.Fatalf("second run: %d id listings, %d detail listings", srv.Requests(api.OrdersList), srv.Requests(api.OrdersDetail))
	}
	emitted := map[string]int{}
	for _, id := range second {
		emitted[id]++
	}
	for _, id := range moved {
		if emitted[id] != 1 {
			t.Fatalf("second run: moved order %s emitted %d times", id, emitted[id])
		}
	}
	if len(second) > len(moved)+2 || byID > len(moved)+5 || secondBytes*20 > firstBytes {
		t.Fatalf("second run: %d emitted, %d read by id, %d bytes (first run %d)", len(second), byID, secondBytes, firstBytes)
	}
	t.Logf("second run: %d orders emitted, %d read by id, %d bytes against %d for the first (/detail) run", len(second), byID, secondBytes, firstBytes)

	isEdit := map[string]bool{}
	for _, id := range edited {
		isEdit[id] = true
	}
	for _, step := range []time.Duration{12 * time.Hour, 12 * time.Hour, 12 * time.Hour} {
		later(step)
		var got []string
		got, cp = read(t, c, "orders", cp, opts)
		for _, id := range got {
			if !isEdit[id] {
				t.Fatalf("%v later: emitted %s, which did not change", step, id)
			}
			emitted[id]++
		}
	}
	var missing []string
	for _, id := range edited {
		if emitted[id] != 1 {
			missing = append(missing, id)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("edited orders not emitted exactly once within a day and a half: %v (counts %v)", missing, emitted)
	}
}

// BenchmarkOrdersDetailAgainstIDs: the same incremental orders run, an hour
// after a first full run, with read = "detail" and with read = "ids", side
// by side, at 100k and 1M orders, with refresh_hours 24 and 168: 100 orders
// changed status (20 of them to pending, which the statuses read do not
// list) and 20 were edited in their status in between. It reports each
// run's requests, bytes and rows and the byte ratio; then the ids run
// refresh_hours later (its rolling re-read has gone round the whole
// circle) and how many of the 20 edits the ids runs emitted in all (every
// one, each once, is the bound read = "ids" promises).
func BenchmarkOrdersDetailAgainstIDs(b *testing.B) {
	for _, bc := range []struct{ n, refresh int }{{100_000, 24}, {1_000_000, 24}, {1_000_000, 168}} {
		n := bc.n
		b.Run(fmt.Sprintf("orders=%d/refresh=%d", n, bc.refresh), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				cat := fakeapi.Catalog{Seed: 37, Products: 50, Companies: 50, Orders: n}
				srv := startCatalog(b, cat)
				c := noLag(b, srv)
				var clock atomic.Int64
				clock.Store(time.Now().UnixNano())
				now := func() time.Time { return time.Unix(0, clock.Load()) }
				c.now, srv.Now = now, now
				_, cp := read(b, c, "orders", nil, nil)
				clock.Add(int64(30 * time.Minute))
				for k, i := range ordersIn(cat, "approved", 100) {
					srv.SetOrderStatus(i, []string{"processed", "cancelled", "pending"}[min(k/50+k/80, 2)])
				}
				edits := map[string]bool{}
				for _, i := range ordersIn(cat, "processed", 20) {
					clock.Add(int64(time.Millisecond))
					srv.EditOrders(i)
					edits[cat.OrderID(i)] = true
				}
				clock.Add(int64(30 * time.Minute))
				measure := func(opts map[string]string, from []byte) (rows []string, next []byte, requests int, bytes int64) {
					r0, b0 := srv.TotalRequests(), srv.Stats().BodyBytes
					rows, next = read(b, c, "orders", from, opts)
					return rows, next, srv.TotalRequests() - r0, srv.Stats().BodyBytes - b0
				}
				idsOpts := map[string]string{"read": "ids", "refresh_hours": fmt.Sprint(bc.refresh)}
				detail, _, dReq, dBytes := measure(nil, cp)
				ids, idsCP, iReq, iBytes := measure(idsOpts, cp)
				if len(detail) != 120 {
					b.Fatalf("read = detail emitted %d orders, want the 120 that changed", len(detail))
				}
				emitted := map[string]int{}
				for _, id := range ids {
					emitted[id]++
				}
				if len(ids) < 100 || len(ids) > 120 {
					b.Fatalf("read = ids: %d orders the hour after, want the 100 moved and the edits its re-read reached", len(ids))
				}
				b.ReportMetric(float64(dReq), "detail-requests")
				b.ReportMetric(float64(dBytes)/1e6, "detail-MB")
				b.ReportMetric(float64(iReq), "ids-requests")
				b.ReportMetric(float64(iBytes)/1e6, "ids-MB")
				b.ReportMetric(float64(iBytes)/float64(dBytes), "ids/detail-bytes")
				b.ReportMetric(float64(len(ids)), "ids-rows")
				// refresh_hours later, the re-read has gone round the circle.
				clock.Add(int64(time.Duration(bc.refresh) * time.Hour))
				day, _, dayReq, dayBytes := measure(idsOpts, idsCP)
				for _, id := range day {
					emitted[id]++
				}
				caught := 0
				for id := range edits {
					if emitted[id] == 1 {
						caught++
					}
				}
				if caught != 20 || len(day) > 20 {
					b.Fatalf("read = ids: %d orders refresh_hours after, %d of 20 edits emitted once", len(day), caught)
				}
				b.ReportMetric(float64(dayReq), "ids-lap-requests")
				b.ReportMetric(float64(dayBytes)/1e6, "ids-lap-MB")
				b.ReportMetric(float64(caught), "edits-caught")
			}
		})
	}
}

// TestOrderPositionsSpreadEvenly: the re-read positions of ids that differ
// only in their last digits (the fake's, and MongoDB's counters) fall
// evenly on the circle: each twentieth of it holds about a twentieth of
// 20,000 orders (an arc of an hour then re-reads an hour's share).
func TestOrderPositionsSpreadEvenly(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 53, Orders: 20000}
	var buckets [20]int
	for i := 0; i < cat.Orders; i++ {
		buckets[int(idPosition(cat.OrderID(i))*20)]++
	}
	for k, n := range buckets {
		if n < 850 || n > 1150 {
			t.Fatalf("twentieth %d of the circle holds %d of 20,000 orders: %v", k, n, buckets)
		}
	}
}

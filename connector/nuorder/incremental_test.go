package nuorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

func startCatalog(t testing.TB, cat fakeapi.Catalog) *fakeapi.Server {
	t.Helper()
	srv, err := fakeapi.Start(fakeapi.Options{Credentials: testCreds, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// noLag configures a connector whose reads stop at the current time, so a
// change made by the test is seen by the next read at once.
func noLag(t testing.TB, srv *fakeapi.Server) *Connector {
	t.Helper()
	return configured(t, srv.URL(), testCreds, `,"cursor_lag_seconds":0`)
}

// read reads a stream from a checkpoint and returns the first column's
// values and the last checkpoint.
func read(t testing.TB, c connector.Connector, stream string, cp []byte, opts map[string]string) (ids []string, last []byte) {
	t.Helper()
	last = cp
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: stream, Checkpoint: cp}}, Options: opts}, func(b connector.Batch) error {
		if b.Record != nil {
			col := b.Record.Column(0).(*array.String)
			for i := 0; i < col.Len(); i++ {
				ids = append(ids, col.Value(i))
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
	// Changes made after this read must land after its upper bound.
	time.Sleep(3 * time.Millisecond)
	return ids, last
}

func sorted(xs []string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return out
}

func TestOrdersIncrementalPicksUpEditsAndStatusChanges(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 3, Products: 20, Companies: 10, Orders: 400}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)

	first, cp := read(t, c, "orders", nil, nil)
	var want int
	for i := 0; i < cat.Orders; i++ {
		if cat.OrderStatus(i) != "pending" {
			want++
		}
	}
	if len(first) != want {
		t.Fatalf("first read: %d orders, want %d (every non-pending order)", len(first), want)
	}
	if len(sorted(first)) != len(first) {
		t.Fatal("duplicates")
	}
	// Nothing changed: nothing read, checkpoint moves on.
	again, cp2 := read(t, c, "orders", cp, nil)
	if len(again) != 0 {
		t.Fatalf("a read with no changes emitted %d orders", len(again))
	}
	// Edit two approved orders and ship a third.
	var approved []int
	for i := 0; i < cat.Orders && len(approved) < 3; i++ {
		if cat.OrderStatus(i) == "approved" {
			approved = append(approved, i)
		}
	}
	srv.EditOrders(approved[0], approved[1])
	srv.SetOrderStatus(approved[2], "shipped")
	changed, _ := read(t, c, "orders", cp2, nil)
	wantIDs := []string{cat.OrderID(approved[0]), cat.OrderID(approved[1]), cat.OrderID(approved[2])}
	if strings.Join(sorted(changed), ",") != strings.Join(sorted(wantIDs), ",") {
		t.Fatalf("after 3 changes the read emitted %v, want %v", changed, wantIDs)
	}
}

func TestOrderOptionsFilterAndAreChecked(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 3, Products: 5, Companies: 5, Orders: 300}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	approvedOnly, _ := read(t, c, "orders", nil, map[string]string{"statuses": "approved"})
	for _, id := range approvedOnly {
		i, _ := cat.OrderIndex(id, cat.Orders)
		if cat.OrderStatus(i) != "approved" {
			t.Fatalf("order %s is %s", id, cat.OrderStatus(i))
		}
	}
	if srv.Requests(api.OrdersDetail) != 1 {
		t.Fatalf("%d detail requests for one status", srv.Requests(api.OrdersDetail))
	}
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders"}}, Options: map[string]string{"aproved_from": "2026-01-01"}}, func(connector.Batch) error { return nil })
	if err == nil || !strings.Contains(err.Error(), `no option "aproved_from"`) {
		t.Fatalf("misspelt option: %v", err)
	}
	err = c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders"}}, Options: map[string]string{"approved_from": "01/02/2026"}}, func(connector.Batch) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "is not a date") {
		t.Fatalf("bad date: %v", err)
	}
	// A date range keeps orders created within it.
	ranged, _ := read(t, c, "orders", nil, map[string]string{"approved_from": "2025-06-01", "approved_to": "2025-09-30"})
	for _, id := range ranged {
		i, _ := cat.OrderIndex(id, cat.Orders)
		created := srv.Order(i)["created_on"].(string)
		if created < "2025-06-01" || created >= "2025-10-01" {
			t.Fatalf("order created %s outside the range", created)
		}
	}
	if len(ranged) == 0 || len(ranged) >= len(approvedOnly)*2 {
		t.Fatalf("range kept %d orders", len(ranged))
	}
}

func TestOrderLinesFlattenEverySize(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 5, Products: 12, Companies: 4, Orders: 60}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	var rows int
	want := 0
	for i := 0; i < cat.Orders; i++ {
		if cat.OrderStatus(i) == "pending" {
			continue
		}
		for _, li := range cat.Order(i)["line_items"].([]map[string]any) {
			want += len(li["sizes"].([]map[string]any))
		}
	}
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "order_lines"}}}, func(b connector.Batch) error {
		if b.Record == nil {
			return nil
		}
		rows += int(b.Record.NumRows())
		q := b.Record.Column(14).(*array.Int64)
		for i := 0; i < q.Len(); i++ {
			if q.IsNull(i) || q.Value(i) < 1 {
				t.Fatalf("row %d has quantity %v", i, q.Value(i))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rows != want {
		t.Fatalf("%d order lines, want %d", rows, want)
	}
}

func TestCompaniesIncrementalEmitsNewAndModifiedOnce(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 11, Companies: 80}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	first, cp := read(t, c, "companies", nil, nil)
	if len(first) != 80 {
		t.Fatalf("first read: %d companies", len(first))
	}
	added := srv.AddCompanies(2)
	srv.UpdateCompanies(5, added[0]) // a new company that is also modified
	changed, cp := read(t, c, "companies", cp, nil)
	want := []string{cat.CompanyID(5), cat.CompanyID(added[0]), cat.CompanyID(added[1])}
	if strings.Join(sorted(changed), ",") != strings.Join(sorted(want), ",") {
		t.Fatalf("emitted %v, want %v", changed, want)
	}
	if more, _ := read(t, c, "companies", cp, nil); len(more) != 0 {
		t.Fatalf("no change, yet %d companies", len(more))
	}
}

// TestProductsIncrementalIncludesDeactivations: a day after the last
// products run (every known product due for its refresh), the run emits
// the two products changed meanwhile, one deactivated, and no other.
func TestProductsIncrementalIncludesDeactivations(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 13, Products: 50}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	_, cp := read(t, c, "products", nil, nil)
	off := false
	srv.UpdateProducts(&off, 4)
	srv.UpdateProducts(nil, 9)
	changed, _ := read(t, c, "products", aged(t, cp, 25*time.Hour), nil)
	if strings.Join(sorted(changed), ",") != strings.Join(sorted([]string{cat.ProductID(4), cat.ProductID(9)}), ",") {
		t.Fatalf("emitted %v", changed)
	}
}

func TestAnInterruptedReadResumesAfterItsLastCheckpoint(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 17, Products: 10, Companies: 10, Orders: 500}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	full, _ := read(t, c, "orders", nil, nil)

	// Stop the read as soon as the first status listing is committed.
	var got []string
	var committed []byte
	errStop := errors.New("killed")
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders"}}}, func(b connector.Batch) error {
		if b.Record != nil {
			col := b.Record.Column(0).(*array.String)
			for i := 0; i < col.Len(); i++ {
				got = append(got, col.Value(i))
			}
		}
		if b.Checkpoint != nil {
			committed = append([]byte(nil), b.Checkpoint...)
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("read: %v", err)
	}
	var cp checkpoint
	json.Unmarshal(committed, &cp)
	if cp.Part != 1 || cp.Until == "" {
		t.Fatalf("first checkpoint %s: want part 1 of an interrupted run", committed)
	}
	rest, final := read(t, c, "orders", committed, nil)
	all := append(got, rest...)
	if strings.Join(sorted(all), ",") != strings.Join(sorted(full), ",") {
		t.Fatalf("resumed read: %d + %d orders, want the %d of a full read, each once", len(got), len(rest), len(full))
	}
	var fin checkpoint
	json.Unmarshal(final, &fin)
	if fin.Until != "" || fin.Cursor == "" {
		t.Fatalf("final checkpoint %s", final)
	}
}

func TestRetriesRideOutFaults(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 19, Products: 30, Companies: 5, Orders: 200}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	c.client.BaseBackoff = time.Millisecond
	full, _ := read(t, c, "orders", nil, map[string]string{"statuses": "approved"})

	srv.InjectFault(api.OrdersDetail, fakeapi.Fault{Status: 429, RetryAfter: "0", Times: 2})
	if got, _ := read(t, c, "orders", nil, map[string]string{"statuses": "approved"}); len(got) != len(full) {
		t.Fatalf("after 429s: %d orders, want %d", len(got), len(full))
	}
	srv.InjectFault(api.OrdersDetail, fakeapi.Fault{DropAfterBytes: 20000, Times: 1})
	got, _ := read(t, c, "orders", nil, map[string]string{"statuses": "approved"})
	if strings.Join(sorted(got), ",") != strings.Join(sorted(full), ",") {
		t.Fatalf("after a dropped connection: %d orders, want %d, each once", len(got), len(full))
	}
	srv.InjectFault(api.ProductByID, fakeapi.Fault{Status: 503, Times: 3})
	if got, _ := read(t, c, "products", nil, nil); len(got) == 0 {
		t.Fatal("no products after 503s")
	}
	// A 4xx other than 429 is not retried.
	before := srv.Requests(api.OrdersDetail)
	srv.InjectFault(api.OrdersDetail, fakeapi.Fault{Status: 403})
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders"}}, Options: map[string]string{"statuses": "approved"}}, func(connector.Batch) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "403") || srv.Requests(api.OrdersDetail) != before+1 {
		t.Fatalf("403: %v after %d requests", err, srv.Requests(api.OrdersDetail)-before)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	srv := startCatalog(t, fakeapi.Catalog{Seed: 1, Products: 3})
	c := noLag(t, srv)
	c.client.BaseBackoff = time.Millisecond
	srv.InjectFault(api.ProductList, fakeapi.Fault{Status: 429, RetryAfter: "1", Times: 1})
	start := time.Now()
	read(t, c, "products", nil, nil)
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("retried after %v, before the 1 s Retry-After", waited)
	}
}

// maxLiveHeap runs fn while sampling the live heap after each GC, and
// returns the largest value seen.
func maxLiveHeap(fn func()) uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
				metrics.Read(sample)
				if v := sample[0].Value.Uint64(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	runtime.GC()
	fn()
	close(done)
	return peak.Load()
}

// ordersMemory reads n approved orders through the connector, from one
// unpaged /detail array, and returns the peak live heap sampled during the
// read, the largest heap retained after a forced GC (one every 5,000 rows:
// what the read holds on to, without the garbage in flight), and the rows.
func ordersMemory(t testing.TB, n int) (peak, retained uint64, rows int) {
	peak, samples, rows := ordersMemorySamples(t, n)
	for _, s := range samples {
		retained = max(retained, s)
	}
	return peak, retained, rows
}

// ordersMemorySamples is ordersMemory with every retained-heap sample.
func ordersMemorySamples(t testing.TB, n int) (peak uint64, samples []uint64, rows int) {
	srv := startCatalog(t, fakeapi.Catalog{Seed: 23, Products: 50, Companies: 50, Orders: n})
	c := noLag(t, srv)
	var ms runtime.MemStats
	next := 5000
	peak = maxLiveHeap(func() {
		err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders"}}, Options: map[string]string{"statuses": "approved"}}, func(b connector.Batch) error {
			if b.Record != nil {
				rows += int(b.Record.NumRows())
			}
			if rows >= next {
				next += 5000
				runtime.GC()
				runtime.ReadMemStats(&ms)
				samples = append(samples, ms.HeapAlloc)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	return peak, samples, rows
}

func TestOrdersDetailIsDecodedElementByElement(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 40,000 orders")
	}
	_, smallRetained, small := ordersMemory(t, 12000)
	_, bigRetained, big := ordersMemory(t, 60000)
	t.Logf("heap retained: %d orders %.1f MiB, %d orders %.1f MiB", small, float64(smallRetained)/(1<<20), big, float64(bigRetained)/(1<<20))
	if big < 4*small || smallRetained == 0 {
		t.Fatalf("read %d and %d orders", small, big)
	}
	// Five times the orders may not cost more memory. Holding the array
	// would retain well over 100 MiB here; 16 MiB of slack absorbs the
	// batches in flight (about 2 MiB each) and GC timing.
	if bigRetained > smallRetained+16<<20 {
		t.Fatalf("retained heap grew from %d to %d bytes with 5x the orders", smallRetained, bigRetained)
	}
}

// BenchmarkOrdersDetail reads one unpaged /detail array of N orders (the
// fake serves about 55% of the catalog as approved) and reports the peak live
// heap sampled during the read and the heap retained after forced GCs: both
// stay flat as N grows (the fake runs in the same process and is counted). Run with -benchtime=1x:
//
//	go test ./connector/nuorder -run '^$' -bench OrdersDetail -benchtime 1x
func BenchmarkOrdersDetail(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("orders=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				peak, samples, rows := ordersMemorySamples(b, n)
				sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
				b.ReportMetric(float64(peak)/(1<<20), "peak-live-MiB")
				b.ReportMetric(float64(samples[len(samples)/2])/(1<<20), "retained-median-MiB")
				b.ReportMetric(float64(samples[len(samples)-1])/(1<<20), "retained-max-MiB")
				b.ReportMetric(float64(rows), "rows")
			}
		})
	}
}

// TestCompanyWithoutCodeIsSkippedNotFatal: companies can have an empty code
// (shared/nuorder-api.md §13.6); the code listing then holds "" for them,
// which cannot be read by code. The read skips them and goes on.
func TestCompanyWithoutCodeIsSkippedNotFatal(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 73, Companies: 12}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	if err := c.client.send(context.Background(), api.CompanyCreate, nil, map[string]any{"name": "No Code Store", "currency_code": "USD", "code": ""}, nil); err != nil {
		t.Fatal(err)
	}
	ids, _ := read(t, c, "companies", nil, nil)
	if len(ids) != 12 {
		t.Fatalf("%d companies read, want the 12 with a code", len(ids))
	}
}

// aged returns a products checkpoint as it would be d later: every product
// last read, and the last run, d earlier.
func aged(t testing.TB, cp []byte, d time.Duration) []byte {
	t.Helper()
	var k checkpoint
	if err := json.Unmarshal(cp, &k); err != nil {
		t.Fatal(err)
	}
	known, err := decodeCatalog(k.Known)
	if err != nil {
		t.Fatal(err)
	}
	for id, e := range known {
		e.read -= uint32(d / time.Minute)
		known[id] = e
	}
	k.Known = encodeCatalog(known)
	ran, err := time.Parse(time.RFC3339Nano, k.Ran)
	if err != nil {
		t.Fatal(err)
	}
	k.Ran = ran.Add(-d).Format(tsLayout)
	b, _ := json.Marshal(k)
	return b
}

// TestASecondProductsRunReadsWhatItDoesNotKnowAndAShareOfTheRest: against
// 20,000 products, a run right after the first makes at most a twentieth of
// its requests (one listing, the rolling share of re-reads) and emits
// nothing; new products are read and emitted at the next run; the run an
// hour later re-reads about 1/24 of the catalog, oldest first.
func TestASecondProductsRunReadsWhatItDoesNotKnowAndAShareOfTheRest(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 17, Products: 20000}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	// The clock is held (a slow machine must not change the figures): each
	// run a few seconds after the last, then one an hour later.
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	c.now = func() time.Time { return time.Unix(0, clock.Load()) }
	srv.Now = c.now
	first, cp := read(t, c, "products", nil, nil)
	clock.Add(int64(3 * time.Second))
	firstRequests := srv.TotalRequests()
	if firstRequests < 20000 || len(first) == 0 {
		t.Fatalf("first run: %d requests, %d products", firstRequests, len(first))
	}
	again, cp := read(t, c, "products", cp, nil)
	second := srv.TotalRequests() - firstRequests
	if second*20 > firstRequests || len(again) != 0 {
		t.Fatalf("second run: %d requests (first %d), %d products emitted", second, firstRequests, len(again))
	}
	added := srv.AddProducts(3)
	clock.Add(int64(3 * time.Second))
	before := srv.TotalRequests()
	fresh, cp := read(t, c, "products", cp, nil)
	want := []string{cat.ProductID(added[0]), cat.ProductID(added[1]), cat.ProductID(added[2])}
	if strings.Join(sorted(fresh), ",") != strings.Join(sorted(want), ",") || srv.TotalRequests()-before > 20 {
		t.Fatalf("after 3 new products: emitted %v in %d requests, want %v", fresh, srv.TotalRequests()-before, want)
	}
	before = srv.TotalRequests()
	clock.Add(int64(time.Hour))
	if more, _ := read(t, c, "products", cp, nil); len(more) != 0 {
		t.Fatalf("an hour later, nothing changed: %d emitted", len(more))
	}
	hour := srv.TotalRequests() - before
	if hour < 20003/24 || hour > 20003/24+3 {
		t.Fatalf("an hour later: %d requests, want the listing and about 1/24 of 20,003 products", hour)
	}
	t.Logf("requests: first run %d, right after %d, an hour later %d", firstRequests, second, hour)
}

// TestAProductsCheckpointFromBeforeTheCatalogIsReadTheOldWayOnce: a
// checkpoint holding only a cursor (written before the stream kept its
// catalog) reads every product and emits those modified since the cursor;
// the checkpoint it ends with keeps the catalog, so the next run reads
// only the listing and its share.
func TestAProductsCheckpointFromBeforeTheCatalogIsReadTheOldWayOnce(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 19, Products: 300}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	old := []byte(`{"cursor":"` + time.Now().UTC().Add(-time.Second).Format(tsLayout) + `"}`)
	time.Sleep(5 * time.Millisecond)
	srv.UpdateProducts(nil, 7)
	got, cp := read(t, c, "products", old, nil)
	if strings.Join(got, ",") != cat.ProductID(7) || srv.Requests(api.ProductByID) != 300 {
		t.Fatalf("from an old checkpoint: emitted %v after %d product reads", got, srv.Requests(api.ProductByID))
	}
	var k checkpoint
	if json.Unmarshal(cp, &k); k.Known == "" {
		t.Fatalf("the checkpoint keeps no catalog: %s", cp)
	}
	before := srv.Requests(api.ProductByID)
	if more, _ := read(t, c, "products", cp, nil); len(more) != 0 || srv.Requests(api.ProductByID)-before > 2 {
		t.Fatalf("the next run: %d emitted, %d product reads", len(more), srv.Requests(api.ProductByID)-before)
	}
}

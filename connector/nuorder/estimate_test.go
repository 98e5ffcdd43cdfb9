package nuorder

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"pipehost/connector"
	"pipehost/connector/nuorder/fakeapi"
)

// TestTheEstimateIsWhatTheNextReadCosts: with the clock held, the estimate
// of the next products read and of the next orders read by ids (an hour
// after the last) is the number of requests that read then makes, and
// about its bytes; locations with warehouses configured cost nothing.
func TestTheEstimateIsWhatTheNextReadCosts(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 53, Products: 2000, Companies: 10, Orders: 4000}
	srv := startCatalog(t, cat)
	c := cached(t, srv, warehousesConfig(cat, -1), "")
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	c.now, srv.Now = now, now
	estimate := func(stream string, cp []byte, opts map[string]string) connector.Estimate {
		t.Helper()
		e, err := c.Estimate(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: stream, Checkpoint: cp}}, Options: opts})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	check := func(what string, e connector.Estimate, requests int, bytes int64) {
		t.Helper()
		if e.Requests != int64(requests) || (e.Bytes > 0 && (e.Bytes*10 < bytes*7 || e.Bytes*10 > bytes*13)) {
			t.Fatalf("%s: estimated %d requests, %d bytes (%v); the read made %d requests, %d bytes", what, e.Requests, e.Bytes, e.Parts, requests, bytes)
		}
		t.Logf("%s: estimated %d requests, %d bytes; made %d, %d", what, e.Requests, e.Bytes, requests, bytes)
	}
	cost := func(stream string, cp []byte, opts map[string]string) ([]byte, int, int64) {
		r0, b0 := srv.TotalRequests(), srv.Stats().BodyBytes
		_, next := read(t, c, stream, cp, opts)
		return next, srv.TotalRequests() - r0, srv.Stats().BodyBytes - b0
	}

	first := estimate("products", nil, nil)
	if first.Requests != 1 || len(first.Parts) != 2 {
		t.Fatalf("a first products read: %+v", first)
	}
	cp, _, _ := cost("products", nil, nil)
	clock.Add(int64(time.Hour))
	e := estimate("products", cp, nil)
	_, n, b := cost("products", cp, nil)
	check("products an hour later", e, n, b)

	ids := map[string]string{"read": "ids"}
	ocp, _, _ := cost("orders", nil, ids)
	clock.Add(int64(time.Hour))
	e = estimate("orders", ocp, ids)
	_, n, b = cost("orders", ocp, ids)
	check("orders by ids an hour later", e, n, b)
	e = estimate("orders", ocp, nil)
	_, n, b = cost("orders", ocp, nil)
	check("orders by detail", e, n, b)

	if e := estimate("locations", nil, nil); e.Requests != 0 {
		t.Fatalf("locations with warehouses configured: %+v", e)
	}
}

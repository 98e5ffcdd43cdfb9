package nuorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"

	"github.com/hashicorp/go-hclog"
)

// readErr reads a stream to its end and returns the error, failing the test
// if it takes longer than limit (a hang).
func readErr(t *testing.T, c connector.Connector, stream string, opts map[string]string, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		done <- c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: stream}}, Options: opts}, func(connector.Batch) error { return nil })
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("reading %s still runs after %v: a hang", stream, limit)
		return nil
	}
}

// TestASilentNuOrderTimesOut: a NuOrder that accepts the request and never
// answers, or stops in the middle of a body, makes the read fail after its
// bounded retries, naming the endpoint and the timeout; it never hangs.
func TestASilentNuOrderTimesOut(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 103, Products: 5, Companies: 5, Orders: 300}
	srv := startCatalog(t, cat)
	c := configured(t, srv.URL(), testCreds, `,"cursor_lag_seconds":0,"response_timeout_seconds":0.3,"idle_timeout_seconds":0.3`)
	c.client.BaseBackoff, c.client.MaxAttempts = time.Millisecond, 3
	approved := map[string]string{"statuses": "approved"}

	srv.InjectFault(api.OrdersDetail, fakeapi.Fault{Delay: time.Hour})
	err := readErr(t, c, "orders", approved, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "/api/orders/approved/detail") || !strings.Contains(err.Error(), "response_timeout_seconds") {
		t.Fatalf("no answer: %v", err)
	}
	if n := srv.Requests(api.OrdersDetail); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}

	srv.InjectFault(api.OrdersDetail, fakeapi.Fault{StallAfterBytes: 5000})
	err = readErr(t, c, "orders", approved, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "/api/orders/approved/detail") || !strings.Contains(err.Error(), "idle_timeout_seconds") {
		t.Fatalf("a body that stops: %v", err)
	}

	// One slow answer, then a good one: the retry succeeds.
	srv.InjectFault(api.OrdersDetail, fakeapi.Fault{Delay: time.Hour, Times: 1})
	if err := readErr(t, c, "orders", approved, 10*time.Second); err != nil {
		t.Fatalf("after one slow answer: %v", err)
	}
	// Check fails the same way rather than hanging.
	srv.InjectFault(api.ProductList, fakeapi.Fault{Delay: time.Hour})
	done := make(chan error, 1)
	go func() { done <- c.Check(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "response_timeout_seconds") {
			t.Fatalf("check: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("check hangs")
	}
}

// TestARedirectToAnotherHostIsRefused: a 302 to another host is not
// followed (it would carry signed requests, and that host's data would be
// committed); the error says so, and the other host gets no request.
func TestARedirectToAnotherHostIsRefused(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 107, Products: 5, Companies: 5, Orders: 30}
	other := startCatalog(t, cat)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL()+r.URL.RequestURI(), http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	base := strings.Replace(redirector.URL, "127.0.0.1", "localhost", 1) // another host name for the same loopback
	c := configured(t, base, testCreds, `,"cursor_lag_seconds":0`)
	c.client.BaseBackoff = time.Millisecond
	err := readErr(t, c, "orders", nil, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "redirect") || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("redirect: %v", err)
	}
	if n := other.TotalRequests(); n != 0 {
		t.Fatalf("the other host answered %d requests", n)
	}
}

// TestBackoffIsBoundedAndJittered: each wait lies in [d/2, d] for the
// attempt's exponential d, capped at MaxBackoff, and waits differ (full
// jitter spreads retries of many clients).
func TestBackoffIsBoundedAndJittered(t *testing.T) {
	c := &Client{BaseBackoff: 100 * time.Millisecond, MaxBackoff: 1 * time.Second}
	seen := map[time.Duration]bool{}
	for attempt := 2; attempt <= 8; attempt++ {
		d := min(c.BaseBackoff<<(attempt-2), c.MaxBackoff)
		for k := 0; k < 50; k++ {
			got := c.backoff(attempt, nil)
			if got < d/2 || got > d {
				t.Fatalf("attempt %d waited %v, want within [%v, %v]", attempt, got, d/2, d)
			}
			seen[got] = true
		}
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct waits in 350: no jitter", len(seen))
	}
}

// TestADocumentWithoutEndIsRefused: one listing element that never ends
// does not grow the connector without bound: past max_document_mib the read
// fails, naming the endpoint and the limit, without retrying, and the live
// heap grows by less than the 50 MiB the element would take.
func TestADocumentWithoutEndIsRefused(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 139, Products: 5, Companies: 5, Orders: 30}
	srv := startCatalog(t, cat)
	c := configured(t, srv.URL(), testCreds, `,"cursor_lag_seconds":0,"max_document_mib":1`)
	srv.InjectFault(api.OrdersDetail, fakeapi.Fault{HugeElement: 50 << 20})
	var err error
	// What the read adds to the live heap: the heap other tests of the
	// package left reachable (their catalogs, 20,000 products) is not the
	// read's, and counting it made the bound flaky.
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	peak := maxLiveHeap(func() { err = readErr(t, c, "orders", map[string]string{"statuses": "approved"}, 30*time.Second) })
	peak -= min(base, peak)
	if err == nil || !strings.Contains(err.Error(), "/api/orders/approved/detail") || !strings.Contains(err.Error(), "max_document_mib") {
		t.Fatalf("a 50 MiB document: %v", err)
	}
	if n := srv.Requests(api.OrdersDetail); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
	if peak > 32<<20 {
		t.Fatalf("the live heap grew by %d MiB reading a 50 MiB document with a 1 MiB limit", peak>>20)
	}
	t.Logf("the live heap grew by %d MiB reading a 50 MiB document with a 1 MiB limit (it was %d MiB before)", peak>>20, base>>20)
}

// TestRequestsArePacedToTheRateLimit: against a NuOrder that refuses more
// than R requests a second (429), max_requests_per_second = R reads a stream
// of many requests (products fetched one by one) at no less than 90% of R,
// and is never refused.
func TestRequestsArePacedToTheRateLimit(t *testing.T) {
	const rate = 30.0
	srv, err := fakeapi.Start(fakeapi.Options{Credentials: testCreds, Catalog: fakeapi.Catalog{Seed: 5, Products: 150}, RateLimit: rate})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := configured(t, srv.URL(), testCreds, fmt.Sprintf(`,"max_requests_per_second":%v,"max_in_flight":5`, rate))
	start := time.Now()
	ids, _ := read(t, c, "products", nil, nil)
	elapsed := time.Since(start)
	st := srv.Stats()
	if len(ids) == 0 || st.Requests < 150 {
		t.Fatalf("%d products in %d requests", len(ids), st.Requests)
	}
	if st.TooMany != 0 {
		t.Fatalf("the fake refused %d requests with 429", st.TooMany)
	}
	achieved := float64(st.Requests) / elapsed.Seconds()
	t.Logf("%d requests in %v: %.1f/s of %.0f allowed", st.Requests, elapsed.Round(time.Millisecond), achieved, rate)
	if achieved < 0.9*rate {
		t.Fatalf("%.1f requests/s, below 90%% of the %.0f allowed", achieved, rate)
	}
}

// TestEveryAnswerHasAnEnd: answers that would run on forever end at a
// limit, in seconds, with flat memory, naming the endpoint and the limit,
// after one request: a 2 MB gzip body expanding into one 512 MiB element
// (it was scanned again from its start on every read: still at 100% CPU
// after 90 s at the default limit); "[" then spaces without end, and valid
// orders without end (they ran on at flat memory, or growing); an answer
// slower than max_answer_seconds.
func TestEveryAnswerHasAnEnd(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 139, Products: 5, Companies: 5, Orders: 30}
	approved := map[string]string{"statuses": "approved"}
	for _, tc := range []struct {
		name   string
		fault  fakeapi.Fault
		config string
		want   string
	}{
		{"gzip bomb", fakeapi.Fault{GzipElement: 512 << 20}, ``, "max_document_mib"},
		{"gzip bomb, answer limit", fakeapi.Fault{GzipElement: 512 << 20}, `,"max_document_mib":4096,"max_answer_mib":32`, "max_answer_mib"},
		{"endless spaces", fakeapi.Fault{Endless: "spaces"}, `,"max_answer_mib":16`, "max_answer_mib"},
		{"endless orders", fakeapi.Fault{Endless: "orders"}, `,"max_answer_mib":16`, "max_answer_mib"},
		{"too slow", fakeapi.Fault{Endless: "spaces"}, `,"max_answer_seconds":1.5`, "max_answer_seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startCatalog(t, cat)
			c := configured(t, srv.URL(), testCreds, `,"cursor_lag_seconds":0`+tc.config)
			srv.InjectFault(api.OrdersDetail, tc.fault)
			start := time.Now()
			var err error
			peak := maxLiveHeap(func() { err = readErr(t, c, "orders", approved, 60*time.Second) })
			if err == nil || !strings.Contains(err.Error(), "/api/orders/approved/detail") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v", err)
			}
			if n := srv.Requests(api.OrdersDetail); n != 1 {
				t.Fatalf("%d attempts, want 1", n)
			}
			if peak > 200<<20 {
				t.Fatalf("peak live heap %d MiB", peak>>20)
			}
			t.Logf("failed after %v, peak live heap %d MiB: %v", time.Since(start).Round(10*time.Millisecond), peak>>20, err)
		})
	}
}

// TestAnErrorAnsweredWith200SaysItsCode: a gateway answering 200 with
// NuOrder's error document {"code": 401, ...} fails the read as a 401, once
// (it said "expected a JSON array" before, without the 401).
func TestAnErrorAnsweredWith200SaysItsCode(t *testing.T) {
	srv := startCatalog(t, fakeapi.Catalog{Seed: 139, Products: 5, Companies: 5, Orders: 30})
	c := configured(t, srv.URL(), testCreds, `,"cursor_lag_seconds":0`)
	srv.InjectFault(api.OrdersDetail, fakeapi.Fault{ErrorIn200: 401})
	err := readErr(t, c, "orders", map[string]string{"statuses": "approved"}, 10*time.Second)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 401 || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "/api/orders/approved/detail") {
		t.Fatalf("%v", err)
	}
	if n := srv.Requests(api.OrdersDetail); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
}

// TestTheAccountsSignatureSchemeIsFoundAndKept: against a NuOrder that
// accepts only its own signature scheme (A), check and a read succeed after
// one refused RFC 5849 request, every later request is signed with A, and
// the log names the scheme; against one that accepts only RFC 5849, no
// request is ever signed with A.
func TestTheAccountsSignatureSchemeIsFoundAndKept(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 139, Products: 5, Companies: 5, Orders: 30}
	for _, only := range []string{fakeapi.SchemeNuOrder, fakeapi.SchemeRFC5849} {
		t.Run(only, func(t *testing.T) {
			srv, err := fakeapi.Start(fakeapi.Options{Credentials: testCreds, Catalog: cat, Scheme: only})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			var logs bytes.Buffer
			c := New(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}), nil)
			cfg := fmt.Sprintf(`{"base_url":%q,"consumer_key":%q,"consumer_secret":%q,"token":%q,"token_secret":%q,"cursor_lag_seconds":0}`,
				srv.URL(), testCreds.ConsumerKey, testCreds.ConsumerSecret, testCreds.Token, testCreds.TokenSecret)
			if err := c.Configure(context.Background(), connector.ConfigureRequest{Config: json.RawMessage(cfg)}); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Check(context.Background()); err != nil {
				t.Fatalf("check: %v", err)
			}
			if err := readErr(t, c, "orders", map[string]string{"statuses": "approved"}, 10*time.Second); err != nil {
				t.Fatalf("read: %v", err)
			}
			signed := srv.SignedWith()
			switch only {
			case fakeapi.SchemeNuOrder:
				if signed[fakeapi.SchemeRFC5849] != 1 || signed[fakeapi.SchemeNuOrder] < 2 {
					t.Fatalf("signed %v: want 1 refused RFC 5849 request, then NuOrder's scheme", signed)
				}
				if !strings.Contains(logs.String(), "accepted its own scheme") || !strings.Contains(logs.String(), `signature_scheme="NuOrder's own (hex)"`) {
					t.Fatalf("the log does not name the scheme:\n%s", logs.String())
				}
			default:
				if signed[fakeapi.SchemeNuOrder] != 0 || signed[fakeapi.SchemeRFC5849] < 2 {
					t.Fatalf("signed %v: want RFC 5849 only", signed)
				}
			}
		})
	}
}

// TestAListingOfTheWrongShapeNamesItsEndpoint: a listing whose element is
// an array nested ten deep fails naming the endpoint and the element (the
// decode error said neither).
func TestAListingOfTheWrongShapeNamesItsEndpoint(t *testing.T) {
	srv := startCatalog(t, fakeapi.Catalog{Seed: 139, Products: 5, Companies: 5, Orders: 30})
	c := configured(t, srv.URL(), testCreds, `,"cursor_lag_seconds":0`)
	srv.InjectFault(api.OrdersDetail, fakeapi.Fault{Nested: 10})
	err := readErr(t, c, "orders", map[string]string{"statuses": "approved"}, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "GET /api/orders/approved/detail, element 1") {
		t.Fatalf("%v", err)
	}
	srv.ClearFaults()
	srv.InjectFault(api.ProductList, fakeapi.Fault{Nested: 10})
	err = readErr(t, c, "products", nil, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "GET /api/products, element 1") {
		t.Fatalf("%v", err)
	}
}

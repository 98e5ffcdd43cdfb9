package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pipehost/pipeline/config"
)

var failed = Outcome{Failed: []string{"orders"}, NewlyFailed: []string{"orders"}, Ran: []string{"orders", "products"}, Document: []byte(`{"ok":false}`),
	Text: "orders: FAILED: boom\nproducts: ok, 3 row(s) in 1s\n"}

// receiver answers each post with the next status of answers (the last
// one from then on) and counts the posts.
func receiver(t *testing.T, answers ...int) (*httptest.Server, *atomic.Int64, *atomic.Value) {
	var n atomic.Int64
	var last atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		last.Store(string(b))
		i := int(n.Add(1)) - 1
		w.WriteHeader(answers[min(i, len(answers)-1)])
	}))
	t.Cleanup(srv.Close)
	return srv, &n, &last
}

// TestAFailurePostsTheRunsDocumentAndRetriesA5xx: the json format posts the
// run's document as it is; a 503 is tried again, and the third attempt's
// 200 delivers it.
func TestAFailurePostsTheRunsDocumentAndRetriesA5xx(t *testing.T) {
	srv, n, last := receiver(t, 503, 502, 200)
	blk := &config.Notify{Name: "ops", URL: srv.URL + "/hooks/T000/SECRETPATH", On: []string{"failure"}, Format: "json"}
	if err := Post(context.Background(), srv.Client(), blk, failed); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 3 || last.Load() != `{"ok":false}` {
		t.Fatalf("%d posts, last body %v", n.Load(), last.Load())
	}
}

// TestAReceiverThatIsDownCostsBoundedTimeAndNeverQuotesTheAddress: posts
// to a receiver that answers 500 stop after Attempts, in about the backoff;
// a 400 is not tried again; a closed port fails too; no error quotes the
// webhook's path (its secret).
func TestAReceiverThatIsDownCostsBoundedTimeAndNeverQuotesTheAddress(t *testing.T) {
	srv, n, _ := receiver(t, 500)
	blk := &config.Notify{Name: "ops", URL: srv.URL + "/hooks/T000/SECRETPATH", On: []string{"every"}, Format: "slack"}
	start := time.Now()
	err := Post(context.Background(), srv.Client(), blk, failed)
	if err == nil || n.Load() != Attempts || time.Since(start) > 3*Backoff+2*time.Second || strings.Contains(err.Error(), "SECRETPATH") {
		t.Fatalf("%d posts in %v: %v", n.Load(), time.Since(start), err)
	}
	refuse, rn, _ := receiver(t, 400)
	blk.URL = refuse.URL + "/hooks/T000/SECRETPATH"
	if err := Post(context.Background(), refuse.Client(), blk, failed); err == nil || rn.Load() != 1 || strings.Contains(err.Error(), "SECRETPATH") {
		t.Fatalf("a 400: %d posts: %v", rn.Load(), err)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	blk.URL = closed.URL + "/hooks/T000/SECRETPATH"
	if err := Post(context.Background(), http.DefaultClient, blk, failed); err == nil || strings.Contains(err.Error(), "SECRETPATH") {
		t.Fatalf("a closed port: %v", err)
	}
}

// TestWhenEachBlockPosts: failure posts only a pipeline starting to fail
// (not one still failing), recovery only recoveries, every each run; the slack format is {"text": ...} naming the
// failed pipelines and holding each pipeline's line.
func TestWhenEachBlockPosts(t *testing.T) {
	ok := Outcome{Ran: []string{"orders"}}
	recovered := Outcome{Ran: []string{"orders"}, Recovered: []string{"orders"}}
	stillFailing := Outcome{Ran: []string{"orders"}, Failed: []string{"orders"}}
	cases := []struct {
		on                     []string
		failure, recovery, all bool
	}{
		{[]string{"failure"}, true, false, false},
		{[]string{"recovery"}, false, true, false},
		{[]string{"failure", "recovery"}, true, true, false},
		{[]string{"every"}, true, true, true},
	}
	for _, c := range cases {
		blk := &config.Notify{On: c.on}
		if Wants(blk, failed) != c.failure || Wants(blk, recovered) != c.recovery || Wants(blk, ok) != c.all || Wants(blk, stillFailing) != c.all {
			t.Errorf("on %v: failure %v, recovery %v, plain ok %v", c.on, Wants(blk, failed), Wants(blk, recovered), Wants(blk, ok))
		}
	}
	body, ctype := Body(&config.Notify{Format: "slack"}, failed)
	var msg map[string]string
	if err := json.Unmarshal(body, &msg); err != nil || ctype != "application/json" || !strings.Contains(msg["text"], "1 of 2 pipeline(s) failed: orders") || !strings.Contains(msg["text"], "orders: FAILED: boom") {
		t.Fatalf("slack body %s (%v)", body, err)
	}
}

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startHookReceiver serves a hookReceiver on loopback until t ends.
func startHookReceiver(t *testing.T) (*hookReceiver, *httptest.Server) {
	hooks := &hookReceiver{posts: map[string][]string{}}
	srv := httptest.NewServer(hooks)
	t.Cleanup(srv.Close)
	return hooks, srv
}

// hookReceiver is a loopback webhook: it records each post by path.
type hookReceiver struct {
	mu    sync.Mutex
	posts map[string][]string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.posts[r.URL.Path] = append(h.posts[r.URL.Path], string(b))
	h.mu.Unlock()
}

func (h *hookReceiver) got(path string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.posts[path]...)
}

// TestNotifyBlocksPostFailureRecoveryAndEveryRun: a run whose pipeline
// fails posts its --json document to the json block (on failure and
// recovery) and a Slack text to the slack block (on every run); the next,
// successful run posts a recovery; the one after, nothing to the json
// block. The webhook addresses (their paths stand for Slack's secrets)
// appear in no output. A receiver that is down costs a warning and a
// counted failure, not the run: exit 0.
func TestNotifyBlocksPostFailureRecoveryAndEveryRun(t *testing.T) {
	t.Parallel()
	hooks, srv := startHookReceiver(t)
	path := numbersFile(t, `
notify "ops" {
  url = env("OPS_HOOK")
}
notify "chat" {
  url    = file("chat-hook.txt")
  on     = ["every"]
  format = "slack"
}
pipeline "numbers" {
  from    = connector.numbers.numbers
  to      = sink.parquet.lake
  options = { count = 30, fail_at = env("FAIL_AT", "-1") }
}`)
	dir := filepath.Dir(path)
	os.WriteFile(filepath.Join(dir, "chat-hook.txt"), []byte(srv.URL+"/services/T0/CHATSECRET\n"), 0o600)
	env := []string{"OPS_HOOK=" + srv.URL + "/hooks/OPSSECRET"}
	noSecret := func(r result) {
		t.Helper()
		for _, s := range []string{"OPSSECRET", "CHATSECRET"} {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Fatalf("the output quotes a webhook address:\n%s%s", r.stdout, r.stderr)
			}
		}
	}

	r := runPipeline(t, dir, append(env, "FAIL_AT=7"), "run", "-f", path)
	noSecret(r)
	ops, chat := hooks.got("/hooks/OPSSECRET"), hooks.got("/services/T0/CHATSECRET")
	if r.code != 1 || len(ops) != 1 || len(chat) != 1 {
		t.Fatalf("a failed run: exit %d, %d ops posts, %d chat posts\n%s", r.code, len(ops), len(chat), r.stderr)
	}
	var doc struct {
		OK        bool `json:"ok"`
		Pipelines []struct {
			Name, Status, Error string
		} `json:"pipelines"`
	}
	if err := json.Unmarshal([]byte(ops[0]), &doc); err != nil || doc.OK || len(doc.Pipelines) != 1 || doc.Pipelines[0].Status != "failed" || !strings.Contains(doc.Pipelines[0].Error, "failing at row 7") {
		t.Fatalf("the ops post: %v\n%s", err, ops[0])
	}
	var msg map[string]string
	if err := json.Unmarshal([]byte(chat[0]), &msg); err != nil || !strings.Contains(msg["text"], "1 of 1 pipeline(s) failed: numbers") {
		t.Fatalf("the chat post: %v\n%s", err, chat[0])
	}

	r = runPipeline(t, dir, env, "run", "-f", path)
	noSecret(r)
	ops, chat = hooks.got("/hooks/OPSSECRET"), hooks.got("/services/T0/CHATSECRET")
	if r.code != 0 || len(ops) != 2 || len(chat) != 2 || !strings.Contains(chat[1], "recovered: numbers") {
		t.Fatalf("the recovery: exit %d, %d ops posts, %d chat posts\n%s", r.code, len(ops), len(chat), strings.Join(chat, "\n"))
	}
	r = runPipeline(t, dir, env, "run", "-f", path)
	if ops = hooks.got("/hooks/OPSSECRET"); r.code != 0 || len(ops) != 2 || len(hooks.got("/services/T0/CHATSECRET")) != 3 {
		t.Fatalf("a plain ok run: exit %d, %d ops posts", r.code, len(ops))
	}

	srv.Close() // the receiver is down
	metricsFile := filepath.Join(dir, "pipehost.prom")
	r = runPipeline(t, dir, env, "run", "-f", path, "--metrics-file", metricsFile)
	noSecret(r)
	prom, _ := os.ReadFile(metricsFile)
	if r.code != 0 || !strings.Contains(r.stderr, "the notification was not delivered") || !strings.Contains(string(prom), `pipehost_notifications_failed_total{notify="chat"} 1`) {
		t.Fatalf("a receiver that is down: exit %d\n%s\n%s", r.code, r.stderr, prom)
	}
}

// TestServePostsAFailureOnceAndItsRecovery: under serve, a pipeline that
// fails turn after turn posts one notification (when it starts failing),
// not one a turn; when it succeeds again, one more (its recovery); then
// nothing while it stays well.
func TestServePostsAFailureOnceAndItsRecovery(t *testing.T) {
	t.Parallel()
	hooks, srv := startHookReceiver(t)
	path := numbersFile(t, `
notify "ops" {
  url = env("OPS_HOOK")
}
pipeline "flaky" {
  from     = connector.numbers.numbers
  to       = sink.parquet.lake
  schedule = "@every 1s"
  options  = { count = 30, fail_at = file("failat.txt") }
}`)
	dir := filepath.Dir(path)
	os.WriteFile(filepath.Join(dir, "failat.txt"), []byte("3"), 0o644)
	_, base := serveWithMetrics(t, path, []string{"OPS_HOOK=" + srv.URL + "/hooks/OPSSECRET"})
	runs := func(status string) int {
		_, text := get(t, base+"/metrics")
		m := regexp.MustCompile(`(?m)^pipehost_runs_total\{pipeline="flaky",status="` + status + `"\} (\d+)$`).FindStringSubmatch(text)
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	waitFor := func(what string, done func() bool) {
		t.Helper()
		for end := time.Now().Add(60 * time.Second); !done(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("not after 60 s: %s", what)
			}
		}
	}
	waitFor("three failed turns", func() bool { return runs("failed") >= 3 })
	if posts := hooks.got("/hooks/OPSSECRET"); len(posts) != 1 || !strings.Contains(posts[0], `"ok": false`) && !strings.Contains(posts[0], `"ok":false`) {
		t.Fatalf("after %d failed turns: %d posts\n%s", runs("failed"), len(posts), strings.Join(posts, "\n"))
	}
	os.WriteFile(filepath.Join(dir, "failat.txt"), []byte("-1"), 0o644)
	waitFor("two successful turns", func() bool { return runs("ok") >= 2 })
	time.Sleep(300 * time.Millisecond) // the notification follows the run's metrics
	if posts := hooks.got("/hooks/OPSSECRET"); len(posts) != 2 || !strings.Contains(posts[1], `"ok":true`) && !strings.Contains(posts[1], `"ok": true`) {
		t.Fatalf("after the recovery: %d posts\n%s", len(posts), strings.Join(posts, "\n"))
	}
}

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium returns the headless browser the tests use: the one
// scripts/with-chromium.sh names (make test installs Debian's). Without
// one the test is skipped, except under CI, where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("PIPEHOST_TEST_CHROMIUM"); b != "" {
		return b
	}
	if os.Getenv("CI") != "" {
		t.Fatal("PIPEHOST_TEST_CHROMIUM is not set under CI: run the tests with `make test` (scripts/with-chromium.sh)")
	}
	t.Skip("PIPEHOST_TEST_CHROMIUM is not set: run the tests with `make test` (scripts/with-chromium.sh installs Debian's chromium)")
	return ""
}

// browse loads url in headless chromium and returns the DOM it built;
// with shot, it also saves a screenshot there.
func browse(t *testing.T, browser, url, shot string) string {
	t.Helper()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--window-size=1400,700", "--virtual-time-budget=2000"}
	if shot != "" {
		args = append(args, "--screenshot="+shot)
	} else {
		args = append(args, "--dump-dom")
	}
	cmd := exec.Command(browser, append(args, url)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, out)
	}
	return string(out)
}

// TestTheStatusPageInABrowser: serve --status with a pipeline that fails and
// one that succeeds, every second: a real browser loads /status and shows
// both, the failing one first with its error's first line (its id
// replaced), each with a plot of its last runs and its next turn; the page
// asks to be reloaded, and a later load shows more runs; /status.json holds
// the same; no secret (the numbers connector's token) is on either. The
// screenshot is kept in $PIPEHOST_ARTIFACTS (default: artifacts/ at the
// repository's root).
func TestTheStatusPageInABrowser(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	path := numbersFile(t, `
pipeline "good" {
  from     = connector.numbers.numbers
  to       = sink.parquet.lake
  schedule = "@every 1s"
  options  = { count = 20 }
}
pipeline "bad" {
  from     = connector.numbers.numbers
  to       = sink.parquet.lake
  schedule = "@every 1s"
  options  = { count = 20, fail_at = 5 }
}`)
	_, base := serveWithMetrics(t, path, nil, "--status")
	var doc struct {
		Failing   int `json:"failing"`
		Pipelines []struct {
			Name    string `json:"name"`
			Failing bool   `json:"failing"`
			Runs    []struct {
				Status string `json:"status"`
				Error  string `json:"error"`
			} `json:"runs"`
		} `json:"pipelines"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := get(t, base+"/status.json")
		if code == 200 && json.Unmarshal([]byte(body), &doc) == nil && len(doc.Pipelines) == 2 && len(doc.Pipelines[0].Runs) >= 2 && len(doc.Pipelines[1].Runs) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no two runs of each pipeline on /status.json after 60 s: %d\n%s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if doc.Failing != 1 || doc.Pipelines[0].Name != "bad" || !doc.Pipelines[0].Failing || !strings.Contains(doc.Pipelines[0].Runs[0].Error, "failing at row 5") {
		t.Fatalf("/status.json: %+v", doc)
	}

	dom := browse(t, browser, base+"/status", "")
	bad, good := strings.Index(dom, `id="pipeline-bad"`), strings.Index(dom, `id="pipeline-good"`)
	if bad < 0 || good < 0 || bad > good {
		t.Fatalf("the page does not show the failing pipeline first:\n%s", dom)
	}
	for _, want := range []string{`data-status="failed"`, `data-status="ok"`, "failing at row 5", "<svg", "rows over the last", `http-equiv="refresh"`, "next turn", "1 failing"} {
		if !strings.Contains(dom, want) {
			t.Fatalf("the page lacks %q:\n%s", want, dom)
		}
	}
	if strings.Contains(dom, "numbers-token-secret") {
		t.Fatal("the page shows the connector's token")
	}
	bars := regexp.MustCompile(`<rect class="bar`)
	first := len(bars.FindAllString(dom, -1))
	time.Sleep(2500 * time.Millisecond)
	later := browse(t, browser, base+"/status", "")
	if n := len(bars.FindAllString(later, -1)); n <= first {
		t.Fatalf("a later load shows %d bars, the first %d: the page does not follow the runs", n, first)
	}

	dir := os.Getenv("PIPEHOST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "status-page.png")
	browse(t, browser, base+"/status", shot)
	if st, err := os.Stat(shot); err != nil || st.Size() < 5000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot kept at %s", shot)
}

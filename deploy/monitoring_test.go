package deploy

import (
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"pipehost/connector"
	"pipehost/pipeline/engine"
	"pipehost/pipeline/metrics"
	"pipehost/plugins"
)

// exported returns the metric names the binary's registry exposes, with a
// histogram's _bucket, _sum and _count series, and the /metrics text.
func exported(t *testing.T) (map[string]bool, string) {
	t.Helper()
	m := metrics.New()
	m.Declare([]string{"orders"}, []string{"nuorder"})
	m.Schedule("orders", 15*time.Minute)
	m.Started("orders")
	m.Observe(engine.Result{Pipeline: "orders", Rows: 3, RowsRead: 3, Duration: time.Second})
	m.Observe(engine.Result{Pipeline: "orders", Err: &plugins.ExitedError{Connector: "nuorder", Binary: "nuorder"}})
	m.Skipped("orders")
	m.NotificationFailed("ops")
	m.ObserveRequests("nuorder", connector.Stats{
		Requests: map[string]map[string]int64{"GET /api/orders": {"2xx": 2, "5xx": 1}},
		Retries:  map[string]int64{"GET /api/orders": 1},
	})
	srv := httptest.NewServer(m.Handler(nil))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) (\S+)$`).FindAllStringSubmatch(string(body), -1) {
		names[m[1]] = true
		if m[2] == "histogram" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[m[1]+s] = true
			}
		}
	}
	return names, string(body)
}

// monitoringQueries returns every PromQL expression of the alert rules and
// of the Grafana dashboard (panels and variables), each with where it is.
func monitoringQueries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	b, err := os.ReadFile(filepath.Join("prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("prometheus/alerts.yaml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert] = r.Expr
		}
	}
	b, err = os.ReadFile(filepath.Join("grafana", "pipehost-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana/pipehost-dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for i, q := range p.Targets {
			out["panel "+p.Title+" #"+string(rune('A'+i))] = q.Expr
		}
	}
	for _, v := range dash.Templating.List {
		var q struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &q) == nil && q.Query != "" {
			out["variable "+v.Name] = q.Query
		}
	}
	return out
}

// family is the metric a series name belongs to: a histogram's _bucket,
// _sum and _count series are its own.
func family(series string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		series = strings.TrimSuffix(series, suffix)
	}
	return series
}

var metricName = regexp.MustCompile(`\bpipehost_[a-z0-9_]+`)

// unknownMetrics lists the pipehost metrics expr names that are not in
// exported, and says when it names none at all.
func unknownMetrics(expr string, exported map[string]bool) []string {
	found := metricName.FindAllString(expr, -1)
	if len(found) == 0 {
		return []string{"(no pipehost metric)"}
	}
	var bad []string
	for _, n := range found {
		if !exported[n] {
			bad = append(bad, n)
		}
	}
	return bad
}

// TestMonitoringQueriesNameExportedMetrics: every alert rule and dashboard
// query names metrics the binary exports, and every exported metric is on
// the dashboard or in a rule.
func TestMonitoringQueriesNameExportedMetrics(t *testing.T) {
	names, _ := exported(t)
	queries := monitoringQueries(t)
	if len(queries) < 10 {
		t.Fatalf("only %d queries found in the rules and the dashboard", len(queries))
	}
	used := map[string]bool{}
	for where, expr := range queries {
		if bad := unknownMetrics(expr, names); len(bad) > 0 {
			t.Errorf("%s: %s not exported by the binary (query %q)", where, strings.Join(bad, ", "), expr)
		}
		for _, n := range metricName.FindAllString(expr, -1) {
			used[family(n)] = true
		}
	}
	for n := range names {
		if strings.HasPrefix(n, metrics.Namespace+"_") && !used[family(n)] {
			t.Errorf("exported metric %s is on no dashboard panel and in no alert rule", n)
		}
	}
	// The check itself catches a misspelt name.
	if bad := unknownMetrics(`rate(pipehost_rows_writen_total[5m])`, names); !slices.Equal(bad, []string{"pipehost_rows_writen_total"}) {
		t.Fatalf("a misspelt metric was not caught: %v", bad)
	}
}

// promtool returns promtool's path; absent, the test is skipped on a
// developer's machine and fails under CI (.ci/run installs Debian's
// prometheus package).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed (apt-get install prometheus); .ci/run installs it")
		}
		t.Skip("promtool is not installed (apt-get install prometheus)")
	}
	return p
}

// TestPromtoolAcceptsTheRulesAndTheMetrics runs `promtool check rules` on
// the alert rules and `promtool check metrics` on /metrics and on the
// textfile `run --metrics-file` writes.
func TestPromtoolAcceptsTheRulesAndTheMetrics(t *testing.T) {
	bin := promtool(t)
	if out, err := exec.Command(bin, "check", "rules", filepath.Join("prometheus", "alerts.yaml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	_, text := exported(t)
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics on /metrics: %v\n%s", err, out)
	}
	m := metrics.New()
	m.Declare([]string{"orders"}, []string{"nuorder"})
	m.Observe(engine.Result{Pipeline: "orders", Rows: 3, Err: errors.New("boom")})
	path := filepath.Join(t.TempDir(), "pipehost.prom")
	if err := m.WriteTextfile(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd = exec.Command(bin, "check", "metrics")
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics on the textfile: %v\n%s", err, out)
	}
}

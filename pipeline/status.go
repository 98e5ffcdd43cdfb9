package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"pipehost/pipeline/engine"
	"pipehost/pipeline/state"
)

// The status page of serve (--status): every scheduled pipeline with its
// schedule, last run, next turn and a plot of its last runs' rows and
// durations, failing pipelines first, rendered on the server (inline SVG, no
// script, nothing loaded from elsewhere) and refreshed by the browser every
// statusRefresh; the same data as JSON at /status.json. It shows no secret,
// DSN or NuOrder id: pipeline names, schedules, counts, times and the first
// line of an error, with every 24-hex id in it replaced.

//go:embed status.html
var statusHTML string

var statusTemplate = template.Must(template.New("status").Parse(statusHTML))

// statusRefresh is how often the page reloads itself.
const statusRefresh = 10 * time.Second

// statusBoard is what serve knows of its pipelines, for the page.
type statusBoard struct {
	store     state.Store
	mu        sync.Mutex
	pipelines []*statusSource
}

// statusSource is one scheduled pipeline.
type statusSource struct {
	name, schedule string
	sched          cron.Schedule
	running        bool
}

func (b *statusBoard) add(name, schedule string, sched cron.Schedule) *statusSource {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &statusSource{name: name, schedule: schedule, sched: sched}
	b.pipelines = append(b.pipelines, s)
	return s
}

func (b *statusBoard) setRunning(s *statusSource, running bool) {
	b.mu.Lock()
	s.running = running
	b.mu.Unlock()
}

// statusRun is one run as the page shows it.
type statusRun struct {
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Status     string    `json:"status"`
	Rows       int64     `json:"rows"`
	DurationMS int64     `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
}

// statusPipeline is one pipeline as the page and status.json show it.
type statusPipeline struct {
	Name     string      `json:"name"`
	Schedule string      `json:"schedule"`
	Running  bool        `json:"running"`
	NextTurn time.Time   `json:"next_turn"`
	Failing  bool        `json:"failing"`
	Last     *statusRun  `json:"last_run,omitempty"`
	Runs     []statusRun `json:"runs"` // oldest first

	Class, LastTook      string        `json:"-"`
	RowsSVG, DurationSVG template.HTML `json:"-"`
}

// statusDoc is the whole page's data.
type statusDoc struct {
	FormatVersion string           `json:"format_version"`
	Generated     string           `json:"generated"`
	Failing       int              `json:"failing"`
	Pipelines     []statusPipeline `json:"pipelines"`

	RefreshSeconds int `json:"-"`
}

// hexIDs finds NuOrder (MongoDB) ids in error text.
var hexIDs = regexp.MustCompile(`[0-9a-fA-F]{24}`)

// pageError is an error as the page shows it: its first line, ids
// replaced, at most 300 characters.
func pageError(msg string) string {
	msg, _, _ = strings.Cut(msg, "\n")
	msg = hexIDs.ReplaceAllString(msg, "<id>")
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}

// doc reads the last runs of every pipeline from the state store.
func (b *statusBoard) doc(now time.Time) statusDoc {
	b.mu.Lock()
	sources := make([]statusSource, len(b.pipelines))
	for i, s := range b.pipelines {
		sources[i] = *s
	}
	b.mu.Unlock()
	d := statusDoc{FormatVersion: "1", Generated: now.UTC().Format(time.RFC3339), RefreshSeconds: int(statusRefresh / time.Second)}
	for _, s := range sources {
		p := statusPipeline{Name: s.name, Schedule: s.schedule, Running: s.running, NextTurn: s.sched.Next(now).UTC(), Runs: []statusRun{}}
		var runs []state.Run
		if b.store != nil {
			entries, _ := b.store.List(s.name)
			for _, e := range entries {
				got := e.Runs
				if len(got) == 0 && e.LastRun != nil {
					got = []state.Run{*e.LastRun}
				}
				if len(got) > len(runs) {
					runs = got
				}
			}
		}
		sort.Slice(runs, func(i, j int) bool { return runs[i].FinishedAt.Before(runs[j].FinishedAt) })
		for _, r := range runs {
			p.Runs = append(p.Runs, statusRun{StartedAt: r.StartedAt.UTC(), FinishedAt: r.FinishedAt.UTC(), Status: r.Status, Rows: r.Rows,
				DurationMS: r.FinishedAt.Sub(r.StartedAt).Milliseconds(), Error: pageError(r.Error)})
		}
		p.Class = "none"
		if n := len(p.Runs); n > 0 {
			last := p.Runs[n-1]
			p.Last, p.Failing, p.Class = &last, last.Status != "ok", last.Status
			if p.Failing {
				p.Class = "failed"
			}
			p.LastTook = engine.FormatDuration(time.Duration(last.DurationMS) * time.Millisecond)
		}
		p.RowsSVG, p.DurationSVG = sparkBars(p.Runs, func(r statusRun) float64 { return float64(r.Rows) }, "rows"),
			sparkBars(p.Runs, func(r statusRun) float64 { return float64(r.DurationMS) / 1000 }, "seconds")
		if p.Failing {
			d.Failing++
		}
		d.Pipelines = append(d.Pipelines, p)
	}
	sort.SliceStable(d.Pipelines, func(i, j int) bool {
		if d.Pipelines[i].Failing != d.Pipelines[j].Failing {
			return d.Pipelines[i].Failing
		}
		return d.Pipelines[i].Name < d.Pipelines[j].Name
	})
	return d
}

// sparkBars draws one bar per run (failed runs in red), scaled to the
// largest value, as inline SVG with a title per bar.
func sparkBars(runs []statusRun, value func(statusRun) float64, unit string) template.HTML {
	const w, h = 180, 36
	if len(runs) == 0 {
		return ""
	}
	top := 0.0
	for _, r := range runs {
		top = max(top, value(r))
	}
	bw := float64(w) / float64(len(runs))
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="spark" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s over the last %d runs">`, w, h, w, h, unit, len(runs))
	for i, r := range runs {
		v := value(r)
		bh := 1.0
		if top > 0 {
			bh = max(1, v/top*(h-2))
		}
		class := "bar"
		if r.Status != "ok" {
			class = "bar failed"
		}
		fmt.Fprintf(&sb, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %s %s</title></rect>`,
			class, float64(i)*bw, h-bh, max(bw-1, 1), bh, template.HTMLEscapeString(r.FinishedAt.Format(time.RFC3339)), formatValue(v), unit)
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

func formatValue(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprint(int64(v))
	}
	return fmt.Sprintf("%.2f", v)
}

// ServeHTTP serves the page at /status and its data at /status.json.
func (b *statusBoard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := b.doc(time.Now())
	w.Header().Set("Cache-Control", "no-store")
	if strings.HasSuffix(r.URL.Path, ".json") {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(d)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'")
	statusTemplate.Execute(w, d)
}

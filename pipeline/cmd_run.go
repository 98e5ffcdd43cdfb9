package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"pipehost/connector"
	"pipehost/pipeline/engine"
	"pipehost/pipeline/metrics"
	"pipehost/pipeline/state"
)

// cmdRun runs the selected pipelines once, in file order, and prints the
// summary; its exit code says how they ended (see summarize).
func cmdRun(ctx context.Context, o options, logger hclog.Logger, stdout, stderr io.Writer) int {
	if o.parallel < 1 {
		fmt.Fprintf(stderr, "Error: --parallel must be 1 or more, got %d\n", o.parallel)
		return exitUsage
	}
	// On a terminal that can move its cursor (not TERM=dumb), and unless
	// JSON was asked for, a live display shows
	// each running pipeline; log lines are printed above it, as text.
	// Elsewhere (cron, CI, a file) only log lines are written.
	var display *liveDisplay
	if isTerminal(stderr) && !dumbTerminal() && !o.json && o.logFormat != "json" {
		display = newLiveDisplay(stderr)
		o.logFormat, o.watcher = "text", display
		if l, err := newLogger(o, display); err == nil {
			logger = l
		}
	}
	h, selected, code := loadSelected(ctx, o, logger, stderr)
	if code != exitOK {
		if display != nil {
			display.Wait()
		}
		return code
	}
	defer h.Close()
	previous := lastFailed(h, selected)
	results := h.RunAll(ctx, selected, engine.RunOptions{FullRefresh: o.fullRefresh, Parallel: o.parallel})
	if display != nil {
		display.Wait()
	}
	code = summarize(stdout, stderr, results, o.json)
	var m *metrics.Registry
	if o.metricsFile != "" {
		m = metrics.New()
	}
	notifyRun(ctx, h.File, logger, results, previous, code, m)
	if o.metricsFile != "" {
		m.Declare(namesOf(selected), connectorNames(h.File))
		for _, r := range results {
			m.Observe(r)
		}
		for name, st := range h.ConnectorStats() {
			m.ObserveRequests(name, st)
		}
		if err := m.WriteTextfile(o.metricsFile); err != nil {
			// The data moved as the summary says; monitoring will not
			// see it: said, and the run fails, so that cron notices.
			fmt.Fprintf(stderr, "Error: writing --metrics-file: %v\n", err)
			if code == exitOK {
				code = exitFailed
			}
		}
	}
	return code
}

// runDocument is the run's --json document (what notify blocks post).
func runDocument(results []engine.Result, code int) runJSON {
	out := runJSON{FormatVersion: jsonFormat, OK: code == exitOK, ExitCode: code, FinishedAt: time.Now().UTC(), Pipelines: []resultJSON{}}
	for _, r := range results {
		out.Pipelines = append(out.Pipelines, newResultJSON(r))
	}
	return out
}

// summarize prints the run's table and names every failed pipeline.
func summarize(stdout, stderr io.Writer, results []engine.Result, asJSON bool) int {
	var failed []string
	locked, interrupted := 0, 0
	for _, r := range results {
		if r.Err == nil {
			continue
		}
		failed = append(failed, r.Pipeline)
		if errors.Is(r.Err, state.ErrLocked) {
			locked++
		}
		if errors.Is(r.Err, engine.ErrInterrupted) {
			interrupted++
		}
	}
	code := exitOK
	switch {
	case len(failed) == 0:
	case interrupted > 0:
		code = exitInterrupted
	case locked == len(failed):
		code = exitLocked
	default:
		code = exitFailed
	}
	if asJSON {
		writeJSON(stdout, runDocument(results, code))
	} else {
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PIPELINE\tFROM\tTO\tROWS\tREJECTED\tREQUESTS\tRETRIES\tTIME\tSTATUS")
		for _, r := range results {
			status := "ok"
			if r.Err != nil {
				status = "FAILED"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", r.Pipeline, r.Stream, r.Sink, r.Rows, r.Rejected(), r.Requests, r.Retries, engine.FormatDuration(r.Duration), status)
		}
		tw.Flush()
		for _, r := range results {
			writeActions(stdout, r)
			if r.Push != nil && r.Push.RejectsFile != "" {
				fmt.Fprintf(stdout, "%s: %d rejected row(s), with row numbers and reasons, in %s\n", r.Pipeline, r.Push.Rejected, r.Push.RejectsFile)
			}
		}
	}
	if len(failed) == 0 {
		return code
	}
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(stderr, "Error: pipeline %s failed: %v\n", r.Pipeline, r.Err)
		}
	}
	fmt.Fprintf(stderr, "%d of %d pipeline(s) failed: %s\n", len(failed), len(results), strings.Join(failed, ", "))
	return code
}

// writeActions prints what a push did (or would do), one line per action.
func writeActions(w io.Writer, r engine.Result) {
	if r.Push == nil || len(r.Push.Summary.Actions) == 0 {
		return
	}
	for _, a := range sortedActions(r) {
		fmt.Fprintf(w, "%s: %s: %d\n", r.Pipeline, a.What, a.Count)
	}
}

// sortedActions returns a push's summary lines in alphabetical order (none
// for a pull).
func sortedActions(r engine.Result) []connector.Action {
	if r.Push == nil {
		return nil
	}
	actions := append([]connector.Action(nil), r.Push.Summary.Actions...)
	sort.Slice(actions, func(i, j int) bool { return actions[i].What < actions[j].What })
	return actions
}

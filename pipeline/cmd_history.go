package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"pipehost/pipeline/config"
	"pipehost/pipeline/state"
)

// cmdHistory lists the last runs of the selected pipelines (every pipeline
// of the file when none is named), newest first, from the state store. No
// plugin is started.
func cmdHistory(o options, stdout, stderr io.Writer) int {
	f, diags := config.Load(o.file)
	if diags.HasErrors() {
		config.WriteDiagnostics(stderr, f, diags, f.Sensitive(), colorful(stderr))
		return exitUsage
	}
	selected := f.Pipelines
	if len(o.args) > 0 {
		names, err := selectPipelines(f, o.args)
		if err != nil {
			fmt.Fprintf(stderr, "Error: %s: %v\n", o.file, err)
			return exitUsage
		}
		selected = nil
		for _, n := range names {
			selected = append(selected, f.Pipeline(n))
		}
	}
	store, err := openStore(context.Background(), f)
	if err != nil {
		fmt.Fprintf(stderr, "Error: the state store cannot be used: %v\n", err)
		return exitFailed
	}
	defer store.Close()
	out := historyJSON{FormatVersion: jsonFormat, Runs: []runRecordJSON{}}
	for _, pl := range selected {
		// The state of a pull is kept under its source stream, of a push
		// under the connector's sink stream (as the engine keeps them).
		stream := pl.From.Stream
		if pl.To.Kind == "connector" {
			stream = pl.To.Stream
		}
		e, err := store.Get(pl.Name, stream)
		if err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return exitFailed
		}
		for _, r := range e.Runs {
			out.Runs = append(out.Runs, newRunRecordJSON(pl.Name, stream, r))
		}
	}
	if o.json {
		writeJSON(stdout, out)
		return exitOK
	}
	if len(out.Runs) == 0 {
		fmt.Fprintln(stdout, "No runs recorded yet.")
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PIPELINE\tSTARTED\tDURATION\tROWS\tSTATUS\tERROR")
	for _, r := range out.Runs {
		status := r.Status
		if r.FullRefresh {
			status += " (full refresh)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.Pipeline, r.StartedAt.Format(time.RFC3339),
			(time.Duration(r.DurationMS) * time.Millisecond).String(), r.Rows, status, firstLine(r.Error, 100))
	}
	tw.Flush()
	return exitOK
}

// firstLine is s's first line, cut to at most n bytes, for a table cell.
func firstLine(s string, n int) string {
	for i, c := range s {
		if c == '\n' {
			s = s[:i]
			break
		}
	}
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// historyJSON is `history --json`.
type historyJSON struct {
	FormatVersion string          `json:"format_version"`
	Runs          []runRecordJSON `json:"runs"` // per pipeline in file order, newest first
}

// runRecordJSON is one recorded run.
type runRecordJSON struct {
	Pipeline    string    `json:"pipeline"`
	Stream      string    `json:"stream"`
	StartedAt   time.Time `json:"started_at"`
	FinishedAt  time.Time `json:"finished_at"`
	DurationMS  int64     `json:"duration_ms"`
	Status      string    `json:"status"` // "ok" or "failed"
	Rows        int64     `json:"rows"`
	FullRefresh bool      `json:"full_refresh,omitempty"`
	Error       string    `json:"error,omitempty"`
}

func newRunRecordJSON(pipeline, stream string, r state.Run) runRecordJSON {
	return runRecordJSON{Pipeline: pipeline, Stream: stream, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		DurationMS: r.FinishedAt.Sub(r.StartedAt).Milliseconds(), Status: r.Status, Rows: r.Rows, FullRefresh: r.FullRefresh, Error: r.Error}
}

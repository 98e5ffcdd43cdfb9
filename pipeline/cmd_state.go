package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"pipehost/pipeline/config"
	"pipehost/pipeline/state"
)

// cmdState shows or resets stored state. It needs the pipeline file only to
// find the state store; no plugin is started.
func cmdState(o options, stdout, stderr io.Writer) int {
	if len(o.args) == 0 || (o.args[0] != "show" && o.args[0] != "reset") {
		fmt.Fprintf(stderr, "Error: usage: pipeline state show [PIPELINE] | pipeline state reset PIPELINE [STREAM]\n")
		return exitUsage
	}
	f, diags := config.Load(o.file)
	if diags.HasErrors() {
		config.WriteDiagnostics(stderr, f, diags, nil, isTerminal(stderr))
		return exitUsage
	}
	store, err := openStore(context.Background(), f)
	if err != nil {
		fmt.Fprintf(stderr, "Error: the state store cannot be used: %v\n", err)
		return exitFailed
	}
	defer store.Close()
	args := o.args[1:]
	if o.args[0] == "show" {
		if len(args) > 1 {
			fmt.Fprintf(stderr, "Error: state show takes at most one pipeline name\n")
			return exitUsage
		}
		name := ""
		if len(args) == 1 {
			name = args[0]
		}
		if name != "" && f.Pipeline(name) == nil {
			fmt.Fprintf(stderr, "Error: %s declares no pipeline %q\n", o.file, name)
			return exitUsage
		}
		all, err := store.List(name)
		if err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return exitFailed
		}
		entries := inFileOrder(f, all)
		if o.json {
			writeJSON(stdout, newStateJSON(entries))
			return exitOK
		}
		if len(entries) == 0 {
			fmt.Fprintln(stdout, "No state yet.")
			return exitOK
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PIPELINE\tSTREAM\tCHECKPOINT\tUPDATED\tLAST RUN")
		for _, e := range entries {
			cp, updated, last := "-", "-", "-"
			if len(e.Checkpoint) > 0 {
				cp = state.Summary(e.Bytes())
				if o.rawCheckpoints {
					cp = state.Describe(e.Bytes())
				}
			}
			if !e.UpdatedAt.IsZero() {
				updated = e.UpdatedAt.Format(time.RFC3339)
			}
			if r := e.LastRun; r != nil {
				last = fmt.Sprintf("%s, %d rows, %s", r.Status, r.Rows, r.FinishedAt.Format(time.RFC3339))
				if r.FullRefresh {
					last += ", full refresh"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Pipeline, e.Stream, cp, updated, last)
		}
		tw.Flush()
		return exitOK
	}
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintf(stderr, "Error: usage: pipeline state reset PIPELINE [STREAM]\n")
		return exitUsage
	}
	if f.Pipeline(args[0]) == nil {
		fmt.Fprintf(stderr, "Error: %s declares no pipeline %q\n", o.file, args[0])
		return exitUsage
	}
	unlock, err := store.Lock(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "Error: cannot reset while the pipeline runs: %v\n", err)
		return exitFailed
	}
	defer unlock()
	stream := ""
	if len(args) == 2 {
		stream = args[1]
	}
	if err := store.Reset(args[0], stream); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitFailed
	}
	if stream == "" {
		fmt.Fprintf(stdout, "Reset the state of pipeline %s: its next run reads every stream from the beginning and replaces the rows its destination holds.\n", args[0])
	} else {
		fmt.Fprintf(stdout, "Reset the state of stream %s of pipeline %s: its next run reads it from the beginning and replaces the rows its destination holds.\n", stream, args[0])
	}
	return exitOK
}

// inFileOrder keeps the entries of the pipelines the file declares, in the
// file's order (a state store may hold other files' pipelines: a shared
// PostgreSQL store, or a folder from before each file had its own).
func inFileOrder(f *config.File, entries []state.Entry) []state.Entry {
	rank := map[string]int{}
	for i, pl := range f.Pipelines {
		rank[pl.Name] = i
	}
	var out []state.Entry
	for _, e := range entries {
		if _, ok := rank[e.Pipeline]; ok {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].Pipeline] < rank[out[j].Pipeline] })
	return out
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"pipehost/pipeline/config"
	"pipehost/pipeline/state"
)

// cmdState shows or resets stored state. It needs the pipeline file only to
// find the state store; no plugin is started.
func cmdState(o options, stdout, stderr io.Writer) int {
	if len(o.args) == 0 || (o.args[0] != "show" && o.args[0] != "reset" && o.args[0] != "export" && o.args[0] != "import") {
		fmt.Fprintf(stderr, "Error: usage: pipeline state show [PIPELINE] | reset PIPELINE [STREAM] | export [PIPELINE...] | import FILE\n")
		return exitUsage
	}
	f, diags := config.Load(o.file)
	if diags.HasErrors() {
		config.WriteDiagnostics(stderr, f, diags, f.Sensitive(), colorful(stderr))
		return exitUsage
	}
	store, err := openStore(context.Background(), f)
	if err != nil {
		fmt.Fprintf(stderr, "Error: the state store cannot be used: %v\n", err)
		return exitFailed
	}
	defer store.Close()
	args := o.args[1:]
	switch o.args[0] {
	case "export":
		return stateExport(f, store, args, o, stdout, stderr)
	case "import":
		return stateImport(f, store, args, o, stdout, stderr)
	}
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

// stateDoc is what `state export` writes and `state import` reads: every
// entry of the exported pipelines, whole (checkpoints, push ledgers,
// bindings, run history), so state moves between stores (a laptop's folder
// to PostgreSQL for Kubernetes) without a pipeline starting over.
type stateDoc struct {
	FormatVersion string          `json:"format_version"`
	Store         string          `json:"store"` // the id of the store exported from
	Entries       []stateDocEntry `json:"entries"`
}

type stateDocEntry struct {
	Pipeline string `json:"pipeline"`
	Stream   string `json:"stream"`
	state.Entry
}

// stateExport writes the state of the file's pipelines (or those named) as
// one JSON document on stdout.
func stateExport(f *config.File, store state.Store, names []string, o options, stdout, stderr io.Writer) int {
	for _, n := range names {
		if f.Pipeline(n) == nil {
			fmt.Fprintf(stderr, "Error: %s declares no pipeline %q\n", o.file, n)
			return exitUsage
		}
	}
	all, err := store.List("")
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitFailed
	}
	doc := stateDoc{FormatVersion: jsonFormat, Store: store.ID(), Entries: []stateDocEntry{}}
	for _, e := range inFileOrder(f, all) {
		if len(names) > 0 && !slices.Contains(names, e.Pipeline) {
			continue
		}
		doc.Entries = append(doc.Entries, stateDocEntry{Pipeline: e.Pipeline, Stream: e.Stream, Entry: e})
	}
	writeJSON(stdout, doc)
	return exitOK
}

// stateImport reads what stateExport wrote (a file, or - for stdin) into
// the file's store: the entries of the pipelines the file declares, each
// under its pipeline's lock. A stream that already has other state here is
// a conflict, and nothing is imported, unless --replace.
func stateImport(f *config.File, store state.Store, args []string, o options, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "Error: usage: pipeline state import FILE (a document of pipeline state export; - reads stdin)\n")
		return exitUsage
	}
	var in io.Reader = os.Stdin
	if args[0] != "-" {
		fh, err := os.Open(args[0])
		if err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return exitUsage
		}
		defer fh.Close()
		in = fh
	}
	var doc stateDoc
	dec := json.NewDecoder(io.LimitReader(in, 256<<20))
	if err := dec.Decode(&doc); err != nil || doc.FormatVersion != jsonFormat {
		fmt.Fprintf(stderr, "Error: %s is not a document of `pipeline state export` (format_version %s): %v\n", args[0], jsonFormat, err)
		return exitUsage
	}
	var take []stateDocEntry
	var skipped, conflicts []string
	for _, e := range doc.Entries {
		if f.Pipeline(e.Pipeline) == nil {
			skipped = append(skipped, e.Pipeline)
			continue
		}
		here, err := store.Get(e.Pipeline, e.Stream)
		if err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return exitFailed
		}
		if here.Bytes() != nil && string(here.Bytes()) != string(e.Entry.Bytes()) {
			conflicts = append(conflicts, e.Pipeline+"/"+e.Stream)
		}
		take = append(take, e)
	}
	if len(conflicts) > 0 && !o.replace {
		fmt.Fprintf(stderr, "Error: this state store already holds other checkpoints for %s; nothing was imported. Import anyway with `%s state import --replace %s`, which replaces them\n",
			strings.Join(conflicts, ", "), o.command, shellQuote(args[0]))
		return exitFailed
	}
	for _, e := range take {
		unlock, err := store.Lock(e.Pipeline)
		if err != nil {
			fmt.Fprintf(stderr, "Error: cannot import while pipeline %s runs: %v\n", e.Pipeline, err)
			return exitFailed
		}
		e.Entry.Pipeline, e.Entry.Stream = e.Pipeline, e.Stream
		err = store.Put(e.Entry)
		unlock()
		if err != nil {
			fmt.Fprintf(stderr, "Error: importing %s/%s: %v\n", e.Pipeline, e.Stream, err)
			return exitFailed
		}
	}
	fmt.Fprintf(stdout, "Imported the state of %d streams from store %s.\n", len(take), doc.Store)
	if len(skipped) > 0 {
		slices.Sort(skipped)
		fmt.Fprintf(stdout, "Not imported (not declared in %s): %s\n", o.file, strings.Join(slices.Compact(skipped), ", "))
	}
	return exitOK
}

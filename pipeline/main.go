// Command pipeline runs the pipelines declared in an HCL file: it starts
// each connector as a plugin process and moves its streams into sinks.
//
//	pipeline validate [-f FILE] [--sandbox]
//	pipeline streams  [-f FILE]
//	pipeline check    [-f FILE] [--sandbox]
//	pipeline plan     [-f FILE] [--sandbox] [--full-refresh] [NAME...]
//	pipeline run      [-f FILE] [--sandbox] [--full-refresh] [NAME...]
//	pipeline serve    [-f FILE] [--sandbox] [NAME...]
//	pipeline state show  [-f FILE] [PIPELINE]
//	pipeline state reset [-f FILE] PIPELINE [STREAM]
//
// Exit status: 0 when everything asked for succeeded, 1 when a pipeline
// failed, 2 when the file or the command line is wrong.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/mattn/go-isatty"

	"pipehost/connector"
	"pipehost/pipeline/config"
	"pipehost/pipeline/engine"
	"pipehost/pipeline/state"

	// Destinations, registered by import.
	_ "pipehost/sinks/csv"
	_ "pipehost/sinks/jsonl"
	_ "pipehost/sinks/parquet"
	_ "pipehost/sinks/postgres"
)

const usage = `Usage: pipeline COMMAND [options] [NAME...]

Commands:
  validate   check the pipeline file, the connectors' configs and every reference
  streams    list each connector's streams with their columns and types
  check      ask each connector whether the service accepts its credentials (one request each)
  plan       show what run would do, sending nothing (pushes into a connector are dry-run)
  run        run the pipelines (all, or those NAMEd) once
  serve      run each pipeline on its schedule until stopped (SIGINT/SIGTERM)
  state show [PIPELINE]            show the stored checkpoints and last runs
  state reset PIPELINE [STREAM]    forget a pipeline's checkpoints: its next run reads everything

Options:
  -f, --file FILE     pipeline file (default ./pipeline.hcl)
  --sandbox           run connectors against their built-in sandbox (demo data)
  --full-refresh      (run) read every stream from the beginning, ignoring checkpoints
  --log-level LEVEL   trace, debug, info (default), warn, error
  --log-format FMT    text or json (default: text on a terminal, json otherwise)
  --progress-every D  how often a running pipeline logs its rows and rows/s (default 10s)
`

// exit codes
const (
	exitOK     = 0
	exitFailed = 1 // a pipeline failed, or the state store cannot be reached
	exitUsage  = 2 // the file or the command line is wrong
	// exitLocked: every failure was a pipeline already running elsewhere
	// (its lock is held), which a scheduler may simply retry later.
	exitLocked = 3
	// exitInterrupted: stopped by SIGINT or SIGTERM (128 + SIGINT).
	exitInterrupted = 130
	defaultFile     = "pipeline.hcl"
)

type options struct {
	progress    time.Duration
	file        string
	sandbox     bool
	fullRefresh bool
	logLevel    string
	logFormat   string
	args        []string
}

func parseArgs(args []string, stderr io.Writer) (options, error) {
	o := options{file: defaultFile, logLevel: "info"}
	fs := flag.NewFlagSet("pipeline", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.file, "f", o.file, "")
	fs.StringVar(&o.file, "file", o.file, "")
	fs.BoolVar(&o.sandbox, "sandbox", false, "")
	fs.BoolVar(&o.fullRefresh, "full-refresh", false, "")
	fs.DurationVar(&o.progress, "progress-every", engine.DefaultProgressEvery, "")
	fs.StringVar(&o.logLevel, "log-level", o.logLevel, "")
	fs.StringVar(&o.logFormat, "log-format", "", "")
	// Flags and names may be interleaved: parse, take a name, go on.
	for {
		if err := fs.Parse(args); err != nil {
			return o, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return o, nil
		}
		o.args = append(o.args, args[0])
		args = args[1:]
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd := args[0]
	o, err := parseArgs(args[1:], stderr)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n\n%s", err, usage)
		return exitUsage
	}
	logger, err := newLogger(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitUsage
	}
	ctx, stop := signalContext()
	defer stop()
	switch cmd {
	case "validate":
		return cmdValidate(ctx, o, logger, stdout, stderr)
	case "streams":
		return cmdStreams(ctx, o, logger, stdout, stderr)
	case "check":
		return cmdCheck(ctx, o, logger, stdout, stderr)
	case "run":
		return cmdRun(ctx, o, logger, stdout, stderr)
	case "plan":
		return cmdPlan(ctx, o, logger, stdout, stderr)
	case "serve":
		return cmdServe(ctx, o, logger, stderr)
	case "state":
		return cmdState(o, stdout, stderr)
	}
	fmt.Fprintf(stderr, "Error: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

func newLogger(o options, stderr io.Writer) (hclog.Logger, error) {
	level := hclog.LevelFromString(o.logLevel)
	if level == hclog.NoLevel {
		return nil, fmt.Errorf("--log-level %q is not one of trace, debug, info, warn, error", o.logLevel)
	}
	jsonFormat := !isTerminal(stderr)
	switch o.logFormat {
	case "":
	case "json":
		jsonFormat = true
	case "text":
		jsonFormat = false
	default:
		return nil, fmt.Errorf("--log-format %q is not text or json", o.logFormat)
	}
	return hclog.New(&hclog.LoggerOptions{
		Name: "pipeline", Level: level, Output: stderr, JSONFormat: jsonFormat,
		Color: hclog.AutoColor, TimeFormat: time.RFC3339,
		// go-plugin reports every clean plugin exit at info level: noise
		// for a data engineer. Unclean exits are logged as errors still.
		Exclude: func(level hclog.Level, msg string, _ ...interface{}) bool {
			return level <= hclog.Info && msg == "plugin process exited"
		},
	}), nil
}

// load reads the pipeline file and starts what it declares, printing
// diagnostics. It returns exitOK with a host to close, or the exit code to
// end with: exitUsage for a wrong file, exitFailed when the state store
// cannot be used.
func load(ctx context.Context, o options, logger hclog.Logger, stderr io.Writer, eo engine.Options) (*engine.Host, int) {
	f, diags := config.Load(o.file)
	if diags.HasErrors() {
		config.WriteDiagnostics(stderr, f, diags, nil, isTerminal(stderr))
		return nil, exitUsage
	}
	if eo.Only != nil {
		for _, name := range eo.Only {
			if f.Pipeline(name) == nil {
				var names []string
				for _, p := range f.Pipelines {
					names = append(names, p.Name)
				}
				fmt.Fprintf(stderr, "Error: %s declares no pipeline %q (it has: %s)\n", o.file, name, strings.Join(names, ", "))
				return nil, exitUsage
			}
		}
	}
	eo.Sandbox, eo.Logger, eo.ProgressEvery = o.sandbox, logger, o.progress
	if eo.State == nil && !eo.Catalog {
		store, err := openStore(ctx, f)
		if err != nil {
			fmt.Fprintf(stderr, "Error: the state store cannot be used: %v\n", err)
			return nil, exitFailed
		}
		eo.State = store
	}
	h, more := engine.Open(ctx, f, eo)
	diags = append(diags, more...)
	config.WriteDiagnostics(stderr, f, diags, h.Sensitive(), isTerminal(stderr))
	if diags.HasErrors() {
		return nil, exitUsage
	}
	return h, exitOK
}

func cmdValidate(ctx context.Context, o options, logger hclog.Logger, stdout, stderr io.Writer) int {
	h, code := load(ctx, o, logger, stderr, engine.Options{})
	if code != exitOK {
		return code
	}
	defer h.Close()
	f := h.File
	fmt.Fprintf(stdout, "%s is valid: %d connector(s), %d sink(s), %d pipeline(s).\n", o.file, len(f.Connectors), len(f.Sinks), len(f.Pipelines))
	return exitOK
}

func cmdStreams(ctx context.Context, o options, logger hclog.Logger, stdout, stderr io.Writer) int {
	// The catalog needs no credentials: without --sandbox the connectors
	// are not configured, so their streams show as unconfigured.
	h, code := load(ctx, o, logger, stderr, engine.Options{Catalog: !o.sandbox})
	if code != exitOK {
		return code
	}
	defer h.Close()
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	for _, fc := range h.File.Connectors {
		c := h.Connectors[fc.Name]
		fmt.Fprintf(tw, "connector %s (%s %s)\n", c.Name, c.Info.Name, c.Info.Version)
		for _, st := range c.Streams {
			fmt.Fprintf(tw, "\n  %s.%s\t%s stream", c.Name, st.Name, st.Kind)
			if len(st.PrimaryKey) > 0 {
				fmt.Fprintf(tw, "\tkey: %s", strings.Join(st.PrimaryKey, ", "))
			}
			if st.CursorField != "" {
				fmt.Fprintf(tw, "\tcursor: %s", st.CursorField)
			}
			fmt.Fprintln(tw)
			if st.Description != "" {
				fmt.Fprintf(tw, "  %s\n", st.Description)
			}
			if st.Disabled != "" {
				fmt.Fprintf(tw, "  DISABLED: %s\n", st.Disabled)
			}
			for _, fld := range st.Schema.Fields() {
				null := ""
				if !fld.Nullable {
					null = "not null"
				}
				fmt.Fprintf(tw, "    %s\t%s\t%s\n", fld.Name, null, fld.Type)
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	return exitOK
}

// loadSelected loads the file for the pipelines named on the command line
// (all when none is) and returns them in order.
func loadSelected(ctx context.Context, o options, logger hclog.Logger, stderr io.Writer) (*engine.Host, []*config.Pipeline, int) {
	eo := engine.Options{}
	if len(o.args) > 0 {
		eo.Only = o.args
	}
	h, code := load(ctx, o, logger, stderr, eo)
	if code != exitOK {
		return nil, nil, code
	}
	selected := h.File.Pipelines
	if eo.Only != nil {
		selected = nil
		for _, name := range eo.Only {
			selected = append(selected, h.File.Pipeline(name))
		}
	}
	return h, selected, exitOK
}

func cmdRun(ctx context.Context, o options, logger hclog.Logger, stdout, stderr io.Writer) int {
	h, selected, code := loadSelected(ctx, o, logger, stderr)
	if code != exitOK {
		return code
	}
	defer h.Close()
	var results []engine.Result
	for _, pl := range selected {
		if ctx.Err() != nil {
			results = append(results, engine.Result{Pipeline: pl.Name, Stream: pl.From.String(), Sink: pl.To.String(), Err: fmt.Errorf("not started: %w", engine.ErrInterrupted)})
			continue
		}
		results = append(results, h.Run(ctx, pl, engine.RunOptions{FullRefresh: o.fullRefresh}))
	}
	return summarize(stdout, stderr, results)
}

// summarize prints the run's table and names every failed pipeline.
func summarize(stdout, stderr io.Writer, results []engine.Result) int {
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PIPELINE\tFROM\tTO\tROWS\tREJECTED\tTIME\tSTATUS")
	var failed []string
	for _, r := range results {
		status := "ok"
		if r.Err != nil {
			status = "FAILED"
			failed = append(failed, r.Pipeline)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", r.Pipeline, r.Stream, r.Sink, r.Rows, r.Rejected, r.Duration.Round(time.Millisecond), status)
	}
	tw.Flush()
	for _, r := range results {
		writeActions(stdout, r)
		if r.RejectsFile != "" {
			fmt.Fprintf(stdout, "%s: %d rejected row(s), with row numbers and reasons, in %s\n", r.Pipeline, r.Rejected, r.RejectsFile)
		}
	}
	if len(failed) == 0 {
		return exitOK
	}
	locked, interrupted := 0, 0
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(stderr, "Error: pipeline %s failed: %v\n", r.Pipeline, r.Err)
			if errors.Is(r.Err, state.ErrLocked) {
				locked++
			}
			if errors.Is(r.Err, engine.ErrInterrupted) {
				interrupted++
			}
		}
	}
	fmt.Fprintf(stderr, "%d of %d pipeline(s) failed: %s\n", len(failed), len(results), strings.Join(failed, ", "))
	switch {
	case interrupted > 0:
		return exitInterrupted
	case locked == len(failed):
		return exitLocked
	}
	return exitFailed
}

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
		entries, err := store.List(name)
		if err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return exitFailed
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
				cp = state.Describe(e.Bytes())
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
		fmt.Fprintf(stdout, "Reset the state of pipeline %s: its next run reads every stream from the beginning.\n", args[0])
	} else {
		fmt.Fprintf(stdout, "Reset the state of stream %s of pipeline %s.\n", stream, args[0])
	}
	return exitOK
}

// writeActions prints what a push did (or would do), one line per action.
func writeActions(w io.Writer, r engine.Result) {
	if len(r.Summary.Actions) == 0 {
		return
	}
	for _, a := range sortedActions(r) {
		fmt.Fprintf(w, "%s: %s: %d\n", r.Pipeline, a.What, a.Count)
	}
}

// sortedActions returns a push's summary lines in alphabetical order.
func sortedActions(r engine.Result) []connector.Action {
	actions := append([]connector.Action(nil), r.Summary.Actions...)
	sort.Slice(actions, func(i, j int) bool { return actions[i].What < actions[j].What })
	return actions
}

// cmdPlan prints what a run would do without doing it: pipelines into a
// connector's sink stream read their input and ask the connector for a dry
// run, which makes read requests only; the others say where they resume.
func cmdPlan(ctx context.Context, o options, logger hclog.Logger, stdout, stderr io.Writer) int {
	h, selected, code := loadSelected(ctx, o, logger, stderr)
	if code != exitOK {
		return code
	}
	defer h.Close()
	fmt.Fprintf(stdout, "Plan for %s (nothing is written or sent):\n", o.file)
	failed := 0
	for _, pl := range selected {
		res, from := h.Plan(ctx, pl, engine.RunOptions{FullRefresh: o.fullRefresh})
		fmt.Fprintf(stdout, "\npipeline %s: %s -> %s\n", pl.Name, res.Stream, res.Sink)
		if res.Err != nil {
			failed++
			fmt.Fprintf(stdout, "  cannot plan: %v\n", res.Err)
			continue
		}
		if !res.Push {
			fmt.Fprintf(stdout, "  would read %s and commit the rows to the sink\n", from)
			continue
		}
		fmt.Fprintf(stdout, "  %d row(s) would be accepted, %d rejected\n", res.Rows, res.Rejected)
		for _, a := range sortedActions(res) {
			fmt.Fprintf(stdout, "    %s: %d\n", a.What, a.Count)
		}
		if len(res.RejectSample) > 0 {
			fmt.Fprintln(stdout, "  rejected:")
			for _, s := range res.RejectSample {
				fmt.Fprintf(stdout, "    %s\n", s)
			}
			if more := res.Rejected - int64(len(res.RejectSample)); more > 0 {
				fmt.Fprintf(stdout, "    ... and %d more\n", more)
			}
		}
	}
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}

// openStore opens the state store the file's state block names: a folder
// of JSON files (default) or a PostgreSQL table shared by several hosts.
func openStore(ctx context.Context, f *config.File) (state.Store, error) {
	if f.StateBackend == "postgres" {
		return state.OpenPostgres(ctx, f.StateDSN, f.StateSchema)
	}
	return state.OpenLocal(f.StateDir)
}

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// cmdCheck asks every declared connector to check its connection: the one
// command besides run that talks to the services.
func cmdCheck(ctx context.Context, o options, logger hclog.Logger, stdout, stderr io.Writer) int {
	h, code := load(ctx, o, logger, stderr, engine.Options{})
	if code != exitOK {
		return code
	}
	defer h.Close()
	failed := 0
	for _, fc := range h.File.Connectors {
		if err := h.Check(ctx, fc.Name); err != nil {
			failed++
			fmt.Fprintf(stdout, "connector %s: FAILED: %v\n", fc.Name, err)
			continue
		}
		fmt.Fprintf(stdout, "connector %s: ok\n", fc.Name)
	}
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}

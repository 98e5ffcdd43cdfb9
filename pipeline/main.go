// Command pipeline runs the pipelines declared in an HCL file: it starts
// each connector as a plugin process and moves its streams into sinks.
// Each command lives in its own file (cmd_*.go); root.go wires them and the
// flags every command shares. `pipeline --help` lists them.
//
// Exit status: 0 when everything asked for succeeded, 1 when a pipeline
// failed, 2 when the file or the command line is wrong, 3 when every
// failure was a lock held elsewhere, 130 after SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/mattn/go-isatty"

	"pipehost/connector"
	"pipehost/connector/files"
	"pipehost/internal/tracing"
	"pipehost/pipeline/config"
	"pipehost/pipeline/engine"
	"pipehost/pipeline/state"
	"pipehost/plugins"

	// Destinations, registered by import.
	_ "pipehost/sinks/csv"
	_ "pipehost/sinks/duckdb"
	_ "pipehost/sinks/jsonl"
	_ "pipehost/sinks/parquet"
	_ "pipehost/sinks/postgres"
	_ "pipehost/sinks/s3"
)

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

// options are the settings a command runs with, from its flags.
type options struct {
	progress    time.Duration
	metricsAddr string // serve: where to serve /metrics and /healthz
	status      bool   // serve: also serve the status page beside the metrics
	metricsFile string // run: a textfile for node_exporter
	parallel    int    // run: pipelines at once
	// watcher, when not nil, follows runs for a live display (run on a
	// terminal).
	watcher engine.Watcher
	file    string
	// command is how the user ran the host (invocation), for the
	// commands that messages suggest.
	command     string
	sandbox     bool
	fullRefresh bool
	logLevel    string
	logFormat   string
	args        []string
	// json asks for the command's result as one JSON document on stdout
	// (see jsonout.go); diagnostics then go into it, not to stderr.
	json  bool
	diags *hcl.Diagnostics
	// rawCheckpoints: state show prints whole checkpoints, not summaries.
	rawCheckpoints bool
	// replace: state import replaces the state a stream already has.
	replace bool
}

// openConnector is the host's one door to connectors (engine.Opener): the
// built-in files connector for a file that uses it without a block, a
// connector linked into this binary (the benchmark's in-process build),
// else the block's plugin: the file it names (a path with a folder,
// resolved from the pipeline file's folder), a bare name looked up in that
// folder then where plugins.Find looks, or NAME-plugin found there.
func openConnector(_ context.Context, name string, block *config.Connector, env engine.OpenEnv) (engine.Opened, error) {
	if block == nil {
		if name == config.BuiltinFiles {
			return engine.Opened{Conn: files.New(env.BaseDir)}, nil
		}
		return engine.Opened{}, fmt.Errorf("no built-in connector %q in this host", name)
	}
	if l, ok := linked[name]; ok {
		return engine.Opened{Conn: l(env.Logger.Named(name))}, nil
	}
	path, err := block.Plugin, error(nil)
	switch {
	case path == "" && block.PluginName != "":
		path, err = plugins.FindFile(block.PluginName, env.BaseDir)
	case path == "":
		path, err = plugins.Find(name)
	}
	if err != nil {
		return engine.Opened{}, err
	}
	pc, err := plugins.Open(plugins.Config{Name: name, Path: path, SHA256: block.SHA256, Logger: env.Logger})
	if err != nil {
		return engine.Opened{}, err
	}
	return engine.Opened{Conn: pc, Path: path}, nil
}

// linked are connectors linked into this binary in place of their plugins:
// none, except in the benchmark's in-process build (linked_nuorder.go,
// build tag inprocess).
var linked = map[string]func(hclog.Logger) connector.Base{}

// report prints diagnostics, or keeps them for a JSON result.
func (o options) report(stderr io.Writer, f *config.File, diags hcl.Diagnostics, sensitive []hcl.Range) {
	if o.diags != nil {
		*o.diags = append(*o.diags, diags...)
		return
	}
	config.WriteDiagnostics(stderr, f, diags, sensitive, colorful(stderr))
}

// defaultMemoryLimit is the host's soft memory limit unless GOMEMLIMIT
// says otherwise: the host's live heap is a few batches and the open row
// groups (about 100 MiB reading orders into Parquet), and without a limit
// the collector lets the heap grow to twice that between collections. Near
// the limit it collects more often instead: a few percent of CPU for a
// flat, predictable footprint under a container's memory limit. 185 MiB,
// not 200: the host links DuckDB (the DuckDB sink) statically, whose
// initialisation holds about 15 MiB outside the Go heap in every run, and
// with 200 MiB a run reading orders into Parquet peaked at 256-261 MiB of
// RSS (make bench, 100k and 1M) against 238 MiB at 185 MiB, for the same
// CPU (three runs each at 100k).
const defaultMemoryLimit = 185 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	stop, err := plugins.StartCPUProfile(os.Getenv(cpuProfileEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "Warning: %s: %v\n", cpuProfileEnv, err)
	}
	stopTracing, err := tracing.Start(context.Background(), "pipehost")
	if err != nil {
		fmt.Fprintf(os.Stderr, "Warning: no traces: %v\n", err)
	}
	code := execute(os.Args[1:], os.Stdout, os.Stderr)
	stopTracing()
	stop()
	os.Exit(code)
}

// cpuProfileEnv names a file the host writes a CPU profile of the whole
// command into (go tool pprof reads it), for finding where a run spends
// its time; each plugin writes its own beside it (plugins.CPUProfileEnv).
const cpuProfileEnv = plugins.CPUProfileEnv

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// dumbTerminal says whether the terminal cannot move its cursor (TERM=dumb:
// Emacs shells, some CI consoles): no live display there, only log lines.
func dumbTerminal() bool { return os.Getenv("TERM") == "dumb" }

// colorful says whether w may be written in colour: a terminal, not dumb,
// and NO_COLOR unset (no-color.org).
func colorful(w io.Writer) bool {
	return isTerminal(w) && !dumbTerminal() && os.Getenv("NO_COLOR") == ""
}

// didYouMean is "; did you mean X?" for the candidate closest to value, or
// "" when none is close.
func didYouMean(value string, candidates ...string) string {
	if s := config.Suggest(value, candidates); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}

// logColor is the log lines' colour setting: hclog's own choice on a
// terminal that may show colour, none otherwise.
func logColor(w io.Writer) hclog.ColorOption {
	if colorful(w) {
		return hclog.AutoColor
	}
	return hclog.ColorOff
}

// logTimeFormat stamps log lines to the millisecond, in UTC offset form:
// what log shippers parse, and fine enough to order a run's lines.
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

func newLogger(o options, stderr io.Writer) (hclog.Logger, error) {
	level := hclog.LevelFromString(o.logLevel)
	if level == hclog.NoLevel {
		return nil, fmt.Errorf("--log-level %q is not one of trace, debug, info, warn, error%s", o.logLevel, didYouMean(o.logLevel, "trace", "debug", "info", "warn", "error"))
	}
	jsonFormat := !isTerminal(stderr)
	switch o.logFormat {
	case "":
	case "json":
		jsonFormat = true
	case "text":
		jsonFormat = false
	default:
		return nil, fmt.Errorf("--log-format %q is not text or json%s", o.logFormat, didYouMean(o.logFormat, "text", "json"))
	}
	return hclog.New(&hclog.LoggerOptions{
		Name: "pipeline", Level: level, Output: stderr, JSONFormat: jsonFormat,
		Color: logColor(stderr), TimeFormat: logTimeFormat,
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
		o.report(stderr, f, diags, f.Sensitive())
		return nil, exitUsage
	}
	if eo.Only != nil {
		selected, err := selectPipelines(f, eo.Only)
		if err != nil {
			fmt.Fprintf(stderr, "Error: %s: %v\n", o.file, err)
			return nil, exitUsage
		}
		eo.Only = selected
	}
	eo.Sandbox, eo.Logger, eo.ProgressEvery = o.sandbox, logger, o.progress
	if o.progress == 0 || o.watcher != nil {
		eo.ProgressEvery = -1 // --progress-every 0, or a live display: no progress lines
	}
	eo.Open = openConnector
	eo.Command = o.command
	if f.StateBackend != "postgres" {
		// The sandbox remembers what it was sent beside the file's state
		// (with PostgreSQL state, each run's sandbox starts afresh).
		eo.SandboxDir = filepath.Join(f.StateDir, "sandbox")
		eo.CacheDir = filepath.Join(f.StateDir, "cache")
	} else {
		eo.CacheDir = connectorCacheDir()
	}
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
	o.report(stderr, f, diags, h.Sensitive())
	if diags.HasErrors() {
		return nil, exitUsage
	}
	return h, exitOK
}

// selectPipelines turns the names given on the command line into pipeline
// names, in the file's order: a name stands for itself, a pattern ("order*",
// shell-style) for every pipeline it matches; each is selected once. A name
// or pattern that selects nothing is an error listing the pipelines there
// are.
func selectPipelines(f *config.File, args []string) ([]string, error) {
	picked := map[string]bool{}
	for _, arg := range args {
		found := false
		for _, pl := range f.Pipelines {
			if ok, err := path.Match(arg, pl.Name); err != nil {
				return nil, fmt.Errorf("pattern %q: %v", arg, err)
			} else if ok {
				picked[pl.Name], found = true, true
			}
		}
		if !found {
			var names []string
			for _, pl := range f.Pipelines {
				names = append(names, pl.Name)
			}
			what := "pipeline"
			if strings.ContainsAny(arg, "*?[") {
				what = "pipeline matching"
			}
			return nil, fmt.Errorf("no %s %q (the file has: %s)", what, arg, strings.Join(names, ", "))
		}
	}
	var out []string
	for _, pl := range f.Pipelines {
		if picked[pl.Name] {
			out = append(out, pl.Name)
		}
	}
	return out, nil
}

// loadSelected loads the file for the pipelines named on the command line
// (all when none is) and returns them in order.
func loadSelected(ctx context.Context, o options, logger hclog.Logger, stderr io.Writer) (*engine.Host, []*config.Pipeline, int) {
	eo := engine.Options{Watcher: o.watcher}
	if len(o.args) > 0 {
		eo.Only = o.args
	}
	h, code := load(ctx, o, logger, stderr, eo)
	if code != exitOK {
		return nil, nil, code
	}
	selected := h.File.Pipelines
	if eo.Only != nil {
		names, _ := selectPipelines(h.File, eo.Only) // load checked them
		selected = nil
		for _, name := range names {
			selected = append(selected, h.File.Pipeline(name))
		}
	}
	return h, selected, exitOK
}

// openStore opens the state store the file's state block names: a folder
// of JSON files (default) or a PostgreSQL table shared by several hosts.
func openStore(ctx context.Context, f *config.File) (state.Store, error) {
	if f.StateBackend == "postgres" {
		return state.OpenPostgres(ctx, f.StateDSN, f.StateSchema)
	}
	var names []string
	for _, pl := range f.Pipelines {
		names = append(names, pl.Name)
	}
	return state.OpenLocalAdopting(f.StateDir, f.SharedStateDir, names)
}

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// connectorCacheDir is where connectors keep their caches when the state
// lives in PostgreSQL (no state folder): the user's cache folder, else the
// temporary one when that cannot be written (a read-only root file
// system). A cache lost with its container costs requests only.
func connectorCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		d = filepath.Join(d, "pipehost")
		if os.MkdirAll(d, 0o700) == nil {
			return d
		}
	}
	return filepath.Join(os.TempDir(), "pipehost-cache")
}

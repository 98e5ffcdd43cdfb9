package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"pipehost/pipeline/config"
	"pipehost/pipeline/engine"
	"pipehost/sinks"
)

// Version is the host's version, printed by `pipeline version`.
const Version = "0.2.0"

// execute runs the command line args and returns the exit code. Help (--help,
// `help CMD`) and `version` go to stdout and exit 0; a wrong command line is
// an error on stderr and exit 2.
func execute(args []string, stdout, stderr io.Writer) int {
	code := exitOK
	root := newRoot(stdout, stderr, &code)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		err = suggestCommand(root, err)
		fmt.Fprintf(stderr, "Error: %v\nRun 'pipeline --help' for the commands, 'pipeline COMMAND --help' for one.\n", err)
		return exitUsage
	}
	return code
}

// newRoot builds the command tree. Each command sets *code.
func newRoot(stdout, stderr io.Writer, code *int) *cobra.Command {
	o := &options{}
	root := &cobra.Command{
		Use:   "pipeline",
		Short: "Run data pipelines declared in an HCL file",
		Long: `pipeline runs the pipelines declared in an HCL file (./pipeline.hcl unless -f names another):
each connector runs as a plugin process, and each pipeline moves a connector's stream into a sink
or pushes a file into a connector's sink stream.

Sinks in this build: ` + strings.Join(sinks.Names(), ", ") + ` (sink "NAME" "label" { ... }).`,
		Example: `  pipeline validate
  pipeline run --sandbox
  pipeline -f nightly.hcl run orders order_lines
  pipeline state show`,
		Version:       versionLine(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// No command: say what there is, as a usage error.
			cmd.SetOut(stderr)
			cmd.Help()
			*code = exitUsage
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(suggestFlag)
	pf := root.PersistentFlags()
	pf.StringVarP(&o.file, "file", "f", envOr("PIPELINE_FILE", defaultFile), "the pipeline file ($PIPELINE_FILE)")
	pf.StringVar(&o.logLevel, "log-level", envOr("PIPELINE_LOG_LEVEL", "info"), "trace, debug, info, warn or error ($PIPELINE_LOG_LEVEL)")
	pf.StringVar(&o.logFormat, "log-format", os.Getenv("PIPELINE_LOG_FORMAT"), "text or json ($PIPELINE_LOG_FORMAT; default: text on a terminal, json otherwise)")

	// do wraps a command's function: it sets up the logger and the signal
	// context every command shares, and records the exit code.
	do := func(fn func(ctx context.Context, o options, logger hclog.Logger) int) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			o.args = args
			o.command = invocation(cmd)
			logger, err := newLogger(*o, stderr)
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			*code = fn(ctx, *o, logger)
			return nil
		}
	}
	sandbox := func(c *cobra.Command) {
		c.Flags().BoolVar(&o.sandbox, "sandbox", false, "run connectors against their built-in sandbox (demo data)")
	}
	fullRefresh := func(c *cobra.Command, what string) {
		c.Flags().BoolVar(&o.fullRefresh, "full-refresh", false, what)
	}
	progress := func(c *cobra.Command) {
		c.Flags().DurationVar(&o.progress, "progress-every", engine.DefaultProgressEvery, "how often a running pipeline logs its rows and rows/s (0: never)")
	}
	names := pipelineNames(o)
	asJSON := func(c *cobra.Command, what string) {
		c.Flags().BoolVar(&o.json, "json", false, what+" as one JSON document on stdout (format_version 1; see README)")
	}

	validate := &cobra.Command{Use: "validate", Short: "Check the file, the connectors' configs and every reference",
		Long:    "validate parses the file, starts each plugin, decodes each connector's config against the schema it advertises and checks every reference against the catalogs. It calls no remote service and writes nothing.",
		Example: "  pipeline validate\n  pipeline validate --sandbox -f examples/sinks.hcl",
		Args:    cobra.NoArgs,
		RunE: do(func(ctx context.Context, o options, l hclog.Logger) int {
			return cmdValidate(ctx, o, l, stdout, stderr)
		})}
	sandbox(validate)
	asJSON(validate, "the diagnostics")

	streams := &cobra.Command{Use: "streams", Short: "List each connector's streams with their columns and types",
		Example: "  pipeline streams\n  pipeline streams --sandbox",
		Args:    cobra.NoArgs,
		RunE:    do(func(ctx context.Context, o options, l hclog.Logger) int { return cmdStreams(ctx, o, l, stdout, stderr) })}
	sandbox(streams)
	asJSON(streams, "the catalog")

	check := &cobra.Command{Use: "check", Short: "Ask each connector whether its service accepts the credentials",
		Example: "  pipeline check",
		Args:    cobra.NoArgs,
		RunE:    do(func(ctx context.Context, o options, l hclog.Logger) int { return cmdCheck(ctx, o, l, stdout, stderr) })}
	sandbox(check)

	plan := &cobra.Command{Use: "plan [NAME...]", Short: "Show what run would do, sending nothing",
		Long:              "plan shows, for each pipeline (or those named), where a run would resume, and for pushes into a connector what would be sent (a dry run: read requests only).",
		Example:           "  pipeline plan\n  pipeline plan --sandbox stock",
		ValidArgsFunction: names,
		RunE:              do(func(ctx context.Context, o options, l hclog.Logger) int { return cmdPlan(ctx, o, l, stdout, stderr) })}
	sandbox(plan)
	fullRefresh(plan, "plan a full refresh")
	asJSON(plan, "the plan")

	run := &cobra.Command{Use: "run [NAME...]", Short: "Run the pipelines (all, or those named) once",
		Long:              "run runs every pipeline (or those named), in file order, each from its stored checkpoint, then prints a summary table.",
		Example:           "  pipeline run\n  pipeline run orders order_lines\n  pipeline run --full-refresh products",
		ValidArgsFunction: names,
		RunE:              do(func(ctx context.Context, o options, l hclog.Logger) int { return cmdRun(ctx, o, l, stdout, stderr) })}
	sandbox(run)
	fullRefresh(run, "read every stream from the beginning, replacing what appending pipelines wrote")
	progress(run)
	asJSON(run, "the summary")
	run.Flags().IntVar(&o.parallel, "parallel", 1, "how many pipelines run at once (pipelines sharing one read count once); the summary stays in file order")
	run.Flags().StringVar(&o.metricsFile, "metrics-file", os.Getenv("PIPELINE_METRICS_FILE"),
		"write the run's metrics to this file in Prometheus' text format, for node_exporter's textfile collector ($PIPELINE_METRICS_FILE)")

	serve := &cobra.Command{Use: "serve [NAME...]", Short: "Run each pipeline on its schedule until stopped",
		Long:              "serve runs each pipeline that has a schedule on it, until SIGINT or SIGTERM; a second signal interrupts running pipelines.",
		Example:           "  pipeline serve\n  pipeline serve orders",
		ValidArgsFunction: names,
		RunE:              do(func(ctx context.Context, o options, l hclog.Logger) int { return cmdServe(ctx, o, l, stderr) })}
	sandbox(serve)
	progress(serve)
	serve.Flags().StringVar(&o.metricsAddr, "metrics-addr", os.Getenv("PIPELINE_METRICS_ADDR"),
		"serve Prometheus metrics on /metrics and a health check on /healthz at this address, e.g. 127.0.0.1:9464 (default: off; $PIPELINE_METRICS_ADDR)")
	serve.Flags().BoolVar(&o.status, "status", false,
		"also serve a status page on /status (and its data on /status.json) at --metrics-addr: each pipeline's last runs, next turn and errors, failing first")

	stateCmd := &cobra.Command{Use: "state", Short: "Show or reset the stored checkpoints", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errors.New("state needs a subcommand: show, reset, export or import")
		}}
	show := &cobra.Command{Use: "show [PIPELINE]", Short: "Show the stored checkpoints and last runs",
		Example: "  pipeline state show\n  pipeline state show orders", Args: cobra.MaximumNArgs(1), ValidArgsFunction: names,
		RunE: do(func(_ context.Context, o options, _ hclog.Logger) int {
			o.args = append([]string{"show"}, o.args...)
			return cmdState(o, stdout, stderr)
		})}
	reset := &cobra.Command{Use: "reset PIPELINE [STREAM]", Short: "Forget a pipeline's checkpoints: its next run reads everything",
		Example: "  pipeline state reset orders", Args: cobra.RangeArgs(1, 2), ValidArgsFunction: names,
		RunE: do(func(_ context.Context, o options, _ hclog.Logger) int {
			o.args = append([]string{"reset"}, o.args...)
			return cmdState(o, stdout, stderr)
		})}
	export := &cobra.Command{Use: "export [PIPELINE...]", Short: "Write the state of the file's pipelines (all, or those named) as JSON on stdout",
		Long:    "export writes every checkpoint, push ledger, binding and run of the file's pipelines as one JSON document, for state import into another store (a folder to PostgreSQL, say).",
		Example: "  pipeline state export > state.json\n  pipeline -f k8s.hcl state import state.json", ValidArgsFunction: names,
		RunE: do(func(_ context.Context, o options, _ hclog.Logger) int {
			o.args = append([]string{"export"}, o.args...)
			return cmdState(o, stdout, stderr)
		})}
	imp := &cobra.Command{Use: "import FILE", Short: "Read a state export into this file's state store (- reads stdin)",
		Long:    "import stores the exported entries of the pipelines this file declares, each under its pipeline's lock. A stream that already has other state is a conflict and nothing is imported, unless --replace.",
		Example: "  pipeline state export | pipeline -f k8s.hcl state import -", Args: cobra.ExactArgs(1),
		RunE: do(func(_ context.Context, o options, _ hclog.Logger) int {
			o.args = append([]string{"import"}, o.args...)
			return cmdState(o, stdout, stderr)
		})}
	imp.Flags().BoolVar(&o.replace, "replace", false, "replace the state a stream already has here")
	asJSON(show, "the entries")
	show.Flags().BoolVar(&o.rawCheckpoints, "checkpoints", false, "print each checkpoint as stored (long values cut short), not a one-line summary")
	stateCmd.AddCommand(show, reset, export, imp)

	history := &cobra.Command{Use: "history [PIPELINE...]", Short: "List the last runs of each pipeline, newest first",
		Long:    "history lists the last runs (start, duration, rows, status, error) the state store recorded for each pipeline, or those named, newest first. No plugin is started.",
		Example: "  pipeline history\n  pipeline history orders --json", ValidArgsFunction: names,
		RunE: do(func(_ context.Context, o options, _ hclog.Logger) int { return cmdHistory(o, stdout, stderr) })}
	asJSON(history, "the runs")

	version := &cobra.Command{Use: "version", Short: "Print the host's version, Go's, and each configured plugin's",
		Args: cobra.NoArgs,
		RunE: do(func(ctx context.Context, o options, l hclog.Logger) int { return cmdVersion(ctx, o, l, stdout) })}

	initCmd := &cobra.Command{Use: "init [DIR]", Short: "Write a commented starter pipeline.hcl for NuOrder",
		Long:    "init writes a starter pipeline.hcl into DIR (default: the current folder): the NuOrder connector with credentials from the environment, a Parquet sink, a pipeline for each stream. It never overwrites a file.",
		Example: "  pipeline init\n  pipeline init nuorder-lake && cd nuorder-lake && pipeline run --sandbox",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			*code = cmdInit(dir, stdout, stderr)
			return nil
		}}

	root.AddCommand(validate, streams, check, plan, run, serve, stateCmd, history, version, initCmd)
	return root
}

// envOr is the environment variable's value, or def when it is unset or
// empty: flags take their defaults from the environment, as users expect of
// a tool run from cron or a container.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// versionLine is the host's version and the Go it was built with.
func versionLine() string {
	line := fmt.Sprintf("pipeline %s (%s %s/%s)", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				line += ", commit " + s.Value[:12]
			}
		}
	}
	return line
}

// pipelineNames completes pipeline names from the file at hand.
func pipelineNames(o *options) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		f, diags := config.Load(o.file)
		if diags.HasErrors() {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, pl := range f.Pipelines {
			if strings.HasPrefix(pl.Name, prefix) {
				out = append(out, pl.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// invocation is how the user ran the host, for the commands messages
// suggest: the program as typed, and the global flags given on the command
// line (the file, the log settings), each quoted for a POSIX shell, so a
// suggested command pasted as printed acts on the same file and state.
func invocation(cmd *cobra.Command) string {
	prog := "pipeline"
	if len(os.Args) > 0 && strings.ContainsRune(os.Args[0], filepath.Separator) {
		prog = os.Args[0]
	}
	parts := []string{shellQuote(prog)}
	for _, name := range []string{"file", "log-level", "log-format"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			flag := "--" + name
			if name == "file" {
				flag = "-f"
			}
			parts = append(parts, flag, shellQuote(f.Value.String()))
		}
	}
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// suggestFlag adds the closest flag the command takes to an unknown flag's
// error ("unknown flag: --full-refres; did you mean --full-refresh?").
func suggestFlag(cmd *cobra.Command, err error) error {
	msg := err.Error()
	const unknown = "unknown flag: --"
	if !strings.HasPrefix(msg, unknown) {
		return err
	}
	name := strings.SplitN(strings.TrimPrefix(msg, unknown), "=", 2)[0]
	var names []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	if s := config.Suggest(name, names); s != "" {
		return fmt.Errorf("%w; did you mean --%s?", err, s)
	}
	return err
}

// suggestCommand adds the closest command to an unknown command's error.
func suggestCommand(root *cobra.Command, err error) error {
	var name, parent string
	if _, scanErr := fmt.Sscanf(err.Error(), "unknown command %q for %q", &name, &parent); scanErr != nil {
		return err
	}
	cmd := root
	if words := strings.Fields(parent); len(words) > 1 {
		if c, _, findErr := root.Find(words[1:]); findErr == nil {
			cmd = c
		}
	}
	var names []string
	for _, c := range cmd.Commands() {
		names = append(names, c.Name())
	}
	if s := config.Suggest(name, names); s != "" {
		return fmt.Errorf("%w; did you mean %q?", err, s)
	}
	return err
}

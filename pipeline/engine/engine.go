// Package engine moves record batches from connector streams into sinks.
//
// Open starts every connector a pipeline file declares (each in its own
// plugin process), decodes and applies their config, checks each pipeline's
// references against the connectors' catalogs and opens the sinks. Run then
// runs one pipeline: it reads the source stream from the checkpoint the state
// store holds, batch by batch, writing each batch to the sink, so memory
// holds one batch at a time whatever the stream's size. When the connector
// emits a checkpoint, the sink commits everything before it and only then is
// the checkpoint stored: a failed or killed run keeps the last checkpoint
// whose rows are committed, and what it wrote after that is discarded.
package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"pipehost/connector"
	"pipehost/pipeline/config"
	"pipehost/pipeline/state"
	"pipehost/plugins"
	"pipehost/sinks"
)

// Options configure a Host.
type Options struct {
	// Sandbox asks every connector to run against its built-in sandbox.
	Sandbox bool
	// Logger receives the host's and the plugins' log lines.
	Logger hclog.Logger
	// Only, when not nil, limits which connectors and sinks are started to
	// those the named pipelines use.
	Only []string
	// State keeps checkpoints between runs; nil runs every stream in full
	// and remembers nothing. The host closes it in Close.
	State state.Store
	// ProgressEvery is how often a running pipeline logs its rows and rate
	// (default DefaultProgressEvery).
	ProgressEvery time.Duration
	// Builtins are the connectors that run inside the host, by the name a
	// file refers to them with (config.BuiltinFiles: the files connector),
	// each made for the pipeline file's folder. main registers them, as it
	// registers sinks: the engine knows no connector.
	Builtins map[string]func(baseDir string) connector.Connector
	// Catalog asks only for the connectors' catalogs: configs are decoded
	// without insisting on required attributes, and connectors are not
	// configured, so `pipeline streams` works without credentials.
	Catalog bool
}

// Connector is a started connector with its catalog.
type Connector struct {
	Name    string
	Info    connector.Info
	Streams []connector.Stream
	conn    connector.Connector
	// Sensitive are the ranges of its sensitive attributes in the file.
	Sensitive []hcl.Range
	// Identity names the account it reads, without a secret (see
	// sourceIdentity); stored checkpoints are bound to it.
	Identity string
}

// Host holds the started connectors and opened sinks of one pipeline file.
type Host struct {
	File       *config.File
	Connectors map[string]*Connector
	sinks      map[string]sinks.Sink
	drivers    map[string]sinks.Driver
	opts       Options
	// sensitive are the ranges of sink attributes that hold secrets.
	sensitive []hcl.Range
}

// Open starts the connectors and sinks of f and checks every pipeline's
// references. On error diagnostics it has already closed what it started.
// The host must be closed.
func Open(ctx context.Context, f *config.File, opts Options) (*Host, hcl.Diagnostics) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	h := &Host{File: f, Connectors: map[string]*Connector{}, sinks: map[string]sinks.Sink{}, drivers: map[string]sinks.Driver{}, opts: opts}
	used := h.used()
	var diags hcl.Diagnostics
	for _, c := range f.Connectors {
		if !used["connector."+c.Name] {
			continue
		}
		sc, d := h.startConnector(ctx, c)
		diags = append(diags, d...)
		if sc != nil {
			h.Connectors[c.Name] = sc
		}
	}
	for name, open := range opts.Builtins {
		if !used["connector."+name] || f.Connector(name) != nil {
			continue // not used, or the file declares a plugin of that name
		}
		bc := open(f.Dir)
		streams, _ := bc.Streams(ctx)
		info, _ := bc.Info(ctx)
		h.Connectors[name] = &Connector{Name: name, Info: info, Streams: streams, conn: bc}
	}
	for _, s := range f.Sinks {
		if !used["sink."+s.Key()] {
			continue
		}
		sk, d := h.openSink(s)
		diags = append(diags, d...)
		if sk != nil {
			h.sinks[s.Key()] = sk
		}
	}
	if !diags.HasErrors() && len(h.Connectors) > 0 {
		for _, pl := range f.Pipelines {
			if used["pipeline."+pl.Name] {
				diags = append(diags, h.checkPipeline(pl)...)
			}
		}
	}
	if diags.HasErrors() {
		h.Close()
	}
	return h, diags
}

// used says which blocks the selected pipelines need; with no selection,
// every block is used.
func (h *Host) used() map[string]bool {
	used := map[string]bool{}
	if h.opts.Only == nil {
		for _, c := range h.File.Connectors {
			used["connector."+c.Name] = true
		}
		for _, s := range h.File.Sinks {
			used["sink."+s.Key()] = true
		}
		for _, pl := range h.File.Pipelines {
			used["pipeline."+pl.Name] = true
			for _, r := range []config.Ref{pl.From, pl.To} {
				if r.Kind == "connector" {
					used["connector."+r.Name] = true
				}
			}
		}
		return used
	}
	for _, name := range h.opts.Only {
		pl := h.File.Pipeline(name)
		if pl == nil {
			continue
		}
		used["pipeline."+pl.Name] = true
		for _, r := range []config.Ref{pl.From, pl.To} {
			if r.Kind == "sink" {
				used["sink."+r.Type+"."+r.Name] = true
			} else {
				used["connector."+r.Name] = true
			}
		}
	}
	return used
}

func (h *Host) startConnector(ctx context.Context, c *config.Connector) (*Connector, hcl.Diagnostics) {
	fail := func(summary string, err error) hcl.Diagnostics {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: err.Error(), Subject: c.DeclRange.Ptr()}}
	}
	path := c.Plugin
	if path == "" {
		found, err := plugins.Find(c.Name)
		if err != nil {
			return nil, fail("Cannot find connector plugin", err)
		}
		path = found
	}
	client, err := plugins.Open(plugins.Config{Name: c.Name, Path: path, SHA256: c.SHA256, Logger: h.opts.Logger})
	if err != nil {
		return nil, fail("Cannot start connector plugin", err)
	}
	sc := &Connector{Name: c.Name, conn: client}
	ok := false
	defer func() {
		if !ok {
			client.Close()
		}
	}()
	if sc.Info, err = client.Info(ctx); err != nil {
		return nil, fail("Connector plugin does not answer", err)
	}
	schema, err := client.ConfigSchema(ctx)
	if err != nil {
		return nil, fail("Connector plugin does not answer", err)
	}
	sc.Sensitive = config.SensitiveAttributes(c, schema)
	raw, diags := config.DecodeConnectorConfig(c, schema, h.opts.Sandbox || h.opts.Catalog)
	if diags.HasErrors() {
		return sc, diags // sc carries the sensitive ranges for printing; Open closes it
	}
	sc.Identity = sourceIdentity(c.Name, sc.Info, schema, raw, h.opts.Sandbox)
	if h.opts.Catalog {
		// Configure only to let the config shape the catalog (toggles);
		// missing credentials are expected here.
		if err := client.Configure(ctx, connector.ConfigureRequest{Config: raw}); err != nil {
			h.opts.Logger.Debug("connector not configured for the catalog", "connector", c.Name, "error", err)
		}
	} else {
		if err := client.Configure(ctx, connector.ConfigureRequest{Config: raw, Sandbox: h.opts.Sandbox}); err != nil {
			return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Connector " + c.Name + " refused its config",
				Detail: err.Error(), Subject: c.ConfigRange.Ptr()})
		}
	}
	if sc.Streams, err = client.Streams(ctx); err != nil {
		return nil, fail("Cannot read the connector's catalog", err)
	}
	ok = true
	return sc, diags
}

func (h *Host) openSink(s *config.Sink) (sinks.Sink, hcl.Diagnostics) {
	drv, ok := sinks.Lookup(s.Type)
	if !ok {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unknown sink type",
			Detail:  fmt.Sprintf("There is no sink type %q. Available: %s.", s.Type, strings.Join(sinks.Names(), ", ")),
			Subject: s.TypeRange.Ptr()}}
	}
	h.drivers[s.Key()] = drv
	if sa, ok := drv.(sinks.SensitiveAttributes); ok {
		attrs, _ := s.Body.JustAttributes()
		for _, name := range sa.Sensitive() {
			if a, ok := attrs[name]; ok {
				h.sensitive = append(h.sensitive, a.Range)
			}
		}
	}
	cfg := drv.NewConfig()
	if diags := config.DecodeSinkConfig(s, cfg); diags.HasErrors() {
		return nil, diags
	}
	sk, err := drv.Open(cfg, sinks.Env{BaseDir: h.File.Dir, Logger: h.opts.Logger.Named("sink." + s.Key())})
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot open sink " + s.Key(), Detail: err.Error(), Subject: s.DeclRange.Ptr()}}
	}
	return sk, nil
}

// checkPipeline checks a pipeline's source stream against its connector's
// catalog.
func (h *Host) checkPipeline(pl *config.Pipeline) hcl.Diagnostics {
	var diags hcl.Diagnostics
	c := h.Connectors[pl.From.Name]
	if c == nil {
		return nil // its connector failed to start, already reported
	}
	st, ok := connector.FindStream(c.Streams, pl.From.Stream, connector.Source)
	if !ok {
		var names []string
		for _, s := range c.Streams {
			if s.Kind == connector.Source {
				names = append(names, s.Name)
			}
		}
		sort.Strings(names)
		detail := fmt.Sprintf("Connector %s has no stream %q. Its source streams: %s.", c.Name, pl.From.Stream, strings.Join(names, ", "))
		if s := config.Suggest(pl.From.Stream, names); s != "" {
			detail = fmt.Sprintf("Connector %s has no stream %q. Did you mean %q? Its source streams: %s.", c.Name, pl.From.Stream, s, strings.Join(names, ", "))
		}
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Reference to unknown stream", Detail: detail, Subject: pl.From.Range.Ptr()})
	}
	if st.Kind != connector.Source {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Stream cannot be read",
			Detail: fmt.Sprintf("%s is a %s stream: it can only be written to.", pl.From, st.Kind), Subject: pl.From.Range.Ptr()})
	}
	diags = append(diags, checkOptions(pl.Options, st, pl.From.String(), "options", pl.OptionsRange)...)
	if st.Notice != "" {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Stream " + pl.From.String() + " needs configuring",
			Detail: st.Notice + ".", Subject: pl.From.Range.Ptr()})
	}
	if st.Disabled != "" {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Stream is disabled",
			Detail: fmt.Sprintf("%s is disabled (%s): running pipeline %s will fail until it is enabled.", pl.From, st.Disabled, pl.Name), Subject: pl.From.Range.Ptr()})
	}
	if pl.To.Kind == "connector" {
		return append(diags, h.checkPush(pl)...)
	}
	if pl.ToOptionsRange != nil {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "to_options into a sink",
			Detail: "to_options are handed to a connector's sink stream; a sink takes its settings in its sink block.", Subject: pl.ToOptionsRange})
	}
	if sc, ok := h.sinks[pl.To.Type+"."+pl.To.Name].(sinks.StreamChecker); ok {
		if err := sc.CheckStream(st.Name); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Stream " + st.Name + " cannot land in " + pl.To.String(),
				Detail: err.Error() + ".", Subject: pl.To.Range.Ptr()})
		}
	}
	if drv := h.drivers[pl.To.Type+"."+pl.To.Name]; drv != nil {
		modes := drv.Modes()
		ok := false
		for _, m := range modes {
			ok = ok || m == pl.Mode
		}
		if !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported write mode",
				Detail: fmt.Sprintf("Sink %s supports mode %s, not %q.", pl.To, strings.Join(modes, ", "), pl.Mode), Subject: pl.ModeRange.Ptr()})
		} else if pl.Mode == sinks.Merge && len(st.PrimaryKey) == 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Merge needs a primary key",
				Detail: fmt.Sprintf("%s has no primary key to merge on; use mode append or overwrite.", pl.From), Subject: pl.ModeRange.Ptr()})
		}
	}
	if len(pl.Columns) > 0 {
		for _, spec := range pl.Columns {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Column mapping into a sink",
				Detail: "columns and column blocks map input columns onto a connector's sink stream; a sink takes the source stream's columns as they are.", Subject: spec.Range.Ptr()})
			break
		}
	}
	return diags
}

// checkPush checks a pipeline into a connector's sink stream: the stream
// exists and every mapped column is one of its columns.
func (h *Host) checkPush(pl *config.Pipeline) hcl.Diagnostics {
	c := h.Connectors[pl.To.Name]
	if c == nil {
		return nil
	}
	st, ok := connector.FindStream(c.Streams, pl.To.Stream, connector.Sink)
	if !ok {
		var names []string
		for _, s := range c.Streams {
			if s.Kind == connector.Sink {
				names = append(names, s.Name)
			}
		}
		sort.Strings(names)
		detail := fmt.Sprintf("Connector %s has no sink stream %q. Its sink streams: %s.", c.Name, pl.To.Stream, strings.Join(names, ", "))
		if len(names) == 0 {
			detail = fmt.Sprintf("Connector %s has no sink streams: it can only be read.", c.Name)
		} else if s := config.Suggest(pl.To.Stream, names); s != "" {
			detail = fmt.Sprintf("Connector %s has no sink stream %q. Did you mean %q? Its sink streams: %s.", c.Name, pl.To.Stream, s, strings.Join(names, ", "))
		}
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Reference to unknown sink stream", Detail: detail, Subject: pl.To.Range.Ptr()}}
	}
	var cols []string
	for _, f := range st.Schema.Fields() {
		cols = append(cols, f.Name)
	}
	var diags hcl.Diagnostics
	diags = append(diags, checkOptions(pl.ToOptions, st, pl.To.String(), "to_options", pl.ToOptionsRange)...)
	if st.Notice != "" {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Stream " + c.Name + "." + st.Name + " needs configuring",
			Detail: st.Notice + ".", Subject: pl.To.Range.Ptr()})
	}
	names := make([]string, 0, len(pl.Columns))
	for name := range pl.Columns {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if len(st.Schema.FieldIndices(name)) > 0 {
			continue
		}
		detail := fmt.Sprintf("Stream %s.%s has no column %q. Its columns: %s.", c.Name, st.Name, name, strings.Join(cols, ", "))
		if s := config.Suggest(name, cols); s != "" {
			detail = fmt.Sprintf("Stream %s.%s has no column %q. Did you mean %q? Its columns: %s.", c.Name, st.Name, name, s, strings.Join(cols, ", "))
		}
		spec := pl.Columns[name]
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Mapping to an unknown column", Detail: detail, Subject: spec.Range.Ptr()})
	}
	return diags
}

// Sensitive returns the file ranges of every started connector's sensitive
// attributes.
func (h *Host) Sensitive() []hcl.Range {
	var out []hcl.Range
	for _, c := range h.Connectors {
		out = append(out, c.Sensitive...)
	}
	if h.File.StateDSNRange != nil {
		out = append(out, *h.File.StateDSNRange)
	}
	return append(out, h.sensitive...)
}

// Close stops every plugin, closes every sink and the state store.
func (h *Host) Close() {
	for _, c := range h.Connectors {
		c.conn.Close()
	}
	for _, s := range h.sinks {
		s.Close()
	}
	if h.opts.State != nil {
		h.opts.State.Close()
	}
}

// Result is the outcome of one pipeline run.
type Result struct {
	Pipeline string
	Stream   string
	Sink     string
	// Rows is how many rows the sink committed in this run (a failed run
	// may have committed some before it failed).
	Rows     int64
	Files    []string
	Duration time.Duration
	Err      error

	// Push is set for pipelines into a connector's sink stream; for them
	// Rows counts accepted rows, and these say what else happened.
	Push   bool
	DryRun bool
	// Rejected counts rows rejected by the mapping or by the connector;
	// RejectsFile lists them (empty for a dry run or when none).
	Rejected     int64
	RejectsFile  string
	RejectSample []string
	// Summary is what the connector did (or would do).
	Summary connector.WriteSummary
}

// RunOptions change one run.
type RunOptions struct {
	// FullRefresh reads the stream from the beginning, ignoring the stored
	// checkpoint; the checkpoint it ends with replaces the stored one.
	FullRefresh bool
}

// Run runs one pipeline once. Rows land in the sink in commits, each followed
// by storing the checkpoint that came after them; on error, rows after the
// last commit are discarded and the stored checkpoint is the last one
// committed, so the next run resumes there.
func (h *Host) Run(ctx context.Context, pl *config.Pipeline, ro RunOptions) (res Result) {
	if pl.To.Kind == "connector" {
		return h.runPush(ctx, pl, ro, false)
	}
	start := time.Now()
	res = Result{Pipeline: pl.Name, Stream: pl.From.String(), Sink: pl.To.String()}
	log := h.opts.Logger.With("pipeline", pl.Name)
	c := h.Connectors[pl.From.Name]
	st, _ := connector.FindStream(c.Streams, pl.From.Stream, connector.Source)
	defer func() {
		res.Duration = time.Since(start)
		if h.opts.State == nil {
			return
		}
		run := state.Run{StartedAt: start.UTC(), FinishedAt: time.Now().UTC(), Status: "ok", Rows: res.Rows, FullRefresh: ro.FullRefresh}
		if res.Err != nil {
			run.Status, run.Error = "failed", res.Err.Error()
		}
		if err := h.opts.State.RecordRun(pl.Name, st.Name, run); err != nil {
			log.Warn("could not record the run in the state store", "error", err)
		}
	}()

	sk := h.sinks[pl.To.Type+"."+pl.To.Name]
	binding := &state.Binding{Source: c.Identity, Destination: h.destination(pl, st.Name)}
	storeID := ""
	if h.opts.State != nil {
		storeID = h.opts.State.ID()
	}
	var checkpoint []byte
	if h.opts.State != nil {
		unlock, err := h.opts.State.Lock(pl.Name)
		if err != nil {
			res.Err = err
			return res
		}
		defer unlock()
	}
	// An overwrite replaces everything: it always reads in full.
	if !ro.FullRefresh && pl.Mode != sinks.Overwrite {
		var err error
		if checkpoint, err = h.resumeFrom(ctx, pl, st.Name, sk, binding, true); err != nil {
			res.Err = err
			return res
		}
	}

	mode := pl.Mode
	if ro.FullRefresh && mode == sinks.Append {
		// A full refresh replaces what the appends accumulated, at its
		// final commit, where the sink can; elsewhere it would add a
		// second copy of every row, so it is refused.
		if supportsMode(h.drivers[pl.To.Type+"."+pl.To.Name], sinks.Overwrite) {
			mode = sinks.Overwrite
		} else if cr, ok := sk.(sinks.CheckpointReader); ok {
			if held, _, _ := cr.Checkpoint(ctx, pl.Name, st.Name); held != nil {
				res.Err = fmt.Errorf("--full-refresh into %s would add a second copy of the rows it holds: remove them first (the next run then reads everything again, without --full-refresh)", binding.Destination)
				return res
			}
		}
	}
	w, err := sk.Open(ctx, sinks.Stream{Pipeline: pl.Name, Name: st.Name, Schema: st.Schema, PrimaryKey: st.PrimaryKey, Mode: mode})
	if err != nil {
		res.Err = fmt.Errorf("opening %s for stream %s: %w", res.Sink, st.Name, err)
		return res
	}
	defer w.Close()
	log.Info("pipeline started", "from", res.Stream, "to", res.Sink, "resuming", checkpoint != nil, "full_refresh", ro.FullRefresh)

	var pending int64 // rows written since the last commit
	commit := func(cp []byte, final bool) error {
		if pending > 0 && failpoint("before-commit") {
			log.Warn("failpoint before-commit: rows written, not committed; waiting to be killed")
			<-ctx.Done()
			return ctx.Err()
		}
		info, err := w.Commit(ctx, sinks.Commit{Checkpoint: wrap(cp, storeID, binding), Final: final})
		if err != nil {
			return fmt.Errorf("committing to %s: %w", res.Sink, err)
		}
		if info.Rows > 0 && failpoint("after-sink-commit") {
			log.Warn("failpoint after-sink-commit: rows committed, state not written; waiting to be killed")
			<-ctx.Done()
			return ctx.Err()
		}
		if info.Rows > 0 {
			res.Files = append(res.Files, info.Location)
		}
		res.Rows += info.Rows
		pending = 0
		if cp != nil && h.opts.State != nil {
			if err := h.opts.State.Commit(pl.Name, st.Name, cp, state.CommitMeta{Binding: binding, Rows: info.Rows > 0}); err != nil {
				return fmt.Errorf("storing the checkpoint (the rows before it are committed and will be read again): %w", err)
			}
		}
		log.Debug("committed", "rows", info.Rows, "location", info.Location)
		return nil
	}
	prog := startProgress(log, h.opts.ProgressEvery)
	defer prog.end()
	var last []byte
	err = c.conn.Read(ctx, connector.ReadRequest{Stream: st.Name, Checkpoint: checkpoint, Options: pl.Options}, func(b connector.Batch) error {
		if b.Record != nil && b.Record.NumRows() > 0 {
			rec, cleaned := cleanNUL(b.Record)
			if cleaned {
				defer rec.Release()
			}
			if err := w.Write(ctx, rec); err != nil {
				return fmt.Errorf("writing to %s: %w", res.Sink, err)
			}
			pending += b.Record.NumRows()
			prog.add(b.Record.NumRows())
		}
		if b.Checkpoint != nil {
			last = b.Checkpoint
			return commit(b.Checkpoint, false)
		}
		return nil
	})
	if err == nil && (pending > 0 || mode == sinks.Overwrite) {
		// Rows after the last checkpoint (committed, but the stored
		// checkpoint stays before them: the connector gave none after),
		// or the final commit that makes an overwrite take effect.
		err = commit(last, true)
	}
	if err != nil {
		w.Abort()
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = ErrInterrupted
		}
		res.Err = fmt.Errorf("stream %s: %w", res.Stream, err)
		msg := "pipeline failed; nothing of this run was committed"
		if res.Rows > 0 {
			msg = fmt.Sprintf("pipeline failed after committing %d rows; the next run resumes after them", res.Rows)
		}
		log.Error(msg, "error", res.Err)
		return res
	}
	log.Info("pipeline finished", "rows", res.Rows, "files", len(res.Files), "duration", time.Since(start).Round(time.Millisecond).String())
	return res
}

// Plan works out what running a pipeline would do, with no side effect: a
// pipeline into a connector's sink stream reads its input and asks the
// connector for a dry run (read requests only); a pipeline into a sink
// reports where it would resume.
func (h *Host) Plan(ctx context.Context, pl *config.Pipeline, ro RunOptions) (res Result, from string) {
	if pl.To.Kind == "connector" {
		return h.runPush(ctx, pl, ro, true), ""
	}
	res = Result{Pipeline: pl.Name, Stream: pl.From.String(), Sink: pl.To.String(), DryRun: true}
	c := h.Connectors[pl.From.Name]
	st, _ := connector.FindStream(c.Streams, pl.From.Stream, connector.Source)
	from = "from the beginning"
	switch {
	case ro.FullRefresh:
		from = "from the beginning (--full-refresh)"
	case pl.Mode == sinks.Overwrite:
		from = "from the beginning (mode overwrite)"
	default:
		binding := &state.Binding{Source: c.Identity, Destination: h.destination(pl, st.Name)}
		cp, err := h.resumeFrom(ctx, pl, st.Name, h.sinks[pl.To.Type+"."+pl.To.Name], binding, false)
		if err != nil {
			res.Err = err
			return res, ""
		}
		if cp != nil {
			from = "after checkpoint " + state.Describe(cp)
		}
	}
	return res, from
}

// resumeFrom returns the checkpoint a run resumes after: the state store's,
// or the sink's when the sink stores checkpoints with its rows and has a
// newer one (the host died between the sink's commit and the state write),
// unless the stream was reset after the sink committed it. With record, a
// newer checkpoint found in the sink is copied into the state store.
//
// It refuses (ErrStateMismatch) a checkpoint bound to other data: written
// reading another account (or the sandbox), or into another destination,
// or found in a destination another state store also writes. When the
// state says rows were committed that the sink no longer holds (its files
// deleted or moved), it says so and resumes from what the sink holds, from
// the beginning if it holds nothing.
func (h *Host) resumeFrom(ctx context.Context, pl *config.Pipeline, stream string, sk sinks.Sink, binding *state.Binding, record bool) ([]byte, error) {
	var entry state.Entry
	storeID := ""
	if h.opts.State != nil {
		var err error
		if entry, err = h.opts.State.Get(pl.Name, stream); err != nil {
			return nil, fmt.Errorf("reading state: %w", err)
		}
		storeID = h.opts.State.ID()
	}
	cp := entry.Bytes()
	if cp != nil && entry.Binding != nil && *entry.Binding != *binding {
		return nil, mismatch(pl.Name, "the state of pipeline "+pl.Name+" belongs to other data", entry.Binding, binding)
	}
	cr, ok := sk.(sinks.CheckpointReader)
	if !ok {
		return cp, nil
	}
	stored, at, err := cr.Checkpoint(ctx, pl.Name, stream)
	if err != nil {
		return nil, fmt.Errorf("reading the checkpoint stored in %s: %w", pl.To, err)
	}
	if !at.After(entry.ResetAt) {
		stored = nil // committed before `state reset`: forgotten too
	}
	scp, env := unwrap(stored)
	if scp != nil && env.Version == 1 {
		found := &state.Binding{Source: env.Source, Destination: binding.Destination}
		if env.Source != binding.Source {
			return nil, mismatch(pl.Name, binding.Destination+" holds rows of other data", found, binding)
		}
		known := cp != nil && (state.Digest(scp) == entry.DataDigest || state.Digest(scp) == state.Digest(cp))
		if storeID != "" && env.State != storeID && !known {
			if cp != nil {
				return nil, fmt.Errorf("%w: %s also holds rows of pipeline %s committed with another state store (id %s; this one is %s). "+
					"Two state stores writing one destination repeat its rows. Use one state store (a state block with backend = \"postgres\" "+
					"shares one between hosts), or give each its own destination", ErrStateMismatch, binding.Destination, pl.Name, env.State, storeID)
			}
			// This store knows nothing of the pipeline (its state was
			// deleted, or it is new): carry on from what the sink holds.
			h.opts.Logger.Warn("no state for this pipeline here; resuming from the checkpoint committed with the rows in the destination by another state store",
				"pipeline", pl.Name, "destination", binding.Destination, "other_store", env.State)
		}
	}
	switch {
	case scp != nil && (cp == nil || !at.Before(entry.UpdatedAt)):
		if record && h.opts.State != nil && string(scp) != string(cp) {
			h.opts.Logger.Info("resuming from the checkpoint committed with the rows in the sink", "pipeline", pl.Name)
			h.opts.State.Commit(pl.Name, stream, scp, state.CommitMeta{Binding: binding, Rows: true})
		}
		return scp, nil
	case cp != nil && entry.DataDigest != "" && state.Digest(scp) != entry.DataDigest && state.Digest(scp) != state.Digest(cp):
		holds := "nothing of it"
		if scp != nil {
			holds = "only rows before an earlier checkpoint"
		}
		h.opts.Logger.Warn("the state says rows were committed that the destination no longer holds (deleted or moved?): reading them again",
			"pipeline", pl.Name, "destination", binding.Destination, "destination_holds", holds)
		return scp, nil
	}
	return cp, nil
}

// checkOptions refuses option keys a stream does not declare (when it
// declares its options), where the pipeline sets them.
func checkOptions(opts map[string]string, st connector.Stream, stream, attr string, at *hcl.Range) hcl.Diagnostics {
	if st.Options == nil || len(opts) == 0 {
		return nil
	}
	var diags hcl.Diagnostics
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if slices.Contains(st.Options, k) {
			continue
		}
		known := "none"
		if len(st.Options) > 0 {
			known = strings.Join(st.Options, ", ")
		}
		detail := fmt.Sprintf("Stream %s takes no option %q (its %s: %s).", stream, k, attr, known)
		if s := config.Suggest(k, st.Options); s != "" {
			detail = fmt.Sprintf("Stream %s takes no option %q. Did you mean %q? (its %s: %s).", stream, k, s, attr, known)
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown option", Detail: detail, Subject: at})
	}
	return diags
}

// supportsMode says whether a sink driver takes a write mode.
func supportsMode(drv sinks.Driver, mode string) bool {
	if drv == nil {
		return false
	}
	for _, m := range drv.Modes() {
		if m == mode {
			return true
		}
	}
	return false
}

// failpoint says whether the test failpoint name is armed through the
// PIPEHOST_FAILPOINT environment variable. Tests use it to kill the host at
// an exact moment; nothing arms it in normal use.
func failpoint(name string) bool {
	return os.Getenv("PIPEHOST_FAILPOINT") == name
}

// Check asks a started connector whether its service accepts the configured
// credentials.
func (h *Host) Check(ctx context.Context, name string) error {
	c, ok := h.Connectors[name]
	if !ok {
		return fmt.Errorf("connector %s is not started", name)
	}
	return c.conn.Check(ctx)
}

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
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"pipehost/connector"
	"pipehost/pipeline/config"
	"pipehost/pipeline/state"
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
	// (0: DefaultProgressEvery; negative: never).
	ProgressEvery time.Duration
	// Open is the one door to connectors: the engine calls it for every
	// connector the selected pipelines use, and closes what it returns.
	// main wires the plugin transport, the built-in files connector and
	// in-process builds into it (as Terraform's providers.Factory): the
	// engine knows none of them. Nil: no connector can be opened.
	Open Opener
	// Watcher, when not nil, follows every run as it goes (a live display).
	Watcher Watcher
	// SandboxDir, with Sandbox, is the folder (kept with the state) in
	// which each connector's sandbox remembers what it was sent, in a
	// folder named after the connector block; empty: sandboxes forget.
	SandboxDir string
	// CacheDir is the folder in which each connector may keep what it
	// learned of its service between runs (ConfigureRequest.CacheDir), in
	// a folder per connector block and account; empty: no cache.
	CacheDir string
	// Command is how the user ran the host, with the global flags that
	// pick the same file and state ("bin/pipeline -f nightly.hcl"), so a
	// command a message suggests works when pasted as printed. Empty:
	// "pipeline".
	Command string
	// Catalog asks only for the connectors' catalogs: configs are decoded
	// without insisting on required attributes, and connectors are not
	// configured, so `pipeline streams` works without credentials.
	Catalog bool
}

// Opener opens the connector a pipeline file refers to as name: the
// `connector` block of that name (block not nil: its plugin, pin and
// config), or a built-in connector the file uses without a block (block
// nil, config.IsBuiltin). It errors, saying why, when the connector cannot
// be found or started; the engine reports that at the block.
type Opener func(ctx context.Context, name string, block *config.Connector, env OpenEnv) (Opened, error)

// OpenEnv is what an Opener is told about where the connector runs.
type OpenEnv struct {
	// BaseDir is the pipeline file's folder.
	BaseDir string
	// Logger receives the connector's log lines.
	Logger hclog.Logger
}

// Opened is a connector an Opener started.
type Opened struct {
	Conn connector.Base
	// Path is the plugin binary that runs it ("" in process), for
	// messages and version.
	Path string
}

// Connector is a started connector with its catalog.
type Connector struct {
	Name    string
	Info    connector.Info
	Streams []connector.Stream
	conn    connector.Base
	// Sensitive are the ranges of its sensitive attributes in the file.
	Sensitive []hcl.Range
	// Identity names the account it reads, without a secret (see
	// sourceIdentity); stored checkpoints are bound to it.
	Identity string
	// Path is the plugin binary that runs it: the block's plugin, or the
	// one plugins.Find found ("" for a built-in connector).
	Path string
}

// stats returns the connector's request counts so far (zero when it does
// not count them or does not answer within a few seconds).
func (c *Connector) stats() connector.Stats {
	sr, ok := c.conn.(connector.StatsReporter)
	if !ok {
		return connector.Stats{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := sr.Stats(ctx)
	if err != nil {
		return connector.Stats{}
	}
	return s
}

// ConnectorStats returns each started connector's request counts since it
// was configured, by connector name, for metrics.
func (h *Host) ConnectorStats() map[string]connector.Stats {
	out := map[string]connector.Stats{}
	for name, c := range h.Connectors {
		out[name] = c.stats()
	}
	return out
}

// reader returns the connector's read half, or an error when its catalog
// lists source streams it cannot serve.
func (c *Connector) reader() (connector.Reader, error) {
	if r, ok := c.conn.(connector.Reader); ok {
		return r, nil
	}
	return nil, fmt.Errorf("connector %s has no source streams to read", c.Name)
}

// writer returns the connector's write half, or an error when it has none.
func (c *Connector) writer() (connector.Writer, error) {
	if w, ok := c.conn.(connector.Writer); ok {
		return w, nil
	}
	return nil, fmt.Errorf("connector %s has no sink streams to write", c.Name)
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
	for _, name := range h.builtinsUsed(used) {
		if opts.Open == nil {
			continue
		}
		op, err := opts.Open(ctx, name, nil, OpenEnv{BaseDir: f.Dir, Logger: opts.Logger.Named(name)})
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot start connector " + name, Detail: err.Error()})
			continue
		}
		streams, _ := op.Conn.Streams(ctx)
		info, _ := op.Conn.Info(ctx)
		h.Connectors[name] = &Connector{Name: name, Info: info, Streams: streams, conn: op.Conn}
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

// builtinsUsed lists the built-in connectors (config.IsBuiltin) the used
// pipelines refer to without a block of that name, sorted.
func (h *Host) builtinsUsed(used map[string]bool) []string {
	var out []string
	seen := map[string]bool{}
	for _, pl := range h.File.Pipelines {
		for _, r := range []config.Ref{pl.From, pl.To} {
			if r.Kind == "connector" && used["connector."+r.Name] && h.File.Connector(r.Name) == nil && config.IsBuiltin(r.Name) && !seen[r.Name] {
				seen[r.Name] = true
				out = append(out, r.Name)
			}
		}
	}
	sort.Strings(out)
	return out
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
	if h.opts.Open == nil {
		return nil, fail("Cannot start connector "+c.Name, errors.New("this host opens no connectors"))
	}
	op, err := h.opts.Open(ctx, c.Name, c, OpenEnv{BaseDir: h.File.Dir, Logger: h.opts.Logger})
	if err != nil {
		return nil, fail("Cannot start connector "+c.Name, err)
	}
	client, path := op.Conn, op.Path
	sc := &Connector{Name: c.Name, conn: client, Path: path}
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
		req := connector.ConfigureRequest{Config: raw, Sandbox: h.opts.Sandbox}
		if h.opts.Sandbox && h.opts.SandboxDir != "" {
			req.SandboxDir = filepath.Join(h.opts.SandboxDir, c.Name)
		}
		if h.opts.CacheDir != "" {
			// One folder per account: a sandbox's SKUs never answer for
			// the real account's.
			sum := sha256.Sum256([]byte(sc.Identity))
			req.CacheDir = filepath.Join(h.opts.CacheDir, fmt.Sprintf("%s-%x", c.Name, sum[:6]))
		}
		if err := client.Configure(ctx, req); err != nil {
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
	var decodeDiags hcl.Diagnostics
	decode := func(into any) error {
		if decodeDiags = config.DecodeSinkConfig(s, into); decodeDiags.HasErrors() {
			return decodeDiags
		}
		return nil
	}
	sk, err := drv.Open(decode, sinks.Env{BaseDir: h.File.Dir, Logger: h.opts.Logger.Named("sink." + s.Key())})
	if decodeDiags.HasErrors() {
		return nil, decodeDiags // with their places in the file
	}
	if err != nil {
		subject := s.DeclRange.Ptr()
		var ae *sinks.AttributeError
		if body, ok := s.Body.(*hclsyntax.Body); ok && errors.As(err, &ae) {
			if a, ok := body.Attributes[ae.Attribute]; ok {
				subject = a.Expr.Range().Ptr()
			}
		}
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot open sink " + s.Key(), Detail: err.Error(), Subject: subject}}
	}
	return sk, nil
}

// Sensitive returns the file ranges of every started connector's sensitive
// attributes.
func (h *Host) Sensitive() []hcl.Range {
	var out []hcl.Range
	for _, c := range h.Connectors {
		out = append(out, c.Sensitive...)
	}
	out = append(out, h.File.Sensitive()...)
	return append(out, h.sensitive...)
}

// LastFailed names the pipelines of pls whose last recorded run failed (in
// the state store, before the run about to start): what a notification of
// recovery compares with. Without a state store, or when it cannot be
// read, none.
func (h *Host) LastFailed(pls []*config.Pipeline) map[string]bool {
	out := map[string]bool{}
	if h.opts.State == nil {
		return out
	}
	for _, pl := range pls {
		entries, err := h.opts.State.List(pl.Name)
		if err != nil {
			continue
		}
		var last *state.Run
		for _, e := range entries {
			if e.LastRun != nil && (last == nil || e.LastRun.FinishedAt.After(last.FinishedAt)) {
				last = e.LastRun
			}
		}
		out[pl.Name] = last != nil && last.Status != "ok"
	}
	return out
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

// Check asks a started connector whether its service accepts the configured
// credentials.
func (h *Host) Check(ctx context.Context, name string) error {
	c, ok := h.Connectors[name]
	if !ok {
		return fmt.Errorf("connector %s is not started", name)
	}
	return c.conn.Check(ctx)
}

// begin is the step every run shares: it takes the pipeline's run lock and
// returns end, to defer, which releases the lock and records the run's
// outcome (status, rows, error, duration) in the state store. A run that
// cannot take the lock gets end all the same, and is recorded as failed.
// A dry run (a plan) takes no lock and records nothing; without a state
// store there is neither.
func (h *Host) begin(pl *config.Pipeline, stream string, fullRefresh bool, res *Result) (end func(), err error) {
	start := time.Now()
	unlock := func() {}
	end = func() {
		unlock()
		res.Duration = time.Since(start)
		if h.opts.State == nil || res.DryRun {
			return
		}
		run := state.Run{StartedAt: start.UTC(), FinishedAt: time.Now().UTC(), Status: "ok", Rows: res.Rows, FullRefresh: fullRefresh}
		if res.Err != nil {
			run.Status, run.Error = "failed", res.Err.Error()
		}
		if err := h.opts.State.RecordRun(pl.Name, stream, run); err != nil {
			h.opts.Logger.Warn("could not record the run in the state store", "pipeline", pl.Name, "error", err)
		}
	}
	if h.opts.State != nil && !res.DryRun {
		if unlock, err = h.opts.State.Lock(pl.Name); err != nil {
			unlock = func() {}
			return end, err
		}
	}
	return end, nil
}

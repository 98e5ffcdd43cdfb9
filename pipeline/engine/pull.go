package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"pipehost/internal/failpoint"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"pipehost/connector"
	"pipehost/pipeline/config"
	"pipehost/pipeline/state"
	"pipehost/sinks"
)

// Pull runs: a connector's source stream into a sink, committing rows and
// checkpoints together, resuming from a checkpoint bound to its data.

// Result is the outcome of one pipeline run: what every run reports, and
// what its kind adds in Pull or Push. A run that did not start (interrupted
// before its turn, refused by a lock) has neither.
type Result struct {
	Pipeline string
	Stream   string
	Sink     string
	// Rows is how many rows the sink committed in this run (a failed run
	// may have committed some before it failed); for a push, how many rows
	// the connector accepted.
	Rows int64
	// RowsRead is how many rows the source gave (for a push, the input
	// rows, accepted or not).
	RowsRead int64
	// Requests and Retries count what the connector asked its service
	// during the run (a read shared by several pipelines is counted on
	// the first of them; with runs in parallel on one connector, each
	// counts the others' requests made meanwhile too).
	Requests, Retries int64
	Duration          time.Duration
	Err               error
	// DryRun is set for plans: nothing was written.
	DryRun bool

	// Pull is set for pipelines into a sink (Parquet, PostgreSQL, ...).
	Pull *PullResult
	// Push is set for pipelines into a connector's sink stream.
	Push *PushResult
}

// PullResult is what a run into a sink adds to its Result.
type PullResult struct {
	// Files lists where each commit's rows landed (files, tables).
	Files []string
	// Estimate, in a plan, is what the connector expects the read to cost
	// (nil when it makes no estimates).
	Estimate *connector.Estimate
}

// PushResult is what a run into a connector's sink stream adds to its
// Result.
type PushResult struct {
	// Rejected counts rows rejected by the mapping or by the connector;
	// RejectsFile lists them (empty for a dry run or when none), and
	// RejectSample describes the first few.
	Rejected     int64
	RejectsFile  string
	RejectSample []string
	// Summary is what the connector did (or, for a dry run, would do).
	Summary connector.WriteSummary
}

// Rejected returns how many rows a push rejected (0 for a pull, whose
// rows are never rejected one by one).
func (r Result) Rejected() int64 {
	if r.Push == nil {
		return 0
	}
	return r.Push.Rejected
}

// RunOptions change one run.
type RunOptions struct {
	// FullRefresh reads the stream from the beginning, ignoring the stored
	// checkpoint; the checkpoint it ends with replaces the stored one.
	FullRefresh bool
	// Parallel is how many pipelines RunAll runs at once (0 or 1: one
	// after the other).
	Parallel int
}

// Run runs one pipeline once. Rows land in the sink in commits, each followed
// by storing the checkpoint that came after them; on error, rows after the
// last commit are discarded and the stored checkpoint is the last one
// committed, so the next run resumes there.
func (h *Host) Run(ctx context.Context, pl *config.Pipeline, ro RunOptions) Result {
	if pl.To.Kind == "connector" {
		return h.runPush(ctx, pl, ro, false)
	}
	return h.pull(ctx, []*config.Pipeline{pl}, ro)[0]
}

// pullRun is one pipeline's side of a read into a sink: its lock, its
// writer, its commits. A read of several streams feeds several pullRuns,
// one per stream, each from its own goroutine.
type pullRun struct {
	h     *Host
	ctx   context.Context
	pl    *config.Pipeline
	c     *Connector
	st    connector.Stream
	res   *Result
	log   hclog.Logger
	start time.Time
	end   func() // releases the lock and records the run
	// release gives the destination's claim back (nil: none taken).
	release func()

	w          sinks.Writer
	mode       string
	binding    *state.Binding
	storeID    string
	checkpoint []byte // the read resumes after it
	pending    int64  // rows written since the last commit
	last       []byte // the last checkpoint committed by this run
	prog       *progress
	stage      *writeStage // writes into w on a goroutine of its own
	// stateMu serialises state commits of the pullRuns of one read.
	stateMu *sync.Mutex
	// span is the pipeline's span, ended by finish.
	span trace.Span
}

// startPull takes the pipeline's lock, works out where its read resumes and
// opens its writer. When anything fails, res.Err says what; finish must be
// called either way.
func (h *Host) startPull(ctx context.Context, pl *config.Pipeline, ro RunOptions) *pullRun {
	ctx, span := tracer.Start(ctx, "pipeline "+pl.Name, trace.WithAttributes(attribute.String("pipehost.pipeline", pl.Name),
		attribute.String("pipehost.stream", pl.From.String()), attribute.String("pipehost.sink", pl.To.String())))
	p := &pullRun{h: h, ctx: ctx, pl: pl, start: time.Now(), stateMu: &sync.Mutex{}, span: span,
		res: &Result{Pipeline: pl.Name, Stream: pl.From.String(), Sink: pl.To.String(), Pull: &PullResult{}},
		log: h.opts.Logger.With("pipeline", pl.Name)}
	res := p.res
	p.c = h.Connectors[pl.From.Name]
	p.st, _ = connector.FindStream(p.c.Streams, pl.From.Stream, connector.Source)
	var err error
	if p.end, err = h.begin(pl, p.st.Name, ro.FullRefresh, res); err != nil {
		res.Err = err
		return p
	}
	if _, err := p.c.reader(); err != nil {
		res.Err = err
		return p
	}
	sk := h.sinks[pl.To.Type+"."+pl.To.Name]
	p.binding = &state.Binding{Source: p.c.Identity, Destination: h.destination(pl, p.st.Name)}
	if h.opts.State != nil {
		p.storeID = h.opts.State.ID()
	}
	// The destination is claimed before its checkpoint is read and until
	// the final commit: two hosts with different state stores cannot both
	// find it in step and both write it.
	if cl, ok := sk.(sinks.Claimer); ok {
		if p.release, err = cl.Claim(ctx, pl.Name, p.st.Name, p.storeID, h.holder()); err != nil {
			if errors.Is(err, sinks.ErrClaimed) {
				err = fmt.Errorf("%w: %w", state.ErrLocked, err)
			}
			res.Err = err
			return p
		}
	}
	// An overwrite replaces everything: it always reads in full.
	replace := ro.FullRefresh
	if !ro.FullRefresh && pl.Mode != sinks.Overwrite {
		if p.checkpoint, err = h.resumeFrom(ctx, pl, p.st.Name, sk, p.binding, true); err != nil {
			res.Err = err
			return p
		}
		// After `state reset`, the rows the destination still holds from
		// before it are replaced, as --full-refresh does: reading
		// everything again beside them would hold two sources' rows, or
		// every row twice.
		if p.checkpoint == nil {
			if replace, err = h.heldSinceBeforeReset(ctx, pl, p.st.Name, sk); err != nil {
				res.Err = err
				return p
			}
			if replace {
				p.log.Info("the state was reset: this run replaces the rows the destination holds", "destination", p.binding.Destination)
			}
		}
	}
	p.mode = pl.Mode
	if replace && p.mode == sinks.Append {
		// A full refresh replaces what the appends accumulated, at its
		// final commit, where the sink can; elsewhere it would add a
		// second copy of every row, so it is refused.
		if supportsMode(h.drivers[pl.To.Type+"."+pl.To.Name], sinks.Overwrite) {
			p.mode = sinks.Overwrite
		} else if cr, ok := sk.(sinks.CheckpointReader); ok {
			if held, _, _ := cr.Checkpoint(ctx, pl.Name, p.st.Name); held != nil {
				what := "--full-refresh"
				if !ro.FullRefresh {
					what = "a run after `state reset`"
				}
				res.Err = fmt.Errorf("%s into %s would add a second copy of the rows it holds, and %s cannot replace them: remove pipeline %s's files from it first (the next run then reads everything again)",
					what, p.binding.Destination, pl.To, pl.Name)
				return p
			}
		}
	}
	if p.w, err = sk.Open(ctx, sinks.Stream{Pipeline: pl.Name, Name: p.st.Name, Schema: p.st.Schema, PrimaryKey: p.st.PrimaryKey, Mode: p.mode}); err != nil {
		res.Err = fmt.Errorf("opening %s for stream %s: %w", res.Sink, p.st.Name, err)
		return p
	}
	p.log.Info("pipeline started", "from", res.Stream, "to", res.Sink, "resuming", p.checkpoint != nil, "full_refresh", ro.FullRefresh)
	p.prog = h.startProgress(p.log, pl.Name)
	p.stage = startWriteStage(ctx, p.w)
	return p
}

// commit commits the rows written so far with cp, then stores cp.
func (p *pullRun) commit(cp []byte, final bool) (err error) {
	ctx, span := tracer.Start(p.ctx, "commit", trace.WithAttributes(attribute.String("pipehost.pipeline", p.pl.Name),
		attribute.Int64("pipehost.rows", p.pending), attribute.Bool("pipehost.final", final)))
	defer func() { endSpan(span, err) }()
	res := p.res
	if p.pending > 0 && failpoint.Armed("before-commit") {
		p.log.Warn("failpoint before-commit: rows written, not committed; waiting to be killed")
		<-ctx.Done()
		return ctx.Err()
	}
	if err := p.stage.flush(ctx); err != nil {
		return fmt.Errorf("writing to %s: %w", res.Sink, err)
	}
	info, err := p.w.Commit(ctx, sinks.Commit{Checkpoint: wrap(cp, p.storeID, p.binding), Final: final})
	if err != nil {
		return fmt.Errorf("committing to %s: %w", res.Sink, err)
	}
	if info.Rows > 0 && failpoint.Armed("after-sink-commit") {
		p.log.Warn("failpoint after-sink-commit: rows committed, state not written; waiting to be killed")
		<-ctx.Done()
		return ctx.Err()
	}
	if info.Rows > 0 {
		res.Pull.Files = append(res.Pull.Files, info.Location)
	}
	res.Rows += info.Rows
	p.pending = 0
	// An overwrite's rows become visible at its final commit only: a
	// checkpoint stored before it would describe rows a crash discards.
	if cp != nil && p.h.opts.State != nil && (final || p.mode != sinks.Overwrite) {
		p.stateMu.Lock()
		err := p.h.opts.State.Commit(p.pl.Name, p.st.Name, cp, state.CommitMeta{Binding: p.binding, Rows: info.Rows > 0})
		p.stateMu.Unlock()
		if err != nil {
			return fmt.Errorf("storing the checkpoint (the rows before it are committed and will be read again): %w", err)
		}
	}
	p.log.Debug("committed", "rows", info.Rows, "location", info.Location)
	return nil
}

// handle writes a batch of the read and commits at its checkpoint.
func (p *pullRun) handle(b connector.Batch) error {
	if b.Record != nil && b.Record.NumRows() > 0 {
		if err := p.stage.write(p.ctx, b.Record); err != nil {
			return fmt.Errorf("writing to %s: %w", p.res.Sink, err)
		}
		p.pending += b.Record.NumRows()
		p.prog.add(b.Record.NumRows())
	}
	if b.Checkpoint != nil {
		p.last = b.Checkpoint
		return p.commit(b.Checkpoint, false)
	}
	return nil
}

// finish ends the run after its read returned err (or before any read, when
// startPull failed): a final commit when the read succeeded, else the rows
// after the last commit are discarded. It releases the writer and the lock
// and records the run.
func (p *pullRun) finish(err error) Result {
	p.settle(err)
	if p.release != nil {
		p.release()
	}
	if p.end != nil {
		p.end() // sets the duration, so before the copy
	}
	p.prog.finished(*p.res)
	p.span.SetAttributes(attribute.Int64("pipehost.rows", p.res.Rows))
	endSpan(p.span, p.res.Err)
	return *p.res
}

func (p *pullRun) settle(err error) {
	res := p.res
	if p.prog != nil {
		p.prog.end()
		res.RowsRead = p.prog.rows.Load()
	}
	if res.Err != nil { // startPull failed: nothing was read
		if p.stage != nil {
			p.stage.stop()
		}
		if p.w != nil {
			p.w.Abort()
		}
		return
	}
	if err == nil && (p.pending > 0 || p.mode == sinks.Overwrite) {
		// Rows after the last checkpoint (committed, but the stored
		// checkpoint stays before them: the connector gave none after),
		// or the final commit that makes an overwrite take effect.
		err = p.commit(p.last, true)
	}
	p.stage.stop()
	p.w.Abort() // releases the writer; after the final commit, nothing to discard
	if err != nil {
		if errors.Is(err, context.Canceled) && p.ctx.Err() != nil {
			err = ErrInterrupted
		}
		res.Err = fmt.Errorf("stream %s: %w", res.Stream, err)
		msg := "pipeline failed; nothing of this run was committed"
		if res.Rows > 0 {
			msg = fmt.Sprintf("pipeline failed after committing %d rows; the next run resumes after them", res.Rows)
		}
		p.log.Error(msg, "error", res.Err)
		return
	}
	p.log.Info("pipeline finished", "rows", res.Rows, "files", len(res.Pull.Files), "duration", FormatDuration(time.Since(p.start)))
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
		return nil, h.mismatch(pl, "the state of pipeline "+pl.Name+" belongs to other data", entry.Binding, binding)
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
			return nil, h.mismatch(pl, binding.Destination+" holds rows of other data", found, binding)
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

// holder names this run for a destination's claim: host, process, state
// store; never a secret.
func (h *Host) holder() string {
	host, _ := os.Hostname()
	id := "none"
	if h.opts.State != nil {
		id = h.opts.State.ID()
	}
	return fmt.Sprintf("pid %d on %s (state store %s) since %s", os.Getpid(), host, id, time.Now().UTC().Format(time.RFC3339))
}

// heldSinceBeforeReset says whether the pipeline's stream was reset (and
// has committed nothing since) while the sink still holds rows committed
// before the reset.
func (h *Host) heldSinceBeforeReset(ctx context.Context, pl *config.Pipeline, stream string, sk sinks.Sink) (bool, error) {
	if h.opts.State == nil {
		return false, nil
	}
	entry, err := h.opts.State.Get(pl.Name, stream)
	if err != nil {
		return false, fmt.Errorf("reading state: %w", err)
	}
	cr, ok := sk.(sinks.CheckpointReader)
	if entry.ResetAt.IsZero() || entry.Bytes() != nil || !ok {
		return false, nil
	}
	held, at, err := cr.Checkpoint(ctx, pl.Name, stream)
	if err != nil {
		return false, fmt.Errorf("reading the checkpoint stored in %s: %w", pl.To, err)
	}
	return held != nil && !at.After(entry.ResetAt), nil
}

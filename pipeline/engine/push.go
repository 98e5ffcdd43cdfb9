package engine

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"pipehost/connector"
	"pipehost/pipeline/config"
	"pipehost/pipeline/mapping"
	"pipehost/pipeline/state"
)

// rejectSample is how many rejected rows a Result describes, for plans and
// summaries.
const rejectSample = 10

// pushRun moves the rows of a source stream into a connector's sink stream:
// each batch is converted to the sink stream's schema (rows that do not
// convert are rejected here), written through the connector, and every row
// the connector rejects is recorded too. With dryRun the connector only
// works out what it would send; rejects are kept in memory, not written.
type pushRun struct {
	h      *Host
	pl     *config.Pipeline
	dryRun bool
	res    *Result

	mu        sync.Mutex
	positions []mapping.Pos // input position of each row sent, by write row
	rejects   *rejectsFile
}

// rejectsFile writes rejected rows as CSV: row, line, column, value, reason.
type rejectsFile struct {
	path string
	f    *os.File
	w    *csv.Writer
}

func (p *pushRun) reject(pos mapping.Pos, column, value, reason string) error {
	reason = shortReason(reason)
	p.res.Push.Rejected++
	if len(p.res.Push.RejectSample) < rejectSample {
		where := fmt.Sprintf("row %d", pos.Row)
		if pos.Line > 0 {
			where += fmt.Sprintf(" (line %d)", pos.Line)
		}
		if column != "" {
			where += ", " + column
		}
		p.res.Push.RejectSample = append(p.res.Push.RejectSample, where+": "+reason)
	}
	if p.dryRun {
		return nil
	}
	if p.rejects == nil {
		dir := p.pl.Rejects
		if dir == "" {
			dir = "rejects"
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(p.h.File.Dir, dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("rejects folder: %w", err)
		}
		path := filepath.Join(dir, fmt.Sprintf("%s-%s.csv", p.pl.Name, time.Now().UTC().Format("20060102T150405.000Z")))
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("rejects file: %w", err)
		}
		p.rejects = &rejectsFile{path: path, f: f, w: csv.NewWriter(f)}
		p.rejects.w.Write([]string{"row", "line", "column", "value", "reason"})
		p.res.Push.RejectsFile = path
	}
	line := ""
	if pos.Line > 0 {
		line = strconv.FormatInt(pos.Line, 10)
	}
	return p.rejects.w.Write([]string{strconv.FormatInt(pos.Row, 10), line, neutral(column), neutral(value), neutral(reason)})
}

// neutral keeps a rejects cell from being run as a formula when the file is
// opened in a spreadsheet: a cell starting with =, +, -, @, a tab or a
// carriage return gets a leading apostrophe (the usual CSV-injection guard).
func neutral(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}

func (p *pushRun) closeRejects() error {
	if p.rejects == nil {
		return nil
	}
	p.rejects.w.Flush()
	if err := p.rejects.w.Error(); err != nil {
		return err
	}
	if err := p.rejects.f.Sync(); err != nil {
		return err
	}
	return p.rejects.f.Close()
}

// chanIter hands converted records to the connector's Write. Each record is
// released when the next one is asked for.
type chanIter struct {
	ch   <-chan arrow.Record
	prev arrow.Record
	err  func() error
}

func (it *chanIter) Next() (arrow.Record, error) {
	if it.prev != nil {
		it.prev.Release()
		it.prev = nil
	}
	rec, ok := <-it.ch
	if !ok {
		if err := it.err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	it.prev = rec
	return rec, nil
}

// runPush runs a pipeline into a connector's sink stream.
func (h *Host) runPush(ctx context.Context, pl *config.Pipeline, ro RunOptions, dryRun bool) (res Result) {
	ctx, span := tracer.Start(ctx, "pipeline "+pl.Name, trace.WithAttributes(attribute.String("pipehost.pipeline", pl.Name),
		attribute.String("pipehost.stream", pl.From.String()), attribute.String("pipehost.sink", pl.To.String()), attribute.Bool("pipehost.dry_run", dryRun)))
	defer func() {
		span.SetAttributes(attribute.Int64("pipehost.rows", res.Rows), attribute.Int64("pipehost.rejected", res.Rejected()))
		endSpan(span, res.Err)
	}()
	start := time.Now()
	res = Result{Pipeline: pl.Name, Stream: pl.From.String(), Sink: pl.To.String(), DryRun: dryRun, Push: &PushResult{}}
	log := h.opts.Logger.With("pipeline", pl.Name)
	src := h.Connectors[pl.From.Name]
	dst := h.Connectors[pl.To.Name]
	target, _ := connector.FindStream(dst.Streams, pl.To.Stream, connector.Sink)
	end, err := h.begin(pl, target.Name, ro.FullRefresh, &res)
	defer end()
	if err != nil {
		res.Err = err
		return res
	}
	// The connector's ledger of what it sent before lets it skip what has
	// not changed since; --full-refresh sends everything again.
	var ledger []byte
	if h.opts.State != nil && !ro.FullRefresh {
		entry, err := h.opts.State.Get(pl.Name, target.Name)
		if err != nil {
			res.Err = fmt.Errorf("reading state: %w", err)
			return res
		}
		ledger = entry.Bytes()
	}
	rd, err := src.reader()
	if err != nil {
		res.Err = err
		return res
	}
	wr, err := dst.writer()
	if err != nil {
		res.Err = err
		return res
	}
	p := &pushRun{h: h, pl: pl, dryRun: dryRun, res: &res}
	columns := map[string]mapping.Column{}
	for name, spec := range pl.Columns {
		columns[name] = mapping.Column{From: spec.From, Value: spec.Value, Format: spec.Format}
	}

	prog := h.startProgress(log, pl.Name)
	defer prog.end()
	defer func() { prog.finished(res) }()
	// Two halves run at once: the read converts the source's batches onto
	// the sink stream's schema and hands them over recs; the write sends
	// them to the connector. The first to fail cancels the other (gctx).
	before := dst.stats()
	prog.watchRequests(dst, before)
	g, gctx := errgroup.WithContext(ctx)
	recs := make(chan arrow.Record, 2)
	var readErr error
	g.Go(func() error {
		defer close(recs)
		var conv *mapping.Converter
		readErr = rd.Read(gctx, connector.ReadRequest{Streams: []connector.StreamRead{{Stream: pl.From.Stream}}, Options: pl.Options}, func(b connector.Batch) error {
			if b.Record == nil {
				return nil
			}
			if conv == nil {
				var err error
				conv, err = mapping.Compile(columns, b.Record.Schema(), target.Schema, connector.RowColumn, connector.LineColumn, connector.ErrorColumn)
				if err != nil {
					return fmt.Errorf("mapping %s onto %s: %w", res.Stream, res.Sink, err)
				}
				if un := conv.Unmapped(); len(un) > 0 {
					log.Debug("target columns left empty", "columns", un)
				}
			}
			out, kept, rejects := conv.Convert(b.Record)
			p.mu.Lock()
			for _, r := range rejects {
				if err := p.reject(r.Pos, r.Column, r.Value, fmt.Sprintf("%s (input column %q)", r.Reason, r.From)); err != nil {
					p.mu.Unlock()
					return err
				}
			}
			p.positions = append(p.positions, kept...)
			p.mu.Unlock()
			prog.add(b.Record.NumRows())
			if out == nil {
				return nil
			}
			select {
			case recs <- out:
				return nil
			case <-gctx.Done():
				out.Release()
				return gctx.Err()
			}
		})
		return readErr
	})
	var sum connector.WriteSummary
	g.Go(func() error {
		// The iterator hands the read's error to Write when recs closes
		// early, after the read has returned (close(recs) is deferred).
		it := &chanIter{ch: recs, err: func() error { return readErr }}
		defer func() {
			if it.prev != nil {
				it.prev.Release()
			}
			for rec := range recs { // unblock and drain the read if Write stopped early
				rec.Release()
			}
		}()
		var err error
		req := connector.WriteRequest{Stream: target.Name, Options: pl.ToOptions, DryRun: dryRun, Ledger: ledger}
		if !dryRun && h.opts.State != nil {
			// What the connector records as it sends is stored before it
			// goes on: a push killed midway resends at most what was in
			// flight.
			req.Commit = func(l []byte) error {
				return h.opts.State.Commit(pl.Name, target.Name, l, state.CommitMeta{})
			}
		}
		sum, err = wr.Write(gctx, req, it, func(results []connector.RowResult) error {
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, r := range results {
				if r.Row < 0 || int(r.Row) >= len(p.positions) {
					return fmt.Errorf("connector answered for row %d, which it was never sent", r.Row)
				}
				if r.Error == "" {
					res.Rows++
					continue
				}
				if err := p.reject(p.positions[r.Row], "", "", r.Error); err != nil {
					return err
				}
			}
			return nil
		})
		return err
	})
	err = g.Wait()
	res.RowsRead = prog.rows.Load()
	res.Requests, res.Retries = dst.stats().Sub(before).Totals()
	if err != nil && readErr != nil && !errors.Is(readErr, context.Canceled) {
		err = readErr // the read's cause, not the write's view of it
	}
	res.Push.Summary = sum
	if cerr := p.closeRejects(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		res.Err = fmt.Errorf("%s into %s: %w", res.Stream, res.Sink, err)
		log.Error("pipeline failed", "error", res.Err, "accepted_before_failure", res.Rows)
		return res
	}
	if sum.Ledger != nil && !dryRun && h.opts.State != nil {
		if err := h.opts.State.Commit(pl.Name, target.Name, sum.Ledger, state.CommitMeta{}); err != nil {
			// Everything was sent; the next push only sends more than it must.
			log.Warn("could not store the connector's ledger; the next push sends everything again", "error", err)
		}
	}
	log.Info("pipeline finished", "accepted", res.Rows, "rejected", res.Push.Rejected, "rejects_file", res.Push.RejectsFile,
		"duration", FormatDuration(time.Since(start)))
	return res
}

// maxReason bounds a reject's reason: a connector's reason may quote the
// value it refuses (a 2 MB status cell), which the rejects file holds once,
// in its own column, already.
const maxReason = 300

// shortReason cuts a reason longer than maxReason, at a character boundary,
// saying how long it was.
func shortReason(reason string) string {
	if len(reason) <= maxReason {
		return reason
	}
	cut := maxReason
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (reason cut, %d bytes)", reason[:cut], len(reason))
}

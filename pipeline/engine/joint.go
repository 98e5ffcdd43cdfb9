package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"pipehost/connector"
	"pipehost/pipeline/config"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// One read, several streams: pull pipelines that read streams a connector
// can emit in one pass (Stream.ReadsWith: NuOrder's orders and order_lines)
// share one read, each still with its own sink, writer, commits and
// checkpoint.

// RunAll runs pipelines once, in order, each as Run does, except that pull
// pipelines reading streams of one connector that it reads in one pass, with
// the same options, share one read: the listings are downloaded and decoded
// once, and each pipeline resumes from its own checkpoint and commits into
// its own sink as it would alone. With ro.Parallel above 1, up to that many
// of these runs (a shared read counting as one) go on at once; a
// connector's request limits hold across them, as they are the connector's.
// Once ctx is cancelled, pipelines not yet started are reported as not
// started (ErrInterrupted). Results are in the order of pls.
func (h *Host) RunAll(ctx context.Context, pls []*config.Pipeline, ro RunOptions) []Result {
	ctx, span := tracer.Start(ctx, "run", trace.WithAttributes(attribute.Int("pipehost.pipelines", len(pls))))
	defer span.End()
	results := make([]Result, len(pls))
	done := make([]bool, len(pls))
	var groups [][]int
	for i := range pls {
		if done[i] {
			continue
		}
		group := []int{i}
		for j := i + 1; j < len(pls); j++ {
			if !done[j] && h.readTogether(pls, group, j) {
				group = append(group, j)
			}
		}
		for _, k := range group {
			done[k] = true
		}
		groups = append(groups, group)
	}
	parallel := max(ro.Parallel, 1)
	slots := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	// silent holds, by connector, the first failure of this run that
	// found its service unreachable: the connector's pipelines that have
	// not started yet fail at once with it instead of waiting as long.
	var silentMu sync.Mutex
	silent := map[string]error{}
	for _, group := range groups {
		started := false
		select {
		case slots <- struct{}{}:
			if started = ctx.Err() == nil; !started {
				<-slots
			}
		case <-ctx.Done():
		}
		if !started {
			for _, k := range group {
				results[k] = notStarted(pls[k])
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			silentMu.Lock()
			var cause error
			for _, name := range connectorsOf(pls[group[0]]) {
				if cause == nil {
					cause = silent[name]
				}
			}
			silentMu.Unlock()
			if cause != nil {
				for _, k := range group {
					results[k] = notRun(pls[k], cause)
				}
				return
			}
			h.runGroup(ctx, pls, group, ro, results)
			for _, k := range group {
				if err := results[k].Err; errors.Is(err, connector.ErrServiceUnreachable) {
					silentMu.Lock()
					for _, name := range connectorsOf(pls[k]) {
						if silent[name] == nil {
							silent[name] = fmt.Errorf("pipeline %s found it unreachable earlier in this run: %w", pls[k].Name, err)
						}
					}
					silentMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return results
}

// runGroup runs one pipeline, or several on one read, into results.
func (h *Host) runGroup(ctx context.Context, pls []*config.Pipeline, group []int, ro RunOptions, results []Result) {
	if len(group) == 1 {
		results[group[0]] = h.Run(ctx, pls[group[0]], ro)
		return
	}
	members := make([]*config.Pipeline, len(group))
	for n, k := range group {
		members[n] = pls[k]
	}
	for n, res := range h.pull(ctx, members, ro) {
		results[group[n]] = res
	}
}

// notStarted is the result of a pipeline an interrupt kept from starting.
func notStarted(pl *config.Pipeline) Result {
	r := Result{Pipeline: pl.Name, Stream: pl.From.String(), Sink: pl.To.String(), Err: fmt.Errorf("not started: %w", ErrInterrupted)}
	if pl.To.Kind == "connector" {
		r.Push = &PushResult{}
	} else {
		r.Pull = &PullResult{}
	}
	return r
}

// notRun is the result of a pipeline not run because its connector's
// service did not answer another pipeline of the run (cause).
func notRun(pl *config.Pipeline, cause error) Result {
	r := notStarted(pl)
	r.Err = fmt.Errorf("not run: %w", cause)
	return r
}

// connectorsOf names the plugin connectors a pipeline talks to: the one it
// reads, and the one it writes into.
func connectorsOf(pl *config.Pipeline) []string {
	var out []string
	if pl.From.Kind == "connector" {
		out = append(out, pl.From.Name)
	}
	if pl.To.Kind == "connector" {
		out = append(out, pl.To.Name)
	}
	return out
}

// readTogether says whether pipeline j can join the read of group: both
// pull from the same connector, j's stream is one the group's first stream
// reads with and no member reads yet, and their options are the same.
func (h *Host) readTogether(pls []*config.Pipeline, group []int, j int) bool {
	first, cand := pls[group[0]], pls[j]
	if first.To.Kind == "connector" || cand.To.Kind == "connector" || first.From.Name != cand.From.Name {
		return false
	}
	c := h.Connectors[first.From.Name]
	if c == nil {
		return false
	}
	st, ok := connector.FindStream(c.Streams, first.From.Stream, connector.Source)
	if !ok || !slices.Contains(st.ReadsWith, cand.From.Stream) {
		return false
	}
	for _, k := range group {
		if pls[k].From.Stream == cand.From.Stream {
			return false
		}
	}
	return maps.Equal(first.Options, cand.Options)
}

// pull runs pull pipelines whose streams are read in one pass (one
// pipeline: the set of one). A member that cannot start leaves the others
// to read each on its own; each member resumes from its own checkpoint
// either way.
func (h *Host) pull(ctx context.Context, pls []*config.Pipeline, ro RunOptions) []Result {
	runs := make([]*pullRun, len(pls))
	for i, pl := range pls {
		runs[i] = h.startPull(ctx, pl, ro)
	}
	results := make([]Result, len(runs))
	for _, p := range runs {
		if p.res.Err == nil {
			continue
		}
		if len(runs) > 1 {
			h.opts.Logger.Info("streams that could share one read are read one by one", "reason", "pipeline "+p.pl.Name+" cannot start")
		}
		for i, p := range runs {
			if p.res.Err != nil {
				results[i] = p.finish(nil)
				continue
			}
			results[i] = h.read(ctx, []*pullRun{p})[0]
		}
		return results
	}
	return h.read(ctx, runs)
}

// read is the one pull path: one connector Read of the streams of runs
// (started, all on one connector), each batch handed to the run of the
// stream it names, then each run finished. The requests the read made are
// counted on the first run, once.
func (h *Host) read(ctx context.Context, runs []*pullRun) []Result {
	byStream := map[string]*pullRun{}
	req := connector.ReadRequest{Options: runs[0].pl.Options}
	var names, streams []string
	for _, p := range runs {
		p.stateMu = runs[0].stateMu
		byStream[p.st.Name] = p
		names = append(names, p.pl.Name)
		streams = append(streams, p.st.Name)
		req.Streams = append(req.Streams, connector.StreamRead{Stream: p.st.Name, Checkpoint: p.checkpoint})
	}
	if len(runs) > 1 {
		h.opts.Logger.Info("one read for several pipelines", "pipelines", strings.Join(names, ", "), "streams", strings.Join(streams, ", "))
	}
	first := runs[0]
	rd, _ := first.c.reader() // checked by startPull
	before := first.c.stats()
	for _, p := range runs {
		p.prog.watchRequests(first.c, before)
	}
	err := rd.Read(ctx, req, func(b connector.Batch) error {
		p := byStream[b.Stream]
		if p == nil {
			if b.Stream == "" {
				return fmt.Errorf("the connector emitted a batch that names no stream (the read asked for %s)", strings.Join(streams, ", "))
			}
			return fmt.Errorf("the connector emitted rows of stream %s, which the read did not ask for", b.Stream)
		}
		return p.handle(b)
	})
	first.res.Requests, first.res.Retries = first.c.stats().Sub(before).Totals()
	results := make([]Result, len(runs))
	for i, p := range runs {
		results[i] = p.finish(err)
	}
	return results
}

package engine

import (
	"context"
	"errors"

	"pipehost/connector"
	"pipehost/pipeline/config"
	"pipehost/pipeline/state"
	"pipehost/sinks"
)

// Plans: what a run would do, with no side effect.

// Plan works out what running a pipeline would do, with no side effect: a
// pipeline into a connector's sink stream reads its input and asks the
// connector for a dry run (read requests only); a pipeline into a sink
// reports where it would resume and, when the connector estimates its
// reads, what the read would cost (an estimate that fails is logged, not
// the plan's error).
func (h *Host) Plan(ctx context.Context, pl *config.Pipeline, ro RunOptions) (res Result, from string) {
	if pl.To.Kind == "connector" {
		return h.runPush(ctx, pl, ro, true), ""
	}
	res = Result{Pipeline: pl.Name, Stream: pl.From.String(), Sink: pl.To.String(), DryRun: true, Pull: &PullResult{}}
	c := h.Connectors[pl.From.Name]
	st, _ := connector.FindStream(c.Streams, pl.From.Stream, connector.Source)
	from = "from the beginning"
	var cp []byte
	switch {
	case ro.FullRefresh:
		from = "from the beginning (--full-refresh)"
	case pl.Mode == sinks.Overwrite:
		from = "from the beginning (mode overwrite)"
	default:
		binding := &state.Binding{Source: c.Identity, Destination: h.destination(pl, st.Name)}
		var err error
		cp, err = h.resumeFrom(ctx, pl, st.Name, h.sinks[pl.To.Type+"."+pl.To.Name], binding, false)
		if err != nil {
			res.Err = err
			return res, ""
		}
		if cp != nil {
			from = "after checkpoint " + state.Describe(cp)
		} else if replace, err := h.heldSinceBeforeReset(ctx, pl, st.Name, h.sinks[pl.To.Type+"."+pl.To.Name]); err != nil {
			res.Err = err
			return res, ""
		} else if replace {
			from = "from the beginning, replacing the rows " + binding.Destination + " holds (the state was reset)"
		}
	}
	if rd, err := c.reader(); err == nil {
		if est, ok := rd.(connector.Estimator); ok {
			req := connector.ReadRequest{Streams: []connector.StreamRead{{Stream: st.Name, Checkpoint: cp}}, Options: pl.Options}
			e, err := est.Estimate(ctx, req)
			switch {
			case err == nil:
				res.Pull.Estimate = &e
			case !errors.Is(err, connector.ErrNoEstimate):
				h.opts.Logger.Warn("the connector cannot estimate the read", "pipeline", pl.Name, "error", err)
			}
		}
	}
	return res, from
}

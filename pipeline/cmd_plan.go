package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"

	"pipehost/pipeline/engine"
)

// cmdPlan prints what a run would do without doing it: pipelines into a
// connector's sink stream read their input and ask the connector for a dry
// run, which makes read requests only; the others say where they resume.
func cmdPlan(ctx context.Context, o options, logger hclog.Logger, stdout, stderr io.Writer) int {
	h, selected, code := loadSelected(ctx, o, logger, stderr)
	if code != exitOK {
		return code
	}
	defer h.Close()
	if o.json {
		out := runJSON{FormatVersion: jsonFormat, OK: true, Pipelines: []resultJSON{}}
		for _, pl := range selected {
			res, from := h.Plan(ctx, pl, engine.RunOptions{FullRefresh: o.fullRefresh})
			j := newResultJSON(res)
			j.ResumeFrom = from
			if res.Err != nil {
				out.OK, out.ExitCode = false, exitFailed
			}
			out.Pipelines = append(out.Pipelines, j)
		}
		out.FinishedAt = time.Now().UTC()
		writeJSON(stdout, out)
		return out.ExitCode
	}
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
		push := res.Push
		if push == nil {
			fmt.Fprintf(stdout, "  would read %s and commit the rows to the sink\n", from)
			if e := res.Pull.Estimate; e != nil {
				fmt.Fprintf(stdout, "  the read would make at least %d request(s)", e.Requests)
				if e.Bytes > 0 {
					fmt.Fprintf(stdout, " and download about %s", humanBytes(e.Bytes))
				}
				fmt.Fprintln(stdout, ":")
				for _, p := range e.Parts {
					fmt.Fprintf(stdout, "    %s\n", p)
				}
			}
			continue
		}
		fmt.Fprintf(stdout, "  %d row(s) would be accepted, %d rejected\n", res.Rows, push.Rejected)
		for _, a := range sortedActions(res) {
			fmt.Fprintf(stdout, "    %s: %d\n", a.What, a.Count)
		}
		if len(push.RejectSample) > 0 {
			fmt.Fprintln(stdout, "  rejected:")
			for _, s := range push.RejectSample {
				fmt.Fprintf(stdout, "    %s\n", s)
			}
			if more := push.Rejected - int64(len(push.RejectSample)); more > 0 {
				fmt.Fprintf(stdout, "    ... and %d more\n", more)
			}
		}
	}
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}

// humanBytes is n as a person reads it: 835 B, 12.4 MB, 3.6 GB.
func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/go-hclog"

	"pipehost/pipeline/config"
	"pipehost/pipeline/engine"
	"pipehost/pipeline/metrics"
	"pipehost/pipeline/notify"
	"pipehost/pipeline/state"
)

// notifyClient posts notifications; each attempt has its own timeout
// (notify.AttemptTimeout).
var notifyClient = &http.Client{}

// lastFailed is what notifyRun compares a run with: which of pls failed
// their last run. A file without notify blocks needs nothing, and the state
// store is not read for it.
func lastFailed(h *engine.Host, pls []*config.Pipeline) map[string]bool {
	if len(h.File.Notify) == 0 {
		return nil
	}
	return h.LastFailed(pls)
}

// notifyRun posts a run's outcome to the file's notify blocks that want it.
// A run refused because another held the pipeline (exit 3) is neither a
// failure nor a recovery. A notification that fails is logged (without the
// webhook's address) and counted in m (nil: not counted); it never changes
// the run's exit code.
func notifyRun(ctx context.Context, f *config.File, logger hclog.Logger, results []engine.Result, lastFailed map[string]bool, code int, m *metrics.Registry) {
	if len(f.Notify) == 0 {
		return
	}
	var o notify.Outcome
	var text strings.Builder
	for _, r := range results {
		if errors.Is(r.Err, state.ErrLocked) {
			continue
		}
		o.Ran = append(o.Ran, r.Pipeline)
		switch {
		case r.Err != nil:
			o.Failed = append(o.Failed, r.Pipeline)
			if !lastFailed[r.Pipeline] {
				o.NewlyFailed = append(o.NewlyFailed, r.Pipeline)
			}
			msg, _, _ := strings.Cut(r.Err.Error(), "\n")
			fmt.Fprintf(&text, "%s: FAILED: %s\n", r.Pipeline, msg)
		default:
			if lastFailed[r.Pipeline] {
				o.Recovered = append(o.Recovered, r.Pipeline)
			}
			fmt.Fprintf(&text, "%s: ok, %d row(s) in %s\n", r.Pipeline, r.Rows, engine.FormatDuration(r.Duration))
		}
	}
	if len(o.Ran) == 0 {
		return
	}
	o.Text = text.String()
	o.Document, _ = json.Marshal(runDocument(results, code))
	for _, n := range f.Notify {
		if err := notify.Post(ctx, notifyClient, n, o); err != nil {
			logger.Warn("the notification was not delivered (the run's outcome stands)", "notify", n.Name, "error", err)
			if m != nil {
				m.NotificationFailed(n.Name)
			}
		}
	}
}

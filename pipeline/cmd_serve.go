package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/robfig/cron/v3"

	"pipehost/internal/failpoint"
	"pipehost/pipeline/config"
	"pipehost/pipeline/engine"
	"pipehost/pipeline/metrics"
	"pipehost/pipeline/state"
)

// cmdServe runs every selected pipeline that has a schedule, on it, until
// the process is asked to stop. Each run starts the connectors it needs and
// stops them afterwards, so a plugin that crashes fails one run, not the
// daemon. A run still going when its next turn comes is not started twice
// (and the state lock keeps other hosts out). On SIGINT or SIGTERM no new
// run starts and running ones finish; a second signal interrupts them
// (they keep their last committed checkpoint).
func cmdServe(ctx context.Context, o options, logger hclog.Logger, stderr io.Writer) int {
	f, diags := config.Load(o.file)
	if diags.HasErrors() {
		config.WriteDiagnostics(stderr, f, diags, f.Sensitive(), colorful(stderr))
		return exitUsage
	}
	// Validate everything once, as `validate` would, before scheduling.
	h, selected, code := loadSelected(ctx, o, logger, stderr)
	if code != exitOK {
		return code
	}
	h.Close()
	var scheduled []*config.Pipeline
	for _, pl := range selected {
		if pl.Schedule != "" {
			scheduled = append(scheduled, pl)
		}
	}
	if len(scheduled) == 0 {
		fmt.Fprintf(stderr, "Error: no selected pipeline in %s has a schedule (add schedule = \"@hourly\", say)\n", o.file)
		return exitUsage
	}
	runCtx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	// One store for the daemon's own use: /healthz asks it, and replicas
	// sharing a PostgreSQL store claim each turn in it.
	var store state.Store
	if o.metricsAddr != "" || f.StateBackend == "postgres" {
		var err error
		if store, err = openStore(ctx, f); err != nil {
			fmt.Fprintf(stderr, "Error: the state store cannot be used: %v\n", err)
			return exitUsage
		}
		defer store.Close()
	}
	claimer, _ := store.(state.TurnClaimer) // nil for a local store: its folder is one host's
	if o.status && o.metricsAddr == "" {
		fmt.Fprintln(stderr, "Error: --status serves the status page beside the metrics: give --metrics-addr too (127.0.0.1:9464, say)")
		return exitUsage
	}
	var board *statusBoard
	if o.status {
		board = &statusBoard{store: store}
	}
	var m *metrics.Registry
	if o.metricsAddr != "" {
		m = metrics.New()
		m.Declare(namesOf(scheduled), connectorNames(f))
		stop, err := serveMetrics(o.metricsAddr, m, store, board, logger)
		if err != nil {
			fmt.Fprintf(stderr, "Error: --metrics-addr %s: %v\n", o.metricsAddr, err)
			return exitUsage
		}
		defer stop()
	}
	c := cron.New()
	var mu sync.Mutex
	failures := 0
	for _, pl := range scheduled {
		pl := pl
		var running sync.Mutex
		var startedAt atomic.Int64 // unix seconds of the run going on
		sched, err := cron.ParseStandard(pl.Schedule)
		if err != nil {
			fmt.Fprintf(stderr, "Error: pipeline %s: schedule %q: %v\n", pl.Name, pl.Schedule, err)
			return exitUsage
		}
		sched = aligned(sched)
		gap := longestGap(sched, time.Now())
		var shown *statusSource
		if board != nil {
			shown = board.add(pl.Name, pl.Schedule, sched)
		}
		run := func() {
			turn := lastTurn(sched, gap, time.Now())
			if failpoint.Armed("late-turn") {
				time.Sleep(600 * time.Millisecond)
			}
			log := logger.With("pipeline", pl.Name)
			if !running.TryLock() {
				// Not started twice; said, so a pipeline stuck in one run
				// does not go quiet.
				log.Warn("turn skipped: the previous run of this pipeline is still going",
					"running_since", time.Unix(startedAt.Load(), 0).UTC().Format(time.RFC3339))
				return
			}
			defer running.Unlock()
			if claimer != nil {
				mine, err := claimer.ClaimTurn(pl.Name, turn)
				switch {
				case err != nil:
					log.Warn("the turn could not be claimed in the state store; running it (the pipeline's lock still refuses an overlap)", "error", err)
				case !mine:
					log.Debug("turn skipped: another replica has it", "turn", turn.UTC().Format(time.RFC3339))
					if m != nil {
						m.Skipped(pl.Name)
					}
					return
				}
			}
			startedAt.Store(time.Now().Unix())
			if m != nil {
				m.Started(pl.Name)
			}
			if shown != nil {
				board.setRunning(shown, true)
				defer board.setRunning(shown, false)
			}
			one := o
			one.args = []string{pl.Name}
			h, sel, code := loadSelected(runCtx, one, logger, stderr)
			if code != exitOK {
				log.Error("scheduled run could not start")
				mu.Lock()
				failures++
				mu.Unlock()
				if m != nil {
					m.Observe(engine.Result{Pipeline: pl.Name, Err: errors.New("could not start")})
				}
				return
			}
			defer h.Close()
			previous := lastFailed(h, sel)
			res := h.Run(runCtx, sel[0], engine.RunOptions{})
			if errors.Is(res.Err, state.ErrLocked) {
				// Another host (or run) has this turn: not a failure of
				// this one, which has nothing to do.
				log.Debug("turn skipped: the pipeline is running elsewhere", "holder", res.Err.Error())
				if m != nil {
					m.Skipped(pl.Name)
				}
				return
			}
			if m != nil {
				m.Observe(res)
				for name, st := range h.ConnectorStats() { // this run's host: its counts are this run's
					m.ObserveRequests(name, st)
				}
			}
			code = exitOK
			if res.Err != nil {
				code = exitFailed
			}
			notifyRun(runCtx, h.File, log, []engine.Result{res}, previous, code, m)
			if res.Err != nil {
				mu.Lock()
				failures++
				mu.Unlock()
				log.Error("scheduled run failed", "error", res.Err)
				return
			}
			log.Info("scheduled run finished", "turn", turn.UTC().Format(time.RFC3339), "rows", res.Rows, "rejected", res.Rejected(), "duration", res.Duration.String())
		}
		c.Schedule(sched, cron.FuncJob(run))
		if m != nil {
			m.Schedule(pl.Name, gap)
		}
		logger.Info("scheduled", "pipeline", pl.Name, "schedule", pl.Schedule)
	}
	names := make([]string, len(scheduled))
	for i, pl := range scheduled {
		names[i] = pl.Name
	}
	logger.Info("serving", "pipelines", strings.Join(names, ", "))
	c.Start()
	<-ctx.Done()
	logger.Info("stopping: no new runs; waiting for running ones (signal again to interrupt them)")
	done := c.Stop()
	again, stop := signalContext()
	defer stop()
	select {
	case <-done.Done():
	case <-again.Done():
		interrupt()
		<-done.Done()
	}
	logger.Info("stopped", "failed_runs", failures)
	return exitOK
}

// longestGap is the longest time between two successive turns of sched
// over its next gapTurns turns from now: a weekday-only schedule's weekend,
// say, so an alert on "no success for twice the schedule" does not fire on
// a quiet Sunday.
func longestGap(sched cron.Schedule, now time.Time) time.Duration {
	var longest time.Duration
	prev := sched.Next(now)
	for i := 0; i < gapTurns && !prev.IsZero(); i++ {
		next := sched.Next(prev)
		if next.IsZero() {
			break
		}
		longest = max(longest, next.Sub(prev))
		prev = next
	}
	return longest
}

// lastTurn is the latest instant of sched at or before now: the turn a
// job the scheduler starts at now (a little late, as timers are) belongs
// to, the same on every replica whose clock agrees within gap.
func lastTurn(sched cron.Schedule, gap time.Duration, now time.Time) time.Time {
	t := sched.Next(now.Add(-gap - time.Second))
	for i := 0; i < gapTurns; i++ {
		next := sched.Next(t)
		if next.IsZero() || next.After(now) {
			break
		}
		t = next
	}
	return t
}

// aligned returns sched, with an "@every D" schedule counted from the Unix
// epoch rather than from the process's start, so that replicas started at
// different times share its turns (@every 15m fires at :00, :15, :30, :45).
func aligned(sched cron.Schedule) cron.Schedule {
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		return epochEvery(every.Delay)
	}
	return sched
}

// epochEvery fires at every multiple of its duration since the Unix epoch.
type epochEvery time.Duration

// Next implements cron.Schedule.
func (e epochEvery) Next(t time.Time) time.Time {
	d := time.Duration(e)
	return time.Unix(0, (t.UnixNano()/int64(d)+1)*int64(d)).In(t.Location())
}

// gapTurns bounds how far longestGap looks ahead: enough turns to cover a
// week of an hourly schedule, cheap for an every-minute one.
const gapTurns = 200

// serveMetrics serves m and a health check at addr until stop is called,
// and, with a board, the status page (/status, /status.json). /healthz
// answers 200 while store answers; the caller keeps store open until stop
// has returned.
func serveMetrics(addr string, m *metrics.Registry, store state.Store, board *statusBoard, logger hclog.Logger) (stop func(), err error) {
	healthy := func(ctx context.Context) error {
		done := make(chan error, 1)
		go func() { _, err := store.Get(healthPipeline, healthPipeline); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("the state store does not answer: %w", err)
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("the state store did not answer within %s", metrics.HealthTimeout)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if everyInterface(addr) {
		logger.Warn("metrics and health are served on every network interface: anyone who can reach this host can read pipeline names and row counts; name an address (127.0.0.1:PORT, or the pod's) to keep them in", "addr", addr)
	}
	var handler http.Handler = m.Handler(healthy)
	if board != nil {
		mux := http.NewServeMux()
		mux.Handle("/", handler)
		mux.Handle("/status", board)
		mux.Handle("/status.json", board)
		handler = mux
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	logger.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	if board != nil {
		logger.Info("serving the status page", "url", "http://"+ln.Addr().String()+"/status")
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// healthPipeline is the name /healthz reads from the state store: no
// pipeline can have it (names start with a letter or digit), so reading it
// only proves that the store answers.
const healthPipeline = "_healthz"

// namesOf lists the names of pls, in order.
func namesOf(pls []*config.Pipeline) []string {
	out := make([]string, len(pls))
	for i, pl := range pls {
		out[i] = pl.Name
	}
	return out
}

// connectorNames lists the connector blocks of a file, in order.
func connectorNames(f *config.File) []string {
	var out []string
	for _, c := range f.Connectors {
		out = append(out, c.Name)
	}
	return out
}

// everyInterface says whether a listen address names no host (":9464") or
// the unspecified one ("0.0.0.0:9464", "[::]:9464"): every interface.
func everyInterface(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}

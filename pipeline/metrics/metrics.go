// Package metrics exposes what pipeline runs did as Prometheus metrics: for
// `pipeline serve` on an HTTP endpoint (with /healthz beside it), and for
// `pipeline run` as a textfile node_exporter's textfile collector reads, the
// usual way to monitor cron jobs.
//
// Every metric is labelled by pipeline. Counters add up across the runs of a
// process; gauges say how the last run ended and when one last succeeded, so
// an alert can fire on "no success for 2 hours" whatever the schedule.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"pipehost/connector"
	"pipehost/pipeline/engine"
	"pipehost/plugins"
)

// Namespace prefixes every metric name.
const Namespace = "pipehost"

// Registry holds the metrics of one host process.
type Registry struct {
	reg         *prometheus.Registry
	rowsRead    *prometheus.CounterVec
	rowsWritten *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
	lastStatus  *prometheus.GaugeVec
	running     *prometheus.GaugeVec
	requests    *prometheus.CounterVec
	retries     *prometheus.CounterVec
	restarts    *prometheus.CounterVec
	skipped     *prometheus.CounterVec
	interval    *prometheus.GaugeVec
	notifyFail  *prometheus.CounterVec
}

// New returns a registry with every metric declared (and the Go runtime's
// and the process's, as Prometheus clients usually expose).
func New() *Registry {
	m := &Registry{reg: prometheus.NewRegistry()}
	pipeline := []string{"pipeline"}
	m.rowsRead = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rows_read_total",
		Help: "Rows read from the pipeline's source (a connector stream, or an input file for a push)."}, pipeline)
	m.rowsWritten = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rows_written_total",
		Help: "Rows committed into the sink, or accepted by the connector for a push."}, pipeline)
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rows_rejected_total",
		Help: "Rows rejected by the mapping or the connector (pushes), listed in the rejects file."}, pipeline)
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "runs_total",
		Help: "Runs ended, by status (ok, failed)."}, []string{"pipeline", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "run_duration_seconds",
		Help:    "How long runs took, successful or not.",
		Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}}, pipeline)
	m.lastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "last_success_timestamp_seconds",
		Help: "When the pipeline's last successful run ended (Unix seconds)."}, pipeline)
	m.lastStatus = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "last_run_success",
		Help: "1 when the pipeline's last run succeeded, 0 when it failed."}, pipeline)
	m.running = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "pipeline_running",
		Help: "1 while a run of the pipeline is going on."}, pipeline)
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "requests_total",
		Help: "Requests connectors made to their services, by endpoint and status class (2xx, 4xx, 5xx, error)."},
		[]string{"connector", "endpoint", "class"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "retries_total",
		Help: "Requests that were retries of a failed attempt, by endpoint."}, []string{"connector", "endpoint"})
	m.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "turns_skipped_total",
		Help: "Scheduled turns not run because the pipeline was running elsewhere (its lock or destination was held)."}, pipeline)
	m.restarts = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "plugin_restarts_total",
		Help: "Plugin processes that exited in the middle of a run (crashed or killed); the next run starts a fresh one."},
		[]string{"connector"})
	m.interval = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "schedule_interval_seconds",
		Help: "The longest gap between two turns of the pipeline's schedule (serve only), so an alert can say \"no success for twice its schedule\"."}, pipeline)
	m.notifyFail = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "notifications_failed_total",
		Help: "Notifications (notify blocks) not delivered after their retries; the runs they were about are unaffected."}, []string{"notify"})
	m.reg.MustRegister(m.notifyFail, m.interval, m.restarts, m.skipped, m.requests, m.retries, m.rowsRead, m.rowsWritten, m.rejected, m.runs, m.duration, m.lastSuccess, m.lastStatus, m.running,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Started marks a run of pipeline as going on.
func (m *Registry) Started(pipeline string) { m.running.WithLabelValues(pipeline).Set(1) }

// Observe records how a run ended.
func (m *Registry) Observe(r engine.Result) {
	m.running.WithLabelValues(r.Pipeline).Set(0)
	m.rowsRead.WithLabelValues(r.Pipeline).Add(float64(r.RowsRead))
	m.rowsWritten.WithLabelValues(r.Pipeline).Add(float64(r.Rows))
	m.rejected.WithLabelValues(r.Pipeline).Add(float64(r.Rejected()))
	m.duration.WithLabelValues(r.Pipeline).Observe(r.Duration.Seconds())
	if r.Err != nil {
		var exited *plugins.ExitedError
		if errors.As(r.Err, &exited) {
			m.restarts.WithLabelValues(exited.Connector).Inc()
		}
		m.runs.WithLabelValues(r.Pipeline, "failed").Inc()
		m.lastStatus.WithLabelValues(r.Pipeline).Set(0)
		return
	}
	m.runs.WithLabelValues(r.Pipeline, "ok").Inc()
	m.lastStatus.WithLabelValues(r.Pipeline).Set(1)
	m.lastSuccess.WithLabelValues(r.Pipeline).Set(float64(time.Now().Unix()))
}

// Declare exports every counter of the pipelines and connectors named at
// 0 before its first event, so that rate() and increase() see the first
// run's rows, failures and plugin restarts (a series that first appears at
// 1 is read as no increase). Request counts, labelled by endpoint, appear
// with the first request.
func (m *Registry) Declare(pipelines, connectors []string) {
	for _, p := range pipelines {
		m.running.WithLabelValues(p).Set(0)
		m.rowsRead.WithLabelValues(p)
		m.rowsWritten.WithLabelValues(p)
		m.rejected.WithLabelValues(p)
		m.runs.WithLabelValues(p, "ok")
		m.runs.WithLabelValues(p, "failed")
		m.skipped.WithLabelValues(p)
	}
	for _, c := range connectors {
		m.restarts.WithLabelValues(c)
	}
}

// Schedule exports the longest gap between two turns of pipeline's
// schedule, which alert rules compare with the age of its last success.
func (m *Registry) Schedule(pipeline string, longest time.Duration) {
	m.interval.WithLabelValues(pipeline).Set(longest.Seconds())
}

// NotificationFailed counts a notification a notify block could not
// deliver.
func (m *Registry) NotificationFailed(notify string) { m.notifyFail.WithLabelValues(notify).Inc() }

// Skipped counts a scheduled turn not run because another host or run held
// the pipeline (serve replicas sharing a state store): not a failure.
func (m *Registry) Skipped(pipeline string) {
	m.running.WithLabelValues(pipeline).Set(0)
	m.skipped.WithLabelValues(pipeline).Inc()
}

// ObserveRequests adds a connector's request counts (what it made since
// the last time they were observed: callers pass each count once).
func (m *Registry) ObserveRequests(connectorName string, s connector.Stats) {
	for e, byClass := range s.Requests {
		for class, n := range byClass {
			m.requests.WithLabelValues(connectorName, e, class).Add(float64(n))
		}
	}
	for e, n := range s.Retries {
		m.retries.WithLabelValues(connectorName, e).Add(float64(n))
	}
}

// HealthTimeout bounds one /healthz check: a state store that does not
// answer within it is unhealthy.
const HealthTimeout = 5 * time.Second

// Handler serves /metrics and /healthz. healthy is asked on every /healthz:
// nil answers 200 "ok", an error 503 with its text (which must hold no
// secret).
func (m *Registry) Handler(healthy func(ctx context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), HealthTimeout)
		defer cancel()
		if err := healthy(ctx); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

// WriteTextfile writes the metrics in Prometheus' text format to path,
// atomically (a temporary file renamed into place), for node_exporter's
// textfile collector.
func (m *Registry) WriteTextfile(path string) error {
	return prometheus.WriteToTextfile(path, m.reg)
}

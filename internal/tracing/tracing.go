// Package tracing sets up OpenTelemetry traces for a process of the host
// or of a plugin: spans are exported with OTLP over HTTP (protobuf) when the
// standard variables say where (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, with the exporter's other
// OTEL_EXPORTER_OTLP_* settings), and nothing is recorded otherwise. The
// W3C trace context crosses the plugin boundary in gRPC metadata, so a
// plugin's spans are children of the host's.
package tracing

import (
	"context"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Enabled says whether the environment asks for traces: an OTLP endpoint
// is named, and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none
// turns them off.
func Enabled() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(os.Getenv("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Env lists the OTEL_* variables of this process, for a plugin the host
// starts with an otherwise clean environment: its spans then go where the
// host's go. The service name is the plugin's own.
func Env() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "OTEL_") && name != "OTEL_SERVICE_NAME" {
			out = append(out, kv)
		}
	}
	return out
}

// flushTimeout bounds Flush and the flush at shutdown: a collector that is
// down costs a run this much at most, never its outcome.
const flushTimeout = 5 * time.Second

// Start installs the W3C propagator and, when Enabled, a tracer provider
// for service that batches spans to the OTLP endpoint. The returned stop
// flushes what is left (within flushTimeout) and shuts the provider down.
// An exporter that cannot be built is returned as an error, and tracing
// stays off.
func Start(ctx context.Context, service string) (stop func(), err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if !Enabled() {
		return func() {}, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return func() {}, err
	}
	res, _ := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service)))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		tp.Shutdown(ctx)
	}, nil
}

// Flush exports the spans ended so far (within flushTimeout): a plugin
// calls it at the end of each call, since the host may stop it at any time
// after.
func Flush() {
	if tp, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		tp.ForceFlush(ctx)
	}
}

// Tracer is the tracer of a part of the host (its instrumentation scope).
func Tracer(scope string) trace.Tracer { return otel.Tracer("pipehost/" + scope) }

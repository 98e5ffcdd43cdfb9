package engine

import (
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"pipehost/internal/tracing"
)

// tracer makes the engine's spans: a run (RunAll), each pipeline, each
// commit. Their attributes are names and counts, never a config value.
var tracer = tracing.Tracer("engine")

// endSpan ends span, marked as failed with err's text when err is not nil
// (the error texts the host prints, which never hold a secret).
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

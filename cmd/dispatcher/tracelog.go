package main

import (
	"context"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/trace"
)

// traceHandler adds trace_id and span_id to every record logged with a
// context that carries a span (the request log line, a failed request's
// error), so a log line leads to its trace and a trace to its logs.
type traceHandler struct {
	slog.Handler
}

// withTraceIDs wraps h so its records carry the span of their context.
func withTraceIDs(h slog.Handler) slog.Handler {
	return traceHandler{h}
}

// Handle adds the ids of the context's span, when it has a valid one.
func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		// A copy: the caller's record may be handed to other handlers.
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper on loggers derived with With, and names the
// ids that the Temporal SDK's tracing interceptor adds to workflow and
// activity loggers (TraceID, SpanID) as the other lines do: before, a log
// pipeline joining on trace_id missed the worker's side of a trace.
func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	attrs = slices.Clone(attrs)
	for i, a := range attrs {
		if key, ok := sdkTraceKeys[a.Key]; ok {
			attrs[i] = slog.String(key, a.Value.String())
		}
	}
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

// sdkTraceKeys are the keys of the Temporal SDK's tracing interceptor, and
// those they are logged under.
var sdkTraceKeys = map[string]string{"TraceID": "trace_id", "SpanID": "span_id"}

// WithGroup keeps the wrapper on loggers derived with WithGroup.
func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

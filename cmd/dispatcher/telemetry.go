package main

import (
	"context"
	"fmt"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// propagator carries the trace across HTTP (traceparent) and into
// Temporal's workflow and activity headers.
var propagator = propagation.TraceContext{}

// newTracerProvider returns an OTLP/HTTP tracer provider when an endpoint
// is configured (the exporter also reads the other standard
// OTEL_EXPORTER_OTLP_* variables), and a no-op one otherwise, so tracing
// costs nothing unless configured.
func newTracerProvider(ctx context.Context, cfg config) (trace.TracerProvider, func(context.Context) error, error) {
	if cfg.OTLPEndpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.OTLPEndpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	name := cfg.ServiceName
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(name))),
	)
	return tp, tp.Shutdown, nil
}

// temporalTracing is Temporal's own OpenTelemetry interceptor: it links the
// span that starts a workflow to the workflow's and its activities' spans.
func temporalTracing(tp trace.TracerProvider) (interceptor.ClientInterceptor, error) {
	return temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer:            tp.Tracer("dispatcher/temporal"),
		TextMapPropagator: propagator,
	})
}

// tracedHTTPClient calls task functions with a client span and a
// traceparent header. It follows redirects only on the same host: Go drops
// Authorization on a cross-host redirect but not a function's own headers
// (API keys) nor the signature.
func tracedHTTPClient(tp trace.TracerProvider) *http.Client {
	// Keep connections to functions alive under concurrency (the default
	// keeps 2 per host and closes the rest).
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 32
	return &http.Client{
		Transport: otelhttp.NewTransport(transport,
			otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagator)),
		CheckRedirect: sameHostRedirects,
	}
}

func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return fmt.Errorf("stopped after %d redirects", len(via))
	}
	if req.URL.Host != via[0].URL.Host {
		return fmt.Errorf("refusing a redirect from %s to another host, %s: configure the function's final URL", via[0].URL.Host, req.URL.Host)
	}
	return nil
}

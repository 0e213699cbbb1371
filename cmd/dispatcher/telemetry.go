package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// propagator carries the trace across HTTP (traceparent) and into
// Temporal's workflow and activity headers.
var propagator = propagation.TraceContext{}

// newTracerProvider returns an OTLP/HTTP tracer provider when an endpoint
// is configured, and nil otherwise: with tracing off the Temporal client
// gets no tracing interceptor and function calls no tracing transport,
// which even on a no-op provider cost CPU on every call. The exporter
// also reads the other standard OTEL_EXPORTER_OTLP_* variables (headers,
// timeout, compression, certificate) from the environment.
func newTracerProvider(ctx context.Context, cfg config) (trace.TracerProvider, func(context.Context) error, error) {
	endpoint, err := tracesEndpoint(cfg)
	if err != nil || endpoint == "" {
		return nil, func(context.Context) error { return nil }, err
	}
	res, err := traceResource(ctx, cfg, currentBuild())
	if err != nil {
		return nil, nil, err
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(redactingExporter{exp}), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

// redactingExporter exports spans with the URL of a function call
// (url.full) cut to its scheme, host and port, as the logs and failures
// show it: a webhook's path or query is often its token, and traces go
// to whoever may read them (README, "Outbound safety").
type redactingExporter struct{ sdktrace.SpanExporter }

func (e redactingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	out := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		out[i] = redactedSpan{s}
	}
	return e.SpanExporter.ExportSpans(ctx, out)
}

// redactedSpan is a span whose url.full is cut (redactingExporter).
type redactedSpan struct{ sdktrace.ReadOnlySpan }

func (s redactedSpan) Attributes() []attribute.KeyValue {
	attrs := slices.Clone(s.ReadOnlySpan.Attributes())
	for i, a := range attrs {
		if a.Key == semconv.URLFullKey {
			attrs[i] = semconv.URLFull(urlOrigin(a.Value.AsString()))
		}
	}
	return attrs
}

// urlOrigin is raw's scheme://host[:port], or "" when raw is no URL.
func urlOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// tracesEndpoint is the URL spans are posted to, as the OpenTelemetry
// specification reads the variables: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// as it is; OTEL_EXPORTER_OTLP_ENDPOINT is a base URL, to which the
// signal's path /v1/traces is appended. "" means tracing is off.
func tracesEndpoint(cfg config) (string, error) {
	if cfg.OTLPTraces != "" {
		if _, err := otlpURL(cfg.OTLPTraces); err != nil {
			return "", fmt.Errorf("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: %w", err)
		}
		return cfg.OTLPTraces, nil
	}
	if cfg.OTLPEndpoint == "" {
		return "", nil
	}
	u, err := otlpURL(cfg.OTLPEndpoint)
	if err != nil {
		return "", fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	u.RawPath = ""
	return u.String(), nil
}

func otlpURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s is not an http:// or https:// URL with a host", redactURL(raw))
	}
	return u, nil
}

// traceResource describes the process on its spans: service name and
// version, the SDK, and OTEL_RESOURCE_ATTRIBUTES. OTEL_SERVICE_NAME wins
// over a service.name among those attributes, as the specification says.
func traceResource(ctx context.Context, cfg config, build buildInfo) (*resource.Resource, error) {
	attrs, err := resourceAttributes(cfg.OTelResource)
	if err != nil {
		return nil, err
	}
	name := cfg.ServiceName
	if name == "" {
		name = "dispatcher"
		for _, a := range attrs {
			if a.Key == semconv.ServiceNameKey {
				name = a.Value.AsString()
			}
		}
	}
	attrs = append(attrs, semconv.ServiceName(name), semconv.ServiceVersion(build.Version))
	return resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(attrs...))
}

// resourceAttributes parses OTEL_RESOURCE_ATTRIBUTES: key=value pairs
// separated by commas, values percent-encoded.
func resourceAttributes(raw string) ([]attribute.KeyValue, error) {
	var attrs []attribute.KeyValue
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	for pair := range strings.SplitSeq(raw, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %q is not key=value", strings.TrimSpace(pair))
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: the value of %s is not percent-encoded: %w", k, err)
		}
		attrs = append(attrs, attribute.String(k, val))
	}
	return attrs, nil
}

// temporalTracing is Temporal's own OpenTelemetry interceptor: it links the
// span that starts a workflow to the workflow's and its activities' spans.
func temporalTracing(tp trace.TracerProvider) (interceptor.ClientInterceptor, error) {
	return temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer:            tp.Tracer("dispatcher/temporal"),
		TextMapPropagator: propagator,
	})
}

// tracingTransport wraps the transport of task calls with a client span
// and a traceparent header; nil with tp nil (tracing off), which leaves
// it plain.
func tracingTransport(tp trace.TracerProvider) func(http.RoundTripper) http.RoundTripper {
	if tp == nil {
		return nil
	}
	return func(rt http.RoundTripper) http.RoundTripper {
		return otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagator))
	}
}

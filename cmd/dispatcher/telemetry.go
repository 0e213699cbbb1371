package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	"golang.org/x/net/http/httpguts"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"

	"github.com/dispatcherhq/dispatcher/intake"
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
func newTracerProvider(ctx context.Context, cfg config, log *slog.Logger) (trace.TracerProvider, func(context.Context) error, error) {
	endpoint, err := tracesEndpoint(cfg)
	if err != nil || endpoint == "" {
		return nil, func(context.Context) error { return nil }, err
	}
	// The exporter's errors (a collector that does not answer) in the
	// process's log, in its format. Before, in text, whatever the format.
	otel.SetLogger(logr.FromSlogHandler(log.Handler()))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		// Cut: it quotes the collector's answer, which may be megabytes.
		log.Warn("traces not exported", "err", intake.BoundReason(err.Error()))
	}))
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
	// Checked also when the traces' own wins: the exporter reads it all
	// the same, and logged one that does not parse whole, its password
	// with it.
	if cfg.OTLPEndpoint != "" {
		if _, err := otlpURL(cfg.OTLPEndpoint); err != nil {
			return "", fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
		}
	}
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
		return nil, fmt.Errorf("%s is not an http:// or https:// URL with a host", redactedValue("OTEL_EXPORTER_OTLP_ENDPOINT", raw))
	}
	if u.User != nil { // before, dropped without a word, and the collector answered 401
		return nil, fmt.Errorf("%s holds a user name and password, which the exporter does not send: put them in OTEL_EXPORTER_OTLP_HEADERS (authorization=Basic%%20<base64 of user:password>)", redactedValue("OTEL_EXPORTER_OTLP_ENDPOINT", raw))
	}
	return u, nil
}

// checkOTLPEnv refuses the standard OTEL_EXPORTER_OTLP_* variables that
// the exporter reads itself (otlptracehttp), general and of traces, when
// they do not parse. Before, it logged the fault, in text whatever the
// log format, with a header's value (a collector's credentials), and went
// on without the setting: the system's CAs for a certificate file it
// could not read, no header, the default timeout. The errors name the
// variable, never a header's value.
func checkOTLPEnv(getenv func(string) string) error {
	if err := checkSamplerEnv(getenv); err != nil {
		return err
	}
	for _, signal := range []string{"", "TRACES_"} {
		name := func(s string) string { return "OTEL_EXPORTER_OTLP_" + signal + s }
		get := func(s string) string { return strings.TrimSpace(getenv(name(s))) }
		if v := get("HEADERS"); v != "" {
			for i, pair := range strings.Split(v, ",") {
				k, val, ok := strings.Cut(pair, "=")
				if k = strings.TrimSpace(k); !ok || !httpguts.ValidHeaderFieldName(k) {
					return fmt.Errorf("%s: entry %d is not name=value (a header's name, then its value percent-encoded)", name("HEADERS"), i+1)
				}
				if val, err := url.PathUnescape(val); err != nil || !httpguts.ValidHeaderFieldValue(val) {
					return fmt.Errorf("%s: the value of %s is not a header's value percent-encoded (a %% before two hex digits, %%20 for a space)", name("HEADERS"), k)
				}
			}
		}
		if v := get("TIMEOUT"); v != "" {
			if ms, err := strconv.Atoi(v); err != nil || ms <= 0 {
				return fmt.Errorf("%s=%q: a whole number of milliseconds, over 0 (e.g. 10000)", name("TIMEOUT"), v)
			}
		}
		if v := get("COMPRESSION"); v != "" && v != "gzip" && v != "none" {
			return fmt.Errorf("%s=%q: gzip or none", name("COMPRESSION"), v)
		}
		if v := get("CERTIFICATE"); v != "" {
			pem, err := os.ReadFile(v)
			if err == nil && !x509.NewCertPool().AppendCertsFromPEM(pem) {
				err = errors.New("no PEM certificate in it")
			}
			if err != nil {
				return fmt.Errorf("%s=%s: the CA certificates the collector's is checked against: %w", name("CERTIFICATE"), v, err)
			}
		}
		cert, key := get("CLIENT_CERTIFICATE"), get("CLIENT_KEY")
		if (cert == "") != (key == "") {
			return fmt.Errorf("%s and %s: set both (the client certificate and its key) or neither", name("CLIENT_CERTIFICATE"), name("CLIENT_KEY"))
		}
		if cert != "" {
			if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
				return fmt.Errorf("%s=%s, %s=%s: %w", name("CLIENT_CERTIFICATE"), cert, name("CLIENT_KEY"), key, err)
			}
		}
	}
	return nil
}

// checkSamplerEnv refuses an OTEL_TRACES_SAMPLER the SDK does not know,
// or a ratio that is not one: the SDK would sample every trace instead,
// and say only "traces not exported", a bill for what was meant to be 1 %.
func checkSamplerEnv(getenv func(string) string) error {
	sampler := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER")))
	switch sampler {
	case "", "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
		return nil
	case "traceidratio", "parentbased_traceidratio":
	default:
		return fmt.Errorf("OTEL_TRACES_SAMPLER=%q: always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", sampler)
	}
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
	if r, err := strconv.ParseFloat(arg, 64); arg != "" && (err != nil || !(r >= 0 && r <= 1)) {
		return fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: the ratio of traces %s keeps, from 0 to 1 (0.01 for 1 %%)", arg, sampler)
	}
	return nil
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

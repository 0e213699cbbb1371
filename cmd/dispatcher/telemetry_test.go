package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTracesEndpoint: a base endpoint gets the signal's path, as the
// OpenTelemetry specification says for OTEL_EXPORTER_OTLP_ENDPOINT; the
// traces endpoint is used as it is.
func TestTracesEndpoint(t *testing.T) {
	for _, tc := range []struct {
		base, traces string
		want         string
	}{
		{"", "", ""},
		{"http://collector:4318", "", "http://collector:4318/v1/traces"},
		{"http://collector:4318/", "", "http://collector:4318/v1/traces"},
		{"https://otel.example.com/ingest/", "", "https://otel.example.com/ingest/v1/traces"},
		{"", "http://collector:4318/custom/traces", "http://collector:4318/custom/traces"},
		{"http://ignored:4318", "https://collector.example.com/v1/traces", "https://collector.example.com/v1/traces"},
	} {
		got, err := tracesEndpoint(config{OTLPEndpoint: tc.base, OTLPTraces: tc.traces})
		if err != nil || got != tc.want {
			t.Errorf("base %q, traces %q: %q, %v; want %q", tc.base, tc.traces, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		cfg     config
		setting string
	}{
		{config{OTLPEndpoint: "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{config{OTLPTraces: "grpc://collector:4317"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{config{OTLPEndpoint: "http://user:s3cret@collector:4318/%zz"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		// Before, the user and password were dropped without a word.
		{config{OTLPEndpoint: "http://user:s3cret@collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{config{OTLPTraces: "https://user:s3cret@collector:4318/v1/traces"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{config{OTLPTraces: "https://s3cret@collector:4318/v1/traces"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: https://xxxxx@collector:4318/v1/traces holds"},
		{config{OTLPEndpoint: "user:s3cret@127.0.0.1:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT: xxxxx@127.0.0.1:4318 is not"},
		// The traces' own wins, but the exporter reads the general one too.
		{config{OTLPTraces: "http://collector:4318/v1/traces", OTLPEndpoint: "https://user:s3cr%ss@collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
	} {
		_, err := tracesEndpoint(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.setting) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%+v: %v, want an error naming %s and no password", tc.cfg, err, tc.setting)
		}
	}
}

// TestTracesProtocol: the exporter speaks OTLP/HTTP with protobuf; a
// protocol setting that asks for another is refused, naming it. Before,
// grpc was taken without a word, and nothing was exported.
func TestTracesProtocol(t *testing.T) {
	const endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT"
	for _, name := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		for v, ok := range map[string]bool{"grpc": false, "http/json": false, "http/protobuf": true} {
			_, err := loadConfig(func(k string) string { return map[string]string{name: v, endpoint: "http://collector:4318"}[k] })
			if ok != (err == nil) || err != nil && !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%s: %v", name, v, err)
			}
		}
	}
	// The traces' own wins, as the specification says; and without an
	// endpoint, tracing is off: a pod-wide grpc concerns others.
	for _, env := range []map[string]string{
		{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", endpoint: "http://collector:4318"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
	} {
		if _, err := loadConfig(func(k string) string { return env[k] }); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
}

// TestOTLPSettings: the standard variables the exporter reads itself are
// refused at start when they do not parse, naming the variable and never
// a header's value. Before, the exporter logged each fault (a header's
// value with it) and went on without the setting.
func TestOTLPSettings(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, signal := range []string{"OTEL_EXPORTER_OTLP_", "OTEL_EXPORTER_OTLP_TRACES_"} {
		for _, tc := range []struct{ name, value string }{
			{"HEADERS", "authorization=Bearer%20s3cret%zz"},
			{"HEADERS", "authorization Bearer s3cret"},
			{"HEADERS", "x-ok=1,bad name=s3cret"},
			{"TIMEOUT", "abc"},
			{"TIMEOUT", "0"},
			{"COMPRESSION", "zstd"},
			{"CERTIFICATE", filepath.Join(dir, "missing.pem")},
			{"CERTIFICATE", notPEM},
			{"CLIENT_CERTIFICATE", notPEM},
		} {
			name := signal + tc.name
			_, err := loadConfig(func(k string) string {
				return map[string]string{name: tc.value, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}[k]
			})
			if err == nil || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%s=%s: %v, want an error naming it, and no header's value", name, tc.value, err)
			}
		}
	}
	// Before, accepted: the SDK sampled every trace instead (a probe).
	for _, tc := range []struct{ sampler, arg, name string }{
		{"bogus", "", "OTEL_TRACES_SAMPLER"},
		{"traceidratio", "abc", "OTEL_TRACES_SAMPLER_ARG"},
		{"parentbased_traceidratio", "1.5", "OTEL_TRACES_SAMPLER_ARG"},
		{"traceidratio", "-0.1", "OTEL_TRACES_SAMPLER_ARG"},
		{"traceidratio", "NaN", "OTEL_TRACES_SAMPLER_ARG"},
	} {
		_, err := loadConfig(func(k string) string {
			return map[string]string{"OTEL_TRACES_SAMPLER": tc.sampler, "OTEL_TRACES_SAMPLER_ARG": tc.arg, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}[k]
		})
		if err == nil || !strings.Contains(err.Error(), tc.name+"=") {
			t.Errorf("OTEL_TRACES_SAMPLER=%s OTEL_TRACES_SAMPLER_ARG=%s: %v, want an error naming %s", tc.sampler, tc.arg, err, tc.name)
		}
	}
	good := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_SAMPLER": " ParentBased_TraceIDRatio", "OTEL_TRACES_SAMPLER_ARG": "0.01",
		"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20abc, x-tenant = acme", "OTEL_EXPORTER_OTLP_TIMEOUT": "5000",
		"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip"}
	if _, err := loadConfig(func(k string) string { return good[k] }); err != nil {
		t.Errorf("%v: %v", good, err)
	}
	// Tracing off: the variables concern others (a pod-wide setting).
	if _, err := loadConfig(func(k string) string { return map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "abc"}[k] }); err != nil {
		t.Errorf("tracing off: %v", err)
	}
}

// TestTracesNotExportedInTheLog: an export that fails (the collector does
// not answer) is said in the process's log, in its format. Before, the
// exporter printed it in text, whatever DISPATCHER_LOG_FORMAT said.
func TestTracesNotExportedInTheLog(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // the batch's export in the background, every 50 ms
	lines := make(chan []byte, 16)
	cfg := configFrom(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_TIMEOUT": "2000"})
	tp, shutdown, err := newTracerProvider(context.Background(), cfg, slog.New(slog.NewJSONHandler(writerFunc(func(b []byte) (int, error) {
		select {
		case lines <- bytes.Clone(b):
		default: // the test has the first
		}
		return len(b), nil
	}), nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second) // the export retried meanwhile
		defer cancel()
		_ = shutdown(ctx)
	}()
	_, span := tp.Tracer("test").Start(context.Background(), "lost")
	span.End()
	select {
	case b := <-lines:
		var line struct{ Level, Msg, Err string }
		if err := json.Unmarshal(b, &line); err != nil || line.Level != "WARN" || line.Msg != "traces not exported" || line.Err == "" {
			t.Fatalf("log %q (%v), want a JSON line saying the traces were not exported, and why", b, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the failed export is not in the log")
	}
}

// TestTraceResource: OTEL_RESOURCE_ATTRIBUTES are on the spans' resource,
// OTEL_SERVICE_NAME wins over their service.name, and the default name is
// dispatcher.
func TestTraceResource(t *testing.T) {
	build := buildInfo{Version: "v1.2.3"}
	for _, tc := range []struct {
		name, attrs string
		want        map[string]string
	}{
		{"", "", map[string]string{"service.name": "dispatcher", "service.version": "v1.2.3", "telemetry.sdk.name": "opentelemetry"}},
		{"", "deployment.environment=prod, service.name=from-attrs,team=a%2Cb",
			map[string]string{"service.name": "from-attrs", "deployment.environment": "prod", "team": "a,b"}},
		{"dispatcher-api", "service.name=from-attrs", map[string]string{"service.name": "dispatcher-api"}},
	} {
		res, err := traceResource(context.Background(), config{ServiceName: tc.name, OTelResource: tc.attrs}, build)
		if err != nil {
			t.Fatalf("%q %q: %v", tc.name, tc.attrs, err)
		}
		got := map[string]string{}
		for _, kv := range res.Attributes() {
			got[string(kv.Key)] = kv.Value.String()
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("OTEL_SERVICE_NAME=%q OTEL_RESOURCE_ATTRIBUTES=%q: %s = %q, want %q (all: %v)", tc.name, tc.attrs, k, got[k], v, got)
			}
		}
	}
	if _, err := traceResource(context.Background(), config{OTelResource: "a=1,oops"}, build); err == nil || !strings.Contains(err.Error(), "OTEL_RESOURCE_ATTRIBUTES") {
		t.Errorf("a pair without =: %v, want an error naming OTEL_RESOURCE_ATTRIBUTES", err)
	}
}

// TestTracingOffInstallsNothing: without an exporter there is no tracer
// provider, no Temporal tracing interceptor and no tracing transport on
// function calls; with one, both are installed.
func TestTracingOffInstallsNothing(t *testing.T) {
	cfg := configFrom(t, nil)
	tp, _, err := newTracerProvider(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil || tp != nil {
		t.Fatalf("tracing off: provider %v, %v; want none", tp, err)
	}
	log := slog.New(slog.DiscardHandler)
	off, err := clientOptions(cfg, log, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(off.Interceptors) != 0 {
		t.Errorf("tracing off: %d Temporal interceptors, want none", len(off.Interceptors))
	}
	if tracingTransport(nil) != nil {
		t.Error("tracing off: function calls go through a tracing transport, want a plain one")
	}

	on, shutdown, err := newTracerProvider(context.Background(), configFrom(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}), log)
	if err != nil || on == nil {
		t.Fatalf("tracing on: provider %v, %v", on, err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	traced, err := clientOptions(cfg, log, nil, on)
	if err != nil {
		t.Fatal(err)
	}
	if len(traced.Interceptors) != 1 {
		t.Errorf("tracing on: %d Temporal interceptors, want the tracing one", len(traced.Interceptors))
	}
	if wrap := tracingTransport(on); wrap == nil || wrap(http.DefaultTransport) == http.DefaultTransport {
		t.Error("tracing on: function calls carry no trace")
	}
}

package main

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/api"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestTracing runs serve in-process with an in-memory span exporter and
// checks that the intake request, the workflow, its activities and the
// outgoing function call form one trace, and that the function receives
// that trace in its traceparent header.
func TestTracing(t *testing.T) {
	srv := testenv.Temporal(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))

	var mu sync.Mutex
	var traceparent string
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		traceparent = r.Header.Get("traceparent")
		mu.Unlock()
		w.WriteHeader(200)
	}))
	t.Cleanup(fn.Close)

	env := map[string]string{
		"DATABASE_URL":              testenv.SQLite(t),
		"DISPATCHER_JWT_SECRET":     e2eSecret,
		"TEMPORAL_ADDRESS":          srv.FrontendHostPort(),
		"DISPATCHER_HTTP_ADDR":      "127.0.0.1:0",
		"DISPATCHER_OUTBOUND_ALLOW": "127.0.0.0/8",
	}
	cfg, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	out := &addrWriter{found: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	p := process{cfg: cfg, stdout: out, log: slog.New(slog.NewTextHandler(io.Discard, nil)), tracer: tp, api: true, worker: true}
	go func() { done <- p.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var url string
	select {
	case url = <-out.found:
	case err := <-done:
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	s := &system{t: t, url: url, temporal: srv.Client(), logs: &testenv.Buffer{}}
	s.waitReady()
	tok, err := tokenFor(e2eSecret)
	if err != nil {
		t.Fatal(err)
	}
	s.token = tok
	s.call("POST", "/functions/v1", map[string]any{"name": "traced", "url": fn.URL}, 200)
	s.call("POST", "/dispatchers/v1", map[string]any{"eventType": "traced", "actions": []any{
		map[string]any{"type": "task", "functionName": "traced"}}}, 200)
	acc := s.call("POST", "/events/v1", map[string]any{"id": "trace-1", "type": "traced"}, 202)
	if _, failed := s.result(acc["workflowId"].(string), acc["runId"].(string)); failed {
		t.Fatal("dispatch failed")
	}

	spans := exp.GetSpans()
	var intake *tracetest.SpanStub
	for i := range spans {
		if spans[i].Name == "POST /events/v1" {
			intake = &spans[i]
		}
	}
	if intake == nil {
		t.Fatalf("no span for the intake request among %v", names(spans))
	}
	traceID := intake.SpanContext.TraceID()
	inTrace := map[string]bool{}
	for _, sp := range spans {
		if sp.SpanContext.TraceID() == traceID {
			inTrace[sp.Name] = true
		}
	}
	for _, want := range []string{"StartWorkflow:Dispatch", "RunWorkflow:Dispatch", "HTTP POST"} {
		found := false
		for name := range inTrace {
			found = found || strings.HasPrefix(name, want)
		}
		if !found {
			t.Errorf("trace of the intake lacks a %q span; it has %v (all spans: %v)", want, inTrace, names(spans))
		}
	}
	t.Logf("spans in the intake trace: %v", inTrace)
	activity := false
	for name := range inTrace {
		activity = activity || strings.HasPrefix(name, "RunActivity:")
	}
	if !activity {
		t.Errorf("trace lacks the activity span; it has %v", inTrace)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(traceparent, traceID.String()) {
		t.Errorf("the function got traceparent %q, want trace %s", traceparent, traceID)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// addrWriter reports the API's address from serve's output.
type addrWriter struct {
	found chan string
}

var listening = regexp.MustCompile(`dispatcher API listening on (http://[^\s"]+)`)

func (w *addrWriter) Write(p []byte) (int, error) {
	if m := listening.FindSubmatch(p); m != nil {
		select {
		case w.found <- string(m[1]):
		default:
		}
	}
	return len(p), nil
}

func tokenFor(secret string) (string, error) {
	return api.SignToken([]byte(secret), api.TokenClaims{Subject: "test", Permissions: api.Permissions(), TTL: time.Hour}, time.Now())
}

// otlpReceiver is an OTLP/HTTP trace receiver on loopback, as a collector
// would run one: it accepts POST /v1/traces with protobuf bodies and
// keeps every span it got, and every path it was posted to.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
	spans []receivedSpan
}

// receivedSpan is one span as the receiver decoded it.
type receivedSpan struct {
	name, traceID, spanID string
	resource, attributes  map[string]string
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == "PRI" && req.ProtoMajor == 2 {
			// An HTTP/2 client's preface: another package's gRPC client
			// (the tests run side by side) retrying a Temporal server
			// whose port this one now has. The exporter speaks HTTP/1.1
			// to an http:// endpoint, as the spans it sends here show.
			http.Error(w, "not a collector of HTTP/2", http.StatusHTTPVersionNotSupported)
			return
		}
		r.mu.Lock()
		r.paths = append(r.paths, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		if req.Method != "POST" || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces with application/x-protobuf", http.StatusNotFound)
			return
		}
		body := io.Reader(req.Body)
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var export collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &export); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range export.GetResourceSpans() {
			res := map[string]string{}
			for _, kv := range rs.GetResource().GetAttributes() {
				res[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					attrs := map[string]string{}
					for _, kv := range sp.GetAttributes() {
						attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
					}
					r.spans = append(r.spans, receivedSpan{name: sp.GetName(), traceID: hex.EncodeToString(sp.GetTraceId()),
						spanID: hex.EncodeToString(sp.GetSpanId()), resource: res, attributes: attrs})
				}
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

// received returns the spans so far and the paths posted to.
func (r *otlpReceiver) received() ([]receivedSpan, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans), slices.Clone(r.paths)
}

// TestTracesReachOTLPReceiver runs the real binary configured as the
// README says, OTEL_EXPORTER_OTLP_ENDPOINT=http://host:port (no path), and
// checks that a collector listening on the standard path receives the
// intake request's trace with the workflow in it, on the resource the
// settings describe, and that the request's log line names that trace.
func TestTracesReachOTLPReceiver(t *testing.T) {
	recv := startOTLPReceiver(t)
	s := startSystem(t, withEnv(
		"OTEL_EXPORTER_OTLP_ENDPOINT="+recv.URL,
		"OTEL_RESOURCE_ATTRIBUTES=deployment.environment=e2e,service.namespace=dispatch",
		"DISPATCHER_LOG_FORMAT=json",
		"DISPATCHER_LOG_LEVEL=debug", // the request line of a 2xx is debug
	))
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	t.Cleanup(fn.Close)
	// A webhook's path and query are often its token.
	s.call("POST", "/functions/v1", map[string]any{"name": "otlp", "url": fn.URL + "/hook/PATHTOKEN?tok=QUERYTOKEN"}, 200)
	s.call("POST", "/dispatchers/v1", map[string]any{"name": "otlp", "eventType": "otlp_traced", "actions": []any{
		map[string]any{"type": "task", "functionName": "otlp"}}}, 200)
	acc := s.call("POST", "/events/v1", map[string]any{"id": "otlp-1", "type": "otlp_traced", "content": map[string]any{}}, 202)
	if _, failed := s.result(acc["workflowId"].(string), acc["runId"].(string)); failed {
		t.Fatal("dispatch failed")
	}

	// The batch exporter sends every few seconds.
	var intake receivedSpan
	testenv.Eventually(t, 30*time.Second, func() string {
		spans, paths := recv.received()
		var names []string
		for _, sp := range spans {
			names = append(names, sp.name)
			if sp.name == "POST /events/v1" {
				intake = sp
			}
		}
		if intake.traceID == "" {
			return fmt.Sprintf("no span of the intake request yet; requests %v, spans %v", paths, names)
		}
		for _, want := range []string{"StartWorkflow:Dispatch", "RunWorkflow:Dispatch", "HTTP POST"} {
			if !slices.ContainsFunc(spans, func(sp receivedSpan) bool {
				return sp.traceID == intake.traceID && strings.HasPrefix(sp.name, want)
			}) {
				return fmt.Sprintf("the intake's trace has no %q span yet; spans %v", want, names)
			}
		}
		return ""
	})
	spans, paths := recv.received()
	for _, sp := range spans {
		if sp.traceID == intake.traceID && strings.HasPrefix(sp.name, "HTTP POST") && sp.attributes["url.full"] != fn.URL {
			// Before, the whole URL, tokens and all.
			t.Errorf("the function call's span has url.full %q, want %q alone", sp.attributes["url.full"], fn.URL)
		}
	}
	for _, p := range paths {
		if p != "POST /v1/traces" {
			t.Errorf("the exporter sent %s; spans go to POST /v1/traces", p)
		}
	}
	for k, v := range map[string]string{"service.name": "dispatcher", "deployment.environment": "e2e", "service.namespace": "dispatch"} {
		if intake.resource[k] != v {
			t.Errorf("resource %s = %q, want %q (resource %v)", k, intake.resource[k], v, intake.resource)
		}
	}
	if intake.resource["service.version"] == "" {
		t.Errorf("resource has no service.version: %v", intake.resource)
	}

	// The request's log line carries the same trace.
	var logged bool
	for _, line := range strings.Split(s.logs.String(), "\n") {
		var rec struct {
			Msg, Route, Method string
			TraceID            string `json:"trace_id"`
			SpanID             string `json:"span_id"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "request" || rec.Route != "/events/v1" {
			continue
		}
		if rec.TraceID != intake.traceID || rec.SpanID != intake.spanID {
			t.Errorf("the intake's log line names trace %q span %q, want %q %q:\n%s", rec.TraceID, rec.SpanID, intake.traceID, intake.spanID, line)
		}
		logged = true
	}
	if !logged {
		t.Errorf("no request log line for /events/v1 in:\n%s", s.logs)
	}
}

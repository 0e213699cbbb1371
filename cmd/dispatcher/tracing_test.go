package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/api"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
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
		"DATABASE_URL":          testenv.SQLite(t),
		"DISPATCHER_JWT_SECRET": e2eSecret,
		"TEMPORAL_ADDRESS":      srv.FrontendHostPort(),
		"DISPATCHER_HTTP_ADDR":  "127.0.0.1:0",
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
	s := &system{t: t, url: url, temporal: srv.Client(), logs: &syncBuffer{}}
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

var listening = regexp.MustCompile(`dispatcher API listening on (http://\S+)`)

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

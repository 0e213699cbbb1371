package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
)

// TestLogsCarryTraceIDs: a record logged with a context that carries a
// span names the span's trace and id, on loggers derived with With and
// WithGroup too; one without a span names none.
func TestLogsCarryTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(withTraceIDs(slog.NewJSONHandler(&buf, nil)))
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	defer span.End()

	log.InfoContext(ctx, "with span")
	log.With("request_id", "r1").InfoContext(ctx, "derived")
	log.WithGroup("g").InfoContext(ctx, "grouped", "k", "v")
	log.InfoContext(context.Background(), "without span")
	log.Info("no context")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("want 5 lines, got %d:\n%s", len(lines), buf.String())
	}
	want := span.SpanContext()
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if g, ok := rec["g"].(map[string]any); ok {
			rec = g // slog puts a group's later attributes in the group
		}
		withSpan := i < 3
		if got := rec["trace_id"]; withSpan && got != want.TraceID().String() || !withSpan && got != nil {
			t.Errorf("line %d (%s): trace_id %v, want %v", i, line, got, withSpan)
		}
		if got := rec["span_id"]; withSpan && got != want.SpanID().String() || !withSpan && got != nil {
			t.Errorf("line %d (%s): span_id %v", i, line, got)
		}
	}
}

// The ids the Temporal SDK's tracing interceptor adds to workflow and
// activity loggers are named as the other lines' are.
func TestSDKTraceIDsAreNamedAsOthers(t *testing.T) {
	var buf bytes.Buffer
	tp := sdktrace.NewTracerProvider()
	_, span := tp.Tracer("test").Start(context.Background(), "workflow")
	defer span.End()
	sc := span.SpanContext()
	slog.New(withTraceIDs(slog.NewJSONHandler(&buf, nil))).With("TraceID", sc.TraceID(), "SpanID", sc.SpanID()).Info("Dispatching")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["trace_id"] != sc.TraceID().String() || rec["span_id"] != sc.SpanID().String() || rec["TraceID"] != nil {
		t.Errorf("line %s: want trace_id and span_id, no TraceID", buf.String())
	}
}

// TestJSONLogDurations: the JSON logs write a duration as the text logs
// do, not as a bare count of nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	for format, want := range map[string]string{"json": `"retry_in":"1.5s"`, "text": "retry_in=1.5s"} {
		var buf bytes.Buffer
		newLogger(config{LogFormat: format, LogLevel: "info"}, &buf).Info("waiting", "retry_in", 1500*time.Millisecond)
		if !strings.Contains(buf.String(), want) {
			t.Errorf("%s: %s, want %s in it", format, buf.String(), want)
		}
	}
}

// TestAnnounce: what the process says on stdout (where it listens) is a
// JSON record with the JSON log format, which a pipeline parsing every
// line as JSON reads; a line of text otherwise.
func TestAnnounce(t *testing.T) {
	const msg = "dispatcher API listening on http://127.0.0.1:8080"
	var buf bytes.Buffer
	process{cfg: config{LogFormat: "json"}, stdout: &buf}.announce(msg)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["msg"] != msg || rec["level"] != "INFO" {
		t.Errorf("json: %q (%v), want a record of %q", buf.String(), err, msg)
	}
	buf.Reset()
	process{cfg: config{LogFormat: "text"}, stdout: &buf}.announce(msg)
	if buf.String() != msg+"\n" {
		t.Errorf("text: %q, want %q", buf.String(), msg+"\n")
	}
}

// The SDK's warning that a Dispatch's workflow task took over 5 s, which
// its first task does by design while its first attempts run, is logged
// at debug; other workflows' and its other warnings stay warnings.
func TestHeldTaskWarningsAreDebug(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		log := slog.New(heldTasks{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})}).With("component", "temporal")
		log.Warn("[TMPRL1104] 0194:4:1 Workflow task duration exceeded 5 seconds.", "WorkflowType", "Dispatch")
		log.Warn("[TMPRL1104] 0195:9:1 Workflow task duration exceeded 5 seconds.", "WorkflowType", "Sequence")
		log.Warn("[TMPRL1103] Attempted to upload payloads with size that exceeded the warning limit.")
		out := buf.String()
		if !strings.Contains(out, "level=WARN msg=\"[TMPRL1103]") || !strings.Contains(out, "level=WARN msg=\"[TMPRL1104] 0195") {
			t.Errorf("at %v: the other warnings are not warnings:\n%s", level, out)
		}
		out = strings.ReplaceAll(out, "[TMPRL1104] 0195", "")
		if held := strings.Contains(out, "TMPRL1104"); held != (level == slog.LevelDebug) || strings.Contains(out, "level=WARN msg=\"[TMPRL1104]") {
			t.Errorf("at %v: the held task's warning:\n%s", level, out)
		}
	}
}

// An attempt that a dependency failed, which the SDK logs as "Activity
// error." at error level, is a warning: the mail server or the function
// failed, and the next attempt retries (or the dispatch says the action
// failed). Before, every retried SMTP 451 set off alerts on errors. The
// process's own failures (its store, a bug) stay errors.
func TestActivityErrorsOfDependenciesAreWarnings(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(heldTasks{slog.NewTextHandler(&buf, nil)})
	log.Error("Activity error.", "ActivityType", "SendMail", "Error", temporal.NewApplicationError("451 try later", dispatcher.FailureSMTPTemporary))
	log.Error("Activity error.", "ActivityType", "CallFunction", "Error", temporal.NewApplicationError("store down", dispatcher.FailureStore))
	log.Error("Activity error.", "ActivityType", "CallFunction", "Error", errors.New("a bug"))
	log.Error("Activity error.", "ActivityType", "Canceled", "Error", context.Canceled)
	log.Error("Failed to poll for task.")
	out := buf.String()
	if !strings.Contains(out, `level=WARN msg="Activity error." ActivityType=SendMail`) || !strings.Contains(out, `level=WARN msg="Activity error." ActivityType=Canceled`) ||
		strings.Count(out, `level=ERROR msg="Activity error."`) != 2 || !strings.Contains(out, `level=ERROR msg="Failed to poll`) {
		t.Errorf("logged:\n%s\nwant the mail server's failure a warning, the store's, a bug's and other errors errors", out)
	}
}

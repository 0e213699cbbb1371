package workflows_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// TestReplay replays every recorded history in testdata against the
// current workflow code: a change that would break running dispatches
// fails here. Record new histories with
//
//	DISPATCHER_RECORD_HISTORY=1 go test ./workflows -run TestRecordHistories
func TestReplay(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "dispatch_*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no histories in testdata: record them (see TestRecordHistories)")
	}
	logger := log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			h, opts := loadHistory(t, f)
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(workflows.Dispatch, workflow.RegisterOptions{Name: workflows.WorkflowDispatch})
			if err := r.ReplayWorkflowHistoryWithOptions(logger, h, opts); err != nil {
				t.Fatalf("replaying %s: %v", f, err)
			}

			// The replayer must notice a workflow that does something else,
			// or the replay above proves nothing.
			other := worker.NewWorkflowReplayer()
			other.RegisterWorkflowWithOptions(func(ctx workflow.Context, in workflows.DispatchInput) (workflows.DispatchResult, error) {
				return workflows.DispatchResult{}, workflow.Sleep(ctx, time.Hour)
			}, workflow.RegisterOptions{Name: workflows.WorkflowDispatch})
			if err := other.ReplayWorkflowHistoryWithOptions(logger, h, opts); err == nil {
				t.Fatal("a different workflow replayed this history without error")
			}
		})
	}
}

// TestRecordHistories runs real dispatches on a dev server, with the real
// activities against an SMTP and an HTTP sink on loopback, and saves
// their histories to testdata for TestReplay. It runs only when asked:
// DISPATCHER_RECORD_HISTORY=1.
func TestRecordHistories(t *testing.T) {
	if os.Getenv("DISPATCHER_RECORD_HISTORY") != "1" {
		t.Skip("set DISPATCHER_RECORD_HISTORY=1 to record histories into testdata")
	}
	c := testenv.TemporalClient(t)
	smtpAddr := testenv.SMTP(t).Addr
	var flakyCalls sync.Map
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
		case "/gone":
			http.Error(w, "no such user", http.StatusNotFound)
		case "/flaky": // fails the first call of each action
			if _, seen := flakyCalls.LoadOrStore(r.Header.Get("Idempotency-Key"), true); !seen {
				http.Error(w, "busy", http.StatusServiceUnavailable)
			}
		}
	}))
	defer fn.Close()

	const queue = "dispatch-record"
	start := time.Now().Add(2 * time.Second).UTC()
	store := &testenv.MemStore{
		Dispatchers: []dispatcher.Dispatcher{
			{ID: "d-completed", EventType: "completed", Actions: []dispatcher.Action{
				{ID: "m1", Type: dispatcher.ActionMail, TemplateID: "tpl", Recipients: dispatcher.Recipients{To: []string{"{{ .event.content.email }}"}}},
				{ID: "t1", Type: dispatcher.ActionTask, FunctionName: "ok", Data: json.RawMessage(`{"userId":"{{ .event.content.userId }}"}`)},
				{ID: "c1", Type: dispatcher.ActionTask, FunctionName: "child"},
			}},
			{ID: "d-failed-1", EventType: "failed", Actions: []dispatcher.Action{
				{ID: "m1", Type: dispatcher.ActionMail, TemplateID: "tpl", Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}}},
				{ID: "t1", Type: dispatcher.ActionTask, FunctionName: "gone"},
			}},
			{ID: "d-failed-2", EventType: "failed", Actions: []dispatcher.Action{
				{ID: "t2", Type: dispatcher.ActionTask, FunctionName: "flaky"},
			}},
			{ID: "d-timer", EventType: "timer", Actions: []dispatcher.Action{
				{ID: "t1", Type: dispatcher.ActionTask, FunctionName: "ok", StartTimestamp: &start},
			}},
		},
		Templates: map[string]dispatcher.Template{"tpl": {ID: "tpl", Subject: "Goodbye {{ .content.name }}", Text: "Bye"}},
		Functions: map[string]dispatcher.Function{
			"ok":    {Name: "ok", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/ok", Timeout: 5 * time.Second},
			"gone":  {Name: "gone", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/gone", Timeout: 5 * time.Second},
			"flaky": {Name: "flaky", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/flaky", Timeout: 5 * time.Second},
			"child": {Name: "child", Kind: dispatcher.FunctionTemporal, TaskQueue: queue},
		},
	}
	acts, err := activities.New(activities.Options{Store: store, SMTPURL: "smtp://" + smtpAddr, MailFrom: "no-reply@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(c, queue, worker.Options{})
	register(w, acts, nil)
	w.RegisterWorkflowWithOptions(func(workflow.Context, dispatcher.TaskPayload) error { return nil },
		workflow.RegisterOptions{Name: "child"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	s := dispatch.Starter{Client: c, TaskQueue: queue, Eager: true}
	for _, tt := range []struct {
		eventType string
		wantErr   bool
	}{{"completed", false}, {"failed", true}, {"timer", false}} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ev := dispatcher.Event{ID: "ev-" + tt.eventType, Type: tt.eventType, Time: time.Now().UTC(), Source: "record",
			Content: json.RawMessage(`{"name":"Ann","email":"ann@example.com","userId":42}`)}
		started, err := s.Start(ctx, ev)
		if err != nil {
			t.Fatalf("%s: start: %v", tt.eventType, err)
		}
		var res workflows.DispatchResult
		err = c.GetWorkflow(ctx, started.WorkflowID, started.RunID).Get(ctx, &res)
		if (err != nil) != tt.wantErr {
			t.Fatalf("%s: dispatch error = %v, want error: %v", tt.eventType, err, tt.wantErr)
		}
		saveHistory(t, c, started, filepath.Join("testdata", "dispatch_"+tt.eventType+".json"))
	}
}

// loadHistory reads a recorded history and the execution it belongs to:
// the workflow derives idempotency keys and child workflow IDs from its
// own ID, so a replay under the replayer's default ID would differ.
func loadHistory(t *testing.T, path string) (*historypb.History, worker.ReplayWorkflowHistoryOptions) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	started := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
	if started.GetWorkflowId() == "" {
		t.Fatalf("%s: the first event names no workflow ID", path)
	}
	return h, worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{
		ID: started.GetWorkflowId(), RunID: started.GetOriginalExecutionRunId(),
	}}
}

func saveHistory(t *testing.T, c client.Client, run dispatcher.StartResult, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var h historypb.History
	it := c.GetWorkflowHistory(ctx, run.WorkflowID, run.RunID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", run.WorkflowID, err)
		}
		h.Events = append(h.Events, e)
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d events of %s into %s", len(h.Events), run.WorkflowID, path)
}

// registry is a worker or a test environment.
type registry interface {
	workflows.Registry
	RegisterActivity(a any)
}

// register registers the workflows, and the activities under the names
// the workflows call: those of e and r, or zero ones when a test mocks
// them by name.
func register(w registry, e *activities.Effects, r *dispatch.ReplayActivities) {
	workflows.Register(w)
	if e == nil {
		e = &activities.Effects{}
	}
	if r == nil {
		r = &dispatch.ReplayActivities{}
	}
	w.RegisterActivity(e)
	w.RegisterActivity(r)
}

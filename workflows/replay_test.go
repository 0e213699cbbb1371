package workflows_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// TestReplay replays every recorded history in testdata/histories against
// the current workflow code: a change that would break running dispatches
// or bulk replays fails here. The histories are kept by workflow and by
// the code version that recorded them (testdata/histories/<workflow>/v<N>/)
// and never rewritten; record the newest version's with
//
//	make record-histories
func TestReplay(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*", "v*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Histories whose payloads are large (padded events) are gzipped.
	zipped, err := filepath.Glob(filepath.Join("testdata", "histories", "*", "v*", "*.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, zipped...)
	if len(files) < 10 {
		t.Fatalf("%d histories in testdata/histories: record them (make record-histories)", len(files))
	}
	logger := log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, f := range files {
		t.Run(strings.TrimPrefix(f, filepath.Join("testdata", "histories")+string(filepath.Separator)), func(t *testing.T) {
			h, opts := loadHistory(t, f)
			r := worker.NewWorkflowReplayer()
			workflows.Register(r)
			if err := r.ReplayWorkflowHistoryWithOptions(logger, h, opts); err != nil {
				t.Fatalf("replaying %s: %v", f, err)
			}

			// The replayer must notice a workflow that does something else,
			// or the replay above proves nothing.
			other := worker.NewWorkflowReplayer()
			sleep := func(ctx workflow.Context, _ json.RawMessage) error { return workflow.Sleep(ctx, time.Hour) }
			other.RegisterWorkflowWithOptions(sleep, workflow.RegisterOptions{Name: workflows.WorkflowDispatch})
			other.RegisterWorkflowWithOptions(sleep, workflow.RegisterOptions{Name: workflows.WorkflowBulkReplay})
			other.RegisterWorkflowWithOptions(sleep, workflow.RegisterOptions{Name: workflows.WorkflowSequence})
			other.RegisterWorkflowWithOptions(sleep, workflow.RegisterOptions{Name: workflows.WorkflowGate})
			if err := other.ReplayWorkflowHistoryWithOptions(logger, h, opts); err == nil {
				t.Fatal("a different workflow replayed this history without error")
			}
		})
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
	var in io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		in = z
	}
	h, err := client.HistoryFromJSON(in, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	started := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
	if started.GetWorkflowId() == "" {
		t.Fatalf("%s: the first event names no workflow ID", path)
	}
	run := started.GetOriginalExecutionRunId()
	for _, ev := range h.GetEvents() {
		// A reset run's history begins with the run it was reset from;
		// its worker runs it under its own ID, which the reset names.
		if f := ev.GetWorkflowTaskFailedEventAttributes(); f.GetCause() == enums.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW {
			run = f.GetNewRunId()
		}
	}
	return h, worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: started.GetWorkflowId(), RunID: run}}
}

// registry is a worker or a test environment.
type registry interface {
	workflows.Registry
	RegisterActivity(a any)
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// register registers the workflows, and the activities under the names
// the workflows call: those of e and r and the Temporal-client-side ones
// over c, or zero ones when a test mocks them by name.
func register(w registry, e *activities.Effects, r *dispatch.ReplayActivities, c client.Client) {
	workflows.Register(w)
	if e == nil {
		e = &activities.Effects{}
	}
	if r == nil {
		r = &dispatch.ReplayActivities{}
	}
	w.RegisterActivity(e)
	w.RegisterActivity(r)
	w.RegisterActivity(dispatch.NewGateActivities(c))
	w.RegisterActivity(dispatch.NewSequenceActivities(c))
	if c != nil {
		w.RegisterActivity(dispatch.NewEventActivities(dispatch.Starter{Client: c}))
	} else { // a test environment: no Temporal to start the events with
		w.RegisterActivityWithOptions(func(context.Context, dispatcher.TaskFailure) (bool, error) { return false, nil },
			activity.RegisterOptions{Name: workflows.ActivityEmitTaskFailed})
	}
}

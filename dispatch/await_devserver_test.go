package dispatch_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// AwaitDispatch, on a real server, fails retryably while a run is open
// (its retries poll it, holding no worker slot), and once it closed
// reports how: completed, failed with its error, canceled, terminated; a
// run Temporal does not know is NotFound.
func TestAwaitDispatchOnDevServer(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "await-test"
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context, outcome string) error {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(workflow.GetSignalChannel(ctx, "end"), func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		if sel.Select(ctx); ctx.Err() != nil {
			return ctx.Err()
		}
		if outcome == "fail" {
			return errors.New("1 of 1 actions failed")
		}
		return nil
	}, workflow.RegisterOptions{Name: "Stub"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	var env testsuite.WorkflowTestSuite
	await := func(id, runID string) (workflows.DispatchClosed, error) {
		ae := env.NewTestActivityEnvironment()
		ae.RegisterActivity(dispatch.NewSequenceActivities(c))
		v, err := ae.ExecuteActivity(workflows.ActivityAwaitDispatch, workflows.AwaitDispatchInput{WorkflowID: id, RunID: runID})
		var closed workflows.DispatchClosed
		if err == nil {
			err = v.Get(&closed)
		}
		return closed, err
	}
	signalEnd := func(r client.WorkflowRun) error {
		return c.SignalWorkflow(t.Context(), r.GetID(), r.GetRunID(), "end", nil)
	}
	for _, tc := range []struct {
		id, outcome string
		end         func(client.WorkflowRun) error
		want        string
	}{
		{"await-ok", "ok", signalEnd, workflows.ClosedCompleted},
		{"await-failed", "fail", signalEnd, workflows.ClosedFailed},
		{"await-canceled", "ok", func(r client.WorkflowRun) error { return c.CancelWorkflow(t.Context(), r.GetID(), r.GetRunID()) }, workflows.ClosedCanceled},
		{"await-terminated", "ok", func(r client.WorkflowRun) error {
			return c.TerminateWorkflow(t.Context(), r.GetID(), r.GetRunID(), "by hand")
		}, workflows.ClosedTerminated},
	} {
		run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: tc.id, TaskQueue: queue}, "Stub", tc.outcome)
		if err != nil {
			t.Fatal(err)
		}
		var app *temporal.ApplicationError
		if _, err := await(run.GetID(), run.GetRunID()); !errors.As(err, &app) || app.Type() != "DispatchStillRunning" || app.NonRetryable() ||
			app.Category() != temporal.ApplicationErrorCategoryBenign {
			t.Fatalf("%s while it runs: %v, want a retryable, benign DispatchStillRunning", tc.id, err)
		}
		if err := tc.end(run); err != nil {
			t.Fatal(err)
		}
		_ = run.Get(t.Context(), nil) // closed
		got, err := await(run.GetID(), run.GetRunID())
		if err != nil || got.Status != tc.want {
			t.Errorf("%s once closed: %+v, %v; want %s", tc.id, got, err, tc.want)
		}
		if tc.want == workflows.ClosedFailed && !strings.Contains(got.Failure, "1 of 1 actions failed") {
			t.Errorf("%s: failure %q, want the run's error", tc.id, got.Failure)
		}
	}
	// A run reset (Web UI, CLI) goes on as the reset run, which is
	// awaited: before, the reset's termination was reported, and a
	// Sequence blocked its key or ran the next event beside it.
	run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "await-reset", TaskQueue: queue}, "Stub", "ok")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		d, err := c.DescribeWorkflowExecution(t.Context(), run.GetID(), run.GetRunID())
		if err != nil || d.GetWorkflowExecutionInfo().GetHistoryLength() < 4 {
			return fmt.Sprintf("waiting for the run's first workflow task to complete (%v)", err)
		}
		return ""
	})
	reset, err := c.ResetWorkflowExecution(t.Context(), &workflowservice.ResetWorkflowExecutionRequest{
		Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: run.GetID(), RunId: run.GetRunID()},
		Reason: "test", WorkflowTaskFinishEventId: 4, RequestId: "await-reset-1"})
	if err != nil {
		t.Fatal(err)
	}
	var app *temporal.ApplicationError
	if _, err := await(run.GetID(), run.GetRunID()); !errors.As(err, &app) || app.Type() != "DispatchStillRunning" {
		t.Fatalf("a reset run while its reset runs: %v, want DispatchStillRunning", err)
	}
	if err := c.SignalWorkflow(t.Context(), run.GetID(), reset.GetRunId(), "end", nil); err != nil {
		t.Fatal(err)
	}
	_ = c.GetWorkflow(t.Context(), run.GetID(), reset.GetRunId()).Get(t.Context(), nil)
	if got, err := await(run.GetID(), run.GetRunID()); err != nil || got.Status != workflows.ClosedCompleted {
		t.Errorf("a reset run once its reset completed: %+v, %v; want %s", got, err, workflows.ClosedCompleted)
	}

	got, err := await("never-started", "")
	if err != nil || got.Status != workflows.ClosedNotFound {
		t.Errorf("unknown run: %+v, %v", got, err)
	}
}

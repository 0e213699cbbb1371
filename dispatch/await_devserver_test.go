package dispatch_test

import (
	"errors"
	"strings"
	"testing"

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
	got, err := await("never-started", "")
	if err != nil || got.Status != workflows.ClosedNotFound {
		t.Errorf("unknown run: %+v, %v", got, err)
	}
}

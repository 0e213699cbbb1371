package dispatch_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// AwaitDispatch, on a real server, waits for a run to close, polling and
// heartbeating until it does, and reports how it closed: completed, failed with its
// error, canceled, terminated; a run Temporal does not know is NotFound.
func TestAwaitDispatchOnDevServer(t *testing.T) {
	c := testenv.TemporalClient(t)
	dispatch.SetAwaitPoll(t, 200*time.Millisecond) // each run closes after a few polls
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
	await := func(run client.WorkflowRun, end func()) workflows.DispatchClosed {
		t.Helper()
		ae := env.NewTestActivityEnvironment()
		ae.RegisterActivity(dispatch.NewSequenceActivities(c))
		time.AfterFunc(time.Second, end) // after the activity waits
		v, err := ae.ExecuteActivity(workflows.ActivityAwaitDispatch, workflows.AwaitDispatchInput{WorkflowID: run.GetID(), RunID: run.GetRunID()})
		var closed workflows.DispatchClosed
		if err == nil {
			err = v.Get(&closed)
		}
		if err != nil {
			t.Fatalf("%s: %v", run.GetID(), err)
		}
		return closed
	}
	start := func(id, outcome string) client.WorkflowRun {
		t.Helper()
		run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: queue}, "Stub", outcome)
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	signal := func(run client.WorkflowRun) func() {
		return func() { _ = c.SignalWorkflow(t.Context(), run.GetID(), run.GetRunID(), "end", nil) }
	}
	ok := start("await-ok", "ok")
	if got := await(ok, signal(ok)); got != (workflows.DispatchClosed{Status: "Completed"}) {
		t.Errorf("completed run: %+v", got)
	}
	failed := start("await-failed", "fail")
	if got := await(failed, signal(failed)); got.Status != "Failed" || !strings.Contains(got.Failure, "1 of 1 actions failed") {
		t.Errorf("failed run: %+v", got)
	}
	canceled := start("await-canceled", "ok")
	if got := await(canceled, func() { _ = c.CancelWorkflow(t.Context(), canceled.GetID(), canceled.GetRunID()) }); got.Status != "Canceled" {
		t.Errorf("canceled run: %+v", got)
	}
	terminated := start("await-terminated", "ok")
	if got := await(terminated, func() {
		_ = c.TerminateWorkflow(t.Context(), terminated.GetID(), terminated.GetRunID(), "by hand")
	}); got.Status != "Terminated" {
		t.Errorf("terminated run: %+v", got)
	}
	ae := env.NewTestActivityEnvironment()
	ae.RegisterActivity(dispatch.NewSequenceActivities(c))
	v, err := ae.ExecuteActivity(workflows.ActivityAwaitDispatch, workflows.AwaitDispatchInput{WorkflowID: "never-started"})
	var closed workflows.DispatchClosed
	if err != nil || v.Get(&closed) != nil || closed.Status != "NotFound" {
		t.Errorf("unknown run: %+v, %v", closed, err)
	}
}

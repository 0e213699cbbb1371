package workflows_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/grpc"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// A Gate that may grant more permits at once than Temporal lets signals
// to other workflows be pending (2,000 by default) sends them a batch at
// a time. Before, it sent all of them in one workflow task, which the
// server failed with PENDING_SIGNALS_LIMIT_EXCEEDED, and every retry of
// the task the same way: the function's calls were never permitted again.
// Here 2,100 requests arrive while no worker polls, as they would behind
// a pause or an open circuit, and the first task may grant them all.
//
// Its worker is slow to complete a task (half a second), as a loaded one
// is: the deliveries of the permits on their way come back while the next
// task runs, and Temporal fails a task while which more than 100 events
// came. Before gateFewSendingV1, 500 permits went at once, and the Gate's
// tasks failed so (FORCE_CLOSE_COMMAND), run after run.
func TestGateGrantsABurstOnRealServer(t *testing.T) {
	srv := testenv.TemporalServer(t)
	c := srv.Client()
	const queue, gateID, n = "gate-burst", "gate-burst", 2100
	req := func(i int) workflows.PermitRequest {
		return workflows.PermitRequest{ID: fmt.Sprint("k", i, "/1"), WorkflowID: fmt.Sprint("gone-", i), Lease: time.Hour}
	}
	run, err := c.SignalWithStartWorkflow(t.Context(), gateID, workflows.SignalGateRequest, req(0),
		client.StartWorkflowOptions{ID: gateID, TaskQueue: queue}, workflows.WorkflowGate, workflows.GateInput{Function: "f"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if err := c.SignalWorkflow(t.Context(), gateID, "", workflows.SignalGateRequest, req(i)); err != nil {
			t.Fatal(err)
		}
	}
	slow, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), ConnectionOptions: client.ConnectionOptions{
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if strings.HasSuffix(method, "/RespondWorkflowTaskCompleted") {
				select {
				case <-time.After(500 * time.Millisecond):
				case <-ctx.Done():
				}
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		})},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(slow.Close)
	w := worker.New(slow, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.Gate, workflow.RegisterOptions{Name: workflows.WorkflowGate})
	w.RegisterActivityWithOptions(func(context.Context, dispatcher.FunctionFlowInput) (dispatcher.Flow, error) {
		return dispatcher.Flow{}, nil // no limit: every request may go at once
	}, activity.RegisterOptions{Name: workflows.ActivityFunctionFlow})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	// The Gate continues as new as its history grows: every run counts.
	testenv.Eventually(t, 2*time.Minute, func() string {
		sent := 0
		for runID := run.GetRunID(); runID != ""; {
			it := c.GetWorkflowHistory(t.Context(), gateID, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for runID = ""; it.HasNext(); {
				e, err := it.Next()
				if err != nil {
					return err.Error()
				}
				// A signal that came during the task (unhandled command)
				// has it run again at once with it: nothing else may fail it.
				if f := e.GetWorkflowTaskFailedEventAttributes(); f != nil && f.Cause != enums.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND {
					t.Fatalf("a workflow task of the Gate failed: %v %.200s", f.Cause, f.GetFailure().GetMessage())
				}
				if e.GetSignalExternalWorkflowExecutionInitiatedEventAttributes() != nil {
					sent++
				}
				if can := e.GetWorkflowExecutionContinuedAsNewEventAttributes(); can != nil {
					runID = can.GetNewExecutionRunId()
				}
			}
		}
		if sent < n {
			return fmt.Sprintf("%d of %d permits sent", sent, n)
		}
		return ""
	})
	replays(t, c, run)
}

// A Gate whose first reads of its function's flow control fail grants
// nothing until one succeeds (gateUnreadV1), on a real server, whose
// history replays.
func TestGateGrantsNothingUnreadOnRealServer(t *testing.T) {
	c, run := unreadGate(t)
	replays(t, c, run)
}

// unreadGate runs a Gate whose first two reads of its function's flow
// control fail, with a request waiting: it checks that the permit goes
// only after the third read, and returns the Gate, still running.
func unreadGate(t *testing.T) (client.Client, client.WorkflowRun) {
	c := testenv.TemporalClient(t)
	const queue, gateID = "gate-unread", "gate-unread"
	var reads atomic.Int32
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.Gate, workflow.RegisterOptions{Name: workflows.WorkflowGate})
	w.RegisterActivityWithOptions(func(context.Context, dispatcher.FunctionFlowInput) (dispatcher.Flow, error) {
		if reads.Add(1) <= 2 {
			return dispatcher.Flow{}, temporal.NewApplicationError("the store is away", dispatcher.FailureStore)
		}
		return dispatcher.Flow{MaxConcurrency: 1}, nil
	}, activity.RegisterOptions{Name: workflows.ActivityFunctionFlow})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	run, err := c.SignalWithStartWorkflow(t.Context(), gateID, workflows.SignalGateRequest,
		workflows.PermitRequest{ID: "k/1", WorkflowID: "dispatch-unread", Lease: time.Hour},
		client.StartWorkflowOptions{ID: gateID, TaskQueue: queue}, workflows.WorkflowGate, workflows.GateInput{Function: "f"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, func() string {
		it := c.GetWorkflowHistory(t.Context(), gateID, run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				return err.Error()
			}
			if e.GetSignalExternalWorkflowExecutionInitiatedEventAttributes() != nil {
				if n := reads.Load(); n < 3 {
					t.Fatalf("the permit went after %d reads, want after the first that succeeded, the third", n)
				}
				return ""
			}
		}
		return fmt.Sprintf("waiting for the permit (%d reads)", reads.Load())
	})
	return c, run
}

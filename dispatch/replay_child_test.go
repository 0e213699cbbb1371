package dispatch_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// A canceled dispatch does not wait for the child workflow of a temporal
// function (dispatchV8), which may ignore the cancel. Before, a replay of
// the canceled action started the task again beside the child, or after
// the child had done its work: a replay now refuses while the child runs,
// and a default replay leaves out the action whose child completed.
func TestReplayAfterCancelHeedsTheChild(t *testing.T) {
	e := newExecutionsEnv(t)
	res := e.dispatch("ev-child", "archive", false)
	wf := res.WorkflowID
	child := workflows.IdempotencyKey(wf, "d5", "t5", "")
	status := func(id string) enums.WorkflowExecutionStatus {
		d, err := e.c.DescribeWorkflowExecution(e.ctx(), id, "")
		if err != nil {
			return enums.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED
		}
		return d.GetWorkflowExecutionInfo().GetStatus()
	}
	testenv.Eventually(t, 20*time.Second, func() string {
		if s := status(child); s != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return "child " + s.String()
		}
		return ""
	})
	if _, err := e.ex.Cancel(e.ctx(), wf, "ops"); err != nil {
		t.Fatal(err)
	}
	e.wait(wf, res.RunID)

	_, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: wf, Actor: "ops"})
	if dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(err.Error(), child) {
		t.Fatalf("replay while the child runs: %v, want ESTATE naming %s", err, child)
	}
	_, err = e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: wf, Actions: []string{"t5"}, Actor: "ops"})
	if dispatcher.ErrorCode(err) != dispatcher.ESTATE {
		t.Fatalf("replay of t5 while its child runs: %v, want ESTATE", err)
	}

	if err := e.c.SignalWorkflow(e.ctx(), child, "", "finish", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.c.GetWorkflow(e.ctx(), child, "").Get(e.ctx(), nil); err != nil {
		t.Fatalf("child: %v", err)
	}
	r, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: wf, Actor: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Actions, []string{"m5"}) {
		t.Fatalf("replay runs %q, want only the failed mail: the child of t5 did its work", r.Actions)
	}
	e.wait(wf, r.RunID)
	var nf *serviceerror.NotFound
	if _, err = e.c.DescribeWorkflowExecution(e.ctx(), workflows.IdempotencyKey(wf, "d5", "t5", r.ReplayID), ""); !errors.As(err, &nf) {
		t.Fatalf("the replay started a child for t5 (%v)", err)
	}
}

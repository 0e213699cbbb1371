package workflows_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// A burst of overflows that one workflow task takes in at once (30 events
// of 200 KiB that arrived while no worker polled, behind a full queue) is
// started over several tasks. Before, the one task's completion carried
// the 30 events, 6 MiB, past Temporal's 4 MiB message limit: it failed,
// was retried with the same commands and failed again, for good, and the
// key was stuck with none of the overflow dispatches started.
func TestSequenceOverflowBurstOnRealServer(t *testing.T) {
	c := testenv.TemporalClient(t)
	pad := strings.Repeat("x", 200<<10)
	event := func(i int) workflows.SequencedDispatch {
		id := fmt.Sprint("burst-", i)
		d := workflows.SequencedDispatch{WorkflowID: id, Block: true, Input: workflows.DispatchInput{
			Event:   dispatcher.Event{ID: id, Type: "t", Content: []byte(fmt.Sprintf(`{"pad":%q}`, pad))},
			Version: workflows.DispatchVersion}}
		d.Size = workflows.SequencedSize(d)
		return d
	}
	var queue []workflows.SequencedDispatch
	for i := range 7 {
		queue = append(queue, event(i))
	}
	const seqID, queueName = "sequence-burst", "sequence-burst"
	// No worker yet: the start and every signal wait in the history.
	if _, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: seqID, TaskQueue: queueName}, workflows.WorkflowSequence,
		workflows.SequenceInput{State: &workflows.SequenceState{Blocked: "burst-blocker", Queue: queue}}); err != nil {
		t.Fatal(err)
	}
	for i := 7; i < 37; i++ {
		if err := c.SignalWorkflow(t.Context(), seqID, "", workflows.SignalSequenceEvent, event(i)); err != nil {
			t.Fatal(err)
		}
	}
	w := worker.New(c, queueName, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.Sequence, workflow.RegisterOptions{Name: workflows.WorkflowSequence})
	w.RegisterWorkflowWithOptions(func(workflow.Context, workflows.DispatchInput) error { return nil }, workflow.RegisterOptions{Name: workflows.WorkflowDispatch})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	testenv.Eventually(t, time.Minute, func() string {
		for i := 7; i < 37; i++ {
			if _, err := c.DescribeWorkflowExecution(t.Context(), fmt.Sprint("burst-", i), ""); err != nil {
				return fmt.Sprintf("waiting for the overflow dispatch of event %d: %v", i, err)
			}
		}
		return ""
	})
	it := c.GetWorkflowHistory(t.Context(), seqID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		// An unhandled command is a task that ended while events arrived
		// (a child started): retried at once, as Temporal means it.
		if f := e.GetWorkflowTaskFailedEventAttributes(); f != nil && f.Cause != enums.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND {
			t.Fatalf("a workflow task of the Sequence failed: %v %.200s", f.Cause, f.GetFailure().GetMessage())
		}
	}
	d, err := c.DescribeWorkflowExecution(t.Context(), seqID, "")
	if err != nil || d.WorkflowExecutionInfo.Status != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("the Sequence is %v (%v), want running, still blocked", d.GetWorkflowExecutionInfo().GetStatus(), err)
	}
}

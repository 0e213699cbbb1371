package testenv

import (
	"fmt"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// ResetToTask resets a run to its first workflow task or, last, to its
// last completed one, as the Web UI's Reset does, and returns the new
// run's ID.
func ResetToTask(t testing.TB, c client.Client, id, runID string, last bool) string {
	t.Helper()
	var finished int64
	it := c.GetWorkflowHistory(t.Context(), id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() && (last || finished == 0) {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			finished = e.GetEventId()
		}
	}
	reset, err := c.ResetWorkflowExecution(t.Context(), &workflowservice.ResetWorkflowExecutionRequest{
		Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: runID},
		Reason: "test", WorkflowTaskFinishEventId: finished, RequestId: fmt.Sprintf("%s/%s/reset-%v", id, runID, last)})
	if err != nil {
		t.Fatal(err)
	}
	return reset.GetRunId()
}

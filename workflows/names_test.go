package workflows_test

import (
	"slices"
	"testing"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// TestReservedWorkflowNames keeps the domain's list of names a temporal
// task function may not take equal to the workflows the worker registers.
func TestReservedWorkflowNames(t *testing.T) {
	for _, name := range []string{workflows.WorkflowDispatch, workflows.WorkflowBulkReplay, workflows.WorkflowSequence, workflows.WorkflowGate} {
		if !slices.Contains(dispatcher.ReservedWorkflowNames, name) {
			t.Errorf("dispatcher.ReservedWorkflowNames lacks the workflow %q", name)
		}
	}
}

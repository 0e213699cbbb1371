package workflows

import "go.temporal.io/sdk/workflow"

// Registry is the part of a Temporal worker (or replayer) that workflows
// are registered with.
type Registry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
}

// Register registers the Dispatch, BulkReplay, Sequence and Gate
// workflows under their names. Their activities are registered by the
// packages that implement them (activities.Effects,
// dispatch.ReplayActivities, dispatch.GateActivities), under the names in
// names.go, which are their method names.
func Register(r Registry) {
	r.RegisterWorkflowWithOptions(Dispatch, workflow.RegisterOptions{Name: WorkflowDispatch})
	r.RegisterWorkflowWithOptions(BulkReplay, workflow.RegisterOptions{Name: WorkflowBulkReplay})
	r.RegisterWorkflowWithOptions(Sequence, workflow.RegisterOptions{Name: WorkflowSequence})
	r.RegisterWorkflowWithOptions(Gate, workflow.RegisterOptions{Name: WorkflowGate})
}

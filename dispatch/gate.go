package dispatch

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// GateActivities are the Temporal-client-side activities of flow control:
// a dispatch asks its function's Gate for a permit through them, which
// starts the gate when it is not running. Every exported method is an
// activity, registered under its own name (worker.RegisterActivity(g)).
type GateActivities struct {
	client client.Client
}

// NewGateActivities returns the flow control activities over c.
func NewGateActivities(c client.Client) *GateActivities {
	return &GateActivities{client: c}
}

// failureGateUnavailable: Temporal did not take the request; retried.
const failureGateUnavailable = "GateUnavailable"

// RequestPermit hands a permit request to the function's gate with
// signal-with-start: the gate is started, on the dispatch's task queue,
// when it is not running (it completes when idle). It runs as a local
// activity of the dispatch; the signal is durable when it returns. It
// returns the run the request was asked by, which its marker keeps: the
// run takes only that run's permits (dispatchV14).
func (g *GateActivities) RequestPermit(ctx context.Context, in workflows.RequestPermitInput) (string, error) {
	attrs := []temporal.SearchAttributeUpdate{workflows.AttrGateState.ValueSet(dispatcher.FlowClosed)}
	if t := dispatcher.TenantOf(in.Gate); t != "" {
		attrs = append(attrs, workflows.AttrTenant.ValueSet(t))
	}
	_, err := g.client.SignalWithStartWorkflow(ctx, in.Gate, workflows.SignalGateRequest, in.Request,
		client.StartWorkflowOptions{ID: in.Gate, TaskQueue: in.TaskQueue, TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
			StaticSummary: fmt.Sprintf("Flow control of function %q", in.Function)},
		workflows.WorkflowGate, workflows.GateInput{Function: in.Function})
	if err != nil {
		return "", temporal.NewApplicationError(fmt.Sprintf("asking the gate of function %q for a permit: %v", in.Function, err), failureGateUnavailable)
	}
	return in.Request.RunID, nil
}

// FunctionFlow returns where the caller's tenant's function name stands
// with its flow control, from its gate (the gate's query), and false when
// no gate runs for it: no call of it has waited lately. Errors:
// EUNAVAILABLE.
func (e *Executions) FunctionFlow(ctx context.Context, name string) (dispatcher.FlowState, bool, error) {
	id := dispatcher.GateWorkflowID(dispatcher.CallerOf(ctx).Tenant, name)
	desc, err := e.client.DescribeWorkflowExecution(ctx, id, "")
	var notFound *serviceerror.NotFound
	switch {
	case err != nil && errors.As(err, &notFound):
		return dispatcher.FlowState{}, false, nil
	case err != nil:
		return dispatcher.FlowState{}, false, temporalError(err, "describing the function's gate")
	case desc.GetWorkflowExecutionInfo().GetCloseTime() != nil:
		return dispatcher.FlowState{}, false, nil // idle: it completed
	}
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	v, err := e.client.QueryWorkflow(qctx, id, "", workflows.QueryGate)
	if err != nil {
		return dispatcher.FlowState{}, false, temporalError(err, "querying the function's gate")
	}
	var st dispatcher.FlowState
	if err := v.Get(&st); err != nil {
		return dispatcher.FlowState{}, false, err
	}
	return st, true, nil
}

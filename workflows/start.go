package workflows

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
)

// Starter starts dispatches; it is client code, not workflow code, and
// lives here so that the workflow's names stay in one package.
type Starter struct {
	Client    client.Client
	TaskQueue string // empty means DefaultTaskQueue
	// Eager asks the server to hand the first workflow task straight back
	// to a worker sharing Client, so that a dispatch whose actions succeed
	// at once completes in one round trip.
	Eager bool
	// LocalTimeout bounds each action's first, local attempt; 0 means
	// DefaultLocalTimeout.
	LocalTimeout time.Duration
}

// StartResult identifies the dispatch of an event.
type StartResult struct {
	WorkflowID string
	RunID      string
	// Duplicate is true when the event was dispatched before: RunID is
	// then the run that dispatched it.
	Duplicate bool
}

// Start starts the dispatch of ev and returns once Temporal has durably
// accepted it. The workflow ID comes from the event id, so an event sent
// twice dispatches once (for as long as Temporal keeps the first run):
// the second Start reports Duplicate with the first run's id. When
// Temporal does not answer the error has code dispatcher.EUNAVAILABLE.
func (s Starter) Start(ctx context.Context, ev dispatcher.Event) (StartResult, error) {
	queue := s.TaskQueue
	if queue == "" {
		queue = DefaultTaskQueue
	}
	id := WorkflowID(ev.ID)
	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: queue,
		// A closed run with this ID means the event was handled (reuse
		// policy); a running one that it is being handled (conflict
		// policy). Either way the server refuses with "already started",
		// and the flag keeps the SDK from hiding that. USE_EXISTING would
		// not do: the server then answers a running duplicate with success
		// (started=false), which the Go SDK does not expose.
		WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		EnableEagerStart:                         s.Eager,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			AttrEventType.ValueSet(ev.Type),
			AttrEventID.ValueSet(ev.ID),
		),
	}, WorkflowDispatch, DispatchInput{Event: ev, LocalTimeout: s.LocalTimeout})

	var started *serviceerror.WorkflowExecutionAlreadyStarted
	var invalid *serviceerror.InvalidArgument
	switch {
	case err == nil:
		return StartResult{WorkflowID: id, RunID: run.GetRunID()}, nil
	case errors.As(err, &started):
		return StartResult{WorkflowID: id, RunID: started.RunId, Duplicate: true}, nil
	case errors.As(err, &invalid):
		// The event passed our validation but not Temporal's (e.g. a
		// search attribute over its size limit): the client's to fix.
		return StartResult{}, dispatcher.Errorf(dispatcher.EINVALID, "temporal refused the event: %s", invalid.Message)
	case unavailable(err):
		return StartResult{}, dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable: %v", err)
	default:
		return StartResult{}, err
	}
}

// unavailable reports whether err means Temporal did not answer in time,
// as opposed to refusing the request.
func unavailable(err error) bool {
	var (
		unavail  *serviceerror.Unavailable
		deadline *serviceerror.DeadlineExceeded
		canceled *serviceerror.Canceled
	)
	return errors.As(err, &unavail) || errors.As(err, &deadline) || errors.As(err, &canceled) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

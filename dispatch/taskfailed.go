package dispatch

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// EventActivities start the events the dispatcher emits itself, through
// the intake's Starter: ordering, pauses, filters and the dedup by id
// apply to them as to any other. Every exported method is an activity.
type EventActivities struct {
	starter Starter
}

// NewEventActivities returns the activities that start events with s.
func NewEventActivities(s Starter) *EventActivities { return &EventActivities{starter: s} }

// Failure classes of EmitTaskFailed.
const (
	failureEmitRefused     = "EmitRefused"     // the event cannot be started: not retried
	failureEmitUnavailable = "EmitUnavailable" // Temporal or the store did not answer: retried
)

// EmitTaskFailed starts the task_failed event of each failure of the
// dispatch it runs for (dispatcher.TaskFailedEvent), for the dispatch's
// tenant, and returns how many it started. When no dispatcher listens to
// task_failed it starts none: an event nobody listens to would only fill
// the execution history. An event started before (an attempt that died
// after starting it) is a duplicate, not started again.
func (a *EventActivities) EmitTaskFailed(ctx context.Context, in workflows.TaskFailedInput) (int, error) {
	ctx = activities.Acting(ctx)
	if a.starter.Configs != nil {
		cfg, err := a.starter.Configs.Config(ctx, dispatcher.EventTaskFailed)
		if err != nil {
			return 0, temporal.NewApplicationError(fmt.Sprint(err), failureEmitUnavailable)
		}
		if len(cfg.Dispatchers) == 0 {
			return 0, nil
		}
	}
	run := activity.GetInfo(ctx).WorkflowExecution
	started := 0
	var refused error
	for _, f := range in.Failed {
		ev := dispatcher.TaskFailedEvent(run.ID, run.RunID, in.Event, f.Outcome, f.FunctionName, f.Tags)
		res, err := a.starter.Start(ctx, ev)
		switch {
		case err == nil && !res.Duplicate:
			started++
		case dispatcher.ErrorCode(err) == dispatcher.EINVALID:
			// No retry gets it through; the others are started still.
			refused = temporal.NewNonRetryableApplicationError(fmt.Sprintf("task_failed of action %s: %s", f.Outcome.ActionID, dispatcher.ErrorMessage(err)), failureEmitRefused, nil)
		case err != nil:
			// Retried: the events started already are duplicates then.
			return started, temporal.NewApplicationError(fmt.Sprint(err), failureEmitUnavailable)
		}
	}
	return started, refused
}

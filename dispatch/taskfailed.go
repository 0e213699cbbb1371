package dispatch

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
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

// EmitTaskFailed starts the task_failed event of f
// (dispatcher.TaskFailure.TaskFailedEvent), for the failed dispatch's
// tenant, and reports whether it started it. When no dispatcher listens
// to task_failed it starts none: an event nobody listens to would only
// fill the execution history. One started before (by an attempt that died
// after starting it) is a duplicate, not started again. Only an
// unavailable Temporal or store is retried: any other refusal (a
// permission the worker lacks, a size Temporal does not take) would last,
// and hold the dispatch open meanwhile.
func (a *EventActivities) EmitTaskFailed(ctx context.Context, f dispatcher.TaskFailure) (bool, error) {
	ctx = activities.Acting(ctx)
	if a.starter.Configs != nil {
		cfg, err := a.starter.Configs.Config(ctx, dispatcher.EventTaskFailed)
		switch {
		case dispatcher.ErrorCode(err) == dispatcher.EUNAVAILABLE:
			return false, temporal.NewApplicationError(fmt.Sprint(err), failureEmitUnavailable)
		case err == nil && len(cfg.Dispatchers) == 0:
			return false, nil
		}
		// Another failure to read it lasts: the start, as any event's,
		// goes on without it, and its dispatch fails as the
		// configuration does.
	}
	res, err := a.starter.Start(ctx, f.TaskFailedEvent())
	switch {
	case err == nil:
		return !res.Duplicate, nil
	case dispatcher.ErrorCode(err) == dispatcher.EUNAVAILABLE:
		return false, temporal.NewApplicationError(fmt.Sprint(err), failureEmitUnavailable)
	default:
		return false, temporal.NewNonRetryableApplicationError(fmt.Sprint(err), failureEmitRefused, nil)
	}
}

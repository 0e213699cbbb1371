package dispatch

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
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
	failureEmitUnavailable = "EmitUnavailable" // Temporal or the store did not answer, or failed: retried
)

// EmitTaskFailed starts the task_failed event of f
// (dispatcher.TaskFailure.TaskFailedEvent), for the failed dispatch's
// tenant, and reports whether it started it. When no dispatcher listens
// to task_failed it starts none: an event nobody listens to would only
// fill the execution history. One started before (by an attempt that died
// after starting it) is a duplicate, not started again. A refusal that
// lasts (the event refused, a permission the worker lacks) is not retried:
// it would hold the dispatch open meanwhile; anything else is.
func (a *EventActivities) EmitTaskFailed(ctx context.Context, f dispatcher.TaskFailure) (bool, error) {
	ctx = activities.Acting(ctx)
	if a.starter.Configs != nil {
		cfg, err := a.starter.Configs.Config(ctx, dispatcher.EventTaskFailed)
		switch {
		case storeDown(err):
			return false, temporal.NewApplicationError(fmt.Sprint(err), failureEmitUnavailable)
		case err == nil && len(cfg.Dispatchers) == 0:
			return false, nil
		}
		// Another failure to read it lasts: the start, as any event's,
		// goes on without it, and its dispatch fails as the
		// configuration does.
	}
	res, err := a.starter.Start(ctx, f.TaskFailedEvent())
	var denied *serviceerror.PermissionDenied
	switch code := dispatcher.ErrorCode(err); {
	case err == nil:
		return !res.Duplicate, nil
	case code == dispatcher.EINVALID || code == dispatcher.EREQUIRED || errors.As(err, &denied):
		return false, temporal.NewNonRetryableApplicationError(fmt.Sprint(err), failureEmitRefused, nil)
	default:
		// Unavailable, or a server error of Temporal's that may pass.
		return false, temporal.NewApplicationError(fmt.Sprint(err), failureEmitUnavailable)
	}
}

package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/dispatcherhq/dispatcher"
)

// superseded refuses an action of a run reset from the Temporal Web UI or
// CLI (reset) from a run a replay has superseded since: that replay may
// have made the action under its own key (Idempotency-Key, Message-ID),
// which the reset run, carrying its base run's input, does not know; made
// again under the base run's key, neither the receiver nor the store
// could tell the two apart. A reset of the latest run makes it under the
// key that run used, as a reset means. A store that does not answer is
// waited for while the attempt keeps more than keep (untilStoreAnswers).
func (a *Effects) superseded(ctx context.Context, keep time.Duration, reset bool, run string) error {
	if !reset || a.later == nil {
		return nil
	}
	var replay string
	err := untilStoreAnswers(ctx, keep, func() (err error) {
		replay, err = a.later(ctx, activity.GetInfo(ctx).WorkflowExecution.ID, run)
		return err
	})
	switch {
	case err != nil:
		return temporary(ctx, dispatcher.FailureStore, fmt.Sprintf("looking for replays since the run this one resets: %s", storeTrouble(ctx, err)))
	case replay != "":
		return permanent(ctx, dispatcher.FailureSuperseded, fmt.Sprintf(
			"not made: this run resets a run that replay %s has superseded since, which may have made it under its own key; reset the dispatch's latest run instead, or replay it",
			replay))
	}
	return nil
}

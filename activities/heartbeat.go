package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
)

// HeartbeatEvery is how often a running activity tells Temporal that its
// worker lives. Workflows give these activities a heartbeat timeout a few
// times longer, so an attempt whose worker died is retried within seconds
// rather than at the end of its whole timeout, and a cancellation reaches
// the attempt at its next heartbeat. (Workers must not throttle heartbeats
// beyond it: worker.Options.MaxHeartbeatThrottleInterval.)
const HeartbeatEvery = 2 * time.Second

// Heartbeat records heartbeats until the returned function is called, each
// carrying the attempt number (so a heartbeat timeout still says which
// attempt it was). It keeps going after the attempt was canceled: a call
// that runs on after a cancel (see callContext) must not be taken for a
// dead worker's. In a local activity, which has no heartbeats, it does
// nothing.
func Heartbeat(ctx context.Context) (stop func()) {
	if !activity.IsActivity(ctx) || activity.GetInfo(ctx).IsLocalActivity {
		return func() {}
	}
	beat := context.WithoutCancel(ctx)
	n := attempt(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(HeartbeatEvery)
		defer t.Stop()
		// On ticks only: a quick call needs no heartbeat, and one sent as
		// it ends would be flushed after the attempt is over.
		for {
			select {
			case <-done:
				return
			case <-t.C:
				activity.RecordHeartbeat(beat, n)
			}
		}
	}()
	return func() { close(done) }
}

// callContext is the context of an attempt's call: the attempt's values,
// without its cancellation, ending after budget. A cancel of the dispatch
// reaches a regular attempt by heartbeat; tearing its call down then would
// leave the receiver's effect unknown (it may complete the request anyway),
// and a replay would send it again under another key. So the call runs to
// its end, and the attempt reports how it ended: a call that completed is
// an action that succeeded.
func callContext(attemptCtx context.Context, budget time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(attemptCtx), budget)
}

// callBudget is how long a call of an attempt may take: limit, but ending
// a margin before the attempt's own deadline, so that the call's timeout,
// not Temporal's, ends a slow attempt. The attempt's code then always
// returns and reports how it ended; a deadline that passed first would
// leave the call running while Temporal schedules the next attempt.
//
// The margin is a tenth of what is left, between 1 and 5 s: the workflow
// gives a function's attempt its timeout plus 10 s, and a margin that
// grew with the timeout cut the calls of slow functions short (at 9m9s
// for a timeout of 10 minutes), each attempt failing as a timeout.
func callBudget(ctx context.Context, limit time.Duration) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return limit
	}
	left := time.Until(dl)
	return max(min(limit, left-min(max(left/10, time.Second), callMargin)), 0)
}

// callMargin is the most callBudget keeps back for reporting: room for a
// mail's record (recordBudget) and the attempt's answer.
const callMargin = 5 * time.Second

// queuedTooLong fails a first attempt (a local activity) that waited
// more than maxQueueWait for a slot of its worker
// (DISPATCHER_MAX_CONCURRENT_LOCAL_ACTIVITIES): the worker is behind, and
// a regular attempt, on any worker, makes the call sooner. It fails
// without calling, as FailureSlotMissed: the dispatch makes the call as a
// regular activity, with its whole time and, from dispatchV12, at no
// attempt's cost (a gated call asks its gate for another permit, as for a
// missed rate-limit slot). The workflow lets a first attempt wait longer
// than this (workflows.localQueueTimeout), so that one that waited less
// keeps its whole time: the SDK's deadline would otherwise cut its call
// short.
func queuedTooLong(ctx context.Context) error {
	info := activity.GetInfo(ctx)
	if !queuedLong(info) {
		return nil
	}
	return temporary(ctx, dispatcher.FailureSlotMissed, fmt.Sprintf(
		"the first attempt waited %s for a slot of its worker: not made here, a regular attempt makes it",
		info.StartedTime.Sub(info.ScheduledTime).Round(time.Second)))
}

// staleTask fails, without calling, a first attempt that its worker
// scheduled more than staleTaskAfter after its workflow task started
// (taskStarted, the server's clock): longer than the task may take (10 s),
// so the task has timed out, the attempt's outcome would be thrown away,
// and another worker runs the dispatch's task again and makes the call.
// A process paused (a stopped VM, SIGSTOP) and resumed processes the
// task it had polled before; before, it made the call all the same, a
// second one, seconds after the dispatch had completed elsewhere. It
// fails as FailureSlotMissed, which a live task answers with a regular
// attempt at once (dispatchV12): a worker whose clock runs that far ahead
// of the server's makes its first attempts so, slower and correct. Only
// ungated calls say when their task started (TaskInput.TaskStarted): a
// gated call that misses asks for another permit, on the same clock.
func staleTask(ctx context.Context, taskStarted time.Time) error {
	info := activity.GetInfo(ctx)
	late := info.ScheduledTime.Sub(taskStarted)
	if !info.IsLocalActivity || taskStarted.IsZero() || late <= staleTaskAfter {
		return nil
	}
	// Unanswered: the lost task may have made it (its worker paused
	// mid-call); a cancel now reports the action as perhaps made.
	return temporal.NewApplicationErrorWithOptions(fmt.Sprintf(
		"the workflow task of this first attempt started %s before its worker scheduled it, and has timed out: not made here", late.Round(time.Second)),
		dispatcher.FailureSlotMissed, temporal.ApplicationErrorOptions{Details: []any{dispatcher.FailureDetails{Attempt: attempt(ctx), Unanswered: true}}})
}

// staleTaskAfter is how long after its workflow task started a first
// attempt may be scheduled and still be made: past the task's timeout,
// with room for the clocks of worker and server.
const staleTaskAfter = 15 * time.Second

// maxQueueWait is how long a first attempt may wait for a slot of its
// worker and still be made there.
const maxQueueWait = time.Minute

// queuedLong reports whether a local activity waited more than
// maxQueueWait for a slot.
func queuedLong(info activity.Info) bool {
	return info.IsLocalActivity && info.StartedTime.Sub(info.ScheduledTime) > maxQueueWait
}

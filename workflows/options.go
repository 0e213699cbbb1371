package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
)

// DefaultLocalCallLimit is the longest call an action's first attempt
// makes as a local activity: mails (a minute) and functions with the
// default timeout qualify; a function that may take longer runs every
// attempt as a heartbeating regular activity, rather than hold a workflow
// task that Temporal must keep alive for minutes.
const DefaultLocalCallLimit = time.Minute

// heartbeatTimeout is how long a regular attempt may go without a
// heartbeat (activities.HeartbeatTimeout) before Temporal retries it
// elsewhere: its worker died.
const heartbeatTimeout = 10 * time.Second

// localQueueTimeout is how long a local activity may wait for a slot of
// its worker (DISPATCHER_MAX_CONCURRENT_LOCAL_ACTIVITIES) before it
// starts, on top of its own StartToCloseTimeout. The SDK otherwise makes
// the ScheduleToCloseTimeout the StartToCloseTimeout, counted from when
// the workflow asked: the wait came out of the call's own time, and under
// load a first attempt began with seconds of its function's timeout left,
// cut the call short while the receiver went on, and the regular attempt
// called again; the payload of a temporal function, after 10 s waiting,
// failed for good without a try. A first attempt that waited more than
// a minute is not made (activities.queuedTooLong): a regular attempt, on
// any worker, makes it with its whole time (dispatchV12: at no attempt's
// cost). Local activities' options are not in the history: changing them
// changes no command.
const localQueueTimeout = 10 * time.Minute

// localOptions are the options of a local activity of one attempt that
// may take timeout once it has started.
func localOptions(timeout time.Duration) workflow.LocalActivityOptions {
	return workflow.LocalActivityOptions{
		StartToCloseTimeout:    timeout,
		ScheduleToCloseTimeout: timeout + localQueueTimeout,
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 1},
	}
}

// prepareTaskOptions: rendering a child workflow's payload is quick and
// local, and a template error is non-retryable; but in a reset run it
// first asks the store whether a replay superseded the run, and a store
// that does not answer is retried: 8 attempts, each waiting up to 9 s
// for the store, 45 s apart in all, about two minutes at most. With one
// attempt, an outage of over 10 s failed the action.
var prepareTaskOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    10 * time.Second,
	ScheduleToCloseTimeout: 2*time.Minute + localQueueTimeout,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
		MaximumAttempts:    8,
	},
}

// DefaultRetryPolicy returns the retry policy of an action without its
// own. Its MaximumAttempts counts the local first attempt.
func DefaultRetryPolicy() dispatcher.RetryPolicy {
	return dispatcher.RetryPolicy{
		MaximumAttempts:    dispatcher.DefaultAttempts,
		InitialInterval:    time.Second,
		BackoffCoefficient: dispatcher.DefaultBackoffCoefficient,
		MaximumInterval:    5 * time.Minute,
	}
}

// orderingBlocksOptions: reading whether a failed ordered dispatch holds
// its key is quick and local; a store that does not answer within a
// minute leaves the policy of when its event was accepted.
var orderingBlocksOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    10 * time.Second,
	ScheduleToCloseTimeout: time.Minute,
}

// loadConfigOptions: the store is local and fast; when it is down the
// dispatch keeps retrying for a while instead of failing the event.
var loadConfigOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    10 * time.Second,
	ScheduleToCloseTimeout: 30 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
	},
}

// emitOptions: starting a task_failed event waits out an outage of
// Temporal or of the store for up to 10 minutes (counted from when it was
// first asked), and the dispatch closes only then: not longer, as it
// holds its ordering key meanwhile, and each retry past the workflow
// task's timeout is a timer in its history. A worker's restart meanwhile
// starts it again, as a duplicate of itself: its id is the failure's.
var emitOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    30 * time.Second,
	ScheduleToCloseTimeout: 10 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
	},
}

// resolveFunctionOptions: looking a function up again is a read of the
// local store; when it does not answer for a while, the action goes on
// without (dispatch.function).
var resolveFunctionOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    10 * time.Second,
	ScheduleToCloseTimeout: time.Minute + localQueueTimeout,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
	},
}

// retryPolicy returns the Temporal retry policy of an action: the default
// with the fields its own policy sets.
func retryPolicy(p *dispatcher.RetryPolicy) temporal.RetryPolicy {
	r := DefaultRetryPolicy()
	if p != nil {
		if p.MaximumAttempts > 0 {
			r.MaximumAttempts = p.MaximumAttempts
		}
		if p.InitialInterval > 0 {
			r.InitialInterval = p.InitialInterval
		}
		if p.BackoffCoefficient >= 1 {
			r.BackoffCoefficient = p.BackoffCoefficient
		}
		if p.MaximumInterval > 0 {
			r.MaximumInterval = p.MaximumInterval
		}
	}
	return temporal.RetryPolicy{
		InitialInterval:    r.InitialInterval,
		BackoffCoefficient: r.BackoffCoefficient,
		MaximumInterval:    max(r.MaximumInterval, r.InitialInterval),
		// Capped again here: a row saved before the limit existed may
		// hold more, which int32 would wrap (0 is "retry for ever").
		MaximumAttempts:        int32(min(r.MaximumAttempts, dispatcher.MaxAttempts)),
		NonRetryableErrorTypes: dispatcher.PermanentFailures(),
	}
}

// mailTimeout bounds one regular SMTP delivery attempt.
const mailTimeout = time.Minute

// functionTimeout bounds one regular HTTP call attempt: the function's own
// timeout plus dispatcher.CallRoom.
func functionTimeout(fn dispatcher.FunctionRef) time.Duration {
	t := fn.Timeout
	if t <= 0 {
		t = dispatcher.DefaultFunctionTimeout
	}
	return t + dispatcher.CallRoom
}

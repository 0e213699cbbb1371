package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
)

// DefaultLocalTimeout bounds the first attempt of an action, which runs as
// a local activity inside the workflow task. Longer calls are retried as
// regular activities, so a slow function never holds a workflow task.
const DefaultLocalTimeout = 5 * time.Second

// DefaultRetryPolicy returns the retry policy of an action without its
// own. Its MaximumAttempts counts the local first attempt.
func DefaultRetryPolicy() dispatcher.RetryPolicy {
	return dispatcher.RetryPolicy{
		MaximumAttempts:    10,
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    5 * time.Minute,
	}
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
		InitialInterval:        r.InitialInterval,
		BackoffCoefficient:     r.BackoffCoefficient,
		MaximumInterval:        max(r.MaximumInterval, r.InitialInterval),
		MaximumAttempts:        int32(r.MaximumAttempts),
		NonRetryableErrorTypes: dispatcher.PermanentFailures(),
	}
}

// mailTimeout bounds one regular SMTP delivery attempt.
const mailTimeout = time.Minute

// functionTimeout bounds one regular HTTP call attempt: the function's own
// timeout plus room for loading it and reading the answer, so that the
// call's timeout, not the activity's, reports a slow function.
func functionTimeout(fn dispatcher.FunctionRef) time.Duration {
	t := fn.Timeout
	if t <= 0 {
		t = dispatcher.DefaultFunctionTimeout
	}
	return t + 10*time.Second
}

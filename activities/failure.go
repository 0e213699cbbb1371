package activities

import (
	"context"
	"errors"
	"math"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
)

// permanent returns a non-retryable failure of type typ (one of the
// dispatcher.Failure constants).
func permanent(ctx context.Context, typ, msg string) error {
	return failure(ctx, typ, msg, true, 0, 0)
}

// temporary returns a retryable failure of type typ.
func temporary(ctx context.Context, typ, msg string) error {
	return failure(ctx, typ, msg, false, 0, 0)
}

// failure returns a failure of type typ; retryAfter > 0 overrides the
// retry policy's next interval (an HTTP Retry-After).
func failure(ctx context.Context, typ, msg string, nonRetryable bool, retryAfter time.Duration, status int) error {
	return temporal.NewApplicationErrorWithOptions(msg, typ, temporal.ApplicationErrorOptions{
		NonRetryable:   nonRetryable,
		NextRetryDelay: retryAfter,
		Details:        []any{dispatcher.FailureDetails{Attempt: attempt(ctx), StatusCode: status}},
	})
}

// unanswered is temporary for a mail the attempt handed over without an
// answer, or left to another attempt that may be sending it: its server
// may have it (dispatcher.FailureDetails.Unanswered).
func unanswered(ctx context.Context, msg string, retryAfter time.Duration) error {
	return unansweredAs(msg, retryAfter, dispatcher.FailureDetails{Attempt: attempt(ctx), Unanswered: true})
}

// held is unanswered for an attempt that left its mail to another
// attempt holding it: it made nothing (FailureDetails.Held).
func held(ctx context.Context, msg string, retryAfter time.Duration) error {
	return unansweredAs(msg, retryAfter, dispatcher.FailureDetails{Attempt: attempt(ctx), Unanswered: true, Held: true})
}

func unansweredAs(msg string, retryAfter time.Duration, det dispatcher.FailureDetails) error {
	return temporal.NewApplicationErrorWithOptions(msg, dispatcher.FailureSMTPTemporary, temporal.ApplicationErrorOptions{
		NextRetryDelay: retryAfter,
		Details:        []any{det},
	})
}

// storeWait bounds the pauses of untilStoreAnswers; noStoreWait, as its
// keep, makes none.
const (
	storeWaitFirst, storeWaitMost = 250 * time.Millisecond, 5 * time.Second
	noStoreWait                   = time.Duration(math.MaxInt64)
)

// mailKeep is the keep of untilStoreAnswers for a mail's attempt: the
// time to send it and to record it. A first attempt (a local activity)
// holds its dispatch's workflow task: it waits for nothing, and its
// regular activity waits. A function's call does not wait (CallFunction):
// its attempt is its timeout and a margin, and a wait would cut the call.
func mailKeep(ctx context.Context) time.Duration {
	if activity.IsActivity(ctx) && activity.GetInfo(ctx).IsLocalActivity {
		return noStoreWait
	}
	return minSendTime + callMargin
}

// untilStoreAnswers runs op, a read or write of the store, again while it
// fails because the store is unavailable (EUNAVAILABLE: down, restarting,
// refusing connections), as long as the attempt keeps more than keep of
// its time. Failing at once, a database failover of a few seconds cost
// an action's attempts, and one with few of them failed for good; an
// outage now costs an attempt only once it outlasts the attempt. op's
// last error is returned.
func untilStoreAnswers(ctx context.Context, keep time.Duration, op func() error) error {
	wait := storeWaitFirst
	for {
		err := op()
		if err == nil || dispatcher.ErrorCode(err) != dispatcher.EUNAVAILABLE {
			return err
		}
		// Not keep+wait, which overflows for noStoreWait: before, that
		// keep waited out the whole attempt instead of none of it.
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl)-wait < keep {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(wait*2, storeWaitMost)
	}
}

// attempt is the attempt number of the running activity, 1 for the first.
func attempt(ctx context.Context) int {
	if !activity.IsActivity(ctx) {
		return 1
	}
	return int(activity.GetInfo(ctx).Attempt)
}

// storeTrouble is a store's error as a failure message shows it to
// whoever reads executions: its domain error, never a driver's text
// (hosts, users, the schema's names), which it logs for the operators.
func storeTrouble(ctx context.Context, err error) string {
	var de *dispatcher.Error
	var caused *dispatcher.Caused
	if (!errors.As(err, &de) || errors.As(err, &caused)) && activity.IsActivity(ctx) {
		// Not "the database failed": the cause may be a stored secret
		// that no key of the process decrypts (a probe read it so).
		activity.GetLogger(ctx).Warn("Reading the configuration failed", "Error", err)
	}
	if de == nil {
		return "the configuration database failed (the worker's log says how)"
	}
	return de.Error()
}

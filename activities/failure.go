package activities

import (
	"context"
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
	return temporal.NewApplicationErrorWithOptions(msg, dispatcher.FailureSMTPTemporary, temporal.ApplicationErrorOptions{
		NextRetryDelay: retryAfter,
		Details:        []any{dispatcher.FailureDetails{Attempt: attempt(ctx), Unanswered: true}},
	})
}

// attempt is the attempt number of the running activity, 1 for the first.
func attempt(ctx context.Context) int {
	if !activity.IsActivity(ctx) {
		return 1
	}
	return int(activity.GetInfo(ctx).Attempt)
}

package workflows

import (
	"slices"
	"testing"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
)

func TestErrorPairs(t *testing.T) {
	outcomes := []dispatcher.ActionOutcome{
		{DispatcherID: "d2", ActionID: "a1", Status: dispatcher.OutcomeFailed, ErrorClass: dispatcher.FailureHTTPPermanent},
		{DispatcherID: "d1", ActionID: "a2", Status: dispatcher.OutcomeSucceeded},
		{DispatcherID: "d1", ActionID: "a3", Status: dispatcher.OutcomeFailed, ErrorClass: dispatcher.FailureSMTPPermanent},
		{DispatcherID: "d2", ActionID: "a4", Status: dispatcher.OutcomeFailed, ErrorClass: dispatcher.FailureHTTPPermanent},
		{DispatcherID: "d1", ActionID: "a5", Status: dispatcher.OutcomeCanceled, ErrorClass: dispatcher.FailureCanceled},
		// A skipped action is no failure: no "@d3" pair.
		{DispatcherID: "d3", ActionID: "a6", Status: dispatcher.OutcomeSkipped, SkipReason: dispatcher.SkipPaused},
	}
	pairs := errorPairs(outcomes)
	if want := []string{"Canceled@d1", "HTTPPermanent@d2", "SMTPPermanent@d1"}; !slices.Equal(pairs, want) {
		t.Fatalf("errorPairs = %v, want %v", pairs, want)
	}
}

// A reset run's actions carry Reset, which the run it was reset from did
// not: its commands must measure alike, or a reset run near the pace
// bound would wait for another task than the history it replays holds.
func TestMeasureLeavesResetOut(t *testing.T) {
	mail := dispatcher.MailInput{MessageID: "m@dispatcher", Run: "r"}
	task := dispatcher.TaskInput{IdempotencyKey: "k", Run: "r"}
	resetMail, resetTask := mail, task
	resetMail.Reset, resetTask.Reset = true, true
	if measure(resetMail) != measure(mail) || measure(resetTask) != measure(task) {
		t.Errorf("a reset's inputs measure %d and %d, want %d and %d", measure(resetMail), measure(resetTask), measure(mail), measure(task))
	}
}

// An action canceled after a failed attempt keeps that failure's details
// (a function's 503: a replay calls again under a new key), but not a
// timeout's, whose cause is the attempt before it: the call that timed
// out may still go on, and must keep its key (diff review). Before the
// fix, the earlier attempt's 503 was taken for the last's answer.
func TestCanceledAfter(t *testing.T) {
	answered := temporal.NewApplicationErrorWithOptions("503", dispatcher.FailureHTTPTemporary,
		temporal.ApplicationErrorOptions{Details: []any{dispatcher.FailureDetails{StatusCode: 503}}})
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{"answered", answered, 503},
		{"timed out after an answered attempt", temporal.NewTimeoutError(enums.TIMEOUT_TYPE_HEARTBEAT, answered), 0},
	} {
		err := canceledAfter(tc.err)
		det, _ := failureDetails(err)
		if !temporal.IsCanceledError(err) || det.StatusCode != tc.status {
			t.Errorf("%s: %v (canceled %v, status %d), want canceled, status %d", tc.name, err, temporal.IsCanceledError(err), det.StatusCode, tc.status)
		}
	}
}

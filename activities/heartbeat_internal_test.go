package activities

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/dispatcherhq/dispatcher"
)

// TestCallBudgetKeepsTheFunctionTimeout gives a function's call its whole
// timeout within the attempt the workflow gives it (the timeout plus 10 s,
// workflows.functionTimeout), and still ends the call before the attempt:
// a margin of a tenth of the attempt cut a 10-minute function at 9m9s, and
// every attempt of a function slower than that failed as a timeout.
func TestCallBudgetKeepsTheFunctionTimeout(t *testing.T) {
	for _, timeout := range []time.Duration{time.Second, dispatcher.DefaultFunctionTimeout, 90 * time.Second, 2 * time.Minute, dispatcher.MaxFunctionTimeout} {
		deadline := time.Now().Add(timeout + 10*time.Second)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		got := callBudget(ctx, timeout)
		left := time.Until(deadline)
		cancel()
		if got < timeout-time.Second || left-got < time.Second {
			t.Errorf("a function of %s in an attempt of %s: the call may take %s, with %s left of the attempt after it; want its timeout, and a second left",
				timeout, timeout+10*time.Second, got.Round(time.Millisecond), (left - got).Round(time.Millisecond))
		}
	}
	// A mail's attempt is as long as its call's limit: the margin is left
	// for recording the mail.
	ctx, cancel := context.WithTimeout(context.Background(), mailTimeout)
	defer cancel()
	if got := callBudget(ctx, mailTimeout); got > mailTimeout-callMargin || got < mailTimeout-callMargin-time.Second {
		t.Errorf("a mail's call may take %s of its %s attempt, want %s", got, mailTimeout, mailTimeout-callMargin)
	}
}

// A first attempt that waited more than a minute for a slot is not made;
// one that waited less, a regular attempt, and one whose wait the clock
// cannot tell, are.
func TestQueuedLong(t *testing.T) {
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		info activity.Info
		want bool
	}{
		{"started at once", activity.Info{IsLocalActivity: true, ScheduledTime: start, StartedTime: start}, false},
		{"waited less than a minute", activity.Info{IsLocalActivity: true, ScheduledTime: start, StartedTime: start.Add(59 * time.Second)}, false},
		{"waited longer", activity.Info{IsLocalActivity: true, ScheduledTime: start, StartedTime: start.Add(61 * time.Second)}, true},
		{"a regular attempt", activity.Info{ScheduledTime: start, StartedTime: start.Add(5 * time.Minute)}, false},
	} {
		if got := queuedLong(tt.info); got != tt.want {
			t.Errorf("%s: queuedLong = %v, want %v", tt.name, got, tt.want)
		}
	}
}

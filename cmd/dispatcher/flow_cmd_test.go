package main

import (
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/wire"
)

// TestFlowLimitsLeaveOutAnEndedPause: executions flow's LIMITS says a
// pause only while it lasts; before, one that had ended still showed,
// beside an empty PAUSED UNTIL column.
func TestFlowLimitsLeaveOutAnEndedPause(t *testing.T) {
	now := time.Date(2026, 12, 2, 16, 30, 0, 0, time.UTC)
	f := wire.Function{MaxConcurrency: 2, PausedUntil: "2026-12-02T16:22:59.000Z"}
	if got, want := limits(f, now), "2 at once"; got != want {
		t.Errorf("ended pause: %q, want %q", got, want)
	}
	f.PausedUntil = "2026-12-02T17:00:00.000Z"
	if got, want := limits(f, now), "2 at once; paused until 2026-12-02T17:00:00.000Z"; got != want {
		t.Errorf("pause on: %q, want %q", got, want)
	}
}

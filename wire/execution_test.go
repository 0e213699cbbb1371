package wire_test

import (
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// A mail's Message-ID is shown only when a server has, or may have, the
// mail: before, one that failed on its template showed one, which support
// looked for in mail logs.
func TestOutcomeShowsTheMessageIDOfAMailSent(t *testing.T) {
	for _, tt := range []struct {
		o    dispatcher.ActionOutcome
		want bool
	}{
		{dispatcher.ActionOutcome{Status: dispatcher.OutcomeSucceeded}, true},
		{dispatcher.ActionOutcome{Status: dispatcher.OutcomeFailed, ErrorClass: dispatcher.FailureTemplate}, false},
		{dispatcher.ActionOutcome{Status: dispatcher.OutcomeCanceled}, false},
		{dispatcher.ActionOutcome{Status: dispatcher.OutcomeFailed, ErrorClass: dispatcher.FailureSMTPTemporary, Unanswered: true}, true},
		{dispatcher.ActionOutcome{Status: dispatcher.OutcomeRunning}, true},
	} {
		tt.o.Type, tt.o.MessageID = dispatcher.ActionMail, "dispatch-1.d1.m1@dispatcher"
		d := wire.FromExecutionDetail(dispatcher.ExecutionDetail{Outcomes: []dispatcher.ActionOutcome{tt.o}})
		if got := d.Actions[0].MessageID != ""; got != tt.want {
			t.Errorf("%s %s unanswered %t: Message-ID shown %t, want %t", tt.o.Status, tt.o.ErrorClass, tt.o.Unanswered, got, tt.want)
		}
	}
}

// An action scheduled for later than its run's start says when it was
// due also once it ran, so that support can tell one that started late
// (its worker down at its time) from one on time; one whose time had
// passed when the run began ran at once, and was due at no other time.
func TestOutcomeSaysWhenAScheduledActionWasDue(t *testing.T) {
	start := time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)
	due := start.Add(time.Hour)
	past := start.Add(-time.Hour)
	cfg := &dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{{ID: "d1", Actions: []dispatcher.Action{
		{ID: "later", StartTimestamp: &due}, {ID: "passed", StartTimestamp: &past}, {ID: "now"}}}}}
	for _, tt := range []struct {
		id, status string
		want       *time.Time
	}{
		{"later", dispatcher.OutcomeScheduled, &due},
		{"later", dispatcher.OutcomeSucceeded, &due},
		{"later", dispatcher.OutcomeCanceled, &due},
		{"passed", dispatcher.OutcomeSucceeded, nil},
		{"now", dispatcher.OutcomeSucceeded, nil},
	} {
		d := wire.FromExecutionDetail(dispatcher.ExecutionDetail{Execution: dispatcher.Execution{Start: start}, Config: cfg,
			Outcomes: []dispatcher.ActionOutcome{{ActionID: tt.id, Status: tt.status}}})
		got := d.Actions[0].DueTimestamp
		if (got == nil) != (tt.want == nil) || got != nil && *got != tt.want.UnixMilli() {
			t.Errorf("%s %s: dueTimestamp %v, want %v", tt.id, tt.status, got, tt.want)
		}
	}
}

// A group whose dispatcher no longer runs its event type says the
// dispatcher was deleted or moved: it may still exist, under another
// type. Before, it said deleted, and an operator believed it gone.
func TestFailureSummaryOfARemovedDispatcher(t *testing.T) {
	out := wire.FromFailureSummary(dispatcher.FailureSummary{Groups: []dispatcher.FailureGroup{
		{ErrorClass: "TemplateError", DispatcherID: "d1", DispatcherName: "erase", Count: 2, Sample: "bad", Removed: true},
		{ErrorClass: "TemplateError", DispatcherID: "d2", DispatcherName: "notify", Count: 1, Sample: "bad"},
	}})
	if got, want := out.Groups[0].Summary, "2 × TemplateError: bad, dispatcher erase (d1), deleted or moved to another event type since: no replay runs it"; got != want {
		t.Errorf("removed: %q, want %q", got, want)
	}
	if got, want := out.Groups[1].Summary, "1 × TemplateError: bad, dispatcher notify (d2)"; got != want {
		t.Errorf("kept: %q, want %q", got, want)
	}
}

package wire_test

import (
	"testing"

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

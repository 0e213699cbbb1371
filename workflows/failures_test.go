package workflows

import (
	"slices"
	"testing"

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

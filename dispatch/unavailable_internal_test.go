package dispatch

import (
	"strings"
	"testing"

	"go.temporal.io/api/serviceerror"

	"github.com/dispatcherhq/dispatcher"
)

// A Temporal that does not answer is a 503 whose message does not name
// its address, which the gRPC error quotes: before, every producer read
// "dial tcp 10.0.3.7:7233: connect: connection refused". The logs keep it.
func TestTemporalUnavailableHidesTheAddress(t *testing.T) {
	cause := serviceerror.NewUnavailable(`connection error: desc = "transport: Error while dialing: dial tcp 10.0.3.7:7233: connect: connection refused"`)
	for name, err := range map[string]error{"a start": refused(cause), "another call": temporalError(cause, "listing")} {
		if got := dispatcher.ErrorCode(err); got != dispatcher.EUNAVAILABLE {
			t.Errorf("%s: %s, want %s", name, got, dispatcher.EUNAVAILABLE)
		}
		if msg := dispatcher.ErrorMessage(err); msg != "temporal is unavailable: try again" {
			t.Errorf("%s: the client reads %q", name, msg)
		}
		if !strings.Contains(err.Error(), "10.0.3.7:7233") {
			t.Errorf("%s: the log reads %q, want the cause", name, err)
		}
	}
}

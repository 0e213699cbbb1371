package dispatch

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

// A Temporal that refuses the dispatcher itself, its namespace unknown or
// its credentials not accepted, is a 503 too, the cause in the log only:
// before, a 500 "internal error", which the runbooks call a bug of ours.
func TestTemporalRefusingTheDispatcher(t *testing.T) {
	for name, cause := range map[string]error{
		"an unknown namespace": serviceerror.NewNamespaceNotFound("nosuchns"),
		"a denied API key":     serviceerror.NewPermissionDenied("Request unauthorized.", ""),
		"no credentials":       status.Error(codes.Unauthenticated, "missing API key"),
	} {
		for call, err := range map[string]error{"a start": refused(cause), "another call": temporalError(cause, "listing")} {
			if got := dispatcher.ErrorCode(err); got != dispatcher.EUNAVAILABLE {
				t.Errorf("%s, %s: %s, want %s", name, call, got, dispatcher.EUNAVAILABLE)
			}
			if msg := dispatcher.ErrorMessage(err); !strings.Contains(msg, "operator must fix") || strings.Contains(msg, "nosuchns") {
				t.Errorf("%s, %s: the client reads %q", name, call, msg)
			}
			if !strings.Contains(err.Error(), cause.Error()) {
				t.Errorf("%s, %s: the log reads %q, want the cause", name, call, err)
			}
		}
	}
}

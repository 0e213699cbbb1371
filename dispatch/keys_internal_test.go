package dispatch

import (
	"maps"
	"testing"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// TestKeptKeys: a replay keeps the key of each action its run did not see
// end (canceled, timed out, no outcome), from whichever run that key was
// first taken; the actions that ended with an answer take the replay's.
func TestKeptKeys(t *testing.T) {
	outcome := func(id, status, class string) dispatcher.ActionOutcome {
		return dispatcher.ActionOutcome{ActionID: id, Status: status, ErrorClass: class}
	}
	outcomes := []dispatcher.ActionOutcome{
		outcome("ok", dispatcher.OutcomeSucceeded, ""),
		outcome("skipped", dispatcher.OutcomeSkipped, ""),
		outcome("refused", dispatcher.OutcomeFailed, dispatcher.FailureHTTPPermanent),
		outcome("superseded", dispatcher.OutcomeFailed, dispatcher.FailureSuperseded),
		outcome("canceled", dispatcher.OutcomeCanceled, dispatcher.FailureCanceled),
		outcome("timed-out", dispatcher.OutcomeFailed, dispatcher.FailureTimeout),
	}
	all := []string{"ok", "skipped", "refused", "superseded", "canceled", "timed-out", "unrecorded"}
	cfg := &dispatcher.Config{}
	for _, tc := range []struct {
		name string
		src  runRecord
		want map[string]string
	}{
		{"the first run", runRecord{config: cfg, outcomes: outcomes},
			map[string]string{"canceled": "", "timed-out": "", "unrecorded": ""}},
		{"a replay", runRecord{config: cfg, outcomes: outcomes, input: workflows.DispatchInput{Run: "r1", Version: workflows.NewestDispatchVersion}},
			map[string]string{"canceled": "r1", "timed-out": "r1", "unrecorded": "r1"}},
		{"a replay that kept a key", runRecord{config: cfg, outcomes: outcomes,
			input: workflows.DispatchInput{Run: "r2", Keys: map[string]string{"timed-out": "r1"}, Version: workflows.NewestDispatchVersion}},
			map[string]string{"canceled": "r2", "timed-out": "r1", "unrecorded": "r2"}},
		{"a run before keys were kept", runRecord{config: cfg, outcomes: outcomes,
			input: workflows.DispatchInput{Run: "r2", Keys: map[string]string{"timed-out": "r1"}, Version: 13}},
			map[string]string{"canceled": "r2", "timed-out": "r2", "unrecorded": "r2"}},
		{"a run that ran nothing", runRecord{}, nil},
	} {
		if got := keptKeys(tc.src, all); !maps.Equal(got, tc.want) {
			t.Errorf("%s: kept %v, want %v", tc.name, got, tc.want)
		}
	}
}

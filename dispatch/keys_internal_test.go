package dispatch

import (
	"maps"
	"testing"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// TestKeptKeys: a replay keeps the key of each action its run did not see
// end (canceled, timed out, cut off, answered by a gateway, no outcome at
// all), from whichever run that
// key was first taken, and carries those of the actions the run did not
// run; the actions that ended with an answer take the replay's.
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
		outcome("cut-off", dispatcher.OutcomeFailed, dispatcher.FailureHTTPTemporary), // no status: no answer
		{ActionID: "gateway", Status: dispatcher.OutcomeFailed, ErrorClass: dispatcher.FailureHTTPTemporary, HTTPStatus: 504},
		{ActionID: "busy", Status: dispatcher.OutcomeFailed, ErrorClass: dispatcher.FailureHTTPTemporary, HTTPStatus: 503},
		{ActionID: "origin", Status: dispatcher.OutcomeFailed, ErrorClass: dispatcher.FailureHTTPTemporary, HTTPStatus: 524}, // Cloudflare's timeout
		{ActionID: "in-progress", Status: dispatcher.OutcomeFailed, ErrorClass: dispatcher.FailureHTTPTemporary, HTTPStatus: 409},
		{ActionID: "mail-unanswered", Status: dispatcher.OutcomeFailed, ErrorClass: dispatcher.FailureSMTPTemporary, Unanswered: true},
		outcome("mail-refused", dispatcher.OutcomeFailed, dispatcher.FailureSMTPTemporary), // a 4xx: the server's answer
		// Its history had no room for its next attempt: the one before
		// may have gone unanswered, which its outcome no longer says.
		outcome("full", dispatcher.OutcomeFailed, dispatcher.FailureHistoryFull),
	}
	cfg := &dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{{ID: "d1", Actions: []dispatcher.Action{{ID: "a"}, {ID: "b"}}}}}
	newest := workflows.NewestDispatchVersion
	for _, tc := range []struct {
		name string
		src  runRecord
		want map[string]string
	}{
		{"the first run", runRecord{config: cfg, outcomes: outcomes, closed: true},
			map[string]string{"canceled": "", "timed-out": "", "cut-off": "", "gateway": "", "origin": "", "in-progress": "", "mail-unanswered": "", "full": ""}},
		{"a replay", runRecord{config: cfg, outcomes: outcomes, closed: true, input: workflows.DispatchInput{Run: "r1", Version: newest}},
			map[string]string{"canceled": "r1", "timed-out": "r1", "cut-off": "r1", "gateway": "r1", "origin": "r1", "in-progress": "r1", "mail-unanswered": "r1", "full": "r1"}},
		{"a replay that kept a key", runRecord{config: cfg, outcomes: outcomes, closed: true,
			input: workflows.DispatchInput{Run: "r2", Keys: map[string]string{"timed-out": "r1"}, Version: newest}},
			map[string]string{"canceled": "r2", "timed-out": "r1", "cut-off": "r2", "gateway": "r2", "origin": "r2", "in-progress": "r2", "mail-unanswered": "r2", "full": "r2"}},
		// r2 ran "ok" alone: "late", kept from r1, carries on; so it does
		// through a run pinned to version 13, which ignored the keys.
		{"a replay of other actions", runRecord{config: cfg, outcomes: outcomes[:1], closed: true,
			input: workflows.DispatchInput{Run: "r2", Only: []string{"ok"}, Keys: map[string]string{"late": "r1"}, Version: newest}},
			map[string]string{"late": "r1"}},
		{"a replay of other actions, pinned to 13", runRecord{config: cfg, outcomes: outcomes[:1], closed: true,
			input: workflows.DispatchInput{Run: "r2", Only: []string{"ok"}, Keys: map[string]string{"late": "r1"}, Version: 13}},
			map[string]string{"late": "r1"}},
		{"a run before keys were kept", runRecord{config: cfg, outcomes: outcomes, closed: true,
			input: workflows.DispatchInput{Run: "r2", Keys: map[string]string{"timed-out": "r1"}, Version: 13}},
			map[string]string{"canceled": "r2", "timed-out": "r2", "cut-off": "r2", "gateway": "r2", "origin": "r2", "in-progress": "r2", "mail-unanswered": "r2", "full": "r2"}},
		{"terminated", runRecord{config: cfg, input: workflows.DispatchInput{Run: "r1", Version: newest}},
			map[string]string{"a": "r1", "b": "r1"}},
		// It failed before it had its configuration: it ran nothing.
		{"a replay that ran nothing", runRecord{input: workflows.DispatchInput{Run: "r2", Keys: map[string]string{"late": "r1"}, Version: newest}},
			map[string]string{"late": "r1"}},
		{"a run that ran nothing", runRecord{}, nil},
	} {
		if got := keptKeys(tc.src, nil); !maps.Equal(got, tc.want) {
			t.Errorf("%s: kept %v, want %v", tc.name, got, tc.want)
		}
	}

	// An ordered dispatch loads its configuration in its first workflow
	// task, with its first attempts: terminated in that task, it recorded
	// neither, and may have made them. Before, its replay (with the
	// current configuration) made them again under new keys.
	for _, tc := range []struct {
		name string
		src  runRecord
		want map[string]string
	}{
		{"the first run", runRecord{}, map[string]string{"a": "", "b": ""}},
		{"a replay", runRecord{input: workflows.DispatchInput{Run: "r2", Keys: map[string]string{"a": "r1", "late": "r1"}, Version: newest}},
			map[string]string{"a": "r1", "b": "r2", "late": "r1"}},
		{"a run that recorded its configuration", runRecord{config: cfg, outcomes: outcomes[:1], closed: true}, nil},
		// That replay skipped "a" (its dispatcher paused): the next one
		// keeps the key "a" had. Before, lost (diff review).
		{"a replay that skipped an action it kept the key of", runRecord{config: cfg, closed: true,
			outcomes: []dispatcher.ActionOutcome{{ActionID: "a", Status: dispatcher.OutcomeSkipped}, {ActionID: "b", Status: dispatcher.OutcomeSucceeded}},
			input:    workflows.DispatchInput{Run: "r2", Keys: map[string]string{"a": "", "b": ""}, Version: newest}},
			map[string]string{"a": ""}},
	} {
		if got := keptKeys(tc.src, cfg); !maps.Equal(got, tc.want) {
			t.Errorf("with no configuration recorded, %s: kept %v, want %v", tc.name, got, tc.want)
		}
	}
}

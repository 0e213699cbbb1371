package dispatch

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

func TestSkipReasonQuery(t *testing.T) {
	got, err := executionQuery(context.Background(), dispatcher.ExecutionFilter{SkipReason: dispatcher.SkipPaused, DispatcherID: "d1"})
	if want := "WorkflowType = 'Dispatch' AND DispatchTenant IS NULL AND DispatchDispatcherIDs = 'd1' AND DispatchSkipped = 'paused'"; err != nil || got != want {
		t.Fatalf("query = %q, %v; want %q", got, err, want)
	}
	_, err = executionQuery(context.Background(), dispatcher.ExecutionFilter{SkipReason: "bored"})
	if dispatcher.ErrorCode(err) != dispatcher.EINVALID || dispatcher.ErrorMessage(err) != `skipReason: must be one of paused, filter-error, removed, filter, not "bored"` {
		t.Fatalf("an unknown skip reason: %v", err)
	}
}

// A bulk replay by skip reason runs with the current configuration, which
// alone can run what was skipped, and matches runs of any status.
func TestCheckBulkSkipReason(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in                   dispatcher.BulkReplayRequest
		wantStatus, wantConf string
		wantErr              string
	}{
		{dispatcher.BulkReplayRequest{}, dispatcher.ExecutionFailed, dispatcher.ReplayConfigOriginal, ""},
		{dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{SkipReason: dispatcher.SkipPaused}}, "", dispatcher.ReplayConfigCurrent, ""},
		{dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{SkipReason: dispatcher.SkipFilter, Status: dispatcher.ExecutionCompleted},
			Config: dispatcher.ReplayConfigCurrent}, dispatcher.ExecutionCompleted, dispatcher.ReplayConfigCurrent, ""},
		{dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{SkipReason: dispatcher.SkipPaused}, Config: dispatcher.ReplayConfigOriginal},
			"", "", `config: a bulk replay by skipReason runs the actions the dispatches skipped, which only config "current" can run, not "original"`},
		{dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{SkipReason: "nope"}}, "", "", "skipReason: must be one of"},
		{dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{SkipReason: dispatcher.SkipRemoved}}, "", "", "skipReason: removed: a dispatcher deleted"},
		{dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{From: now}}, "", "", "from: 2026-12-03T09:00:00Z is not in the past"},
		{dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{From: now.Add(time.Hour), To: now.Add(2 * time.Hour)}}, "", "", "from: 2026-12-03T10:00:00Z is not in the past"},
		{dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{From: now.Add(-time.Hour)}}, dispatcher.ExecutionFailed, dispatcher.ReplayConfigOriginal, ""},
		// Before, accepted: the dry run counted them, and the bulk replay
		// skipped each, "no action failed".
		{dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{Status: dispatcher.ExecutionCompleted}}, "", "", "actions: a completed dispatch has no failed action"},
		{dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{Status: dispatcher.ExecutionCompleted}, Actions: []string{"a1"}},
			dispatcher.ExecutionCompleted, dispatcher.ReplayConfigOriginal, ""},
		{dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{Status: dispatcher.ExecutionCompleted}, Config: dispatcher.ReplayConfigCurrent},
			dispatcher.ExecutionCompleted, dispatcher.ReplayConfigCurrent, ""},
	} {
		r := tt.in
		err := checkBulk(&r, now)
		switch {
		case tt.wantErr != "":
			if dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.HasPrefix(dispatcher.ErrorMessage(err), tt.wantErr) {
				t.Errorf("%+v: %v, want EINVALID %q", tt.in, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("%+v: %v", tt.in, err)
		case r.Filter.Status != tt.wantStatus || r.Config != tt.wantConf:
			t.Errorf("%+v: status %q, config %q; want %q, %q", tt.in, r.Filter.Status, r.Config, tt.wantStatus, tt.wantConf)
		}
	}
}

// What a replay runs of a run that skipped actions: with the original
// configuration, not the skipped ones (it would skip them again); with
// the current one, those too.
func TestReplayActionsSkipped(t *testing.T) {
	original := &dispatcher.Config{
		Dispatchers: []dispatcher.Dispatcher{{ID: "d1", Actions: []dispatcher.Action{{ID: "a1"}, {ID: "a2"}}}},
		Skipped: []dispatcher.SkippedDispatcher{{DispatcherID: "d2", Reason: dispatcher.SkipPaused, Detail: "the dispatcher is paused",
			Actions: []dispatcher.SkippedAction{{ID: "a3"}}}},
	}
	current := &dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{
		{ID: "d1", Actions: []dispatcher.Action{{ID: "a1"}, {ID: "a2"}}}, {ID: "d2", Actions: []dispatcher.Action{{ID: "a3"}}}}}
	renamed := &dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{ // a2 and a3 renamed: new ids
		{ID: "d1", Actions: []dispatcher.Action{{ID: "a1"}, {ID: "a4"}}}, {ID: "d2", Actions: []dispatcher.Action{{ID: "a5"}}}}}
	deleted := &dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{{ID: "d1", Actions: []dispatcher.Action{{ID: "a1"}, {ID: "a2"}}}}}
	onlyD2 := &dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{{ID: "d2", Actions: []dispatcher.Action{{ID: "a3"}}}}}
	outcomes := func(statuses ...string) runRecord {
		rec := runRecord{closed: true, config: original}
		for i, s := range statuses {
			d := i/2 + 1 // a1, a2 of d1; a3 of d2
			o := dispatcher.ActionOutcome{ActionID: fmt.Sprintf("a%d", i+1), Status: s, DispatcherID: fmt.Sprintf("d%d", d), DispatcherName: fmt.Sprintf("n%d", d)}
			if s == dispatcher.OutcomeSkipped {
				o.SkipReason = dispatcher.SkipPaused
			}
			rec.outcomes = append(rec.outcomes, o)
		}
		return rec
	}
	ok, failed, skipped := dispatcher.OutcomeSucceeded, dispatcher.OutcomeFailed, dispatcher.OutcomeSkipped
	for _, tt := range []struct {
		name    string
		config  string
		cfg     *dispatcher.Config
		actions []string
		rec     runRecord
		want    string
		wantErr string
	}{
		{"original leaves skipped out", dispatcher.ReplayConfigOriginal, original, nil, outcomes(ok, failed, skipped), "[a2]", ""},
		{"current runs them too", dispatcher.ReplayConfigCurrent, current, nil, outcomes(ok, failed, skipped), "[a2 a3]", ""},
		{"only skipped, current", dispatcher.ReplayConfigCurrent, current, nil, outcomes(ok, ok, skipped), "[a3]", ""},
		{"only skipped, original", dispatcher.ReplayConfigOriginal, original, nil, outcomes(ok, ok, skipped), "",
			`no action failed in run r1 of dispatch w; the actions it skipped (paused) run again only with config "current"`},
		{"naming a skipped one, original", dispatcher.ReplayConfigOriginal, original, []string{"a3"}, outcomes(ok, ok, skipped), "",
			`actions[0]: action "a3" was skipped in run r1 (paused); replay it with config "current"`},
		{"naming a skipped one, current", dispatcher.ReplayConfigCurrent, current, []string{"a3"}, outcomes(ok, ok, skipped), "[a3]", ""},
		// Gone from the current configuration: deleted since, which the
		// original one skips too (skipAgain). Before, one that failed was
		// sent to the original, which then refused it (support probe).
		{"a failed one gone, current", dispatcher.ReplayConfigCurrent, renamed, nil, outcomes(ok, failed, ok), "",
			`action a2 that failed in run r1 no longer exists in the current configuration; it was deleted since, and neither configuration runs it now: name the actions to run (actions)`},
		{"a skipped one gone, current", dispatcher.ReplayConfigCurrent, renamed, nil, outcomes(ok, ok, skipped), "",
			`action a3 that was skipped in run r1 no longer exists in the current configuration; name the actions of the current configuration to run (actions, by their ids)`},
		// Its dispatcher deleted while paused: said so. Before, sent to
		// name the actions of the current configuration, of which it is
		// none, after the original one had sent the user to the current.
		{"a skipped one's dispatcher deleted, current", dispatcher.ReplayConfigCurrent, deleted, nil, outcomes(ok, ok, skipped), "",
			`action a3 that was skipped in run r1 no longer exists in the current configuration; its dispatcher "n2" (d2) was deleted, or moved to another event type, since: nothing runs it now`},
		// So is a failed one's: before, sent to the original
		// configuration, which skips it as deleted.
		{"a failed one's dispatcher deleted, current", dispatcher.ReplayConfigCurrent, onlyD2, nil, outcomes(ok, failed, ok), "",
			`action a2 that failed in run r1 no longer exists in the current configuration; its dispatcher "n1" (d1) was deleted, or moved to another event type, since: nothing runs it now`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := dispatcher.ReplayRequest{WorkflowID: "w", Config: tt.config, Actions: tt.actions}
			got, err := replayActions(r, dispatcher.Execution{RunID: "r1"}, tt.rec, tt.cfg)
			if tt.wantErr != "" {
				if err == nil || dispatcher.ErrorMessage(err) != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != tt.want {
				t.Fatalf("actions = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// functions is a DispatcherSource that knows functions alone.
type functions map[string]dispatcher.Function

func (functions) DispatchersByEventType(context.Context, string) ([]dispatcher.Dispatcher, error) {
	return nil, nil
}

func (f functions) FindFunctionByName(_ context.Context, name string) (dispatcher.Function, error) {
	fn, ok := f[name]
	if !ok {
		return fn, dispatcher.Errorf(dispatcher.ENOTFOUND, "no function %q", name)
	}
	return fn, nil
}

// TestReplayOriginalCallsFunctionsAsTheyAreNow replays with the original
// configuration's actions and the functions as they are now: the recorded
// references, taken as they were, sent the replays of a function given a
// rate limit since (to spare it while it failed) around its gate, and cut
// the calls of one given a longer timeout at the old one.
func TestReplayOriginalCallsFunctionsAsTheyAreNow(t *testing.T) {
	rate := dispatcher.RateLimit{PerSecond: 1}
	e := &Executions{dispatchers: functions{
		"erase":  {Name: "erase", Kind: dispatcher.FunctionHTTP, Timeout: 5 * time.Minute, Flow: dispatcher.Flow{RateLimit: &rate}},
		"notify": {Name: "notify", Kind: dispatcher.FunctionTemporal, TaskQueue: "notify-q"},
	}}
	recorded := &dispatcher.Config{
		Dispatchers: []dispatcher.Dispatcher{{ID: "d1", Actions: []dispatcher.Action{
			{ID: "a1", Type: dispatcher.ActionTask, FunctionName: "erase"},
			{ID: "a2", Type: dispatcher.ActionTask, FunctionName: "notify"},
			{ID: "a3", Type: dispatcher.ActionTask, FunctionName: "gone"},
			{ID: "a4", Type: dispatcher.ActionMail},
		}}},
		Functions: []dispatcher.FunctionRef{
			{Name: "erase", Kind: dispatcher.FunctionHTTP, Timeout: 30 * time.Second},
			{Name: "gone", Kind: dispatcher.FunctionHTTP},
		},
	}
	cfg, err := e.replayConfig(context.Background(), dispatcher.ReplayRequest{Config: dispatcher.ReplayConfigOriginal},
		dispatcher.Execution{}, runRecord{config: recorded})
	if err != nil {
		t.Fatal(err)
	}
	want := []dispatcher.FunctionRef{
		{Name: "erase", Kind: dispatcher.FunctionHTTP, Timeout: 5 * time.Minute, Gated: true},
		{Name: "notify", Kind: dispatcher.FunctionTemporal, TaskQueue: "notify-q"},
	}
	if fmt.Sprint(cfg.Functions) != fmt.Sprint(want) {
		t.Errorf("functions of the replay = %+v, want %+v", cfg.Functions, want)
	}
	if len(cfg.Dispatchers[0].Actions) != 4 || recorded.Functions[0].Gated || len(recorded.Functions) != 2 {
		t.Errorf("the actions are the original's, and the recorded configuration is left as it was: %+v", recorded)
	}
}

// An action canceled after its call's answer (a 503 that came after the
// cancel) is made again under a new key, as a failed one is; canceled
// without one (no status, a gateway's), its key is kept: the receiver may
// have done it. Before, every canceled action kept its key.
func TestUnendedCanceledAfterAnAnswer(t *testing.T) {
	canceled := func(id string, status int, unanswered bool) dispatcher.ActionOutcome {
		return dispatcher.ActionOutcome{ActionID: id, Status: dispatcher.OutcomeCanceled, ErrorClass: dispatcher.FailureCanceled,
			HTTPStatus: status, Unanswered: unanswered}
	}
	src := runRecord{closed: true, outcomes: []dispatcher.ActionOutcome{
		canceled("answered", 503, false), canceled("refused", 422, false),
		canceled("no-status", 0, false), canceled("gateway", 502, false), canceled("lost-task", 503, true),
	}}
	if got := fmt.Sprint(unended(src)); got != "[no-status gateway lost-task]" {
		t.Errorf("unended = %s, want the actions canceled without their function's answer", got)
	}
}

package workflows_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// skippedConfig is a configuration resolved for the test event
// (dispatcher.Config.ForEvent): d1 runs, d2 is paused, d3's filter failed.
func skippedConfig(run ...dispatcher.Dispatcher) dispatcher.Config {
	cfg := config(run...)
	cfg.Skipped = []dispatcher.SkippedDispatcher{
		{DispatcherID: "d2", Name: "paused one", Reason: dispatcher.SkipPaused, Detail: "the dispatcher is paused",
			Actions: []dispatcher.SkippedAction{{ID: "m2", Name: "mail m2", Type: dispatcher.ActionMail}, {ID: "t2", Type: dispatcher.ActionTask}}},
		{DispatcherID: "d3", Reason: dispatcher.SkipFilterError, Detail: "filter: no such key: amount",
			Actions: []dispatcher.SkippedAction{{ID: "t3", Type: dispatcher.ActionTask}}},
	}
	return cfg
}

// TestDispatchSkipped: the actions of skipped dispatchers end skipped,
// with the reason, after those that ran; they are no failure, and the run
// records the most actionable reason in DispatchSkipped.
func TestDispatchSkipped(t *testing.T) {
	env := newEnv(t, skippedConfig(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted",
		Actions: []dispatcher.Action{taskAction("t1", "erase")}}))
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(taskOK)
	var attrs []temporal.SearchAttributes
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		attrs = append(attrs, args.Get(0).(temporal.SearchAttributes))
	}).Return(nil)

	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
	if err != nil {
		t.Fatalf("a dispatch that skipped dispatchers failed: %v", err)
	}
	if got, want := summary(res.Outcomes), "t1:succeeded:1: m2:skipped:0: t2:skipped:0: t3:skipped:0:"; got != want {
		t.Fatalf("outcomes = %q, want %q", got, want)
	}
	m2, t3 := res.Outcomes[1], res.Outcomes[3]
	if m2.SkipReason != dispatcher.SkipPaused || m2.DispatcherName != "paused one" || m2.ActionName != "mail m2" || m2.Type != dispatcher.ActionMail ||
		!m2.StartedAt.IsZero() {
		t.Errorf("paused outcome = %+v", m2)
	}
	if t3.SkipReason != dispatcher.SkipFilterError || t3.Error != "filter: no such key: amount" || t3.ErrorClass != "" {
		t.Errorf("filter-error outcome = %+v", t3)
	}
	if len(attrs) != 1 {
		t.Fatalf("%d upserts, want 1 (the dispatch loaded its configuration)", len(attrs))
	}
	if r, _ := attrs[0].GetKeyword(workflows.AttrSkipped); r != dispatcher.SkipPaused {
		t.Errorf("DispatchSkipped = %q, want paused", r)
	}
	if ids, _ := attrs[0].GetKeywordList(workflows.AttrDispatcherIDs); fmt.Sprint(ids) != "[d1 d2 d3]" {
		t.Errorf("DispatchDispatcherIDs = %v, want those run and those skipped", ids)
	}
	if _, ok := attrs[0].GetKeywordList(workflows.AttrFailedActionIDs); ok {
		t.Error("skipped actions were recorded as failed")
	}
}

// TestDispatchAllSkipped: a dispatch that skipped every dispatcher runs
// nothing and completes.
func TestDispatchAllSkipped(t *testing.T) {
	env := newEnv(t, skippedConfig())
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
	if err != nil {
		t.Fatalf("dispatch failed: %v", err)
	}
	if got, want := summary(res.Outcomes), "m2:skipped:0: t2:skipped:0: t3:skipped:0:"; got != want {
		t.Fatalf("outcomes = %q, want %q", got, want)
	}
	env.AssertNumberOfCalls(t, workflows.LocalCallFunction, 0)
	env.AssertNumberOfCalls(t, workflows.LocalSendMail, 0)
}

// TestDispatchSkippedOnly: a replay limited to some actions records only
// those of them that were skipped; a failed action still fails the run.
func TestDispatchSkippedOnly(t *testing.T) {
	cfg := skippedConfig(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted",
		Actions: []dispatcher.Action{taskAction("t1", "missing")}})
	env := newEnv(t, config())
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Config: &cfg, Only: []string{"t1", "t2"}, Run: "r1"})
	if err == nil {
		t.Fatal("a dispatch with a failed action completed")
	}
	if got, want := summary(res.Outcomes), "t1:failed:0:ConfigNotFound t2:skipped:0:"; got != want {
		t.Fatalf("outcomes = %q, want %q", got, want)
	}
}

// TestDispatchShowsAFailureWhileAnotherWaits: an action that fails for
// good while another waits for its startTimestamp has its failure
// upserted at once (dispatchV10), also when it fails before the other
// begins to wait (a function that does not exist fails without a call).
// Before, its failure was upserted when the dispatch closed, hours later.
func TestDispatchShowsAFailureWhileAnotherWaits(t *testing.T) {
	later := t0.Add(3 * time.Hour)
	waits := taskAction("t2", "erase")
	waits.StartTimestamp = &later
	for name, actions := range map[string][]dispatcher.Action{
		"failed first":  {taskAction("t1", "missing"), waits},
		"waiting first": {waits, taskAction("t1", "missing")},
	} {
		t.Run(name, func(t *testing.T) {
			env := newEnv(t, config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: actions}))
			env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(taskOK)
			shown := failureShown(env, "[t1]")
			if _, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: workflows.DispatchVersion}); err == nil {
				t.Fatal("the dispatch of a missing function completed")
			}
			if shown.IsZero() || !shown.Before(later) {
				t.Errorf("the failure was upserted at %v, want before the wait ended at %v", shown, later)
			}
		})
	}
}

// TestDispatchShowsAFailureWhileAnotherRetries: an action that fails for
// good while another retries has its failure upserted at once
// (dispatchV17), also when it fails before the other begins to retry.
// Before, a dispatch whose mail had failed showed no failure, and was not
// found by its class, until its other action's retries ended, up to half
// an hour later.
func TestDispatchShowsAFailureWhileAnotherRetries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		actions []dispatcher.Action
		version int
		early   bool // upserted before the retries end
	}{
		{"failed first", []dispatcher.Action{taskAction("t1", "missing"), taskAction("t2", "erase")}, workflows.DispatchVersion, true},
		{"retrying first", []dispatcher.Action{taskAction("t2", "erase"), taskAction("t1", "missing")}, workflows.DispatchVersion, true},
		{"before dispatchV17", []dispatcher.Action{taskAction("t1", "missing"), taskAction("t2", "erase")}, 16, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: tc.actions})
			env := newEnv(t, cfg)
			env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(dispatcher.TaskResult{},
				temporal.NewApplicationError("busy", dispatcher.FailureHTTPTemporary))
			env.OnActivity(workflows.ActivityCallFunction, mock.Anything, mock.Anything).After(time.Hour).Return(taskOK)
			shown := failureShown(env, "[t1]")
			res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Config: &cfg, Version: tc.version})
			if err == nil {
				t.Fatal("the dispatch of a missing function completed")
			}
			if got := summary(res.Outcomes); !strings.Contains(got, "t1:failed:0:ConfigNotFound") || !strings.Contains(got, "t2:succeeded:2:") {
				t.Fatalf("outcomes = %q, want t1 failed (ConfigNotFound), t2 succeeded at its second attempt", got)
			}
			retried := t0.Add(time.Hour)
			if early := !shown.IsZero() && shown.Before(retried); early != tc.early {
				t.Errorf("the failure was upserted at %v (retries ended after %v): before they ended %v, want %v", shown, retried, early, tc.early)
			}
		})
	}
}

// failureShown records when the dispatch first upserts ids (as fmt
// prints them) as its failed actions.
func failureShown(env *testsuite.TestWorkflowEnvironment, ids string) *time.Time {
	var shown time.Time
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		if got, ok := args.Get(0).(temporal.SearchAttributes).GetKeywordList(workflows.AttrFailedActionIDs); ok && shown.IsZero() && fmt.Sprint(got) == ids {
			shown = env.Now()
		}
	}).Return(nil)
	return &shown
}

package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

var t0 = time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)

func testEvent() dispatcher.Event {
	return dispatcher.Event{
		ID: "ev-1", Type: "user_deleted", Time: t0, Source: "test",
		Content: json.RawMessage(`{"userId":42,"email":"ann@example.com"}`),
	}
}

func mailAction(id string) dispatcher.Action {
	return dispatcher.Action{ID: id, Type: dispatcher.ActionMail, Name: "mail " + id, TemplateID: "tpl",
		Recipients: dispatcher.Recipients{To: []string{"{{ .event.content.email }}"}}}
}

func taskAction(id, fn string) dispatcher.Action {
	return dispatcher.Action{ID: id, Type: dispatcher.ActionTask, Name: "task " + id, FunctionName: fn,
		Data: json.RawMessage(`{"userId":"{{ .event.content.userId }}"}`)}
}

func config(ds ...dispatcher.Dispatcher) dispatcher.Config {
	return dispatcher.Config{Version: 7, Dispatchers: ds, Functions: []dispatcher.FunctionRef{
		{Name: "erase", Kind: dispatcher.FunctionHTTP, Timeout: time.Second},
		{Name: "erase-child", Kind: dispatcher.FunctionTemporal, TaskQueue: "teams"},
	}}
}

func newEnv(t *testing.T, cfg dispatcher.Config) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	return newSuiteEnv(t, cfg, &testsuite.WorkflowTestSuite{})
}

// newSuiteEnv is newEnv of the suite s (its metrics handler, say).
func newSuiteEnv(t *testing.T, cfg dispatcher.Config, s *testsuite.WorkflowTestSuite) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	register(env, nil, nil, nil)
	env.OnActivity(workflows.ActivityLoadConfig, mock.Anything, dispatcher.LoadConfigInput{EventType: "user_deleted", Event: testEvent()}).
		Return(cfg, nil)
	return env
}

// Mocked activities. Each returns per the attempt number when asked.
func mailOK(_ context.Context, in dispatcher.MailInput) (dispatcher.MailResult, error) {
	return dispatcher.MailResult{MessageID: in.MessageID, Attempt: 1}, nil
}

func taskOK(ctx context.Context, _ dispatcher.TaskInput) (dispatcher.TaskResult, error) {
	return dispatcher.TaskResult{StatusCode: 200, Attempt: int(activity.GetInfo(ctx).Attempt)}, nil
}

func fails(typ string, permanent bool) func(context.Context, dispatcher.TaskInput) (dispatcher.TaskResult, error) {
	return func(context.Context, dispatcher.TaskInput) (dispatcher.TaskResult, error) {
		if permanent {
			return dispatcher.TaskResult{}, temporal.NewNonRetryableApplicationError("it broke", typ, nil)
		}
		return dispatcher.TaskResult{}, temporal.NewApplicationError("it broke", typ)
	}
}

// mu guards what mocked activities record: the test environment runs
// them on goroutines of their own.
var mu sync.Mutex

// record runs f under mu.
func record(f func()) {
	mu.Lock()
	defer mu.Unlock()
	f()
}

// runDispatch runs the workflow to its end and returns its result, taken from
// the failure details when it failed with DispatchFailed.
func runDispatch(t *testing.T, env *testsuite.TestWorkflowEnvironment, in workflows.DispatchInput) (workflows.DispatchResult, error) {
	t.Helper()
	env.ExecuteWorkflow(workflows.WorkflowDispatch, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("the workflow did not complete")
	}
	var res workflows.DispatchResult
	if err := env.GetWorkflowError(); err != nil {
		var appErr *temporal.ApplicationError
		var canceled *temporal.CanceledError
		switch {
		case errors.As(err, &appErr) && appErr.Type() == dispatcher.FailureDispatch:
			if derr := appErr.Details(&res); derr != nil {
				t.Fatalf("decoding the failure details: %v", derr)
			}
		case errors.As(err, &canceled) && canceled.HasDetails():
			if derr := canceled.Details(&res); derr != nil {
				t.Fatalf("decoding the cancellation details: %v", derr)
			}
		}
		return res, err
	}
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatalf("decoding the result: %v", err)
	}
	return res, nil
}

// summary renders outcomes as "actionID:status:attempts:class" for compact
// comparisons.
func summary(os []dispatcher.ActionOutcome) string {
	var parts []string
	for _, o := range os {
		parts = append(parts, o.ActionID+":"+o.Status+":"+strconv.Itoa(o.Attempts)+":"+o.ErrorClass)
	}
	return strings.Join(parts, " ")
}

func TestDispatchSucceeds(t *testing.T) {
	cfg := config(dispatcher.Dispatcher{ID: "d1", Name: "goodbye", EventType: "user_deleted",
		Actions: []dispatcher.Action{mailAction("m1"), taskAction("t1", "erase")}})
	env := newEnv(t, cfg)
	var gotMail dispatcher.MailInput
	var gotTask dispatcher.TaskInput
	env.OnActivity(workflows.LocalSendMail, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in dispatcher.MailInput) (dispatcher.MailResult, error) {
			record(func() { gotMail = in })
			return mailOK(ctx, in)
		})
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			record(func() { gotTask = in })
			return taskOK(ctx, in)
		})

	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
	if err != nil {
		t.Fatalf("dispatch failed: %v", err)
	}
	if got, want := summary(res.Outcomes), "m1:succeeded:1: t1:succeeded:1:"; got != want {
		t.Fatalf("outcomes = %q, want %q", got, want)
	}
	m, task := res.Outcomes[0], res.Outcomes[1]
	wantKey := "default-test-workflow-id/d1/t1"
	if gotTask.IdempotencyKey != wantKey || gotTask.LocalAttempts != 0 || string(gotTask.Data) != string(cfg.Dispatchers[0].Actions[1].Data) {
		t.Errorf("task input = %+v", gotTask)
	}
	if want := "default-test-workflow-id.d1.m1@dispatcher"; gotMail.MessageID != want || m.MessageID != want {
		t.Errorf("Message-ID = %q (outcome %q), want %q", gotMail.MessageID, m.MessageID, want)
	}
	if m.DispatcherName != "goodbye" || m.ActionName != "mail m1" || m.Type != dispatcher.ActionMail || task.HTTPStatus != 200 {
		t.Errorf("outcomes = %+v", res.Outcomes)
	}
	if !m.StartedAt.Equal(t0) || m.FinishedAt.Before(m.StartedAt) {
		t.Errorf("mail ran from %s to %s, want from %s", m.StartedAt, m.FinishedAt, t0)
	}
	env.AssertNumberOfCalls(t, workflows.ActivitySendMail, 0)
	env.AssertNumberOfCalls(t, workflows.ActivityCallFunction, 0)
}

func TestDispatchNothingMatched(t *testing.T) {
	env := newEnv(t, config())
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
	if err != nil {
		t.Fatalf("dispatch failed: %v", err)
	}
	if len(res.Outcomes) != 0 {
		t.Errorf("outcomes = %+v, want none", res.Outcomes)
	}
}

func TestDispatchOneActionFails(t *testing.T) {
	cfg := config(
		dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{mailAction("m1")}},
		dispatcher.Dispatcher{ID: "d2", Name: "erase user", EventType: "user_deleted", Actions: []dispatcher.Action{taskAction("t1", "erase"), taskAction("t2", "missing")}},
	)
	cfg.Dispatchers[1].Actions[1].Name = "erase in the archive"
	env := newEnv(t, cfg)
	env.OnActivity(workflows.LocalSendMail, mock.Anything, mock.Anything).Return(dispatcher.MailResult{},
		temporal.NewNonRetryableApplicationError(`subject: line 1: map has no entry for key "x"`, dispatcher.FailureTemplate, nil))
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(taskOK)

	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != dispatcher.FailureDispatch {
		t.Fatalf("workflow error = %v, want type %s", err, dispatcher.FailureDispatch)
	}
	// Named by name where they have one (the dispatcher d1 has none),
	// always by id.
	if !strings.HasPrefix(appErr.Message(), "2 of 3 actions failed: d1/mail m1 [d1/m1] (TemplateError): subject: line 1") ||
		!strings.Contains(appErr.Message(), "; erase user/erase in the archive [d2/t2] (ConfigNotFound): ") {
		t.Errorf("message = %q", appErr.Message())
	}
	if got, want := summary(res.Outcomes), "m1:failed:1:TemplateError t1:succeeded:1: t2:failed:0:ConfigNotFound"; got != want {
		t.Fatalf("outcomes = %q, want %q", got, want)
	}
	if res.Outcomes[0].Error != `subject: line 1: map has no entry for key "x"` {
		t.Errorf("error = %q", res.Outcomes[0].Error)
	}
	env.AssertNumberOfCalls(t, workflows.ActivitySendMail, 0)
}

// A task action that fails for good has a task_failed event started, as
// Extra Horizon's Task Service emitted one, as it fails: also while another
// action waits for its startTimestamp, and a cancel meanwhile does not take
// it back. A mail does not, nor a task of a task_failed event's dispatch
// (which would emit without end), nor a dispatch started by an intake
// older than dispatchV15.
func TestDispatchEmitsTaskFailed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		eventType string
		version   int
		waiting   bool // another task waits a day for its startTimestamp; canceled after an hour
		want      string
	}{
		{"failed task", "user_deleted", workflows.DispatchVersion, false, "t2:ConfigNotFound:missing:[gdpr]"},
		{"while another waits", "user_deleted", workflows.DispatchVersion, true, "t2:ConfigNotFound:missing:[gdpr]"},
		{"of a task_failed event", dispatcher.EventTaskFailed, workflows.DispatchVersion, false, ""},
		{"before dispatchV15", "user_deleted", 14, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failing := taskAction("t2", "missing")
			failing.Tags = []string{"gdpr"}
			actions := []dispatcher.Action{mailAction("m1"), taskAction("t1", "erase"), failing}
			outcomes := "m1:failed:1:TemplateError t1:succeeded:1: t2:failed:0:ConfigNotFound"
			if tc.waiting {
				later := taskAction("t3", "erase")
				due := t0.Add(24 * time.Hour)
				later.StartTimestamp = &due
				actions = append(actions, later)
				outcomes += " t3:canceled:0:Canceled"
			}
			cfg := config(dispatcher.Dispatcher{ID: "d1", EventType: tc.eventType, Actions: actions})
			env := newEnv(t, cfg)
			env.OnActivity(workflows.LocalSendMail, mock.Anything, mock.Anything).Return(dispatcher.MailResult{},
				temporal.NewNonRetryableApplicationError("no such template", dispatcher.FailureTemplate, nil))
			env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(taskOK)
			var got []string
			env.OnActivity(workflows.ActivityEmitTaskFailed, mock.Anything, mock.Anything).Return(
				func(_ context.Context, f dispatcher.TaskFailure) (bool, error) {
					record(func() {
						if f.Event.ID != testEvent().ID || f.WorkflowID == "" || f.RunID == "" || f.OriginalRunID != f.RunID {
							t.Errorf("failure of event %q in %s/%s (original %s), want the dispatch's", f.Event.ID, f.WorkflowID, f.RunID, f.OriginalRunID)
						}
						got = append(got, fmt.Sprintf("%s:%s:%s:%v", f.Outcome.ActionID, f.Outcome.ErrorClass, f.FunctionName, f.Tags))
					})
					return true, nil
				})
			if tc.waiting {
				env.RegisterDelayedCallback(env.CancelWorkflow, time.Hour)
			}
			ev := testEvent()
			ev.Type = tc.eventType
			res, _ := runDispatch(t, env, workflows.DispatchInput{Event: ev, Config: &cfg, Version: tc.version})
			if s := summary(res.Outcomes); s != outcomes {
				t.Fatalf("outcomes = %q, want %q", s, outcomes)
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("task_failed emitted for %q, want %q", got, tc.want)
			}
		})
	}
}

// An overflow (an event its Sequence had no room for) runs none of its
// actions: each fails at once with OrderingOverflow and says why, so the
// event is found among the failures and replayed.
func TestDispatchOverflowRunsNothing(t *testing.T) {
	cfg := config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted",
		Actions: []dispatcher.Action{mailAction("m1"), taskAction("t1", "erase")}})
	env := newEnv(t, cfg)
	env.OnActivity(workflows.LocalSendMail, mock.Anything, mock.Anything).Return(mailOK)
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(taskOK)
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Config: &cfg,
		Version: workflows.DispatchVersion, Overflow: "the key is full"})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != dispatcher.FailureDispatch {
		t.Fatalf("workflow error = %v, want type %s", err, dispatcher.FailureDispatch)
	}
	if got, want := summary(res.Outcomes), "m1:failed:0:OrderingOverflow t1:failed:0:OrderingOverflow"; got != want {
		t.Fatalf("outcomes = %q, want %q", got, want)
	}
	if res.Outcomes[0].Error != "the key is full" {
		t.Errorf("error = %q, want the overflow's reason", res.Outcomes[0].Error)
	}
	env.AssertNumberOfCalls(t, workflows.LocalSendMail, 0)
	env.AssertNumberOfCalls(t, workflows.LocalCallFunction, 0)
}

func TestDispatchRetries(t *testing.T) {
	tests := []struct {
		name        string
		policy      *dispatcher.RetryPolicy
		local       func(context.Context, dispatcher.TaskInput) (dispatcher.TaskResult, error)
		regular     func(context.Context, dispatcher.TaskInput) (dispatcher.TaskResult, error)
		wantOutcome string
		wantRegular int
		wantStatus  int // HTTPStatus of the outcome
	}{
		{
			name:  "flaky: local fails, first regular fails, second succeeds",
			local: fails(dispatcher.FailureHTTPTemporary, false),
			regular: func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
				if activity.GetInfo(ctx).Attempt == 1 {
					return dispatcher.TaskResult{}, temporal.NewApplicationError("503", dispatcher.FailureHTTPTemporary)
				}
				return taskOK(ctx, in)
			},
			wantOutcome: "t1:succeeded:3:",
			wantRegular: 2,
			wantStatus:  200,
		},
		{
			name:        "local timeout hands over",
			local:       fails(dispatcher.FailureTimeout, false),
			regular:     taskOK,
			wantOutcome: "t1:succeeded:2:",
			wantRegular: 1,
			wantStatus:  200,
		},
		{
			name:        "non-retryable first attempt: no regular activity",
			local:       fails(dispatcher.FailureHTTPPermanent, true),
			wantOutcome: "t1:failed:1:HTTPPermanent",
		},
		{
			name:        "permanent type is never retried even if marked retryable",
			local:       fails(dispatcher.FailureNotFound, false),
			wantOutcome: "t1:failed:1:ConfigNotFound",
		},
		{
			name:        "per-action MaximumAttempts 2 stops after 2",
			policy:      &dispatcher.RetryPolicy{MaximumAttempts: 2, InitialInterval: time.Millisecond},
			local:       fails(dispatcher.FailureHTTPTemporary, false),
			regular:     fails(dispatcher.FailureHTTPTemporary, false),
			wantOutcome: "t1:failed:2:HTTPTemporary",
			wantRegular: 1,
		},
		{
			name:        "per-action MaximumAttempts 1: local attempt only",
			policy:      &dispatcher.RetryPolicy{MaximumAttempts: 1},
			local:       fails(dispatcher.FailureHTTPTemporary, false),
			wantOutcome: "t1:failed:1:HTTPTemporary",
		},
		{
			name:        "default policy gives 10 attempts in all",
			local:       fails(dispatcher.FailureHTTPTemporary, false),
			regular:     fails(dispatcher.FailureHTTPTemporary, false),
			wantOutcome: "t1:failed:10:HTTPTemporary",
			wantRegular: 9,
		},
		{
			name:  "regular attempt fails for good midway",
			local: fails(dispatcher.FailureHTTPTemporary, false),
			regular: func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
				if activity.GetInfo(ctx).Attempt < 3 {
					return dispatcher.TaskResult{}, temporal.NewApplicationError("503", dispatcher.FailureHTTPTemporary)
				}
				return dispatcher.TaskResult{}, temporal.NewApplicationErrorWithOptions("404", dispatcher.FailureHTTPPermanent,
					temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{dispatcher.FailureDetails{Attempt: 3, StatusCode: 404}}})
			},
			wantOutcome: "t1:failed:4:HTTPPermanent",
			wantRegular: 3,
			wantStatus:  404,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := taskAction("t1", "erase")
			a.RetryPolicy = tt.policy
			env := newEnv(t, config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{a}}))
			env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(tt.local)
			var localAttempts []int
			if tt.regular != nil {
				env.OnActivity(workflows.ActivityCallFunction, mock.Anything, mock.Anything).Return(
					func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
						record(func() { localAttempts = append(localAttempts, in.LocalAttempts) })
						return tt.regular(ctx, in)
					})
			}
			res, _ := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
			if got := summary(res.Outcomes); got != tt.wantOutcome {
				t.Errorf("outcomes = %q, want %q", got, tt.wantOutcome)
			}
			if got := res.Outcomes[0].HTTPStatus; got != tt.wantStatus {
				t.Errorf("HTTPStatus = %d, want %d", got, tt.wantStatus)
			}
			env.AssertNumberOfCalls(t, workflows.LocalCallFunction, 1)
			env.AssertNumberOfCalls(t, workflows.ActivityCallFunction, tt.wantRegular)
			for _, n := range localAttempts {
				if n != 1 {
					t.Errorf("regular attempt got LocalAttempts %d, want 1", n)
				}
			}
		})
	}
}

func TestDispatchWaitsForStartTimestamp(t *testing.T) {
	later := t0.Add(3 * time.Hour)
	past := t0.Add(-time.Hour)
	waiting, now, old := taskAction("t1", "erase"), taskAction("t2", "erase"), taskAction("t3", "erase")
	waiting.StartTimestamp, old.StartTimestamp = &later, &past
	env := newEnv(t, config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{waiting, now, old}}))
	ranAt := map[string]time.Time{}
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			now := env.Now()
			record(func() { ranAt[in.ActionID] = now })
			return taskOK(ctx, in)
		})
	var during []dispatcher.ActionOutcome
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryOutcomes)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		if err := v.Get(&during); err != nil {
			t.Errorf("query result: %v", err)
		}
	}, time.Hour)

	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
	if err != nil {
		t.Fatalf("dispatch failed: %v", err)
	}
	if ranAt["t1"].Before(later) {
		t.Errorf("the scheduled task ran at %s, before its start %s", ranAt["t1"], later)
	}
	if ranAt["t2"].After(t0.Add(time.Minute)) || ranAt["t3"].After(t0.Add(time.Minute)) {
		t.Errorf("unscheduled tasks ran at %s and %s, want at once", ranAt["t2"], ranAt["t3"])
	}
	if got, want := summary(during), "t1:scheduled:0: t2:succeeded:1: t3:succeeded:1:"; got != want {
		t.Errorf("outcomes after an hour = %q, want %q", got, want)
	}
	if got, want := summary(res.Outcomes), "t1:succeeded:1: t2:succeeded:1: t3:succeeded:1:"; got != want {
		t.Errorf("outcomes = %q, want %q", got, want)
	}
}

// TestDispatchResolvesAWaitingTasksFunction: a task action that waited
// for its startTimestamp runs with its function as it is when the timer
// fires (dispatchV11), not as the configuration read at intake said.
func TestDispatchResolvesAWaitingTasksFunction(t *testing.T) {
	later := t0.Add(3 * time.Hour)
	slow := dispatcher.FunctionRef{Name: "erase", Kind: dispatcher.FunctionHTTP, Timeout: 2 * time.Minute}
	storeDown := errors.New("the store does not answer")
	tests := []struct {
		name    string
		version int
		now     dispatcher.FunctionRef // what ResolveFunction returns
		err     error                  // or the error it fails with
		want    string
		// calls of the local first attempt and of the regular activity
		local, regular int
	}{
		{"a longer timeout runs every attempt as a regular activity", 11, slow, nil, "t1:succeeded:1:", 0, 1},
		{"a function deleted meanwhile fails without a call", 11, dispatcher.FunctionRef{}, nil, "t1:failed:0:ConfigNotFound", 0, 0},
		{"a store that does not answer leaves the configuration's function", 11, slow, storeDown, "t1:succeeded:1:", 1, 0},
		{"before dispatchV11 the configuration's function", 10, slow, nil, "t1:succeeded:1:", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			waiting := taskAction("t1", "erase")
			waiting.StartTimestamp = &later
			env := newEnv(t, config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{waiting}}))
			var resolvedAt []time.Time
			env.OnActivity(workflows.ActivityResolveFunction, mock.Anything, dispatcher.ResolveFunctionInput{Name: "erase", ConfigVersion: 7}).Return(
				func(context.Context, dispatcher.ResolveFunctionInput) (dispatcher.FunctionRef, error) {
					now := env.Now()
					record(func() { resolvedAt = append(resolvedAt, now) })
					return tt.now, tt.err
				})
			env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(taskOK)
			env.OnActivity(workflows.ActivityCallFunction, mock.Anything, mock.Anything).Return(taskOK)

			res, _ := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: tt.version})
			if got := summary(res.Outcomes); got != tt.want {
				t.Errorf("outcomes = %q, want %q", got, tt.want)
			}
			env.AssertNumberOfCalls(t, workflows.LocalCallFunction, tt.local)
			env.AssertNumberOfCalls(t, workflows.ActivityCallFunction, tt.regular)
			switch {
			case tt.version < 11:
				if len(resolvedAt) > 0 {
					t.Errorf("a dispatch of version %d looked its function up again", tt.version)
				}
			case len(resolvedAt) == 0:
				t.Error("the function was not looked up again")
			case resolvedAt[0].Before(later):
				t.Errorf("the function was looked up at %s, before the action's start %s", resolvedAt[0], later)
			case tt.err != nil && len(resolvedAt) < 2:
				t.Errorf("a lookup that failed was made %d times, want it retried", len(resolvedAt))
			}
		})
	}
	t.Run("an action that does not wait is not looked up", func(t *testing.T) {
		env := newEnv(t, config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{taskAction("t1", "erase")}}))
		env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(taskOK)
		if _, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: 11}); err != nil {
			t.Fatal(err)
		}
		env.AssertNumberOfCalls(t, workflows.ActivityResolveFunction, 0)
	})
}

func TestDispatchCanceledWhileWaiting(t *testing.T) {
	later := t0.Add(3 * time.Hour)
	waiting := taskAction("t1", "erase")
	waiting.StartTimestamp = &later
	env := newEnv(t, config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{waiting, mailAction("m1")}}))
	env.OnActivity(workflows.LocalSendMail, mock.Anything, mock.Anything).Return(mailOK)
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Hour)

	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
	if !temporal.IsCanceledError(err) {
		t.Fatalf("workflow error = %v, want canceled", err)
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) && canceled.HasDetails() {
		_ = canceled.Details(&res)
	}
	if got, want := summary(res.Outcomes), "t1:canceled:0:Canceled m1:succeeded:1:"; got != want {
		t.Errorf("outcomes = %q, want %q", got, want)
	}
	// Before, "canceled before it finished", read as a call cut short.
	if e := res.Outcomes[0].Error; e != "canceled before it began" {
		t.Errorf("the waiting action's error = %q", e)
	}
	env.AssertNumberOfCalls(t, workflows.LocalCallFunction, 0)
}

// An action canceled while it waits to retry keeps its last attempt's
// error beside the cancel. Before, the function's 500 was gone from the
// detail: "canceled before it finished", as if nothing had answered.
func TestDispatchCanceledWhileRetrying(t *testing.T) {
	env := newEnv(t, config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{taskAction("t1", "erase")}}))
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(dispatcher.TaskResult{},
		temporal.NewApplicationError("function answered 500 Internal Server Error", dispatcher.FailureHTTPTemporary))
	env.RegisterDelayedCallback(env.CancelWorkflow, 500*time.Millisecond) // the policy's first interval is 1 s
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("workflow error = %v, want canceled", err)
	}
	_ = canceled.Details(&res)
	if o := res.Outcomes[0]; o.Status != dispatcher.OutcomeCanceled || o.Error != "canceled before it finished; its last failed attempt: function answered 500 Internal Server Error" {
		t.Errorf("outcome %s: %q", o.Status, o.Error)
	}
	env.AssertNumberOfCalls(t, workflows.ActivityCallFunction, 0)
}

func TestDispatchOnly(t *testing.T) {
	cfg := config(
		dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{mailAction("m1"), taskAction("t1", "erase")}},
		dispatcher.Dispatcher{ID: "d2", EventType: "user_deleted", Actions: []dispatcher.Action{taskAction("t2", "erase")}},
	)
	env := newEnv(t, config()) // a pinned config must win over the current one
	var ran []string
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			record(func() { ran = append(ran, in.ActionID+" "+in.IdempotencyKey) })
			return taskOK(ctx, in)
		})
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Only: []string{"t2"}, Config: &cfg, Run: "r1"})
	if err != nil {
		t.Fatalf("dispatch failed: %v", err)
	}
	if got, want := summary(res.Outcomes), "t2:succeeded:1:"; got != want {
		t.Errorf("outcomes = %q, want %q", got, want)
	}
	if len(ran) != 1 || ran[0] != "t2 default-test-workflow-id/d2/t2/replay-r1" {
		t.Errorf("ran %q", ran)
	}
	env.AssertNumberOfCalls(t, workflows.ActivityLoadConfig, 0)
	env.AssertNumberOfCalls(t, workflows.LocalSendMail, 0)
}

// A replay of some actions carries the others the run it replays did not
// make, as that run left them: it shows them and fails with them, making
// none, emitting no task_failed for them. Before dispatchV23 it drops
// them, and completed: their failures showed nowhere but in the earlier
// run.
func TestDispatchCarriesWhatItDoesNotRun(t *testing.T) {
	cfg := config(
		dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{mailAction("m1"), taskAction("t1", "erase")}},
		dispatcher.Dispatcher{ID: "d2", EventType: "user_deleted", Actions: []dispatcher.Action{taskAction("t2", "erase")}},
	)
	carried := []dispatcher.ActionOutcome{
		{DispatcherID: "d1", ActionID: "m1", Type: dispatcher.ActionMail, Status: dispatcher.OutcomeFailed, Attempts: 1,
			ErrorClass: dispatcher.FailureTemplate, Error: "no such template", CarriedFrom: "run-0"},
		{DispatcherID: "d1", ActionID: "t1", Type: dispatcher.ActionTask, Status: dispatcher.OutcomeCanceled, Attempts: 2,
			ErrorClass: dispatcher.FailureCanceled, CarriedFrom: "run-0"},
	}
	for _, tc := range []struct {
		version  int
		outcomes string
	}{
		{workflows.DispatchVersion, "t2:succeeded:1: m1:failed:1:TemplateError t1:canceled:2:Canceled"},
		{22, "t2:succeeded:1:"},
	} {
		t.Run(strconv.Itoa(tc.version), func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			ended := &statusCounter{}
			s.SetMetricsHandler(ended)
			env := newSuiteEnv(t, cfg, &s)
			env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(taskOK)
			env.OnActivity(workflows.ActivityEmitTaskFailed, mock.Anything, mock.Anything).Return(true, nil)
			res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Only: []string{"t2"}, Config: &cfg, Run: "r1",
				Version: tc.version, Carried: carried})
			if got := summary(res.Outcomes); got != tc.outcomes {
				t.Fatalf("outcomes = %q, want %q", got, tc.outcomes)
			}
			var appErr *temporal.ApplicationError
			switch {
			case tc.version == 22 && err != nil:
				t.Fatalf("dispatch failed: %v", err)
			case tc.version == 22:
			case !errors.As(err, &appErr) || appErr.Type() != dispatcher.FailureDispatch:
				t.Fatalf("workflow error = %v, want type %s", err, dispatcher.FailureDispatch)
			case !strings.Contains(appErr.Error(), "2 of 3 actions failed") || !strings.Contains(appErr.Error(), "(TemplateError, in run run-0)"):
				t.Errorf("failure %q, want 2 of 3 failed, m1 in run run-0", appErr.Error())
			case res.Outcomes[1].CarriedFrom != "run-0" || res.Outcomes[1].Error != "no such template":
				t.Errorf("carried outcome %+v, want it as run-0 left it", res.Outcomes[1])
			}
			env.AssertNumberOfCalls(t, workflows.LocalCallFunction, 1)
			env.AssertNumberOfCalls(t, workflows.LocalSendMail, 0)
			env.AssertNumberOfCalls(t, workflows.ActivityEmitTaskFailed, 0)
			// No new failure for an alert on the failed rate: before, every
			// dispatch a bulk replay of named actions fixed counted failed.
			if want := map[int]string{22: "completed", 23: "carried"}[tc.version]; ended.statuses() != "started "+want {
				t.Errorf("dispatches counted %q, want started, then %s", ended.statuses(), want)
			}
		})
	}
}

// A replay whose action its configuration skips, carrying another's
// failure, made nothing: it counts failed, not carried (review).
func TestDispatchCarryingWithItsActionSkippedCountsFailed(t *testing.T) {
	cfg := config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{mailAction("m1")}})
	cfg.Skipped = []dispatcher.SkippedDispatcher{{DispatcherID: "d2", Reason: dispatcher.SkipPaused,
		Actions: []dispatcher.SkippedAction{{ID: "t2", Type: dispatcher.ActionTask}}}}
	var s testsuite.WorkflowTestSuite
	ended := &statusCounter{}
	s.SetMetricsHandler(ended)
	env := newSuiteEnv(t, cfg, &s)
	res, _ := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Only: []string{"t2"}, Config: &cfg, Run: "r1",
		Version: workflows.DispatchVersion, Carried: []dispatcher.ActionOutcome{{DispatcherID: "d1", ActionID: "m1", Type: dispatcher.ActionMail,
			Status: dispatcher.OutcomeFailed, ErrorClass: dispatcher.FailureTemplate, CarriedFrom: "run-0"}}})
	if got := summary(res.Outcomes); got != "t2:skipped:0: m1:failed:0:TemplateError" {
		t.Fatalf("outcomes = %q", got)
	}
	if got := ended.statuses(); got != "started failed" {
		t.Errorf("dispatches counted %q, want started, then failed", got)
	}
}

// statusCounter is a metrics handler that records the status tag of each
// dispatcher_dispatches increment.
type statusCounter struct {
	mu   sync.Mutex
	tags map[string]string
	seen *[]string
}

func (c *statusCounter) WithTags(tags map[string]string) client.MetricsHandler {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = new([]string)
	}
	return &statusCounter{tags: tags, seen: c.seen}
}

func (c *statusCounter) Counter(name string) client.MetricsCounter {
	if name != "dispatcher_dispatches" || c.tags["status"] == "" {
		return client.MetricsNopHandler.Counter(name)
	}
	return counterFunc(func(int64) { record(func() { *c.seen = append(*c.seen, c.tags["status"]) }) })
}

func (c *statusCounter) Gauge(name string) client.MetricsGauge {
	return client.MetricsNopHandler.Gauge(name)
}
func (c *statusCounter) Timer(name string) client.MetricsTimer {
	return client.MetricsNopHandler.Timer(name)
}

func (c *statusCounter) statuses() string {
	var out []string
	record(func() {
		if c.seen != nil {
			out = slices.Clone(*c.seen)
		}
	})
	return strings.Join(out, " ")
}

type counterFunc func(int64)

func (f counterFunc) Inc(n int64) { f(n) }

func TestDispatchOutcomeOrder(t *testing.T) {
	// Later actions finish first; outcomes must still follow the
	// configuration, so that two runs of the same dispatch compare equal.
	cfg := config(
		dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{taskAction("a", "erase"), taskAction("b", "erase")}},
		dispatcher.Dispatcher{ID: "d2", EventType: "user_deleted", Actions: []dispatcher.Action{taskAction("c", "erase"), mailAction("d")}},
	)
	delays := map[string]time.Duration{"a": 4 * time.Second, "b": 3 * time.Second, "c": 2 * time.Second}
	for i := 0; i < 3; i++ {
		env := newEnv(t, cfg)
		var finished []string
		env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(
			func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
				return dispatcher.TaskResult{}, temporal.NewApplicationError("slow", dispatcher.FailureTimeout)
			})
		for id, d := range delays {
			env.OnActivity(workflows.ActivityCallFunction, mock.Anything, mock.MatchedBy(func(in dispatcher.TaskInput) bool { return in.ActionID == id })).
				After(d).Return(func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
				record(func() { finished = append(finished, in.ActionID) })
				return taskOK(ctx, in)
			})
		}
		env.OnActivity(workflows.LocalSendMail, mock.Anything, mock.Anything).Return(mailOK)
		res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
		if err != nil {
			t.Fatalf("dispatch failed: %v", err)
		}
		if got, want := summary(res.Outcomes), "a:succeeded:2: b:succeeded:2: c:succeeded:2: d:succeeded:1:"; got != want {
			t.Fatalf("run %d: outcomes = %q, want %q", i, got, want)
		}
		if strings.Join(finished, "") != "cba" {
			t.Fatalf("run %d: the tasks finished in order %q; the test needs them reversed", i, finished)
		}
	}
}

func TestDispatchChildWorkflow(t *testing.T) {
	cfg := config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{taskAction("c1", "erase-child")}})
	tests := []struct {
		name        string
		child       func(workflow.Context, dispatcher.TaskPayload) error
		wantOutcome string
	}{
		{"succeeds", func(workflow.Context, dispatcher.TaskPayload) error { return nil }, "c1:succeeded:1:"},
		{"fails", func(workflow.Context, dispatcher.TaskPayload) error {
			return temporal.NewNonRetryableApplicationError("nope", "Whatever", nil)
		}, "c1:failed:1:TaskFailed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t, cfg)
			// Rendered as the real activity does; it also checks the task
			// queue against the outbound policy, which needs the store.
			env.OnActivity(workflows.ActivityPrepareTask, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in dispatcher.TaskInput) (dispatcher.TaskPayload, error) {
					return dispatcher.NewTaskPayload(in, 1)
				})
			var got dispatcher.TaskPayload
			var info workflow.Info
			env.RegisterWorkflowWithOptions(func(ctx workflow.Context, p dispatcher.TaskPayload) error {
				got, info = p, *workflow.GetInfo(ctx)
				return tt.child(ctx, p)
			}, workflow.RegisterOptions{Name: "erase-child"})
			res, _ := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
			if s := summary(res.Outcomes); s != tt.wantOutcome {
				t.Errorf("outcomes = %q, want %q", s, tt.wantOutcome)
			}
			if got.TaskID != "default-test-workflow-id/d1/c1" || info.WorkflowExecution.ID != got.TaskID || info.TaskQueueName != "teams" {
				t.Errorf("child ran as %q on %q with task id %q", info.WorkflowExecution.ID, info.TaskQueueName, got.TaskID)
			}
			if !strings.HasPrefix(string(got.Data), `{"userId":42,"event":{"id":"ev-1"`) {
				t.Errorf("child data = %s", got.Data)
			}
		})
	}
}

// TestDispatchCanceledWhileItsChildIgnoresIt: a canceled dispatch ends
// canceled when the cancel comes, and its child workflow is asked to
// cancel; it does not wait for the child to end, which a child that no
// worker runs (its type misspelt) never does. Before dispatchV8 it waited:
// a cancel could not stop such a dispatch, nor free its ordered key. (The
// child here takes a day to end after the cancel; the test environment
// waits for it either way.)
func TestDispatchCanceledWhileItsChildIgnoresIt(t *testing.T) {
	cfg := config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{taskAction("c1", "erase-child")}})
	env := newEnv(t, cfg)
	env.SetTestTimeout(10 * time.Second)
	env.OnActivity(workflows.ActivityPrepareTask, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in dispatcher.TaskInput) (dispatcher.TaskPayload, error) {
			return dispatcher.NewTaskPayload(in, 1)
		})
	var asked time.Time
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, p dispatcher.TaskPayload) error {
		_ = workflow.Await(ctx, func() bool { return false })
		asked = workflow.Now(ctx)
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		_ = workflow.Sleep(dctx, 24*time.Hour)
		return temporal.NewCanceledError()
	}, workflow.RegisterOptions{Name: "erase-child"})
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Hour)
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: workflows.DispatchVersion})
	if !temporal.IsCanceledError(err) {
		t.Fatalf("workflow error = %v, want canceled", err)
	}
	if got, want := summary(res.Outcomes), "c1:canceled:1:Canceled"; got != want {
		t.Errorf("outcomes = %q, want %q", got, want)
	}
	if ended := res.Outcomes[0].FinishedAt.Sub(t0); ended != time.Hour || !asked.Equal(t0.Add(time.Hour)) {
		t.Errorf("the action ended at %v, its child asked to cancel at %v; want both at the cancel, 1h", ended, asked.Sub(t0))
	}
}

// TestDispatchBoundsAnActionsError: an action's error is kept to
// maxOutcomeError bytes in the outcome: a child workflow (or a receiver)
// failing with a message of megabytes, on a few actions, took the
// dispatch's result past Temporal's blob limit, and the dispatch failed
// to close with its outcomes lost.
func TestDispatchBoundsAnActionsError(t *testing.T) {
	cfg := config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{taskAction("c1", "erase-child")}})
	env := newEnv(t, cfg)
	env.OnActivity(workflows.ActivityPrepareTask, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in dispatcher.TaskInput) (dispatcher.TaskPayload, error) {
			return dispatcher.NewTaskPayload(in, 1)
		})
	env.RegisterWorkflowWithOptions(func(workflow.Context, dispatcher.TaskPayload) error {
		return temporal.NewNonRetryableApplicationError(strings.Repeat("é", 1<<20), "Huge", nil)
	}, workflow.RegisterOptions{Name: "erase-child"})
	res, _ := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: workflows.DispatchVersion})
	if e := res.Outcomes[0].Error; len(e) > 4<<10 || !utf8.ValidString(e) || !strings.HasPrefix(e, "éé") {
		t.Errorf("the outcome's error is %d bytes (valid UTF-8: %v), want at most 4 KiB", len(e), utf8.ValidString(e))
	}
}

// Hundreds of actions failing with long errors would take the result past
// Temporal's 2 MiB blob limit, and the server would fail the run with
// none of its outcomes: together the errors are cut to a share each, as
// encoded (JSON writes < and > in six bytes each).
func TestDispatchBoundsTheErrorsOfManyActions(t *testing.T) {
	var ds []dispatcher.Dispatcher
	for i := range 12 {
		d := dispatcher.Dispatcher{ID: fmt.Sprintf("d%d", i), EventType: "user_deleted"}
		for j := range dispatcher.MaxActions {
			d.Actions = append(d.Actions, mailAction(fmt.Sprintf("m%d-%d", i, j)))
		}
		ds = append(ds, d)
	}
	env := newEnv(t, config(ds...))
	env.OnActivity(workflows.LocalSendMail, mock.Anything, mock.Anything).Return(dispatcher.MailResult{},
		temporal.NewNonRetryableApplicationError("550 refused: "+strings.Repeat("<x>", 3<<10), dispatcher.FailureSMTPPermanent, nil))

	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: workflows.DispatchVersion})
	if err == nil || len(res.Outcomes) != 600 {
		t.Fatalf("err = %v, %d outcomes; want DispatchFailed with 600", err, len(res.Outcomes))
	}
	encoded, _ := json.Marshal(res)
	if len(encoded) > 1<<20 {
		t.Errorf("the result is %d bytes encoded, want at most 1 MiB", len(encoded))
	}
	for _, o := range res.Outcomes {
		if !strings.HasPrefix(o.Error, "550 refused: <x><x>") || !strings.HasSuffix(o.Error, "…") {
			t.Fatalf("outcome %s: error %.40q…, want it cut, keeping its start", o.ActionID, o.Error)
		}
	}
}

// TestPlannedOutcomesOfAGatedCall: while a dispatch's first workflow task
// runs, its gated call waits for its permit, which the task can only
// receive once it has ended: the detail shows it waiting, without an
// attempt. Before, running with one, as if called.
func TestPlannedOutcomesOfAGatedCall(t *testing.T) {
	cfg := &dispatcher.Config{Version: 1, Dispatchers: []dispatcher.Dispatcher{{ID: "d1", EventType: "e", Actions: []dispatcher.Action{
		{ID: "a1", Type: dispatcher.ActionTask, FunctionName: "gated"},
		{ID: "a2", Type: dispatcher.ActionTask, FunctionName: "free"}}}},
		Functions: []dispatcher.FunctionRef{{Name: "gated", Kind: dispatcher.FunctionHTTP, Gated: true}, {Name: "free", Kind: dispatcher.FunctionHTTP}}}
	in := workflows.DispatchInput{Event: dispatcher.Event{ID: "1", Type: "e"}, Config: cfg, Version: workflows.DispatchVersion}
	var got []string
	for _, o := range workflows.PlannedOutcomes(in, cfg, time.Now(), true) {
		got = append(got, fmt.Sprintf("%s:%s:%d", o.ActionID, o.Status, o.Attempts))
	}
	if want := []string{"a1:waiting:0", "a2:running:1"}; !slices.Equal(got, want) {
		t.Errorf("planned outcomes %q, want %q", got, want)
	}
}

// A mail whose last attempt handed it over and got no answer says so in
// its outcome, from the attempt's failure details, so that a replay keeps
// its Message-ID; one the server refused does not.
func TestDispatchRecordsAnUnansweredMail(t *testing.T) {
	for _, tt := range []struct {
		name       string
		details    dispatcher.FailureDetails
		unanswered bool
	}{
		{"no answer to the end of the mail", dispatcher.FailureDetails{Attempt: 1, Unanswered: true}, true},
		{"a 451", dispatcher.FailureDetails{Attempt: 1}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := mailAction("m1")
			a.RetryPolicy = &dispatcher.RetryPolicy{MaximumAttempts: 1}
			env := newEnv(t, config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{a}}))
			env.OnActivity(workflows.LocalSendMail, mock.Anything, mock.Anything).Return(dispatcher.MailResult{},
				temporal.NewApplicationErrorWithOptions("SMTP", dispatcher.FailureSMTPTemporary, temporal.ApplicationErrorOptions{Details: []any{tt.details}}))
			res, _ := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
			if got := summary(res.Outcomes); got != "m1:failed:1:SMTPTemporary" {
				t.Fatalf("outcomes = %q", got)
			}
			if got := res.Outcomes[0].Unanswered; got != tt.unanswered {
				t.Errorf("Unanswered = %v, want %v", got, tt.unanswered)
			}
		})
	}
}

// TestDispatchHistoryBudget: an attempt whose input would take the run's
// history past DispatchHistoryBudget is not made: the action fails with
// HistoryFull, saying so, and the dispatch ends with every outcome
// (dispatchV17). Before, the attempt was scheduled, and Temporal ended the
// run at 50 MiB, its actions not made yet never made and their outcomes
// lost.
func TestDispatchHistoryBudget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version int
		want    string
	}{
		{"refused", workflows.DispatchVersion, "m1:succeeded:1: t1:failed:1:HistoryFull"},
		{"before dispatchV17", 16, "m1:succeeded:1: t1:succeeded:2:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{mailAction("m1"), taskAction("t1", "erase")}})
			env := newEnv(t, cfg)
			env.SetCurrentHistorySize(workflows.DispatchHistoryBudget - 1<<10) // no room for the event again
			env.OnActivity(workflows.LocalSendMail, mock.Anything, mock.Anything).Return(mailOK)
			env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(dispatcher.TaskResult{},
				temporal.NewApplicationError("busy", dispatcher.FailureHTTPTemporary))
			env.OnActivity(workflows.ActivityCallFunction, mock.Anything, mock.Anything).Return(taskOK)
			res, _ := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Config: &cfg, Version: tc.version})
			if got := summary(res.Outcomes); got != tc.want {
				t.Fatalf("outcomes = %q, want %q", got, tc.want)
			}
			if tc.version >= 17 && !strings.Contains(res.Outcomes[1].Error, "attempt was not made") {
				t.Errorf("error = %q, want it to say the attempt was not made, and why", res.Outcomes[1].Error)
			}
		})
	}
}

// A first attempt refused as stale (its workflow task timed out; the
// worker that had it may have made the call, activities.staleTask) then
// canceled says the action may have been made, so that its replay keeps
// its key. Before, "canceled before it finished", as if never made.
func TestDispatchCanceledAfterAStaleFirstAttempt(t *testing.T) {
	env := newEnv(t, config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{taskAction("t1", "erase")}}))
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(
		func(context.Context, dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			env.CancelWorkflow()
			return dispatcher.TaskResult{}, temporal.NewApplicationErrorWithOptions("the workflow task of this first attempt started 20s before its worker scheduled it, and has timed out: not made here",
				dispatcher.FailureSlotMissed, temporal.ApplicationErrorOptions{Details: []any{dispatcher.FailureDetails{Attempt: 1, Unanswered: true}}})
		})
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("workflow error = %v, want canceled", err)
	}
	_ = canceled.Details(&res)
	if o := res.Outcomes[0]; o.Status != dispatcher.OutcomeCanceled || !o.Unanswered || !strings.Contains(o.Error, "may have been made") {
		t.Errorf("outcome %s, unanswered %v: %q; want canceled, may have been made", o.Status, o.Unanswered, o.Error)
	}
	env.AssertNumberOfCalls(t, workflows.ActivityCallFunction, 0)
}

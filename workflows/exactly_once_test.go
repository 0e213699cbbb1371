package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// taskConfig is one dispatcher with one task action calling "erase".
func taskConfig() dispatcher.Config {
	return config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{taskAction("t1", "erase")}})
}

// A first attempt slower than the budget that dispatches before version 1
// gave it (LocalTimeout) is not cut off: before, the SDK reported its
// timeout at once and the retry was sent while the first call still ran.
func TestDispatchSlowFirstAttemptIsNotDoubled(t *testing.T) {
	env := newEnv(t, taskConfig())
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			time.Sleep(300 * time.Millisecond) // a call slower than the old 50 ms budget
			return taskOK(ctx, in)
		})
	env.OnActivity(workflows.ActivityCallFunction, mock.Anything, mock.Anything).Return(taskOK)
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), LocalTimeout: 50 * time.Millisecond})
	if err != nil || summary(res.Outcomes) != "t1:succeeded:1:" {
		t.Fatalf("outcomes = %q, %v; want one attempt", summary(res.Outcomes), err)
	}
	env.AssertNumberOfCalls(t, workflows.ActivityCallFunction, 0)
}

// A call longer than the local call limit runs every attempt as a regular
// activity, which heartbeats.
func TestDispatchLongCallStartsRegular(t *testing.T) {
	env := newEnv(t, taskConfig())
	env.OnActivity(workflows.ActivityCallFunction, mock.Anything, mock.Anything).Return(taskOK)
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), LocalCallLimit: time.Second})
	if err != nil || summary(res.Outcomes) != "t1:succeeded:1:" {
		t.Fatalf("outcomes = %q, %v", summary(res.Outcomes), err)
	}
	env.AssertNumberOfCalls(t, workflows.LocalCallFunction, 0)
	env.AssertNumberOfCalls(t, workflows.ActivityCallFunction, 1)
}

// The second attempt comes when the function asked for it: before, it was
// sent within milliseconds of the first, whatever its Retry-After said.
func TestDispatchHandoffWaitsForRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		name      string
		local     error
		wantDelay time.Duration
	}{
		{"Retry-After", temporal.NewApplicationErrorWithOptions("busy", dispatcher.FailureHTTPTemporary,
			temporal.ApplicationErrorOptions{NextRetryDelay: 30 * time.Second}), 30 * time.Second},
		{"the policy's first interval", temporal.NewApplicationError("busy", dispatcher.FailureHTTPTemporary), time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t, taskConfig())
			env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(dispatcher.TaskResult{}, tt.local)
			var second time.Time
			env.OnActivity(workflows.ActivityCallFunction, mock.Anything, mock.Anything).Return(
				func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
					record(func() { second = env.Now() })
					return taskOK(ctx, in)
				})
			res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
			if err != nil || summary(res.Outcomes) != "t1:succeeded:2:" {
				t.Fatalf("outcomes = %q, %v", summary(res.Outcomes), err)
			}
			if got := second.Sub(t0); got < tt.wantDelay {
				t.Errorf("the second attempt came %v after the first, want at least %v", got, tt.wantDelay)
			}
		})
	}
}

// While an action waits for its second attempt, its outcome (what the
// run's detail shows) says why: the first attempt's error. Before, an
// hour's Retry-After showed it running, no error. It succeeds in the end,
// and its outcome says no more of the error. It says when the next
// attempt comes meanwhile.
func TestDispatchShowsTheFirstAttemptsErrorWhileItWaits(t *testing.T) {
	env := newEnv(t, taskConfig())
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(dispatcher.TaskResult{},
		temporal.NewApplicationErrorWithOptions("answered 503", dispatcher.FailureHTTPTemporary, temporal.ApplicationErrorOptions{NextRetryDelay: time.Hour}))
	env.OnActivity(workflows.ActivityCallFunction, mock.Anything, mock.Anything).Return(taskOK)
	var during []dispatcher.ActionOutcome
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryOutcomes)
		if err == nil {
			err = v.Get(&during)
		}
		if err != nil {
			t.Errorf("query: %v", err)
		}
	}, 30*time.Minute)
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
	if err != nil || summary(res.Outcomes) != "t1:succeeded:2:" || res.Outcomes[0].Error != "" {
		t.Fatalf("outcomes = %q (%+v), %v", summary(res.Outcomes), res.Outcomes, err)
	}
	if summary(during) != "t1:running:1:HTTPTemporary" || !strings.Contains(during[0].Error, "answered 503") {
		t.Errorf("while it waits: %q (%+v), want it running after 1 attempt, with that attempt's error", summary(during), during)
	}
	// And when its next attempt comes, which the workflow's timer holds,
	// until it is made. Before, the wait went unsaid.
	if len(during) != 1 || !during[0].NextAttemptAt.Equal(t0.Add(time.Hour)) || !res.Outcomes[0].NextAttemptAt.IsZero() {
		t.Errorf("next attempt while it waits %v, once made %v; want %v, then none", during[0].NextAttemptAt, res.Outcomes[0].NextAttemptAt, t0.Add(time.Hour))
	}
}

// A cancel that reaches an attempt in flight waits for it (the attempt
// runs with WaitForCancellation): the test environment resolves a
// canceled activity at once whatever the option says, so the end-to-end
// test (TestEndToEndExactlyOnce) shows it on a real server.

// A cancel while an action waits to retry ends it canceled: nothing is in
// flight.
func TestDispatchCancelBetweenAttempts(t *testing.T) {
	env := newEnv(t, taskConfig())
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(dispatcher.TaskResult{},
		temporal.NewApplicationErrorWithOptions("busy", dispatcher.FailureHTTPTemporary, temporal.ApplicationErrorOptions{NextRetryDelay: time.Hour}))
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) || summary(res.Outcomes) != "t1:canceled:1:Canceled" {
		t.Fatalf("outcomes = %q, %v; want the action canceled", summary(res.Outcomes), err)
	}
	env.AssertNumberOfCalls(t, workflows.ActivityCallFunction, 0)
}

// A child workflow's payload is rendered by a local activity, never in
// workflow code, where a slow template would trip the deadlock detector
// and fail the workflow task for ever.
func TestDispatchChildPayloadFromLocalActivity(t *testing.T) {
	env := newEnv(t, config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{taskAction("c1", "erase-child")}}))
	rendered := dispatcher.TaskPayload{TaskID: "default-test-workflow-id/d1/c1", Data: json.RawMessage(`{"rendered":"by the activity"}`)}
	env.OnActivity(workflows.ActivityPrepareTask, mock.Anything, mock.Anything).Return(rendered, nil)
	var got dispatcher.TaskPayload
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, p dispatcher.TaskPayload) error {
		got = p
		return nil
	}, workflow.RegisterOptions{Name: "erase-child"})
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
	if err != nil || summary(res.Outcomes) != "c1:succeeded:1:" {
		t.Fatalf("outcomes = %q, %v", summary(res.Outcomes), err)
	}
	if string(got.Data) != `{"rendered":"by the activity"}` {
		t.Errorf("the child got %s, want the payload the activity rendered", got.Data)
	}
	env.AssertNumberOfCalls(t, workflows.ActivityPrepareTask, 1)
}

// A run started by a newer intake than the worker never runs on it: the
// workflow task fails (a panic, which Temporal retries until a worker that
// knows the version takes the task) before any action.
func TestDispatchRefusesANewerVersion(t *testing.T) {
	env := newEnv(t, taskConfig())
	env.ExecuteWorkflow(workflows.WorkflowDispatch, workflows.DispatchInput{Event: testEvent(), Version: workflows.DispatchVersion + 1})
	var panicked *temporal.PanicError
	if err := env.GetWorkflowError(); !errors.As(err, &panicked) || !strings.Contains(err.Error(), "upgrade the workers") {
		t.Fatalf("error %v, want the workflow task to fail for the version", err)
	}
	env.AssertNumberOfCalls(t, workflows.LocalCallFunction, 0)
}

// A first attempt its worker held too long for a slot is not made
// (activities.queuedTooLong, SlotMissed): the regular activity makes the
// call at once, with the whole retry policy, so an action of one attempt
// is still tried and the outcome counts the one call. Before, it was
// handed off as a failed attempt, and an action of one attempt failed
// without a call.
func TestDispatchFirstAttemptNotMadeIsMadeRegular(t *testing.T) {
	cfg := taskConfig()
	cfg.Dispatchers[0].Actions[0].RetryPolicy = &dispatcher.RetryPolicy{MaximumAttempts: 1}
	env := newEnv(t, cfg)
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(dispatcher.TaskResult{},
		temporal.NewApplicationError("the first attempt waited 70s for a slot of its worker", dispatcher.FailureSlotMissed))
	var regular time.Time
	env.OnActivity(workflows.ActivityCallFunction, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			record(func() { regular = env.Now() })
			if in.LocalAttempts != 0 {
				t.Errorf("the regular attempt counts %d local attempts made, want 0", in.LocalAttempts)
			}
			return taskOK(ctx, in)
		})
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: workflows.DispatchVersion})
	if err != nil || summary(res.Outcomes) != "t1:succeeded:1:" {
		t.Fatalf("outcomes = %q, %v; want one attempt, made by the regular activity", summary(res.Outcomes), err)
	}
	if regular.Sub(t0) >= time.Second {
		t.Errorf("the regular attempt came %v after the first, want at once", regular.Sub(t0))
	}

	// Before dispatchV12 it is a failed attempt, as it was.
	env = newEnv(t, cfg)
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(dispatcher.TaskResult{},
		temporal.NewApplicationError("the first attempt waited 70s for a slot of its worker", dispatcher.FailureSlotMissed))
	res, _ = runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: 11})
	if got := summary(res.Outcomes); got != "t1:failed:1:SlotMissed" {
		t.Errorf("dispatch version 11: outcomes = %q", got)
	}
}

// A first attempt that made nothing costs no attempt (dispatchV16): one
// whose store did not answer before it called the function, and one that
// left its mail to another attempt holding it (a worker killed in the
// middle of its first attempt) are made by the regular activity with the
// whole policy, the latter once the claim has expired. Before, an action
// of one attempt failed for good without a call or a mail, and the others
// lost one.
func TestDispatchFirstAttemptThatMadeNothingCostsNoAttempt(t *testing.T) {
	once := &dispatcher.RetryPolicy{MaximumAttempts: 1}
	storeDown := temporal.NewApplicationError("loading function \"erase\": the database is unavailable or busy: try again", dispatcher.FailureStore)
	heldFor := 40 * time.Second
	heldMail := temporal.NewApplicationErrorWithOptions("another attempt may be sending mail m now", dispatcher.FailureSMTPTemporary,
		temporal.ApplicationErrorOptions{NextRetryDelay: heldFor, Details: []any{dispatcher.FailureDetails{Attempt: 1, Unanswered: true, Held: true}}})
	for _, tt := range []struct {
		name           string
		action         dispatcher.Action
		local, regular string
		empty          any // the local activity's result type
		err            error
		after          time.Duration // the regular attempt comes no sooner
		ok             any
	}{
		{"the store down before the call", taskAction("t1", "erase"), workflows.LocalCallFunction, workflows.ActivityCallFunction, dispatcher.TaskResult{}, storeDown, 0,
			func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
				return taskOK(ctx, in)
			}},
		{"the mail held by another attempt", mailAction("t1"), workflows.LocalSendMail, workflows.ActivitySendMail, dispatcher.MailResult{}, heldMail, heldFor, mailOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.action
			a.RetryPolicy = once
			cfg := config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{a}})
			env := newEnv(t, cfg)
			env.OnActivity(tt.local, mock.Anything, mock.Anything).Return(tt.empty, tt.err)
			var regular time.Time
			env.OnActivity(tt.regular, mock.Anything, mock.Anything).Return(tt.ok).Run(func(mock.Arguments) { record(func() { regular = env.Now() }) })
			res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: workflows.DispatchVersion})
			if err != nil || summary(res.Outcomes) != "t1:succeeded:1:" {
				t.Fatalf("outcomes = %q, %v; want one attempt, made by the regular activity", summary(res.Outcomes), err)
			}
			if regular.Sub(t0) < tt.after {
				t.Errorf("the regular attempt came %v after the first, want at least %v", regular.Sub(t0), tt.after)
			}

			// Before dispatchV16 it cost the only attempt.
			env = newEnv(t, cfg)
			env.OnActivity(tt.local, mock.Anything, mock.Anything).Return(tt.empty, tt.err)
			res, _ = runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: 15})
			if got := summary(res.Outcomes); !strings.HasPrefix(got, "t1:failed:1:") {
				t.Errorf("dispatch version 15: outcomes = %q, want the action failed after one attempt", got)
			}
		})
	}
}

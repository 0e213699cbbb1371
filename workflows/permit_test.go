package workflows_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// gatedConfig is a configuration whose one task action calls "erase",
// a gated HTTP function.
func gatedConfig(policy *dispatcher.RetryPolicy) dispatcher.Config {
	a := taskAction("t1", "erase")
	a.RetryPolicy = policy
	cfg := config(dispatcher.Dispatcher{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{a}})
	cfg.Functions[0].Gated = true
	return cfg
}

// permits fakes a dispatch's gate: it records the requests the dispatch
// makes (ActivityRequestPermit) and its reports (SignalGateDone), and
// grants the requests made so far when the test says.
type permits struct {
	env      *testsuite.TestWorkflowEnvironment
	requests []workflows.RequestPermitInput
	reports  []workflows.PermitDone
	granted  int
}

func newPermits(env *testsuite.TestWorkflowEnvironment) *permits {
	p := &permits{env: env}
	env.OnActivity(workflows.ActivityRequestPermit, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.RequestPermitInput) (string, error) {
			record(func() { p.requests = append(p.requests, in) })
			return in.Request.RunID, nil
		})
	env.OnSignalExternalWorkflow(mock.Anything, dispatcher.GateWorkflowID("", "erase"), "", workflows.SignalGateDone, mock.Anything).Return(
		func(_, _, _, _ string, arg any) error {
			record(func() { p.reports = append(p.reports, arg.(workflows.PermitDone)) })
			return nil
		})
	return p
}

// grantAt grants, at d, every request made so far that has none, each
// permit expiring as its request's lease says.
func (p *permits) grantAt(d time.Duration) {
	p.env.RegisterDelayedCallback(func() {
		var grants []workflows.PermitGrant
		record(func() {
			for _, r := range p.requests[p.granted:] {
				grants = append(grants, workflows.PermitGrant{RequestID: r.Request.ID, Expires: p.env.Now().Add(r.Request.Lease)})
			}
			p.granted = len(p.requests)
		})
		for _, g := range grants {
			p.env.SignalWorkflow(workflows.SignalPermit, g)
		}
	}, d)
}

func (p *permits) results() []string {
	var out []string
	record(func() {
		for _, r := range p.reports {
			out = append(out, r.Result)
		}
	})
	return out
}

// TestGatedCallWaitsWithoutConsumingAttempts: a call of a gated function
// waits for its permit — three hours, as behind an open circuit — without
// that costing an attempt: with two attempts, a failed call and a long
// wait still end in success. Each call reports how it ended.
func TestGatedCallWaitsWithoutConsumingAttempts(t *testing.T) {
	env := newEnv(t, gatedConfig(&dispatcher.RetryPolicy{MaximumAttempts: 2, InitialInterval: time.Second}))
	p := newPermits(env)
	var calls []time.Duration
	var payloadAttempts []int
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			at := env.Now().Sub(t0)
			record(func() { calls = append(calls, at); payloadAttempts = append(payloadAttempts, in.LocalAttempts+1) })
			if len(calls) == 1 {
				return dispatcher.TaskResult{}, temporal.NewApplicationError("503", dispatcher.FailureHTTPTemporary)
			}
			return taskOK(ctx, in)
		})
	p.grantAt(time.Minute)
	p.grantAt(3 * time.Hour)
	var waiting, second []dispatcher.ActionOutcome
	query := func(into *[]dispatcher.ActionOutcome) func() {
		return func() {
			v, err := env.QueryWorkflow(workflows.QueryOutcomes)
			if err == nil {
				err = v.Get(into)
			}
			if err != nil {
				t.Error(err)
			}
		}
	}
	env.RegisterDelayedCallback(query(&waiting), 30*time.Second)
	env.RegisterDelayedCallback(query(&second), 2*time.Hour)

	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: workflows.DispatchVersion})
	if err != nil {
		t.Fatalf("dispatch failed: %v", err)
	}
	if got, want := summary(res.Outcomes), "t1:succeeded:2:"; got != want {
		t.Errorf("outcomes = %q, want %q", got, want)
	}
	if got, want := summary(waiting), "t1:waiting:0:"; got != want {
		t.Errorf("outcomes while waiting for the first permit = %q, want %q", got, want)
	}
	if got, want := summary(second), "t1:waiting:1:HTTPTemporary"; got != want { // the last attempt's error
		t.Errorf("outcomes while waiting for the second permit = %q, want %q", got, want)
	}
	if want := []time.Duration{time.Minute, 3 * time.Hour}; !slices.Equal(calls, want) {
		t.Errorf("calls at %v, want %v: each right after its permit", calls, want)
	}
	if !slices.Equal(payloadAttempts, []int{1, 2}) {
		t.Errorf("the payloads' attempts = %v, want 1, 2", payloadAttempts)
	}
	if got, want := p.results(), []string{workflows.PermitRetryable, workflows.PermitOK}; !slices.Equal(got, want) {
		t.Errorf("reports %v, want %v", got, want)
	}
	// The second waited three hours: asked again after 10, 30, 70 and
	// 150 minutes, in case its gate had lost it.
	var asked []string
	for _, r := range p.requests {
		if r.Gate != dispatcher.GateWorkflowID("", "erase") || r.Function != "erase" || r.TaskQueue == "" ||
			r.Request.WorkflowID != "default-test-workflow-id" || r.Request.Lease != 15*time.Second+time.Minute {
			t.Errorf("request %+v", r)
		}
		asked = append(asked, r.Request.ID[strings.LastIndex(r.Request.ID, "/d1/t1/")+len("/d1/t1/"):])
	}
	if want := []string{"1", "2", "2", "2", "2", "2"}; !slices.Equal(asked, want) {
		t.Errorf("requests for attempts %v, want %v", asked, want)
	}
	env.AssertNumberOfCalls(t, workflows.ActivityCallFunction, 0)
}

// TestGatedCallRetries: the workflow drives a gated call's retries as its
// policy says, each attempt a permit of its own; a permanent failure ends
// it at once; a call that takes longer than the local call limit is a
// regular activity.
func TestGatedCallRetries(t *testing.T) {
	for _, tt := range []struct {
		name    string
		err     error
		timeout time.Duration
		want    string
		reports []string
	}{
		{"retries run out", temporal.NewApplicationError("503", dispatcher.FailureHTTPTemporary), time.Second,
			"t1:failed:3:HTTPTemporary", []string{workflows.PermitRetryable, workflows.PermitRetryable, workflows.PermitRetryable}},
		{"permanent", temporal.NewNonRetryableApplicationError("404", dispatcher.FailureHTTPPermanent, nil), time.Second,
			"t1:failed:1:HTTPPermanent", []string{workflows.PermitFailed}},
		{"template error: no call", temporal.NewNonRetryableApplicationError("bad", dispatcher.FailureTemplate, nil), time.Second,
			"t1:failed:1:TemplateError", []string{workflows.PermitReleased}},
		{"regular activity", temporal.NewApplicationError("slow", dispatcher.FailureTimeout), 5 * time.Minute,
			"t1:failed:3:Timeout", []string{workflows.PermitRetryable, workflows.PermitRetryable, workflows.PermitRetryable}},
		// Its worker may still be calling: the gate keeps the lease
		// (gateSilentV1). Before, it was released, and the next call ran
		// beside it.
		{"regular activity, heartbeats lost", temporal.NewHeartbeatTimeoutError(), 5 * time.Minute,
			"t1:failed:3:Timeout", []string{workflows.PermitSilent, workflows.PermitSilent, workflows.PermitSilent}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := gatedConfig(&dispatcher.RetryPolicy{MaximumAttempts: 3, InitialInterval: time.Second, BackoffCoefficient: 2})
			cfg.Functions[0].Timeout = tt.timeout
			env := newEnv(t, cfg)
			p := newPermits(env)
			fail := func(context.Context, dispatcher.TaskInput) (dispatcher.TaskResult, error) {
				return dispatcher.TaskResult{}, tt.err
			}
			env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(fail)
			env.OnActivity(workflows.ActivityCallFunction, mock.Anything, mock.Anything).Return(fail)
			for _, d := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute} {
				p.grantAt(d)
			}
			// Waiting for its second attempt's permit, the action shows
			// its first one's error; before, a gated call showed none.
			var waiting []dispatcher.ActionOutcome
			env.RegisterDelayedCallback(func() {
				if v, err := env.QueryWorkflow(workflows.QueryOutcomes); err == nil {
					_ = v.Get(&waiting)
				}
			}, time.Minute+30*time.Second)
			res, _ := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: workflows.DispatchVersion})
			if len(tt.reports) > 1 && (len(waiting) != 1 || waiting[0].Status != dispatcher.OutcomeWaiting || waiting[0].Attempts != 1 ||
				waiting[0].ErrorClass != res.Outcomes[0].ErrorClass || waiting[0].Error == "") {
				t.Errorf("waiting for the second attempt: %+v, want attempt 1's error", waiting)
			}
			if got := summary(res.Outcomes); !strings.HasPrefix(got, tt.want) {
				t.Errorf("outcomes = %q, want %q", got, tt.want)
			}
			if got := p.results(); !slices.Equal(got, tt.reports) {
				t.Errorf("reports %v, want %v", got, tt.reports)
			}
			local, regular := 0, 0
			if tt.timeout <= workflows.DefaultLocalCallLimit {
				local = len(tt.reports)
			} else {
				regular = len(tt.reports)
			}
			env.AssertNumberOfCalls(t, workflows.LocalCallFunction, local)
			env.AssertNumberOfCalls(t, workflows.ActivityCallFunction, regular)
		})
	}
}

// TestGatedCallStopsShortOfTheHistoryLimit: a gated call asks for no
// permit once its run's history holds DispatchHistoryEvents events
// (dispatchV22): its action fails, HistoryFull, with the attempts it
// made, for a replay to go on. Before, its cycles went on until Temporal
// terminated the run at 51,200 events, every outcome lost; a run of
// version 21 still does.
func TestGatedCallStopsShortOfTheHistoryLimit(t *testing.T) {
	for _, tt := range []struct {
		version int
		want    string
		calls   int
	}{
		{workflows.DispatchVersion, "t1:failed:1:HistoryFull", 1},
		{21, "t1:failed:3:HTTPTemporary", 3},
	} {
		t.Run(fmt.Sprint("version ", tt.version), func(t *testing.T) {
			env := newEnv(t, gatedConfig(&dispatcher.RetryPolicy{MaximumAttempts: 3, InitialInterval: time.Second}))
			p := newPermits(env)
			env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(
				dispatcher.TaskResult{}, temporal.NewApplicationError("503", dispatcher.FailureHTTPTemporary))
			for _, d := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute} {
				p.grantAt(d)
			}
			// After the first call, before the second's request.
			env.RegisterDelayedCallback(func() { env.SetCurrentHistoryLength(workflows.DispatchHistoryEvents) }, time.Minute+time.Second/2)
			res, _ := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: tt.version})
			if got := summary(res.Outcomes); !strings.HasPrefix(got, tt.want) {
				t.Errorf("outcomes = %q, want %q", got, tt.want)
			}
			env.AssertNumberOfCalls(t, workflows.LocalCallFunction, tt.calls)
			if n := len(p.results()); n != tt.calls {
				t.Errorf("%d reports to the gate, want one for each of the %d calls", n, tt.calls)
			}
		})
	}
}

// TestGatedCallCanceledWhileWaiting: a dispatch canceled while its call
// waits for a permit gives the request up (released) and makes no call.
func TestGatedCallCanceledWhileWaiting(t *testing.T) {
	env := newEnv(t, gatedConfig(nil))
	p := newPermits(env)
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Hour)
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: workflows.DispatchVersion})
	if !temporal.IsCanceledError(err) {
		t.Fatalf("workflow error = %v, want canceled", err)
	}
	if got, want := summary(res.Outcomes), "t1:canceled:0:Canceled"; got != want {
		t.Errorf("outcomes = %q, want %q", got, want)
	}
	if got, want := p.results(), []string{workflows.PermitReleased}; !slices.Equal(got, want) {
		t.Errorf("reports %v, want %v", got, want)
	}
	env.AssertNumberOfCalls(t, workflows.LocalCallFunction, 0)
}

// TestUngatedCallsTakeTheFastPath: a function without flow control, and a
// gated one in a run of a version before dispatchV4, never ask a gate.
func TestUngatedCallsTakeTheFastPath(t *testing.T) {
	for _, tt := range []struct {
		name    string
		gated   bool
		version int
	}{
		{"ungated function", false, workflows.DispatchVersion},
		{"gated function, version 3", true, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := gatedConfig(nil)
			cfg.Functions[0].Gated = tt.gated
			env := newEnv(t, cfg)
			env.OnActivity(workflows.ActivityRequestPermit, mock.Anything, mock.Anything).Return("", nil)
			env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(taskOK)
			res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: tt.version})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := summary(res.Outcomes), "t1:succeeded:1:"; got != want {
				t.Errorf("outcomes = %q, want %q", got, want)
			}
			env.AssertNumberOfCalls(t, workflows.ActivityRequestPermit, 0)
		})
	}
}

// TestGatedCallMissedSlotAsksAgain: a call that came too late for its
// slot was not made: the dispatch asks for another permit at once, under
// a request id of its own, and that costs no attempt (one attempt, and it
// still succeeds). Before, a late call was made anyway and bunched with
// the next ones. Each call carries its permit's expiry, which the call
// keeps to as it keeps to its slot.
//
// A first attempt run again that finds its call made by the run before it
// (activities.claimCall: its worker died mid-call) is not made either, but
// that call may still be running: its permit is reported silent, so that
// the gate keeps its place until the lease ends. Before, it was released,
// and the gate granted it again beside the call still running.
func TestGatedCallMissedSlotAsksAgain(t *testing.T) {
	for _, tt := range []struct {
		name   string
		missed error
		report string
	}{
		{"slot passed", temporal.NewApplicationError("slot passed", dispatcher.FailureSlotMissed), workflows.PermitReleased},
		{"made by the run before", temporal.NewApplicationErrorWithOptions("claimed", dispatcher.FailureSlotMissed,
			temporal.ApplicationErrorOptions{Details: []any{dispatcher.FailureDetails{Unanswered: true, Held: true}}}), workflows.PermitSilent},
	} {
		t.Run(tt.name, func(t *testing.T) { testGatedCallMissedSlotAsksAgain(t, tt.missed, tt.report) })
	}
}

func testGatedCallMissedSlotAsksAgain(t *testing.T, missed error, report string) {
	env := newEnv(t, gatedConfig(&dispatcher.RetryPolicy{MaximumAttempts: 1}))
	p := newPermits(env)
	calls := 0
	var expiries []time.Duration
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			record(func() { calls++; expiries = append(expiries, in.PermitExpires.Sub(t0)) })
			if calls == 1 {
				return dispatcher.TaskResult{}, missed
			}
			return taskOK(ctx, in)
		})
	p.grantAt(time.Minute)
	p.grantAt(2 * time.Minute)
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: workflows.DispatchVersion})
	if err != nil {
		t.Fatalf("dispatch failed: %v", err)
	}
	if got, want := summary(res.Outcomes), "t1:succeeded:1:"; got != want {
		t.Errorf("outcomes = %q, want %q: the missed slot cost no attempt", got, want)
	}
	if got, want := p.results(), []string{report, workflows.PermitOK}; !slices.Equal(got, want) {
		t.Errorf("reports %v, want %v", got, want)
	}
	var ids []string
	record(func() {
		for _, r := range p.requests {
			ids = append(ids, r.Request.ID)
		}
	})
	if len(ids) != 2 || ids[0] == ids[1] || !strings.HasSuffix(ids[1], "/1.2") {
		t.Errorf("permit requests %v, want two, the second of the same attempt under an id of its own", ids)
	}
	lease := 15*time.Second + time.Minute
	if want := []time.Duration{time.Minute + lease, 2*time.Minute + lease}; !slices.Equal(expiries, want) {
		t.Errorf("the calls' permits expire at %v, want %v", expiries, want)
	}
}

// TestGatedCallBusyGoesRegular: a gated call's first attempt that its
// worker refused for its tenant's share of the slots (Busy, dispatchV21)
// is made as a regular activity under a permit of its own, at no
// attempt's cost; its first attempt said the run does so (ShareBound).
// Before, a gated call was never refused so: one tenant's gated functions
// could hold every slot of a worker. A run of version 20 does not say so,
// and is never refused.
func TestGatedCallBusyGoesRegular(t *testing.T) {
	for _, version := range []int{20, workflows.DispatchVersion} {
		t.Run(fmt.Sprint("version ", version), func(t *testing.T) {
			env := newEnv(t, gatedConfig(&dispatcher.RetryPolicy{MaximumAttempts: 1}))
			p := newPermits(env)
			var bound []bool
			env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(
				func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
					record(func() { bound = append(bound, in.ShareBound) })
					if !in.ShareBound {
						return taskOK(ctx, in)
					}
					return dispatcher.TaskResult{}, temporal.NewApplicationErrorWithOptions("busy", dispatcher.FailureSlotMissed,
						temporal.ApplicationErrorOptions{Details: []any{dispatcher.FailureDetails{Busy: true}}})
				})
			env.OnActivity(workflows.ActivityCallFunction, mock.Anything, mock.Anything).Return(taskOK)
			p.grantAt(time.Minute)
			p.grantAt(2 * time.Minute)
			res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: version})
			if err != nil {
				t.Fatalf("dispatch failed: %v", err)
			}
			if got, want := summary(res.Outcomes), "t1:succeeded:1:"; got != want {
				t.Errorf("outcomes = %q, want %q", got, want)
			}
			want, reports, regular := []bool{false}, []string{workflows.PermitOK}, 0
			if version >= 21 {
				want, reports, regular = []bool{true}, []string{workflows.PermitReleased, workflows.PermitOK}, 1
			}
			if !slices.Equal(bound, want) {
				t.Errorf("first attempts said ShareBound %v, want %v", bound, want)
			}
			if got := p.results(); !slices.Equal(got, reports) {
				t.Errorf("reports %v, want %v", got, reports)
			}
			env.AssertNumberOfCalls(t, workflows.ActivityCallFunction, regular)
		})
	}
}

// An ungated call's first attempt says, from dispatchV12, that its run
// makes it as a regular activity when its worker refuses it for its
// tenant's share (notMade): the worker may then refuse it. One of an
// older run does not say so, and is never refused.
func TestUngatedCallBusyGoesRegular(t *testing.T) {
	for version, want := range map[int]bool{11: false, 12: true, workflows.DispatchVersion: true} {
		cfg := gatedConfig(&dispatcher.RetryPolicy{MaximumAttempts: 1})
		cfg.Functions[0].Gated = false
		env := newEnv(t, cfg)
		var bound bool
		env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(
			func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
				record(func() { bound = in.ShareBound })
				return taskOK(ctx, in)
			})
		if _, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: version}); err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		if bound != want {
			t.Errorf("version %d: the first attempt said ShareBound %v, want %v", version, bound, want)
		}
	}
}

// A call that misses its slot again and again (a worker whose clock runs
// ahead of the server's, or one too loaded to keep its slots) does not ask
// for permits for ever: the third miss in a row of an attempt is a failed
// attempt, and the retry policy ends it. Before, one action asked for
// hundreds of permits, growing its history towards Temporal's limit, and
// its policy never applied.
func TestGatedCallMissingEverySlotFails(t *testing.T) {
	env := newEnv(t, gatedConfig(&dispatcher.RetryPolicy{MaximumAttempts: 2, InitialInterval: time.Second}))
	p := newPermits(env)
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(
		func(context.Context, dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			return dispatcher.TaskResult{}, temporal.NewApplicationError("slot passed", dispatcher.FailureSlotMissed)
		})
	for k := 1; k <= 50; k++ {
		p.grantAt(time.Duration(k) * 10 * time.Second)
	}
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: workflows.DispatchVersion})
	if err == nil {
		t.Fatal("the dispatch succeeded")
	}
	if got, want := summary(res.Outcomes), "t1:failed:2:SlotMissed"; got != want {
		t.Errorf("outcomes = %q, want %q", got, want)
	}
	var n int
	record(func() { n = len(p.requests) })
	if n != 6 {
		t.Errorf("%d permit requests, want 6: 3 slots missed by each of 2 attempts", n)
	}
}

// A gated call longer than the local call limit is a regular activity; one
// that no worker started before its schedule-to-start timeout (the task
// queue backed up) was not made, and asks for another permit without
// consuming an attempt (dispatchV7), as a missed slot does. Before, it
// counted as a failed attempt: one attempt, and the action failed
// although no call was ever made.
func TestGatedCallNeverStartedAsksAgain(t *testing.T) {
	cfg := gatedConfig(&dispatcher.RetryPolicy{MaximumAttempts: 1})
	cfg.Functions[0].Timeout = 2 * time.Minute // over the local call limit: regular
	env := newEnv(t, cfg)
	p := newPermits(env)
	calls := 0
	env.OnActivity(workflows.ActivityCallFunction, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			record(func() { calls++ })
			if calls == 1 {
				return dispatcher.TaskResult{}, temporal.NewTimeoutError(enums.TIMEOUT_TYPE_SCHEDULE_TO_START, nil)
			}
			return taskOK(ctx, in)
		})
	p.grantAt(time.Minute)
	p.grantAt(5 * time.Minute)
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: workflows.DispatchVersion})
	if err != nil {
		t.Fatalf("dispatch failed: %v", err)
	}
	if got, want := summary(res.Outcomes), "t1:succeeded:1:"; got != want {
		t.Errorf("outcomes = %q, want %q: the call never started cost no attempt", got, want)
	}
	if got, want := p.results(), []string{workflows.PermitReleased, workflows.PermitOK}; !slices.Equal(got, want) {
		t.Errorf("reports %v, want %v: a call not made tells the circuit nothing", got, want)
	}
}

// A call that timed out otherwise may have been made: a regular one that
// started late and ran into its schedule-to-close deadline, a local one
// past its own (which the SDK reports as schedule-to-close). Each is an
// attempt, which the policy bounds; asking again would make the call
// again, uncounted, perhaps while the first still runs.
func TestGatedCallTimedOutCountsAsAnAttempt(t *testing.T) {
	for _, tt := range []struct {
		name     string
		timeout  time.Duration
		activity string
	}{
		{"regular, schedule-to-close", 2 * time.Minute, workflows.ActivityCallFunction},
		{"local, its deadline", time.Second, workflows.LocalCallFunction},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := gatedConfig(&dispatcher.RetryPolicy{MaximumAttempts: 1})
			cfg.Functions[0].Timeout = tt.timeout
			env := newEnv(t, cfg)
			p := newPermits(env)
			calls := 0
			env.OnActivity(tt.activity, mock.Anything, mock.Anything).Return(
				func(context.Context, dispatcher.TaskInput) (dispatcher.TaskResult, error) {
					record(func() { calls++ })
					return dispatcher.TaskResult{}, temporal.NewTimeoutError(enums.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, nil)
				})
			p.grantAt(time.Minute)
			p.grantAt(5 * time.Minute)
			if _, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: workflows.DispatchVersion}); err == nil {
				t.Fatal("the dispatch succeeded")
			}
			var n int
			record(func() { n = calls })
			if n != 1 {
				t.Errorf("%d calls, want 1: its one attempt", n)
			}
		})
	}
}

// TestGatedCallOutlastsAnOutageOfTemporal: Temporal that does not take a
// permit request for minutes (a frontend restarting, a namespace rate
// limit) delays the call; it does not fail it. The request is asked
// again with the same id, which the gate takes as a no-op when it has it,
// and no release is reported: the request may have landed. Before
// dispatchV8 the request was retried for ten seconds and the action
// failed for good without a call (the run of version 7 shows it).
func TestGatedCallOutlastsAnOutageOfTemporal(t *testing.T) {
	for _, tt := range []struct {
		version int
		want    string
	}{
		{workflows.DispatchVersion, "t1:succeeded:1:"},
		{7, "t1:failed:0:Timeout"},
	} {
		t.Run(fmt.Sprint("version ", tt.version), func(t *testing.T) {
			env := newEnv(t, gatedConfig(nil))
			var tries []time.Duration
			var ids []string
			const down = 5 * time.Minute
			env.OnActivity(workflows.ActivityRequestPermit, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in workflows.RequestPermitInput) (string, error) {
					at := env.Now().Sub(t0)
					record(func() { tries = append(tries, at); ids = append(ids, in.Request.ID) })
					if at < down {
						return "", temporal.NewApplicationError("asking the gate: unavailable", "GateUnavailable")
					}
					return in.Request.RunID, nil
				})
			granted := false
			env.RegisterDelayedCallback(func() {
				var id string
				record(func() {
					if n := len(tries); n > 0 && tries[n-1] >= down {
						id, granted = ids[n-1], true
					}
				})
				if granted {
					env.SignalWorkflow(workflows.SignalPermit, workflows.PermitGrant{RequestID: id, Expires: env.Now().Add(time.Hour)})
				}
			}, down+2*time.Minute)
			var reports []string
			env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", workflows.SignalGateDone, mock.Anything).Return(
				func(_, _, _, _ string, arg any) error {
					record(func() { reports = append(reports, arg.(workflows.PermitDone).Result) })
					return nil
				})
			env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(taskOK)
			res, _ := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Version: tt.version})
			if got := summary(res.Outcomes); !strings.HasPrefix(got, tt.want) {
				t.Errorf("outcomes = %q, want %q (requests at %v)", got, tt.want, tries)
			}
			if tt.version < workflows.DispatchVersion {
				return
			}
			record(func() {
				if slices.Contains(reports, workflows.PermitReleased) || !granted {
					t.Errorf("reports %v, granted %v: want no release, and the permit of a request made after the outage", reports, granted)
				}
				if slices.ContainsFunc(ids, func(id string) bool { return id != ids[0] }) {
					t.Errorf("request ids %v: the same request is asked again", ids)
				}
			})
		})
	}
}

// TestGatedCallShowsAnotherFailure: while a gated call waits for its
// permit, an action of its dispatch that failed for good is upserted at
// once (dispatchV17), as while another retries. Before, the failure
// showed when the dispatch closed, however long the permit took (an open
// circuit: hours).
func TestGatedCallShowsAnotherFailure(t *testing.T) {
	cfg := gatedConfig(nil)
	cfg.Dispatchers[0].Actions = append(cfg.Dispatchers[0].Actions, taskAction("t2", "missing"))
	env := newEnv(t, cfg)
	p := newPermits(env)
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(taskOK)
	p.grantAt(3 * time.Hour)
	shown := failureShown(env, "[t2]")
	res, _ := runDispatch(t, env, workflows.DispatchInput{Event: testEvent(), Config: &cfg, Version: workflows.DispatchVersion})
	if got, want := summary(res.Outcomes), "t1:succeeded:1: t2:failed:0:ConfigNotFound"; got != want {
		t.Fatalf("outcomes = %q, want %q", got, want)
	}
	if shown.IsZero() || !shown.Before(t0.Add(time.Hour)) {
		t.Errorf("the failure was upserted at %v, want while the call waited for its permit, three hours", shown)
	}
}

package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// gateFake drives a Gate in the test environment: it sends the requests
// and reports a dispatch would, records the permits the gate signals, and
// serves the function's flow control, which a test may change.
type gateFake struct {
	t      *testing.T
	env    *testsuite.TestWorkflowEnvironment
	flow   dispatcher.Flow
	grants []gateGrant
	reads  int            // of the flow control
	order  map[string]int // of the requests
	// reply, when set, answers each permit's signal (its nth of the
	// request's id): an error is a permit that did not reach its dispatch.
	reply func(id string, n int) error
	// failReads fails that many reads of the flow control, the first.
	failReads int
}

type gateGrant struct {
	id    string
	probe bool
	runID string        // the run the permit went to; "" the current one
	at    time.Duration // after t0
	slot  time.Duration // after t0; 0 without a rate limit
	// expires is when the permit's lease expires, after t0.
	expires time.Duration
}

func newGateEnv(t *testing.T, flow dispatcher.Flow) *gateFake {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: dispatcher.GateWorkflowID("", "erase")})
	register(env, nil, nil, nil)
	f := &gateFake{t: t, env: env, flow: flow, order: map[string]int{}}
	env.OnActivity(workflows.ActivityFunctionFlow, mock.Anything, dispatcher.FunctionFlowInput{Name: "erase"}).Return(
		func(context.Context, dispatcher.FunctionFlowInput) (dispatcher.Flow, error) {
			var fl dispatcher.Flow
			var fail bool
			record(func() { fl = f.flow; f.reads++; fail = f.reads <= f.failReads })
			if fail {
				return dispatcher.Flow{}, errors.New("the store is unavailable")
			}
			return fl, nil
		})
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, workflows.SignalPermit, mock.Anything).Return(
		func(_, workflowID, runID, _ string, arg any) error {
			p := arg.(workflows.PermitGrant)
			if workflowID != "dispatch-"+p.RequestID {
				t.Errorf("the permit of %s went to %s", p.RequestID, workflowID)
			}
			at, slot := env.Now().Sub(t0), time.Duration(0)
			if !p.NotBefore.IsZero() {
				slot = p.NotBefore.Sub(t0)
			}
			var n int
			record(func() {
				f.grants = append(f.grants, gateGrant{id: p.RequestID, runID: runID, probe: p.Probe, at: at, slot: slot, expires: p.Expires.Sub(t0)})
				for _, g := range f.grants {
					if g.id == p.RequestID {
						n++
					}
				}
			})
			if f.reply != nil {
				return f.reply(p.RequestID, n)
			}
			return nil
		})
	return f
}

// at runs fn at d after the start.
func (f *gateFake) at(d time.Duration, fn func()) { f.env.RegisterDelayedCallback(fn, d) }

// request sends a request for each id at d, each with lease.
func (f *gateFake) request(d, lease time.Duration, ids ...string) {
	f.at(d, func() {
		for _, id := range ids {
			record(func() { f.order[id] = len(f.order) })
			f.env.SignalWorkflow(workflows.SignalGateRequest, workflows.PermitRequest{ID: id, WorkflowID: "dispatch-" + id, Lease: lease})
		}
	})
}

// ask sends at d the request "a" of the dispatch's run runID, as a
// dispatch that a reset gave a new run asks again with the same id.
func (f *gateFake) ask(d time.Duration, runID string) {
	f.at(d, func() {
		f.env.SignalWorkflow(workflows.SignalGateRequest, workflows.PermitRequest{ID: "a", WorkflowID: "dispatch-a", RunID: runID, Lease: time.Hour})
	})
}

// done reports at d how the calls of ids ended.
func (f *gateFake) done(d time.Duration, result string, ids ...string) {
	f.at(d, func() {
		for _, id := range ids {
			f.env.SignalWorkflow(workflows.SignalGateDone, workflows.PermitDone{RequestID: id, Result: result})
		}
	})
}

// granted returns the ids granted so far, in the order they were: by
// time, and in one workflow task by request order (the mock records the
// signals of one task in any order).
func (f *gateFake) granted() []string {
	var ids []string
	record(func() {
		slices.SortStableFunc(f.grants, func(a, b gateGrant) int {
			if a.at != b.at {
				return int(a.at - b.at)
			}
			return f.order[a.id] - f.order[b.id]
		})
		for _, g := range f.grants {
			ids = append(ids, g.id)
		}
	})
	return ids
}

// expect checks at d that exactly ids have been granted, in order.
func (f *gateFake) expect(d time.Duration, ids ...string) {
	f.at(d, func() {
		f.t.Helper()
		if got := f.granted(); !slices.Equal(got, ids) {
			f.t.Errorf("at %v: granted %v, want %v", d, got, ids)
		}
	})
}

func (f *gateFake) state() dispatcher.FlowState {
	f.t.Helper()
	v, err := f.env.QueryWorkflow(workflows.QueryGate)
	if err != nil {
		f.t.Fatal(err)
	}
	var st dispatcher.FlowState
	if err := v.Get(&st); err != nil {
		f.t.Fatal(err)
	}
	return st
}

// run runs the gate until it completes, idle, failing the test if it
// has not within a minute of real time (a gate that spins, or waits for
// nothing).
func (f *gateFake) run() {
	f.t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.env.ExecuteWorkflow(workflows.WorkflowGate, workflows.GateInput{Function: "erase"})
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		f.t.Fatal("the gate has not completed after a minute of real time")
	}
	if !f.env.IsWorkflowCompleted() {
		f.t.Fatal("the gate did not complete")
	}
	if err := f.env.GetWorkflowError(); err != nil {
		f.t.Fatalf("the gate failed: %v", err)
	}
}

// continuedAsNew runs the gate from state (nil: a new gate) until it
// continues as new, and returns how, with the input of its next run.
func (f *gateFake) continuedAsNew(state *workflows.GateState) (*workflow.ContinueAsNewError, workflows.GateInput) {
	f.t.Helper()
	f.env.ExecuteWorkflow(workflows.WorkflowGate, workflows.GateInput{Function: "erase", State: state})
	var can *workflow.ContinueAsNewError
	if err := f.env.GetWorkflowError(); !errors.As(err, &can) {
		f.t.Fatalf("error = %v, want ContinueAsNew", err)
	}
	var next workflows.GateInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		f.t.Fatal(err)
	}
	return can, next
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(prefix, i)
	}
	return out
}

// TestGateRateLimit: 20 calls asked at once of a function limited to 5 a
// second get slots 200 ms apart, on workflow time: never more than 5 in
// any second. Each permit goes between one and two seconds before its
// slot (Temporal timers fire on whole seconds: the gate grants a second's
// worth each time it wakes, with room for the permit's way to its call).
// With a burst, that many go at once first.
func TestGateRateLimit(t *testing.T) {
	for _, tt := range []struct {
		name  string
		rate  dispatcher.RateLimit
		first int // permits at once
		every time.Duration
	}{
		{"no burst", dispatcher.RateLimit{PerSecond: 5, Burst: 1}, 1, 200 * time.Millisecond},
		{"a burst of 3", dispatcher.RateLimit{PerSecond: 2, Burst: 3}, 3, 500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newGateEnv(t, dispatcher.Flow{RateLimit: &tt.rate})
			all := ids("r", 20)
			f.request(time.Millisecond, time.Hour, all...)
			f.done(time.Minute, workflows.PermitOK, all...)
			f.run()
			if got := f.granted(); !slices.Equal(got, all) {
				t.Fatalf("granted %v, want %v in order", got, all)
			}
			// The fake sees a permit when the test environment delivers
			// its signal, which on a loaded machine can be a millisecond
			// or two of its clock after the gate computed the slot (a CI
			// run saw permit 0 at 2 ms for the slot 1.001 s).
			const delivery = 10 * time.Millisecond
			for i, g := range f.grants {
				want := time.Millisecond + time.Second // the slot lead
				if i >= tt.first {
					want += time.Duration(i-tt.first+1) * tt.every
				}
				if g.slot != want || g.slot-g.at < time.Second-delivery || g.slot-g.at >= 2*time.Second {
					t.Errorf("permit %d sent at %v for the slot %v, want the slot %v, sent 1 to 2 s before it", i, g.at, g.slot, want)
				}
			}
			for i := range f.grants {
				in := 0
				for _, g := range f.grants[i:] {
					if g.slot-f.grants[i].slot < time.Second {
						in++
					}
				}
				if limit := int(tt.rate.PerSecond) + tt.rate.Burst - 1; in > limit {
					t.Errorf("%d permits within a second of permit %d, want at most %d", in, i, limit)
				}
			}
		})
	}
}

// TestGateConcurrency: with maxConcurrency 2, a third permit goes only
// when a call reports its end, in the order the requests came.
func TestGateConcurrency(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 2})
	f.request(time.Millisecond, time.Hour, ids("r", 5)...)
	f.expect(time.Second, "r0", "r1")
	f.at(time.Second, func() {
		if st := f.state(); st.Waiting != 3 || st.InFlight != 2 || st.State != dispatcher.FlowClosed || !near(st.OldestWaiting, t0.Add(time.Millisecond)) {
			t.Errorf("state %+v, want 3 waiting since t0+1ms and 2 in flight", st)
		}
	})
	f.done(2*time.Second, workflows.PermitOK, "r0")
	f.expect(3*time.Second, "r0", "r1", "r2")
	f.done(4*time.Second, workflows.PermitFailed, "r1", "r2")
	f.expect(5*time.Second, "r0", "r1", "r2", "r3", "r4")
	f.done(6*time.Second, workflows.PermitOK, "r3", "r4")
	f.run()
}

// TestGateLeaseReclaimed: a permit whose dispatch never reports is
// reclaimed when its lease expires, and the next call goes; a late report
// of it changes nothing. Each permit says when its lease expires, so that
// a dispatch that takes it too late makes no call (TaskInput.PermitExpires).
func TestGateLeaseReclaimed(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1})
	f.request(time.Millisecond, 30*time.Second, "dead")
	f.request(2*time.Millisecond, time.Hour, "next")
	f.expect(30*time.Second, "dead")
	f.expect(31*time.Second, "dead", "next")
	f.at(31*time.Second, func() {
		record(func() {
			// When it was granted plus its lease: not the times requested,
			// for the test clock moves on by the wall clock while the Gate
			// reads the function's flow (1 ms between the requests), nor
			// when the test saw the signal, which may be a millisecond
			// later.
			for _, g := range f.grants {
				want := g.slot + map[string]time.Duration{"dead": 30 * time.Second, "next": time.Hour}[g.id]
				if g.expires != want || g.slot > g.at || g.at-g.slot > 10*time.Millisecond {
					t.Errorf("the permit of %s, granted at %v and sent at %v, expires at %v, want %v", g.id, g.slot, g.at, g.expires, want)
				}
			}
		})
	})
	f.at(31*time.Second, func() {
		if st := f.state(); st.InFlight != 1 || st.Waiting != 0 {
			t.Errorf("state %+v, want the next call in flight and nothing waiting", st)
		}
	})
	f.done(32*time.Second, workflows.PermitOK, "dead")
	f.at(33*time.Second, func() {
		if st := f.state(); st.InFlight != 1 {
			t.Errorf("the late report of a reclaimed permit ended another's: %+v", st)
		}
	})
	f.done(34*time.Second, workflows.PermitOK, "next")
	f.run()
}

// A signal whose payload does not decode (garbage sent from the CLI) is
// dropped without holding up the Gate: the lease it holds still expires
// and the next call is granted. Before, the Gate waited in the request
// channel's Receive for the next valid request, and its timers with it.
func TestGateDropsGarbageSignals(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1})
	f.request(time.Millisecond, 30*time.Second, "dead")
	f.request(2*time.Millisecond, time.Hour, "next")
	f.at(10*time.Second, func() {
		f.env.SignalWorkflow(workflows.SignalGateRequest, "garbage")
		f.env.SignalWorkflow(workflows.SignalGateDone, 42)
	})
	f.expect(31*time.Second, "dead", "next")
	f.done(32*time.Second, workflows.PermitOK, "next")
	f.run()
}

// near reports whether got is want or up to 10 ms later: the test
// environment's clock may move a millisecond while a signal is handled.
func near(got, want time.Time) bool { return !got.Before(want) && got.Sub(want) <= 10*time.Millisecond }

// TestGateCircuitBreaker: three consecutive failures within the window
// open the circuit; nothing goes until the probe interval has passed,
// then exactly one probe; its failure opens it again for another
// interval, its success closes it and the waiting calls go on. Waiting
// calls are never dropped.
func TestGateCircuitBreaker(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1,
		CircuitBreaker: &dispatcher.CircuitBreaker{Failures: 3, Window: time.Minute, ProbeInterval: 10 * time.Second}})
	f.request(time.Millisecond, time.Hour, ids("r", 6)...)
	f.done(1*time.Second, workflows.PermitRetryable, "r0")
	f.done(2*time.Second, workflows.PermitRetryable, "r1")
	f.done(3*time.Second, workflows.PermitRetryable, "r2") // opens it: the next probe at 13 s
	f.expect(12*time.Second, "r0", "r1", "r2")
	f.at(12*time.Second, func() {
		st := f.state()
		if st.State != dispatcher.FlowOpen || st.Waiting != 3 || st.InFlight != 0 ||
			!near(st.OpenedAt, t0.Add(3*time.Second)) || !st.NextProbe.Equal(st.OpenedAt.Add(10*time.Second)) {
			t.Errorf("state %+v, want open since 3s, next probe at 13s, 3 waiting", st)
		}
	})
	f.expect(14*time.Second, "r0", "r1", "r2", "r3")
	f.done(14*time.Second, workflows.PermitRetryable, "r3") // the probe failed: open until 24 s
	f.expect(23*time.Second, "r0", "r1", "r2", "r3")
	f.expect(24*time.Second+time.Millisecond, "r0", "r1", "r2", "r3", "r4")
	f.done(25*time.Second, workflows.PermitOK, "r4") // the probe succeeded: closed
	f.expect(26*time.Second, "r0", "r1", "r2", "r3", "r4", "r5")
	f.at(26*time.Second, func() {
		if st := f.state(); st.State != dispatcher.FlowClosed || st.InFlight != 1 {
			t.Errorf("state %+v, want closed with the last call in flight", st)
		}
	})
	f.done(27*time.Second, workflows.PermitOK, "r5")
	f.run()
	// Each probe when its interval has passed, give or take the
	// millisecond the test environment's clock may move while a report
	// is handled (a probe at 24.001 s after a failure reported at 14 s
	// failed a CI run).
	var probes []string
	ok := true
	want := map[string]time.Duration{"r3": 13 * time.Second, "r4": 24 * time.Second}
	for _, g := range f.grants {
		if g.probe {
			probes = append(probes, fmt.Sprintf("%s@%v", g.id, g.at))
			at, isProbe := want[g.id]
			ok = ok && isProbe && near(t0.Add(g.at), t0.Add(at))
		}
	}
	if !ok || len(probes) != len(want) {
		t.Errorf("probes %v, want r3 at 13s and r4 at 24s", probes)
	}
}

// TestGateProbeIntervalChanged: a probe interval changed while the
// circuit is open reaches its next probe within flowRefresh: lowered,
// the probe comes as the new interval says from the opening; before, it
// waited for the old interval's (an hour here, up to a day). Raised, it
// waits longer.
func TestGateProbeIntervalChanged(t *testing.T) {
	breaker := func(probe time.Duration) dispatcher.Flow {
		return dispatcher.Flow{MaxConcurrency: 1, CircuitBreaker: &dispatcher.CircuitBreaker{Failures: 1, Window: time.Minute, ProbeInterval: probe}}
	}
	f := newGateEnv(t, breaker(time.Hour))
	f.request(time.Millisecond, 3*time.Hour, "a", "b", "c")
	f.done(time.Second, workflows.PermitRetryable, "a") // opens it: the next probe at 1h0m1s
	f.at(time.Minute, func() { record(func() { f.flow = breaker(5 * time.Second) }) })
	f.expect(time.Minute+11*time.Second, "a", "b") // b, the probe, within 10 s
	f.at(90*time.Second, func() { record(func() { f.flow = breaker(30 * time.Second) }) })
	f.done(2*time.Minute, workflows.PermitRetryable, "b") // fails: open again, the probe at 2m30s
	f.at(2*time.Minute+time.Second, func() { record(func() { f.flow = breaker(2 * time.Hour) }) })
	f.expect(time.Hour, "a", "b") // raised: not at 2m30s
	f.expect(2*time.Hour+2*time.Minute+time.Millisecond, "a", "b", "c")
	f.done(2*time.Hour+3*time.Minute, workflows.PermitOK, "c")
	f.run()
}

// TestGateCircuitStreaks: failures count only when consecutive and within
// the window; an answer that refuses for good ends a streak.
func TestGateCircuitStreaks(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1,
		CircuitBreaker: &dispatcher.CircuitBreaker{Failures: 2, Window: 10 * time.Second, ProbeInterval: time.Hour}})
	f.request(time.Millisecond, time.Hour, ids("r", 6)...)
	f.done(1*time.Second, workflows.PermitRetryable, "r0")
	f.done(20*time.Second, workflows.PermitRetryable, "r1") // 19 s after the first: outside the window
	f.done(21*time.Second, workflows.PermitFailed, "r2")    // an answer: the streak ends
	f.done(22*time.Second, workflows.PermitRetryable, "r3")
	f.done(23*time.Second, workflows.PermitReleased, "r4") // no call: no news
	f.done(24*time.Second, workflows.PermitOK, "r5")
	f.at(25*time.Second, func() {
		if got := f.granted(); len(got) != 6 {
			t.Errorf("granted %v: the circuit opened", got)
		}
	})
	f.run()
}

// TestGatePaused: nothing goes before pausedUntil; a change to it reaches
// the gate within flowRefresh, without a restart.
func TestGatePaused(t *testing.T) {
	until := t0.Add(time.Hour)
	f := newGateEnv(t, dispatcher.Flow{PausedUntil: &until})
	f.request(time.Millisecond, time.Hour, "a")
	f.expect(30*time.Minute, []string{}...)
	f.at(30*time.Minute, func() {
		if st := f.state(); st.State != dispatcher.FlowPaused || !st.PausedUntil.Equal(until) || st.Waiting != 1 {
			t.Errorf("state %+v, want paused until %v with one call waiting", st, until)
		}
	})
	f.request(31*time.Minute, time.Hour, "b")
	f.expect(59*time.Minute, []string{}...)
	f.expect(time.Hour+time.Millisecond, "a", "b")
	f.done(time.Hour+time.Second, workflows.PermitOK, "a", "b")

	// Taken off early: the calls go within flowRefresh.
	later := t0.Add(2 * time.Hour)
	f.at(90*time.Minute, func() { record(func() { f.flow = dispatcher.Flow{PausedUntil: &later} }) })
	f.request(91*time.Minute, time.Hour, "c")
	f.at(100*time.Minute, func() { record(func() { f.flow = dispatcher.Flow{} }) })
	f.expect(100*time.Minute+10*time.Second+time.Millisecond, "a", "b", "c")
	f.done(101*time.Minute, workflows.PermitOK, "c")
	f.run()
	for _, g := range f.grants {
		if g.id == "c" && (g.at < 100*time.Minute || g.at > 100*time.Minute+10*time.Second) {
			t.Errorf("c went at %v, want within 10s of the unpause at 100m", g.at)
		}
	}
}

// TestGateRateRaised: calls held by a slow rate go at the new one once it
// is raised, within flowRefresh; before, they waited for the old rate's
// next slot (100 s here, 16 years for a mistaken 2e-9). Lowered, the
// next call keeps the new rate's distance.
func TestGateRateRaised(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 0.01, Burst: 1}})
	f.request(time.Millisecond, time.Hour, "a", "b", "c")
	f.expect(20*time.Second, "a")
	f.at(30*time.Second, func() {
		record(func() { f.flow = dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 100, Burst: 1}} })
	})
	f.expect(42*time.Second, "a", "b", "c")
	f.done(43*time.Second, workflows.PermitOK, "a", "b", "c")
	// Lowered to one a minute: d, asked after c, waits a minute after it.
	f.at(50*time.Second, func() {
		record(func() { f.flow = dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 1.0 / 60, Burst: 1}} })
	})
	f.request(51*time.Second, time.Hour, "d", "e")
	f.done(5*time.Minute, workflows.PermitOK, "d", "e")
	f.run()
	if got := f.granted(); !slices.Equal(got, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("granted %v", got)
	}
	slots := map[string]time.Duration{}
	for _, g := range f.grants {
		slots[g.id] = g.slot
	}
	if d := slots["e"] - slots["d"]; d != time.Minute {
		t.Errorf("d's slot %v, e's %v: %v apart, want a minute at the lowered rate", slots["d"], slots["e"], d)
	}
}

// TestGateRateRaisedAfterPermitsAhead: the permits a gate granted ahead
// at the old rate keep their slots when the rate is raised, and the new
// rate's slots follow the last of them. Before, the new rate began at
// once, beside those slots: raised from 1 to 5 a second, a call went
// 93 ms before one granted at the old rate, 7 calls in a second.
func TestGateRateRaisedAfterPermitsAhead(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 1, Burst: 1}})
	calls := ids("r", 30)
	f.request(time.Millisecond, time.Hour, calls...)
	f.at(5300*time.Millisecond, func() {
		record(func() { f.flow = dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 5, Burst: 1}} })
	})
	f.done(time.Minute, workflows.PermitOK, calls...)
	f.run()
	var slots []time.Duration
	for _, g := range f.grants {
		slots = append(slots, g.slot)
	}
	slices.Sort(slots)
	if len(slots) != len(calls) || slots[len(slots)-1]-slots[0] > 30*time.Second {
		t.Fatalf("slots %v: want all %d calls made, most at the raised rate", slots, len(calls))
	}
	for i := 1; i < len(slots); i++ {
		if d := slots[i] - slots[i-1]; d < 200*time.Millisecond {
			t.Errorf("slots %v and %v are %v apart: under the raised rate's 200ms", slots[i-1], slots[i], d)
		}
	}
}

// TestGateRateLoweredWhileACallRuns: a rate lowered while a call runs
// gives the next call the same slot whether that call has reported or
// not: only the permits waiting for a slot ahead hold the new rate back.
// Before (a review), a call still running put the next an hour after its
// slot, one that had reported 33 minutes after the change.
func TestGateRateLoweredWhileACallRuns(t *testing.T) {
	slots := map[time.Duration]time.Duration{}
	for _, doneAt := range []time.Duration{5 * time.Second, 30 * time.Second} {
		f := newGateEnv(t, dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 0.05, Burst: 1}})
		f.request(time.Millisecond, time.Hour, "r0", "r1")
		f.at(5*time.Second, func() {
			record(func() { f.flow = dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 1.0 / 3600, Burst: 1}} })
		})
		f.done(doneAt, workflows.PermitOK, "r0")
		f.done(3*time.Hour, workflows.PermitOK, "r1")
		f.run()
		for _, g := range f.grants {
			if g.id == "r1" {
				slots[doneAt] = g.slot
			}
		}
	}
	if len(slots) != 2 || slots[5*time.Second] != slots[30*time.Second] {
		t.Errorf("r1's slot %v with r0 reported at 5s, %v with r0 reported at 30s: want the same", slots[5*time.Second], slots[30*time.Second])
	}
}

// TestGateWaitingGivenUp: a dispatch canceled while it waits gives its
// request up: it never gets a permit.
func TestGateWaitingGivenUp(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1})
	f.request(time.Millisecond, time.Hour, "a", "gone", "b")
	f.done(time.Second, workflows.PermitReleased, "gone")
	f.done(2*time.Second, workflows.PermitOK, "a")
	f.expect(3*time.Second, "a", "b")
	f.done(4*time.Second, workflows.PermitOK, "b")
	f.run()
}

// TestGateContinuesAsNew: a gate whose history grew long continues as
// new with its waiting calls, permits out and circuit.
func TestGateContinuesAsNew(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1, RateLimit: &dispatcher.RateLimit{PerSecond: 1, Burst: 1}})
	f.request(time.Millisecond, time.Hour, ids("r", 30)...)
	for i := range 30 {
		f.done(time.Duration(i)*time.Second+500*time.Millisecond, workflows.PermitOK, fmt.Sprint("r", i))
	}
	f.at(5200*time.Millisecond, func() { f.env.SetContinueAsNewSuggested(true) })
	f.request(5200*time.Millisecond, time.Hour, "late") // wakes it
	can, next := f.continuedAsNew(nil)
	st := next.State
	if can.WorkflowType.Name != workflows.WorkflowGate || next.Function != "erase" || st == nil {
		t.Fatalf("continued as %s with %+v", can.WorkflowType.Name, next)
	}
	granted := f.granted()
	if len(granted) != 6 || len(st.Waiting) != 25 || st.Waiting[0].ID != "r6" || st.Waiting[24].ID != "late" ||
		len(st.Leases) != 1 || st.Leases[0].ID != "r5" ||
		st.Flow.MaxConcurrency != 1 || !st.TAT.Equal(st.Leases[0].NotBefore.Add(time.Second)) {
		t.Fatalf("carried %d waiting (first %+v), %d leases, flow %+v after %d permits", len(st.Waiting), st.Waiting[0], len(st.Leases), st.Flow, len(granted))
	}
}

// TestGateWaitingBounded: a gate full of waiting calls takes no more, so
// its ContinueAsNew input stays within Temporal's limit; the dispatch of
// one not taken asks again later. Before, the list grew until the server
// terminated the gate, circuit and queue with it.
func TestGateWaitingBounded(t *testing.T) {
	until := t0.Add(time.Hour)
	f := newGateEnv(t, dispatcher.Flow{PausedUntil: &until})
	full := &workflows.GateState{Flow: f.flow, FlowRead: t0}
	for _, id := range ids("w", workflows.MaxGateWaiting) {
		full.Waiting = append(full.Waiting, workflows.PermitRequest{ID: id, WorkflowID: "dispatch-" + id, Lease: time.Hour, At: t0})
	}
	f.request(time.Second, time.Hour, "over")
	f.at(2*time.Second, func() { f.env.SetContinueAsNewSuggested(true) })
	f.request(2*time.Second, time.Hour, "w0") // wakes it; waits already
	can, next := f.continuedAsNew(full)
	if w := next.State.Waiting; len(w) != workflows.MaxGateWaiting || w[len(w)-1].ID == "over" {
		t.Fatalf("carried %d waiting, the last %q; want %d, without the one over", len(w), w[len(w)-1].ID, workflows.MaxGateWaiting)
	}
	if size := len(can.Input.GetPayloads()[0].GetData()); size > 1<<20 {
		t.Fatalf("the ContinueAsNew input is %d bytes, want under 1 MiB (Temporal refuses 2)", size)
	}
}

// TestGateBoundedInBytes: what a Gate holds is bounded in bytes too, as
// its requests' IDs are as long as their events' ids (some 500 bytes with
// a tenant and a 128-character id): with such ids, fewer than
// MaxGateWaiting requests, or permits out at a high rate, passed
// Temporal's 2 MiB limit on the ContinueAsNew input, which terminated the
// Gate with its circuit and queue. A request over MaxGateWaitingBytes is
// not taken (its dispatch asks again); past MaxGateLeaseBytes no permit
// goes until permits out end, here by expiring.
func TestGateBoundedInBytes(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{})
	full := overBounds(t, t0, t0.Add(10*time.Second))
	f.request(time.Second, time.Hour, "over")
	f.at(9*time.Second, func() {
		if n := len(f.granted()); n > 0 {
			t.Errorf("%d permits went while the leases out took all the room there is", n)
		}
	})
	f.at(12*time.Second, func() {
		if len(f.granted()) == 0 {
			t.Error("no permit went once the leases out had expired")
		}
		f.env.SetContinueAsNewSuggested(true)
	})
	f.done(12*time.Second, workflows.PermitOK, "nobody") // wakes it
	can, next := f.continuedAsNew(full)

	st := next.State
	if slices.ContainsFunc(st.Waiting, func(r workflows.PermitRequest) bool { return r.ID == "over" }) {
		t.Error("the gate took a request over its bytes")
	}
	if got := len(st.Waiting) + len(st.Leases); got != len(full.Waiting) {
		t.Errorf("carried %d waiting and %d leases, want the %d requests it held", len(st.Waiting), len(st.Leases), len(full.Waiting))
	}
	if len(st.Leases) != len(f.granted()) || jsonSize(t, st.Leases) > workflows.MaxGateLeaseBytes {
		t.Errorf("carried %d leases of %d bytes after %d permits; want the permits, within %d bytes",
			len(st.Leases), jsonSize(t, st.Leases), len(f.granted()), workflows.MaxGateLeaseBytes)
	}
	if n := len(can.Input.GetPayloads()[0].GetData()); n > 2*(1<<20)-(1<<18) {
		t.Fatalf("the ContinueAsNew input is %d bytes, want it well under 2 MiB", n)
	}
}

// overBounds returns a gate's state at at whose waiting requests and
// permits out (expiring at expires) are each a little over their bytes,
// their ids as long as a tenant's 128-character event ids make them.
func overBounds(t testing.TB, at, expires time.Time) *workflows.GateState {
	long := strings.Repeat("x", 400)
	request := func(id string) workflows.PermitRequest {
		id += "-" + long
		return workflows.PermitRequest{ID: id, WorkflowID: "dispatch-" + id, Lease: time.Hour, At: at}
	}
	lease := func(id string) workflows.Lease {
		return workflows.Lease{PermitRequest: request(id), Expires: expires, NotBefore: at}
	}
	st := &workflows.GateState{FlowRead: at}
	for _, id := range ids("w", workflows.MaxGateWaitingBytes/jsonSize(t, request("w0"))+1) {
		st.Waiting = append(st.Waiting, request(id))
	}
	for _, id := range ids("l", workflows.MaxGateLeaseBytes/jsonSize(t, lease("l0"))+1) {
		st.Leases = append(st.Leases, lease(id))
	}
	return st
}

// jsonSize is the size of v in JSON.
func jsonSize(t testing.TB, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// TestGateSettlesPermitsSentAgain: a permit sent again while the gate
// settles before continuing as new (its dispatch asked again, having
// waited long) is delivered, or known lost, before the run ends. Before,
// the gate continued as new in the task that sent it, and Temporal drops
// a signal from a closed run: the dispatch waited for its next request,
// minutes later, its lease held all the while.
func TestGateSettlesPermitsSentAgain(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1})
	f.reply = func(id string, n int) error {
		switch n {
		case 2: // on its way while the gate settles, the dispatch asks again
			f.env.SignalWorkflow(workflows.SignalGateRequest, workflows.PermitRequest{ID: id, WorkflowID: "dispatch-" + id, Lease: time.Hour})
		case 3: // the permit sent again then does not arrive: the dispatch
			// is gone, maybe calling, and its lease is left to expire
			return errors.New("the dispatch is gone")
		}
		return nil
	}
	f.request(time.Millisecond, time.Hour, "a")
	f.at(90*time.Second, func() { // between two reads of the flow control
		// The dispatch asks again (the permit goes again), and the gate is
		// to continue as new: it settles with that permit on its way.
		f.env.SignalWorkflow(workflows.SignalGateRequest, workflows.PermitRequest{ID: "a", WorkflowID: "dispatch-a", Lease: time.Hour})
		f.env.SetContinueAsNewSuggested(true)
	})
	_, next := f.continuedAsNew(nil)
	if got := f.granted(); len(got) != 3 || len(next.State.Leases) != 1 || !next.State.Leases[0].Delivered {
		t.Fatalf("carried the leases %+v after %v were sent, want a's, delivered, after 3 sends", next.State.Leases, got)
	}
}

// A cancel of a Gate (from the Web UI or CLI) is ignored: the gate goes
// on granting as its function's limits allow, and completes once idle.
// Before, every timer it made on the canceled context was ready at once,
// and its loop spun without end: nothing more was granted, and a workflow
// task never completed.
func TestGateIgnoresACancel(t *testing.T) {
	until := t0.Add(time.Hour)
	f := newGateEnv(t, dispatcher.Flow{PausedUntil: &until})
	f.request(time.Millisecond, time.Hour, "a")
	f.at(time.Minute, f.env.CancelWorkflow)
	f.expect(time.Hour - time.Second)
	f.expect(time.Hour+time.Second, "a")
	f.done(time.Hour+time.Minute, workflows.PermitOK, "a")
	f.run()
}

// A gate that cannot read its function's flow control grants nothing
// until it can, and tries again a second later. Before, a failed first
// read left the zero Flow, and the gate granted every waiting call at
// once, however paused or limited the function.
func TestGateGrantsNothingUnread(t *testing.T) {
	until := t0.Add(time.Hour)
	f := newGateEnv(t, dispatcher.Flow{PausedUntil: &until, MaxConcurrency: 1})
	f.failReads = 3
	f.request(time.Millisecond, time.Hour, "a", "b")
	f.expect(time.Minute) // read at the fourth try, a few seconds in: paused
	f.at(time.Minute, func() {
		if st := f.state(); st.State != dispatcher.FlowPaused || f.reads < 4 {
			t.Errorf("after a minute: %s, %d reads; want paused, read at the fourth", st.State, f.reads)
		}
	})
	f.expect(time.Hour+time.Second, "a") // then one at a time
	f.done(time.Hour+time.Minute, workflows.PermitOK, "a")
	f.done(time.Hour+2*time.Minute, workflows.PermitOK, "b")
	f.run()
	if got := f.granted(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("granted %v, want a, then b", got)
	}
}

// A permit goes to the run that asked: a replay of a dispatch is a new
// run with the same workflow ID, which asks with requests of its own.
// Before, the permit of the terminated run's request went to the replay,
// which ignored it, and its lease held a slot until it expired.
func TestGatePermitGoesToTheRunThatAsked(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1})
	f.ask(time.Millisecond, "run-1")
	f.done(time.Minute, workflows.PermitOK, "a")
	f.run()
	if len(f.grants) != 1 || f.grants[0].runID != "run-1" {
		t.Errorf("grants %+v, want one to run-1", f.grants)
	}
}

// A request that comes again from another run of its dispatch — a reset,
// whose new run has the same request ids — takes its place in the queue
// and its permit goes to the run that asked last. Before, the gate kept
// the first run's id: the permit went to a run the reset had terminated,
// and the new run waited for its next request, ten minutes later.
func TestGatePermitGoesToTheResetRun(t *testing.T) {
	until := t0.Add(time.Hour)
	f := newGateEnv(t, dispatcher.Flow{PausedUntil: &until})
	f.ask(time.Millisecond, "run-1")
	f.ask(time.Minute, "run-2") // the reset's run, while run-1's request waits
	f.done(time.Hour+time.Minute, workflows.PermitOK, "a")
	f.run()
	if len(f.grants) != 1 || f.grants[0].runID != "run-2" {
		t.Errorf("grants %+v, want one, to run-2", f.grants)
	}
}

// The same for a permit already out when the reset's run asks: it goes
// again, to the new run, and the old run's permit failing to arrive does
// not end the lease the new run now holds.
func TestGateLeaseMovesToTheResetRun(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1})
	f.reply = func(id string, n int) error {
		if id == "a" && n == 1 {
			// run-1 is gone by the time its permit is delivered, and
			// run-2 has asked meanwhile.
			f.env.SignalWorkflow(workflows.SignalGateRequest, workflows.PermitRequest{ID: id, WorkflowID: "dispatch-" + id, RunID: "run-2", Lease: time.Hour})
			return errors.New("workflow execution already completed")
		}
		return nil
	}
	f.ask(time.Millisecond, "run-1")
	f.request(2*time.Second, time.Hour, "b") // waits for a's lease to end
	f.at(time.Minute, func() {
		if st := f.state(); st.InFlight != 1 {
			t.Errorf("after a minute %d permits out, want a's, held by run-2", st.InFlight)
		}
	})
	f.expect(time.Minute, "a", "a")
	f.done(2*time.Minute, workflows.PermitOK, "a")
	f.done(3*time.Minute, workflows.PermitOK, "b")
	f.run()
	if len(f.grants) != 3 || f.grants[1].runID != "run-2" {
		t.Errorf("grants %+v, want a to run-1, a to run-2, then b", f.grants)
	}
}

// A request the reset's run ended sends late (its worker retrying the
// signal) does not take the request back from the run that asked since;
// and the newer run waits for the lease of the permit delivered to the
// ended run, whose call may still run (gateMovedWaitsV1). Before, the
// permit went to the newer run at once, beside that call.
func TestGateLateRequestOfAResetRun(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1})
	f.ask(time.Millisecond, "run-1")
	f.request(2*time.Second, time.Hour, "b") // waits for a's lease to end
	f.ask(time.Minute, "run-2")
	f.ask(time.Minute+time.Second, "run-1") // late: its permit, sent again
	f.at(5*time.Minute, func() {
		if st := f.state(); st.InFlight != 1 || st.Waiting != 2 {
			t.Errorf("after 5 minutes %d permits out and %d calls waiting, want run-1's out, run-2's and b waiting", st.InFlight, st.Waiting)
		}
	})
	f.expect(5*time.Minute, "a", "a")
	f.done(10*time.Minute, workflows.PermitOK, "a") // run-1's call ends
	f.expect(10*time.Minute+time.Second, "a", "a", "a")
	f.done(11*time.Minute, workflows.PermitOK, "a") // run-2's
	f.done(12*time.Minute, workflows.PermitOK, "b")
	f.run()
	if len(f.grants) != 4 || f.grants[1].runID != "run-1" || f.grants[2].runID != "run-2" || f.grants[2].at < 10*time.Minute ||
		f.grants[3].id != "b" || f.grants[3].at < 11*time.Minute {
		t.Errorf("grants %+v, want a to run-1 (twice), a to run-2 once run-1's call is done, then b once run-2's is", f.grants)
	}
}

// A reset run's request waits, while its function is paused, even once
// the lease of the run it ended has ended: it takes its turn as any
// request. Before, the permit went to it at once, paused or not.
func TestGateResetRunWaitsForItsTurn(t *testing.T) {
	until := t0.Add(time.Hour)
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1})
	f.ask(time.Millisecond, "run-1")
	f.at(time.Minute, func() { record(func() { f.flow = dispatcher.Flow{MaxConcurrency: 1, PausedUntil: &until} }) })
	f.ask(2*time.Minute, "run-2")
	f.done(3*time.Minute, workflows.PermitOK, "a") // run-1's call ends
	f.expect(30*time.Minute, "a")
	f.done(time.Hour+2*time.Minute, workflows.PermitOK, "a")
	f.run()
	if len(f.grants) != 2 || f.grants[1].runID != "run-2" || f.grants[1].at < time.Hour {
		t.Errorf("grants %+v, want a to run-1, then to run-2 once the pause ended", f.grants)
	}
}

// The report of a run a reset ended, taken in the same task as the new
// run's request of the same id (a reset gate takes its signals again, in
// one task, requests first), leaves that request waiting
// (gateDoneRunV1). Before, it ended it, and its call waited ten minutes
// to ask again.
func TestGateReportOfAnEndedRunLeavesTheNewRequest(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1})
	f.request(time.Millisecond, time.Hour, "b") // holds the only permit
	f.at(time.Second, func() {
		for _, run := range []string{"run-1", "run-2"} {
			f.env.SignalWorkflow(workflows.SignalGateRequest, workflows.PermitRequest{ID: "a", WorkflowID: "dispatch-a", RunID: run, Lease: time.Hour})
		}
		f.env.SignalWorkflow(workflows.SignalGateDone, workflows.PermitDone{RequestID: "a", Result: workflows.PermitReleased, RunID: "run-1"})
	})
	f.done(time.Minute, workflows.PermitOK, "b")
	f.expect(time.Minute+time.Second, "b", "a")
	f.done(2*time.Minute, workflows.PermitOK, "a")
	f.run()
	if len(f.grants) != 2 || f.grants[1].runID != "run-2" {
		t.Errorf("grants %+v, want b, then a to run-2", f.grants)
	}
}

// The newer run that waits for the lease of the run before it, canceled,
// reports; the permit stays with the run it is out to, whose call may
// still be going (gateDoneLeaseV1). Before, that report ended the lease:
// the next call, here c, was permitted beside it, past MaxConcurrency 1.
func TestGateReportOfTheWaitingRunLeavesTheLease(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1})
	f.ask(time.Millisecond, "run-1")
	f.ask(time.Minute, "run-2") // the reset's run: waits for run-1's lease
	f.request(90*time.Second, time.Hour, "c")
	f.at(2*time.Minute, func() {
		f.env.SignalWorkflow(workflows.SignalGateDone, workflows.PermitDone{RequestID: "a", Result: workflows.PermitReleased, RunID: "run-2"})
	})
	f.expect(10*time.Minute, "a")
	f.done(30*time.Minute, workflows.PermitOK, "a") // run-1's call ends
	f.expect(30*time.Minute+time.Second, "a", "c")
	f.done(31*time.Minute, workflows.PermitOK, "c")
	f.run()
	if len(f.grants) != 2 || f.grants[0].runID != "run-1" {
		t.Errorf("grants %+v, want a to run-1, then c; none to run-2, which gave up", f.grants)
	}
}

// A permit sent again to the run it was delivered to, which has gone
// since (the signal fails), leaves the lease to expire: that run may have
// been calling (gateDeliveredKeptV1). Before, the lease ended at once and
// the newer run waiting for it was permitted beside that call.
func TestGateDeliveredLeaseOutlivesAFailedResend(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1})
	f.reply = func(id string, n int) error {
		if id == "a" && n == 2 {
			return errors.New("workflow execution already completed")
		}
		return nil
	}
	f.ask(time.Millisecond, "run-1")
	f.request(2*time.Second, time.Hour, "b")
	f.ask(time.Minute, "run-2")             // waits for run-1's lease
	f.ask(time.Minute+time.Second, "run-1") // late: sent again, and run-1 is gone
	f.expect(50*time.Minute, "a", "a")
	f.at(50*time.Minute, func() {
		if st := f.state(); st.InFlight != 1 {
			t.Errorf("after 50 minutes %d permits out, want run-1's, until its lease expires", st.InFlight)
		}
	})
	f.done(2*time.Hour, workflows.PermitOK, "a") // run-2's
	f.done(3*time.Hour, workflows.PermitOK, "b")
	f.run()
	if len(f.grants) != 4 || f.grants[2].runID != "run-2" || f.grants[2].at < time.Hour {
		t.Errorf("grants %+v, want a to run-1 (twice), then to run-2 once run-1's lease expired, then b", f.grants)
	}
}

// A call whose worker stopped heartbeating (PermitSilent) may still run:
// its lease stays until it expires, and the circuit breaker counts a
// failure (gateSilentV1). Before, the report released the lease, and the
// next call ran beside the one still going, past MaxConcurrency 1.
func TestGateSilentCallKeepsItsLease(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{MaxConcurrency: 1})
	f.request(time.Millisecond, 10*time.Minute, "a")
	f.request(time.Second, time.Hour, "b")
	f.done(time.Minute, workflows.PermitSilent, "a")
	f.at(5*time.Minute, func() {
		if st := f.state(); st.InFlight != 1 || st.Waiting != 1 {
			t.Errorf("after 5 minutes %+v, want a's lease out, b waiting", st)
		}
	})
	f.expect(9*time.Minute, "a")
	f.expect(11*time.Minute, "a", "b") // once a's lease expired
	f.done(12*time.Minute, workflows.PermitOK, "b")
	f.run()
}

// A silent call tells the circuit breaker nothing: the worker died or
// was cut off, not the function; a silent probe is probed again once its
// lease expires.
func TestGateSilentCallTellsTheBreakerNothing(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{CircuitBreaker: &dispatcher.CircuitBreaker{Failures: 1, Window: time.Hour, ProbeInterval: 20 * time.Minute}})
	f.request(time.Millisecond, 10*time.Minute, "a")
	f.done(time.Minute, workflows.PermitSilent, "a")
	f.request(2*time.Minute, time.Hour, "b")
	f.expect(3*time.Minute, "a", "b") // the circuit closed: no failure counted
	f.done(4*time.Minute, workflows.PermitOK, "b")
	f.run()
}

// A circuit that opened on the last waiting call's failure, with nothing
// waiting after it, is forgotten at its probe time, and the gate
// completes: the next call, in effect the probe, opens it again if the
// function still fails. Before, no timer woke the gate: it stayed open for
// ever, its settings never read again (removing the breaker, the
// runbook's fix, did nothing), and it never completed.
func TestGateForgetsAnIdleOpenCircuit(t *testing.T) {
	f := newGateEnv(t, dispatcher.Flow{CircuitBreaker: &dispatcher.CircuitBreaker{Failures: 2, Window: time.Minute, ProbeInterval: 10 * time.Minute}})
	f.request(time.Millisecond, time.Hour, "a", "b")
	f.done(time.Second, workflows.PermitRetryable, "a")
	f.done(2*time.Second, workflows.PermitRetryable, "b") // opens; nothing waits
	f.at(9*time.Minute, func() {
		if st := f.state(); st.State != dispatcher.FlowOpen {
			t.Errorf("before its probe time the circuit is %s, want open", st.State)
		}
	})
	f.at(10*time.Minute+3*time.Second, func() {
		if st := f.state(); st.State != dispatcher.FlowClosed {
			t.Errorf("after its probe time the circuit is %s, want closed", st.State)
		}
	})
	f.run()
}

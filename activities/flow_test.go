package activities_test

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
)

// TestFunctionFlow: a gate reads its function's current flow control; a
// function that is gone has none. The configuration a dispatch loads
// marks the gated functions.
func TestFunctionFlow(t *testing.T) {
	store := newFakeStore()
	flow := dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 5, Burst: 1}, MaxConcurrency: 2}
	store.functions["limited"] = dispatcher.Function{Name: "limited", Kind: dispatcher.FunctionHTTP, URL: "http://x", Timeout: time.Second, Flow: flow}
	store.functions["free"] = dispatcher.Function{Name: "free", Kind: dispatcher.FunctionHTTP, URL: "http://x", Timeout: time.Second}
	store.dispatchers = []dispatcher.Dispatcher{{ID: "d1", EventType: "ev", Actions: []dispatcher.Action{
		{ID: "a1", Type: dispatcher.ActionTask, FunctionName: "limited"},
		{ID: "a2", Type: dispatcher.ActionTask, FunctionName: "free"},
	}}}
	a := newActivities(t, activities.Options{Store: store})

	var got dispatcher.Flow
	if err := execute(t, a, a.FunctionFlow, dispatcher.FunctionFlowInput{Name: "limited"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.RateLimit == nil || *got.RateLimit != *flow.RateLimit || got.MaxConcurrency != 2 {
		t.Errorf("flow = %+v, want %+v", got, flow)
	}
	if err := execute(t, a, a.FunctionFlow, dispatcher.FunctionFlowInput{Name: "gone"}, &got); err != nil || got.Gated() {
		t.Errorf("a missing function's flow = %+v, %v; want none", got, err)
	}

	var cfg dispatcher.Config
	if err := execute(t, a, a.LoadConfig, dispatcher.LoadConfigInput{EventType: "ev"}, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, f := range cfg.Functions {
		if f.Gated != (f.Name == "limited") {
			t.Errorf("function %s recorded gated %v", f.Name, f.Gated)
		}
	}
}

// TestCallFunctionWaitsForItsSlot: a gated call whose rate limit gave it
// a slot ahead waits for it (on the activities' clock), at most
// maxSlotWait; one whose slot has passed calls at once.
func TestCallFunctionWaitsForItsSlot(t *testing.T) {
	sink := startFunctionSink(t, nil)
	store := newFakeStore()
	store.functions["limited"] = dispatcher.Function{Name: "limited", Kind: dispatcher.FunctionHTTP, URL: sink.URL, Timeout: 5 * time.Second}
	a := newActivities(t, activities.Options{Store: store, Outbound: loopback(t)})
	for _, tt := range []struct {
		name      string
		notBefore time.Time
		min, max  time.Duration
	}{
		{"slot ahead", testNow.Add(300 * time.Millisecond), 300 * time.Millisecond, 3 * time.Second},
		{"slot passed", testNow.Add(-time.Hour), 0, 250 * time.Millisecond},
		{"no slot", time.Time{}, 0, 250 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := dispatcher.TaskInput{Event: testEvent(), DispatcherID: "d1", ActionID: "a1", FunctionName: "limited",
				IdempotencyKey: "k", NotBefore: tt.notBefore}
			start := time.Now()
			var res dispatcher.TaskResult
			if err := execute(t, a, a.CallFunction, in, &res); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < tt.min || took > tt.max {
				t.Errorf("the call took %v, want between %v and %v", took, tt.min, tt.max)
			}
		})
	}
}

// TestCallFunctionMissedSlot: a rate-limited call that begins more than a
// quarter of an interval after its slot (here 50 ms at 5 a second) is not
// made: made late, calls bunch, and the function receives more than its
// rate. One within that, or of a function no longer limited, is made.
func TestCallFunctionMissedSlot(t *testing.T) {
	sink := startFunctionSink(t, nil)
	store := newFakeStore()
	limited := dispatcher.Function{Name: "limited", Kind: dispatcher.FunctionHTTP, URL: sink.URL, Timeout: 5 * time.Second,
		Flow: dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 5, Burst: 1}}}
	store.functions["limited"] = limited
	unlimited := limited
	unlimited.Name, unlimited.Flow = "unlimited", dispatcher.Flow{}
	store.functions["unlimited"] = unlimited
	a := newActivities(t, activities.Options{Store: store, Outbound: loopback(t)})
	for _, tt := range []struct {
		name, function string
		late           time.Duration
		missed         bool
	}{
		{"within a quarter interval", "limited", 40 * time.Millisecond, false},
		{"later", "limited", 60 * time.Millisecond, true},
		{"no rate limit any more", "unlimited", time.Hour, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := sink.count()
			in := dispatcher.TaskInput{Event: testEvent(), DispatcherID: "d1", ActionID: "a1", FunctionName: tt.function,
				IdempotencyKey: "k", NotBefore: testNow.Add(-tt.late)}
			var res dispatcher.TaskResult
			err := execute(t, a, a.CallFunction, in, &res)
			wantMade(t, sink, before, err, !tt.missed)
		})
	}
}

// TestCallFunctionAfterItsPermitExpires: a gated call that could not end
// before its permit's lease expires (its dispatch took the permit late:
// a worker down for longer than the lease) is not made, as a missed slot
// is not: by then its gate has reclaimed the lease and may have granted
// it again, and the call would break the function's MaxConcurrency. One
// that ends in time is made.
func TestCallFunctionAfterItsPermitExpires(t *testing.T) {
	sink, _, a := limitedFunction(t, dispatcher.Flow{MaxConcurrency: 1})
	for _, tt := range []struct {
		name    string
		expires time.Time
		made    bool
	}{
		{"ends in time", testNow.Add(6 * time.Second), true},
		{"expired", testNow.Add(-time.Second), false},
		{"would outlive it", testNow.Add(4 * time.Second), false},
		{"no lease", time.Time{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := sink.count()
			in := dispatcher.TaskInput{Event: testEvent(), DispatcherID: "d1", ActionID: "a1", FunctionName: "limited",
				IdempotencyKey: "k", NotBefore: testNow.Add(-time.Minute), PermitExpires: tt.expires}
			var res dispatcher.TaskResult
			err := execute(t, a, a.CallFunction, in, &res)
			wantMade(t, sink, before, err, tt.made)
		})
	}
}

// TestCallFunctionLocalOfATimedOutTask: a first attempt scheduled long
// after its workflow task started (its process was paused with the task
// in hand, and resumed) is not made: the task has timed out, another
// worker runs it again and calls. Before, the call was made all the
// same, a second time, after the dispatch had completed elsewhere. One
// scheduled in time, or from a workflow that does not say, is made.
func TestCallFunctionLocalOfATimedOutTask(t *testing.T) {
	sink := startFunctionSink(t, nil)
	store := newFakeStore()
	store.functions["f"] = dispatcher.Function{Name: "f", Kind: dispatcher.FunctionHTTP, URL: sink.URL, Timeout: 5 * time.Second}
	a := newActivities(t, activities.Options{Store: store, Outbound: loopback(t)})
	for _, tt := range []struct {
		name    string
		started time.Time
		made    bool
	}{
		{"its task started 30 s before", time.Now().Add(-30 * time.Second), false},
		{"its task started 5 s before", time.Now().Add(-5 * time.Second), true},
		{"no task start given", time.Time{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := sink.count()
			var s testsuite.WorkflowTestSuite
			env := s.NewTestActivityEnvironment()
			env.RegisterActivity(a)
			_, err := env.ExecuteLocalActivity(a.CallFunctionLocal, dispatcher.TaskInput{Event: testEvent(), DispatcherID: "d1",
				ActionID: "a1", FunctionName: "f", IdempotencyKey: "k", TaskStarted: tt.started})
			wantMade(t, sink, before, err, tt.made)
			// Not made here, but maybe by the worker that had the task:
			// a cancel then says the action may have been made.
			if det, ok := failureDetailsOf(err); !tt.made && (!ok || !det.Unanswered) {
				t.Errorf("the refusal %v does not say the call may have been made (Unanswered)", err)
			}
		})
	}
}

// TestCallFunctionLocalRunAgain: a gated call's first attempt claims its
// permit before it calls. Run again — its workflow task timed out because
// its worker died or stalled mid-call, and that call may still be running
// — it finds the claim held and makes nothing, saying another run holds
// the call (Held), which its dispatch reports to the gate as silent: the
// permit's place stays taken while the first call may run. Before, it
// found its slot passed (or called again under the same permit), the
// gate freed the place, and the function received more calls at once
// than its maxConcurrency. Another permit of the same call, a regular
// attempt (it runs once) and a call whose store fails or hangs are made.
func TestCallFunctionLocalRunAgain(t *testing.T) {
	sink, store, a := limitedFunction(t, dispatcher.Flow{MaxConcurrency: 2})
	local := func(in dispatcher.TaskInput) error { return executeLocal(a, in) }
	in := dispatcher.TaskInput{Event: testEvent(), DispatcherID: "d1", ActionID: "a1", FunctionName: "limited",
		IdempotencyKey: "k", PermitExpires: testNow.Add(time.Minute)}
	before := sink.count()
	wantMade(t, sink, before, local(in), true)

	before = sink.count()
	err := local(in)
	wantMade(t, sink, before, err, false)
	if det, ok := failureDetailsOf(err); !ok || !det.Held || !det.Unanswered {
		t.Errorf("the run again's refusal %v does not say another run holds the call (Held, Unanswered)", err)
	}

	next := in
	next.PermitExpires = in.PermitExpires.Add(time.Second)
	before = sink.count()
	wantMade(t, sink, before, local(next), true)

	var res dispatcher.TaskResult
	before = sink.count()
	wantMade(t, sink, before, execute(t, a, a.CallFunction, in, &res), true)

	store.down = 1
	down := in
	down.PermitExpires = in.PermitExpires.Add(2 * time.Second)
	before = sink.count()
	wantMade(t, sink, before, local(down), true)
	if store.down != 0 {
		t.Error("the store's outage met no claim")
	}

	// A store that hangs leaves the call unclaimed too, within seconds.
	// Before, the claim waited for it to the attempt's end, and the
	// attempt failed without a call.
	store.claimHang = make(chan struct{})
	defer close(store.claimHang)
	hung := in
	hung.PermitExpires = in.PermitExpires.Add(3 * time.Second)
	before = sink.count()
	start := time.Now()
	wantMade(t, sink, before, local(hung), true)
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("the call waited %v for a store that hangs", took)
	}
}

// TestCallFunctionLocalTenantShare: one tenant's function calls made as
// first attempts at once are bounded (TenantFirstCalls): past its share a
// call is not made there (Busy), and its dispatch makes it as a regular
// attempt, so that the tenant's slow functions leave the worker's
// first-attempt slots to the other tenants. Before, one tenant's hanging
// calls held them all, and another's mail waited 39 s for them. A gated
// call too; another tenant's call, one of a run that does not make a
// refused call regular (ShareBound unset: it would count it as a failed
// attempt) and, once the share frees, the tenant's next call are made.
func TestCallFunctionLocalTenantShare(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	sink := startFunctionSink(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(activities.HeaderIdempotencyKey) == "acme:dispatch-slow/d1/a1" {
			arrived <- struct{}{}
			<-release
		}
	})
	var once sync.Once
	let := func() { once.Do(func() { close(release) }) }
	t.Cleanup(let) // before the sink closes, which waits for its calls
	store := newFakeStore()
	store.functions["f"] = dispatcher.Function{Name: "f", Kind: dispatcher.FunctionHTTP, URL: sink.URL, Timeout: 5 * time.Second}
	a := newActivities(t, activities.Options{Store: store, Outbound: loopback(t), FirstCallSlots: 2}) // a tenant alone: 1
	local := func(key string, expires time.Time, bound bool) error {
		return executeLocal(a, dispatcher.TaskInput{Event: testEvent(), DispatcherID: "d1", ActionID: "a1",
			FunctionName: "f", IdempotencyKey: key, PermitExpires: expires, ShareBound: bound})
	}
	slow := make(chan error, 1)
	go func() { slow <- local("acme:dispatch-slow/d1/a1", time.Time{}, true) }()
	<-arrived

	for _, tt := range []struct {
		key     string
		expires time.Time
		bound   bool
		made    bool
	}{
		{"acme:dispatch-next/d1/a1", time.Time{}, true, false},
		{"acme:dispatch-gated/d1/a1", testNow.Add(time.Minute), true, false},
		{"acme:dispatch-older/d1/a1", time.Time{}, false, true},
		{"globex:dispatch-other/d1/a1", time.Time{}, true, true},
		{"dispatch-implicit/d1/a1", time.Time{}, true, true},
	} {
		before := sink.count()
		err := local(tt.key, tt.expires, tt.bound)
		wantMade(t, sink, before, err, tt.made)
		if det, _ := failureDetailsOf(err); !tt.made && !det.Busy {
			t.Errorf("%s: the refusal %v does not say its worker was busy", tt.key, err)
		}
	}
	let()
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	before := sink.count()
	wantMade(t, sink, before, local("acme:dispatch-later/d1/a1", time.Time{}, true), true)
}

// Tenants share the first calls' slots: a tenant takes half of what the
// others leave, so two tenants whose calls hang leave room for a third.
// Before, each took half of the slots whatever the others held, and two
// such tenants held them all: a third's mail waited 39 s for a slot.
func TestCallFunctionLocalTenantsShareTheSlots(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	sink := startFunctionSink(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get(activities.HeaderIdempotencyKey), "hangs") {
			arrived <- struct{}{}
			<-release
		}
	})
	var once sync.Once
	let := func() { once.Do(func() { close(release) }) }
	t.Cleanup(let)
	store := newFakeStore()
	store.functions["f"] = dispatcher.Function{Name: "f", Kind: dispatcher.FunctionHTTP, URL: sink.URL, Timeout: 5 * time.Second}
	a := newActivities(t, activities.Options{Store: store, Outbound: loopback(t), FirstCallSlots: 4})
	local := func(key string) error {
		return executeLocal(a, dispatcher.TaskInput{Event: testEvent(), DispatcherID: "d1", ActionID: "a1",
			FunctionName: "f", IdempotencyKey: key, ShareBound: true})
	}
	hanging := make(chan error, 3)
	for _, key := range []string{"acme:hangs-1/d1/a1", "acme:hangs-2/d1/a1", "globex:hangs-1/d1/a1"} {
		go func() { hanging <- local(key) }()
		<-arrived // in this order: acme alone takes 2 of the 4, globex 1 of the 2 left
	}
	for _, tt := range []struct {
		key  string
		made bool
	}{
		{"acme:next/d1/a1", false},
		{"globex:next/d1/a1", false},
		{"initech:quick/d1/a1", true},
	} {
		before := sink.count()
		err := local(tt.key)
		wantMade(t, sink, before, err, tt.made)
		if det, _ := failureDetailsOf(err); !tt.made && !det.Busy {
			t.Errorf("%s: the refusal %v does not say its worker was busy", tt.key, err)
		}
	}
	let()
	for range 3 {
		if err := <-hanging; err != nil {
			t.Fatal(err)
		}
	}
}

// A rate-limited call's claim never makes it miss its slot: a store that
// hangs is given until half the time left to the slot, then the call goes
// unclaimed, on time. Before, the claim waited its 2 s whatever the slot,
// and a slot 1 s ahead was missed, the call not made. (The slot is 1 s
// ahead, not less, so that setting the test environment up on a loaded
// machine does not miss it: a slot 100 ms ahead was missed so in CI.)
func TestCallFunctionLocalClaimKeepsToTheSlot(t *testing.T) {
	sink := startFunctionSink(t, nil)
	store := newFakeStore()
	store.functions["limited"] = dispatcher.Function{Name: "limited", Kind: dispatcher.FunctionHTTP, URL: sink.URL, Timeout: 5 * time.Second,
		Flow: dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 10, Burst: 1}}}
	a := newActivities(t, activities.Options{Store: store, Outbound: loopback(t), Now: time.Now})
	store.claimHang = make(chan struct{})
	defer close(store.claimHang)
	now := time.Now()
	in := dispatcher.TaskInput{Event: testEvent(), DispatcherID: "d1", ActionID: "a1", FunctionName: "limited",
		IdempotencyKey: "k", NotBefore: now.Add(time.Second), PermitExpires: now.Add(time.Minute)}
	before := sink.count()
	wantMade(t, sink, before, executeLocal(a, in), true)
}

// failureDetailsOf returns the details of err, an attempt's failure.
func failureDetailsOf(err error) (dispatcher.FailureDetails, bool) {
	var appErr *temporal.ApplicationError
	var det dispatcher.FailureDetails
	return det, errors.As(err, &appErr) && appErr.Details(&det) == nil
}

// limitedFunction returns a function "limited" of flow, calling sink, in
// store, and the activities that call it.
func limitedFunction(t *testing.T, flow dispatcher.Flow) (*functionSink, *fakeStore, *activities.Effects) {
	sink := startFunctionSink(t, nil)
	store := newFakeStore()
	store.functions["limited"] = dispatcher.Function{Name: "limited", Kind: dispatcher.FunctionHTTP, URL: sink.URL, Timeout: 5 * time.Second, Flow: flow}
	return sink, store, newActivities(t, activities.Options{Store: store, Outbound: loopback(t)})
}

// executeLocal runs in's call as a first attempt (a local activity), with
// an attempt's 30 s: the test environment gives it 3.
func executeLocal(a *activities.Effects, in dispatcher.TaskInput) error {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment().SetTestTimeout(30 * time.Second)
	env.RegisterActivity(a)
	_, err := env.ExecuteLocalActivity(a.CallFunctionLocal, in)
	return err
}

// wantMade checks an attempt that returned err: made, one call reached
// sink since it had before; not made, none did, and it failed as a
// missed slot, which its dispatch answers without counting an attempt.
func wantMade(t *testing.T, sink *functionSink, before int, err error, made bool) {
	t.Helper()
	if made && err != nil {
		t.Fatal(err)
	}
	if !made {
		wantFailure(t, err, dispatcher.FailureSlotMissed, true)
	}
	if got, want := sink.count()-before, map[bool]int{true: 1, false: 0}[made]; got != want {
		t.Errorf("%d calls reached the function, want %d", got, want)
	}
}

// A rate saved before the least was refused reads as the least: its
// interval overflowed, and the Gate let every call through. Clamped in the
// activity's result, which the Gate's history records, so that its older
// histories replay as they ran.
func TestFunctionFlowClampsARateBelowTheLeast(t *testing.T) {
	store := newFakeStore()
	store.functions["slow"] = dispatcher.Function{Name: "slow", Kind: dispatcher.FunctionHTTP, URL: "http://127.0.0.1:9/",
		Flow: dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 1e-10, Burst: 1}}}
	a := newActivities(t, activities.Options{Store: store})
	var f dispatcher.Flow
	if err := execute(t, a, a.FunctionFlow, dispatcher.FunctionFlowInput{Name: "slow"}, &f); err != nil {
		t.Fatal(err)
	}
	if f.RateLimit == nil || f.RateLimit.PerSecond != dispatcher.MinRatePerSecond || f.RateLimit.EmissionInterval() != 24*time.Hour {
		t.Errorf("rate limit %+v, want one call a day", f.RateLimit)
	}
}

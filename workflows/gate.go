package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
)

// Gate grants the permits of one gated function's calls (dispatcher.Flow),
// whichever worker makes them: one Gate per function
// (dispatcher.GateWorkflowID), which dispatches start with signal-with-start
// the first time one needs a permit (ActivityRequestPermit). It grants, in
// the order the requests came, as many permits as
//
//   - the rate limit allows: a token bucket on workflow time, kept as the
//     theoretical arrival time of GCRA, in whole nanoseconds. Temporal's
//     timers fire on whole seconds (a 200 ms timer fires after one
//     second), so the gate grants, each time it wakes, the permits whose
//     slots fall between slotLead and rateLookahead ahead, each carrying
//     its slot (PermitGrant.NotBefore), for which the call waits; a
//     durable timer wakes it for the next second's;
//   - MaxConcurrency allows: each permit is a lease, held until its call
//     reports its end (SignalGateDone) or, should its dispatch never say,
//     until the lease the request named has expired;
//   - the circuit breaker allows: closed, it counts consecutive failed
//     calls and opens after CircuitBreaker.Failures within its window;
//     open, it grants nothing until ProbeInterval has passed, then one
//     probe, whose success closes it and whose failure opens it again;
//   - PausedUntil allows: nothing before it.
//
// A permit is a signal to the dispatch (SignalPermit). The gate reads its
// function's flow control with a local activity when it has calls waiting
// and its copy is older than flowRefresh, so a change takes effect within
// that without restarting anything. It continues as new when its history
// grows long, and completes once idle for gateIdle with nothing
// outstanding and nothing to remember (the bucket full, the circuit closed).
func Gate(ctx workflow.Context, in GateInput) error {
	// A cancel (from the Web UI or CLI) is ignored: the permits out and
	// the requests waiting are the function's limits, which a new run
	// would not know; a Gate completes on its own once idle. Before, its
	// timers, made on the canceled context, were ready at once, and its
	// loop spun without end, granting nothing.
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	g := &gate{function: in.Function, GateState: in.State, log: workflow.GetLogger(ctx)}
	if g.GateState == nil {
		g.GateState = &GateState{}
	}
	if err := workflow.SetQueryHandler(ctx, QueryGate, func() (dispatcher.FlowState, error) {
		return g.state(workflow.Now(ctx)), nil
	}); err != nil {
		return err
	}
	g.requests = workflow.GetSignalChannel(ctx, SignalGateRequest)
	g.dones = workflow.GetSignalChannel(ctx, SignalGateDone)
	g.sent = workflow.NewBufferedChannel(ctx, 1)
	g.published, _ = workflow.GetTypedSearchAttributes(ctx).GetKeyword(AttrGateState)
	var idleSince time.Time
	for {
		g.take(ctx)
		g.refresh(ctx)
		now := workflow.Now(ctx)
		g.reclaim(now)
		g.grant(ctx, now)
		g.publish(ctx, now)

		info := workflow.GetInfo(ctx)
		if info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= gateHistoryLimit {
			g.settle(ctx)
			return workflow.NewContinueAsNewError(ctx, WorkflowGate, GateInput{Function: g.function, State: g.GateState})
		}
		wake := g.next(now)
		if g.openIdle() && workflow.GetVersion(ctx, changeGateIdleOpen, workflow.DefaultVersion, gateIdleOpenV1) >= gateIdleOpenV1 {
			if now.Before(g.NextProbe) {
				wake = g.NextProbe // nothing else will wake it
			} else {
				g.Open, g.OpenedAt, g.NextProbe, g.Failures = false, time.Time{}, time.Time{}, nil
				g.log.Info("Circuit forgotten: no call came for its probe", "Function", g.function)
				g.publish(ctx, now)
			}
		}
		if g.quiet() {
			// Nothing waits and nothing is out: complete once quiet for
			// gateIdle and holding nothing a new run would not.
			if idleSince.IsZero() {
				idleSince = now
			}
			done := maxTime(idleSince.Add(gateIdle), g.forgotten())
			if !now.Before(done) {
				g.settle(ctx)
				if g.quiet() {
					return nil // the next request starts a new run
				}
				continue
			}
			wake = done
		} else {
			idleSince = time.Time{}
		}
		g.wait(ctx, now, wake)
	}
}

// GateInput is the input of the Gate workflow: the function it gates, and
// the state its previous run carried over ContinueAsNew.
type GateInput struct {
	Function string
	State    *GateState
}

// GateState is what a Gate knows: its function's flow control, the
// requests waiting in order, the permits out, the token bucket and the
// circuit.
type GateState struct {
	Flow     dispatcher.Flow
	FlowRead time.Time // when Flow was read; zero: never
	Waiting  []PermitRequest
	Leases   []Lease
	// TAT is the rate limit's theoretical arrival time (GCRA): a call may
	// start at t when t ≥ TAT − (burst−1)·interval.
	TAT       time.Time
	Open      bool
	OpenedAt  time.Time
	NextProbe time.Time
	// Failures are the times of the current streak of consecutive failed
	// calls, oldest first, at most CircuitBreaker.Failures of them.
	Failures []time.Time
	// Unread: no read of Flow has succeeded yet (gateUnreadV1): nothing
	// is granted until one does.
	Unread bool `json:",omitempty"`
}

// PermitRequest is a dispatch's request for a permit for one attempt of
// one action (SignalGateRequest).
type PermitRequest struct {
	// ID is the attempt's: the action's idempotency key and the attempt
	// number. Asking again with the same ID is harmless.
	ID         string
	WorkflowID string // where the permit goes
	// RunID is the run that asks, to which the permit goes: a replay of
	// the dispatch, a new run with the same workflow ID, asks with
	// requests of its own, and would take a permit meant for a run that
	// is gone without using or returning it. Empty from a dispatch before
	// it: the permit goes to the workflow's current run.
	RunID string `json:",omitempty"`
	// MovedFrom are the runs the request was asked by before RunID, the
	// latest last (gateRunV1): a request one of them sends late, its
	// worker still retrying after the reset, does not take it back.
	MovedFrom []string `json:",omitempty"`
	// Lease is how long the attempt may take at most: the permit is
	// reclaimed after it, should the dispatch never report.
	Lease time.Duration
	At    time.Time // when the gate took it
}

// Lease is a permit out.
type Lease struct {
	PermitRequest
	Expires   time.Time
	Probe     bool      // the open circuit's probe
	NotBefore time.Time // its slot under the rate limit
	// Delivered: the permit reached its run, which may be calling: a
	// reset does not stop an activity in flight.
	Delivered bool `json:",omitempty"`
	// Next is the request of a newer run of the dispatch (a reset's),
	// asked while the permit it had delivered was out: it waits until the
	// lease ends (gateMovedWaitsV1).
	Next *PermitRequest `json:",omitempty"`
}

// PermitGrant is the permit a Gate sends a dispatch (SignalPermit).
type PermitGrant struct {
	RequestID string
	// RunID is the run of the dispatch the permit is for (the request's);
	// empty from a gate before it, or for a request without one. A reset
	// copies the signals of the run it ends into the new run: a permit
	// for the old one, maybe used and given back long ago, is not the
	// new run's (dispatchV14).
	RunID string `json:",omitempty"`
	Probe bool
	// NotBefore is the call's slot under the rate limit, when it has
	// one: at most rateLookahead after the permit was sent.
	NotBefore time.Time
	// Expires is when the gate takes the lease back; zero from a gate
	// before it. A call that could not end by then is not made.
	Expires time.Time
}

// PermitDone reports the end of a permitted call to its Gate
// (SignalGateDone), or gives up a request still waiting.
type PermitDone struct {
	RequestID string
	Result    string // a Permit* result
	// RunID is the run of the dispatch that reports (dispatchV16: empty
	// before): a report of a run that a reset ended does not end the
	// request the new run asked again (gateDoneRunV1).
	RunID string `json:",omitempty"`
}

// How a permitted call ended, for the circuit breaker.
const (
	PermitOK        = "ok"        // the function succeeded
	PermitFailed    = "failed"    // the function answered, refusing for good: it is up
	PermitRetryable = "retryable" // the function failed or did not answer: a failure
	PermitReleased  = "released"  // no call was made, or it tells nothing (a cancel)
	// PermitSilent: the worker of a regular attempt stopped heartbeating
	// (dead, or cut off from Temporal and still calling), or that of a
	// first attempt died or stalled after it made its call (the attempt
	// run again found the call claimed): its call may still run, so its
	// lease ends when it expires (gateSilentV1); it tells nothing of the
	// function.
	PermitSilent = "silent"
)

// RequestPermitInput is the input of ActivityRequestPermit: the gate to
// ask, started on TaskQueue for Function when it is not running.
type RequestPermitInput struct {
	Gate      string
	Function  string
	TaskQueue string
	Request   PermitRequest
}

const (
	// gateIdle is how long a Gate with nothing to do waits before it
	// completes.
	gateIdle = time.Minute
	// flowRefresh is how old a Gate's copy of its function's flow control
	// may grow while calls wait: the longest a change takes to apply.
	flowRefresh = 10 * time.Second
	// gateHistoryLimit is the history length at which a Gate continues
	// as new, if Temporal has not suggested it before.
	gateHistoryLimit = 10000
	// slotLead is how far ahead of workflow time a rate limit's earliest
	// slot is: the permit's way to its call (a signal, a workflow task, a
	// local activity) takes some milliseconds, several hundred on a
	// loaded worker, and a call that started that late would come closer
	// than the rate allows to the next one, which waits for its slot.
	slotLead = time.Second
	// rateLookahead is how far ahead of workflow time a gate gives rate
	// limit slots: the slot lead and the granularity of Temporal's
	// timers, so that each wake-up hands out a second's worth.
	rateLookahead = slotLead + time.Second
	// defaultLease is a request's lease when it names none.
	defaultLease = 2 * dispatcher.MaxFunctionTimeout
)

// MaxGateWaiting bounds the requests a Gate holds (gateV1): they travel in
// its ContinueAsNew input, which Temporal refuses over 2 MB (a request is
// some 250 bytes), terminating the Gate with its circuit and queue. A
// request over it is not taken; its dispatch asks again at its next
// recheck (permitRecheck, doubling up to maxPermitRecheck).
const MaxGateWaiting = 4000

// Bounds in bytes of what a Gate holds (gateSizeV1), as its JSON in the
// ContinueAsNew input: its requests' IDs are as long as their events' ids
// (some 500 bytes with a tenant and a 128-character id), so that fewer
// than MaxGateWaiting requests, or the permits out of a function called
// fast and slowly answering, could pass Temporal's 2 MiB limit. A request
// over MaxGateWaitingBytes is not taken, as one over MaxGateWaiting; past
// MaxGateLeaseBytes no permit goes until permits out end.
const (
	MaxGateWaitingBytes = 1 << 20
	MaxGateLeaseBytes   = 3 << 18
)

// requestBytes is more than r takes in the gate's JSON; a lease takes
// leaseExtraBytes more.
func requestBytes(r PermitRequest) int {
	n := len(r.ID) + len(r.WorkflowID) + len(r.RunID) + 100
	for _, id := range r.MovedFrom {
		n += len(id) + 3
	}
	return n
}

const leaseExtraBytes = 120

func (g *gate) waitingBytes() int {
	n := 0
	for _, r := range g.Waiting {
		n += requestBytes(r)
	}
	return n
}

func (g *gate) leaseBytes() int {
	n := 0
	for _, l := range g.Leases {
		n += requestBytes(l.PermitRequest) + leaseExtraBytes
	}
	return n
}

// maxSending bounds the permits on their way at once (gateSendingV1).
// Temporal fails a workflow task that leaves more than 2,000 signals to
// other workflows pending (limit.numPendingSignals.error), and fails its
// retry the same way: a pause ending over thousands of waiting calls
// wedged the Gate for good.
const maxSending = 500

// fewSending is the bound since gateFewSendingV1: each permit's delivery
// is an event of its Gate's next workflow task, and Temporal fails a task
// while which more than 100 events came (limit.maximumBufferedEventsBatch,
// WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND) to record them. Up to
// 500 deliveries coming back while the Gate's next task ran failed it on a
// slow worker; 50 leave room for the calls' requests and reports that come
// meanwhile. At one task per 50 permits a Gate still grants thousands a
// second.
const fewSending = 50

// functionFlowOptions: reading the flow control is quick and local; when
// it fails the gate keeps what it had and tries again a flowRefresh later.
// It keeps to its 10 s from when it is asked, waiting for a slot
// included: the Gate grants nothing while it waits.
var functionFlowOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout: 10 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
}

// Metric names of the Gate, emitted through the workflow's metrics
// handler (silent while a history replays).
const metricCircuitOpened = "dispatcher_function_circuit_opened" // counter{tenant,function}

// logger is the part of workflow.GetLogger's logger a gate uses.
type logger interface {
	Info(msg string, keyvals ...any)
	Warn(msg string, keyvals ...any)
}

type gate struct {
	*GateState
	function  string
	log       logger
	requests  workflow.ReceiveChannel
	dones     workflow.ReceiveChannel
	sent      workflow.Channel // a grant's signal has been delivered, or failed
	sending   int              // grants whose signal is on its way
	published string           // the AttrGateState value set

	timer       workflow.Future // the wake-up timer, nil when none is pending
	timerAt     time.Time
	cancelTimer workflow.CancelFunc
}

// take takes the requests and reports that have arrived, without
// waiting.
func (g *gate) take(ctx workflow.Context) {
	now := workflow.Now(ctx)
	for {
		var r PermitRequest
		if !g.requests.ReceiveAsync(&r) {
			break
		}
		g.request(ctx, r, now)
	}
	for {
		var d PermitDone
		if !g.dones.ReceiveAsync(&d) {
			break
		}
		g.done(ctx, d, now)
	}
}

// request queues r, unless it waits already; a request whose permit is
// out gets its permit again (its dispatch asked again, having waited
// long: the first signal may have gone to a run that no longer is).
func (g *gate) request(ctx workflow.Context, r PermitRequest, now time.Time) {
	if i := slices.IndexFunc(g.Waiting, func(w PermitRequest) bool { return w.ID == r.ID }); i >= 0 {
		g.moved(ctx, &g.Waiting[i], r)
		return
	}
	if i := slices.IndexFunc(g.Leases, func(l Lease) bool { return l.ID == r.ID }); i >= 0 {
		if l := &g.Leases[i]; l.Delivered && newerRun(l.PermitRequest, r) &&
			workflow.GetVersion(ctx, changeGateMovedWaits, workflow.DefaultVersion, gateMovedWaitsV1) >= gateMovedWaitsV1 {
			// The run it went to may still be calling: the newer run waits
			// for the lease to end. Before, the permit went to it at once,
			// beside that call, past the function's concurrency and pause.
			if l.Next == nil || l.Next.RunID != r.RunID {
				r.MovedFrom = append(slices.Clone(l.MovedFrom), l.RunID)
				l.Next = &r
			}
			return
		}
		if g.moved(ctx, &g.Leases[i].PermitRequest, r) {
			g.send(ctx, g.Leases[i])
		}
		return
	}
	full := len(g.Waiting) >= MaxGateWaiting && workflow.GetVersion(ctx, changeGate, workflow.DefaultVersion, gateV1) >= gateV1
	full = full || g.waitingBytes()+requestBytes(r) > MaxGateWaitingBytes &&
		workflow.GetVersion(ctx, changeGateSize, workflow.DefaultVersion, gateSizeV1) >= gateSizeV1
	if full {
		g.log.Warn("Too many calls waiting: this one asks again later", "Function", g.function, "Waiting", len(g.Waiting))
		return
	}
	if r.Lease <= 0 {
		r.Lease = defaultLease
	}
	r.At = now
	g.Waiting = append(g.Waiting, r)
}

// moved points held at the run r comes from when that is a newer run of
// the same dispatch: a reset's, which asks with the same request ids; the
// run that asked first is gone (gateRunV1). It reports false for r from a
// run held has moved from (a late request of a run the reset ended),
// which changes nothing.
func (g *gate) moved(ctx workflow.Context, held *PermitRequest, r PermitRequest) bool {
	switch {
	case r.RunID == "" || r.RunID == held.RunID:
		return true
	case slices.Contains(held.MovedFrom, r.RunID):
		return false
	}
	if workflow.GetVersion(ctx, changeGateRun, workflow.DefaultVersion, gateRunV1) >= gateRunV1 {
		held.MovedFrom = append(held.MovedFrom, held.RunID)
		if len(held.MovedFrom) > maxMovedFrom {
			held.MovedFrom = held.MovedFrom[1:]
		}
		held.RunID = r.RunID
		if r.Lease > 0 {
			held.Lease = r.Lease
		}
	}
	return true
}

// newerRun reports whether r comes from another run of held's dispatch
// than held's, and not from one held was moved from (a late request).
func newerRun(held, r PermitRequest) bool {
	return r.RunID != "" && r.RunID != held.RunID && !slices.Contains(held.MovedFrom, r.RunID)
}

// ended puts the request that waited for lease l to end, if one did, at
// the head of the waiting ones: it was granted before them.
func (g *gate) ended(l Lease, now time.Time) {
	if l.Next == nil {
		return
	}
	next := *l.Next
	if next.Lease <= 0 {
		next.Lease = defaultLease
	}
	next.At = now
	g.Waiting = slices.Insert(g.Waiting, 0, next)
}

// maxMovedFrom bounds PermitRequest.MovedFrom: a dispatch reset again and
// again, each run's request late, is unlikely past a few.
const maxMovedFrom = 4

// done ends the lease of d's request, or its wait, and feeds the circuit
// breaker with how the call ended.
func (g *gate) done(ctx workflow.Context, d PermitDone, now time.Time) {
	if i := slices.IndexFunc(g.Waiting, func(w PermitRequest) bool { return w.ID == d.RequestID }); i >= 0 {
		if w := g.Waiting[i]; d.RunID != "" && w.RunID != "" && d.RunID != w.RunID &&
			workflow.GetVersion(ctx, changeGateDoneRun, workflow.DefaultVersion, gateDoneRunV1) >= gateDoneRunV1 {
			// The report of a run a reset ended, taken after the new run's
			// request (a gate's signals taken in one task, requests
			// first): before, it ended that request, and its call waited
			// ten minutes to ask again.
			return
		}
		g.Waiting = slices.Delete(g.Waiting, i, i+1)
		return
	}
	i := slices.IndexFunc(g.Leases, func(l Lease) bool { return l.ID == d.RequestID })
	if i < 0 {
		return // reclaimed already, or reported twice
	}
	l := g.Leases[i]
	if d.RunID != "" && l.RunID != "" && d.RunID != l.RunID &&
		workflow.GetVersion(ctx, changeGateDoneLease, workflow.DefaultVersion, gateDoneLeaseV1) >= gateDoneLeaseV1 {
		// Another run's report (gateDoneLeaseV1): the run the permit is
		// out to may still be calling. If it is the newer run that waited
		// for the lease, it waits no more; one the lease moved from
		// reports late. Before, either ended the lease, and the next call
		// ran beside the one still going.
		if l.Next != nil && l.Next.RunID == d.RunID {
			g.Leases[i].Next = nil
		}
		return
	}
	if d.Result == PermitSilent &&
		workflow.GetVersion(ctx, changeGateSilent, workflow.DefaultVersion, gateSilentV1) >= gateSilentV1 {
		// The lease stays until it expires, and reclaim ends it as one
		// whose end was not reported (a probe's: probe again). The
		// silence is the worker's, telling nothing of the function.
		return
	}
	g.Leases = slices.Delete(g.Leases, i, i+1)
	g.ended(l, now)
	cb := g.Flow.CircuitBreaker
	switch {
	case cb == nil:
	case l.Probe:
		switch d.Result {
		case PermitOK, PermitFailed:
			g.Open, g.OpenedAt, g.NextProbe, g.Failures = false, time.Time{}, time.Time{}, nil
			g.log.Info("Circuit closed: the probe succeeded", "Function", g.function)
		case PermitRetryable:
			g.OpenedAt, g.NextProbe = now, now.Add(cb.ProbeInterval)
			g.log.Warn("Circuit opened again: the probe failed", "Function", g.function, "NextProbe", g.NextProbe)
		default:
			g.NextProbe = now // it told nothing: probe again
		}
	case g.Open:
		// A call permitted before the circuit opened: only the probe
		// decides.
	case d.Result == PermitOK || d.Result == PermitFailed:
		g.Failures = nil
	case d.Result == PermitRetryable:
		g.Failures = append(g.Failures, now)
		if len(g.Failures) > cb.Failures {
			g.Failures = g.Failures[len(g.Failures)-cb.Failures:]
		}
		if len(g.Failures) == cb.Failures && now.Sub(g.Failures[0]) <= cb.Window {
			g.Open, g.OpenedAt, g.NextProbe, g.Failures = true, now, now.Add(cb.ProbeInterval), nil
			g.log.Warn("Circuit opened", "Function", g.function, "Failures", cb.Failures, "NextProbe", g.NextProbe)
			workflow.GetMetricsHandler(ctx).WithTags(map[string]string{
				"tenant": dispatcher.TenantOf(workflow.GetInfo(ctx).WorkflowExecution.ID), "function": g.function,
			}).Counter(metricCircuitOpened).Inc(1)
		}
	}
}

// refresh reads the function's flow control when calls wait and the copy
// is older than flowRefresh.
func (g *gate) refresh(ctx workflow.Context) {
	now := workflow.Now(ctx)
	if len(g.Waiting) == 0 || (!g.FlowRead.IsZero() && now.Sub(g.FlowRead) < g.refreshEvery()) {
		return
	}
	first := g.FlowRead.IsZero() || g.Unread
	g.FlowRead = now
	var flow dispatcher.Flow
	lctx := workflow.WithLocalActivityOptions(ctx, functionFlowOptions)
	if err := workflow.ExecuteLocalActivity(lctx, ActivityFunctionFlow, dispatcher.FunctionFlowInput{Name: g.function}).Get(ctx, &flow); err != nil {
		if first && workflow.GetVersion(ctx, changeGateUnread, workflow.DefaultVersion, gateUnreadV1) >= gateUnreadV1 {
			g.Unread = true
			g.log.Warn("Reading the function's flow control failed; granting nothing until it is read", "Function", g.function, "Error", err)
			return
		}
		g.log.Warn("Reading the function's flow control failed; keeping the last", "Function", g.function, "Error", err)
		return
	}
	g.rescale(ctx, now, flow.RateLimit)
	g.reprobe(ctx, flow.CircuitBreaker)
	g.Flow, g.Unread = flow, false
	if flow.CircuitBreaker == nil {
		g.Open, g.OpenedAt, g.NextProbe, g.Failures = false, time.Time{}, time.Time{}, nil
	}
}

// refreshEvery is how old the copy of the flow control may grow while
// calls wait: a second while none has been read (gateUnreadV1).
func (g *gate) refreshEvery() time.Duration {
	if g.Unread {
		return unreadRetry
	}
	return flowRefresh
}

// unreadRetry is how soon a Gate that could not read its function's flow
// control tries again.
const unreadRetry = time.Second

// reclaim ends the leases that have expired: their dispatches never said
// how their calls ended.
func (g *gate) reclaim(now time.Time) {
	g.Leases = slices.DeleteFunc(g.Leases, func(l Lease) bool {
		if now.Before(l.Expires) {
			return false
		}
		g.log.Warn("Permit reclaimed: its lease expired before its call was reported ended (its dispatch gone, or its worker silent)",
			"Function", g.function, "RequestID", l.ID, "WorkflowID", l.WorkflowID)
		if l.Probe {
			g.NextProbe = now
		}
		g.ended(l, now)
		return true
	})
}

// grant gives the waiting requests, in order, the permits the limits
// allow at now.
func (g *gate) grant(ctx workflow.Context, now time.Time) {
	for len(g.Waiting) > 0 {
		if g.sending >= maxSending && workflow.GetVersion(ctx, changeGateSending, workflow.DefaultVersion, gateSendingV1) >= gateSendingV1 {
			return // the rest once these are delivered (wait wakes on sent)
		}
		if len(g.Leases) > 0 && g.leaseBytes()+requestBytes(g.Waiting[0])+leaseExtraBytes > MaxGateLeaseBytes &&
			workflow.GetVersion(ctx, changeGateSize, workflow.DefaultVersion, gateSizeV1) >= gateSizeV1 {
			return // the rest as permits out end
		}
		probe, slot, ok := g.allowed(now)
		if !ok {
			return
		}
		// Asked only when a permit would go but for it: a worker from
		// before, replaying the task that recorded the marker, sends it,
		// and fails the task for nondeterminism rather than go on under
		// the old bound, which a newer worker could then not replay.
		if g.sending >= fewSending && workflow.GetVersion(ctx, changeGateFewSending, workflow.DefaultVersion, gateFewSendingV1) >= gateFewSendingV1 {
			return
		}
		if rl := g.Flow.RateLimit; rl != nil {
			g.TAT = maxTime(g.TAT, slot).Add(rl.EmissionInterval())
		}
		l := Lease{PermitRequest: g.Waiting[0], Expires: slot.Add(g.Waiting[0].Lease), Probe: probe, NotBefore: slot}
		g.Waiting = g.Waiting[1:]
		g.Leases = append(g.Leases, l)
		g.send(ctx, l)
	}
}

// rescale keeps the calls already spaced by the rate limit in their
// place when the rate changes to rl (gateRateV1): the time the bucket is
// ahead of now, in calls of the old rate, becomes as many of the new, up
// to one. A limit removed forgets it. Before, a raised rate let nothing through
// until the old rate's next slot: a mistaken 0.001 a second, raised,
// still held the calls for 1,000 s.
func (g *gate) rescale(ctx workflow.Context, now time.Time, rl *dispatcher.RateLimit) {
	old := g.Flow.RateLimit
	if old == nil || !g.TAT.After(now) || rl != nil && rl.EmissionInterval() == old.EmissionInterval() ||
		workflow.GetVersion(ctx, changeGateRate, workflow.DefaultVersion, gateRateV1) < gateRateV1 {
		return
	}
	if rl == nil {
		g.TAT = time.Time{}
		return
	}
	// At most one call of the new rate ahead: lowered, the next call keeps
	// the new rate's distance, not the old burst's debt charged at it
	// (100 calls at once, then 1 a minute, held the next for 100 minutes).
	ahead := float64(g.TAT.Sub(now)) / float64(old.EmissionInterval()) * float64(rl.EmissionInterval())
	g.TAT = now.Add(time.Duration(min(ahead, float64(rl.EmissionInterval()))))
	// The permits granted ahead at the old rate keep their slots: the new
	// rate's first follows the last of them (gateRateHeldV1). Before, it
	// began at once, beside them: raised from 1 to 5 a second, 7 calls
	// went in a second.
	var last time.Time
	for _, l := range g.Leases {
		if l.NotBefore.After(now) { // a call made already, or running, is spaced by TAT
			last = maxTime(last, l.NotBefore)
		}
	}
	if next := last.Add(rl.EmissionInterval()); next.After(g.TAT) &&
		workflow.GetVersion(ctx, changeGateRateHeld, workflow.DefaultVersion, gateRateHeldV1) >= gateRateHeldV1 {
		g.TAT = next
	}
}

// reprobe moves the open circuit's next probe when the probe interval
// changes to cb's (gateProbeV1): to when the circuit opened and the new
// interval, as if it had been so then. Before, an interval lowered from an
// hour to 5 s held the calls for the hour. A probe asked again at once
// (one that told nothing) stays.
func (g *gate) reprobe(ctx workflow.Context, cb *dispatcher.CircuitBreaker) {
	old := g.Flow.CircuitBreaker
	if !g.Open || old == nil || cb == nil || cb.ProbeInterval == old.ProbeInterval || !g.NextProbe.Equal(g.OpenedAt.Add(old.ProbeInterval)) ||
		workflow.GetVersion(ctx, changeGateProbe, workflow.DefaultVersion, gateProbeV1) < gateProbeV1 {
		return
	}
	g.NextProbe = g.OpenedAt.Add(cb.ProbeInterval)
}

// allowed reports whether a permit may go at now, whether it is the
// probe, and its slot: now, or under the rate limit the next token's
// time, at most rateLookahead later.
func (g *gate) allowed(now time.Time) (probe bool, slot time.Time, ok bool) {
	if g.Unread || g.Flow.Paused(now) {
		return false, now, false
	}
	if c := g.Flow.MaxConcurrency; c > 0 && len(g.Leases) >= c {
		return false, now, false
	}
	if g.Open {
		if g.probing() || now.Before(g.NextProbe) {
			return false, now, false
		}
		probe = true
	}
	slot = now
	if rl := g.Flow.RateLimit; rl != nil {
		if slot = maxTime(now.Add(slotLead), g.nextToken(*rl)); !slot.Before(now.Add(rateLookahead)) {
			return false, now, false
		}
	}
	return probe, slot, true
}

// nextToken is when the rate limit next allows a call.
func (g *gate) nextToken(rl dispatcher.RateLimit) time.Time {
	return g.TAT.Add(-time.Duration(rl.Burst-1) * rl.EmissionInterval())
}

func (g *gate) probing() bool {
	return slices.ContainsFunc(g.Leases, func(l Lease) bool { return l.Probe })
}

// send signals a permit to its dispatch. Should the dispatch be gone, the
// lease ends at once.
func (g *gate) send(ctx workflow.Context, l Lease) {
	g.sending++
	f := workflow.SignalExternalWorkflow(ctx, l.WorkflowID, l.RunID, SignalPermit, PermitGrant{RequestID: l.ID, RunID: l.RunID, Probe: l.Probe, NotBefore: l.NotBefore, Expires: l.Expires})
	workflow.Go(ctx, func(ctx workflow.Context) {
		err := f.Get(ctx, nil)
		g.sending--
		if err == nil {
			for i := range g.Leases {
				if o := &g.Leases[i]; o.ID == l.ID && o.RunID == l.RunID {
					o.Delivered = true
				}
			}
		} else {
			// A lease moved to another run since, or granted again to
			// one, is that run's: its own permit is on its way
			// (gateRunV1; before, every lease of the request ended).
			out := len(g.Leases)
			g.Leases = slices.DeleteFunc(g.Leases, func(o Lease) bool {
				lost := o.ID == l.ID && (o.RunID == l.RunID ||
					workflow.GetVersion(ctx, changeGateRun, workflow.DefaultVersion, gateRunV1) < gateRunV1)
				if lost && o.Delivered &&
					workflow.GetVersion(ctx, changeGateDeliveredKept, workflow.DefaultVersion, gateDeliveredKeptV1) >= gateDeliveredKeptV1 {
					// Sent again to the run that had it, gone since: it
					// may have been calling, so the lease ends when it
					// expires (gateDeliveredKeptV1).
					g.log.Warn("The permit sent again did not reach its dispatch, which had it: kept until its lease expires",
						"Function", g.function, "WorkflowID", l.WorkflowID, "Expires", o.Expires, "Error", err)
					lost = false
				}
				if lost {
					g.ended(o, workflow.Now(ctx)) // the newer run that waited for it, if one did
				}
				if lost && o.Probe {
					g.NextProbe = workflow.Now(ctx)
				}
				return lost
			})
			if len(g.Leases) < out {
				g.log.Warn("The permit did not reach its dispatch; reclaimed", "Function", g.function, "WorkflowID", l.WorkflowID, "Error", err)
			}
		}
		g.sent.SendAsync(true)
	})
}

// settle waits until every permit's signal is delivered, so that none is
// lost with the run, and takes what arrived meanwhile: a request asked
// again sends its permit again, which is waited for in turn.
func (g *gate) settle(ctx workflow.Context) {
	for {
		_ = workflow.Await(ctx, func() bool { return g.sending == 0 })
		if g.take(ctx); g.sending == 0 {
			return
		}
	}
}

// quiet reports whether no request waits and no permit is out, nor on
// its way, and the circuit is closed.
func (g *gate) quiet() bool {
	return len(g.Waiting) == 0 && len(g.Leases) == 0 && g.sending == 0 && !g.Open
}

// openIdle reports whether the circuit is open with no call waiting for
// its probe, nor out, nor on its way: nothing would wake the gate.
func (g *gate) openIdle() bool {
	return g.Open && len(g.Waiting) == 0 && len(g.Leases) == 0 && g.sending == 0
}

// forgotten is when the gate holds nothing that a new run would not: the
// bucket is full again and the streak of failures, if any, has left its
// window.
func (g *gate) forgotten() time.Time {
	at := g.TAT
	if cb := g.Flow.CircuitBreaker; cb != nil && len(g.Failures) > 0 {
		at = maxTime(at, g.Failures[len(g.Failures)-1].Add(cb.Window).Add(time.Millisecond))
	}
	return at
}

// next is when something changes without a signal: the next token, probe
// or end of a pause for the waiting calls, a flow control refresh, a lease
// expiry; zero when nothing will.
func (g *gate) next(now time.Time) time.Time {
	var at []time.Time
	if len(g.Waiting) > 0 {
		at = append(at, g.FlowRead.Add(g.refreshEvery()))
		switch {
		case g.Flow.Paused(now):
			at = append(at, *g.Flow.PausedUntil)
		case g.Open && !g.probing():
			at = append(at, g.NextProbe)
		}
		if rl := g.Flow.RateLimit; rl != nil {
			at = append(at, g.nextToken(*rl).Add(-rateLookahead).Add(time.Millisecond))
		}
	}
	for _, l := range g.Leases {
		at = append(at, l.Expires)
	}
	var wake time.Time
	for _, t := range at {
		if t.After(now) && (wake.IsZero() || t.Before(wake)) {
			wake = t
		}
	}
	return wake
}

// wait blocks until a request or report arrives, a permit's signal is
// delivered, or wake. One timer serves as long as its deadline is not
// later than wake: a timer started per wait would cost two history
// events each time a signal came first.
func (g *gate) wait(ctx workflow.Context, now, wake time.Time) {
	if !wake.IsZero() && (g.timer == nil || wake.Before(g.timerAt)) {
		if g.timer != nil {
			g.cancelTimer()
		}
		tctx, cancel := workflow.WithCancel(ctx)
		g.timer, g.timerAt, g.cancelTimer = workflow.NewTimer(tctx, max(wake.Sub(now), time.Millisecond)), wake, cancel
	}
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(g.requests, func(c workflow.ReceiveChannel, _ bool) {
		var r PermitRequest
		if receive(ctx, c, &r) {
			g.request(ctx, r, workflow.Now(ctx))
		}
	})
	sel.AddReceive(g.dones, func(c workflow.ReceiveChannel, _ bool) {
		var d PermitDone
		if receive(ctx, c, &d) {
			g.done(ctx, d, workflow.Now(ctx))
		}
	})
	sel.AddReceive(g.sent, func(c workflow.ReceiveChannel, _ bool) { c.ReceiveAsync(nil) })
	if g.timer != nil {
		timer := g.timer
		sel.AddFuture(timer, func(workflow.Future) {
			if g.timer == timer {
				g.timer = nil
			}
		})
	}
	sel.Select(ctx)
}

// publish keeps AttrGateState equal to the gate's state.
func (g *gate) publish(ctx workflow.Context, now time.Time) {
	st := g.state(now).State
	if st == g.published {
		return
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrGateState.ValueSet(st)); err != nil {
		g.log.Warn("Upserting the gate state failed", "Error", err)
		return
	}
	g.published = st
}

// state is the gate as the API and the metrics show it.
func (g *gate) state(now time.Time) dispatcher.FlowState {
	s := dispatcher.FlowState{Function: g.function, State: dispatcher.FlowClosed, Waiting: len(g.Waiting), InFlight: len(g.Leases)}
	for _, l := range g.Leases {
		if l.Next != nil {
			s.Waiting++ // a reset run's, behind the lease of the run it ended
		}
	}
	if len(g.Waiting) > 0 {
		s.OldestWaiting = g.Waiting[0].At
	}
	if g.Flow.Paused(now) {
		s.State, s.PausedUntil = dispatcher.FlowPaused, *g.Flow.PausedUntil
	}
	if g.Open {
		s.State, s.OpenedAt, s.NextProbe = dispatcher.FlowOpen, g.OpenedAt, g.NextProbe
	}
	return s
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

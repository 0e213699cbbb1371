package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
)

const (
	// permitRecheck is how long a call waits for its permit before it
	// asks again (idempotently), then twice as long each time up to
	// maxPermitRecheck: should its gate have been terminated (and started
	// afresh by another call), the request is not lost for good. A gate
	// takes a request it has as a no-op.
	permitRecheck    = 10 * time.Minute
	maxPermitRecheck = 2 * time.Hour
	// gateScheduleMargin bounds how long a gated regular attempt may wait
	// in the task queue before it starts (ScheduleToClose − StartToClose).
	gateScheduleMargin = time.Minute
	// gateLeaseMargin is what a permit's lease adds to the longest its
	// call may take, for the report to reach the gate.
	gateLeaseMargin = time.Minute
	// permitRetry is how long a call waits for its permit after Temporal
	// did not take its request (dispatchV8) before it asks again.
	permitRetry = time.Minute
)

// requestPermitOptions: a permit request is one signal-with-start,
// retried while Temporal does not take it: for ten seconds in all (the
// SDK's schedule-to-close is the start-to-close when unset) before
// dispatchV8, for two minutes from it, after which the call waits and
// asks again.
var (
	requestPermitOptions = workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	}
	requestPermitOptionsV8 = workflow.LocalActivityOptions{
		StartToCloseTimeout:    10 * time.Second,
		ScheduleToCloseTimeout: 2 * time.Minute,
		RetryPolicy:            requestPermitOptions.RetryPolicy,
	}
)

// attemptGated runs the call of a gated function's action (dispatchV4):
// each attempt waits for a permit of the function's Gate, is made once —
// as a local activity when it fits the local call limit, as the fast
// path's first attempt is, or else as a heartbeating regular activity —
// and reports how it ended to the gate. The workflow drives the retries
// as the action's policy says (the function's Retry-After first), so time
// spent waiting for a permit, however long a circuit stays open, never
// consumes an attempt: only calls made count.
func (d *dispatch) attemptGated(ctx workflow.Context, o *dispatcher.ActionOutcome, a *dispatcher.Action, fn dispatcher.FunctionRef,
	in dispatcher.TaskInput, result *dispatcher.TaskResult) error {
	defer d.slowly(ctx)() // a permit comes in a workflow task of its own
	policy := retryPolicy(a.RetryPolicy)
	gate := dispatcher.GateWorkflowID(dispatcher.TenantOf(d.key), fn.Name)
	// The call may wait for its rate limit's slot first: at most the
	// gate's lookahead, doubled for the clocks of worker and server
	// (activities.maxSlotWait).
	timeout := functionTimeout(fn) + 2*rateLookahead
	local := timeout <= d.localCallLimit()
	lease := timeout + gateLeaseMargin
	if !local {
		lease += gateScheduleMargin
	}
	delay := policy.InitialInterval
	misses := 0 // of attempt n's slots, in a row
	for n, permits := 1, 1; ; permits++ {
		if err := d.roomForCycle(ctx); err != nil {
			o.Attempts = n - 1 // this one not made
			return err
		}
		// Permit requests are numbered apart from attempts: a call that
		// missed its slot or came too late for its permit's lease
		// (dispatcher.FailureSlotMissed) was not made, and asks again
		// without consuming one.
		id := fmt.Sprint(in.IdempotencyKey, "/", n)
		if permits > n {
			id = fmt.Sprint(id, ".", permits)
		}
		req := PermitRequest{ID: id, WorkflowID: d.key, RunID: workflow.GetInfo(ctx).WorkflowExecution.RunID, Lease: lease}
		p, err := d.permit(ctx, o, gate, fn.Name, req)
		if err != nil {
			return err
		}
		o.Attempts = n
		in.LocalAttempts = n - 1 // the payload's attempt is n
		in.NotBefore, in.PermitExpires = p.NotBefore, p.Expires
		in.ShareBound = local && d.version >= dispatchV21
		err = d.callOnce(ctx, local, timeout, in, result)
		d.report(ctx, gate, req.ID, permitResult(err, local))
		if historyFull(err) {
			o.Attempts = n - 1 // this one not made
		}
		if det, _ := failureDetails(err); det.Busy && in.ShareBound && ctx.Err() == nil {
			// Its worker had no room for it (its tenant's share): made as
			// a regular activity from now on, under a permit of its own,
			// at no attempt's cost.
			local, lease = false, timeout+gateLeaseMargin+gateScheduleMargin
			continue
		}
		if (slotMissed(err) || d.version >= dispatchV7 && !local && neverStarted(err)) && ctx.Err() == nil {
			// A worker whose clock runs ahead of the server's, one too
			// loaded to keep its slots, or a task queue backed up would
			// miss them for ever: from dispatchV6 the maxSlotMisses-th
			// miss in a row is a failed attempt, which the retry policy
			// bounds.
			if misses++; d.version < dispatchV6 || misses < maxSlotMisses {
				continue
			}
			workflow.GetLogger(ctx).Warn("A gated call missed its slot again and again: counted as a failed attempt (is the worker's clock ahead of Temporal's, or its task queue backed up?)",
				"ActionID", a.ID, "Function", fn.Name, "Misses", misses)
		}
		misses = 0
		// The outcome shows the last error while the call waits for its
		// next attempt, as a regular activity's retries do.
		o.ErrorClass, o.Error = "", ""
		if err != nil {
			o.ErrorClass, o.Error = classify(err)
			o.Error = truncate(o.Error, maxOutcomeError)
		}
		if err == nil || !retryable(err) || (policy.MaximumAttempts > 0 && n >= int(policy.MaximumAttempts)) {
			return err
		}
		// Each failed attempt is a warning naming its action: a call made
		// as a local activity has no other line (the SDK's "Activity
		// error." is a regular one's, without the action), and before, a
		// gated function's failures went unlogged until the action
		// failed for good (a probe).
		workflow.GetLogger(ctx).Warn("Gated call failed; retrying", "ActionID", a.ID, "Function", fn.Name,
			"ActionAttempt", n, "ErrorClass", o.ErrorClass, "Error", err)
		n++
		if ctx.Err() != nil {
			return canceledAfter(err)
		}
		wait := delay
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.NextRetryDelay() > 0 {
			wait = appErr.NextRetryDelay()
		}
		delay = min(time.Duration(float64(delay)*policy.BackoffCoefficient), policy.MaximumInterval)
		if err := d.sleepUntilAttempt(ctx, o, wait); err != nil {
			return err
		}
	}
}

// maxSlotMisses is how many slots in a row one attempt of a gated call
// may miss before the miss counts as a failed attempt (dispatchV6).
const maxSlotMisses = 3

// permit asks the gate for a permit and waits for it; the outcome shows
// the action waiting meanwhile. A cancel while it waits gives the
// request up.
func (d *dispatch) permit(ctx workflow.Context, o *dispatcher.ActionOutcome, gate, function string, req PermitRequest) (PermitGrant, error) {
	d.listenForPermits(ctx)
	o.Status = dispatcher.OutcomeWaiting
	defer func() { o.Status = dispatcher.OutcomeRunning }()
	in := RequestPermitInput{Gate: gate, Function: function, TaskQueue: workflow.GetInfo(ctx).TaskQueueName, Request: req}
	opts := requestPermitOptions
	if d.version >= dispatchV8 {
		opts = requestPermitOptionsV8
	}
	lctx := workflow.WithLocalActivityOptions(ctx, opts)
	// asked is the run the request was last asked by, as its marker
	// says: a permit for another run is not this one's (dispatchV14), nor
	// one that came before an ask succeeded (the next one takes it).
	// A reset copies the ended run's signals into the new run, its
	// permits with them, maybe used and given back long ago; the new run
	// asks again and waits for its own. Not the run's own ID: a reset
	// run replays the ended run's events, and took its permits then.
	var asked string
	ours := func() bool {
		p, ok := d.permits[req.ID]
		return ok && (d.version < dispatchV14 || p.RunID == "" || p.RunID == asked)
	}
	for recheck := permitRecheck; ; {
		wait := recheck
		if err := workflow.ExecuteLocalActivity(lctx, ActivityRequestPermit, in).Get(ctx, &asked); err == nil {
			recheck = min(2*recheck, maxPermitRecheck)
		} else if d.version < dispatchV8 || ctx.Err() != nil {
			d.report(ctx, gate, req.ID, PermitReleased)
			return PermitGrant{}, err
		} else {
			// Temporal may have taken it all the same: the permit may come.
			wait = permitRetry
		}
		granted, err := workflow.AwaitWithTimeout(ctx, wait, ours)
		if err != nil {
			d.report(ctx, gate, req.ID, PermitReleased)
			return PermitGrant{}, err
		}
		if !granted {
			continue
		}
		p := d.permits[req.ID]
		delete(d.permits, req.ID)
		if d.version >= dispatchV16 && p.RunID != "" && p.RunID != runNow(ctx) {
			// A reset to a task after the request kept the request's
			// marker, which names the run it ended, and copied that run's
			// permit in: not this run's to use. It asks again.
			workflow.GetLogger(ctx).Info("A permit of the run a reset ended: asking for one of this run's own", "RequestID", req.ID, "PermitRunID", p.RunID)
			recheck = permitRecheck
			continue
		}
		return p, nil
	}
}

// runNow is the run executing the workflow at this point of its history:
// recorded as a side effect, so that a reset run replaying the run it
// ended gets that run's ID where that run took a permit, and its own where
// it runs the code afresh. workflow.GetInfo gives the reset run's ID
// in both.
func runNow(ctx workflow.Context) string {
	var id string
	_ = workflow.SideEffect(ctx, func(ctx workflow.Context) any {
		return workflow.GetInfo(ctx).WorkflowExecution.RunID
	}).Get(&id)
	return id
}

// listenForPermits starts, once per run, the coroutine that takes the
// permits the gates send, for whichever action asked.
func (d *dispatch) listenForPermits(ctx workflow.Context) {
	if d.permits != nil {
		return
	}
	d.permits = map[string]PermitGrant{}
	ch := workflow.GetSignalChannel(ctx, SignalPermit)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var p PermitGrant
			ch.Receive(ctx, &p)
			d.permits[p.RequestID] = p
		}
	})
}

// callOnce makes one call of a gated function.
func (d *dispatch) callOnce(ctx workflow.Context, local bool, timeout time.Duration, in dispatcher.TaskInput, result *dispatcher.TaskResult) error {
	once := &temporal.RetryPolicy{MaximumAttempts: 1}
	if local {
		// Disconnected, as the fast path's: a cancel waits for the call.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		lctx := workflow.WithLocalActivityOptions(dctx, localOptions(timeout))
		err := workflow.ExecuteLocalActivity(lctx, LocalCallFunction, in).Get(dctx, result)
		d.localAt = workflow.GetInfo(ctx).GetCurrentHistoryLength()
		return err
	}
	opts := workflow.ActivityOptions{
		StartToCloseTimeout:    timeout,
		ScheduleToCloseTimeout: timeout + gateScheduleMargin,
		HeartbeatTimeout:       heartbeatTimeout,
		WaitForCancellation:    true,
		RetryPolicy:            once,
	}
	if d.version >= dispatchV7 {
		// A call no worker started in time ends as one not made
		// (neverStarted), which asks for another permit.
		opts.ScheduleToStartTimeout = gateScheduleMargin
	}
	actx := workflow.WithActivityOptions(ctx, opts)
	if err := d.pace(ctx, in); err != nil {
		return err
	}
	return workflow.ExecuteActivity(actx, ActivityCallFunction, in).Get(ctx, result)
}

// report tells the gate how a permitted call ended (or that a request is
// given up). The run waits for the signal to be delivered: one sent as a
// run completes would be dropped. Should the gate be gone, the lease
// expires there anyway.
func (d *dispatch) report(ctx workflow.Context, gate, id, result string) {
	if ctx.Err() != nil {
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	done := PermitDone{RequestID: id, Result: result}
	if d.version >= dispatchV16 {
		// A signal's input is not compared on replay: the reset run
		// replaying the run it ended sends its own ID, and reports only
		// what it does afresh.
		done.RunID = workflow.GetInfo(ctx).WorkflowExecution.RunID
	}
	err := workflow.SignalExternalWorkflow(ctx, gate, "", SignalGateDone, done).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("Reporting to the function's gate failed", "Gate", gate, "RequestID", id, "Error", err)
	}
}

// neverStarted reports whether a gated call's regular activity timed out
// before a worker started it (its schedule-to-start timeout, from
// dispatchV7): the call was not made. Any other timeout may come after
// the call was made, and is an attempt.
func neverStarted(err error) bool {
	var timeout *temporal.TimeoutError
	return errors.As(err, &timeout) && timeout.TimeoutType() == enums.TIMEOUT_TYPE_SCHEDULE_TO_START
}

// slotMissed reports whether a gated call was not made because it came
// too late for its slot.
func slotMissed(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == dispatcher.FailureSlotMissed
}

// permitResult says how a call ended, for the circuit breaker: only what
// the function answered, or its silence, counts; and for its lease, a
// call that may still be running keeps its place: a regular attempt whose
// heartbeats stopped, or a first attempt run again that found the run
// before it, whose worker died or stalled, had made the call
// (activities.claimCall: a missed slot, Held).
func permitResult(err error, local bool) string {
	if err == nil {
		return PermitOK
	}
	var timeout *temporal.TimeoutError
	if !local && errors.As(err, &timeout) && timeout.TimeoutType() == enums.TIMEOUT_TYPE_HEARTBEAT {
		return PermitSilent
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case dispatcher.FailureHTTPTemporary, dispatcher.FailureTimeout:
			return PermitRetryable
		case dispatcher.FailureHTTPPermanent:
			return PermitFailed
		case dispatcher.FailureSlotMissed:
			if det, _ := failureDetails(err); det.Held {
				return PermitSilent
			}
		}
	}
	return PermitReleased
}

package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
)

// run runs job i to its outcome.
func (d *dispatch) run(ctx workflow.Context, i int) {
	j, o := d.jobs[i], &d.outcomes[i]
	defer func() { recordAction(ctx, *o) }()
	if err := d.wait(ctx, j.action, o); err != nil {
		d.fail(ctx, o, err)
		o.Error = notBegun // canceled while it waited
		return
	}
	if d.version >= dispatchV7 && ctx.Err() != nil {
		// Canceled before it began (the cancel in the run's first
		// workflow task): no attempt, no permit asked for.
		d.fail(ctx, o, temporal.NewCanceledError())
		o.Error = notBegun
		if d.madeInLostTask(ctx, j) {
			// Support does not read "0 attempts" as nothing done.
			o.Unanswered = true
			o.Error = "canceled while its first attempt may have been made: the cancel came during the run's first workflow task, whose results Temporal did not keep"
		}
		return
	}
	o.Status = dispatcher.OutcomeRunning
	o.StartedAt = workflow.Now(ctx)
	began := workflow.GetInfo(ctx).GetCurrentHistoryLength() // the workflow task it began in

	var err error
	switch j.action.Type {
	case dispatcher.ActionMail:
		err = d.sendMail(ctx, j, o)
	case dispatcher.ActionTask:
		err = d.runTask(ctx, j, o)
	default:
		err = temporal.NewNonRetryableApplicationError("unknown action type "+j.action.Type, dispatcher.FailureNotFound, nil)
	}
	if err != nil {
		last := o.Error // an earlier attempt's, while the action waited or retried
		d.fail(ctx, o, err)
		if o.Status == dispatcher.OutcomeCanceled && last != "" {
			o.Error = truncate(o.Error+"; its last failed attempt: "+last, maxOutcomeError)
		}
		if o.Status == dispatcher.OutcomeCanceled && o.Unanswered {
			o.Error = "canceled after an attempt that may have been made: a mail handed over without an answer, or a call made in a workflow task whose results Temporal did not keep"
		}
		d.showFailures(ctx)
		d.emitTaskFailed(ctx, i, began)
		return
	}
	o.Status = dispatcher.OutcomeSucceeded
	o.ErrorClass, o.Error = "", "" // an earlier attempt's
	o.FinishedAt = workflow.Now(ctx)
}

// notBegun is the error of an action canceled before it began: while it
// waited for its startTimestamp, or before its first attempt. Before,
// "canceled before it finished", which support read as a call cut short.
const notBegun = "canceled before it began"

// firstTaskStarted is the history length at most when a run's first
// workflow task starts: its WorkflowTaskStarted is event 3, or 4 when a
// cancel was requested before a worker took the task.
const firstTaskStarted = 4

// madeInLostTask reports whether job j, about to begin in the run's first
// task that completes, may have been made in one before that did not:
// one that made the first attempts, whose completion Temporal refused for
// a cancel that came meanwhile (or whose worker died), and their results
// with it. Only a first attempt made as a local activity is made in the
// task itself: a mail, an ungated HTTP call within the local call limit;
// a gated call asks for a permit first, a longer call is a regular
// activity and a temporal function a child workflow: commands that task
// would have had to complete. (A lost task that failed before making
// anything, a panic, reads the same.) In a later task, the run keeps the
// attempt's result (keepLocalResults, dispatchV18).
func (d *dispatch) madeInLostTask(ctx workflow.Context, j job) bool {
	if d.firstTask <= firstTaskStarted || workflow.GetInfo(ctx).GetCurrentHistoryLength() != d.firstTask {
		return false
	}
	switch j.action.Type {
	case dispatcher.ActionMail:
		return mailTimeout <= d.localCallLimit()
	case dispatcher.ActionTask:
		fn, ok := d.cfg.Function(j.action.FunctionName)
		return ok && fn.Kind == dispatcher.FunctionHTTP && !fn.Gated && functionTimeout(fn) <= d.localCallLimit()
	}
	return false
}

// showFailures upserts the failed actions' search attributes while
// another action of the dispatch waits for its startTimestamp
// (dispatchV10) or goes on past its first workflow task (dispatchV17:
// slowly), as finish does when the dispatch closes: the failure is found
// by its class, and counted in the list, while the dispatch is scheduled
// or running. It runs when an action fails while one waits or goes on,
// and when the first begins to wait or to go on after some failed
// (coroutines run in the order of the actions: one that fails without a
// call fails before the next begins to wait). A canceled dispatch's are
// upserted as it closes.
func (d *dispatch) showFailures(ctx workflow.Context) {
	if d.version < dispatchV10 || d.waiting == 0 && d.slow == 0 || ctx.Err() != nil {
		return
	}
	var ids, classes []string
	var failed []dispatcher.ActionOutcome
	for _, o := range d.outcomes {
		if o.Status != dispatcher.OutcomeFailed {
			continue
		}
		failed = append(failed, o)
		ids = append(ids, o.ActionID)
		if !slices.Contains(classes, o.ErrorClass) {
			classes = append(classes, o.ErrorClass)
		}
	}
	if len(failed) == 0 {
		return
	}
	slices.Sort(classes)
	classes = append(classes, errorPairs(failed)...)
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		AttrFailedActionIDs.ValueSet(BoundKeywords(ids)),
		AttrErrorClasses.ValueSet(BoundKeywords(classes)),
	); err != nil {
		workflow.GetLogger(ctx).Warn("Upserting the failed actions' search attributes failed", "Error", err)
	}
}

// wait sleeps on a durable timer until the action's startTimestamp, if it
// is in the future. It fails when the dispatch is canceled meanwhile.
func (d *dispatch) wait(ctx workflow.Context, a *dispatcher.Action, o *dispatcher.ActionOutcome) error {
	if a.StartTimestamp == nil {
		return nil
	}
	delay := a.StartTimestamp.Sub(workflow.Now(ctx))
	if delay <= 0 {
		return nil // absent or past: now
	}
	o.Status = dispatcher.OutcomeScheduled
	d.setWaiting(ctx, +1)
	defer d.setWaiting(ctx, -1)
	return workflow.NewTimerWithOptions(ctx, delay, workflow.TimerOptions{Summary: summary("startTimestamp of ", o)}).Get(ctx, nil)
}

// setWaiting counts an action that begins (+1) or ends (-1) waiting for
// its startTimestamp.
func (d *dispatch) setWaiting(ctx workflow.Context, delta int) {
	if ctx.Err() != nil {
		// As before dispatchV20, the failures are shown on a canceled
		// run too.
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	before := d.waiting
	d.waiting += delta
	d.showScheduled(ctx)
	if before == 0 && d.waiting > 0 {
		d.showFailures(ctx) // of the actions that failed before any waited
	}
}

// showScheduled upserts AttrScheduled when it changes: true while an
// action waits for its startTimestamp and, from dispatchV20, none retries,
// makes a call too long for a local activity, waits for its gate's permit
// or runs a child workflow (slowly): a dispatch retrying an action beside
// one that waits is running, not scheduled. (A first attempt that
// outlasts its workflow task, or a function looked up again while its
// store does not answer, is not counted: both end within minutes.)
// Before, it was shown scheduled, left out of the running ones and of the
// pending dispatches' age, whose alert never fired for it however long it
// retried.
func (d *dispatch) showScheduled(ctx workflow.Context) {
	scheduled := d.waiting > 0 && (d.version < dispatchV20 || d.slow == 0)
	if scheduled == d.scheduled {
		return
	}
	d.scheduled = scheduled
	if ctx.Err() != nil {
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	updates := []temporal.SearchAttributeUpdate{AttrScheduled.ValueSet(scheduled)}
	if !scheduled && d.version >= dispatchV20 {
		// Pending from now: the pending dispatches' age leaves the wait
		// out. Before, a dispatch that waited a day and then retried was
		// a day old at its first retry, and alerted at once.
		updates = append(updates, AttrPendingSince.ValueSet(workflow.Now(ctx)))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Warn("Upserting the scheduled search attribute failed", "Error", err)
	}
}

func (d *dispatch) idempotencyKey(j job) string {
	return IdempotencyKey(d.key, j.dispatcher.ID, j.action.ID, d.in.KeyRun(j.action.ID))
}

// KeyRun is the Run whose keys the action takes: the run's own, or from
// dispatchV14 the earlier one Keys names.
func (in DispatchInput) KeyRun(actionID string) string {
	if run, ok := in.Keys[actionID]; ok && workflow.Version(in.Version) >= dispatchV14 {
		return run
	}
	return in.Run
}

// IdempotencyKey is the same for every attempt of one action of one run of
// a dispatch, and the workflow ID of a temporal function's child:
// "<workflowID>/<dispatcherID>/<actionID>[/replay-<run>]", where run is
// the replay ID of a replay's run (DispatchInput.Run), empty otherwise.
func IdempotencyKey(workflowID, dispatcherID, actionID, run string) string {
	k := workflowID + "/" + dispatcherID + "/" + actionID
	if run != "" {
		k += "/replay-" + run
	}
	return k
}

// isReset reports whether this run was reset from the Temporal Web UI or
// CLI: it carries the first event, and so the original run id, of the run
// it was reset from. The actions it hands the flag to refuse to run when a
// replay has superseded that run (activities: superseded); it changes no
// command, so that runs of every version have it.
func isReset(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return info.OriginalRunID != "" && info.OriginalRunID != info.WorkflowExecution.RunID
}

// messageID turns an idempotency key into a Message-ID (without angle
// brackets): "/" and anything else outside RFC 5322 atext become ".".
func messageID(key string) string {
	var b strings.Builder
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-_~!#$%&'*+=?^`{|}", r):
			b.WriteRune(r)
		default:
			b.WriteByte('.')
		}
	}
	return b.String() + "@dispatcher"
}

func (d *dispatch) sendMail(ctx workflow.Context, j job, o *dispatcher.ActionOutcome) error {
	in := dispatcher.MailInput{
		Event:         d.in.Event,
		DispatcherID:  j.dispatcher.ID,
		ActionID:      j.action.ID,
		TemplateID:    j.action.TemplateID,
		Recipients:    j.action.Recipients,
		MessageID:     messageID(d.idempotencyKey(j)),
		Run:           d.in.Run,
		Reset:         isReset(ctx),
		ConfigVersion: d.cfg.Version,
	}
	var res dispatcher.MailResult
	err := d.attempt(ctx, o, j.action, LocalSendMail, ActivitySendMail, mailTimeout, func(int) any { return in }, &res)
	o.MessageID = in.MessageID
	if det, ok := failureDetails(err); ok {
		o.Unanswered = det.Unanswered
	}
	return err
}

// runTask runs a task action with its function as the configuration
// says or, from dispatchV11, for an action scheduled for later than its
// dispatch started, as it is when its time comes (function).
func (d *dispatch) runTask(ctx workflow.Context, j job, o *dispatcher.ActionOutcome) error {
	fn, ok := d.cfg.Function(j.action.FunctionName)
	if d.version >= dispatchV11 && j.action.StartTimestamp != nil && j.action.StartTimestamp.After(workflow.GetInfo(ctx).WorkflowStartTime) {
		now, err := d.function(ctx, j.action.FunctionName)
		switch {
		case err == nil:
			fn, ok = now, now.Name != ""
		case ctx.Err() != nil:
			return err // canceled
		default:
			// The call needs the store too: it fails retryably until the
			// store answers, under the action's retry policy.
			workflow.GetLogger(ctx).Warn("Looking the function up again failed; calling it as the dispatch's configuration has it",
				"Function", j.action.FunctionName, "Error", err)
		}
	}
	if !ok {
		o.Attempts = 0
		return temporal.NewNonRetryableApplicationError(
			"function "+j.action.FunctionName+" does not exist", dispatcher.FailureNotFound, nil)
	}
	in := dispatcher.TaskInput{
		Event:          d.in.Event,
		DispatcherID:   j.dispatcher.ID,
		ActionID:       j.action.ID,
		FunctionName:   j.action.FunctionName,
		Data:           j.action.Data,
		Tags:           j.action.Tags,
		StartTimestamp: j.action.StartTimestamp,
		IdempotencyKey: d.idempotencyKey(j),
		Run:            d.in.Run,
		Reset:          isReset(ctx),
		ConfigVersion:  d.cfg.Version,
	}
	if fn.Kind == dispatcher.FunctionTemporal {
		return d.runChild(ctx, j, o, fn, in)
	}
	var res dispatcher.TaskResult
	var err error
	if d.version >= dispatchV4 && fn.Gated {
		err = d.attemptGated(ctx, o, j.action, fn, in, &res)
	} else {
		// Not for a gated call: a missed slot asks for another permit,
		// and a worker whose clock ran ahead would never call.
		in.TaskStarted = workflow.Now(ctx)       // a local activity's input: in no command (attemptRegular)
		in.ShareBound = d.version >= dispatchV12 // refused, it is made as a regular attempt (notMade)
		err = d.attempt(ctx, o, j.action, LocalCallFunction, ActivityCallFunction, functionTimeout(fn),
			func(local int) any { in.LocalAttempts = local; return in }, &res)
	}
	o.HTTPStatus = res.StatusCode
	if det, ok := failureDetails(err); ok {
		o.HTTPStatus = det.StatusCode
	}
	return err
}

// function looks the function name up again (ActivityResolveFunction):
// its kind, timeout and flow control as they are now, days after the
// configuration was read maybe; a function deleted meanwhile is the zero
// FunctionRef. It fails when the store does not answer for
// resolveFunctionOptions' ScheduleToCloseTimeout.
func (d *dispatch) function(ctx workflow.Context, name string) (dispatcher.FunctionRef, error) {
	lctx := workflow.WithLocalActivityOptions(ctx, resolveFunctionOptions)
	var fn dispatcher.FunctionRef
	err := workflow.ExecuteLocalActivity(lctx, ActivityResolveFunction,
		dispatcher.ResolveFunctionInput{Name: name, ConfigVersion: d.cfg.Version}).Get(ctx, &fn)
	return fn, err
}

// runChild runs a task function that is a Temporal workflow as a child
// workflow named after the function, on its task queue, with the payload
// an HTTP function would receive. A cancel of the dispatch reaches the
// child, and the outcome waits for the child to say how it ended.
func (d *dispatch) runChild(ctx workflow.Context, j job, o *dispatcher.ActionOutcome, fn dispatcher.FunctionRef, in dispatcher.TaskInput) error {
	if d.version < dispatchV1 {
		return d.runChildV0(ctx, j, o, fn, in)
	}
	defer d.slowly(ctx)() // a child workflow outlasts the task that starts it
	// Templates are rendered in a local activity: how long they take is
	// up to an admin, and workflow code must stay quick and deterministic.
	var payload dispatcher.TaskPayload
	in.TaskQueue = fn.TaskQueue
	bound := 0
	if d.version >= dispatchV9 {
		// The payload, the marker of the result, is the event and the
		// action's data, resolved: as it is, about the size of in, or,
		// templated, up to MaxTaskPayloadBytes, which PrepareTask holds
		// it to (templates may copy the event again and again).
		bound = measure(in)
		if strings.Contains(string(in.Data), "{{") {
			bound = dispatcher.MaxTaskPayloadBytes + 1<<10
		}
		if err := d.paceSize(ctx, bound); err != nil {
			return err
		}
	}
	task := d.paceTask
	pctx := workflow.WithLocalActivityOptions(ctx, prepareTaskOptions)
	if err := workflow.ExecuteLocalActivity(pctx, ActivityPrepareTask, in).Get(ctx, &payload); err != nil {
		return err
	}
	if bound > 0 && d.paceTask == task && workflow.GetInfo(ctx).GetCurrentHistoryLength() == task {
		// Back in the same task: it holds the marker, not the bound.
		d.paceBytes = max(d.paceBytes-bound+measure(payload), 0)
	}
	policy := retryPolicy(j.action.RetryPolicy)
	opts := workflow.ChildWorkflowOptions{
		WorkflowID:          in.IdempotencyKey,
		TaskQueue:           fn.TaskQueue,
		RetryPolicy:         &policy,
		ParentClosePolicy:   enums.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		WaitForCancellation: true,
	}
	if d.version >= dispatchV13 {
		// An earlier run of this dispatch (a reset) may have run it:
		// one that completed is not run again (awaitChild).
		opts.WorkflowIDReusePolicy = enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY
	}
	cctx := workflow.WithChildOptions(ctx, opts)
	o.Attempts = 1
	for awaited := 0; ; awaited++ {
		if err := d.pace(ctx, payload); err != nil {
			o.Attempts = 0 // not started
			return err
		}
		child := workflow.ExecuteChildWorkflow(cctx, fn.Name, payload)
		if d.version < dispatchV8 {
			return child.Get(ctx, nil)
		}
		// From dispatchV8 a cancel, which the SDK passes on to the child,
		// does not wait for the child to end (the SDK waits whatever
		// WaitForCancellation says): a child no worker runs, or one that
		// ignores cancels, held its dispatch, and an ordered key, for ever.
		err := untilCanceled(ctx, child)
		var started *temporal.ChildWorkflowExecutionAlreadyStartedError
		if d.version < dispatchV13 || !errors.As(err, &started) {
			return err
		}
		if awaited == maxChildAwaits {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"its child workflow %s was started elsewhere %d times while this dispatch awaited it", in.IdempotencyKey, awaited), dispatcher.FailureTask, nil)
		}
		// An earlier run of this dispatch (a reset) started it: its
		// outcome is the action's, and one that did not complete runs
		// again, as the reset means.
		if again, err := awaitChild(ctx, in.IdempotencyKey); !again {
			return err
		}
	}
}

// maxChildAwaits bounds how often one action awaits a child workflow that
// another run started (dispatchV13) before it gives up.
const maxChildAwaits = 3

// untilCanceled waits for f, or for a cancel of the dispatch, which it
// does not pass on (the SDK passes it on to children and activities).
func untilCanceled(ctx workflow.Context, f workflow.Future) error {
	var err error
	workflow.NewSelector(ctx).
		AddFuture(f, func(f workflow.Future) { err = f.Get(ctx, nil) }).
		AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { err = temporal.NewCanceledError() }).
		Select(ctx)
	return err
}

// awaitChild waits for the child workflow id that an earlier run of the
// dispatch started (dispatchV13: its reset) and returns its outcome as
// the action's: nil when it completed. again says it did not complete
// (failed, timed out, canceled or terminated, before or while awaited),
// so that it runs again. Each attempt of ActivityAwaitDispatch looks once
// and fails while the child runs, so its retries poll it holding no
// worker slot. A cancel of the dispatch is passed on to the child, which
// is not its own to the SDK. A child gone from Temporal meanwhile (its
// retention passed) leaves the action failed: whether it ran is unknown.
func awaitChild(ctx workflow.Context, id string) (again bool, err error) {
	closed := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, awaitOptions), ActivityAwaitDispatch, AwaitDispatchInput{WorkflowID: id})
	if err := untilCanceled(ctx, closed); err != nil {
		if ctx.Err() != nil {
			dctx, _ := workflow.NewDisconnectedContext(ctx) // so that Get waits for the answer
			if err := workflow.RequestCancelExternalWorkflow(dctx, id, "").Get(dctx, nil); err != nil {
				workflow.GetLogger(ctx).Warn("Canceling the child workflow awaited failed", "WorkflowID", id, "Error", err)
			}
		}
		return false, err
	}
	var c DispatchClosed
	_ = closed.Get(ctx, &c) // ready, and no error
	switch c.Status {
	case ClosedCompleted, ClosedContinuedAsNew:
		return false, nil
	case ClosedNotFound:
		return false, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"its child workflow %s, which an earlier run of this dispatch started (a reset), is gone from Temporal (its retention passed): whether it ran is unknown", id),
			dispatcher.FailureTask, nil)
	}
	workflow.GetLogger(ctx).Info("The child workflow an earlier run started did not complete: it runs again", "WorkflowID", id, "Status", c.Status)
	return true, nil
}

// paceBytes bounds the input the regular activities and child workflows
// of one workflow task carry (dispatchV6), and the payloads its
// PrepareTask local activities return (dispatchV9): each carries the event, and a
// task's completion over Temporal's 4 MiB message limit fails on every
// retry. 20 actions of a 256 KiB event, handed off after the same delay,
// held their dispatch open for ever.
const paceBytes = 1 << 20

// pace waits, before a command whose input is in, until the current
// workflow task has room for it: a task carries at most paceBytes of
// input, or one command of any size. The wait is a timer, shared by
// those that wait: its firing starts the next task. A cancel of the
// dispatch does not cut it short; the command then sees the cancel. A
// replay measures the inputs again, so their encoding must not change
// (TestPacedInputsKeepTheirShape).
func (d *dispatch) pace(ctx workflow.Context, in any) error {
	if d.version < dispatchV6 {
		return nil
	}
	return d.paceSize(ctx, measure(in))
}

// measure returns the bytes a command whose input is in adds to a
// workflow task's completion.
func measure(in any) int {
	// As the run a reset run was reset from measured it (isReset): the
	// commands that run made are made again, and must wait alike.
	switch v := in.(type) {
	case dispatcher.MailInput:
		v.Reset = false
		in = v
	case dispatcher.TaskInput:
		v.Reset = false
		in = v
	}
	p, err := converter.GetDefaultDataConverter().ToPayload(in)
	if err != nil {
		return paceBytes // what cannot be measured goes alone
	}
	return len(p.GetData()) + 1<<10 // and the command's other fields
}

// paceSize is pace for a command of size bytes. From dispatchV17 it
// refuses one that would take the run's history past
// DispatchHistoryBudget: FailureHistoryFull, nothing attempted.
func (d *dispatch) paceSize(ctx workflow.Context, size int) error {
	for {
		if task := workflow.GetInfo(ctx).GetCurrentHistoryLength(); task != d.paceTask {
			d.paceTask, d.paceBytes, d.nextTask = task, 0, nil
		}
		if d.paceBytes == 0 || d.paceBytes+size <= paceBytes {
			return d.fill(ctx, size)
		}
		if d.nextTask == nil {
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			d.nextTask = workflow.NewTimer(dctx, time.Millisecond)
		}
		_ = d.nextTask.Get(ctx, nil)
	}
}

// DispatchHistoryBudget is the most history a dispatch's run fills with
// its commands' inputs (dispatchV17; a change of it is a new version: a
// replay must refuse the same commands). Temporal ends a run whose
// history passes 50 MiB (its default limit.historySize.error), and the
// run's actions not made by then never are, their outcomes lost. Each
// regular attempt, child workflow and templated payload carries the
// event: 200 actions of a 256 KiB event whose calls retried passed it.
// The rest, 10 MiB, is room for what a workflow task holds besides
// (markers, results).
const DispatchHistoryBudget = 40 << 20

// DispatchHistoryEvents is the most events a dispatch's run holds before
// a gated call asks for another permit (dispatchV22; a change of it is a
// new version). Temporal terminates a run whose history passes 51,200
// events (its default limit.historyCount.error); the rest is room for the
// cycles of the run's other actions under way, some 17 events each.
const DispatchHistoryEvents = 40_000

// roomForCycle refuses, from dispatchV22, another permit's cycle of a
// gated call once the run's history holds DispatchHistoryEvents events:
// FailureHistoryFull, nothing attempted.
func (d *dispatch) roomForCycle(ctx workflow.Context) error {
	n := workflow.GetInfo(ctx).GetCurrentHistoryLength()
	if d.version < dispatchV22 || n < DispatchHistoryEvents {
		return nil
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
		"this attempt was not made: the dispatch's history holds %d events, near the most Temporal keeps of a run; "+
			"replay the dispatch: each run makes the actions that fit, each under the key it had", n), dispatcher.FailureHistoryFull, nil)
}

// fill adds a command of size bytes to the current workflow task, unless
// it would take the run's history past DispatchHistoryBudget.
func (d *dispatch) fill(ctx workflow.Context, size int) error {
	// The history's size when the task started, which a replay reads
	// from the same event, and what the task has added since.
	used := int(workflow.GetInfo(ctx).GetCurrentHistorySize()) + d.paceBytes
	if d.version >= dispatchV17 && used+size > DispatchHistoryBudget {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"this attempt was not made: its input (%d KiB: the event and the action's data) would take the dispatch's history past %d MiB "+
				"(it holds %d MiB), near the most Temporal keeps of a run; replay the dispatch: each run makes the actions that fit, "+
				"each under the key it had", size>>10, DispatchHistoryBudget>>20, used>>20), dispatcher.FailureHistoryFull, nil)
	}
	d.paceBytes += size
	return nil
}

// attempt runs an action to its end: every attempt of its retry policy,
// each one ending before the next begins as far as the workflow can
// tell. A receiver may still see two calls of one action at once: an
// attempt whose worker Temporal gave up on (its heartbeats stopped
// reaching the server, or a local attempt's workflow task was lost) goes
// on while the next runs elsewhere. Mail claims its send against that
// (models.Store.ClaimMail); an HTTP receiver deduplicates by the
// Idempotency-Key, answering 409 to a key in flight, which is retried.
//
// The first attempt runs as a local activity inside the workflow task,
// the fast path, when its call may take no longer than the local call
// limit; it then has the call's whole timeout, and its code always
// returns before Temporal's deadline (activities end calls a margin
// early), so its result says how the call ended. It runs in a
// disconnected context: a cancel of the dispatch waits for it rather
// than reporting "canceled" while the call completes; an action whose
// dispatch was canceled before it began makes none (run, dispatchV7).
// When it fails retryably, the action waits as the retry policy (or the
// function's Retry-After) says and is handed to a regular activity with
// the remaining attempts, which heartbeat — a dead worker's attempt is
// retried after the heartbeat timeout — and report a cancel only once
// the attempt has ended (WaitForCancellation). input builds the activity
// input given the number of local attempts already made.
func (d *dispatch) attempt(ctx workflow.Context, o *dispatcher.ActionOutcome, a *dispatcher.Action, local, regular string,
	timeout time.Duration, input func(localAttempts int) any, result any) error {
	if d.version < dispatchV1 {
		return d.attemptV0(ctx, o, a, local, regular, timeout, input, result)
	}
	policy := retryPolicy(a.RetryPolicy)
	o.Attempts = 1
	localAttempts := 0
	if timeout <= d.localCallLimit() {
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		lctx := workflow.WithLocalActivityOptions(dctx, localOptions(timeout))
		err := workflow.ExecuteLocalActivity(lctx, local, input(0)).Get(dctx, result)
		d.localAt = workflow.GetInfo(ctx).GetCurrentHistoryLength()
		// Not made: it waited too long for a slot of its worker
		// (activities.queuedTooLong). The regular activity makes it, at
		// once and with the whole policy.
		notMade := d.version >= dispatchV12 && slotMissed(err)
		nothing := d.version >= dispatchV16 && madeNothing(err)
		if err == nil || !retryable(err) || policy.MaximumAttempts == 1 && !notMade && !nothing {
			return err
		}
		if ctx.Err() != nil {
			// Canceled after an attempt that did not succeed; one whose
			// receiver may have it all the same (a mail handed over
			// unanswered, a call its lost task may have made) says so.
			if det, _ := failureDetails(err); det.Unanswered {
				o.Unanswered = true
			}
			return canceledAfter(err)
		}
		defer d.slowly(ctx)()
		if notMade {
			workflow.GetLogger(ctx).Info("First attempt not made: its worker was busy; making it as a regular activity", "ActionID", a.ID)
			return d.attemptRegular(ctx, o, a, regular, timeout, input, result, policy, 0)
		}
		// A warning, as each failed attempt is (docs/operations.md,
		// "Logs"): before, info, below what the deployments log.
		workflow.GetLogger(ctx).Warn("First attempt failed; retrying as a regular activity",
			"ActionID", a.ID, "Error", err)
		// What the run's detail shows until the regular activity's own
		// failures do (QueryOutcomes; it commands nothing): before, a
		// backoff of up to an hour showed the action running, no error.
		o.ErrorClass, o.Error = classify(err)
		o.Error = truncate(o.Error, maxOutcomeError)
		// The second attempt comes when a retry would have: after the
		// function's Retry-After, or the policy's first interval.
		if err := d.sleepUntilAttempt(ctx, o, handoffDelay(err, policy)); err != nil {
			return err
		}
		if nothing {
			// It made nothing: the regular activity has the whole policy.
			return d.attemptRegular(ctx, o, a, regular, timeout, input, result, policy, 0)
		}
		localAttempts = 1
		policy.MaximumAttempts--
		policy.InitialInterval = min(time.Duration(float64(policy.InitialInterval)*policy.BackoffCoefficient), policy.MaximumInterval)
	} else {
		defer d.slowly(ctx)()
	}
	return d.attemptRegular(ctx, o, a, regular, timeout, input, result, policy, localAttempts)
}

// sleepUntilAttempt waits, for wait, before an action's next attempt, which its
// outcome says meanwhile (QueryOutcomes; it commands nothing).
func (d *dispatch) sleepUntilAttempt(ctx workflow.Context, o *dispatcher.ActionOutcome, wait time.Duration) error {
	o.NextAttemptAt = workflow.Now(ctx).Add(wait)
	defer func() { o.NextAttemptAt = time.Time{} }()
	// Named in the Web UI, which showed "Sleep" (not compared on replay).
	return workflow.NewTimerWithOptions(ctx, wait, workflow.TimerOptions{Summary: summary("next attempt of ", o)}).Get(ctx, nil)
}

// slowly counts an action that goes on past the workflow task of its
// first attempt — it retries, its call is too long for a local activity,
// it waits for its gate's permit, or it runs as a child workflow — until
// the returned function is called; the first such action shows the
// failures so far (showFailures), as one that begins to wait for its
// startTimestamp does. From dispatchV17.
func (d *dispatch) slowly(ctx workflow.Context) (done func()) {
	if d.version < dispatchV17 {
		return func() {}
	}
	if d.slow++; d.slow == 1 {
		d.showScheduled(ctx)
		d.showFailures(ctx)
	}
	return func() {
		d.slow--
		if ctx.Err() == nil { // canceled, the run closes: nothing to show
			d.showScheduled(ctx)
		}
	}
}

// historyFull reports whether err is fill's refusal.
func historyFull(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == dispatcher.FailureHistoryFull
}

// madeNothing reports whether a first attempt failed before it made
// anything (dispatchV16): the store did not answer before the mail was
// claimed or the function called (FailureStore: every such failure comes
// before), or another attempt holds the mail, maybe sending it
// (FailureDetails.Held: after a worker died in the middle of its first
// attempt). It costs no attempt of the action's policy: before, a failover
// of a few seconds, or a worker killed, failed an action of one attempt
// for good, and cost the others one.
func madeNothing(err error) bool {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return false
	}
	det, _ := failureDetails(err)
	return appErr.Type() == dispatcher.FailureStore || det.Held
}

// attemptRegular runs an action's attempts as a regular activity with
// policy, after localAttempts local ones.
func (d *dispatch) attemptRegular(ctx workflow.Context, o *dispatcher.ActionOutcome, a *dispatcher.Action, regular string,
	timeout time.Duration, input func(localAttempts int) any, result any, policy temporal.RetryPolicy, localAttempts int) error {
	opts := workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    heartbeatTimeout,
		WaitForCancellation: true,
		RetryPolicy:         &policy,
	}
	if d.version >= dispatchV6 {
		// Named for its action, so that the executions API finds its
		// retries among the run's pending activities (ActionActivityID).
		opts.ActivityID = ActionActivityID(a.ID)
	}
	// For the Temporal Web UI, which shows the activity's id and type
	// only: which action of which dispatcher retries. Not compared on
	// replay, nor given to first attempts, which run on every dispatch.
	opts.Summary = summary("", o)
	actx := workflow.WithActivityOptions(ctx, opts)
	in := input(localAttempts)
	if t, ok := in.(dispatcher.TaskInput); ok {
		// Only a first attempt's local activity reads it. Given to the
		// regular activity too (d798396, without a version), it made its
		// input longer than the code before had measured it, and a task
		// near paceBytes paced its activities otherwise on replay.
		t.TaskStarted, t.ShareBound = time.Time{}, false
		in = t
	}
	if err := d.pace(ctx, in); err != nil {
		o.Attempts = localAttempts // this one not made
		return err
	}
	o.Attempts = localAttempts + 1 // the regular activity's first; its retries Temporal counts
	err := workflow.ExecuteActivity(actx, regular, in).Get(ctx, result)
	o.Attempts = localAttempts + regularAttempts(err, result, policy)
	made := o.Attempts - localAttempts
	if retriesCanceled(err) && retryable(err) && (policy.MaximumAttempts <= 0 || made < int(policy.MaximumAttempts)) {
		// An attempt that failed for now after the cancel came (a call
		// runs to its end), not the policy's last: no retry follows, and
		// the action is canceled, keeping the failure as its last, as
		// when the cancel comes between attempts. Before, it ended
		// failed, as if its retries had run out (Temporal says the
		// cancel whichever, its last attempt's too). It commands
		// nothing: a canceled run neither shows nor emits failures
		// (showFailures, emitTaskFailed).
		o.ErrorClass, o.Error = classify(err)
		if det, _ := failureDetails(err); det.Unanswered {
			o.Unanswered = true
		}
		return canceledAfter(err)
	}
	return err
}

// canceledAfter is the end of an action canceled after an attempt that
// failed with err, whose details it keeps (a function's answer, by which
// a replay calls again under a new key; before, a canceled call's key
// was kept whatever it had answered). But not a timeout's: its cause is
// the attempt before (the server's RetryLastFailure), whose answer says
// nothing of the call that timed out, which may still go on.
func canceledAfter(err error) error {
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return temporal.NewCanceledError()
	}
	return fmt.Errorf("%w after %w", temporal.NewCanceledError(), err)
}

// retriesCanceled reports whether err ended a regular activity's retries
// because its workflow asked to cancel it.
func retriesCanceled(err error) bool {
	var act *temporal.ActivityError
	return errors.As(err, &act) && act.RetryState() == enums.RETRY_STATE_CANCEL_REQUESTED
}

// maxSummary bounds an activity's or a timer's summary: names may be long.
const maxSummary = 200

// summary names o's action for the Temporal Web UI, after what: `task
// "erase" of dispatcher "gdpr"`, `next attempt of task …`.
func summary(what string, o *dispatcher.ActionOutcome) string {
	name := o.ActionName
	if name == "" {
		name = o.ActionID
	}
	return truncate(fmt.Sprintf("%s%s %q of dispatcher %q", what, o.Type, name, o.DispatcherName), maxSummary)
}

// localCallLimit is the longest call a first attempt makes as a local
// activity.
func (d *dispatch) localCallLimit() time.Duration {
	if d.in.LocalCallLimit > 0 {
		return d.in.LocalCallLimit
	}
	return DefaultLocalCallLimit
}

// handoffDelay is how long an action waits after its local first attempt
// failed with err: the Retry-After the function asked for, or the retry
// policy's first interval.
func handoffDelay(err error, policy temporal.RetryPolicy) time.Duration {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NextRetryDelay() > 0 {
		return appErr.NextRetryDelay()
	}
	return policy.InitialInterval
}

// regularAttempts counts the attempts a regular activity made: its
// result, its last failure or its last heartbeat says which attempt it was
// (see activities.failure and activities.Heartbeat); failing that, retries
// that ran out made all of them.
func regularAttempts(err error, result any, policy temporal.RetryPolicy) int {
	if err == nil {
		switch r := result.(type) {
		case *dispatcher.MailResult:
			return max(r.Attempt, 1)
		case *dispatcher.TaskResult:
			return max(r.Attempt, 1)
		}
		return 1
	}
	if d, ok := failureDetails(err); ok && d.Attempt > 0 {
		return d.Attempt
	}
	// A heartbeat timeout carries the attempt its last heartbeat named.
	var timeout *temporal.TimeoutError
	var n int
	if errors.As(err, &timeout) && timeout.HasLastHeartbeatDetails() && timeout.LastHeartbeatDetails(&n) == nil && n > 0 {
		return n
	}
	// A retryable last failure means the retries ran out, unless they
	// stopped for a cancel.
	if !retriesCanceled(err) && retryable(err) && policy.MaximumAttempts > 0 {
		return int(policy.MaximumAttempts)
	}
	return 1
}

// failureDetails returns the details the activities attach to their
// failures, if err has them.
func failureDetails(err error) (dispatcher.FailureDetails, bool) {
	var appErr *temporal.ApplicationError
	var d dispatcher.FailureDetails
	if !errors.As(err, &appErr) || !appErr.HasDetails() || appErr.Details(&d) != nil {
		return dispatcher.FailureDetails{}, false
	}
	return d, true
}

// retryable reports whether an attempt's failure may succeed when tried
// again: timeouts and retryable application errors.
func retryable(err error) bool {
	if temporal.IsCanceledError(err) {
		return false
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return !appErr.NonRetryable() && !isPermanent(appErr.Type())
	}
	return true // timeouts, panics and the like
}

func isPermanent(typ string) bool {
	for _, p := range dispatcher.PermanentFailures() {
		if p == typ {
			return true
		}
	}
	return false
}

// maxOutcomeError bounds an outcome's error: a child workflow or a
// receiver may fail with megabytes, which, on a few actions, took the
// dispatch's result past Temporal's blob limit.
const maxOutcomeError = 4<<10 - len("…")

// fail records err as the outcome of an action.
func (d *dispatch) fail(ctx workflow.Context, o *dispatcher.ActionOutcome, err error) {
	o.FinishedAt = workflow.Now(ctx)
	o.ErrorClass, o.Error = classify(err)
	o.Error = truncate(o.Error, maxOutcomeError)
	o.Status = dispatcher.OutcomeFailed
	if o.ErrorClass == dispatcher.FailureCanceled {
		o.Status = dispatcher.OutcomeCanceled
	}
	workflow.GetLogger(ctx).Warn("Action failed", "DispatcherID", o.DispatcherID, "ActionID", o.ActionID,
		"ErrorClass", o.ErrorClass, "Error", o.Error, "Attempts", o.Attempts)
}

// classify returns the error class (a dispatcher.Failure* constant) and
// the message of an action's failure, without the wrapping that Temporal
// adds around activity and child workflow errors.
func classify(err error) (class, msg string) {
	var (
		canceled *temporal.CanceledError
		timeout  *temporal.TimeoutError
		child    *temporal.ChildWorkflowExecutionError
		appErr   *temporal.ApplicationError
	)
	switch {
	case errors.As(err, &canceled) || errors.Is(err, workflow.ErrCanceled):
		return dispatcher.FailureCanceled, "canceled before it finished"
	case errors.As(err, &timeout):
		return dispatcher.FailureTimeout, timeout.Error()
	case errors.As(err, &child):
		if errors.As(err, &appErr) {
			return dispatcher.FailureTask, appErr.Message()
		}
		return dispatcher.FailureTask, child.Error()
	case errors.As(err, &appErr):
		if known(appErr.Type()) {
			return appErr.Type(), appErr.Message()
		}
		return dispatcher.FailureUnexpected, appErr.Error()
	default:
		return dispatcher.FailureUnexpected, err.Error()
	}
}

// known reports whether typ is one of the failure types the activities
// raise, as opposed to e.g. the Go type name of an unexpected error.
func known(typ string) bool {
	switch typ {
	case dispatcher.FailureTemplate, dispatcher.FailureRecipient, dispatcher.FailureNotFound,
		dispatcher.FailureSMTPPermanent, dispatcher.FailureSMTPTemporary,
		dispatcher.FailureHTTPPermanent, dispatcher.FailureHTTPTemporary, dispatcher.FailureOutboundRefused,
		dispatcher.FailureStore, dispatcher.FailureTask, dispatcher.FailureTimeout,
		dispatcher.FailureSuperseded,  // from no older run: a reset's action refused
		dispatcher.FailureSlotMissed,  // ends an action only from dispatchV6
		dispatcher.FailureHistoryFull: // from dispatchV17
		return true
	}
	return false
}

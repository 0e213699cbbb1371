package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
)

// DispatchInput is the input of the Dispatch workflow.
type DispatchInput struct {
	Event dispatcher.Event
	// Only limits the dispatch to these action ids; empty runs them all.
	Only []string
	// Config is the configuration to run with: read at intake, or the
	// original one pinned by a replay; nil loads the current one.
	Config *dispatcher.Config
	// Run marks a replay of the dispatch: it changes the Idempotency-Key,
	// Message-ID and child workflow IDs. Empty for the first dispatch.
	Run string
	// Keys, from dispatchV14, are the actions of a replay that keep the
	// keys of an earlier run, by action id: the Run of that run (empty:
	// the first). The replayed run did not record whether their call was
	// made (dispatch.keptKeys).
	Keys map[string]string `json:",omitempty"`
	// LocalTimeout was, before dispatchV1, the first attempt's budget; it
	// is read only to replay those dispatches.
	LocalTimeout time.Duration
	// LocalCallLimit is the longest call an action's first attempt makes
	// as a local activity, the fast path; an action whose call may take
	// longer runs every attempt as a regular activity. 0 means
	// DefaultLocalCallLimit. It never cuts an attempt short.
	LocalCallLimit time.Duration
	// Version is the Dispatch version the run follows (DispatchVersion
	// when it was started); 0, from starters older than dispatchV3, asks
	// a marker (see dispatchV3).
	Version int
	// Overflow, when set, says why the event's Sequence could not hold it
	// (sequenceOverflowV1): the dispatch runs none of its actions, each fails
	// with dispatcher.FailureOrderingOverflow, and a replay runs them.
	Overflow string `json:",omitempty"`
	// Carried, from dispatchV23, are the outcomes of the actions a replay
	// of some actions (Only) does not run that failed in the run it
	// replays, each with its CarriedFrom: the run shows them and fails
	// with them, as they are still to be made.
	Carried []dispatcher.ActionOutcome `json:",omitempty"`
}

// CarriedVersion is the first Dispatch version that runs
// DispatchInput.Carried: a starter pinned to an older one drops them.
const CarriedVersion = int(dispatchV23)

// DispatchResult is the result of a dispatch, and the details of its
// failure when an action failed for good.
type DispatchResult struct {
	Outcomes []dispatcher.ActionOutcome
}

// Dispatch runs every action of every dispatcher that matches the event's
// type, concurrently; one action failing never stops another. It
// completes when all succeeded (or nothing matched) and fails with
// dispatcher.FailureDispatch, the DispatchResult as details, when any
// failed for good.
//
// The happy path finishes in the first workflow task: the configuration
// and the first attempt of each action run as local activities. Only an
// action whose first attempt fails retryably is handed to a regular
// activity with the rest of its retry policy (see attempt).
func Dispatch(ctx workflow.Context, in DispatchInput) (DispatchResult, error) {
	logger := workflow.GetLogger(ctx)
	d := &dispatch{in: in, key: workflow.GetInfo(ctx).WorkflowExecution.ID, firstTask: workflow.GetInfo(ctx).GetCurrentHistoryLength()}
	switch v := workflow.Version(in.Version); {
	case v > dispatchLatest:
		// A newer intake started it: fail the workflow task, which
		// Temporal retries until a worker that knows the version takes it.
		panic(fmt.Sprintf("dispatch version %d is newer than this worker's %d: upgrade the workers before the intake", v, dispatchLatest))
	case v >= dispatchV3:
		d.version = v
	default:
		d.version = workflow.GetVersion(ctx, changeDispatch, workflow.DefaultVersion, dispatchLastMarker)
	}
	if err := workflow.SetQueryHandler(ctx, QueryOutcomes, func() ([]dispatcher.ActionOutcome, error) {
		return d.outcomes, nil
	}); err != nil {
		return DispatchResult{}, err
	}

	recordStart(ctx)
	cfg := in.Config
	if cfg == nil {
		var loaded dispatcher.Config
		lctx := workflow.WithLocalActivityOptions(ctx, loadConfigOptions)
		err := workflow.ExecuteLocalActivity(lctx, ActivityLoadConfig, dispatcher.LoadConfigInput{EventType: in.Event.Type, Event: in.Event, Only: in.Only}).Get(ctx, &loaded)
		if err != nil {
			return DispatchResult{}, err
		}
		cfg = &loaded
	}
	d.cfg = cfg
	d.plan()
	// A dispatch handed its configuration (at intake, or pinned by a
	// replay) was started with every search attribute, its dispatcher ids
	// included (Config.DispatcherIDs): an upsert would cost a history
	// event and a visibility write for nothing.
	if d.version < dispatchV2 || in.Config == nil {
		attrs := []temporal.SearchAttributeUpdate{
			AttrEventType.ValueSet(in.Event.Type),
			AttrEventID.ValueSet(in.Event.ID),
			AttrDispatcherIDs.ValueSet(BoundKeywords(d.dispatcherIDs())),
		}
		// Only a configuration resolved since filters exist skips any:
		// the upserts of older histories are unchanged.
		if r := d.skipReason(); r != "" {
			attrs = append(attrs, AttrSkipped.ValueSet(r))
		}
		if err := workflow.UpsertTypedSearchAttributes(ctx, attrs...); err != nil {
			return DispatchResult{}, err
		}
	}
	logger.Debug("Dispatching", "EventID", in.Event.ID, "EventType", in.Event.Type,
		"Actions", len(d.jobs), "ConfigVersion", cfg.Version)

	if in.Overflow != "" && d.version >= dispatchV5 {
		d.refuse(workflow.Now(ctx))
	}
	for _, o := range d.outcomes {
		if o.Status != dispatcher.OutcomeRunning && o.CarriedFrom == "" {
			recordAction(ctx, o) // skipped, or refused: never runs
		}
	}
	wg := workflow.NewWaitGroup(ctx)
	for i := range d.jobs {
		if d.outcomes[i].Status != dispatcher.OutcomeRunning {
			continue
		}
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			d.run(ctx, i)
		})
	}
	wg.Wait(ctx)

	d.keepLocalResults(ctx)
	res, err := d.finish(ctx)
	recordEnd(ctx, err, d.madeAllCarrying())
	return res, err
}

// dispatch is the state of one Dispatch run. Its coroutines each own one
// index of jobs and outcomes; workflow coroutines never run in parallel.
type dispatch struct {
	version  workflow.Version // of this run's code, see versions.go
	in       DispatchInput
	cfg      *dispatcher.Config
	key      string // the workflow ID: the root of idempotency keys
	jobs     []job
	outcomes []dispatcher.ActionOutcome
	// firstTask is the history's length when the run's code first ran:
	// past firstTaskStarted, a task before it did not complete.
	firstTask int
	// localAt is the history's length when a call's local first attempt
	// last returned (keepLocalResults); 0 before any did.
	localAt int
	waiting int // actions waiting for their startTimestamp
	slow    int // actions that go on past their first workflow task (slowly, dispatchV17)
	// scheduled is the value of AttrScheduled the run last upserted
	// (showScheduled); false while it upserted none.
	scheduled bool
	// permits holds the permits received from gates, by request ID,
	// until the action that asked takes its own (dispatchV4).
	permits map[string]PermitGrant
	// The pacing of commands (dispatchV6): the workflow task they go in
	// (the history's length when it started), the bytes of input it
	// carries so far, and the timer that ends it for those that wait.
	paceTask, paceBytes int
	nextTask            workflow.Future
}

// job is one action to run, in dispatcher order then action order.
type job struct {
	dispatcher *dispatcher.Dispatcher
	action     *dispatcher.Action
}

// plan lists the actions to run, in the order of the configuration, which
// is the order of the outcomes; then, after them, the outcomes of the
// actions of the dispatchers the configuration skips (Config.Skipped),
// which run nothing: they issue no command, so they need no version; and
// last those a replay carries (DispatchInput.Carried), which run nothing
// either.
func (d *dispatch) plan() {
	for i := range d.cfg.Dispatchers {
		ds := &d.cfg.Dispatchers[i]
		for j := range ds.Actions {
			a := &ds.Actions[j]
			if len(d.in.Only) > 0 && !slices.Contains(d.in.Only, a.ID) {
				continue
			}
			d.jobs = append(d.jobs, job{dispatcher: ds, action: a})
			d.outcomes = append(d.outcomes, dispatcher.ActionOutcome{
				DispatcherID: ds.ID, DispatcherName: ds.Name,
				ActionID: a.ID, ActionName: a.Name, Type: a.Type, Status: dispatcher.OutcomeRunning,
			})
		}
	}
	for _, sk := range d.cfg.Skipped {
		for _, a := range sk.Actions {
			if len(d.in.Only) > 0 && !slices.Contains(d.in.Only, a.ID) {
				continue
			}
			d.outcomes = append(d.outcomes, dispatcher.ActionOutcome{
				DispatcherID: sk.DispatcherID, DispatcherName: sk.Name,
				ActionID: a.ID, ActionName: a.Name, Type: a.Type, Status: dispatcher.OutcomeSkipped,
				SkipReason: sk.Reason, Error: sk.Detail,
			})
		}
	}
	if workflow.Version(d.in.Version) >= dispatchV23 {
		d.outcomes = append(d.outcomes, d.in.Carried...)
	}
}

// PlannedOutcomes returns the outcomes a dispatch of in with cfg has
// before anything it did was recorded, at now: its actions running (in
// their first attempt once a worker took its first workflow task, taken),
// or scheduled until their startTimestamp, and those of skipped
// dispatchers skipped. That first workflow task, which holds the first
// attempts (local activities), answers no query for as long as they take:
// the executions API shows these meanwhile.
func PlannedOutcomes(in DispatchInput, cfg *dispatcher.Config, now time.Time, taken bool) []dispatcher.ActionOutcome {
	d := &dispatch{in: in, cfg: cfg}
	d.plan()
	for i, j := range d.jobs {
		fn, _ := cfg.Function(j.action.FunctionName)
		switch o := &d.outcomes[i]; {
		case j.action.StartTimestamp != nil && j.action.StartTimestamp.After(now):
			o.Status = dispatcher.OutcomeScheduled
		case taken && j.action.Type == dispatcher.ActionTask && fn.Gated && fn.Kind != dispatcher.FunctionTemporal && workflow.Version(in.Version) >= dispatchV4:
			// It has asked its gate, whose permit the task can only
			// receive once it has ended: no call yet.
			o.Status = dispatcher.OutcomeWaiting
		case taken:
			o.Attempts = 1
		}
	}
	return d.outcomes
}

// refuse fails every action it would run with FailureOrderingOverflow,
// without running it: its Sequence had no room for the event.
func (d *dispatch) refuse(now time.Time) {
	for i := range d.jobs {
		o := &d.outcomes[i]
		o.Status, o.ErrorClass, o.Error = dispatcher.OutcomeFailed, dispatcher.FailureOrderingOverflow, d.in.Overflow
		o.StartedAt, o.FinishedAt = now, now
	}
}

// dispatcherIDs returns the ids of the dispatchers that have actions to
// run or skip, each once, in the order of the outcomes.
func (d *dispatch) dispatcherIDs() []string {
	ids := []string{}
	for _, o := range d.outcomes {
		if !slices.Contains(ids, o.DispatcherID) {
			ids = append(ids, o.DispatcherID)
		}
	}
	return ids
}

// skipReason is the most actionable reason for which the dispatch skips
// actions; empty when it skips none.
func (d *dispatch) skipReason() string {
	var reasons []string
	for _, o := range d.outcomes {
		if o.Status == dispatcher.OutcomeSkipped {
			reasons = append(reasons, o.SkipReason)
		}
	}
	return dispatcher.TopSkipReason(reasons)
}

// emitTaskFailed has the task_failed event of action i started, once it
// has failed for good (dispatchV15), as Extra Horizon's Task Service
// emitted one after its last retry: at once, not when the dispatch
// closes, which an action waiting for its startTimestamp may hold off for
// months. Not for a mail, nor for a task of a task_failed event's
// dispatch (its failure would emit another, without end), nor for one that
// never ran its call for itself: superseded by a replay. The event is not
// the dispatch's outcome: one that cannot be started (emitOptions) is
// logged and counted, and the dispatch goes on.
//
// Its id is derived from when the action began (TaskFailedEvent): the
// time of the workflow task it began in, whose history length is began.
// Not from that task itself (dispatchV19): were it lost (its worker died, or Temporal refused its
// completion), the next would begin the action again at another time,
// and the event started from the lost one would be a second, under
// another id. A 1 ms timer has the task complete first; the event is
// started from the next, which replays the action's beginning as
// recorded (its time: that of the task, or of a local activity's result
// before it, which the task's markers record). Both on a context no cancel
// reaches: a cancel that comes meanwhile would have found the event
// started in the same task. Older runs do so from the marker
// changeEmitAfterCommit, unless a failure before the upgrade decided it
// (a run decides a change ID once).
func (d *dispatch) emitTaskFailed(ctx workflow.Context, i, began int) {
	o, j := d.outcomes[i], d.jobs[i]
	if d.version < dispatchV15 || o.Type != dispatcher.ActionTask || o.Status != dispatcher.OutcomeFailed ||
		o.ErrorClass == dispatcher.FailureSuperseded || d.in.Event.Type == dispatcher.EventTaskFailed || ctx.Err() != nil {
		return
	}
	ectx := ctx // the emit's
	if began == workflow.GetInfo(ctx).GetCurrentHistoryLength() &&
		(d.version >= dispatchV19 || workflow.GetVersion(ctx, changeEmitAfterCommit, workflow.DefaultVersion, 1) >= 1) {
		ectx, _ = workflow.NewDisconnectedContext(ctx)
		_ = workflow.NewTimerWithOptions(ectx, time.Millisecond, workflow.TimerOptions{
			Summary: "records the failure before its task_failed event is started",
		}).Get(ectx, nil)
	}
	info := workflow.GetInfo(ctx)
	f := dispatcher.TaskFailure{Event: d.in.Event, Outcome: o, FunctionName: j.action.FunctionName, Tags: j.action.Tags,
		WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, OriginalRunID: info.OriginalRunID}
	if f.OriginalRunID == "" { // a server that does not say
		f.OriginalRunID = f.RunID
	}
	lctx := workflow.WithLocalActivityOptions(ectx, emitOptions)
	if err := workflow.ExecuteLocalActivity(lctx, ActivityEmitTaskFailed, f).Get(ectx, nil); err != nil {
		// A cancel meanwhile may have come before the start, too.
		recordUnsent(ctx)
		workflow.GetLogger(ctx).Error("task_failed event not started", "ActionID", o.ActionID, "Canceled", ctx.Err() != nil, "Error", err)
	}
}

// finish records the failed actions in search attributes and returns the
// result: an error with every outcome as details when any action failed.
func (d *dispatch) finish(ctx workflow.Context) (DispatchResult, error) {
	boundErrors(d.outcomes)
	res := DispatchResult{Outcomes: d.outcomes}
	canceled := errors.Is(ctx.Err(), workflow.ErrCanceled)
	var failedIDs, classes, summary []string
	actions := len(d.jobs)
	for _, o := range d.outcomes {
		if o.CarriedFrom != "" {
			actions++
		}
		if o.Status == dispatcher.OutcomeSucceeded || o.Status == dispatcher.OutcomeSkipped {
			continue // a skipped action is no failure: its dispatcher was not to run
		}
		failedIDs = append(failedIDs, o.ActionID)
		if !slices.Contains(classes, o.ErrorClass) {
			classes = append(classes, o.ErrorClass)
		}
		class := o.ErrorClass
		if o.CarriedFrom != "" {
			class += ", in run " + o.CarriedFrom // not this run's: a replay that did not run it
		}
		summary = append(summary, fmt.Sprintf("%s (%s): %s", outcomeLabel(o), class, o.Error))
	}
	if len(failedIDs) == 0 {
		d.releaseAfterReset(ctx)
		return res, nil
	}
	slices.Sort(classes)
	// A canceled workflow's context cannot issue commands any more.
	uctx := ctx
	if canceled {
		uctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	// Histories recorded before the pairs existed replay without them;
	// every run of dispatchV1 or later records them, without asking.
	if d.version >= dispatchV1 || workflow.GetVersion(uctx, versionErrorPairs, workflow.DefaultVersion, 1) >= 1 {
		classes = append(classes, errorPairs(d.outcomes)...)
	}
	// Bounded (BoundKeywords): the plain classes, few, come first and are
	// kept; the pairs and the failed action ids past the budget are not.
	if err := workflow.UpsertTypedSearchAttributes(uctx,
		AttrFailedActionIDs.ValueSet(BoundKeywords(failedIDs)),
		AttrErrorClasses.ValueSet(BoundKeywords(classes)),
	); err != nil {
		return res, err
	}
	if canceled {
		return res, temporal.NewCanceledError(res)
	}
	msg := fmt.Sprintf("%d of %d actions failed: %s", len(failedIDs), actions, strings.Join(summary, "; "))
	return res, temporal.NewApplicationError(truncate(msg, 2000), dispatcher.FailureDispatch, res)
}

// madeAllCarrying reports whether the run made what it ran, at least
// one action and none skipped, and fails only with what it carries.
func (d *dispatch) madeAllCarrying() bool {
	made := false
	for _, o := range d.outcomes {
		switch {
		case o.CarriedFrom != "":
		case o.Status != dispatcher.OutcomeSucceeded:
			return false
		default:
			made = true
		}
	}
	return made
}

// keepLocalResults lets the workflow task in which a call's local first
// attempt returned complete before the run closes (dispatchV18): Temporal
// refuses the completion of a task that would close the run when an
// event came while it ran, a cancel, and drops the attempt's result with
// it; the run went on from the task before and reported the action
// canceled though its call was made. Only where that task is not the
// run's first: the happy path closes in it, and a cancel during it says
// "may have been made" (madeInLostTask). A 1 ms timer, on a context no
// cancel reaches, ends the task; the run closes in the next. Older runs
// do so from the marker changeKeepLocalResults.
func (d *dispatch) keepLocalResults(ctx workflow.Context) {
	if d.localAt == 0 || d.localAt == d.firstTask || d.localAt != workflow.GetInfo(ctx).GetCurrentHistoryLength() {
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	// An older run, started before the upgrade (an action scheduled
	// months ahead), too, from its marker: one that closed without has
	// none, and replays as it ran.
	if d.version < dispatchV18 && workflow.GetVersion(dctx, changeKeepLocalResults, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	_ = workflow.NewTimerWithOptions(dctx, time.Millisecond, workflow.TimerOptions{
		Summary: "keeps the first attempts' results before the run closes",
	}).Get(dctx, nil)
}

// outcomeLabel names an outcome's dispatcher and action in a failure
// message, by name where they have one (what support staff and the
// Temporal Web UI's readers know them by), always with their ids (what
// a replay's actions and the API take).
func outcomeLabel(o dispatcher.ActionOutcome) string {
	ids := o.DispatcherID + "/" + o.ActionID
	if o.DispatcherName == "" && o.ActionName == "" {
		return ids
	}
	name := func(name, id string) string {
		if name == "" {
			return id
		}
		return name
	}
	return fmt.Sprintf("%s/%s [%s]", name(o.DispatcherName, o.DispatcherID), name(o.ActionName, o.ActionID), ids)
}

// releaseAfterReset lets the ordering key go on that the run this one was
// reset from (Temporal Web UI or CLI) blocked, failed: this run made every
// action. The key's Sequence, which saw that run fail, holds the key until
// a release, which a replay sends (through the API) and a reset did not:
// the key stayed blocked behind a dispatch that had completed. It is a
// signal the Sequence ignores when the key is not blocked by this dispatch
// (a reset of a dispatch it still awaits, which it follows), recorded with
// the marker changeResetRelease, only then.
func (d *dispatch) releaseAfterReset(ctx workflow.Context) {
	info := workflow.GetInfo(ctx)
	parent := info.ParentWorkflowExecution
	if parent == nil || !isReset(ctx) || !dispatcher.IsSequenceWorkflowID(dispatcher.TenantOf(info.WorkflowExecution.ID), parent.ID) {
		return
	}
	if ctx.Err() != nil { // canceled, after it made them all
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	if workflow.GetVersion(ctx, changeResetRelease, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	// The Sequence's latest run; one that has closed holds nothing.
	err := workflow.SignalExternalWorkflow(ctx, parent.ID, "", SignalSequenceRelease, info.WorkflowExecution.ID).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Info("Ordering key not released after the reset", "Sequence", parent.ID, "Error", err)
	}
}

// maxResultErrors bounds the errors of all outcomes together. Each is
// bounded by maxOutcomeError, but an event type may hold hundreds of
// actions, and a result past Temporal's 2 MiB blob limit has the server
// fail the run with none of its outcomes (past the 4 MiB gRPC limit, its
// workflow task fails for good).
const maxResultErrors = 512 << 10

// boundErrors cuts every outcome's error to an equal share of
// maxResultErrors when together they are longer, as encoded.
func boundErrors(outcomes []dispatcher.ActionOutcome) {
	total := 0
	for _, o := range outcomes {
		total += encodedLen(o.Error)
	}
	if total <= maxResultErrors {
		return
	}
	each := max(maxResultErrors/len(outcomes)-len("…"), 64)
	for i, o := range outcomes {
		n := 0
		for j, r := range o.Error {
			if n += encodedLen(string(r)); n > each {
				outcomes[i].Error = o.Error[:j] + "…"
				break
			}
		}
	}
}

// encodedLen is the length of s as Temporal's JSON converter writes it:
// json.Marshal escapes <, >, &, the line and paragraph separators,
// control characters and invalid UTF-8 as six bytes each.
func encodedLen(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029' || r == '\uFFFD':
			n += 6
		case r == '"' || r == '\\':
			n += 2
		default:
			n += len(string(r))
		}
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

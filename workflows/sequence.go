package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
)

// Sequence runs the dispatches of one ordering key (dispatcher.Ordering)
// one after another, in the order their events reached the intake: the
// intake hands each to the key's Sequence with signal-with-start
// (SignalSequenceEvent) before it answers, so the signal order is the
// arrival order, whatever the source. Each dispatch is a child Dispatch
// workflow with the event's own workflow ID, so it is found, replayed and
// canceled like any other, and a duplicate event (whose dispatch exists)
// is skipped when its turn comes.
//
// A dispatch that fails for good blocks the key when its ordering says so
// (dispatcher.OrderingBlock): the Sequence holds the events after it,
// shows the blocking dispatch in DispatchBlocked, and goes on when
// released (SignalSequenceRelease, sent by a replay or a release of that
// dispatch). A Sequence with nothing to do for a while completes; the
// next event of its key starts it again. It continues as new every
// sequenceRunLimit dispatches, or when Temporal suggests it, also while
// a dispatch runs (sequenceAwaitV1): the next run then waits for that one
// with ActivityAwaitDispatch before it goes on.
//
// What waits is carried over ContinueAsNew, so it is bounded: an event
// that would take the waiting dispatches past SequenceQueueBytes is not
// queued but dispatched at once as an overflow, which fails without
// running its actions (sequenceOverflowV1), and is replayed like any
// failure.
func Sequence(ctx workflow.Context, in SequenceInput) error {
	s := &sequence{SequenceState: in.State, firstSize: workflow.GetInfo(ctx).GetCurrentHistorySize()}
	if s.SequenceState == nil {
		s.SequenceState = &SequenceState{}
	}
	for i := range s.Queue {
		s.bytes += sized(&s.Queue[i])
	}
	if err := workflow.SetQueryHandler(ctx, QuerySequence, func() (SequenceState, error) {
		return *s.SequenceState, nil
	}); err != nil {
		return err
	}
	s.events = workflow.GetSignalChannel(ctx, SignalSequenceEvent)
	s.releases = workflow.GetSignalChannel(ctx, SignalSequenceRelease)
	for done := 0; ; done++ {
		if s.canceled(ctx) {
			return s.cancel(ctx)
		}
		if s.Running != nil && !s.awaitRunning(ctx) {
			return s.continueAsNew(ctx) // still running
		}
		if s.Blocked != "" && !s.waitForRelease(ctx) {
			if s.canceled(ctx) {
				return s.cancel(ctx)
			}
			return s.continueAsNew(ctx) // still blocked
		}
		if len(s.Queue) == 0 && !s.waitForEvent(ctx) {
			if s.canceled(ctx) {
				return s.cancel(ctx)
			}
			if s.settle(ctx); len(s.Queue) == 0 {
				return nil // idle: the next event starts a new run
			}
		}
		if s.canceled(ctx) {
			return s.cancel(ctx) // a child of a canceled context never starts
		}
		if done >= sequenceRunLimit || s.suggested(ctx) {
			return s.continueAsNew(ctx)
		}
		if !s.runNext(ctx) {
			return s.continueAsNew(ctx) // its head still running
		}
	}
}

// continueAsNew carries the state, and the events and releases that
// arrived, over to a new run.
func (s *sequence) continueAsNew(ctx workflow.Context) error {
	s.takeArrived(ctx)
	s.settle(ctx)
	if s.canceled(ctx) {
		// While the overflows started: a cancel does not reach the next
		// run. A history from before this check replays without it (the
		// cancel's version marker is missing there: canceled says no).
		return s.cancel(ctx)
	}
	for {
		var id string
		if !s.releases.ReceiveAsync(&id) {
			break
		}
		s.release(ctx, id)
	}
	return workflow.NewContinueAsNewError(ctx, WorkflowSequence, SequenceInput{State: s.SequenceState})
}

// canceled reports whether the Sequence was canceled and is to stop
// (sequenceCancelV1). A run from before that version went on as if it
// had not been; its replay does too.
func (s *sequence) canceled(ctx workflow.Context) bool {
	if ctx.Err() == nil || s.cancelIgnored {
		return false
	}
	if workflow.GetVersion(ctx, changeSequenceCancel, workflow.DefaultVersion, sequenceCancelV1) < sequenceCancelV1 {
		s.cancelIgnored = true
		return false
	}
	return true
}

// cancel closes a canceled Sequence. Its dispatch in flight was canceled
// with it (a child of this run, or one handed over: cancelRunning); the
// events still waiting, and those that arrive meanwhile, are dispatched
// at once as dispatches that run none of their actions (as overflows), so
// that none is lost: each is found and replayed like any failure, outside
// the key's order.
func (s *sequence) cancel(ctx workflow.Context) error {
	if s.Running != nil {
		// Canceled before this run awaited it (the cancel in its first
		// workflow task).
		s.cancelRunning(ctx, s.Running)
		s.Running = nil
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx) // children of a canceled context never start
	reason := fmt.Sprintf("its ordering key's Sequence (%s) was canceled before its turn", workflow.GetInfo(ctx).WorkflowExecution.ID)
	for {
		s.takeArrived(dctx)
		for _, d := range s.Queue {
			s.refuse(dctx, d, reason)
			s.pace(dctx) // as many starts per workflow task as an overflow's
		}
		s.Queue, s.bytes = nil, 0
		if len(s.starting) == 0 {
			return temporal.NewCanceledError()
		}
		s.awaitStarts(dctx)
	}
}

// release takes a release of dispatch id that came when the Sequence
// was not waiting for one: it unblocks the key, or keeps the failure of
// the running dispatch from blocking it. Before sequenceAwaitV1 a release
// that came as the Sequence continued as new was lost, and its key stayed
// blocked until released again.
func (s *sequence) release(ctx workflow.Context, id string) {
	switch {
	case s.Running != nil && id == s.Running.WorkflowID:
		s.Running.Released = true
	case id == s.Blocked && workflow.GetVersion(ctx, changeSequenceAwait, workflow.DefaultVersion, sequenceAwaitV1) >= sequenceAwaitV1:
		s.Blocked = ""
		_ = workflow.UpsertTypedSearchAttributes(ctx, AttrBlocked.ValueUnset()) // a new run inherits them
	}
}

// SequenceInput is the input of the Sequence workflow; State carries the
// queue over ContinueAsNew.
type SequenceInput struct {
	State *SequenceState
}

// SequenceState is where a Sequence is: the dispatches waiting their
// turn, oldest first, and the one that blocks the key, if any.
type SequenceState struct {
	Queue   []SequencedDispatch
	Blocked string // workflow ID of the failed dispatch holding the key
	// Running is the dispatch of the key that an earlier run started and
	// continued as new before it closed (sequenceAwaitV1): it goes before
	// the Queue.
	Running *RunningDispatch `json:",omitempty"`
}

// RunningDispatch is a dispatch a Sequence started and still waits for.
type RunningDispatch struct {
	WorkflowID, RunID string
	Block             bool // as its SequencedDispatch
	// Released: a release of it came while it ran (a replay of its failed
	// run came first), so its failure does not block the key.
	Released bool `json:",omitempty"`
	// Outside: no Sequence started it (sequence.duplicate): the key waits
	// for it, but a cancel of the Sequence leaves it alone.
	Outside bool `json:",omitempty"`
	// EventType is its event's type, whose ordering decides, if it
	// fails, whether it holds the key (sequencePolicyNowV1); "" when
	// handed over before.
	EventType string `json:",omitempty"`
}

// AwaitDispatchInput names the dispatch run ActivityAwaitDispatch waits for.
type AwaitDispatchInput struct {
	WorkflowID, RunID string
}

// awaitOptions are ActivityAwaitDispatch's: each attempt looks once and
// fails while the run awaited runs, so no worker slot is held for as
// long as it runs (days, maybe): the retries poll it, soon, then every
// 30 s. Attempts add nothing to the history.
var awaitOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
}

// DispatchClosed is how a dispatch run closed (ActivityAwaitDispatch):
// its status, one of the Closed constants, and, unless it completed, the
// error it closed with.
type DispatchClosed struct {
	Status  string
	Failure string `json:",omitempty"`
}

// The statuses of a closed dispatch run (DispatchClosed.Status): those of
// Temporal, and ClosedNotFound for a run gone from it (retention, or
// deleted by hand).
const (
	ClosedCompleted      = "Completed"
	ClosedFailed         = "Failed"
	ClosedCanceled       = "Canceled"
	ClosedTerminated     = "Terminated"
	ClosedTimedOut       = "TimedOut"
	ClosedContinuedAsNew = "ContinuedAsNew"
	ClosedNotFound       = "NotFound"
)

// held reports whether the dispatch failed, as a child whose error blocks
// its key: not when it completed, was canceled by someone who meant it,
// handed on to a new run, or is gone (nothing is left to replay).
func (c DispatchClosed) held() bool {
	return c.Status == ClosedFailed || c.Status == ClosedTerminated || c.Status == ClosedTimedOut
}

// SequencedDispatch is one event's dispatch waiting its turn in a
// Sequence: the signal the intake sends.
type SequencedDispatch struct {
	WorkflowID string
	Input      DispatchInput
	// Block says whether its failure holds the dispatches after it.
	Block bool
	// Size is its encoded size (SequencedSize), measured by the intake,
	// so that which events fit in a Sequence is recorded in its history
	// and never depends on the shape of the types a replay decodes them
	// into. 0 from intakes that predate it: then measured on arrival.
	Size int `json:",omitempty"`
}

// SequencedSize is the size of d in a ContinueAsNew input, without Size.
func SequencedSize(d SequencedDispatch) int {
	d.Size = 0
	p, err := converter.GetDefaultDataConverter().ToPayload(d)
	if err != nil {
		return SequenceQueueBytes // cannot be carried: never queued behind another
	}
	return len(p.GetData())
}

// sized returns d's size, measuring it first when its intake did not.
func sized(d *SequencedDispatch) int {
	if d.Size <= 0 {
		d.Size = SequencedSize(*d)
	}
	return d.Size
}

const (
	// sequenceRunLimit bounds the dispatches one Sequence run handles
	// before it continues as new, keeping its history short.
	sequenceRunLimit = 200
	// sequenceMinRun is the history length below which a run does not
	// continue as new, even when Temporal suggests it (see suggested;
	// always while it awaits a handed-over dispatch): a suggestion from
	// the run's first task on (a size limit set below what a run carries)
	// would otherwise start run after run that does nothing else.
	sequenceMinRun = 100
	// sequenceIdle is how long a Sequence with nothing to do waits for
	// an event before it completes.
	sequenceIdle = time.Minute
	// SequenceQueueBytes bounds the waiting dispatches of a Sequence,
	// JSON-encoded as its ContinueAsNew input carries them: Temporal
	// terminates a workflow whose ContinueAsNew input passes its blob
	// limit (2 MiB by default). About 1,000 events of a kilobyte (an
	// ordered event carries no configuration: it reads it when its turn
	// comes), or 6 of DISPATCHER_MAX_EVENT_BYTES' default.
	SequenceQueueBytes = 1536 << 10
	// overflowStartBytes and overflowStarts bound the overflow dispatches
	// one workflow task starts: their commands carry their events, and a
	// task's completion must stay under Temporal's 4 MiB message and
	// transaction limits.
	overflowStartBytes = 1 << 20
	overflowStarts     = 100
)

type sequence struct {
	*SequenceState
	events, releases workflow.ReceiveChannel
	bytes            int // the Sizes of the Queue
	// starting are the overflow dispatches not known to have started (a
	// child whose parent closes first is never started), startingBytes
	// the sizes of their events.
	starting      []workflow.ChildWorkflowFuture
	startingBytes int
	// cancelIgnored: the run was canceled before sequenceCancelV1, and goes
	// on as it did then (canceled).
	cancelIgnored bool
	// firstSize is the size of the run's history at its first task: about
	// what it carries.
	firstSize int
}

// take queues an event's dispatch, unless it is queued already (the
// same event sent twice while it waits) or is the one holding the key;
// one that does not fit in SequenceQueueBytes overflows.
func (s *sequence) take(ctx workflow.Context, d SequencedDispatch) {
	if d.WorkflowID == s.Blocked || s.Running != nil && d.WorkflowID == s.Running.WorkflowID {
		return
	}
	for _, q := range s.Queue {
		if q.WorkflowID == d.WorkflowID {
			return
		}
	}
	size := sized(&d)
	if len(s.Queue) > 0 && s.bytes+size > SequenceQueueBytes &&
		workflow.GetVersion(ctx, changeSequenceOverflow, workflow.DefaultVersion, sequenceOverflowV1) >= sequenceOverflowV1 {
		s.overflow(ctx, d)
		return
	}
	s.Queue = append(s.Queue, d)
	s.bytes += size
}

// overflow starts the dispatch of an event the queue has no room for,
// now, as one that fails without running its actions: the event is kept
// in its own history, and found and replayed as any failed dispatch.
func (s *sequence) overflow(ctx workflow.Context, d SequencedDispatch) {
	workflow.GetLogger(ctx).Error("Ordering key full: event dispatched as an overflow, to be replayed", "WorkflowID", d.WorkflowID, "Waiting", len(s.Queue))
	s.refuse(ctx, d, fmt.Sprintf("its ordering key's Sequence (%s) already holds %d waiting events in %d bytes; it carries at most %d bytes",
		workflow.GetInfo(ctx).WorkflowExecution.ID, len(s.Queue), s.bytes, SequenceQueueBytes))
}

// refuse starts the dispatch of d now, as one that runs none of its
// actions, each failing with FailureOrderingOverflow and reason.
func (s *sequence) refuse(ctx workflow.Context, d SequencedDispatch, reason string) {
	if workflow.GetVersion(ctx, changeSequenceOverflowDetached, workflow.DefaultVersion, sequenceOverflowDetachedV1) >= sequenceOverflowDetachedV1 ||
		ctx.Err() != nil && workflow.GetVersion(ctx, changeSequenceCanceledOverflow, workflow.DefaultVersion, sequenceCanceledOverflowV1) >= sequenceCanceledOverflowV1 {
		// A child of a canceled context never starts, and one started
		// before its parent's cancel is canceled with it: an overflow is
		// to fail as one, to be found and replayed.
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	in := d.Input
	// The version its intake chose, at least the first that runs an
	// overflow as one: never the worker's, which a pin may differ on.
	in.Version = max(in.Version, int(dispatchV5))
	in.Overflow = reason
	s.starting = append(s.starting, workflow.ExecuteChildWorkflow(childOptions(ctx, d.WorkflowID, in), WorkflowDispatch, in))
	s.startingBytes += sized(&d)
}

// pace waits for the overflow dispatches started so far once they are
// as many, or carry as much, as one workflow task may start: the wait
// ends the task.
func (s *sequence) pace(ctx workflow.Context) {
	if len(s.starting) >= overflowStarts || s.startingBytes >= overflowStartBytes {
		s.awaitStarts(ctx)
	}
}

// awaitStarts waits until every overflow dispatch has started.
func (s *sequence) awaitStarts(ctx workflow.Context) {
	for _, f := range s.starting {
		// Already started means the event was dispatched before: kept.
		var started *temporal.ChildWorkflowExecutionAlreadyStartedError
		if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil && !errors.As(err, &started) {
			workflow.GetLogger(ctx).Error("An overflow dispatch did not start: its event is lost", "Error", err)
		}
	}
	s.starting, s.startingBytes = nil, 0
}

// settle waits until every overflow dispatch has started, taking the
// events that arrive meanwhile, before the run closes.
func (s *sequence) settle(ctx workflow.Context) {
	for len(s.starting) > 0 {
		s.awaitStarts(ctx)
		s.takeArrived(ctx)
	}
}

// takeArrived queues the events that have arrived, without waiting.
func (s *sequence) takeArrived(ctx workflow.Context) {
	for {
		// A fresh value each time: decoding into the last one would reuse
		// its event's content bytes, which the queue still holds.
		var d SequencedDispatch
		if !s.events.ReceiveAsync(&d) {
			return
		}
		s.take(ctx, d)
		s.pace(ctx)
	}
}

// addEvents has sel queue an event that arrives.
func (s *sequence) addEvents(ctx workflow.Context, sel workflow.Selector) {
	sel.AddReceive(s.events, func(c workflow.ReceiveChannel, _ bool) {
		var d SequencedDispatch
		if receive(ctx, c, &d) {
			s.take(ctx, d)
		}
	})
}

// waitForEvent waits up to sequenceIdle for an event and reports whether
// one came. Before giving up it takes what arrived meanwhile, so a
// Sequence never completes with an event unread.
func (s *sequence) waitForEvent(ctx workflow.Context) bool {
	if s.takeArrived(ctx); len(s.Queue) > 0 {
		return true // no timer for an event that is there
	}
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	sel := workflow.NewSelector(ctx)
	s.addEvents(ctx, sel)
	sel.AddFuture(workflow.NewTimer(tctx, sequenceIdle), func(workflow.Future) {})
	sel.Select(ctx)
	s.takeArrived(ctx)
	return len(s.Queue) > 0
}

// waitForRelease holds the key until the blocking dispatch is released,
// queuing the events that arrive meanwhile. It reports false, still
// blocked, when Temporal suggests continuing as new: every event that
// waits grows the history (sequenceV1).
func (s *sequence) waitForRelease(ctx workflow.Context) bool {
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrBlocked.ValueSet(s.Blocked))
	workflow.GetLogger(ctx).Warn("Ordering key blocked by a failed dispatch", "WorkflowID", s.Blocked, "Waiting", len(s.Queue))
	for s.Blocked != "" {
		if s.suggested(ctx) && workflow.GetVersion(ctx, changeSequence, workflow.DefaultVersion, sequenceV1) >= sequenceV1 {
			return false
		}
		sel := workflow.NewSelector(ctx)
		s.addEvents(ctx, sel)
		sel.AddReceive(s.releases, func(c workflow.ReceiveChannel, _ bool) {
			var id string
			if receive(ctx, c, &id) && id == s.Blocked {
				s.Blocked = ""
			}
		})
		if !s.cancelIgnored {
			sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		}
		sel.Select(ctx)
		if s.canceled(ctx) {
			return false
		}
		s.pace(ctx)
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrBlocked.ValueUnset())
	return true
}

// runNext runs the dispatch at the head of the queue as a child and waits
// for it to close, queuing the events that arrive meanwhile. It reports
// false when Temporal suggests continuing as new while the child runs:
// the child is then s.Running, to be awaited by the next run.
func (s *sequence) runNext(ctx workflow.Context) bool {
	next := s.Queue[0]
	child := workflow.ExecuteChildWorkflow(childOptions(ctx, next.WorkflowID, next.Input), WorkflowDispatch, next.Input)
	done := false
	for !done {
		if s.handOver(ctx, child, next) {
			s.Queue = s.Queue[1:]
			s.bytes -= sized(&next)
			return false
		}
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(child, func(workflow.Future) { done = true })
		s.addEvents(ctx, sel)
		sel.Select(ctx)
		s.pace(ctx)
	}
	s.Queue = s.Queue[1:]
	s.bytes -= sized(&next)
	err := child.Get(ctx, nil)
	var started *temporal.ChildWorkflowExecutionAlreadyStartedError
	var canceled *temporal.CanceledError
	switch {
	case errors.As(err, &started):
		s.duplicate(ctx, next)
	case err != nil && !errors.As(err, &canceled):
		// Neither done, nor a duplicate, nor canceled by someone who meant it.
		s.failed(ctx, next.WorkflowID, next.Input.Event.Type, next.Block, err.Error())
	}
	return true
}

// duplicate takes the dispatch at the head whose workflow ID was taken
// when its turn came: the event was dispatched before, or is being
// dispatched now by another way than its key's order (sent again while
// its dispatcher was not yet ordered, or while the intake could not read
// whether it is). From sequenceDuplicateV1 on, the events after it wait
// until that dispatch closes (s.Running: one look when it has), though
// its failure does not hold them: no Sequence ran it, so none would be
// released by its replay. Before, they ran beside it.
func (s *sequence) duplicate(ctx workflow.Context, head SequencedDispatch) {
	if workflow.GetVersion(ctx, changeSequenceDuplicate, workflow.DefaultVersion, sequenceDuplicateV1) < sequenceDuplicateV1 {
		return
	}
	s.Running = &RunningDispatch{WorkflowID: head.WorkflowID, Outside: true} // its latest run
}

// handOver reports whether the Sequence should continue as new while
// its child runs, as Temporal suggests (sequenceAwaitV1), and if so makes
// the child s.Running. A child not yet started is waited for: the next
// run could not tell its start from a duplicate's.
func (s *sequence) handOver(ctx workflow.Context, child workflow.ChildWorkflowFuture, next SequencedDispatch) bool {
	if child.IsReady() || !child.GetChildWorkflowExecution().IsReady() || !s.suggested(ctx) || s.canceled(ctx) {
		return false // canceled: the child closes, and the queue goes with the cancel
	}
	var run workflow.Execution
	if err := child.GetChildWorkflowExecution().Get(ctx, &run); err != nil {
		return false // not started: the child future says why, at once
	}
	if workflow.GetVersion(ctx, changeSequenceAwait, workflow.DefaultVersion, sequenceAwaitV1) < sequenceAwaitV1 {
		return false
	}
	s.Running = &RunningDispatch{WorkflowID: run.ID, RunID: run.RunID, Block: next.Block, EventType: next.Input.Event.Type}
	return true
}

// suggested reports whether the run is to continue as new because
// Temporal suggests it. From sequenceMinRunV1 on, only once the run has
// grown: its history holds sequenceMinRun events, or more than twice the
// bytes it held at its first task. A suggestion from the first task on (a
// size limit below what the run carries) would otherwise make run after
// run continue as new at once. With Temporal's defaults a run is seldom
// suggested before it has grown (one whose first task already passes 4
// MiB is: a full queue and a backlog of large events), and only such a
// run records the marker. sequenceMinRun and the factor 2 decide replays
// of the runs that recorded it: change them only under a new version.
func (s *sequence) suggested(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	if !info.GetContinueAsNewSuggested() {
		return false
	}
	return info.GetCurrentHistoryLength() >= sequenceMinRun || info.GetCurrentHistorySize() > 2*s.firstSize ||
		workflow.GetVersion(ctx, changeSequenceMinRun, workflow.DefaultVersion, sequenceMinRunV1) < sequenceMinRunV1
}

// awaitRunning waits for s.Running, the dispatch an earlier run started,
// to close, queuing the events that arrive meanwhile, and then goes on as
// when a child closes. It reports false, still running, when Temporal
// suggests continuing as new again.
func (s *sequence) awaitRunning(ctx workflow.Context) bool {
	r := s.Running
	actx := workflow.WithActivityOptions(ctx, awaitOptions)
	closed := workflow.ExecuteActivity(actx, ActivityAwaitDispatch, AwaitDispatchInput{WorkflowID: r.WorkflowID, RunID: r.RunID})
	done := false
	for !done {
		if info := workflow.GetInfo(ctx); info.GetContinueAsNewSuggested() && !closed.IsReady() &&
			info.GetCurrentHistoryLength() >= sequenceMinRun {
			return false
		}
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(closed, func(workflow.Future) { done = true })
		s.addEvents(ctx, sel)
		sel.AddReceive(s.releases, func(c workflow.ReceiveChannel, _ bool) {
			var id string
			if receive(ctx, c, &id) {
				s.release(ctx, id)
			}
		})
		sel.Select(ctx)
		s.pace(ctx)
	}
	s.Running = nil
	var c DispatchClosed
	var canceled *temporal.CanceledError
	switch err := closed.Get(ctx, &c); {
	case errors.As(err, &canceled):
		s.cancelRunning(ctx, r) // the Sequence is canceled
	case err != nil:
		s.failed(ctx, r.WorkflowID, r.eventType(), r.Block && !r.Released, "waiting for it: "+err.Error())
	case c.held():
		s.failed(ctx, r.WorkflowID, r.eventType(), r.Block && !r.Released, c.Status+": "+c.Failure)
	}
	return true
}

// eventType is the event type of r, whose ordering decides whether its
// failure holds the key; "" when a release of it came meanwhile, which
// lets the key go on whatever the ordering says, or when a run from
// before sequencePolicyNowV1 handed it over.
func (r *RunningDispatch) eventType() string {
	if r.Released {
		return ""
	}
	return r.EventType
}

// cancelRunning requests the cancel of r, the dispatch an earlier run
// handed over, once the Sequence is canceled (sequenceCancelRunningV1);
// not of one started outside it, which it only waited for.
// One that closed meanwhile is no longer canceled: the request fails, and
// is only logged.
func (s *sequence) cancelRunning(ctx workflow.Context, r *RunningDispatch) {
	if r.Outside || workflow.GetVersion(ctx, changeSequenceCancelRunning, workflow.DefaultVersion, sequenceCancelRunningV1) < sequenceCancelRunningV1 {
		return // not the Sequence's to cancel
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx) // so that Get waits for the answer
	if err := workflow.RequestCancelExternalWorkflow(dctx, r.WorkflowID, r.RunID).Get(dctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("Canceling the dispatch handed over failed", "WorkflowID", r.WorkflowID, "Error", err)
	}
}

// failed blocks the key on a failed dispatch whose ordering says so, and
// lets it go on otherwise: from sequencePolicyNowV1 on, the ordering of
// its eventType now ("": as block says, the ordering of when the event
// was accepted). One that cannot be read now keeps block.
func (s *sequence) failed(ctx workflow.Context, workflowID, eventType string, block bool, why string) {
	if eventType != "" && workflow.GetVersion(ctx, changeSequencePolicyNow, workflow.DefaultVersion, sequencePolicyNowV1) >= sequencePolicyNowV1 {
		lctx := workflow.WithLocalActivityOptions(ctx, orderingBlocksOptions)
		if err := workflow.ExecuteLocalActivity(lctx, ActivityOrderingBlocks, eventType).Get(ctx, &block); err != nil {
			workflow.GetLogger(ctx).Warn("Reading the ordering of a failed dispatch failed; it holds its key as when its event was accepted", "WorkflowID", workflowID, "Block", block, "Error", err)
		}
	}
	if block {
		s.Blocked = workflowID
		return
	}
	workflow.GetLogger(ctx).Warn("Ordered dispatch failed; its key goes on", "WorkflowID", workflowID, "Error", why)
}

// childOptions are those of the dispatch of an event of the key.
func childOptions(ctx workflow.Context, workflowID string, in DispatchInput) workflow.Context {
	return workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: workflowID,
		// A closed dispatch with this ID means the event was dispatched:
		// its duplicate is skipped.
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		// The dispatch outlives a Sequence that is terminated, or ends.
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: temporal.NewSearchAttributes(StartAttributes(workflowID, in)...),
	})
}

// StartAttributes are the search attributes a dispatch is started with:
// its event, its tenant (dispatcher.TenantOf), and its dispatchers when
// its configuration is handed to it, the first of them only when they
// would pass KeywordListBudget (BoundKeywords).
func StartAttributes(workflowID string, in DispatchInput) []temporal.SearchAttributeUpdate {
	attrs := []temporal.SearchAttributeUpdate{AttrEventType.ValueSet(in.Event.Type), AttrEventID.ValueSet(in.Event.ID)}
	if t := dispatcher.TenantOf(workflowID); t != "" {
		attrs = append(attrs, AttrTenant.ValueSet(t))
	}
	if in.Config != nil {
		attrs = append(attrs, AttrDispatcherIDs.ValueSet(BoundKeywords(in.Config.DispatcherIDs(in.Only))))
		if r := in.Config.SkipReason(in.Only); r != "" {
			attrs = append(attrs, AttrSkipped.ValueSet(r))
		}
	}
	return attrs
}

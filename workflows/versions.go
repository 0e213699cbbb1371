package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// Every change to what a workflow does — the commands it issues, in which
// order, with which inputs — is gated by workflow.GetVersion on the
// workflow's change ID, so that runs started by older code replay
// unchanged on newer workers. To change a workflow: add a version below
// and make it the latest, branch on it (older code moves to legacy.go),
// record new histories (see testdata/README.md), and keep the older
// branch until no run started before the change can still be open
// (docs/operations.md). One change ID per workflow costs one marker per
// run however many versions follow; from dispatchV3 on, Dispatch's version
// travels in its input instead (see dispatchV3).
const (
	changeDispatch   = "dispatch"
	changeBulkReplay = "bulk-replay"
	changeSequence   = "sequence"
	// changeSequenceOverflow is a change ID of its own: a run decides each
	// change ID's version once, so an older run that replays past the
	// queue's bound would otherwise pin sequenceV1 to DefaultVersion too.
	changeSequenceOverflow = "sequence-overflow"
	// changeSequenceAwait, of its own for the same reason.
	changeSequenceAwait = "sequence-await"
	// changeSequenceMinRun, of its own for the same reason.
	changeSequenceMinRun = "sequence-min-run"
	// changeSequenceCancel, of its own for the same reason.
	changeSequenceCancel = "sequence-cancel"
	// changeSequenceCancelRunning, of its own for the same reason.
	changeSequenceCancelRunning = "sequence-cancel-running"
	// changeSequenceDuplicate, of its own for the same reason.
	changeSequenceDuplicate = "sequence-duplicate"
	// changeSequenceCanceledOverflow, of its own for the same reason.
	changeSequenceCanceledOverflow = "sequence-canceled-overflow"
	// changeSequenceOverflowDetached, of its own for the same reason.
	changeSequenceOverflowDetached = "sequence-overflow-detached"
	// changeSequencePolicyNow, of its own for the same reason.
	changeSequencePolicyNow = "sequence-policy-now"
	changeGate              = "gate"
	// changeGateSending, of its own for the same reason.
	changeGateSending = "gate-sending"
	// changeGateFewSending, of its own for the same reason.
	changeGateFewSending = "gate-few-sending"
	// changeGateSize, of its own for the same reason.
	changeGateSize = "gate-size"
	// changeGateUnread, of its own for the same reason.
	changeGateUnread = "gate-unread"
	// changeGateIdleOpen, of its own for the same reason.
	changeGateIdleOpen = "gate-idle-open"
	// changeGateRun, of its own for the same reason.
	changeGateRun = "gate-run"
	// changeGateRate, of its own for the same reason.
	changeGateRate = "gate-rate"
	// changeGateRateHeld, of its own for the same reason.
	changeGateRateHeld = "gate-rate-held"
	// changeGateMovedWaits, of its own for the same reason.
	changeGateMovedWaits = "gate-moved-waits"
	// changeGateDoneRun, of its own for the same reason.
	changeGateDoneRun = "gate-done-run"
	// changeGateDoneLease, of its own for the same reason.
	changeGateDoneLease = "gate-done-lease"
	// changeGateDeliveredKept, of its own for the same reason.
	changeGateDeliveredKept = "gate-delivered-kept"
	// changeGateSilent, of its own for the same reason.
	changeGateSilent = "gate-silent"
	// changeGateProbe, of its own for the same reason.
	changeGateProbe = "gate-probe"
	// changeSignalDropped: a selector's signal that does not decode is
	// dropped without waiting for the next (receive); of Gate, Sequence
	// and BulkReplay alike, and recorded only when one comes.
	changeSignalDropped = "signal-dropped"
	// changeResetRelease: a reset run of an ordered dispatch that made
	// every action releases the key the run it reset blocked
	// (releaseAfterReset); recorded only then.
	changeResetRelease = "reset-release"
	// changeKeepLocalResults: a run of a version before dispatchV18 that
	// closes in a later workflow task that made a first attempt lets that
	// task complete first, as dispatchV18 does (keepLocalResults): an
	// action scheduled months ahead by an older intake gets it too;
	// recorded only then.
	changeKeepLocalResults = "keep-local-results"
	// changeEmitAfterCommit: a run of a version before dispatchV19 whose
	// task action fails for good in the workflow task in which it began
	// has that task complete before its task_failed event is started, as
	// dispatchV19 does (emitTaskFailed); recorded only then.
	changeEmitAfterCommit = "emit-after-commit"
)

// Dispatch versions.
const (
	// dispatchV1: an action's attempts never overlap (the local first
	// attempt makes the whole call; a handoff waits as the policy or
	// Retry-After says); a cancel waits for attempts in flight; child
	// workflows' payloads are rendered in a local activity.
	dispatchV1 workflow.Version = 1
	// dispatchV2: a dispatch handed its configuration at intake was
	// started with all its search attributes, so it upserts none.
	dispatchV2 workflow.Version = 2
	// dispatchV3: the version travels in the input (DispatchInput.Version,
	// set by the starter) instead of a marker, which costs every dispatch
	// two history events and a visibility write (GetVersion also upserts
	// TemporalChangeVersion). Its decisions are dispatchV2's: a worker
	// from before V3 runs a V3 input as V2 (it knows no Version and records
	// a V2 marker), and that history replays unchanged on a V3 worker,
	// which skips version markers it does not ask for. A worker that meets
	// a version newer than its own fails the workflow task, which Temporal
	// retries until a newer worker takes it: from V3 on, upgrade the
	// workers before the intake (serve does both at once).
	//
	// A further change to Dispatch is a version in the input, not a new
	// marker; but for one that only a reset run meets (changeResetRelease),
	// whose input is the run's it was reset from and cannot say.
	dispatchV3 workflow.Version = 3
	// dispatchV4: the calls of a gated function (FunctionRef.Gated) each
	// wait for a permit of the function's Gate, are made as one attempt,
	// and report how they ended; the workflow drives their retries, so
	// waiting never consumes an attempt (attemptGated). Every other action
	// runs exactly as in dispatchV3.
	dispatchV4 workflow.Version = 4
	// dispatchV5: an input with Overflow set (a Sequence that could not
	// hold its event) runs none of its actions: each fails at once with
	// FailureOrderingOverflow. Every other input runs as in dispatchV4.
	dispatchV5 workflow.Version = 5
	// dispatchV6: the regular activities and child workflows one workflow
	// task schedules carry at most paceBytes of input (each carries the
	// event): one over it waits for the next task (dispatch.pace); and
	// the maxSlotMisses-th slot in a row that a gated call misses counts
	// as a failed attempt, instead of asking for permits for ever; and the
	// regular activity of an action's attempts has the activity ID
	// ActionActivityID. Every other run runs as in dispatchV5.
	dispatchV6 workflow.Version = 6
	// dispatchV7: an action of a dispatch canceled before it began (a
	// cancel in the run's first workflow task, the workers having been
	// down or behind) is canceled without its local first attempt, which
	// before ran on its disconnected context all the same; and a gated
	// call's regular activity has a schedule-to-start timeout
	// (gateScheduleMargin), past which, never started, it asks for
	// another permit, as a missed slot does, instead of ending as a
	// timeout after the call's own. Every other run runs as in dispatchV6.
	dispatchV7 workflow.Version = 7
	// dispatchV8: a gated call's permit request that Temporal does not
	// take is asked again for two minutes (requestPermitOptionsV8), then,
	// as one that went unanswered, again after a wait (permitRetry), with
	// the same id, which the gate takes as a no-op when it has it; before,
	// it was retried for ten seconds and failed the action for good,
	// without a call, and could still land later and hold a permit no one
	// waited for; and a canceled dispatch asks its child workflows to
	// cancel and ends without waiting for them to, which a child no
	// worker runs never did (runChild). Every other run runs as in
	// dispatchV7.
	dispatchV8 workflow.Version = 8
	// dispatchV9: the PrepareTask local activity of a child workflow's
	// action is paced too (dispatch.pace), as its result, the child's
	// payload, lands in the workflow task's completion as a marker: 20
	// children of a 220 KiB event made a 5 MiB completion, which failed on
	// every retry. It is paced by the most its payload can be (the size of
	// its input, or MaxTaskPayloadBytes for templated data, which
	// PrepareTask refuses beyond), then, back in the same task, by what it
	// is. Every other run runs as in dispatchV8.
	dispatchV9 workflow.Version = 9
	// dispatchV10: an action that fails while another action of the
	// dispatch waits for its startTimestamp has its failure upserted at
	// once (DispatchFailedActionIDs, DispatchErrorClasses: showFailure),
	// so that it is found by its error class and counted in the list
	// while the dispatch is scheduled, months maybe, rather than when it
	// closes. Every other run runs as in dispatchV9.
	dispatchV10 workflow.Version = 10
	// dispatchV11: a task action scheduled for later than its dispatch
	// started (a startTimestamp it waited for, or one that passed while
	// the workers were down) looks its function up again when its time
	// comes (ActivityResolveFunction, a local activity), and runs with
	// the function as it is then: its kind, its timeout, whether its
	// calls wait for its gate. Before, it ran as the configuration read
	// at intake said, days before maybe: a function given flow control
	// meanwhile had the delayed calls bypass its gate, all at once; one
	// given a longer timeout had them cut at the old one. A store that
	// does not answer for a minute leaves the configuration's function
	// (one it did not have fails as not found, as before). Every other
	// run runs as in dispatchV10.
	dispatchV11 workflow.Version = 11
	// dispatchV12: a first attempt its worker held too long for a slot
	// (activities.queuedTooLong: SlotMissed, not made) is made at once by
	// the regular activity, with the whole retry policy. Before, it was
	// handed off as a failed attempt, after the retry interval: an action
	// of one attempt failed without a call. Every other run runs as in
	// dispatchV11.
	dispatchV12 workflow.Version = 12
	// dispatchV13: the child workflow of a temporal function is started
	// with the reuse policy ALLOW_DUPLICATE_FAILED_ONLY, and one whose
	// ID an earlier run of the dispatch took (a reset from the Web UI or
	// the CLI, which runs the dispatch again) is awaited rather than run
	// again: the action's outcome is that child's (ActivityAwaitDispatch,
	// awaitChild), and a cancel of the dispatch meanwhile is passed on to
	// it. Before, a child that had completed ran again (its side effect
	// twice), and one still running failed the action as Unexpected while
	// it did the work. A child that failed, timed out, was canceled or
	// terminated, before the reset or while awaited, runs again, as a
	// reset means. Every other run runs as in dispatchV12.
	dispatchV13 workflow.Version = 13
	// dispatchV14: a replay's actions named in DispatchInput.Keys keep
	// the Idempotency-Key, Message-ID and child workflow ID of the run
	// named there: the replayed run did not record whether their call was
	// made (canceled, timed out, or no outcome), so the receiver, the
	// mail store and Temporal tell a call made already from one that was
	// not. Before, every action of a replay took the replay's key, and a
	// call made by a worker that died before the cancel was made twice.
	// And a gated call takes a permit only if it is for the run its
	// request was last asked by (PermitGrant.RunID, and the run the
	// RequestPermit marker records): a reset copies the ended run's
	// signals into the new run, and one that asks again ignores the ended
	// run's permits. Before, the reset run called at once on a permit used
	// and given back long ago, while its function was paused or at its
	// concurrency.
	// Every other run runs as in dispatchV13.
	dispatchV14 workflow.Version = 14
	// dispatchV15: a task action that fails for good emits a task_failed
	// event, as Extra Horizon's Task Service did: as it fails, a local
	// activity (ActivityEmitTaskFailed) starts it, under an id derived from
	// the failure, so that nothing runs it twice. Not for a dispatch of a
	// task_failed event (a listener's failure would emit another, without
	// end). Every other run runs as in dispatchV14.
	dispatchV15 workflow.Version = 15
	// dispatchV16: a gated call takes a permit only for the run that is
	// making it now, as a side effect records (permit): a reset to a
	// workflow task after the permit's request (the request's marker kept,
	// naming the run it ends) no longer calls at once on that run's
	// permit, used and given back long ago, which the reset copies in with
	// its other signals; it asks again. And a first attempt that made
	// nothing (madeNothing: the store did not answer before the mail was
	// claimed or the function called, or another attempt holds the mail)
	// costs no attempt: the regular activity has the whole policy. Every
	// other run runs as in dispatchV15.
	dispatchV16 workflow.Version = 16
	// dispatchV17: an action that fails for good while another retries
	// (its regular activity runs), makes a long call, waits for its
	// gate's permit or runs as a child workflow has its failure upserted
	// at once, as one that fails while another waits for its
	// startTimestamp has (dispatchV10); so does the first of those after
	// some failed.
	// Before, a failed mail was found by its class, and counted in the
	// list, only when the dispatch closed, up to half an hour later. And
	// an attempt whose input would take the run's history past
	// DispatchHistoryBudget is not made: its action fails with
	// FailureHistoryFull. Before, Temporal ended the run at 50 MiB,
	// its actions not made yet never made. Every other run runs as in
	// dispatchV16.
	dispatchV17 workflow.Version = 17
	// dispatchV18: a run does not close in the workflow task in which a
	// call's local first attempt returned, unless that is its first task
	// (keepLocalResults): a 1 ms timer lets that task complete with the
	// attempt's result first. A task that would close the run is refused
	// when a cancel came while it ran, and the result with it: an action
	// whose time came (startTimestamp), or whose first attempt was long
	// enough that its task was heartbeated, was reported canceled before
	// it began, or after an attempt not made, though its call had been
	// made. Every other run runs as in dispatchV17.
	dispatchV18 workflow.Version = 18
	// dispatchV19: a task action that fails for good in the workflow task
	// in which it began has that task complete before its task_failed
	// event is started (emitTaskFailed): the event's id is derived from
	// when the action began, the time of that task, and a task lost (its
	// worker died, or Temporal refused its completion) was begun again at
	// another time, the event started from it then a second, under
	// another id. Every other run runs as in dispatchV18.
	dispatchV19 workflow.Version = 19
	// dispatchV20: a dispatch shows scheduled (AttrScheduled) only while
	// no action retries or goes on in another way (showScheduled): one
	// retrying an action beside another that waits for its startTimestamp
	// upserts false when the retry begins and true again once it ends.
	// Before, it was shown scheduled as long as one waited, and the
	// pending dispatches' alert never saw it retry. Every other run runs
	// as in dispatchV19.
	dispatchV20 workflow.Version = 20
	// dispatchV21: a gated call's first attempt that its worker refused
	// for its tenant's share of the slots (FailureDetails.Busy) is made as
	// a regular activity, under a permit of its own, at no attempt's cost;
	// its first attempts say the run does so (TaskInput.ShareBound).
	// Before, a gated call was never refused so, and one tenant's gated
	// functions could hold every slot of a worker. Every other run runs
	// as in dispatchV20.
	dispatchV21 workflow.Version = 21
	// dispatchV22: a gated call asks for no permit once the run's history
	// holds DispatchHistoryEvents events (roomForCycle): the action fails,
	// FailureHistoryFull, its attempts left for a replay. Each permit's
	// cycle adds some 17 events, and Temporal terminates a run at 51,200
	// (limit.historyCount.error), its actions' outcomes lost and an
	// ordered key blocked: 50 gated actions of 100 attempts each against
	// a function that keeps failing reached it. Before, only the
	// history's size was bounded (dispatchV17). Every other run runs as
	// in dispatchV21.
	dispatchV22 workflow.Version = 22
	// dispatchV23: a replay that runs some of the actions of the run it
	// replays carries the others that failed in that run, as it left
	// them (DispatchInput.Carried): they are
	// among its outcomes and failures, so the dispatch stays failed, in
	// lists, failures summaries and bulk replays, until they are made.
	// Before, such a replay superseded the run and, once its own actions
	// succeeded, the others' failures showed nowhere but in the earlier
	// run's detail. They issue no command; a run that carries none runs
	// as in dispatchV22.
	dispatchV23 workflow.Version = 23

	dispatchLatest = dispatchV23
	// dispatchLastMarker is the newest version a marker records: that of
	// a run whose starter predates dispatchV3.
	dispatchLastMarker = dispatchV2
)

// DispatchVersion is the version a starter puts in DispatchInput.Version:
// the newest, or an older one during a rolling upgrade that adds some
// (PinDispatchVersion).
var DispatchVersion = int(dispatchLatest)

// Dispatch versions a process may start: from the first whose version
// travels in the input up to this release's newest. Its workers run all
// of them.
const (
	OldestDispatchVersion = int(dispatchV3)
	NewestDispatchVersion = int(dispatchLatest)
)

// PinDispatchVersion makes the process start dispatches of version v,
// from OldestDispatchVersion to NewestDispatchVersion: while the workers
// of a rolling upgrade that adds versions are still old and new, a
// dispatch of a version an old worker does not know that reached it
// failed its workflow task and waited, minutes, for a new one (Temporal
// retries the task with a growing backoff); pinned to the old workers'
// newest, the new processes start what every worker runs. A release may
// add several versions, so any from the oldest is allowed. It is set
// once, before the process starts any.
func PinDispatchVersion(v int) error {
	if v < OldestDispatchVersion || v > NewestDispatchVersion {
		return fmt.Errorf("dispatch version %d: this release starts %d to %d; during a rolling upgrade, the newest the workers of the release before run (their `dispatcher version` says)",
			v, OldestDispatchVersion, NewestDispatchVersion)
	}
	DispatchVersion = v
	return nil
}

// BulkReplay versions.
const (
	// bulkReplayV1: replays are counted per state with one visibility
	// count each (by the DispatchBulkReplayID search attribute) instead of
	// describing every pending replay, and the bulk replay's activities
	// run on their own task queue.
	bulkReplayV1 workflow.Version = 1
	// bulkReplayV2: the wait for the replays ends once none runs, seen
	// twice a wait apart, even when closed replays have left visibility
	// (retention) so the closed counts never reach the replays started;
	// the throttle carries over ContinueAsNew, so no run starts with a
	// burst of its own.
	bulkReplayV2 workflow.Version = 2
	// bulkReplayV3: SignalPause pauses and resumes it; paused, it starts
	// no replays, and stays paused over ContinueAsNew. Before it the
	// signal is ignored.
	bulkReplayV3 workflow.Version = 3
	// bulkReplayV4: a run that has listed a page continues as new when
	// Temporal suggests it, not only after ReplaysPerRun replays: pages of
	// runs a replay has superseded start none, and a bulk replay over
	// millions of them grew its history until Temporal ended it.
	bulkReplayV4 workflow.Version = 4
	// bulkReplayV5: a run whose replays the API holds (paused in the
	// audit trail, its pause signal lost) continues as new when Temporal
	// suggests it, instead of waiting a minute at a time in one history
	// until Temporal ended it at its history limit, days later.
	bulkReplayV5 workflow.Version = 5
	// bulkReplayV6: the wait for the replays ends once those still running
	// only wait for a startTimestamp (ReplayCounts.Scheduled): before, a
	// bulk replay of reminders due in a year ran for that year, and held
	// one of its tenant's MaxRunningBulkReplays.
	bulkReplayV6 workflow.Version = 6

	bulkReplayLatest = bulkReplayV6
)

// Sequence versions.
const (
	// sequenceV1: a blocked Sequence continues as new when Temporal
	// suggests it, still blocked, instead of growing its history with
	// every event that waits until the server terminates it. Asked only
	// then, so no other run records the marker.
	sequenceV1 workflow.Version = 1
)

// sequenceOverflowV1 (changeSequenceOverflow): a Sequence carries at most
// SequenceQueueBytes of waiting dispatches; an event that does not fit is
// started at once as a dispatch that fails with FailureOrderingOverflow
// (dispatchV5), instead of growing a ContinueAsNew input past Temporal's
// blob limit, for which the server terminates the Sequence and every
// waiting event is lost. Asked only then, so no other run records the
// marker.
const sequenceOverflowV1 workflow.Version = 1

// sequenceAwaitV1 (changeSequenceAwait): a Sequence whose history grows
// while the dispatch at its head runs (one that waits days for an
// action's startTimestamp, while the events behind it arrive) continues
// as new when Temporal suggests it, handing the running dispatch over
// (SequenceState.Running); the next run waits for it with
// ActivityAwaitDispatch. Before, it waited on the child however long its
// history grew, until the server terminated it and the waiting events
// were lost. Asked only then, so no other run records the marker.
const sequenceAwaitV1 workflow.Version = 1

// sequenceMinRunV1 (changeSequenceMinRun): a Sequence continues as new on
// Temporal's suggestion only once its run has grown (sequence.suggested).
// Before, a suggestion from a run's first task on (a history size
// limit set below what a run carries: a long queue of large events) made
// run after run continue as new at once, a blocked key or a queue that
// never moved. Asked only then, so no other run records the marker.
const sequenceMinRunV1 workflow.Version = 1

// sequenceCancelV1 (changeSequenceCancel): a canceled Sequence dispatches
// the events still waiting as dispatches that run none of their actions
// (as overflows: found and replayed like any failure) and closes
// canceled; a blocked one wakes up for it. Before, it started none of
// them (a child started on a canceled context is canceled at once,
// unstarted), so each waiting event was lost, and the Sequence completed.
// Asked only once canceled, so no other run records the marker.
const sequenceCancelV1 workflow.Version = 1

// sequenceCancelRunningV1 (changeSequenceCancelRunning): a Sequence
// canceled while it awaits the dispatch an earlier run handed over
// (sequenceAwaitV1) requests that dispatch's cancel, as a dispatch of its
// own run, a child, is canceled with it. Before, the dispatch went on.
// Asked only then, so no other run records the marker.
const sequenceCancelRunningV1 workflow.Version = 1

// sequenceDuplicateV1 (changeSequenceDuplicate): a dispatch whose
// workflow ID is taken when its turn comes (sequence.duplicate) holds the
// events after it until the run that has the ID closes, as one the
// Sequence started would; its failure does not block the key. Before, it
// was taken as done at once, and the next event's dispatch ran beside a
// run that was still going. Asked only then, so no other run records the
// marker.
const sequenceDuplicateV1 workflow.Version = 1

// sequenceCanceledOverflowV1 (changeSequenceCanceledOverflow): an event
// that overflows a canceled Sequence (while its dispatch in flight winds
// down, or its overflows start) is dispatched as an overflow, on a
// disconnected context. Before, its dispatch was started on the canceled
// context, which starts nothing, and the event was lost. Asked only then,
// so no other run records the marker.
const sequenceCanceledOverflowV1 workflow.Version = 1

// sequenceOverflowDetachedV1 (changeSequenceOverflowDetached): every
// overflow dispatch starts on a disconnected context, so that a cancel of
// its Sequence soon after does not cancel it too: it fails as an overflow
// (OrderingOverflow), to be found and replayed as one. Before, one started
// just before the cancel was canceled with the Sequence, maybe before its
// first task, and closed canceled. Asked at a run's first overflow.
const sequenceOverflowDetachedV1 workflow.Version = 1

// sequencePolicyNowV1 (changeSequencePolicyNow): a Sequence decides
// whether a failed dispatch holds its key by the ordering its event type
// has when it fails (ActivityOrderingBlocks), so that a change of
// onFailure, or ordering removed, applies to the dispatches that fail from
// then on, as the README says. Before, by the one it had when the event
// was accepted, maybe hours before: a key kept blocking after onFailure
// became skip, or ordering was removed. Asked only when a dispatch fails,
// so no other run records the marker.
const sequencePolicyNowV1 workflow.Version = 1

// Gate versions.
const (
	// gateV1: a Gate holds at most MaxGateWaiting requests; one over it is
	// not taken, and its dispatch asks again. Asked only then, so no other
	// run records the marker.
	gateV1 workflow.Version = 1
)

// gateSendingV1 (changeGateSending): a Gate has at most maxSending permits
// on their way at once, and grants the next as they arrive. Before, it
// signalled every permit allowed in one workflow task. Asked only when
// the bound is reached, so no other run records the marker.
const gateSendingV1 workflow.Version = 1

// gateFewSendingV1 (changeGateFewSending): a Gate has at most fewSending
// permits on their way at once. Before, up to maxSending, whose
// deliveries, coming back while its next workflow task ran, had Temporal
// fail that task (more than 100 events buffered). Asked only when the
// bound keeps a permit allowed from going, so no other run records the
// marker, and a worker from before fails the task that did.
const gateFewSendingV1 workflow.Version = 1

// gateSizeV1 (changeGateSize): a Gate holds at most MaxGateWaitingBytes of
// requests and MaxGateLeaseBytes of permits out; a request over the first
// is not taken, and past the second no permit goes until one out ends.
// Before, only the count of requests was bounded, and long ids took its
// ContinueAsNew input past Temporal's limit. Asked only when a bound is
// reached, so no other run records the marker.
const gateSizeV1 workflow.Version = 1

// gateUnreadV1 (changeGateUnread): a Gate that has never read its
// function's flow control grants nothing, and tries again a second
// later. Before, a failed first read left the zero Flow, and the gate
// granted every waiting call, however paused or limited the function.
// Asked only when a first read fails, so no other run records the marker.
const gateUnreadV1 workflow.Version = 1

// gateIdleOpenV1 (changeGateIdleOpen): a Gate whose circuit is open with
// no call waiting or out forgets the circuit at its next probe time, and
// completes once idle: the next call, probing in effect, opens it again
// if the function still fails. Before, it stayed open with no wake-up,
// and never completed nor read its settings again. Asked only then, so
// no other run records the marker.
const gateIdleOpenV1 workflow.Version = 1

// gateRunV1 (changeGateRun): a request that comes again from another run
// of its dispatch (a reset's, which asks with the same request ids) points
// the request, waiting or out, at that run, and a permit sent to the run
// before that is gone no longer ends the lease. Before, the permit went
// to the run the reset had terminated, and the new run waited for its
// next request, ten minutes later.
const gateRunV1 workflow.Version = 1

// gateRateV1 (changeGateRate): a rate limit changed while the bucket is
// ahead of now rescales it to the new rate (gate.rescale). Before, a
// raised rate waited for the old rate's next slot. Asked only then, so no
// other run records the marker.
const gateRateV1 workflow.Version = 1

// gateRateHeldV1 (changeGateRateHeld): a rate limit changed while
// permits granted at the old rate wait for their slots has the new rate's
// first slot follow the last of them (gate.rescale). Before, a raised
// rate's calls went beside them, more a second than either rate allows.
// Asked only then, so no other run records the marker.
const gateRateHeldV1 workflow.Version = 1

// gateMovedWaitsV1 (changeGateMovedWaits): a request that comes again from
// a newer run of its dispatch (a reset's) while the permit delivered to
// the run before is out waits for that lease to end (reported, or
// reclaimed), then for its turn like any: the run it went to may still be
// calling, as a reset does not stop an activity in flight. Before
// (gateRunV1), the permit went to the newer run at once, beside that
// call, past the function's concurrency, its pause or its open circuit.
// A permit that never reached its run still moves at once. Asked only
// then, so no other run records the marker.
const gateMovedWaitsV1 workflow.Version = 1

// gateDoneRunV1 (changeGateDoneRun): the report of a run whose request
// another run of its dispatch has asked again (PermitDone.RunID, from
// dispatchV16) leaves the newer run's waiting request alone. Before, the
// signals of a reset gate, taken in one task, requests first, had the
// ended run's report end the new run's request, whose call waited ten
// minutes to ask again. Asked only then, so no other run records the
// marker.
const gateDoneRunV1 workflow.Version = 1

// gateDoneLeaseV1 (changeGateDoneLease): the report of a run other than
// the one a permit is out to leaves the lease alone: the run it is out to
// may still be calling (a reset does not stop an activity in flight, nor
// a terminate a call that ignores cancellation). The newer run that waited
// for the lease (gateMovedWaitsV1) and reports, canceled, waits no more.
// Before, that report ended the lease, and the next call was permitted
// beside the one still going, past the function's concurrency. Asked only
// then, so no other run records the marker.
const gateDoneLeaseV1 workflow.Version = 1

// gateDeliveredKeptV1 (changeGateDeliveredKept): a permit sent again to
// the run it was delivered to (the run asked again), whose signal fails
// (the run is gone), leaves the lease to expire: the run may have been
// calling when it ended. Before, the lease ended at once, and the next
// call was permitted beside that one. Asked only then, so no other run
// records the marker.
const gateDeliveredKeptV1 workflow.Version = 1

// gateSilentV1 (changeGateSilent): a regular attempt whose worker stopped
// heartbeating (PermitSilent) keeps its lease until it expires: the
// worker may be cut off from Temporal and still calling. The circuit
// breaker learns nothing from it (the worker's silence, not the
// function's). Before, its dispatch reported the permit released, and the
// next call was permitted beside the one still going, past the function's
// concurrency. Asked only then, so no other run records the marker.
const gateSilentV1 workflow.Version = 1

// gateProbeV1 (changeGateProbe): a probe interval changed while the
// circuit is open moves the next probe to when it opened and the new
// interval (gate.reprobe). Before, a lowered interval waited for the old
// one's probe, up to a day. Asked only then, so no other run records the
// marker.
const gateProbeV1 workflow.Version = 1

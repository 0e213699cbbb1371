// Package workflows holds the deterministic side of the dispatcher: the
// Dispatch workflow that runs every action of every matching dispatcher,
// the BulkReplay workflow, and the names they and their activities are
// known by in Temporal. It does no I/O: activities (package activities,
// and package dispatch for the bulk replay's Temporal calls) do, and are
// called by name.
package workflows

import (
	"go.temporal.io/sdk/temporal"
)

// Names the workflow and its activities are registered under. They are
// part of every recorded history: renaming one breaks running dispatches
// and the replay tests.
const (
	// WorkflowDispatch is the workflow type of a dispatch.
	WorkflowDispatch = "Dispatch"
	// DefaultTaskQueue is the task queue dispatches run on by default.
	DefaultTaskQueue = "dispatcher"
	// QueryOutcomes returns the []ActionOutcome of a dispatch so far.
	QueryOutcomes = "outcomes"

	ActivityLoadConfig      = "LoadConfig"      // always local
	ActivityPrepareTask     = "PrepareTask"     // always local: a child workflow's payload
	ActivityResolveFunction = "ResolveFunction" // always local: the function of a task action that waited (dispatchV11)
	ActivityOrderingBlocks  = "OrderingBlocks"  // always local: whether a failed ordered dispatch holds its key, as its event type's ordering says now (sequencePolicyNowV1)
	ActivitySendMail        = "SendMail"        // retries of a mail action
	ActivityCallFunction    = "CallFunction"    // retries of an HTTP task action
	// The first attempt of an action runs as a local activity under its
	// own name, so histories and the Web UI tell it from the retries.
	LocalSendMail     = "SendMailLocal"
	LocalCallFunction = "CallFunctionLocal"
	// ActivityEmitTaskFailed starts the task_failed event of a task
	// action that failed for good (dispatchV15); always local.
	ActivityEmitTaskFailed = "EmitTaskFailed"

	// WorkflowBulkReplay replays every dispatch a filter matches,
	// throttled; QueryProgress returns its BulkReplayProgress.
	WorkflowBulkReplay = "BulkReplay"
	QueryProgress      = "progress"
	// SignalPause pauses a bulk replay (value true) or resumes it
	// (false): paused, it starts no replays (from bulkReplayV3).
	SignalPause = "pause"

	ActivityCountExecutions = "CountExecutions" // how many runs a filter matches
	ActivityListExecutions  = "ListExecutions"  // one page of matching runs
	ActivityReplayExecution = "ReplayExecution" // starts one replay, idempotently
	ActivityCountReplays    = "CountReplays"    // how many of its replays have closed, and how
	ActivityReplayOutcomes  = "ReplayOutcomes"  // before bulkReplayV1: which replays have closed

	// WorkflowSequence runs the dispatches of one ordering key one after
	// another (Sequence); the intake sends it each event's dispatch with
	// SignalSequenceEvent, a replay or release of the dispatch blocking
	// it SignalSequenceRelease with that dispatch's workflow ID;
	// QuerySequence returns its SequenceState.
	WorkflowSequence      = "Sequence"
	SignalSequenceEvent   = "event"
	SignalSequenceRelease = "release"
	QuerySequence         = "state"
	// ActivityAwaitDispatch waits for a dispatch run that an earlier run
	// of the Sequence started to close (dispatch.SequenceActivities).
	ActivityAwaitDispatch = "AwaitDispatch"

	// WorkflowGate grants the permits of one gated function's calls
	// (Gate); a dispatch asks for one with SignalGateRequest, through
	// ActivityRequestPermit (signal-with-start), receives it as
	// SignalPermit and reports the call's end with SignalGateDone.
	// QueryGate returns the gate's dispatcher.FlowState.
	WorkflowGate      = "Gate"
	SignalGateRequest = "request"
	SignalGateDone    = "done"
	SignalPermit      = "permit"
	QueryGate         = "flow"

	ActivityRequestPermit = "RequestPermit" // always local: signal-with-start of the gate (dispatch.GateActivities)
	ActivityFunctionFlow  = "FunctionFlow"  // always local: the gate reads its function's flow control

	// FailureReplayRefused is the failure type of a replay that the
	// executions service refused: retrying cannot help, the bulk replay
	// skips it.
	FailureReplayRefused = "ReplayRefused"
	// FailureReplayHeld: a replay of a bulk replay was not started, for
	// the bulk replay was paused or canceled before its worker took the
	// start up (a crash, or no worker for a while): it waits for the
	// resume, and is not counted.
	FailureReplayHeld = "ReplayHeld"

	// versionErrorPairs: a failed dispatch also records "class@dispatcherID"
	// pairs in DispatchErrorClasses (see errorPairs).
	versionErrorPairs = "error-class-pairs"
)

// Memo keys of a replay run: what it replays and who asked for it. The
// memo is returned with every listed execution, unlike its input.
const (
	MemoReplayOf     = "replayOf"
	MemoReplayID     = "replayId"
	MemoRequestedBy  = "requestedBy"
	MemoBulkReplayID = "bulkReplayId"
)

// Search attributes of a dispatch, for filtering in the Temporal Web UI.
// SearchAttributes lists them for registration at start-up. Keyword lists
// use all three KeywordList slots that SQL visibility allows a namespace.
//
// Each keyword list holds only its first items when all of them would
// pass KeywordListBudget (BoundKeywords), which Temporal's 2 KiB limit
// per value calls for: some 65 ids of 24 characters, or 45 error class
// pairs. A query for an item cut off does not find the run: a listing or
// a bulk replay by dispatcherId (DispatchDispatcherIDs, whose skipped
// dispatchers come last) or by actionId (DispatchFailedActionIDs), the
// oldest pending dispatch of a dispatcher, and a failures summary's group
// of a class and a dispatcher (the pairs in DispatchErrorClasses). The
// plain error classes come first and, few, are always kept: filtering by
// error class is unaffected.
var (
	AttrEventType       = temporal.NewSearchAttributeKeyKeyword("DispatchEventType")
	AttrEventID         = temporal.NewSearchAttributeKeyKeyword("DispatchEventID")
	AttrDispatcherIDs   = temporal.NewSearchAttributeKeyKeywordList("DispatchDispatcherIDs")
	AttrFailedActionIDs = temporal.NewSearchAttributeKeyKeywordList("DispatchFailedActionIDs")
	AttrErrorClasses    = temporal.NewSearchAttributeKeyKeywordList("DispatchErrorClasses")
	// AttrScheduled is true while an action waits for its startTimestamp
	// and, from dispatchV20, none retries or goes on in another way.
	AttrScheduled = temporal.NewSearchAttributeKeyBool("DispatchScheduled")
	// AttrPendingSince is when a dispatch that waited for a startTimestamp
	// was last shown running again (dispatchV20): its wait before is no
	// pending time. Unset on a dispatch that never waited.
	AttrPendingSince = temporal.NewSearchAttributeKeyTime("DispatchPendingSince")
	// AttrReplayOf is the run ID a replay run replays; unset on the first
	// run of an event. It lets a listing tell which failed runs a later
	// run has superseded without reading any history.
	AttrReplayOf = temporal.NewSearchAttributeKeyKeyword("DispatchReplayOf")
	// AttrBulkReplayID is the bulk replay that started a replay run, so a
	// bulk replay counts its replays' outcomes with one query per state.
	AttrBulkReplayID = temporal.NewSearchAttributeKeyKeyword("DispatchBulkReplayID")
	// AttrTenant is the tenant of a dispatch, unset for the implicit
	// tenant (dispatcher.Caller): listings are scoped by it.
	AttrTenant = temporal.NewSearchAttributeKeyKeyword("DispatchTenant")
	// AttrBlocked is set on a Sequence while a failed dispatch, whose
	// workflow ID it holds, blocks its ordering key.
	AttrBlocked = temporal.NewSearchAttributeKeyKeyword("DispatchBlocked")
	// AttrSkipped is the most actionable reason (dispatcher.SkipReasons)
	// for which a dispatch skipped a dispatcher: paused, filter-error,
	// removed or filter; unset when it skipped none. A bulk replay by it
	// replays the events of a paused dispatcher once it is resumed.
	AttrSkipped = temporal.NewSearchAttributeKeyKeyword("DispatchSkipped")
	// AttrGateState is the state of a Gate (dispatcher.FlowClosed, FlowOpen
	// or FlowPaused), so visibility lists the open circuits.
	AttrGateState = temporal.NewSearchAttributeKeyKeyword("DispatchGateState")
)

// SearchAttributeKeys returns the custom search attributes of a dispatch,
// to register with the Temporal namespace at start-up.
func SearchAttributeKeys() []temporal.SearchAttributeKey {
	return []temporal.SearchAttributeKey{AttrEventType, AttrEventID, AttrDispatcherIDs,
		AttrFailedActionIDs, AttrErrorClasses, AttrScheduled, AttrPendingSince, AttrReplayOf, AttrBulkReplayID, AttrTenant, AttrBlocked,
		AttrSkipped, AttrGateState}
}

// ActionActivityID is the activity ID of the regular activity that runs
// an action's attempts (from dispatchV6; gated calls excepted): the
// executions API reads, while it retries, its attempt and last failure
// from the run's pending activities.
func ActionActivityID(actionID string) string { return "action:" + actionID }

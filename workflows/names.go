// Package workflows holds the deterministic side of a dispatch: the
// Dispatch workflow that runs every action of every matching dispatcher,
// the names it is known by in Temporal, and the client-side Starter. All
// I/O happens in package activities.
package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"

	"go.temporal.io/api/enums/v1"
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

	ActivityLoadConfig   = "LoadConfig"   // always local
	ActivitySendMail     = "SendMail"     // retries of a mail action
	ActivityCallFunction = "CallFunction" // retries of an HTTP task action
	// The first attempt of an action runs as a local activity under its
	// own name, so histories and the Web UI tell it from the retries.
	LocalSendMail     = "SendMailLocal"
	LocalCallFunction = "CallFunctionLocal"

	// WorkflowBulkReplay replays every dispatch a filter matches,
	// throttled; QueryProgress returns its BulkReplayProgress.
	WorkflowBulkReplay = "BulkReplay"
	QueryProgress      = "progress"

	ActivityCountExecutions = "CountExecutions" // how many runs a filter matches
	ActivityListExecutions  = "ListExecutions"  // one page of matching runs
	ActivityReplayExecution = "ReplayExecution" // starts one replay, idempotently
	ActivityReplayOutcomes  = "ReplayOutcomes"  // which replays have closed, and how

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
var (
	AttrEventType       = temporal.NewSearchAttributeKeyKeyword("DispatchEventType")
	AttrEventID         = temporal.NewSearchAttributeKeyKeyword("DispatchEventID")
	AttrDispatcherIDs   = temporal.NewSearchAttributeKeyKeywordList("DispatchDispatcherIDs")
	AttrFailedActionIDs = temporal.NewSearchAttributeKeyKeywordList("DispatchFailedActionIDs")
	AttrErrorClasses    = temporal.NewSearchAttributeKeyKeywordList("DispatchErrorClasses")
	// AttrScheduled is true while an action waits for its startTimestamp.
	AttrScheduled = temporal.NewSearchAttributeKeyBool("DispatchScheduled")
	// AttrReplayOf is the run ID a replay run replays; unset on the first
	// run of an event. It lets a listing tell which failed runs a later
	// run has superseded without reading any history.
	AttrReplayOf = temporal.NewSearchAttributeKeyKeyword("DispatchReplayOf")
)

// SearchAttributes returns the custom search attributes of a dispatch by
// name and type, to register with the Temporal namespace at start-up.
func SearchAttributes() map[string]enums.IndexedValueType {
	return map[string]enums.IndexedValueType{
		AttrEventType.GetName():       enums.INDEXED_VALUE_TYPE_KEYWORD,
		AttrEventID.GetName():         enums.INDEXED_VALUE_TYPE_KEYWORD,
		AttrDispatcherIDs.GetName():   enums.INDEXED_VALUE_TYPE_KEYWORD_LIST,
		AttrFailedActionIDs.GetName(): enums.INDEXED_VALUE_TYPE_KEYWORD_LIST,
		AttrErrorClasses.GetName():    enums.INDEXED_VALUE_TYPE_KEYWORD_LIST,
		AttrScheduled.GetName():       enums.INDEXED_VALUE_TYPE_BOOL,
		AttrReplayOf.GetName():        enums.INDEXED_VALUE_TYPE_KEYWORD,
	}
}

// safeEventID matches event ids that can be used in a workflow ID as they
// are: URL-unreserved characters only, so the ID needs no escaping in a
// path like /executions/v1/{workflowId}.
var safeEventID = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// WorkflowID returns the workflow ID of the dispatch of the event with
// eventID, the key that makes the same event dispatch once. Ids of at
// most 128 URL-unreserved characters give "dispatch-<eventID>"; any other
// id gives "dispatch.<first 32 hex digits of its SHA-256>", which is
// deterministic, path-safe and cannot collide with the first form.
func WorkflowID(eventID string) string {
	if safeEventID.MatchString(eventID) {
		return "dispatch-" + eventID
	}
	sum := sha256.Sum256([]byte(eventID))
	return "dispatch." + hex.EncodeToString(sum[:16])
}

package dispatcher

import (
	"encoding/json"
	"time"
)

// Execution statuses, as support staff filter on them. They map Temporal's
// execution statuses: a running dispatch is "scheduled" while one of its
// actions waits for a future startTimestamp; a terminated or timed-out one
// counts as failed.
const (
	ExecutionRunning   = "running"
	ExecutionScheduled = "scheduled"
	ExecutionCompleted = "completed"
	ExecutionFailed    = "failed"
	ExecutionCanceled  = "canceled"
)

// ExecutionStatuses returns every execution status, in lifecycle order.
func ExecutionStatuses() []string {
	return []string{ExecutionRunning, ExecutionScheduled, ExecutionCompleted, ExecutionFailed, ExecutionCanceled}
}

// FailureTerminated is the error class of a dispatch that an operator
// terminated (Temporal CLI or Web UI): it recorded no action outcomes.
// A dispatch that timed out as a whole has the class FailureTimeout.
const FailureTerminated = "Terminated"

// ExecutionFilter selects dispatch runs. Empty fields match everything;
// set fields must all match.
type ExecutionFilter struct {
	EventType    string
	EventID      string
	DispatcherID string    // runs that ran an action of this dispatcher
	ActionID     string    // runs in which this action failed or was canceled
	Status       string    // one of the Execution* statuses
	ErrorClass   string    // a Failure* class one of its actions failed with
	BulkReplayID string    // replay runs that this bulk replay started
	From         time.Time // start time, inclusive; zero: no bound
	To           time.Time // start time, exclusive; zero: no bound
	// SkipReason selects the runs that skipped a dispatcher for this
	// reason (a Skip* reason). A run records one reason, its most
	// actionable (SkipReasons): one that skipped a paused dispatcher and
	// filtered out another matches "paused" only.
	SkipReason string
	// SkippedAny selects the runs that skipped a dispatcher for any
	// reason: what a bulk replay of completed runs with the current
	// configuration can run again, unless it names actions.
	SkippedAny bool
}

// Execution is one run of a dispatch: the first one of an event, or a
// replay, which is a later run of the same workflow ID.
type Execution struct {
	WorkflowID      string
	RunID           string
	EventID         string
	EventType       string
	Status          string // an Execution* status
	Start           time.Time
	Close           time.Time // zero while it runs
	DispatcherIDs   []string
	FailedActionIDs []string
	ErrorClasses    []string
	// SkipReason is the most actionable reason for which the run skipped
	// a dispatcher (SkipReasons); empty when it skipped none.
	SkipReason string
	// Failures pairs each error class with the dispatcher whose action
	// failed with it; runs recorded before pairs existed pair every class
	// with every dispatcher.
	Failures []ClassDispatcher
	Replay   ReplayInfo // zero for the first run of an event
	WebURL   string     // the run in the Temporal Web UI
	// ReplayedAs is the run that superseded this one, when it failed or
	// was canceled and was replayed since (its replay), or reset from
	// Temporal (the dispatch's latest run); a list sets it.
	ReplayedAs string
}

// ClassDispatcher is an error class and the dispatcher whose action failed
// with it.
type ClassDispatcher struct {
	ErrorClass   string
	DispatcherID string
}

// ReplayInfo says what a replay run replays and who asked for it.
type ReplayInfo struct {
	Of           string // the run ID it replays
	ID           string // the replay marker that tells its side effects apart
	RequestedBy  string
	BulkReplayID string // set when a bulk replay started it
}

// ListRequest asks for one page of the runs a filter matches.
type ListRequest struct {
	Limit     int    // runs on the page; 0 means DefaultExecutionPage
	PageToken string // the page before's NextPageToken; "" for the first page
	// HideReplayed leaves out the runs a replay, or a reset, has
	// superseded (those listed with ReplayedAs), as a failures summary
	// does: a list of failed dispatches then shows what is still to fix.
	HideReplayed bool
}

// ExecutionPage is one page of a listing of executions.
type ExecutionPage struct {
	Executions []Execution
	// NextPageToken fetches the next page; empty on the last one.
	NextPageToken string
}

// Page sizes of a listing of executions.
const (
	DefaultExecutionPage = 20
	MaxExecutionPage     = 100
)

// ExecutionDetail is everything support needs about one run of a dispatch.
type ExecutionDetail struct {
	Execution
	Event Event
	// Config is the configuration the run ran with, as its history
	// recorded it; nil when the run ended before it loaded one.
	Config *Config
	// ConfigPinned is true when the run was handed its configuration (a
	// replay with the original configuration) rather than loading it.
	ConfigPinned bool
	// Only lists the actions the run was limited to; empty means all.
	Only []string
	// Outcomes is what became of each action: the run's result once it
	// closed, the outcomes query while it runs.
	Outcomes []ActionOutcome
	// OutcomesUnknown says that no worker answered for the outcomes of a
	// run that has begun: Outcomes are its actions as planned (those
	// that failed, as far as its search attributes say, failed), not
	// their progress.
	OutcomesUnknown bool
	// NextAttempts holds, by action ID, when an action that waits to
	// retry makes its next attempt (Temporal's, of its regular activity).
	NextAttempts map[string]time.Time
	Failure      string // why the run failed, when it did
	// Runs lists every run of the workflow ID (the first dispatch and its
	// replays), newest first.
	Runs  []Execution
	Audit []AuditEntry
	// Blocking is true while the run, failed, holds the later events of
	// its ordering key (Ordering): a replay or a release lets them go on.
	Blocking bool
	// Waiting counts the events its ordering key holds behind the run,
	// while it runs or blocks the key; WaitingIDs are the workflow IDs of
	// the first MaxWaitingIDs, oldest first. Their dispatches start when
	// their turn comes: until then they are found only here.
	Waiting    int
	WaitingIDs []string
}

// MaxWaitingIDs is how many waiting events an execution detail names
// (ExecutionDetail.WaitingIDs).
const MaxWaitingIDs = 100

// ActionOutcome is what became of one action of a dispatch.
type ActionOutcome struct {
	DispatcherID   string
	DispatcherName string
	ActionID       string
	ActionName     string
	Type           string // ActionMail or ActionTask
	Status         string // an Outcome* status
	Attempts       int
	Error          string // the last error, when failed or canceled; why, when skipped
	ErrorClass     string // a Failure* constant
	StartedAt      time.Time
	FinishedAt     time.Time
	HTTPStatus     int    // HTTP task functions
	MessageID      string // mail
	// Unanswered: the last attempt of a failed mail handed it over and
	// got no answer (or another attempt may have), so its server may have
	// accepted it: a replay keeps its Message-ID.
	Unanswered bool `json:",omitzero"`
	// SkipReason says why a skipped action did not run (a Skip* reason).
	SkipReason string
	// NextAttemptAt is when an action that waits between two attempts
	// makes the next, while the workflow's own timer holds it (after its
	// first attempt, or between a gated call's); zero otherwise.
	NextAttemptAt time.Time `json:",omitzero"`
	// CarriedFrom is the run that ended the action as it shows, when not
	// this one: a replay that runs some actions of a run carries the
	// others it did not make, failed or canceled, as that run left them.
	CarriedFrom string `json:",omitempty"`
}

// Action outcome statuses. An outcome ends succeeded, failed, canceled or
// skipped; a running dispatch also shows actions still scheduled,
// waiting or running.
const (
	OutcomeScheduled = "scheduled" // waiting for its startTimestamp
	// OutcomeWaiting: a call of a gated function (Flow) waits for its
	// permit: a rate limit, the concurrency, an open circuit or a pause
	// holds it. Waiting consumes no attempt.
	OutcomeWaiting = "waiting"
	OutcomeRunning = "running"
	// OutcomeUnknown: no worker answered for a running dispatch, and its
	// history does not say how far the action got (ExecutionDetail.
	// OutcomesUnknown); or the run ended (terminated, timed out) before
	// the action did, which may have been made.
	OutcomeUnknown   = "unknown"
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeCanceled  = "canceled"
	// OutcomeSkipped: its dispatcher did not run for the event, paused or
	// filtered out (ActionOutcome.SkipReason); it counts as neither
	// success nor failure.
	OutcomeSkipped = "skipped"
)

// HistoryPage is one page of a run's raw Temporal history.
type HistoryPage struct {
	RunID string
	// Events are history events as Temporal's JSON encoding (protojson)
	// gives them, the form `temporal workflow show --output json` uses.
	Events        []json.RawMessage
	NextPageToken string
}

// FailureGroup counts the failed dispatches whose actions of one
// dispatcher failed with one error class.
type FailureGroup struct {
	ErrorClass     string
	DispatcherID   string // empty for a run that failed before it loaded dispatchers
	DispatcherName string
	Count          int
	// Sample is the error message of one of them (the newest), and
	// SampleWorkflowID and SampleRunID name it; SampleEventType is its
	// event's type, the dispatcher's.
	Sample           string
	SampleWorkflowID string
	SampleRunID      string
	SampleEventType  string
	// Trend counts them per bucket of the summary's Trend.
	Trend []int
	// Removed says that the dispatcher is no dispatcher of
	// SampleEventType now (deleted, or moved to another event type): a
	// replay runs none of its actions, with either configuration.
	Removed bool
}

// FailureSummary groups failed dispatches by cause.
type FailureSummary struct {
	Failed int // failed runs counted
	// Superseded counts failed runs left out because a later run (a
	// replay) of the same dispatch exists.
	Superseded int
	Groups     []FailureGroup
	// Truncated is true when more runs matched than a summary reads; the
	// counts cover the newest ones.
	Truncated bool
	// Trend counts the failed runs over time, by when they started.
	Trend Trend
}

package dispatcher

import "time"

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
	From         time.Time // start time, inclusive; zero: no bound
	To           time.Time // start time, exclusive; zero: no bound
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
	// Failures pairs each error class with the dispatcher whose action
	// failed with it; runs recorded before pairs existed pair every class
	// with every dispatcher.
	Failures []ClassDispatcher
	Replay   ReplayInfo // zero for the first run of an event
	WebURL   string     // the run in the Temporal Web UI
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

// Replay configuration choices.
const (
	ReplayConfigOriginal = "original" // the configuration the replayed run ran with
	ReplayConfigCurrent  = "current"  // today's configuration
)

// ReplayRequest asks for a new run of a dispatch.
type ReplayRequest struct {
	WorkflowID string
	// RunID is the run to replay; empty means the latest. A run that is
	// not the latest is refused: a newer run has superseded it.
	RunID string
	// Actions to run again; empty means the ones that failed or were
	// canceled in the replayed run. Naming an action that succeeded is
	// the only way to send it again.
	Actions []string
	Config  string // ReplayConfigOriginal (the default) or ReplayConfigCurrent
	Actor   string // who asked, for the audit trail
	// ReplayID marks the replay; empty means a fresh one. A caller that
	// may retry (a bulk replay) passes the same ID every time: a replay
	// with that ID that already started is reported, not started again.
	ReplayID     string
	BulkReplayID string
}

// ReplayResult is the run a replay started.
type ReplayResult struct {
	WorkflowID string
	RunID      string
	ReplayOf   string // the run it replays
	ReplayID   string
	Actions    []string // the actions it runs; empty means all
	Config     string
	// AlreadyStarted is true when a replay with the request's ReplayID
	// had started before; RunID is then that run.
	AlreadyStarted bool
}

// RunRef names one run of a workflow.
type RunRef struct {
	WorkflowID string
	RunID      string
}

// Audit operations.
const (
	AuditReplay = "replay"
	AuditCancel = "cancel"
)

// AuditEntry records who replayed or canceled which dispatch, and when.
type AuditEntry struct {
	ID         string
	WorkflowID string
	// Ref makes recording idempotent: a second entry with the same
	// WorkflowID, Operation and Ref is ignored.
	Ref          string
	Operation    string // AuditReplay or AuditCancel
	RunID        string // the run replayed or canceled
	NewRunID     string // the replay's run
	Actor        string
	Actions      []string
	Config       string
	BulkReplayID string
	At           time.Time
}

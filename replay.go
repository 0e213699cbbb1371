package dispatcher

import (
	"regexp"
	"time"
)

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
	// IdempotencyKey, when set, makes the request idempotent for its
	// actor: a request with a key seen before answers with the replay it
	// started, starting nothing.
	IdempotencyKey string
	BulkReplayID   string // the bulk replay asking, if one is
}

// ReplayResult is the run a replay started. A run is replayed at most
// once: its replay ID is derived from it, and a request to replay it again
// answers with the replay that exists.
type ReplayResult struct {
	WorkflowID string
	RunID      string
	ReplayOf   string // the run it replays
	ReplayID   string
	Actions    []string // the actions it runs; empty means all
	Config     string
	// AlreadyStarted is true when the replay existed before the request:
	// the run had been replayed, or the request's idempotency key used.
	AlreadyStarted bool
	BulkReplayID   string // the bulk replay that started it, if one did
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
	// AuditPause and AuditResume pause and resume a bulk replay.
	AuditPause  = "pause"
	AuditResume = "resume"
	// AuditRelease lets the ordering key a failed dispatch blocks go on.
	AuditRelease = "release"
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
	NewRunID     string // the replay's run; empty while it is being started
	Actor        string
	Actions      []string
	Config       string
	BulkReplayID string
	// IdempotencyKey is the hash of the requester's Idempotency-Key, when
	// the request had one.
	IdempotencyKey string
	At             time.Time
}

// Bulk replay rates, in replays started per second.
const (
	DefaultReplayRate = 10.0
	MinReplayRate     = 0.01  // one every 100 s; slower rates overflow the throttle's arithmetic
	MaxReplayRate     = 100.0 // a bulk replay must not flood the task queue
)

// CheckReplayRate checks the rate of a bulk replay, in replays per second;
// 0 stands for DefaultReplayRate. The API checks it before it asks
// Temporal anything, and the executions service again.
func CheckReplayRate(rate float64) error {
	if rate == 0 {
		return nil
	}
	if !(rate >= MinReplayRate && rate <= MaxReplayRate) { // also refuses NaN
		return Errorf(EINVALID, "rate: must be between %g and %g replays per second (0 means %g), not %g",
			MinReplayRate, MaxReplayRate, DefaultReplayRate, rate)
	}
	return nil
}

// BulkReplayRequest asks for the replay of every run a filter matches.
type BulkReplayRequest struct {
	Filter  ExecutionFilter // Status defaults to failed
	Actions []string        // see ReplayRequest
	Config  string
	Rate    float64 // replays per second; 0 means DefaultReplayRate
	Actor   string
	// IdempotencyKey, when set, makes the request idempotent for its
	// actor: a request with a key seen before answers with the bulk
	// replay it started.
	IdempotencyKey string
}

// NothingToReplay starts the message of the ESTATE error that answers a
// bulk replay whose filter matches no dispatch, when none was started.
// The CLI tells that answer by it: nothing to do is not a failure there.
const NothingToReplay = "nothing to replay: no dispatch matches the filter"

// BulkReplayDryRun is what a bulk replay would match, had it started now.
type BulkReplayDryRun struct {
	Matched int64
	// Replayed are those of Matched that a replay (or a reset from
	// Temporal) has superseded already: the bulk replay skips them.
	Replayed int64
	// StillPaused are those of the others, when the filter is skipReason
	// paused, that a dispatcher still paused made skip actions: the bulk
	// replay skips them too (its actions would be skipped again).
	StillPaused int64
	// Removed are those of the rest none of whose actions to replay
	// (named, or those that failed) is an action of their event type's
	// dispatchers now: deleted since, or their dispatcher deleted or moved
	// to another event type. The bulk replay skips them too.
	Removed int64
	Sample  []Execution // the newest few of the rest
}

// BulkReplayStatus is a bulk replay as support sees it.
type BulkReplayStatus struct {
	ID       string
	Status   string // running, completed, canceled or failed
	Request  BulkReplayRequest
	Progress BulkReplayProgress
	// ProgressUnknown says that no worker answered for the bulk
	// replay's progress (the workers are down or too busy; for one that
	// failed or was terminated, no worker could replay it): Progress holds
	// only what its run's input knew.
	ProgressUnknown bool
	Start           time.Time
	Close           time.Time // zero while it runs
	WebURL          string
	// AlreadyStarted says that a request came again with its
	// Idempotency-Key: this is the bulk replay the first one started.
	AlreadyStarted bool
}

// BulkReplayProgress is how far a bulk replay got.
type BulkReplayProgress struct {
	Matched   int // runs the filter matched when the bulk replay began (at its end, those it handled)
	Processed int // matched runs handled so far: replayed, skipped, or failed to start
	Replayed  int // replays started
	Skipped   int // runs not replayed: superseded, still running, nothing failed
	Succeeded int // replays that completed
	Failed    int // replays that failed again, or could not be started
	// StartFailed counts, of Failed, the replays that could not be
	// started; the others are counted by visibility (not on the wire).
	StartFailed int
	Pending     int // replays started that have not closed yet
	// Scheduled counts, of Pending, the replays whose actions left only
	// wait for their startTimestamp: the bulk replay ends without them.
	Scheduled int
	Remaining int // matched runs not handled yet
	// Paused is true while the bulk replay starts no replays because it
	// was asked to pause; resuming lets it go on where it stopped.
	Paused bool
	// Errors holds the latest reasons for skips and failures.
	Errors []string
}

// BulkReplayIDPrefix starts every bulk replay's id, which is its workflow
// ID: "bulk-replay-<24 hex digits>".
const BulkReplayIDPrefix = "bulk-replay-"

var bulkIDPattern = regexp.MustCompile(`^` + BulkReplayIDPrefix + `[0-9a-f]{24}$`)

// ValidBulkReplayID reports whether id has the form of a bulk replay's
// id, of any tenant (TenantWorkflowID).
func ValidBulkReplayID(id string) bool {
	return validTenanted(id) && bulkIDPattern.MatchString(untenanted(id))
}

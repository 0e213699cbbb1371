package wire

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// Execution is one run of a dispatch on the wire.
type Execution struct {
	WorkflowID        string            `json:"workflowId"`
	RunID             string            `json:"runId"`
	EventID           string            `json:"eventId"`
	EventType         string            `json:"eventType"`
	Status            string            `json:"status"`
	StartTimestamp    int64             `json:"startTimestamp"`
	CloseTimestamp    *int64            `json:"closeTimestamp,omitempty"`
	DispatcherIDs     []string          `json:"dispatcherIds"`
	FailedActionCount int               `json:"failedActionCount"`
	FailedActionIDs   []string          `json:"failedActionIds"`
	ErrorClasses      []string          `json:"errorClasses"`
	Failures          []ClassDispatcher `json:"failures"`
	Replay            *ReplayInfo       `json:"replay,omitempty"`
	// ReplayedAs is the run that superseded this failed or canceled run:
	// its replay, or the latest run after a reset (lists only).
	ReplayedAs string `json:"replayedAs,omitempty"`
	WebURL     string `json:"webUrl,omitempty"`
	// SkipReason is the most actionable reason for which the run skipped
	// a dispatcher: paused, filter-error, removed or filter.
	SkipReason string `json:"skipReason,omitempty"`
}

// ClassDispatcher is an error class and the dispatcher whose action
// failed with it.
type ClassDispatcher struct {
	ErrorClass   string `json:"errorClass"`
	DispatcherID string `json:"dispatcherId,omitempty"`
}

// ReplayInfo says what a replay run replays.
type ReplayInfo struct {
	Of           string `json:"of"`
	ID           string `json:"id,omitempty"`
	RequestedBy  string `json:"requestedBy,omitempty"`
	BulkReplayID string `json:"bulkReplayId,omitempty"`
}

// ExecutionPage is a page of a cursor-paged list.
type ExecutionPage struct {
	Data []Execution `json:"data"`
	Page struct {
		Limit         int    `json:"limit"`
		NextPageToken string `json:"nextPageToken,omitempty"`
	} `json:"page"`
}

// ExecutionDetail is GET /executions/v1/{workflowId}.
type ExecutionDetail struct {
	Execution
	Event   DispatchedEvent `json:"event"`
	Config  *Config         `json:"config"`
	Only    []string        `json:"only,omitempty"`
	Actions []ActionOutcome `json:"actions"`
	// ActionsUnknown: no worker answered for the progress of a run that
	// has begun; Actions are its actions as planned (and those that
	// failed, failed).
	ActionsUnknown bool         `json:"actionsUnknown,omitempty"`
	Failure        string       `json:"failure,omitempty"`
	Runs           []Execution  `json:"runs"`
	Audit          []AuditEntry `json:"audit"`
	// Withheld names the parts left out (null) because the caller lacks
	// the permission that shows them, and that permission: e.g.
	// {"event.content": "VIEW_EVENT_CONTENT"}.
	Withheld map[string]string `json:"withheld,omitempty"`
	// Blocking: the run failed and holds the later events of its ordering
	// key until it is replayed or released.
	Blocking bool `json:"blocking,omitempty"`
	// Waiting: the events its ordering key holds behind the run, while it
	// runs or blocks the key.
	Waiting *Waiting `json:"waiting,omitempty"`
}

// Waiting is how many events wait behind a run of an ordered dispatch,
// and the workflow IDs of the first of them, oldest first.
type Waiting struct {
	Count       int      `json:"count"`
	WorkflowIDs []string `json:"workflowIds"`
}

// DispatchedEvent is the event a dispatch ran for.
type DispatchedEvent struct {
	ID                string          `json:"id"`
	Type              string          `json:"type"`
	Content           json.RawMessage `json:"content"`
	CreationTimestamp int64           `json:"creationTimestamp"`
	Source            string          `json:"source,omitempty"`
}

// Config is the configuration a run ran with.
type Config struct {
	Version     int64         `json:"version"`
	Pinned      bool          `json:"pinned"`
	Dispatchers []Dispatcher  `json:"dispatchers"`
	Functions   []FunctionRef `json:"functions"`
	// Skipped lists the dispatchers of the event's type the run did not
	// run, and why.
	Skipped []SkippedDispatcher `json:"skipped"`
}

// SkippedDispatcher is a dispatcher a run skipped.
type SkippedDispatcher struct {
	DispatcherID   string `json:"dispatcherId"`
	DispatcherName string `json:"dispatcherName,omitempty"`
	Reason         string `json:"reason"`
	Detail         string `json:"detail,omitempty"`
}

// FunctionRef is a task function as a dispatch's configuration recorded it.
type FunctionRef struct {
	Name           string `json:"name"`
	Kind           string `json:"kind"`
	TimeoutSeconds int    `json:"timeoutSeconds,omitempty"`
	TaskQueue      string `json:"taskQueue,omitempty"`
}

// ActionOutcome is what became of one action of a dispatch.
type ActionOutcome struct {
	DispatcherID    string     `json:"dispatcherId"`
	DispatcherName  string     `json:"dispatcherName,omitempty"`
	ActionID        string     `json:"actionId"`
	ActionName      string     `json:"actionName,omitempty"`
	Type            string     `json:"type"`
	Status          string     `json:"status"`
	Attempts        int        `json:"attempts"`
	LastError       *LastError `json:"lastError,omitempty"`
	StartTimestamp  *int64     `json:"startTimestamp,omitempty"`
	FinishTimestamp *int64     `json:"finishTimestamp,omitempty"`
	// DueTimestamp is when an action scheduled for later than its run's
	// start runs, or was to run: its startTimestamp.
	DueTimestamp *int64 `json:"dueTimestamp,omitempty"`
	// NextAttemptTimestamp is when an action that waits to retry makes
	// its next attempt.
	NextAttemptTimestamp *int64 `json:"nextAttemptTimestamp,omitempty"`
	HTTPStatus           int    `json:"httpStatus,omitempty"`
	MessageID            string `json:"messageId,omitempty"`
	// SkipReason and SkipDetail say why a skipped action did not run.
	SkipReason string `json:"skipReason,omitempty"`
	SkipDetail string `json:"skipDetail,omitempty"`
	// CarriedFrom is the run that ended the action as it shows: a replay
	// that ran other actions of that run carries it, still to be made.
	CarriedFrom string `json:"carriedFrom,omitempty"`
}

// LastError is the last error of an action that failed.
type LastError struct {
	Message string `json:"message"`
	Class   string `json:"class"`
}

// AuditEntry is who replayed or canceled a dispatch, and when.
type AuditEntry struct {
	Operation    string   `json:"operation"`
	Actor        string   `json:"actor"`
	Timestamp    int64    `json:"timestamp"`
	RunID        string   `json:"runId,omitempty"`
	NewRunID     string   `json:"newRunId,omitempty"`
	Actions      []string `json:"actions,omitempty"`
	Config       string   `json:"config,omitempty"`
	BulkReplayID string   `json:"bulkReplayId,omitempty"`
}

// History is one page of a run's raw Temporal history.
type History struct {
	WorkflowID    string            `json:"workflowId"`
	RunID         string            `json:"runId"`
	Events        []json.RawMessage `json:"events"`
	NextPageToken string            `json:"nextPageToken,omitempty"`
}

// Failures is GET /executions/v1/failures: failed dispatches grouped by
// cause.
type Failures struct {
	Failed     int            `json:"failed"`
	Superseded int            `json:"superseded"`
	Truncated  bool           `json:"truncated"`
	Groups     []FailureGroup `json:"groups"`
	Trend      Trend          `json:"trend"`
}

// Trend counts failed dispatches per time bucket: counts[i] started at
// or after from + i×bucketMs and before from + (i+1)×bucketMs.
type Trend struct {
	From     int64 `json:"from"`
	BucketMs int64 `json:"bucketMs"`
	Counts   []int `json:"counts"`
}

// FailureGroup is the failed dispatches of one error class and dispatcher.
type FailureGroup struct {
	ErrorClass     string `json:"errorClass"`
	DispatcherID   string `json:"dispatcherId,omitempty"`
	DispatcherName string `json:"dispatcherName,omitempty"`
	Count          int    `json:"count"`
	Summary        string `json:"summary"`
	Sample         Sample `json:"sample"`
	Trend          []int  `json:"trend"`
	// Removed: the dispatcher was deleted, or moved to another event
	// type, since; a replay runs none of its actions.
	Removed bool `json:"removed,omitempty"`
}

// Sample is one failed dispatch of a group.
type Sample struct {
	Message    string `json:"message"`
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	EventType  string `json:"eventType,omitempty"`
}

// ReplayRequest is the body of POST /executions/v1/{workflowId}/replay;
// an empty body replays the failed actions with the original
// configuration.
type ReplayRequest struct {
	RunID   string   `json:"runId"`
	Actions []string `json:"actions"`
	Config  string   `json:"config"`
}

// Replay is the answer to a replay: the run it started.
type Replay struct {
	WorkflowID     string   `json:"workflowId"`
	RunID          string   `json:"runId"`
	ReplayOf       string   `json:"replayOf"`
	ReplayID       string   `json:"replayId"`
	Actions        []string `json:"actions"`
	Config         string   `json:"config"`
	AlreadyStarted bool     `json:"alreadyStarted,omitempty"`
}

// Filter holds the list filters as a request body carries them.
type Filter struct {
	EventType    string          `json:"eventType,omitempty"`
	EventID      string          `json:"eventId,omitempty"`
	DispatcherID string          `json:"dispatcherId,omitempty"`
	ActionID     string          `json:"actionId,omitempty"`
	Status       string          `json:"status,omitempty"`
	ErrorClass   string          `json:"errorClass,omitempty"`
	BulkReplayID string          `json:"bulkReplayId,omitempty"`
	From         json.RawMessage `json:"from,omitempty"`
	To           json.RawMessage `json:"to,omitempty"`
	SkipReason   string          `json:"skipReason,omitempty"`
}

// BulkReplayRequest is the body of POST /executions/v1/replays.
type BulkReplayRequest struct {
	Filter
	Actions []string `json:"actions"`
	Config  string   `json:"config"`
	Rate    float64  `json:"rate"`
	DryRun  bool     `json:"dryRun"`
}

// DryRun is the answer to a bulk replay with dryRun: what it would match.
type DryRun struct {
	DryRun  bool  `json:"dryRun"`
	Matched int64 `json:"matched"`
	// Replayed are those of Matched replayed already, which the bulk
	// replay skips.
	Replayed int64 `json:"replayed"`
	// StillPaused are those of the rest, for skipReason paused, that a
	// dispatcher still paused made skip actions: the bulk replay skips
	// them too.
	StillPaused int64 `json:"stillPaused"`
	// Removed are those of the rest none of whose actions to replay is
	// an action of their event type's dispatchers now (deleted since):
	// the bulk replay skips them too.
	Removed int64       `json:"removed"`
	Sample  []Execution `json:"sample"`
	// Withheld names the sample, empty, for a caller without
	// VIEW_EXECUTIONS, as ExecutionDetail.Withheld does.
	Withheld map[string]string `json:"withheld,omitempty"`
}

// BulkReplay is a bulk replay with its progress.
type BulkReplay struct {
	BulkReplayItem
	Progress Progress `json:"progress"`
	// ProgressUnknown says that no worker answered for its progress (the
	// workers are down or busy): Progress holds only what its run's input
	// knew. A running one goes on once one does.
	ProgressUnknown bool `json:"progressUnknown,omitempty"`
	// AlreadyStarted answers a request that came again with its
	// Idempotency-Key: the bulk replay is the one the first started.
	AlreadyStarted bool `json:"alreadyStarted,omitempty"`
}

// BulkReplayItem is a bulk replay as GET /executions/v1/replays lists it:
// without its progress, which its own route reads live.
type BulkReplayItem struct {
	ID             string         `json:"id"`
	Status         string         `json:"status"`
	Filter         FilterResponse `json:"filter"`
	Actions        []string       `json:"actions,omitempty"`
	Config         string         `json:"config"`
	Rate           float64        `json:"rate"`
	RequestedBy    string         `json:"requestedBy,omitempty"`
	StartTimestamp int64          `json:"startTimestamp"`
	CloseTimestamp *int64         `json:"closeTimestamp,omitempty"`
	WebURL         string         `json:"webUrl,omitempty"`
	// Paused is true while a running bulk replay is paused (its status
	// stays running, as progress.paused says too): the list has no
	// progress to say it.
	Paused bool `json:"paused,omitempty"`
}

// FilterResponse is the filter of a bulk replay as its answer shows it.
type FilterResponse struct {
	EventType    string `json:"eventType,omitempty"`
	EventID      string `json:"eventId,omitempty"`
	DispatcherID string `json:"dispatcherId,omitempty"`
	ActionID     string `json:"actionId,omitempty"`
	Status       string `json:"status,omitempty"`
	ErrorClass   string `json:"errorClass,omitempty"`
	From         *int64 `json:"from,omitempty"`
	To           *int64 `json:"to,omitempty"`
	SkipReason   string `json:"skipReason,omitempty"`
}

// Progress is how far a bulk replay got.
type Progress struct {
	Matched   int      `json:"matched"`
	Processed int      `json:"processed"`
	Replayed  int      `json:"replayed"`
	Skipped   int      `json:"skipped"`
	Succeeded int      `json:"succeeded"`
	Failed    int      `json:"failed"`
	Pending   int      `json:"pending"`
	Scheduled int      `json:"scheduled"` // of pending, waiting for their startTimestamp
	Remaining int      `json:"remaining"`
	Paused    bool     `json:"paused"`
	Errors    []string `json:"errors"`
}

// ToDomain converts list filters.
func (f Filter) ToDomain() (dispatcher.ExecutionFilter, error) {
	out := dispatcher.ExecutionFilter{EventType: f.EventType, EventID: f.EventID, DispatcherID: f.DispatcherID,
		ActionID: f.ActionID, Status: f.Status, ErrorClass: f.ErrorClass, BulkReplayID: f.BulkReplayID,
		SkipReason: f.SkipReason}
	// A malformed id would match nothing, and say so as an empty answer.
	for _, id := range []struct{ name, value string }{{"dispatcherId", f.DispatcherID}, {"actionId", f.ActionID}} {
		if id.value != "" && !dispatcher.ValidID(id.value) {
			return out, dispatcher.Errorf(dispatcher.EINVALID, "%s: %q is not a valid id (24 lowercase hexadecimal characters)", id.name, id.value)
		}
	}
	if f.BulkReplayID != "" && !dispatcher.ValidBulkReplayID(f.BulkReplayID) {
		return out, dispatcher.Errorf(dispatcher.EINVALID, "bulkReplayId: %q is not the id of a bulk replay ([<tenant>:]bulk-replay-<24 hex digits>)", f.BulkReplayID)
	}
	for _, b := range []struct {
		name string
		raw  json.RawMessage
		dst  *time.Time
	}{{"from", f.From, &out.From}, {"to", f.To, &out.To}} {
		if len(b.raw) == 0 || string(b.raw) == "null" {
			continue
		}
		t, err := ParseTimestamp(b.raw)
		if err != nil {
			return out, dispatcher.Errorf(dispatcher.EINVALID, "%s: %v", b.name, err)
		}
		*b.dst = t
	}
	return out, nil
}

// FromExecution converts a run of a dispatch for an answer.
func FromExecution(x dispatcher.Execution) Execution {
	out := Execution{
		WorkflowID: x.WorkflowID, RunID: x.RunID, EventID: x.EventID, EventType: x.EventType, Status: x.Status,
		StartTimestamp: x.Start.UnixMilli(), CloseTimestamp: optionalMillis(x.Close),
		DispatcherIDs: NonNil(x.DispatcherIDs), FailedActionCount: len(x.FailedActionIDs),
		FailedActionIDs: NonNil(x.FailedActionIDs), ErrorClasses: NonNil(x.ErrorClasses),
		Failures: make([]ClassDispatcher, len(x.Failures)), WebURL: x.WebURL, SkipReason: x.SkipReason, ReplayedAs: x.ReplayedAs,
	}
	for i, p := range x.Failures {
		out.Failures[i] = ClassDispatcher{ErrorClass: p.ErrorClass, DispatcherID: p.DispatcherID}
	}
	if x.Replay.Of != "" {
		out.Replay = &ReplayInfo{Of: x.Replay.Of, ID: x.Replay.ID, RequestedBy: x.Replay.RequestedBy, BulkReplayID: x.Replay.BulkReplayID}
	}
	return out
}

// FromExecutionDetail converts a run's detail for an answer.
func FromExecutionDetail(d dispatcher.ExecutionDetail) ExecutionDetail {
	out := ExecutionDetail{
		Execution: FromExecution(d.Execution),
		Event: DispatchedEvent{ID: d.Event.ID, Type: d.Event.Type, Content: d.Event.Content,
			CreationTimestamp: d.Event.Time.UnixMilli(), Source: d.Event.Source},
		Config:         fromConfig(d.Config, d.ConfigPinned),
		Only:           d.Only,
		Actions:        make([]ActionOutcome, len(d.Outcomes)),
		ActionsUnknown: d.OutcomesUnknown,
		Failure:        d.Failure,
		Runs:           make([]Execution, len(d.Runs)),
		Audit:          make([]AuditEntry, len(d.Audit)),
		Blocking:       d.Blocking,
	}
	if d.Waiting > 0 {
		out.Waiting = &Waiting{Count: d.Waiting, WorkflowIDs: d.WaitingIDs}
	}
	if len(out.Event.Content) == 0 {
		out.Event.Content = json.RawMessage("{}")
	}
	for i, o := range d.Outcomes {
		out.Actions[i] = fromOutcome(o)
		if t, ok := d.NextAttempts[o.ActionID]; ok {
			out.Actions[i].NextAttemptTimestamp = optionalMillis(t)
		}
		if d.Config != nil {
			// Also once it ran: support can tell a reminder that went
			// late (its worker down at its time) from one on time.
			if a, ok := d.Config.Action(o.ActionID); ok && a.StartTimestamp != nil &&
				(o.Status == dispatcher.OutcomeScheduled || a.StartTimestamp.After(d.Start)) {
				out.Actions[i].DueTimestamp = optionalMillis(*a.StartTimestamp)
			}
		}
	}
	for i, r := range d.Runs {
		out.Runs[i] = FromExecution(r)
	}
	for i, a := range d.Audit {
		out.Audit[i] = AuditEntry{Operation: a.Operation, Actor: a.Actor, Timestamp: a.At.UnixMilli(), RunID: a.RunID,
			NewRunID: a.NewRunID, Actions: a.Actions, Config: a.Config, BulkReplayID: a.BulkReplayID}
	}
	return out
}

func fromConfig(cfg *dispatcher.Config, pinned bool) *Config {
	if cfg == nil {
		return nil
	}
	out := &Config{Version: cfg.Version, Pinned: pinned,
		Dispatchers: make([]Dispatcher, len(cfg.Dispatchers)), Functions: make([]FunctionRef, len(cfg.Functions)),
		Skipped: make([]SkippedDispatcher, len(cfg.Skipped))}
	for i, sk := range cfg.Skipped {
		out.Skipped[i] = SkippedDispatcher{DispatcherID: sk.DispatcherID, DispatcherName: sk.Name, Reason: sk.Reason, Detail: sk.Detail}
	}
	for i, d := range cfg.Dispatchers {
		out.Dispatchers[i] = FromDispatcher(d)
	}
	for i, f := range cfg.Functions {
		out.Functions[i] = FunctionRef{Name: f.Name, Kind: f.Kind, TimeoutSeconds: int(f.Timeout.Seconds()), TaskQueue: f.TaskQueue}
	}
	return out
}

func fromOutcome(o dispatcher.ActionOutcome) ActionOutcome {
	out := ActionOutcome{DispatcherID: o.DispatcherID, DispatcherName: o.DispatcherName, ActionID: o.ActionID,
		ActionName: o.ActionName, Type: o.Type, Status: o.Status, Attempts: o.Attempts,
		StartTimestamp: optionalMillis(o.StartedAt), FinishTimestamp: optionalMillis(o.FinishedAt),
		HTTPStatus: o.HTTPStatus, MessageID: o.MessageID, CarriedFrom: o.CarriedFrom}
	if (o.Status == dispatcher.OutcomeFailed || o.Status == dispatcher.OutcomeCanceled) && !o.Unanswered {
		// No server has it: before, a mail that failed on its template or
		// recipients showed a Message-ID, which support looked for in mail
		// logs.
		out.MessageID = ""
	}
	if o.Status == dispatcher.OutcomeSkipped {
		out.SkipReason, out.SkipDetail = o.SkipReason, o.Error
		return out
	}
	if o.Error != "" || o.ErrorClass != "" {
		out.LastError = &LastError{Message: o.Error, Class: o.ErrorClass}
	}
	return out
}

// FromFailureSummary converts a failures summary for an answer.
func FromFailureSummary(s dispatcher.FailureSummary) Failures {
	out := Failures{Failed: s.Failed, Superseded: s.Superseded, Truncated: s.Truncated, Groups: make([]FailureGroup, len(s.Groups)),
		Trend: Trend{BucketMs: s.Trend.Bucket.Milliseconds(), Counts: NonNil(s.Trend.Counts)}}
	if !s.Trend.From.IsZero() {
		out.Trend.From = s.Trend.From.UnixMilli()
	}
	for i, g := range s.Groups {
		// By its name as the dispatch knew it, and its id, which
		// --dispatcher-id and dispatcherId take whatever it is named since.
		who := g.DispatcherName
		switch {
		case who == "":
			who = g.DispatcherID
		case g.DispatcherID != "":
			who += " (" + g.DispatcherID + ")"
		}
		summary := fmt.Sprintf("%d × %s: %s", g.Count, g.ErrorClass, g.Sample)
		if who != "" {
			summary += ", dispatcher " + who
		}
		if g.Removed {
			// Or moved (Removed): the failures summary of a probe called a
			// dispatcher moved to another event type deleted.
			summary += ", deleted or moved to another event type since: no replay runs it"
		}
		out.Groups[i] = FailureGroup{ErrorClass: g.ErrorClass, DispatcherID: g.DispatcherID, DispatcherName: g.DispatcherName,
			Count: g.Count, Summary: summary, Sample: Sample{Message: g.Sample, WorkflowID: g.SampleWorkflowID, RunID: g.SampleRunID, EventType: g.SampleEventType},
			Trend: NonNil(g.Trend), Removed: g.Removed}
	}
	return out
}

// FromReplayResult converts the run a replay started for an answer.
func FromReplayResult(r dispatcher.ReplayResult) Replay {
	return Replay{WorkflowID: r.WorkflowID, RunID: r.RunID, ReplayOf: r.ReplayOf, ReplayID: r.ReplayID,
		Actions: NonNil(r.Actions), Config: r.Config, AlreadyStarted: r.AlreadyStarted}
}

// FromBulkReplay converts a bulk replay for an answer.
func FromBulkReplay(b dispatcher.BulkReplayStatus) BulkReplay {
	p := b.Progress
	return BulkReplay{BulkReplayItem: FromBulkReplayItem(b),
		Progress: Progress{Matched: p.Matched, Processed: p.Processed, Replayed: p.Replayed, Skipped: p.Skipped,
			Succeeded: p.Succeeded, Failed: p.Failed, Pending: p.Pending, Scheduled: p.Scheduled, Remaining: p.Remaining, Paused: p.Paused, Errors: NonNil(p.Errors)},
		ProgressUnknown: b.ProgressUnknown, AlreadyStarted: b.AlreadyStarted,
	}
}

// FromBulkReplayItem converts a bulk replay, but its progress.
func FromBulkReplayItem(b dispatcher.BulkReplayStatus) BulkReplayItem {
	f := b.Request.Filter
	return BulkReplayItem{
		ID: b.ID, Status: b.Status,
		Filter: FilterResponse{EventType: f.EventType, EventID: f.EventID, DispatcherID: f.DispatcherID, ActionID: f.ActionID,
			Status: f.Status, ErrorClass: f.ErrorClass, From: optionalMillis(f.From), To: optionalMillis(f.To), SkipReason: f.SkipReason},
		Actions: b.Request.Actions, Config: b.Request.Config, Rate: b.Request.Rate, RequestedBy: b.Request.Actor,
		StartTimestamp: b.Start.UnixMilli(), CloseTimestamp: optionalMillis(b.Close), WebURL: b.WebURL,
		Paused: b.Status == dispatcher.ExecutionRunning && b.Progress.Paused,
	}
}

package dispatcher

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// EventTaskFailed is the type of the event a task action that failed for
// good emits, as Extra Horizon's Task Service did after its last retry:
// a dispatcher may listen to it (an alert, a ticket, a compensation).
const EventTaskFailed = "task_failed"

// TaskFailedSource is the Source of the task_failed events.
const TaskFailedSource = "dispatcher"

// MaxTaskFailedContent bounds the content of the failed dispatch's event
// that a task_failed event carries: each failed task copies it into a
// dispatch of its own, and one near Temporal's payload limit would make
// that dispatch too large to start. Past it the content is left out
// (ContentOmitted): the listener finds it by ExecutionID.
const MaxTaskFailedContent = 64 << 10

// TaskFailed is the content of a task_failed event: which task failed,
// how, and the event it ran for.
type TaskFailed struct {
	FunctionName   string   `json:"functionName"`
	Tags           []string `json:"tags,omitempty"`
	DispatcherID   string   `json:"dispatcherId"`
	DispatcherName string   `json:"dispatcherName,omitempty"`
	ActionID       string   `json:"actionId"`
	ActionName     string   `json:"actionName,omitempty"`
	// ExecutionID is the dispatch's workflowId, as the intake and the
	// executions API name it; RunID the run (a replay is a later run of
	// the same execution).
	ExecutionID string `json:"executionId"`
	RunID       string `json:"runId"`
	Attempts    int    `json:"attempts"`
	ErrorClass  string `json:"errorClass"`
	Error       string `json:"error"`
	HTTPStatus  int    `json:"httpStatus,omitempty"`
	Event       struct {
		ID                string          `json:"id"`
		Type              string          `json:"type"`
		Source            string          `json:"source,omitempty"`
		Content           json.RawMessage `json:"content,omitempty"`
		ContentOmitted    bool            `json:"contentOmitted,omitempty"`
		CreationTimestamp int64           `json:"creationTimestamp"`
	} `json:"event"`
}

// TaskFailure is a task action that failed for good, in the dispatch of
// Event: what a task_failed event says of it.
type TaskFailure struct {
	Event        Event
	Outcome      ActionOutcome
	FunctionName string
	Tags         []string `json:",omitempty"`
	// WorkflowID and RunID name the failed dispatch's run; OriginalRunID
	// is the run it was reset from, or RunID (Temporal's
	// OriginalExecutionRunId), which keeps the event's identity across
	// a reset that does not run the action again.
	WorkflowID, RunID, OriginalRunID string
}

// TaskFailedEvent returns the task_failed event of f. Its id, 24 hex digits like
// Extra Horizon's, is derived from the dispatch, its original run, the
// action and when that began: the same failure gives the same event, which
// dispatches once, even after a reset that replays it; a reset that runs
// the action again, or a replay, fails anew and emits anew. Its Key keeps
// its workflow ID out of the producers' reach (an id holds no NUL), so no
// event sent to the intake can take it, or stand for it, first.
func (f TaskFailure) TaskFailedEvent() Event {
	o := f.Outcome
	c := TaskFailed{
		FunctionName: f.FunctionName, Tags: f.Tags,
		DispatcherID: o.DispatcherID, DispatcherName: o.DispatcherName, ActionID: o.ActionID, ActionName: o.ActionName,
		ExecutionID: f.WorkflowID, RunID: f.RunID,
		Attempts: o.Attempts, ErrorClass: o.ErrorClass, Error: o.Error, HTTPStatus: o.HTTPStatus,
	}
	ev := f.Event
	c.Event.ID, c.Event.Type, c.Event.Source = ev.ID, ev.Type, ev.Source
	if len(ev.Content) <= MaxTaskFailedContent {
		c.Event.Content = ev.Content
	} else {
		c.Event.ContentOmitted = true
	}
	if !ev.Time.IsZero() {
		c.Event.CreationTimestamp = ev.Time.UnixMilli()
	}
	content, _ := json.Marshal(c) // of strings, numbers and a JSON value: cannot fail
	sum := sha256.Sum256([]byte(f.WorkflowID + "\x00" + f.OriginalRunID + "\x00" + o.ActionID + "\x00" + o.StartedAt.UTC().Format("2006-01-02T15:04:05.999999999")))
	id := hex.EncodeToString(sum[:12])
	return Event{ID: id, Key: EventTaskFailed + "\x00" + id, Type: EventTaskFailed, Content: content, Time: o.FinishedAt, Source: TaskFailedSource}
}

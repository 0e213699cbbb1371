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
		Content           json.RawMessage `json:"content,omitempty"`
		CreationTimestamp int64           `json:"creationTimestamp"`
	} `json:"event"`
}

// TaskFailedEvent returns the task_failed event of the task action that
// o is the outcome of, in run runID of the dispatch workflowID of ev. Its
// id, 24 hex digits like Extra Horizon's, is derived from the three: the
// same failure gives the same event, which dispatches once.
func TaskFailedEvent(workflowID, runID string, ev Event, o ActionOutcome, functionName string, tags []string) Event {
	c := TaskFailed{
		FunctionName: functionName, Tags: tags,
		DispatcherID: o.DispatcherID, DispatcherName: o.DispatcherName, ActionID: o.ActionID, ActionName: o.ActionName,
		ExecutionID: workflowID, RunID: runID,
		Attempts: o.Attempts, ErrorClass: o.ErrorClass, Error: o.Error, HTTPStatus: o.HTTPStatus,
	}
	c.Event.ID, c.Event.Type, c.Event.Content = ev.ID, ev.Type, ev.Content
	if !ev.Time.IsZero() {
		c.Event.CreationTimestamp = ev.Time.UnixMilli()
	}
	content, _ := json.Marshal(c) // of strings, numbers and a JSON value: cannot fail
	sum := sha256.Sum256([]byte(workflowID + "\x00" + runID + "\x00" + o.ActionID))
	return Event{ID: hex.EncodeToString(sum[:12]), Type: EventTaskFailed, Content: content, Time: o.FinishedAt, Source: TaskFailedSource}
}

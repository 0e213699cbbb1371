package dispatcher_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// A task_failed event is valid as the intake requires, its id names the
// failure (the same failure the same id, even from a reset run; another
// run, action or start another), its workflow ID is out of the producers'
// reach, and its content says what failed, how, and for which event.
func TestTaskFailedEvent(t *testing.T) {
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	f := dispatcher.TaskFailure{
		Event: dispatcher.Event{ID: "order-9", Type: "order_paid", Source: "shop", Content: json.RawMessage(`{"order":9}`), Time: at},
		Outcome: dispatcher.ActionOutcome{DispatcherID: "d1", ActionID: "a1", ActionName: "charge", Type: dispatcher.ActionTask,
			Status: dispatcher.OutcomeFailed, Attempts: 3, ErrorClass: dispatcher.FailureHTTPPermanent, Error: "HTTP 400", HTTPStatus: 400,
			StartedAt: at, FinishedAt: at.Add(time.Minute)},
		FunctionName: "charge", Tags: []string{"billing"},
		WorkflowID: "acme:dispatch-order-9", RunID: "run-1", OriginalRunID: "run-1",
	}
	got := f.TaskFailedEvent()
	if err := got.Validate(); err != nil {
		t.Fatalf("the event is invalid: %v", err)
	}
	if got.Type != dispatcher.EventTaskFailed || len(got.ID) != 24 || !got.Time.Equal(f.Outcome.FinishedAt) {
		t.Fatalf("event %+v", got)
	}
	// No id a producer sends reaches its workflow ID.
	if wid := got.WorkflowID(); !strings.HasPrefix(wid, "dispatch.") || wid == dispatcher.WorkflowID(got.ID) {
		t.Errorf("workflow ID %s: a producer sending id %s would take it", wid, got.ID)
	}
	reset := f
	reset.RunID = "run-2" // reset from run-1: the failure replayed, not run again
	if again := reset.TaskFailedEvent(); again.ID != got.ID {
		t.Errorf("a reset that replays the failure changed its id: %s, %s", got.ID, again.ID)
	}
	for name, change := range map[string]func(*dispatcher.TaskFailure){
		"a replay":                  func(f *dispatcher.TaskFailure) { f.RunID, f.OriginalRunID = "run-3", "run-3" },
		"another dispatch":          func(f *dispatcher.TaskFailure) { f.WorkflowID = "acme:dispatch-order-8" },
		"another action":            func(f *dispatcher.TaskFailure) { f.Outcome.ActionID = "a2" },
		"the action run once again": func(f *dispatcher.TaskFailure) { f.Outcome.StartedAt = at.Add(time.Hour) },
	} {
		other := f
		change(&other)
		if other.TaskFailedEvent().ID == got.ID {
			t.Errorf("%s has the same id %s", name, got.ID)
		}
	}
	var c map[string]any
	if err := json.Unmarshal(got.Content, &c); err != nil {
		t.Fatal(err)
	}
	want := `{"actionId":"a1","actionName":"charge","attempts":3,"dispatcherId":"d1","error":"HTTP 400","errorClass":"HTTPPermanent",` +
		`"event":{"content":{"order":9},"creationTimestamp":1796464800000,"id":"order-9","source":"shop","type":"order_paid"},` +
		`"executionId":"acme:dispatch-order-9","functionName":"charge","httpStatus":400,"runId":"run-1","tags":["billing"]}`
	if b, _ := json.Marshal(c); string(b) != want {
		t.Errorf("content\n%s, want\n%s", b, want)
	}

	// An event's content past MaxTaskFailedContent is left out.
	f.Event.Content = json.RawMessage(`"` + strings.Repeat("x", dispatcher.MaxTaskFailedContent) + `"`)
	var big dispatcher.TaskFailed
	if err := json.Unmarshal(f.TaskFailedEvent().Content, &big); err != nil || big.Event.Content != nil || !big.Event.ContentOmitted {
		t.Errorf("a large content: %v, omitted %v", err, big.Event.ContentOmitted)
	}
}

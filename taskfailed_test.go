package dispatcher_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// A task_failed event is valid as the intake requires, its id names the
// failure (the same run and action give the same id, another run or
// action another), and its content says what failed, how, and for which
// event.
func TestTaskFailedEvent(t *testing.T) {
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	ev := dispatcher.Event{ID: "order-9", Type: "order_paid", Content: json.RawMessage(`{"order":9}`), Time: at}
	o := dispatcher.ActionOutcome{DispatcherID: "d1", ActionID: "a1", ActionName: "charge", Type: dispatcher.ActionTask,
		Status: dispatcher.OutcomeFailed, Attempts: 3, ErrorClass: dispatcher.FailureHTTPPermanent, Error: "HTTP 400", HTTPStatus: 400,
		FinishedAt: at.Add(time.Minute)}
	got := dispatcher.TaskFailedEvent("acme:dispatch-order-9", "run-1", ev, o, "charge", []string{"billing"})
	if err := got.Validate(); err != nil {
		t.Fatalf("the event is invalid: %v", err)
	}
	if got.Type != dispatcher.EventTaskFailed || len(got.ID) != 24 || !got.Time.Equal(o.FinishedAt) {
		t.Fatalf("event %+v", got)
	}
	for _, other := range []dispatcher.Event{
		dispatcher.TaskFailedEvent("acme:dispatch-order-9", "run-2", ev, o, "charge", nil),
		dispatcher.TaskFailedEvent("acme:dispatch-order-8", "run-1", ev, o, "charge", nil),
		dispatcher.TaskFailedEvent("acme:dispatch-order-9", "run-1", ev, dispatcher.ActionOutcome{ActionID: "a2"}, "charge", nil),
	} {
		if other.ID == got.ID {
			t.Errorf("another failure has the same id %s", got.ID)
		}
	}
	if again := dispatcher.TaskFailedEvent("acme:dispatch-order-9", "run-1", ev, o, "other", nil); again.ID != got.ID {
		t.Errorf("the same failure has ids %s and %s", got.ID, again.ID)
	}
	var c map[string]any
	if err := json.Unmarshal(got.Content, &c); err != nil {
		t.Fatal(err)
	}
	want := `{"actionId":"a1","actionName":"charge","attempts":3,"dispatcherId":"d1","error":"HTTP 400","errorClass":"HTTPPermanent",` +
		`"event":{"content":{"order":9},"creationTimestamp":1796464800000,"id":"order-9","type":"order_paid"},` +
		`"executionId":"acme:dispatch-order-9","functionName":"charge","httpStatus":400,"runId":"run-1","tags":["billing"]}`
	if b, _ := json.Marshal(c); string(b) != want {
		t.Errorf("content\n%s, want\n%s", b, want)
	}
}

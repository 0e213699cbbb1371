package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// TestEndToEndTaskFailedEvent: in the deployed layout (api and worker
// apart), a task action that fails for good emits a task_failed event,
// as Extra Horizon's Task Service did, which a dispatcher of its own
// runs: its function receives which function failed, how, and the event
// it ran for. The event's id is derived from the failure, so it is
// started once, also by a reset from the Web UI that replays the failure;
// and a task of the task_failed dispatch that fails in turn emits nothing
// (no loop).
func TestEndToEndTaskFailedEvent(t *testing.T) {
	s := startSystem(t, splitProcesses)
	// Both refuse (400): failed for good at once, the listener too; the
	// second order's call is refused at its second attempt. By the
	// attempt, not the order of the calls: a call made again (at least
	// once, on a loaded machine) took the next call's answer, and the
	// second order's succeeded.
	charge := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusBadRequest
		if strings.Contains(r.Header.Get(activities.HeaderIdempotencyKey), "order-10") && r.Header.Get(activities.HeaderAttempt) == "1" {
			status = http.StatusServiceUnavailable
		}
		w.WriteHeader(status)
	})
	alert := &functionSink{statuses: []int{400}}
	for name, f := range map[string]http.Handler{"charge": charge, "alert": alert} {
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		s.call("POST", "/functions/v1", map[string]any{"name": name, "url": srv.URL}, 200)
	}
	s.call("POST", "/dispatchers/v1", map[string]any{"name": "billing", "eventType": "order_paid", "actions": []any{
		map[string]any{"type": "task", "name": "charge", "functionName": "charge", "tags": []string{"billing"},
			"retryPolicy": map[string]any{"initialIntervalMs": 100, "maximumAttempts": 3}},
	}}, 200)
	s.call("POST", "/dispatchers/v1", map[string]any{"name": "on-failure", "eventType": dispatcher.EventTaskFailed, "actions": []any{
		map[string]any{"type": "task", "name": "alert", "functionName": "alert",
			"data": map[string]any{"failed": "{{ .event.content.functionName }}", "order": "{{ .event.content.event.content.order }}"}},
	}}, 200)

	acc := s.call("POST", "/events/v1", map[string]any{"id": "order-9", "type": "order_paid", "content": map[string]any{"order": 9}}, 202)
	wid, runID := acc["workflowId"].(string), acc["runId"].(string)
	res, failed := s.result(wid, runID)
	if !failed || res.Outcomes[0].ErrorClass != dispatcher.FailureHTTPPermanent {
		t.Fatalf("the order's dispatch: failed %v, %+v", failed, res.Outcomes)
	}
	want := dispatcher.TaskFailure{Outcome: res.Outcomes[0], WorkflowID: wid, RunID: runID, OriginalRunID: runID}.TaskFailedEvent().WorkflowID()
	var listed []string
	s.poll("the task_failed dispatch", func() bool {
		listed = s.listIDs("eventType=" + dispatcher.EventTaskFailed)
		return len(listed) > 0
	})
	if !slices.Equal(listed, []string{want}) {
		t.Fatalf("task_failed dispatches %v, want [%s]", listed, want)
	}
	if _, failed := s.result(want, ""); !failed {
		t.Fatal("the task_failed dispatch, whose function answered 400, did not fail")
	}
	alert.mu.Lock()
	calls := slices.Clone(alert.calls)
	alert.mu.Unlock()
	if len(calls) != 1 {
		t.Fatalf("the listener was called %d times, want once", len(calls))
	}
	data := calls[0]["data"].(map[string]any)
	content := data["event"].(map[string]any)["content"].(map[string]any)
	if data["failed"] != "charge" || data["order"] != 9.0 || content["errorClass"] != dispatcher.FailureHTTPPermanent ||
		content["httpStatus"] != 400.0 || content["executionId"] != wid || content["runId"] != runID ||
		fmt.Sprint(content["tags"]) != "[billing]" || content["actionName"] != "charge" || content["attempts"] != 1.0 {
		t.Fatalf("the listener received %v", data)
	}
	// Its own failure emitted no task_failed of a task_failed: the list
	// is the same once that dispatch has closed.
	if got := s.listIDs("eventType=" + dispatcher.EventTaskFailed); !slices.Equal(got, []string{want}) {
		t.Fatalf("after the listener failed: task_failed dispatches %v", got)
	}

	// A failure after a retry, in a later workflow task: reset to that
	// task, the run takes it again, and the event it starts is the same.
	acc = s.call("POST", "/events/v1", map[string]any{"id": "order-10", "type": "order_paid", "content": map[string]any{"order": 10}}, 202)
	wid, runID = acc["workflowId"].(string), acc["runId"].(string)
	if res, failed := s.result(wid, runID); !failed || res.Outcomes[0].Attempts != 2 {
		t.Fatalf("the second order's dispatch: failed %v, %+v", failed, res.Outcomes)
	}
	s.poll("the second task_failed to be dispatched", func() bool { return alert.count() == 2 })
	reset := testenv.ResetToTask(t, s.temporal, wid, runID, true)
	if _, failed := s.result(wid, reset); !failed {
		t.Fatal("the reset run did not fail as its run did")
	}
	if got := emitted(t, s.temporal, wid, reset); !slices.Equal(got, []string{"false"}) {
		t.Fatalf("the reset run started task_failed events: %v, want one duplicate (false)", got)
	}
	if got := s.listIDs("eventType=" + dispatcher.EventTaskFailed); len(got) != 2 || alert.count() != 2 {
		t.Fatalf("after the reset: task_failed dispatches %v, listener called %d times; want 2 and 2", got, alert.count())
	}
}

// emitted returns what each EmitTaskFailed local activity of a run
// answered, as its marker records it: true when it started the event,
// false when it found it started.
func emitted(t *testing.T, c client.Client, id, runID string) []string {
	t.Helper()
	var out []string
	it := c.GetWorkflowHistory(t.Context(), id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		details := e.GetMarkerRecordedEventAttributes().GetDetails()
		var la struct{ ActivityType string }
		if data := details["data"].GetPayloads(); len(data) == 1 && json.Unmarshal(data[0].GetData(), &la) == nil && la.ActivityType == workflows.ActivityEmitTaskFailed {
			out = append(out, string(details["result"].GetPayloads()[0].GetData()))
		}
	}
	return out
}

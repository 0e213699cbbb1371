package main

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/dispatcherhq/dispatcher"
)

// TestEndToEndTaskFailedEvent: in the deployed layout (api and worker
// apart), a task action that fails for good emits a task_failed event,
// as Extra Horizon's Task Service did, which a dispatcher of its own
// runs: its function receives which function failed, how, and the event
// it ran for. The event's id is derived from the failed run and action,
// so it is started once; and a task of the task_failed dispatch that
// fails in turn emits nothing (no loop).
func TestEndToEndTaskFailedEvent(t *testing.T) {
	s := startSystem(t, splitProcesses)
	// Both refuse (400): failed for good at once, the listener too.
	charge, alert := &functionSink{statuses: []int{400}}, &functionSink{statuses: []int{400}}
	for name, f := range map[string]*functionSink{"charge": charge, "alert": alert} {
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		s.call("POST", "/functions/v1", map[string]any{"name": name, "url": srv.URL}, 200)
	}
	s.call("POST", "/dispatchers/v1", map[string]any{"name": "billing", "eventType": "order_paid", "actions": []any{
		map[string]any{"type": "task", "name": "charge", "functionName": "charge", "tags": []string{"billing"}},
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
	want := dispatcher.TaskFailedEvent(wid, runID, dispatcher.Event{}, res.Outcomes[0], "", nil).WorkflowID()
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
}

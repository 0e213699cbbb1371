package dispatch_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// A dispatch handed its configuration at intake loads nothing and upserts
// nothing: on the happy path its history is 5 events and one marker per
// action (the start, one workflow task, the close), as a bare workflow's
// with local activities, and it is started with its dispatcher ids. Before
// dispatchV3 a version marker and its TemporalChangeVersion upsert made it
// 7 + N, with a visibility write more.
func TestStartHandsTheConfiguration(t *testing.T) {
	e := newExecutionsEnv(t)
	s := e.starter
	s.Configs, s.Eager = activities.NewCache(e.store), true
	res, err := s.Start(e.ctx(), dispatcher.Event{ID: "ev-intake", Type: "hello", Content: json.RawMessage(`{"name":"Ann"}`), Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	e.wait(res.WorkflowID, res.RunID)

	var types []string
	it := e.c.GetWorkflowHistory(e.ctx(), res.WorkflowID, res.RunID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, ev.GetEventType().String())
		if m := ev.GetMarkerRecordedEventAttributes(); m != nil && (strings.Contains(m.String(), workflows.ActivityLoadConfig) || m.GetMarkerName() != "LocalActivity") {
			t.Errorf("the dispatch loaded its configuration itself or recorded a version: %v", m)
		}
	}
	const actions = 1 // hello: a mail of d4
	upserts := 0
	for _, typ := range types {
		if typ == enums.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES.String() {
			upserts++
		}
	}
	if len(types) != 5+actions || upserts != 0 || types[len(types)-1] != enums.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED.String() {
		t.Fatalf("history of %d events with %d upserts, want %d and none: %v", len(types), upserts, 5+actions, types)
	}
	e.list(dispatcher.ExecutionFilter{DispatcherID: "d4", EventID: "ev-intake"}, res.WorkflowID)
	d, err := e.ex.Get(e.ctx(), res.WorkflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Config == nil || d.ConfigPinned || !slices.Equal(d.DispatcherIDs, []string{"d4"}) {
		t.Fatalf("detail: config %v (pinned %v), dispatchers %v", d.Config != nil, d.ConfigPinned, d.DispatcherIDs)
	}
}

package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/dispatcherhq/dispatcher"
)

// configOf is a configuration source that always gives cfg.
type configOf dispatcher.Config

func (c configOf) Config(context.Context, string) (dispatcher.Config, error) {
	return dispatcher.Config(c), nil
}

// The intake resolves filters and pauses (Config.ForEvent): the dispatch
// is handed the outcome, starts with DispatchSkipped set, and records the
// skipped dispatcher's action as skipped without loading or upserting
// anything.
func TestStartResolvesFiltersAndPauses(t *testing.T) {
	e := newExecutionsEnv(t)
	s := e.starter
	var cfg dispatcher.Config
	for _, d := range e.store.Dispatchers {
		if d.EventType == "hello" {
			cfg.Dispatchers = append(cfg.Dispatchers, d)
		}
	}
	cfg.Dispatchers = append(cfg.Dispatchers,
		dispatcher.Dispatcher{ID: "d5", Name: "paused", EventType: "hello", Paused: true,
			Actions: []dispatcher.Action{{ID: "t5", Type: dispatcher.ActionTask, FunctionName: "gone"}}},
		dispatcher.Dispatcher{ID: "d6", Name: "not for Bob", EventType: "hello", Filter: `event.content.name == "Bob"`,
			Actions: []dispatcher.Action{{ID: "t6", Type: dispatcher.ActionTask, FunctionName: "gone"}}})
	s.Configs = configOf(cfg)
	res, err := s.Start(e.ctx(), dispatcher.Event{ID: "ev-paused", Type: "hello", Content: json.RawMessage(`{"name":"Ann"}`), Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	e.wait(res.WorkflowID, res.RunID)

	it := e.c.GetWorkflowHistory(e.ctx(), res.WorkflowID, res.RunID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetEventType() == enums.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES {
			t.Errorf("a dispatch handed its configuration upserted search attributes: %v", ev)
		}
	}
	xs := e.list(dispatcher.ExecutionFilter{SkipReason: dispatcher.SkipPaused, EventID: "ev-paused"}, res.WorkflowID)
	if x := xs[0]; x.Status != dispatcher.ExecutionCompleted || x.SkipReason != dispatcher.SkipPaused || len(x.DispatcherIDs) != 3 {
		t.Fatalf("listed: %+v", x)
	}
	d, err := e.ex.Get(e.ctx(), res.WorkflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range d.Outcomes {
		got = append(got, o.ActionID+":"+o.Status+":"+o.SkipReason)
	}
	if want := "[m4:succeeded: t5:skipped:paused t6:skipped:filter]"; fmt.Sprint(got) != want {
		t.Fatalf("outcomes %v, want %s", got, want)
	}
	if len(d.Config.Skipped) != 2 || len(d.Config.Dispatchers) != 1 {
		t.Fatalf("recorded configuration: %+v", d.Config)
	}
}

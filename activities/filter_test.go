package activities_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
)

// LoadConfig resolves the configuration for the event it is given: paused
// dispatchers and filters that are false or fail are skipped. The cached
// configuration stays whole: the next event is resolved afresh.
func TestLoadConfigResolvesForTheEvent(t *testing.T) {
	store := newFakeStore()
	task := []dispatcher.Action{{ID: "a", Type: dispatcher.ActionTask, FunctionName: "erase"}}
	store.dispatchers = []dispatcher.Dispatcher{
		{ID: "paused", EventType: "order_paid", Paused: true, Actions: task},
		{ID: "big", EventType: "order_paid", Filter: `event.content.amount > 100`, Actions: task},
		{ID: "small", EventType: "order_paid", Filter: `event.content.amount <= 100`, Actions: task},
		{ID: "vip", EventType: "order_paid", Filter: `event.content.customer.vip`, Actions: task},
	}
	a := newActivities(t, activities.Options{Store: store})
	load := func(content string) string {
		t.Helper()
		ev := dispatcher.Event{ID: "e", Type: "order_paid", Content: json.RawMessage(content)}
		var cfg dispatcher.Config
		if err := execute(t, a, a.LoadConfig, dispatcher.LoadConfigInput{EventType: ev.Type, Event: ev}, &cfg); err != nil {
			t.Fatalf("LoadConfig: %v", err)
		}
		out := ""
		for _, d := range cfg.Dispatchers {
			out += d.ID + " "
		}
		for _, s := range cfg.Skipped {
			out += fmt.Sprintf("-%s:%s ", s.DispatcherID, s.Reason)
		}
		return out
	}
	if got, want := load(`{"amount": 150, "customer": {"vip": true}}`), "big vip -paused:paused -small:filter "; got != want {
		t.Errorf("first event: %q, want %q", got, want)
	}
	if got, want := load(`{"amount": 50}`), "small -paused:paused -big:filter -vip:filter-error "; got != want {
		t.Errorf("second event: %q, want %q", got, want)
	}
}

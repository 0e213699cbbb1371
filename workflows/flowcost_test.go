package workflows_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/worker"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// TestFlowCost measures what flow control costs on a dev server: the
// history events and workflow tasks of a gated dispatch against an
// ungated one, the rate a gate holds, and how many permits a second one
// gate grants at most. It prints them for docs/operations.md; it runs
// only when asked: DISPATCHER_FLOW_COST=1.
func TestFlowCost(t *testing.T) {
	if os.Getenv("DISPATCHER_FLOW_COST") != "1" {
		t.Skip("set DISPATCHER_FLOW_COST=1 to measure flow control's costs")
	}
	c := testenv.TemporalClient(t)
	var mu sync.Mutex
	calls := map[string][]time.Time{}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path] = append(calls[r.URL.Path], time.Now())
		mu.Unlock()
	}))
	t.Cleanup(sink.Close)
	fn := func(name string, flow dispatcher.Flow) dispatcher.Function {
		return dispatcher.Function{Name: name, Kind: dispatcher.FunctionHTTP, URL: sink.URL + "/" + name, Timeout: 5 * time.Second, Flow: flow}
	}
	task := func(fn string) []dispatcher.Action {
		return []dispatcher.Action{{ID: "t1", Type: dispatcher.ActionTask, FunctionName: fn}}
	}
	store := &testenv.MemStore{
		Dispatchers: []dispatcher.Dispatcher{
			{ID: "d-free", EventType: "free", Actions: task("free")},
			{ID: "d-gated", EventType: "gated", Actions: task("gated")},
			{ID: "d-rate", EventType: "rate", Actions: task("rate")},
			{ID: "d-max", EventType: "max", Actions: task("max")},
		},
		Functions: map[string]dispatcher.Function{
			"free":  fn("free", dispatcher.Flow{}),
			"gated": fn("gated", dispatcher.Flow{MaxConcurrency: 100}),
			"rate":  fn("rate", dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 5, Burst: 1}}),
			"max":   fn("max", dispatcher.Flow{MaxConcurrency: dispatcher.MaxFlowConcurrency}),
		},
	}
	outbound, err := dispatcher.NewOutbound([]string{"127.0.0.0/8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	effects, err := activities.New(activities.Options{Store: store, Outbound: outbound})
	if err != nil {
		t.Fatal(err)
	}
	const queue = "flow-cost"
	for range 2 { // two workers, as two processes would be
		w := worker.New(c, queue, worker.Options{})
		register(w, effects, nil, c)
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	starter := dispatch.Starter{Client: c, TaskQueue: queue, Eager: true, Configs: activities.NewCache(store)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(eventType string, n int) (ids []string, took time.Duration) {
		start := time.Now()
		ids = make([]string, n)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for i := range ids {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				res, err := starter.Start(ctx, dispatcher.Event{ID: fmt.Sprintf("%s-%d", eventType, i), Type: eventType, Time: time.Now().UTC(),
					Source: "cost", Content: json.RawMessage(`{}`)})
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = res.WorkflowID
			}()
		}
		wg.Wait()
		for _, id := range ids {
			if err := c.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		}
		return ids, time.Since(start)
	}
	events := func(id string) (n, tasks int) {
		it := c.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			n++
			if e.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
				tasks++
			}
		}
		return n, tasks
	}

	// One dispatch at a time: its history, and its gate's share.
	for _, typ := range []string{"free", "gated"} {
		ids, took := run(typ, 1)
		n, tasks := events(ids[0])
		t.Logf("%s dispatch: %d history events, %d workflow tasks, %v", typ, n, tasks, took)
	}
	gate := dispatcher.GateWorkflowID("", "gated")
	before, beforeTasks := events(gate)
	ids, _ := run("gated", 20)
	after, afterTasks := events(gate)
	n, tasks := 0, 0
	for _, id := range ids {
		e, wt := events(id)
		n, tasks = n+e, tasks+wt
	}
	t.Logf("20 gated dispatches at once: %.1f events and %.1f workflow tasks each, the gate %.1f events and %.1f tasks per call",
		float64(n)/20, float64(tasks)/20, float64(after-before)/20, float64(afterTasks-beforeTasks)/20)

	// The rate a gate holds: 5 a second.
	_, took := run("rate", 100)
	mu.Lock()
	at := slices.Clone(calls["/rate"])
	mu.Unlock()
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	span := at[len(at)-1].Sub(at[0])
	six := time.Hour // the shortest time six consecutive calls took
	for i := 5; i < len(at); i++ {
		six = min(six, at[i].Sub(at[i-5]))
	}
	t.Logf("100 dispatches limited to 5/s: %.2f calls/s at the sink, six consecutive calls in %v at the least, all done in %v",
		float64(len(at)-1)/span.Seconds(), six, took)

	// The ceiling: permits as fast as one gate grants them.
	_, took = run("max", 500)
	t.Logf("500 dispatches through one gate without a binding limit: %.0f dispatches/s", 500/took.Seconds())
	_, took = run("free", 500)
	t.Logf("500 ungated dispatches: %.0f dispatches/s", 500/took.Seconds())
}

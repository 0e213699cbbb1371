package dispatch_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// TestGateOnDevServer: a permit request starts the function's gate
// (signal-with-start); a paused function's call waits, and the waiting
// call and the pause show in the executions service, the metrics and
// visibility (DispatchGateState).
func TestGateOnDevServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := testenv.TemporalClient(t)
	const queue = "gate-test"
	until := time.Now().Add(time.Hour).UTC()
	store := &testenv.MemStore{Functions: map[string]dispatcher.Function{
		"held": {Name: "held", Kind: dispatcher.FunctionHTTP, URL: "http://127.0.0.1:9/held", Flow: dispatcher.Flow{PausedUntil: &until}},
	}}
	effects, err := activities.New(activities.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(c, queue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivity(effects)
	w.RegisterActivity(dispatch.NewGateActivities(c))
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	stop := sync.OnceFunc(w.Stop)
	t.Cleanup(stop)
	ex, err := dispatch.NewExecutions(dispatch.ExecutionsOptions{Client: c, Audit: testenv.Store(t)})
	if err != nil {
		t.Fatal(err)
	}

	if _, running, err := ex.FunctionFlow(ctx, "held"); err != nil || running {
		t.Fatalf("before any call: running %v, %v; want no gate", running, err)
	}
	gate := dispatcher.GateWorkflowID("", "held")
	req := workflows.RequestPermitInput{Gate: gate, Function: "held", TaskQueue: queue,
		Request: workflows.PermitRequest{ID: "dispatch-1/d1/a1/1", WorkflowID: "dispatch-1", Lease: time.Minute}}
	for range 2 { // asking twice is harmless
		if _, err := dispatch.NewGateActivities(c).RequestPermit(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	var st dispatcher.FlowState
	testenv.Eventually(t, 20*time.Second, func() string {
		var running bool
		st, running, err = ex.FunctionFlow(ctx, "held")
		if err != nil || !running || st.State != dispatcher.FlowPaused || st.Waiting != 1 {
			return "waiting for the gate to hold the call: " + st.State
		}
		return ""
	})
	if !st.PausedUntil.Equal(until) || st.InFlight != 0 || st.Function != "held" {
		t.Errorf("state %+v, want paused until %v", st, until)
	}

	reg := prometheus.NewRegistry()
	var logs testenv.Buffer
	reg.MustRegister(&dispatch.FlowCollector{Client: c, Namespace: "default", Now: time.Now, Every: time.Millisecond, Limit: 10,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	gather := func() (map[string]float64, error) {
		got := map[string]float64{}
		families, err := reg.Gather()
		for _, f := range families {
			for _, m := range f.GetMetric() {
				name := f.GetName()
				for _, l := range m.GetLabel() {
					if l.GetName() == "function" {
						name += "{" + l.GetValue() + "}"
					}
				}
				got[name] = m.GetGauge().GetValue()
			}
		}
		return got, err
	}
	testenv.Eventually(t, 20*time.Second, func() string {
		got, err := gather()
		if err != nil {
			return err.Error()
		}
		want := map[string]float64{"dispatcher_function_flow_scrape_success": 1, "dispatcher_function_paused{held}": 1,
			"dispatcher_function_calls_waiting{held}": 1, "dispatcher_function_circuit_open{held}": 0, "dispatcher_function_calls_in_flight{held}": 0}
		for k, v := range want {
			if got[k] != v {
				return "waiting for the metrics to show the held call: " + k
			}
		}
		if got["dispatcher_function_oldest_waiting_call_age_seconds{held}"] <= 0 {
			return "waiting for the oldest waiting call's age"
		}
		return ""
	})
	// No worker answers for the gate: the scrape says it failed, and the
	// gate is shown as last read. Before, its series went and the scrape
	// said success: no alert on them could fire.
	stop()
	testenv.Eventually(t, 20*time.Second, func() string {
		got, err := gather()
		switch {
		case err != nil:
			return err.Error()
		case got["dispatcher_function_flow_scrape_success"] != 0:
			return "waiting for the scrape to say that the gate did not answer"
		case got["dispatcher_function_calls_waiting{held}"] != 1:
			return "the held call is no longer shown"
		}
		return ""
	})
	if _, _, err := ex.FunctionFlow(ctx, "held"); err == nil {
		t.Error("the flow of a gate no worker answers for was read")
	}
	// The log names it, once however many reads it does not answer.
	gather()
	if n := strings.Count(logs.String(), "a function gate does not answer its query"); n != 1 || !strings.Contains(logs.String(), gate) {
		t.Errorf("%d warnings of a gate not answering, want 1 naming %s:\n%s", n, gate, logs.String())
	}

	testenv.Eventually(t, 20*time.Second, func() string {
		res, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default",
			Query: "WorkflowType = 'Gate' AND DispatchGateState = 'paused'"})
		if err != nil || len(res.GetExecutions()) != 1 || res.GetExecutions()[0].GetExecution().GetWorkflowId() != gate {
			return "waiting for visibility to list the paused gate"
		}
		return ""
	})
	// The Web UI names the gate's function.
	desc, err := c.DescribeWorkflowExecution(ctx, gate, "")
	if err != nil {
		t.Fatal(err)
	}
	var summary string
	if err := converter.GetDefaultDataConverter().FromPayload(desc.GetExecutionConfig().GetUserMetadata().GetSummary(), &summary); err != nil || summary != `Flow control of function "held"` {
		t.Errorf("the gate's summary: %q, %v", summary, err)
	}
}

package dispatch

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// FlowCollector exports where each gated function's flow control stands:
// open circuits, paused functions, the calls waiting for a permit and
// those in flight. It lists the running Gate workflows in Temporal
// visibility and queries each (a gate runs while its function has calls
// waiting, in flight or an open circuit), at most once per Every and at
// most Limit gates each time. A gauge set by the gate itself, through the
// worker's metrics handler, would stay behind on the worker that last ran
// it once the gate moved to another worker or completed; the query is
// always the gate's present.
type FlowCollector struct {
	Client    client.Client
	Namespace string
	Now       func() time.Time
	Every     time.Duration
	Limit     int

	last lastRead[[]gateState]
}

// gateState is one gate's state, with its tenant.
type gateState struct {
	tenant string
	dispatcher.FlowState
}

var (
	flowLabels      = []string{"tenant", "function"}
	flowCircuitOpen = prometheus.NewDesc("dispatcher_function_circuit_open",
		"1 while the function's circuit is open: its calls wait for a probe.", flowLabels, nil)
	flowPaused = prometheus.NewDesc("dispatcher_function_paused",
		"1 while the function is paused (pausedUntil ahead).", flowLabels, nil)
	flowWaiting = prometheus.NewDesc("dispatcher_function_calls_waiting",
		"Calls of the function waiting for a permit of its flow control.", flowLabels, nil)
	flowInFlight = prometheus.NewDesc("dispatcher_function_calls_in_flight",
		"Calls of the function holding a permit.", flowLabels, nil)
	flowOldest = prometheus.NewDesc("dispatcher_function_oldest_waiting_call_age_seconds",
		"How long the call waiting longest for a permit of the function has waited; 0 when none waits.", flowLabels, nil)
	flowUp = prometheus.NewDesc("dispatcher_function_flow_scrape_success",
		"1 when the last read of the function gates from Temporal succeeded.", nil, nil)
)

// Describe implements prometheus.Collector.
func (f *FlowCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{flowCircuitOpen, flowPaused, flowWaiting, flowInFlight, flowOldest, flowUp} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (f *FlowCollector) Collect(ch chan<- prometheus.Metric) {
	now := f.Now()
	states, err := f.last.get(now, f.Every, 10*time.Second, f.read)
	up := 1.0
	if err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(flowUp, prometheus.GaugeValue, up)
	for _, s := range states {
		labels := []string{s.tenant, s.Function}
		ch <- prometheus.MustNewConstMetric(flowCircuitOpen, prometheus.GaugeValue, boolGauge(s.State == dispatcher.FlowOpen), labels...)
		ch <- prometheus.MustNewConstMetric(flowPaused, prometheus.GaugeValue, boolGauge(!s.PausedUntil.IsZero() && s.PausedUntil.After(now)), labels...)
		ch <- prometheus.MustNewConstMetric(flowWaiting, prometheus.GaugeValue, float64(s.Waiting), labels...)
		ch <- prometheus.MustNewConstMetric(flowInFlight, prometheus.GaugeValue, float64(s.InFlight), labels...)
		oldest := 0.0
		if !s.OldestWaiting.IsZero() {
			oldest = max(now.Sub(s.OldestWaiting).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(flowOldest, prometheus.GaugeValue, oldest, labels...)
	}
}

// read lists the running gates and queries each. A gate that does not
// answer (it completed meanwhile, or no worker polls) is left out.
func (f *FlowCollector) read(ctx context.Context) ([]gateState, error) {
	var out []gateState
	var token []byte
	for {
		res, err := f.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace:     f.Namespace,
			Query:         "WorkflowType = '" + workflows.WorkflowGate + "' AND ExecutionStatus = 'Running'",
			NextPageToken: token,
		})
		if err != nil {
			return nil, err
		}
		for _, ex := range res.GetExecutions() {
			if len(out) >= f.Limit {
				return out, nil
			}
			id := ex.GetExecution().GetWorkflowId()
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			v, err := f.Client.QueryWorkflow(qctx, id, ex.GetExecution().GetRunId(), workflows.QueryGate)
			cancel()
			var st dispatcher.FlowState
			if err != nil || v.Get(&st) != nil {
				continue
			}
			out = append(out, gateState{tenant: dispatcher.TenantOf(id), FlowState: st})
		}
		token = res.GetNextPageToken()
		if len(token) == 0 {
			return out, nil
		}
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/serviceerror"
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
	Logger    *slog.Logger // nil discards

	last    lastRead[gateStates]
	known   map[string]gateState // by workflow ID, as last read (read alone uses it, one at a time)
	failing bool                 // the last list failed
	silent  map[string]bool      // by workflow ID, the gates that did not answer the last read
}

// gateStates is what a read of the gates found: each gate's state, and
// how many gates did not answer (those shown as last read).
type gateStates struct {
	gates      []gateState
	unanswered int
}

// gateState is one gate's state, with its tenant.
type gateState struct {
	id, tenant string
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
	read, err := f.last.get(now, f.Every, 10*time.Second, f.read)
	up := 1.0
	if err != nil || read.unanswered > 0 {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(flowUp, prometheus.GaugeValue, up)
	for _, s := range read.gates {
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

// read lists the running gates and queries each. A gate gone meanwhile
// is left out; one that does not answer (no worker polls, or its workflow
// task fails) is counted, and shown as last read: before, its series
// went, and the scrape said success, so that no alert on them could fire.
func (f *FlowCollector) read(ctx context.Context) (gateStates, error) {
	var out gateStates
	var token []byte
	silent := map[string]bool{}
	done := func() (gateStates, error) {
		f.known = make(map[string]gateState, len(out.gates))
		for _, g := range out.gates {
			f.known[g.id] = g
		}
		f.failing = logRead(f.Logger, f.failing, "the function gates", nil)
		f.silent = silent
		return out, nil
	}
	for {
		res, err := f.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace:     f.Namespace,
			Query:         "WorkflowType = '" + workflows.WorkflowGate + "' AND ExecutionStatus = 'Running'",
			NextPageToken: token,
		})
		if err != nil {
			f.failing = logRead(f.Logger, f.failing, "the function gates", err)
			return gateStates{}, err
		}
		for _, ex := range res.GetExecutions() {
			if len(out.gates) >= f.Limit {
				return done()
			}
			id := ex.GetExecution().GetWorkflowId()
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			v, err := f.Client.QueryWorkflow(qctx, id, ex.GetExecution().GetRunId(), workflows.QueryGate)
			cancel()
			var st dispatcher.FlowState
			if err == nil {
				err = v.Get(&st)
			}
			var gone *serviceerror.NotFound
			switch {
			case errors.As(err, &gone):
			case err != nil:
				// Once the read is out of time, every gate left fails
				// alike: not one warning each, nor one counted as warned of.
				if ctx.Err() == nil || f.silent[id] {
					silent[id] = true
				}
				if silent[id] && !f.silent[id] && f.Logger != nil {
					f.Logger.Warn("a function gate does not answer its query; its flow-control gauges show the last read until it does",
						"workflowId", id, "err", err)
				}
				out.unanswered++
				if last, ok := f.known[id]; ok {
					out.gates = append(out.gates, last)
				}
			default:
				if f.silent[id] && f.Logger != nil {
					f.Logger.Info("a function gate answers its query again", "workflowId", id)
				}
				out.gates = append(out.gates, gateState{id: id, tenant: dispatcher.TenantOf(id), FlowState: st})
			}
		}
		token = res.GetNextPageToken()
		if len(token) == 0 {
			return done()
		}
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// Metric names, as Prometheus shows them once the SDK's Prometheus naming
// adds the _total and _seconds suffixes. They are emitted through the
// workflow's metrics handler, which stays silent while a history replays,
// so each dispatch and action is counted once.
const (
	metricDispatches     = "dispatcher_dispatches"      // counter{status}
	metricActionOutcomes = "dispatcher_action_outcomes" // counter{type,status}
	metricActionDuration = "dispatcher_action_duration" // histogram{type}
)

// recordOutcomes counts the dispatch and each action's outcome and
// latency.
func recordOutcomes(ctx workflow.Context, res DispatchResult, failed bool) {
	m := workflow.GetMetricsHandler(ctx)
	status := "completed"
	if failed {
		status = "failed"
	}
	m.WithTags(map[string]string{"status": status}).Counter(metricDispatches).Inc(1)
	for _, o := range res.Outcomes {
		tags := map[string]string{"type": o.Type}
		m.WithTags(map[string]string{"type": o.Type, "status": o.Status}).Counter(metricActionOutcomes).Inc(1)
		if !o.StartedAt.IsZero() && !o.FinishedAt.IsZero() {
			m.WithTags(tags).Timer(metricActionDuration).Record(o.FinishedAt.Sub(o.StartedAt))
		}
	}
}

// recordStart counts a dispatch that began.
func recordStart(ctx workflow.Context) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"status": "started"}).Counter(metricDispatches).Inc(1)
}

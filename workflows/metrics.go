package workflows

import (
	"errors"

	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
)

// Metric names, as Prometheus shows them once the SDK's Prometheus naming
// adds the _total and _seconds suffixes. They are emitted through the
// workflow's metrics handler, which stays silent while a history replays,
// so each dispatch and action is counted once.
const (
	metricDispatches       = "dispatcher_dispatches"         // counter{status}: started, completed, failed, canceled, carried
	metricActionOutcomes   = "dispatcher_action_outcomes"    // counter{type,status}
	metricActionDuration   = "dispatcher_action_duration"    // histogram{type}
	metricTaskFailedUnsent = "dispatcher_task_failed_unsent" // counter
)

// MetricHelp is the help text of these metrics, by their Prometheus
// names: the SDK's metrics handler has no place for it.
var MetricHelp = map[string]string{
	metricDispatches + "_total":       "Dispatches that started and that closed, by status: started, completed, failed, canceled or carried (a replay that made its actions, failing with those it carries).",
	metricActionOutcomes + "_total":   "Actions that ended, by type (mail, task) and status (succeeded, failed, skipped, canceled).",
	metricActionDuration + "_seconds": "How long actions ran, by type: from their start (after any startTimestamp) to their end, retries and waits for a permit included.",
	metricTaskFailedUnsent + "_total": "Task actions that failed for good whose task_failed event may not have been started (refused, Temporal or the store away for 10 minutes, or the dispatch canceled meanwhile): the failures are found by GET /executions/v1?status=failed.",
}

// recordAction counts an action's outcome and latency, once it has one:
// as it ends, not when the dispatch closes, which an action of the same
// dispatch waiting for its startTimestamp may hold off for months.
func recordAction(ctx workflow.Context, o dispatcher.ActionOutcome) {
	m := workflow.GetMetricsHandler(ctx)
	m.WithTags(map[string]string{"type": o.Type, "status": o.Status}).Counter(metricActionOutcomes).Inc(1)
	if !o.StartedAt.IsZero() && !o.FinishedAt.IsZero() {
		m.WithTags(map[string]string{"type": o.Type}).Timer(metricActionDuration).Record(o.FinishedAt.Sub(o.StartedAt))
	}
}

// recordEnd counts a dispatch that closed: completed, failed, carried or
// canceled (by someone who meant it: no failure of the dispatcher's).
func recordEnd(ctx workflow.Context, err error, carriedOnly bool) {
	status := "completed"
	switch {
	case err == nil: // a cancel that came once every action had ended
	case errors.Is(ctx.Err(), workflow.ErrCanceled):
		status = "canceled"
	case carriedOnly:
		// A replay that made its actions, failing with those it carries:
		// no new failure, which an alert on the failed rate would count
		// for every dispatch a bulk replay fixed.
		status = "carried"
	default:
		status = "failed"
	}
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"status": status}).Counter(metricDispatches).Inc(1)
}

// recordUnsent counts a task_failed event that could not be started.
func recordUnsent(ctx workflow.Context) {
	workflow.GetMetricsHandler(ctx).Counter(metricTaskFailedUnsent).Inc(1)
}

// recordStart counts a dispatch that began. It also exports the unsent
// task_failed counter at zero, with the labels recordUnsent gives it, so
// that an alert on its increase sees the first one.
func recordStart(ctx workflow.Context) {
	m := workflow.GetMetricsHandler(ctx)
	m.WithTags(map[string]string{"status": "started"}).Counter(metricDispatches).Inc(1)
	m.Counter(metricTaskFailedUnsent)
}

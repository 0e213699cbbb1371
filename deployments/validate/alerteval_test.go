package validate

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/promqltest"
)

// alertExpr is the expression of the alert named name, on one line.
func alertExpr(t *testing.T, name string) string {
	t.Helper()
	for _, g := range loadAlerts(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == name {
				return strings.Join(strings.Fields(r.Expr), " ")
			}
		}
	}
	t.Fatalf("no alert %s", name)
	return ""
}

// TestActionFailuresAlertCountsWhatRan: DispatcherActionFailuresHigh
// fires when the task actions that ran all fail, however many of one
// event type's dispatchers filters skip (routing by filter skips most);
// a few failed mails among many sent do not fire it. Before, skipped
// actions counted in its denominator, and 6 failed calls beside 66
// skipped ones (12 dispatchers routed by region) kept it silent.
func TestActionFailuresAlertCountsWhatRan(t *testing.T) {
	engine := promqltest.NewTestEngine(t, false, 5*time.Minute, 1e6)
	promqltest.RunTest(t, `
load 1m
  dispatcher_action_outcomes_total{type="task",status="failed"}    0+6x60
  dispatcher_action_outcomes_total{type="task",status="skipped"}   0+66x60
  dispatcher_action_outcomes_total{type="mail",status="succeeded"} 0+100x60
  dispatcher_action_outcomes_total{type="mail",status="failed"}    0+1x60
  dispatcher_action_outcomes_total{type="mail",status="skipped"}   0+500x60

eval instant at 45m `+alertExpr(t, "DispatcherActionFailuresHigh")+`
  {type="task"} 1
`, engine)
}

// TestTaskSlotsAlertPerQueue: DispatcherWorkerTaskSlotsSaturated fires
// when the dispatch worker's activity slots are all in use, beside the
// idle slots of the bulk replays' worker in the same process. Before, it
// summed both queues' slots: 4 of 24 in use, and it stayed silent.
func TestTaskSlotsAlertPerQueue(t *testing.T) {
	engine := promqltest.NewTestEngine(t, false, 5*time.Minute, 1e6)
	promqltest.RunTest(t, `
load 1m
  temporal_worker_task_slots_used{job="dispatcher",worker_type="ActivityWorker",task_queue="dispatcher"}              4x30
  temporal_worker_task_slots_available{job="dispatcher",worker_type="ActivityWorker",task_queue="dispatcher"}         0x30
  temporal_worker_task_slots_used{job="dispatcher",worker_type="ActivityWorker",task_queue="dispatcher-replays"}      0x30
  temporal_worker_task_slots_available{job="dispatcher",worker_type="ActivityWorker",task_queue="dispatcher-replays"} 20x30

eval instant at 20m `+alertExpr(t, "DispatcherWorkerTaskSlotsSaturated")+`
  {worker_type="ActivityWorker",task_queue="dispatcher"} 1
`, engine)
}

// TestGaugesUnreadAlertNamesWhich: DispatcherGaugesUnread fires for a
// process whose read of the running dispatches keeps failing, naming
// those gauges, and not for one whose reads succeed; a read that failed
// once and then succeeded fires nothing.
func TestGaugesUnreadAlertNamesWhich(t *testing.T) {
	engine := promqltest.NewTestEngine(t, false, 5*time.Minute, 1e6)
	promqltest.RunTest(t, `
load 1m
  dispatcher_pending_dispatch_scrape_success{job="dispatcher",instance="a"} 0x30
  dispatcher_function_flow_scrape_success{job="dispatcher",instance="a"}    1x30
  dispatcher_pending_dispatch_scrape_success{job="dispatcher",instance="b"} 1 0 1x28
  dispatcher_function_flow_scrape_success{job="dispatcher",instance="b"}    1x30

eval instant at 20m `+alertExpr(t, "DispatcherGaugesUnread")+`
  {job="dispatcher",instance="a",gauges="pending"} 0
`, engine)
}

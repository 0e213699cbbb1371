package dispatch_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// standInDispatches polls queue with a Dispatch workflow that waits for a
// signal "done".
func standInDispatches(t *testing.T, c client.Client, queue string) {
	t.Helper()
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		workflow.GetSignalChannel(ctx, "done").Receive(ctx, nil)
		return nil
	}, workflow.RegisterOptions{Name: workflows.WorkflowDispatch})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
}

// TestPendingCollector runs stand-in Dispatch workflows that wait for a
// signal on a real dev server and checks the oldest-pending gauge.
func TestPendingCollector(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "pending-test"
	standInDispatches(t, c, queue)

	ctx := context.Background()
	start := func(id string, dispatchers []string, scheduled bool, more ...temporal.SearchAttributeUpdate) {
		t.Helper()
		_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: id, TaskQueue: queue,
			TypedSearchAttributes: temporal.NewSearchAttributes(append(more,
				workflows.AttrDispatcherIDs.ValueSet(dispatchers),
				workflows.AttrScheduled.ValueSet(scheduled),
			)...),
		}, workflows.WorkflowDispatch)
		if err != nil {
			t.Fatal(err)
		}
	}
	start("p1", []string{"d-old", "d-both"}, false)
	start("p2", []string{"d-both"}, false)
	// One that waited for a startTimestamp until 10 minutes before now:
	// pending for those 10 minutes, not since it started. Before, its
	// wait counted, and a long one alerted at its first retry.
	now := time.Now().Add(time.Hour) // every run is then about an hour old
	start("p-waited", []string{"d-waited"}, false, workflows.AttrPendingSince.ValueSet(now.Add(-10*time.Minute)))
	// Newer scheduled dispatches, more than the collector reads: they
	// are listed first (visibility lists the newest first), and hid the
	// old ones before the query left them out.
	for i := range 3 {
		start(fmt.Sprint("p-scheduled-", i), []string{"d-scheduled"}, true)
	}

	p := &dispatch.PendingCollector{Client: c, Namespace: "default", Now: func() time.Time { return now }, Every: 0, Limit: 3}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)

	// Visibility is eventually consistent.
	testenv.Eventually(t, 20*time.Second, func() string {
		if n := testutil.CollectAndCount(p, "dispatcher_oldest_pending_dispatch_age_seconds"); n < 3 {
			return fmt.Sprintf("visibility shows %d of the 3 dispatchers with running dispatches", n)
		}
		return ""
	})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ages := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "dispatcher_oldest_pending_dispatch_age_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			ages[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	if w := ages["d-waited"]; len(ages) != 3 || ages["d-old"] < 3500 || ages["d-both"] < 3500 || w < 590 || w > 610 {
		t.Fatalf("ages = %v, want d-old and d-both about 3600 s, d-waited 600 s, d-scheduled absent", ages)
	}
	if err := testutil.CollectAndCompare(p, strings.NewReader(`
# HELP dispatcher_pending_dispatch_scrape_success 1 when the last read of running dispatches from Temporal visibility succeeded.
# TYPE dispatcher_pending_dispatch_scrape_success gauge
dispatcher_pending_dispatch_scrape_success 1
`), "dispatcher_pending_dispatch_scrape_success"); err != nil {
		t.Fatal(err)
	}
}

// TestPendingCollectorPastItsLimit: with more dispatches running than it
// reads, the collector still finds one pending past the alert's
// threshold. Visibility lists the newest first; before, the older ones
// were never read, and DispatcherPendingDispatchStale never fired on a
// busy install whose function was down.
func TestPendingCollectorPastItsLimit(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "pending-limit-test"
	standInDispatches(t, c, queue)
	ctx := context.Background()
	start := func(id, dispatcher string) time.Time {
		t.Helper()
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue,
			TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrDispatcherIDs.ValueSet([]string{dispatcher}))}, workflows.WorkflowDispatch)
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.DescribeWorkflowExecution(ctx, id, run.GetRunID())
		if err != nil {
			t.Fatal(err)
		}
		return d.GetWorkflowExecutionInfo().GetStartTime().AsTime()
	}
	stuck := start("limit-stuck", "d-stuck")
	next := start("limit-busy-0", "d-busy")
	for i := 1; i < 4; i++ {
		start(fmt.Sprint("limit-busy-", i), "d-busy")
	}
	// Now, the stuck one is just past 30 minutes old, the others not.
	now := stuck.Add(next.Sub(stuck)/2 + 30*time.Minute)
	p := &dispatch.PendingCollector{Client: c, Namespace: "default", Now: func() time.Time { return now }, Limit: 2}
	testenv.Eventually(t, 20*time.Second, func() string {
		ages := map[string]float64{}
		ch := make(chan prometheus.Metric, 16)
		p.Collect(ch)
		close(ch)
		for m := range ch {
			var out dto.Metric
			if err := m.Write(&out); err == nil && len(out.GetLabel()) == 1 {
				ages[out.GetLabel()[0].GetValue()] = out.GetGauge().GetValue()
			}
		}
		if a, ok := ages["d-stuck"]; !ok || a < 1800 {
			return fmt.Sprintf("ages %v: want d-stuck at 1800 s or more, read past the limit", ages)
		}
		return ""
	})
}

// A bulk replay's replay scheduled beside an action that failed for good
// already counts as failed, not scheduled nor running; one that only
// waits, as scheduled; with actions named, only a failure of one of them
// counts. Before, a bulk replay whose replays all failed again beside an
// action due in a year ended "0 failed, 2 scheduled", and exited 0.
func TestCountReplaysScheduledButFailed(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "count-replays-test"
	standInDispatches(t, c, queue)
	ex, err := dispatch.NewExecutions(dispatch.ExecutionsOptions{Client: c, Namespace: "default", TaskQueue: queue, Audit: testenv.Store(t)})
	if err != nil {
		t.Fatal(err)
	}
	const bulk = "bulk-replay-0123456789abcdef01234567"
	start := func(id string, failed ...string) {
		t.Helper()
		attrs := []temporal.SearchAttributeUpdate{workflows.AttrBulkReplayID.ValueSet(bulk), workflows.AttrScheduled.ValueSet(true)}
		if len(failed) > 0 {
			attrs = append(attrs, workflows.AttrFailedActionIDs.ValueSet(failed))
		}
		if _, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: queue,
			TypedSearchAttributes: temporal.NewSearchAttributes(attrs...)}, workflows.WorkflowDispatch); err != nil {
			t.Fatal(err)
		}
	}
	start("count-waits")
	start("count-failed-a1", "a1")
	start("count-failed-a2", "a2")
	// Closed ones, each counted by its status (one count grouped by
	// status): a terminated one is failed.
	start("count-done")
	start("count-terminated")
	if err := c.SignalWorkflow(context.Background(), "count-done", "", "done", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.TerminateWorkflow(context.Background(), "count-terminated", "", "test"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		actions []string
		want    workflows.ReplayCounts
	}{
		{nil, workflows.ReplayCounts{Completed: 1, Failed: 3, Running: 1, Scheduled: 1}},
		{[]string{"a1"}, workflows.ReplayCounts{Completed: 1, Failed: 2, Running: 2, Scheduled: 2}},
	} {
		testenv.Eventually(t, 20*time.Second, func() string {
			got, err := ex.CountReplays(context.Background(), bulk, tt.actions)
			if err != nil || got != tt.want {
				return fmt.Sprintf("actions %v: counts %+v, %v; want %+v", tt.actions, got, err, tt.want)
			}
			return ""
		})
	}
}

// A paused bulk replay no worker answers for says it is paused, as the
// list does: the audit trail holds its starts either way. Before, its
// progress unknown, it said paused:false, and looked as if it went on
// once a worker came back.
func TestBulkReplayPausedWithoutWorker(t *testing.T) {
	c := testenv.TemporalClient(t)
	store := testenv.Store(t)
	ex, err := dispatch.NewExecutions(dispatch.ExecutionsOptions{Client: c, Namespace: "default", TaskQueue: "no-worker", Audit: store})
	if err != nil {
		t.Fatal(err)
	}
	const id = "bulk-replay-0123456789abcdef0123456a"
	if _, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: "no-worker"},
		workflows.WorkflowBulkReplay, workflows.BulkReplayInput{Rate: 1, Actor: "ann"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.TerminateWorkflow(context.Background(), id, "", "test over") })
	if _, err := store.RecordAudit(context.Background(), dispatcher.AuditEntry{ID: "a1", WorkflowID: id, Ref: "a1",
		Operation: dispatcher.AuditPause, Actor: "ann", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st, err := ex.BulkReplay(context.Background(), id)
	if err != nil || !st.ProgressUnknown || !st.Progress.Paused {
		t.Errorf("bulk replay %+v, %v; want its progress unknown, paused", st, err)
	}
}

package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dispatcherhq/dispatcher/workflows"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
)

// PendingCollector exports the age of the oldest dispatch still running
// per dispatcher — one retrying for a long time is a dispatch in trouble —
// counted from its start, or from when it went on after waiting for a
// startTimestamp (AttrPendingSince).
// Dispatches waiting for a future startTimestamp are not pending: they are
// on time, and the query leaves them out: visibility lists the newest
// first, so a backlog of reminders read before the old dispatches hid them
// past Limit. It reads Temporal visibility at most once per Every, and at
// most Limit executions each time, then, when more run, a page of those
// older than each of pendingBands: past Limit, a dispatch's age shows at
// least its band's.
type PendingCollector struct {
	Client    client.Client
	Namespace string
	Now       func() time.Time
	Every     time.Duration
	Limit     int
	Logger    *slog.Logger // nil discards

	last    lastRead[map[string]time.Time]
	failing bool // the last read failed (read alone uses it, one at a time)
}

var pendingAge = prometheus.NewDesc("dispatcher_oldest_pending_dispatch_age_seconds",
	"Age of the oldest running (not scheduled) dispatch, by dispatcher id.", []string{"dispatcher"}, nil)

var pendingUp = prometheus.NewDesc("dispatcher_pending_dispatch_scrape_success",
	"1 when the last read of running dispatches from Temporal visibility succeeded.", nil, nil)

// Describe implements prometheus.Collector.
func (p *PendingCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingAge
	ch <- pendingUp
}

// Collect implements prometheus.Collector.
func (p *PendingCollector) Collect(ch chan<- prometheus.Metric) {
	now := p.Now()
	oldest, err := p.last.get(now, p.Every, 5*time.Second, p.read)
	up := 1.0
	if err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(pendingUp, prometheus.GaugeValue, up)
	for id, start := range oldest {
		ch <- prometheus.MustNewConstMetric(pendingAge, prometheus.GaugeValue, now.Sub(start).Seconds(), id)
	}
}

// read returns, per dispatcher id, the start of its oldest running,
// unscheduled dispatch, and logs when reads begin to fail and when they
// succeed again.
func (p *PendingCollector) read(ctx context.Context) (map[string]time.Time, error) {
	oldest, err := p.readOldest(ctx)
	p.failing = logRead(p.Logger, p.failing, "the running dispatches", err)
	return oldest, err
}

func (p *PendingCollector) readOldest(ctx context.Context) (map[string]time.Time, error) {
	oldest := map[string]time.Time{}
	scheduled := workflows.AttrScheduled.GetName()
	query := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running' AND (%s IS NULL OR %s = false)",
		workflows.WorkflowDispatch, scheduled, scheduled)
	more, err := p.list(ctx, query, p.Limit, oldest)
	// Visibility lists the newest first: past Limit, the oldest are among
	// those not read. A page of those older than each of pendingBands is
	// read too, so that a dispatch pending past an alert's threshold shows
	// at least that old. Before, with more than Limit running (a function
	// down on a busy install), the oldest were never seen, and
	// DispatcherPendingDispatchStale never fired.
	now := p.Now()
	for _, band := range pendingBands {
		if err != nil || !more {
			break
		}
		more, err = p.list(ctx, fmt.Sprintf("%s AND StartTime < '%s'", query, now.Add(-band).UTC().Format(time.RFC3339Nano)), min(p.Limit, 1000), oldest)
	}
	return oldest, err
}

// pendingBands are the ages past which read looks again when it could
// not read every running dispatch: the alert's threshold, and beyond.
var pendingBands = []time.Duration{30 * time.Minute, 2 * time.Hour, 24 * time.Hour}

// list reads up to limit running dispatches that query matches into
// oldest, and reports whether there were more.
func (p *PendingCollector) list(ctx context.Context, query string, limit int, oldest map[string]time.Time) (more bool, err error) {
	var token []byte
	seen := 0
	for {
		res, err := p.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace:     p.Namespace,
			Query:         query,
			PageSize:      int32(min(limit, 1000)),
			NextPageToken: token,
		})
		if err != nil {
			return false, err
		}
		for _, ex := range res.GetExecutions() {
			fields := ex.GetSearchAttributes().GetIndexedFields()
			var ids []string
			if f, ok := fields[workflows.AttrDispatcherIDs.GetName()]; ok {
				_ = converter.GetDefaultDataConverter().FromPayload(f, &ids)
			}
			start := ex.GetStartTime().AsTime()
			if f, ok := fields[workflows.AttrPendingSince.GetName()]; ok {
				// Running again after a wait for a startTimestamp: the
				// wait was no pending time.
				var since time.Time
				if converter.GetDefaultDataConverter().FromPayload(f, &since) == nil && since.After(start) {
					start = since
				}
			}
			for _, id := range ids {
				if t, ok := oldest[id]; !ok || start.Before(t) {
					oldest[id] = start
				}
			}
		}
		seen += len(res.GetExecutions())
		token = res.GetNextPageToken()
		if len(token) == 0 {
			return false, nil
		}
		if seen >= limit {
			return true, nil
		}
	}
}

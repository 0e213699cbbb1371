package dispatch

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	workflowpb "go.temporal.io/api/workflow/v1"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// MaxFailureScan bounds the runs a failures summary reads.
const MaxFailureScan = 20000

// Failures returns the failed runs f matches grouped by error class and
// dispatcher, with counts and one sample message per group, most frequent
// first, and how many started in each of buckets equal spans of time
// (0: dispatcher.DefaultTrendBuckets) from f.From (else the first run
// counted) to f.To (else now), overall and per group. Grouping reads
// only the visibility records (their error classes hold
// class@dispatcher pairs); one history per group gives its sample.
// Unless includeReplayed, failed runs that a replay (or a reset) has
// superseded are left out, so a fixed-and-replayed cause disappears from
// the summary.
// f.Status must be empty or failed. Errors: EINVALID, EUNAVAILABLE.
func (e *Executions) Failures(ctx context.Context, f dispatcher.ExecutionFilter, includeReplayed bool, buckets int) (dispatcher.FailureSummary, error) {
	if err := dispatcher.CheckTrendBuckets(buckets); err != nil {
		return dispatcher.FailureSummary{}, err
	}
	if f.Status != "" && f.Status != dispatcher.ExecutionFailed {
		return dispatcher.FailureSummary{}, dispatcher.Errorf(dispatcher.EINVALID, "status: the failures summary covers failed dispatches only")
	}
	if now := e.now(); f.From.After(now) {
		return dispatcher.FailureSummary{}, dispatcher.Errorf(dispatcher.EINVALID, "from: is after now (%s); the summary covers failures up to now",
			now.UTC().Format(time.RFC3339))
	}
	f.Status = dispatcher.ExecutionFailed
	q, err := executionQuery(ctx, f)
	if err != nil {
		return dispatcher.FailureSummary{}, err
	}
	infos, more, err := e.listAll(ctx, q, MaxFailureScan)
	if err != nil {
		return dispatcher.FailureSummary{}, err
	}
	superseded := map[string]string{}
	if !includeReplayed {
		if superseded, err = e.supersededBy(ctx, refs(infos)); err != nil {
			return dispatcher.FailureSummary{}, err
		}
	}
	runs := make([]dispatcher.Execution, 0, len(infos))
	sum := dispatcher.FailureSummary{Truncated: more}
	for _, info := range infos {
		x := e.toExecution(info)
		if superseded[x.RunID] != "" {
			sum.Superseded++
			continue
		}
		runs = append(runs, x)
	}
	sum.Failed = len(runs)
	sum.Trend = failureTrend(f, runs, e.now(), buckets)
	index := map[dispatcher.ClassDispatcher]int{}
	for _, x := range runs {
		bucket, inTrend := sum.Trend.Index(x.Start)
		if !inTrend && !x.Start.Before(sum.Trend.From) {
			// At the end, or after it as far as this clock can tell:
			// every run counted is in the trend.
			bucket, inTrend = len(sum.Trend.Counts)-1, true
		}
		for _, p := range x.Failures {
			i, ok := index[p]
			if !ok {
				i = len(sum.Groups)
				index[p] = i
				sum.Groups = append(sum.Groups, dispatcher.FailureGroup{ErrorClass: p.ErrorClass, DispatcherID: p.DispatcherID,
					SampleWorkflowID: x.WorkflowID, SampleRunID: x.RunID, SampleEventType: x.EventType, Trend: make([]int, len(sum.Trend.Counts))})
			}
			sum.Groups[i].Count++
			if inTrend {
				sum.Groups[i].Trend[bucket]++
			}
		}
		if inTrend {
			sum.Trend.Counts[bucket]++
		}
	}
	if err := e.sampleFailures(ctx, sum.Groups); err != nil {
		return dispatcher.FailureSummary{}, err
	}
	if err := e.markRemoved(ctx, sum.Groups); err != nil {
		return dispatcher.FailureSummary{}, err
	}
	slices.SortStableFunc(sum.Groups, func(a, b dispatcher.FailureGroup) int {
		return cmp.Or(b.Count-a.Count, cmp.Compare(a.ErrorClass, b.ErrorClass), cmp.Compare(a.DispatcherID, b.DispatcherID))
	})
	return sum, nil
}

// failureTrend returns the empty trend of runs: from f.From, else the
// first of runs to start (a day before to when there is none), to f.To,
// else now.
func failureTrend(f dispatcher.ExecutionFilter, runs []dispatcher.Execution, now time.Time, buckets int) dispatcher.Trend {
	from, to := f.From, f.To
	if to.IsZero() || to.After(now) {
		to = now
	}
	if from.IsZero() {
		// Before, no failure made a trend of buckets a millisecond long.
		from = to.Add(-emptyTrendSpan)
		if len(runs) > 0 {
			from = to
		}
		for _, x := range runs {
			if x.Start.Before(from) {
				from = x.Start
			}
		}
	}
	if to.Before(from) {
		to = from
	}
	return dispatcher.NewTrend(from, to, buckets)
}

// emptyTrendSpan is what a trend of no failures spans, when not told.
const emptyTrendSpan = 24 * time.Hour

// supersedeBatch bounds the workflow IDs one visibility list asks for.
const supersedeBatch = 500

// supersededBy returns, by run ID, the run that superseded each run of
// the dispatches of runs (and their other runs) that a later run of the
// same dispatch has: its replay (the run whose DispatchReplayOf names
// it), else the dispatch's latest run. A replay and a reset from the
// Temporal Web UI or CLI (`temporal workflow reset`) both start a run
// under the dispatch's workflow ID, but only a replay says which run it
// follows, so the runs of each workflow ID are read, supersedeBatch IDs
// a list, and the latest (the one running, else the last to close)
// supersedes the others.
func (e *Executions) supersededBy(ctx context.Context, runs []dispatcher.RunRef) (map[string]string, error) {
	var ids []string
	seen := map[string]bool{}
	for _, r := range runs {
		if !seen[r.WorkflowID] {
			seen[r.WorkflowID] = true
			ids = append(ids, quote(r.WorkflowID))
		}
	}
	out := map[string]string{}
	for batch := range slices.Chunk(ids, supersedeBatch) {
		// Running first, then the last to close: were there more runs than
		// the limit, those left out would be superseded ones.
		q := "WorkflowType = " + quote(workflows.WorkflowDispatch) + " AND " + tenantClause(ctx) +
			" AND WorkflowId IN (" + strings.Join(batch, ", ") + ")"
		infos, _, err := e.listAll(ctx, q, MaxFailureScan)
		if err != nil {
			return nil, err
		}
		latest := map[string]*workflowpb.WorkflowExecutionInfo{}
		for _, info := range infos {
			if l, ok := latest[info.GetExecution().GetWorkflowId()]; !ok || closedAfter(info, l) {
				latest[info.GetExecution().GetWorkflowId()] = info
			}
		}
		for _, info := range infos {
			run, l := info.GetExecution().GetRunId(), latest[info.GetExecution().GetWorkflowId()].GetExecution().GetRunId()
			if run != l {
				out[run] = l
			}
		}
		for _, info := range infos {
			of := keyword(info.GetSearchAttributes().GetIndexedFields()[workflows.AttrReplayOf.GetName()])
			if _, ok := out[of]; ok {
				out[of] = info.GetExecution().GetRunId()
			}
		}
	}
	return out, nil
}

// closedAfter reports whether run a of a dispatch came after run b: a
// runs (one run of a workflow ID runs at a time), or closed later.
func closedAfter(a, b *workflowpb.WorkflowExecutionInfo) bool {
	if a.GetCloseTime() == nil || b.GetCloseTime() == nil {
		return a.GetCloseTime() == nil
	}
	return a.GetCloseTime().AsTime().After(b.GetCloseTime().AsTime())
}

// unreplayed returns runs without those that a replay or a reset has
// superseded.
func (e *Executions) unreplayed(ctx context.Context, runs []dispatcher.RunRef) ([]dispatcher.RunRef, error) {
	if len(runs) == 0 {
		return runs, nil
	}
	superseded, err := e.supersededBy(ctx, runs)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(runs, func(r dispatcher.RunRef) bool { return superseded[r.RunID] != "" }), nil
}

// refs returns the runs of infos.
func refs(infos []*workflowpb.WorkflowExecutionInfo) []dispatcher.RunRef {
	out := make([]dispatcher.RunRef, len(infos))
	for i, info := range infos {
		out[i] = dispatcher.RunRef{WorkflowID: info.GetExecution().GetWorkflowId(), RunID: info.GetExecution().GetRunId()}
	}
	return out
}

// markRemoved marks the groups whose dispatcher is no dispatcher of their
// event type now (FailureGroup.Removed), reading those of each type once.
// Before, the console offered to replay them, and the bulk replay then
// skipped every one.
func (e *Executions) markRemoved(ctx context.Context, groups []dispatcher.FailureGroup) error {
	if e.dispatchers == nil {
		return nil
	}
	dispatchersOf := e.dispatchersByType(ctx)
	for i := range groups {
		g := &groups[i]
		if g.DispatcherID == "" || g.SampleEventType == "" {
			continue // failed before it loaded its dispatchers, or of no known type
		}
		ds, err := dispatchersOf(g.SampleEventType)
		if err != nil {
			return err
		}
		g.Removed = !slices.ContainsFunc(ds, func(d dispatcher.Dispatcher) bool { return d.ID == g.DispatcherID })
	}
	return nil
}

// sampleFailures fills in each group's sample message and dispatcher name
// from the result of its sample run, reading each run's history once.
func (e *Executions) sampleFailures(ctx context.Context, groups []dispatcher.FailureGroup) error {
	records := map[string]runRecord{}
	for i := range groups {
		g := &groups[i]
		rec, ok := records[g.SampleRunID]
		if !ok {
			var err error
			if rec, err = e.readRun(ctx, g.SampleWorkflowID, g.SampleRunID); err != nil && rec.unreadable == nil {
				return err
			}
			records[g.SampleRunID] = rec
		}
		g.Sample = rec.failure
		if rec.unreadable != nil {
			g.Sample = dispatcher.ErrorMessage(unreadable(rec.unreadable))
		}
		for _, o := range rec.outcomes {
			if o.ErrorClass == g.ErrorClass && o.DispatcherID == g.DispatcherID && o.Status != dispatcher.OutcomeSucceeded {
				g.Sample, g.DispatcherName = o.Error, o.DispatcherName
				break
			}
		}
		if g.DispatcherName == "" && rec.config != nil {
			for _, d := range rec.config.Dispatchers {
				if d.ID == g.DispatcherID {
					g.DispatcherName = d.Name
				}
			}
		}
	}
	return nil
}

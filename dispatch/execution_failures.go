package dispatch

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

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
// Unless includeReplayed, failed runs that a replay has superseded are
// left out, so a fixed-and-replayed cause disappears from the summary.
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
	superseded := map[string]bool{}
	if !includeReplayed {
		if superseded, err = e.replayedRuns(ctx, f.From); err != nil {
			return dispatcher.FailureSummary{}, err
		}
	}
	infos, more, err := e.listAll(ctx, q, MaxFailureScan)
	if err != nil {
		return dispatcher.FailureSummary{}, err
	}
	runs := make([]dispatcher.Execution, 0, len(infos))
	sum := dispatcher.FailureSummary{Truncated: more}
	for _, info := range infos {
		x := e.toExecution(info)
		if superseded[x.RunID] {
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
					SampleWorkflowID: x.WorkflowID, SampleRunID: x.RunID, Trend: make([]int, len(sum.Trend.Counts))})
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

// replayedRuns returns the run IDs that a replay started at or after from
// replays: replays carry DispatchReplayOf.
func (e *Executions) replayedRuns(ctx context.Context, from time.Time) (map[string]bool, error) {
	q := workflows.AttrReplayOf.GetName() + " IS NOT NULL"
	if !from.IsZero() {
		q += " AND StartTime >= " + quote(from.UTC().Format(time.RFC3339Nano))
	}
	return e.replayed(ctx, q)
}

// unreplayed returns runs without those that a replay has superseded.
func (e *Executions) unreplayed(ctx context.Context, runs []dispatcher.RunRef) ([]dispatcher.RunRef, error) {
	if len(runs) == 0 {
		return runs, nil
	}
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = quote(r.RunID)
	}
	superseded, err := e.replayed(ctx, workflows.AttrReplayOf.GetName()+" IN ("+strings.Join(ids, ", ")+")")
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(runs, func(r dispatcher.RunRef) bool { return superseded[r.RunID] }), nil
}

// replayed returns the runs that the replays where holds replayed (the
// newest MaxFailureScan of them), by run ID.
func (e *Executions) replayed(ctx context.Context, where string) (map[string]bool, error) {
	q := "WorkflowType = " + quote(workflows.WorkflowDispatch) + " AND " + tenantClause(ctx) + " AND " + where
	infos, _, err := e.listAll(ctx, q, MaxFailureScan)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(infos))
	for _, info := range infos {
		out[keyword(info.GetSearchAttributes().GetIndexedFields()[workflows.AttrReplayOf.GetName()])] = true
	}
	return out, nil
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
			if rec, err = e.readRun(ctx, g.SampleWorkflowID, g.SampleRunID); err != nil {
				return err
			}
			records[g.SampleRunID] = rec
		}
		g.Sample = rec.failure
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

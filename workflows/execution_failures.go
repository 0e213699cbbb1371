package workflows

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// FailureGroup counts the failed dispatches whose actions of one
// dispatcher failed with one error class.
type FailureGroup struct {
	ErrorClass     string
	DispatcherID   string // empty for a run that failed before it loaded dispatchers
	DispatcherName string
	Count          int
	// Sample is the error message of one of them (the newest), and
	// SampleWorkflowID and SampleRunID name it.
	Sample           string
	SampleWorkflowID string
	SampleRunID      string
}

// FailureSummary groups failed dispatches by cause.
type FailureSummary struct {
	Failed int // failed runs counted
	// Superseded counts failed runs left out because a later run (a
	// replay) of the same dispatch exists.
	Superseded int
	Groups     []FailureGroup
	// Truncated is true when more runs matched than a summary reads
	// (MaxFailureScan); the counts cover the newest ones.
	Truncated bool
}

// MaxFailureScan bounds the runs a failures summary reads.
const MaxFailureScan = 20000

// Failures returns the failed runs f matches grouped by error class and
// dispatcher, with counts and one sample message per group, most frequent
// first. Grouping reads only the visibility records (their error classes
// hold class@dispatcher pairs); one history per group gives its sample.
// Unless includeReplayed, failed runs that a replay has superseded are
// left out, so a fixed-and-replayed cause disappears from the summary.
// f.Status must be empty or failed. Errors: EINVALID, EUNAVAILABLE.
func (e *Executions) Failures(ctx context.Context, f dispatcher.ExecutionFilter, includeReplayed bool) (FailureSummary, error) {
	if f.Status != "" && f.Status != dispatcher.ExecutionFailed {
		return FailureSummary{}, dispatcher.Errorf(dispatcher.EINVALID, "status: the failures summary covers failed dispatches only")
	}
	f.Status = dispatcher.ExecutionFailed
	q, err := executionQuery(f)
	if err != nil {
		return FailureSummary{}, err
	}
	superseded := map[string]bool{}
	if !includeReplayed {
		if superseded, err = e.replayedRuns(ctx, f.From); err != nil {
			return FailureSummary{}, err
		}
	}
	infos, more, err := e.listAll(ctx, q, MaxFailureScan)
	if err != nil {
		return FailureSummary{}, err
	}
	sum := FailureSummary{Truncated: more}
	index := map[dispatcher.ClassDispatcher]int{}
	for _, info := range infos {
		x := e.toExecution(info)
		if superseded[x.RunID] {
			sum.Superseded++
			continue
		}
		sum.Failed++
		for _, p := range x.Failures {
			i, ok := index[p]
			if !ok {
				i = len(sum.Groups)
				index[p] = i
				sum.Groups = append(sum.Groups, FailureGroup{ErrorClass: p.ErrorClass, DispatcherID: p.DispatcherID,
					SampleWorkflowID: x.WorkflowID, SampleRunID: x.RunID})
			}
			sum.Groups[i].Count++
		}
	}
	if err := e.sampleFailures(ctx, sum.Groups); err != nil {
		return FailureSummary{}, err
	}
	slices.SortStableFunc(sum.Groups, func(a, b FailureGroup) int {
		return cmp.Or(b.Count-a.Count, cmp.Compare(a.ErrorClass, b.ErrorClass), cmp.Compare(a.DispatcherID, b.DispatcherID))
	})
	return sum, nil
}

// replayedRuns returns the run IDs that a replay started at or after from
// replays: replays carry DispatchReplayOf.
func (e *Executions) replayedRuns(ctx context.Context, from time.Time) (map[string]bool, error) {
	q := "WorkflowType = " + quote(WorkflowDispatch) + " AND " + AttrReplayOf.GetName() + " IS NOT NULL"
	if !from.IsZero() {
		q += " AND StartTime >= " + quote(from.UTC().Format(time.RFC3339Nano))
	}
	infos, _, err := e.listAll(ctx, q, MaxFailureScan)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(infos))
	for _, info := range infos {
		out[keyword(info.GetSearchAttributes().GetIndexedFields()[AttrReplayOf.GetName()])] = true
	}
	return out, nil
}

// sampleFailures fills in each group's sample message and dispatcher name
// from the result of its sample run, reading each run's history once.
func (e *Executions) sampleFailures(ctx context.Context, groups []FailureGroup) error {
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
			if o.ErrorClass == g.ErrorClass && o.DispatcherID == g.DispatcherID && o.Status != StatusSucceeded {
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

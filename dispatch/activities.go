package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// ReplayActivities are the activities of the BulkReplay workflow: they
// list and replay dispatches through the executions service itself, the
// same code the API's replay calls. Every exported method is an activity,
// registered under its own name (worker.RegisterActivity(r)).
type ReplayActivities struct {
	ex *Executions
}

// NewReplayActivities returns the bulk-replay activities over ex.
func NewReplayActivities(ex *Executions) *ReplayActivities {
	return &ReplayActivities{ex: ex}
}

// failureReplayUnavailable: Temporal or the audit log did not answer;
// retried.
const failureReplayUnavailable = "ReplayUnavailable"

// CountExecutions counts the runs a bulk replay matches. Those that a
// replay has superseded are counted too (telling them costs a scan of
// visibility, which a slow store could time out again and again): the
// bulk replay passes over them, and its count becomes what it handled at
// the end.
func (r *ReplayActivities) CountExecutions(ctx context.Context, in workflows.CountExecutionsInput) (int64, error) {
	ctx = activities.Acting(ctx) // the bulk replay's tenant
	n, err := r.ex.Count(ctx, in.Filter)
	return n, replayFailure(err)
}

// maxEmptyPages bounds the pages one ListExecutions reads past whose runs
// a replay has all superseded.
const maxEmptyPages = 10

// ListExecutions returns one page of the runs a bulk replay matches,
// without those that a replay has superseded already: they would be
// refused, each after waiting its turn at the bulk replay's rate and
// noted among its problems. A page that leaves none reads the next, up to
// maxEmptyPages: each call is history, and the bulk replay continues as
// new only after replays it starts. But not past half of the attempt's
// time: an attempt that timed out read its pages again on every retry, and
// on a slow visibility store the bulk replay never moved on.
func (r *ReplayActivities) ListExecutions(ctx context.Context, in workflows.ListExecutionsInput) (workflows.ListExecutionsResult, error) {
	ctx = activities.Acting(ctx) // the bulk replay's tenant
	out := workflows.ListExecutionsResult{NextPageToken: in.PageToken}
	half := time.Time{}
	if dl, ok := ctx.Deadline(); ok {
		half = time.Now().Add(time.Until(dl) / 2)
	}
	for range maxEmptyPages {
		if !half.IsZero() && time.Now().After(half) && len(out.NextPageToken) > 0 && out.Superseded > 0 {
			break // the pages read so far; the next call reads on from there
		}
		runs, next, err := r.ex.ListRuns(ctx, in.Filter, in.PageSize, out.NextPageToken)
		listed := len(runs)
		if err == nil {
			runs, err = r.ex.unreplayed(ctx, runs)
		}
		if err == nil {
			runs, err = r.ex.unmade(ctx, runs, in.Actions)
		}
		if err != nil {
			return workflows.ListExecutionsResult{}, replayFailure(err)
		}
		out.Runs, out.NextPageToken, out.Superseded = runs, next, out.Superseded+listed-len(runs)
		if len(runs) > 0 || len(next) == 0 {
			break
		}
	}
	return out, nil
}

// ReplayExecution starts one replay of a bulk replay. The request carries
// a replay ID that is the same on every attempt, so a retry after a crash
// finds the replay it started and reports it instead of starting another.
func (r *ReplayActivities) ReplayExecution(ctx context.Context, in workflows.ReplayExecutionInput) (dispatcher.ReplayResult, error) {
	ctx = activities.Acting(ctx) // the bulk replay's tenant
	defer activities.Heartbeat(ctx)()
	res, err := r.ex.Replay(ctx, in.Request)
	return res, replayFailure(err)
}

// CountReplays counts the replays a bulk replay started that have closed,
// by how they closed.
func (r *ReplayActivities) CountReplays(ctx context.Context, in workflows.CountReplaysInput) (workflows.ReplayCounts, error) {
	ctx = activities.Acting(ctx) // the bulk replay's tenant
	c, err := r.ex.CountReplays(ctx, in.BulkReplayID, in.Actions)
	return c, replayFailure(err)
}

// ReplayOutcomes reports the status of replays a bulk replay started
// (bulk replays from before bulkReplayV1).
func (r *ReplayActivities) ReplayOutcomes(ctx context.Context, in workflows.ReplayOutcomesInput) (workflows.ReplayOutcomesResult, error) {
	ctx = activities.Acting(ctx) // the bulk replay's tenant
	st, err := r.ex.RunStatuses(ctx, in.Runs)
	if err != nil {
		return workflows.ReplayOutcomesResult{}, replayFailure(err)
	}
	return workflows.ReplayOutcomesResult{Statuses: st}, nil
}

// replayFailure turns the executions service's refusals into
// non-retryable failures and anything else into retryable ones.
func replayFailure(err error) error {
	if errors.Is(err, errHeld) {
		// Benign: what a pause or a cancel asked for, which the SDK
		// logs at debug level rather than as an error per start held.
		return temporal.NewApplicationErrorWithOptions(err.Error(), workflows.FailureReplayHeld,
			temporal.ApplicationErrorOptions{NonRetryable: true, Category: temporal.ApplicationErrorCategoryBenign})
	}
	switch code := dispatcher.ErrorCode(err); code {
	case "":
		return nil
	case dispatcher.ESTATE, dispatcher.ENOTFOUND, dispatcher.EINVALID:
		return temporal.NewNonRetryableApplicationError(dispatcher.ErrorMessage(err), workflows.FailureReplayRefused, nil)
	default:
		return temporal.NewApplicationError(fmt.Sprint(err), failureReplayUnavailable)
	}
}

package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/dispatcherhq/dispatcher"
)

// Executions is what the bulk-replay activities need of the executions
// service (workflows.Executions, wired in by the process).
type Executions interface {
	// Count returns how many runs f matches.
	Count(ctx context.Context, f dispatcher.ExecutionFilter) (int64, error)
	// ListRuns returns one page of the runs f matches and the token of
	// the next page, empty after the last.
	ListRuns(ctx context.Context, f dispatcher.ExecutionFilter, pageSize int, pageToken []byte) ([]dispatcher.RunRef, []byte, error)
	// Replay starts a replay. Refusals (the dispatch runs, a later run
	// superseded it, nothing failed, an unknown action) are ESTATE,
	// ENOTFOUND or EINVALID errors.
	Replay(ctx context.Context, r dispatcher.ReplayRequest) (dispatcher.ReplayResult, error)
	// RunStatuses returns the execution status of each run.
	RunStatuses(ctx context.Context, runs []dispatcher.RunRef) ([]string, error)
}

// FailureReplayRefused is the failure type of a replay that the executions
// service refused: retrying cannot help, the bulk replay skips it.
const FailureReplayRefused = "ReplayRefused"

// failureReplayUnavailable: Temporal or the audit log did not answer;
// retried.
const failureReplayUnavailable = "ReplayUnavailable"

// CountExecutionsInput is the input of CountExecutions.
type CountExecutionsInput struct {
	Filter dispatcher.ExecutionFilter
}

// ListExecutionsInput is the input of ListExecutions.
type ListExecutionsInput struct {
	Filter    dispatcher.ExecutionFilter
	PageSize  int
	PageToken []byte
}

// ListExecutionsResult is one page of runs.
type ListExecutionsResult struct {
	Runs          []dispatcher.RunRef
	NextPageToken []byte // empty after the last page
}

// ReplayExecutionInput is the input of ReplayExecution.
type ReplayExecutionInput struct {
	Request dispatcher.ReplayRequest
}

// ReplayOutcomesInput is the input of ReplayOutcomes.
type ReplayOutcomesInput struct {
	Runs []dispatcher.RunRef
}

// ReplayOutcomesResult holds the execution status of each run, in order.
type ReplayOutcomesResult struct {
	Statuses []string
}

// CountExecutions counts the runs a bulk replay matches.
func (a *Activities) CountExecutions(ctx context.Context, in CountExecutionsInput) (int64, error) {
	ex, err := a.executionsService()
	if err != nil {
		return 0, err
	}
	n, err := ex.Count(ctx, in.Filter)
	return n, replayFailure(ctx, err)
}

// ListExecutions returns one page of the runs a bulk replay matches.
func (a *Activities) ListExecutions(ctx context.Context, in ListExecutionsInput) (ListExecutionsResult, error) {
	ex, err := a.executionsService()
	if err != nil {
		return ListExecutionsResult{}, err
	}
	runs, next, err := ex.ListRuns(ctx, in.Filter, in.PageSize, in.PageToken)
	if err != nil {
		return ListExecutionsResult{}, replayFailure(ctx, err)
	}
	return ListExecutionsResult{Runs: runs, NextPageToken: next}, nil
}

// ReplayExecution starts one replay of a bulk replay. The request carries
// a replay ID that is the same on every attempt, so a retry after a crash
// finds the replay it started and reports it instead of starting another.
func (a *Activities) ReplayExecution(ctx context.Context, in ReplayExecutionInput) (dispatcher.ReplayResult, error) {
	ex, err := a.executionsService()
	if err != nil {
		return dispatcher.ReplayResult{}, err
	}
	defer heartbeat(ctx)()
	res, err := ex.Replay(ctx, in.Request)
	return res, replayFailure(ctx, err)
}

// heartbeatEvery is how often a running replay start tells Temporal that
// its worker lives; the workflow's heartbeat timeout is a few times it,
// so a crashed worker's start is retried in seconds, not at the start's
// timeout.
const heartbeatEvery = time.Second

// heartbeat records heartbeats until the returned function is called.
func heartbeat(ctx context.Context) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			activity.RecordHeartbeat(ctx)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done) }
}

// ReplayOutcomes reports the status of replays a bulk replay started.
func (a *Activities) ReplayOutcomes(ctx context.Context, in ReplayOutcomesInput) (ReplayOutcomesResult, error) {
	ex, err := a.executionsService()
	if err != nil {
		return ReplayOutcomesResult{}, err
	}
	st, err := ex.RunStatuses(ctx, in.Runs)
	if err != nil {
		return ReplayOutcomesResult{}, replayFailure(ctx, err)
	}
	return ReplayOutcomesResult{Statuses: st}, nil
}

func (a *Activities) executionsService() (Executions, error) {
	if a == nil || a.executions == nil {
		return nil, errors.New("this worker has no executions service: bulk replays cannot run on it")
	}
	return a.executions, nil
}

// replayFailure turns the executions service's refusals into
// non-retryable failures and anything else into retryable ones.
func replayFailure(ctx context.Context, err error) error {
	switch code := dispatcher.ErrorCode(err); code {
	case "":
		return nil
	case dispatcher.ESTATE, dispatcher.ENOTFOUND, dispatcher.EINVALID:
		return permanent(ctx, FailureReplayRefused, dispatcher.ErrorMessage(err))
	default:
		return temporary(ctx, failureReplayUnavailable, fmt.Sprint(err))
	}
}

package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// Release lets the events behind a dispatch that failed and blocks its
// ordering key (dispatcher.OrderingBlock) go on without it, as a replay of
// it does, also once the namespace's retention has deleted it. ESTATE when
// the dispatch blocks no key; ENOTFOUND for another tenant's.
func (e *Executions) Release(ctx context.Context, workflowID, actor string) (dispatcher.Execution, error) {
	if err := owned(ctx, workflowID); err != nil {
		return dispatcher.Execution{}, err
	}
	x, err := e.describe(ctx, workflowID, "")
	var seq string
	switch {
	case dispatcher.ErrorCode(err) == dispatcher.ENOTFOUND:
		// Deleted (the namespace's retention), while the key it failed
		// may still be held: its Sequence says so in visibility.
		found, lerr := e.blockedBy(ctx, workflowID)
		if lerr != nil || found == "" {
			return dispatcher.Execution{}, cmp.Or(lerr, err)
		}
		x, seq = dispatcher.Execution{WorkflowID: workflowID}, found
	case err != nil:
		return dispatcher.Execution{}, err
	default:
		if seq, err = e.sequenceOf(ctx, workflowID, x.RunID); err != nil {
			return dispatcher.Execution{}, err
		}
		if seq == "" {
			// The latest run is a replay, which no Sequence started: the
			// key its first run failed is still held if the replay's
			// release was lost (releaseAfterReplay gives up).
			if seq, err = e.blockedBy(ctx, workflowID); err != nil {
				return dispatcher.Execution{}, err
			}
		}
	}
	refused := dispatcher.Errorf(dispatcher.ESTATE, "dispatch %s does not block an ordering key", workflowID)
	if seq == "" {
		return dispatcher.Execution{}, refused
	}
	st, err := e.sequenceState(ctx, seq)
	if err != nil {
		return dispatcher.Execution{}, err
	}
	if blocking, _, _ := behind(st, x); !blocking && st.Blocked != workflowID {
		return dispatcher.Execution{}, refused
	}
	id := dispatcher.NewID(e.now())
	if _, err := e.audit.RecordAudit(ctx, dispatcher.AuditEntry{ID: id, WorkflowID: workflowID, Ref: id,
		Operation: dispatcher.AuditRelease, RunID: x.RunID, Actor: actor, At: e.now()}); err != nil {
		return dispatcher.Execution{}, err
	}
	if err := e.client.SignalWorkflow(ctx, seq, "", workflows.SignalSequenceRelease, workflowID); err != nil {
		return dispatcher.Execution{}, temporalError(err, "releasing the ordering key")
	}
	return x, nil
}

// sequenceOf returns the Sequence a run of a dispatch ran in (its
// parent), or "" for a run started by the intake or a replay.
func (e *Executions) sequenceOf(ctx context.Context, workflowID, runID string) (string, error) {
	run, err := e.client.DescribeWorkflowExecution(ctx, workflowID, runID)
	if err != nil {
		return "", notFound(temporalError(err, "describing the dispatch"), workflowID, runID)
	}
	return sequenceParent(workflowID, run.GetWorkflowExecutionInfo()), nil
}

// sequenceParent returns the Sequence that started run info of dispatch
// workflowID, or "".
func sequenceParent(workflowID string, info *workflowpb.WorkflowExecutionInfo) string {
	parent := info.GetParentExecution().GetWorkflowId()
	if !dispatcher.IsSequenceWorkflowID(dispatcher.TenantOf(workflowID), parent) {
		return ""
	}
	return parent
}

// blockedBy returns the running Sequence whose key dispatch workflowID
// blocks, by its DispatchBlocked search attribute; "" if none.
func (e *Executions) blockedBy(ctx context.Context, workflowID string) (string, error) {
	infos, _, err := e.list(ctx, fmt.Sprintf("WorkflowType = %s AND %s = %s AND ExecutionStatus = 'Running'",
		quote(workflows.WorkflowSequence), workflows.AttrBlocked.GetName(), quote(workflowID)), 1, nil)
	if err != nil || len(infos) == 0 {
		return "", err
	}
	return infos[0].GetExecution().GetWorkflowId(), nil
}

// sequenceState asks Sequence seq where it is: nothing held when it is
// gone or closed (a canceled or terminated run would answer with what it
// held when it stopped); EUNAVAILABLE when it does not answer (no worker
// within queryTimeout).
//
// A query goes to the worker that has the run in its cache (its sticky
// task queue), and when that worker was killed Temporal holds the query
// for it for 10 s, until it knows the worker is gone: right after a
// crash, when an operator releases keys. So a query not answered within
// stickyQueryTimeout is asked again of any worker, the run's stickiness
// reset. Before, the release answered 503 until then.
func (e *Executions) sequenceState(ctx context.Context, seq string) (workflows.SequenceState, error) {
	var st workflows.SequenceState
	res, err := e.querySequence(ctx, seq, stickyQueryTimeout)
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, new(*serviceerror.DeadlineExceeded)) {
		if _, rerr := e.client.WorkflowService().ResetStickyTaskQueue(ctx, &workflowservice.ResetStickyTaskQueueRequest{
			Namespace: e.namespace, Execution: &commonpb.WorkflowExecution{WorkflowId: seq}}); rerr == nil {
			res, err = e.querySequence(ctx, seq, queryTimeout)
		}
	}
	var gone *serviceerror.NotFound
	switch {
	case errors.As(err, &gone):
		return st, nil
	case err != nil:
		return st, fmt.Errorf("%w (%w)", dispatcher.Errorf(dispatcher.EUNAVAILABLE,
			"asking the ordering key's Sequence %s what it holds: temporal did not answer; try again", seq), err)
	case res.QueryRejected != nil:
		return st, nil
	}
	return st, res.QueryResult.Get(&st)
}

// stickyQueryTimeout is how long the first query of a Sequence waits for
// the worker its run is sticky to (sequenceState); a worker that runs
// answers in milliseconds.
const stickyQueryTimeout = 2 * time.Second

func (e *Executions) querySequence(ctx context.Context, seq string, timeout time.Duration) (*client.QueryWorkflowWithOptionsResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return e.client.QueryWorkflowWithOptions(ctx, &client.QueryWorkflowWithOptionsRequest{
		WorkflowID: seq, QueryType: workflows.QuerySequence, QueryRejectCondition: enums.QUERY_REJECT_CONDITION_NOT_OPEN})
}

// releaseAfterReplay lets the key a replayed dispatch blocked go on: the
// replay is the failed dispatch's second chance, and the events behind it
// no longer wait for it. The replay has started, so this outlives the
// request's deadline by up to 10 s; a request that came again for it
// releases again (a key no longer blocked ignores it). Errors are
// ignored: the key can be released by hand.
func (e *Executions) releaseAfterReplay(ctx context.Context, workflowID, replayedRunID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if seq, err := e.sequenceOf(ctx, workflowID, replayedRunID); err == nil && seq != "" {
		_ = e.client.SignalWorkflow(ctx, seq, "", workflows.SignalSequenceRelease, workflowID)
	}
}

// SequenceActivities are the Temporal-client-side activities of ordering:
// every exported method is an activity, registered under its own name
// (worker.RegisterActivity).
type SequenceActivities struct {
	client client.Client
}

// NewSequenceActivities returns the ordering activities over c.
func NewSequenceActivities(c client.Client) *SequenceActivities {
	return &SequenceActivities{client: c}
}

// maxClosedFailure bounds the error text AwaitDispatch reports;
// maxResetHops the resets of resets it follows.
const maxClosedFailure, maxResetHops = 4 << 10, 20

// failureStillRunning fails an AwaitDispatch attempt while the dispatch
// runs: the retries poll it. The error is benign, so that waiting is not
// logged as an error nor counted as an activity failure every 30 s.
const failureStillRunning = "DispatchStillRunning"

// AwaitDispatch reports how a dispatch run closed, and fails (retryably,
// failureStillRunning) while it runs: the Sequence that started it
// continued as new while it ran (workflows.SequenceState.Running), so it
// is no longer its child, and the activity's retries poll it, holding no
// worker slot meanwhile. A dispatch awaits so the child workflow an
// earlier run of its started (a reset), of any workflow type. A run gone from Temporal (retention, or deleted
// by hand) is workflows.ClosedNotFound. Other errors (Temporal
// unavailable) are retried too.
func (a *SequenceActivities) AwaitDispatch(ctx context.Context, in workflows.AwaitDispatchInput) (workflows.DispatchClosed, error) {
	d, err := a.client.DescribeWorkflowExecution(ctx, in.WorkflowID, in.RunID)
	// A run terminated by a reset (Web UI, CLI) goes on as the reset run:
	// that one is awaited. Before, the Sequence took the reset for a
	// failure, and blocked the key, or ran the next event beside it.
	for hops := 0; err == nil && hops < maxResetHops; hops++ {
		next := d.GetWorkflowExtendedInfo().GetResetRunId()
		if d.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_TERMINATED || next == "" {
			break
		}
		in.RunID = next
		d, err = a.client.DescribeWorkflowExecution(ctx, in.WorkflowID, in.RunID)
	}
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		activity.GetLogger(ctx).Warn("The run awaited (a dispatch its Sequence waits for, or the child workflow of a dispatch's earlier run) is gone from Temporal", "WorkflowID", in.WorkflowID, "RunID", in.RunID)
		return workflows.DispatchClosed{Status: workflows.ClosedNotFound}, nil
	case err != nil:
		return workflows.DispatchClosed{}, fmt.Errorf("describing dispatch %s: %w", in.WorkflowID, err)
	}
	var c workflows.DispatchClosed
	switch d.GetWorkflowExecutionInfo().GetStatus() {
	case enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
		// Benign: the SDK logs it at debug level and counts no failure.
		return c, temporal.NewApplicationErrorWithOptions(fmt.Sprintf("dispatch %s is still running", in.WorkflowID), failureStillRunning,
			temporal.ApplicationErrorOptions{Category: temporal.ApplicationErrorCategoryBenign})
	case enums.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return workflows.DispatchClosed{Status: workflows.ClosedCompleted}, nil
	case enums.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		// Handed on to a run of its own: not the Sequence's to wait for
		// (a Dispatch never does it).
		return workflows.DispatchClosed{Status: workflows.ClosedContinuedAsNew}, nil
	case enums.WORKFLOW_EXECUTION_STATUS_FAILED:
		c.Status = workflows.ClosedFailed
	case enums.WORKFLOW_EXECUTION_STATUS_CANCELED:
		c.Status = workflows.ClosedCanceled
	case enums.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		c.Status = workflows.ClosedTerminated
	case enums.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		c.Status = workflows.ClosedTimedOut
	default:
		return c, fmt.Errorf("dispatch %s has the status %v", in.WorkflowID, d.GetWorkflowExecutionInfo().GetStatus())
	}
	// Closed: Get returns at once, with the error it closed with.
	if err := a.client.GetWorkflow(ctx, in.WorkflowID, in.RunID).Get(ctx, nil); err != nil {
		// Bounded: a workflow may fail with megabytes of text, past what
		// the activity's result may hold.
		c.Failure = err.Error()
		if len(c.Failure) > maxClosedFailure {
			c.Failure = strings.ToValidUTF8(c.Failure[:maxClosedFailure], "") + "…"
		}
	}
	return c, nil
}

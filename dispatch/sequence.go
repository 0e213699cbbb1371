package dispatch

import (
	"cmp"
	"context"
	"fmt"
	"strings"

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
	}
	if seq == "" || !e.blocks(ctx, seq, workflowID) {
		return dispatcher.Execution{}, dispatcher.Errorf(dispatcher.ESTATE, "dispatch %s does not block an ordering key", workflowID)
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
	parent := run.GetWorkflowExecutionInfo().GetParentExecution().GetWorkflowId()
	if !strings.HasPrefix(strings.TrimPrefix(parent, dispatcher.TenantOf(workflowID)+":"), "sequence-") {
		return "", nil
	}
	return parent, nil
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

// blocks reports whether Sequence seq is held by dispatch workflowID.
func (e *Executions) blocks(ctx context.Context, seq, workflowID string) bool {
	v, err := e.client.QueryWorkflow(ctx, seq, "", workflows.QuerySequence)
	if err != nil {
		return false
	}
	var st workflows.SequenceState
	return v.Get(&st) == nil && st.Blocked == workflowID
}

// releaseAfterReplay lets the key a replayed dispatch blocked go on: the
// replay is the failed dispatch's second chance, and the events behind it
// no longer wait for it. Errors are ignored: the key can be released by
// hand.
func (e *Executions) releaseAfterReplay(ctx context.Context, workflowID, replayedRunID string) {
	if seq, err := e.sequenceOf(ctx, workflowID, replayedRunID); err == nil && seq != "" {
		_ = e.client.SignalWorkflow(ctx, seq, "", workflows.SignalSequenceRelease, workflowID)
	}
}

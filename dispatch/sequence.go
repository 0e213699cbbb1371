package dispatch

import (
	"context"
	"strings"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// Release lets the events behind a dispatch that failed and blocks its
// ordering key (dispatcher.OrderingBlock) go on without it, as a replay of
// it does. ESTATE when the dispatch blocks no key; ENOTFOUND for another
// tenant's.
func (e *Executions) Release(ctx context.Context, workflowID, actor string) (dispatcher.Execution, error) {
	x, err := e.describe(ctx, workflowID, "")
	if err != nil {
		return dispatcher.Execution{}, err
	}
	seq, err := e.sequenceOf(ctx, workflowID, x.RunID)
	if err != nil {
		return dispatcher.Execution{}, err
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

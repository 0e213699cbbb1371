package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
)

// The code below is what dispatches recorded before dispatchV1 ran, kept
// so that they replay unchanged (see versions.go). Delete it when no such
// dispatch can still be open.

// attemptV0 ran the first attempt as a local activity cut off at
// LocalTimeout, and handed a timed-out or failed attempt to a regular
// activity at once: a slow first call could overlap the second.
func (d *dispatch) attemptV0(ctx workflow.Context, o *dispatcher.ActionOutcome, a *dispatcher.Action, local, regular string,
	timeout time.Duration, input func(localAttempts int) any, result any) error {
	policy := retryPolicy(a.RetryPolicy)
	localTimeout := d.in.LocalTimeout
	if localTimeout <= 0 {
		localTimeout = legacyLocalTimeout
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: localTimeout,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	o.Attempts = 1
	err := workflow.ExecuteLocalActivity(lctx, local, input(0)).Get(ctx, result)
	if err == nil || !retryable(err) || policy.MaximumAttempts == 1 || ctx.Err() != nil {
		return err
	}
	workflow.GetLogger(ctx).Info("First attempt failed; retrying as a regular activity",
		"ActionID", a.ID, "Error", err)

	policy.MaximumAttempts-- // the local attempt was the first
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		RetryPolicy:         &policy,
	})
	err = workflow.ExecuteActivity(actx, regular, input(1)).Get(ctx, result)
	o.Attempts = 1 + regularAttempts(err, result, policy)
	return err
}

// runChildV0 rendered the child's payload in workflow code.
func (d *dispatch) runChildV0(ctx workflow.Context, j job, o *dispatcher.ActionOutcome, fn dispatcher.FunctionRef, in dispatcher.TaskInput) error {
	payload, err := dispatcher.NewTaskPayload(in, 1)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(dispatcher.ErrorMessage(err), dispatcher.FailureTemplate, nil)
	}
	policy := retryPolicy(j.action.RetryPolicy)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        in.IdempotencyKey,
		TaskQueue:         fn.TaskQueue,
		RetryPolicy:       &policy,
		ParentClosePolicy: enums.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
	})
	o.Attempts = 1
	return workflow.ExecuteChildWorkflow(cctx, fn.Name, payload).Get(ctx, nil)
}

// legacyLocalTimeout was the first attempt's budget when LocalTimeout was
// unset.
const legacyLocalTimeout = 5 * time.Second

// checkReplaysV0 counts the replays that closed since the last check.
func (b *bulkReplay) checkReplaysV0(ctx, lctx workflow.Context) error {
	var res ReplayOutcomesResult
	if err := workflow.ExecuteActivity(lctx, ActivityReplayOutcomes, ReplayOutcomesInput{Runs: b.st.Pending}).Get(ctx, &res); err != nil {
		return err
	}
	var still []dispatcher.RunRef
	for i, run := range b.st.Pending {
		switch status := res.Statuses[i]; status {
		case dispatcher.ExecutionCompleted:
			b.st.Progress.Succeeded++
		case dispatcher.ExecutionFailed, dispatcher.ExecutionCanceled:
			b.st.Progress.Failed++
			b.note(fmt.Sprintf("%s: the replay (run %s) %s", run.WorkflowID, run.RunID, status))
		default:
			still = append(still, run)
		}
	}
	b.st.Pending = still
	return nil
}

// waitForReplaysV0 checks the pending replays until all closed, backing
// off from 1 s to a minute.
func (b *bulkReplay) waitForReplaysV0(ctx, lctx workflow.Context) error {
	wait := time.Second
	for len(b.st.Pending) > 0 {
		if err := b.checkReplaysV0(ctx, lctx); err != nil || len(b.st.Pending) == 0 {
			return err
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return b.continueAsNew(ctx)
		}
		if err := workflow.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, time.Minute)
	}
	return nil
}

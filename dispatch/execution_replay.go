package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// Replay starts a new run of a dispatch on the same workflow ID: by
// default it re-runs only the actions that failed or were canceled in the
// latest run, with the configuration that run used. The new run carries
// a replay ID that changes its Idempotency-Keys and Message-IDs, points
// back at the run it replays (search attribute and memo), and is recorded
// in the audit log.
//
// It refuses (ESTATE) a dispatch that is still running, a run that is not
// the latest, and a default replay of a run in which nothing failed; an
// action the configuration does not have is EINVALID. With the request's
// ReplayID already started, it reports that run instead of starting
// another, so a caller that retries never replays twice.
func (e *Executions) Replay(ctx context.Context, r dispatcher.ReplayRequest) (dispatcher.ReplayResult, error) {
	if r.Config == "" {
		r.Config = dispatcher.ReplayConfigOriginal
	}
	if r.Config != dispatcher.ReplayConfigOriginal && r.Config != dispatcher.ReplayConfigCurrent {
		return dispatcher.ReplayResult{}, dispatcher.Errorf(dispatcher.EINVALID, "config: must be %s or %s, not %q",
			dispatcher.ReplayConfigOriginal, dispatcher.ReplayConfigCurrent, r.Config)
	}
	latest, err := e.describe(ctx, r.WorkflowID, "")
	if err != nil {
		return dispatcher.ReplayResult{}, err
	}
	if r.ReplayID != "" && latest.Replay.ID == r.ReplayID {
		res := dispatcher.ReplayResult{WorkflowID: r.WorkflowID, RunID: latest.RunID, ReplayOf: latest.Replay.Of,
			ReplayID: r.ReplayID, Config: r.Config, AlreadyStarted: true}
		// The first attempt may have stopped between the start and the
		// audit entry; recording is idempotent.
		return res, e.recordReplay(ctx, r, res)
	}
	switch {
	case !replayable(latest.Status):
		return dispatcher.ReplayResult{}, dispatcher.Errorf(dispatcher.ESTATE,
			"dispatch %s is still %s (run %s): wait for it to finish, or cancel it, before replaying it", r.WorkflowID, latest.Status, latest.RunID)
	case r.RunID != "" && r.RunID != latest.RunID:
		return dispatcher.ReplayResult{}, dispatcher.Errorf(dispatcher.ESTATE,
			"run %s of dispatch %s has been superseded by run %s; replay the latest run", r.RunID, r.WorkflowID, latest.RunID)
	}
	src, err := e.readRun(ctx, r.WorkflowID, latest.RunID)
	if err != nil {
		return dispatcher.ReplayResult{}, err
	}
	cfg, err := e.replayConfig(ctx, r, latest, src)
	if err != nil {
		return dispatcher.ReplayResult{}, err
	}
	actions, err := replayActions(r, latest, src, cfg)
	if err != nil {
		return dispatcher.ReplayResult{}, err
	}
	if r.ReplayID == "" {
		r.ReplayID = dispatcher.NewID(e.now())
	}
	in := workflows.DispatchInput{Event: src.input.Event, Only: actions, Run: r.ReplayID, LocalTimeout: e.localTimeout}
	if r.Config == dispatcher.ReplayConfigOriginal {
		in.Config = cfg
	}
	run, err := e.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        r.WorkflowID,
		TaskQueue: e.taskQueue,
		// Replays alone may reuse the workflow ID of a closed run; the
		// intake keeps REJECT_DUPLICATE, so an event still dispatches once.
		WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy:                 enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		EnableEagerStart:                         e.eager,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrEventType.ValueSet(in.Event.Type),
			workflows.AttrEventID.ValueSet(in.Event.ID),
			workflows.AttrReplayOf.ValueSet(latest.RunID),
		),
		Memo: map[string]any{
			workflows.MemoReplayOf: latest.RunID, workflows.MemoReplayID: r.ReplayID,
			workflows.MemoRequestedBy: r.Actor, workflows.MemoBulkReplayID: r.BulkReplayID,
		},
	}, workflows.WorkflowDispatch, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &started):
		return dispatcher.ReplayResult{}, dispatcher.Errorf(dispatcher.ESTATE,
			"dispatch %s started another run (%s) meanwhile; look at it before replaying again", r.WorkflowID, started.RunId)
	case err != nil:
		return dispatcher.ReplayResult{}, temporalError(err, "starting the replay")
	}
	res := dispatcher.ReplayResult{WorkflowID: r.WorkflowID, RunID: run.GetRunID(), ReplayOf: latest.RunID,
		ReplayID: r.ReplayID, Actions: actions, Config: r.Config}
	return res, e.recordReplay(ctx, r, res)
}

// replayConfig returns the configuration that decides which actions
// exist: the replayed run's for the original, today's for the current
// one (nil when no DispatcherSource is wired: the run checks it then).
func (e *Executions) replayConfig(ctx context.Context, r dispatcher.ReplayRequest, latest dispatcher.Execution, src runRecord) (*dispatcher.Config, error) {
	if r.Config == dispatcher.ReplayConfigOriginal {
		if src.config == nil {
			return nil, dispatcher.Errorf(dispatcher.ESTATE,
				"run %s of dispatch %s recorded no configuration (it failed before loading one); replay it with config %q",
				latest.RunID, r.WorkflowID, dispatcher.ReplayConfigCurrent)
		}
		return src.config, nil
	}
	if e.dispatchers == nil {
		return nil, nil
	}
	ds, err := e.dispatchers.DispatchersByEventType(ctx, src.input.Event.Type)
	if err != nil {
		return nil, err
	}
	return &dispatcher.Config{Dispatchers: ds}, nil
}

// replayActions returns the action ids a replay runs: the named ones,
// each of which must exist in cfg, or those that did not succeed in the
// replayed run. An empty result means every action, which is only chosen
// for a run that failed before running any.
func replayActions(r dispatcher.ReplayRequest, latest dispatcher.Execution, src runRecord, cfg *dispatcher.Config) ([]string, error) {
	if len(r.Actions) > 0 {
		var out []string
		for i, id := range r.Actions {
			if cfg != nil && !hasAction(cfg, id) {
				return nil, dispatcher.Errorf(dispatcher.EINVALID, "actions[%d]: the %s configuration of event type %q has no action %q",
					i, r.Config, src.input.Event.Type, id)
			}
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
		return out, nil
	}
	var failed []string
	for _, o := range src.outcomes {
		if o.Status != dispatcher.OutcomeSucceeded && !slices.Contains(failed, o.ActionID) {
			failed = append(failed, o.ActionID)
		}
	}
	switch {
	case len(failed) > 0 && cfg != nil:
		for _, id := range failed {
			if !hasAction(cfg, id) {
				return nil, dispatcher.Errorf(dispatcher.ESTATE,
					"action %s that failed in run %s no longer exists in the %s configuration; replay with the original one, or name the actions",
					id, latest.RunID, r.Config)
			}
		}
		return failed, nil
	case len(failed) > 0:
		return failed, nil
	case src.closed:
		return nil, dispatcher.Errorf(dispatcher.ESTATE,
			"no action failed in run %s of dispatch %s; name the actions to run them again", latest.RunID, r.WorkflowID)
	case src.config == nil && src.input.Config == nil:
		return nil, nil // it failed before any action ran: run them all
	default:
		return nil, dispatcher.Errorf(dispatcher.ESTATE,
			"run %s of dispatch %s ended without recording its outcomes (%s); name the actions to run again",
			latest.RunID, r.WorkflowID, latest.Status)
	}
}

func hasAction(cfg *dispatcher.Config, id string) bool {
	for _, d := range cfg.Dispatchers {
		for _, a := range d.Actions {
			if a.ID == id {
				return true
			}
		}
	}
	return false
}

func (e *Executions) recordReplay(ctx context.Context, r dispatcher.ReplayRequest, res dispatcher.ReplayResult) error {
	err := e.audit.RecordAudit(ctx, dispatcher.AuditEntry{
		ID: dispatcher.NewID(e.now()), WorkflowID: r.WorkflowID, Ref: res.ReplayID, Operation: dispatcher.AuditReplay,
		RunID: res.ReplayOf, NewRunID: res.RunID, Actor: r.Actor, Actions: res.Actions, Config: res.Config,
		BulkReplayID: r.BulkReplayID, At: e.now(),
	})
	if err != nil {
		return fmt.Errorf("replay %s of dispatch %s started as run %s, but its audit entry was not recorded: %w",
			res.ReplayID, r.WorkflowID, res.RunID, err)
	}
	return nil
}

// Cancel requests the cancellation of a dispatch's running run: actions
// that have not finished end canceled (a timer waiting for a
// startTimestamp never fires). It returns the run, and ESTATE when the
// dispatch is not running.
func (e *Executions) Cancel(ctx context.Context, workflowID, actor string) (dispatcher.Execution, error) {
	x, err := e.describe(ctx, workflowID, "")
	if err != nil {
		return dispatcher.Execution{}, err
	}
	if replayable(x.Status) {
		return dispatcher.Execution{}, dispatcher.Errorf(dispatcher.ESTATE, "dispatch %s is not running: its latest run %s is %s", workflowID, x.RunID, x.Status)
	}
	if err := e.client.CancelWorkflow(ctx, workflowID, x.RunID); err != nil {
		return dispatcher.Execution{}, notFound(temporalError(err, "canceling the dispatch"), workflowID, x.RunID)
	}
	id := dispatcher.NewID(e.now())
	err = e.audit.RecordAudit(ctx, dispatcher.AuditEntry{
		ID: id, WorkflowID: workflowID, Ref: id, Operation: dispatcher.AuditCancel, RunID: x.RunID, Actor: actor, At: e.now(),
	})
	if err != nil {
		return dispatcher.Execution{}, fmt.Errorf("dispatch %s was canceled, but the audit entry was not recorded: %w", workflowID, err)
	}
	return x, nil
}

package dispatch

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// ReplayAgainAfter is how long after a replay was asked for a request
// without a runId is taken for that request again rather than for one to
// replay that replay: longer than a client waits before it sends a
// request again.
const ReplayAgainAfter = 30 * time.Second

// Replay starts a new run of a dispatch on the same workflow ID: by
// default it re-runs only the actions that failed or were canceled in the
// latest run, with the configuration that run used. The new run carries
// a replay ID that changes its Idempotency-Keys and Message-IDs, points
// back at the run it replays (search attribute and memo), and is recorded
// in the audit log.
//
// A run is replayed at most once, however many requests race: the replay
// ID is derived from the run, the audit entry that claims it is written
// before the start (its ref is the replay ID, unique per dispatch), and
// the start carries the replay ID as its request ID, which Temporal
// deduplicates. A request for a run already replayed, or with an
// Idempotency-Key seen before, answers with that replay (AlreadyStarted).
//
// It refuses (ESTATE) a dispatch that is still running, a run that is not
// the latest, a request that names no run (nor an Idempotency-Key) whose
// latest run is another request's replay asked for less than
// ReplayAgainAfter ago (the same request again gets its answer), and a
// default replay of a run in which nothing failed; an
// action the configuration does not have is EINVALID.
func (e *Executions) Replay(ctx context.Context, r dispatcher.ReplayRequest) (dispatcher.ReplayResult, error) {
	// Before the Idempotency-Key's look-up, which would answer another
	// tenant's earlier replay of this workflow ID.
	if err := owned(ctx, r.WorkflowID); err != nil {
		return dispatcher.ReplayResult{}, err
	}
	if err := checkRunID(r.RunID); err != nil {
		return dispatcher.ReplayResult{}, err
	}
	if r.Config == "" {
		r.Config = dispatcher.ReplayConfigOriginal
	}
	if r.Config != dispatcher.ReplayConfigOriginal && r.Config != dispatcher.ReplayConfigCurrent {
		return dispatcher.ReplayResult{}, dispatcher.Errorf(dispatcher.EINVALID, "config: must be %s or %s, not %q",
			dispatcher.ReplayConfigOriginal, dispatcher.ReplayConfigCurrent, r.Config)
	}
	key := ""
	if r.IdempotencyKey != "" {
		key = idempotencyKey(r.Actor, r.IdempotencyKey)
		prev, ok, err := e.audit.AuditByKey(ctx, r.WorkflowID, key)
		if err != nil {
			return dispatcher.ReplayResult{}, err
		}
		same := false
		if ok {
			if same, err = e.sameRequest(ctx, r, prev); err != nil {
				return dispatcher.ReplayResult{}, err
			}
		}
		if ok && !same {
			return dispatcher.ReplayResult{}, dispatcher.Errorf(dispatcher.EINVALID,
				"Idempotency-Key: already used for another replay of %s (run %s, actions %s, config %s); a new request needs a new key",
				r.WorkflowID, prev.RunID, strings.Join(prev.Actions, ","), prev.Config)
		}
		if ok && prev.NewRunID != "" {
			return replayedAs(prev), nil
		}
		if ok {
			r.RunID = prev.RunID // claimed but maybe not started: finish it
		}
	}
	latest, err := e.describe(ctx, r.WorkflowID, "")
	if err != nil {
		return dispatcher.ReplayResult{}, err
	}
	// A request that names no run, sent again (a double click, a client's
	// retry) once the replay it asked for is the latest run, would replay
	// that replay: its calls again, under other keys. The same request of
	// the same requester is answered as the first was, its replay running
	// or ended; another is refused where it would start one (below). Recent is since the replay
	// was asked for (the audit trail's clock) or began (the server's),
	// whichever is later: a request may start its replay long after it
	// claimed it.
	recent, same, last := false, false, dispatcher.AuditEntry{}
	if r.RunID == "" && key == "" && latest.Replay.Of != "" {
		found := false
		if latest.Replay.ID != "" {
			if last, found, err = e.audit.FindAudit(ctx, r.WorkflowID, dispatcher.AuditReplay, latest.Replay.ID); err != nil {
				return dispatcher.ReplayResult{}, err
			}
		}
		recent = time.Since(latest.Start) < ReplayAgainAfter || found && e.now().Sub(last.At) < ReplayAgainAfter
		if found && last.Actor == r.Actor {
			if same, err = e.sameRequest(ctx, r, last); err != nil {
				return dispatcher.ReplayResult{}, err
			}
		}
	}
	target := cmp.Or(r.RunID, latest.RunID)
	replayID := replayIDOf(r.WorkflowID, target)
	prev, claimed, err := e.audit.FindAudit(ctx, r.WorkflowID, dispatcher.AuditReplay, replayID)
	switch {
	case err != nil:
		return dispatcher.ReplayResult{}, err
	case claimed && (prev.NewRunID != "" || latest.Replay.ID == replayID):
		want, err := e.wanted(ctx, r, target)
		if err != nil {
			return dispatcher.ReplayResult{}, err
		}
		if prev.NewRunID == "" {
			prev.NewRunID = latest.RunID // started; its requester stopped before saying so
			e.releaseAfterReplay(ctx, r.WorkflowID, prev.RunID)
			if err := e.audit.SetAuditRun(ctx, r.WorkflowID, dispatcher.AuditReplay, replayID, latest.RunID); err != nil {
				return dispatcher.ReplayResult{}, err
			}
		}
		if !covers(prev, r.Config, want) {
			return dispatcher.ReplayResult{}, otherReplay(r.WorkflowID, prev, latest.RunID)
		}
		return replayedAs(prev), nil
	case recent && same:
		// Sent again moments after, its replay maybe still running (a
		// double click, a client's retry): answered as it was. Before,
		// while that replay ran, refused as "being replayed". One whose
		// request stopped before the audit trail said it started (the
		// write failed: a 503) is recorded now; before, its retry was
		// refused, the replay's run having made every action already.
		if last.NewRunID == "" {
			last.NewRunID = latest.RunID
			e.releaseAfterReplay(ctx, r.WorkflowID, last.RunID)
			if err := e.audit.SetAuditRun(ctx, r.WorkflowID, dispatcher.AuditReplay, last.Ref, latest.RunID); err != nil {
				return dispatcher.ReplayResult{}, err
			}
		}
		return replayedAs(last), nil
	case !replayable(latest.Status) && latest.Replay.Of != "":
		// Someone replayed it meanwhile: "wait, then replay" would have
		// the caller replay that replay, which may well succeed.
		return dispatcher.ReplayResult{}, dispatcher.Errorf(dispatcher.ESTATE,
			"dispatch %s is being replayed: run %s, a replay of run %s, is still %s; follow it (replay it only if it fails), or cancel it before replaying it",
			r.WorkflowID, latest.RunID, latest.Replay.Of, latest.Status)
	case !replayable(latest.Status):
		return dispatcher.ReplayResult{}, dispatcher.Errorf(dispatcher.ESTATE,
			"dispatch %s is still %s (run %s): wait for it to finish, or cancel it, before replaying it", r.WorkflowID, latest.Status, latest.RunID)
	case target != latest.RunID:
		if _, err := e.describe(ctx, r.WorkflowID, target); err != nil {
			return dispatcher.ReplayResult{}, err // not a run of the dispatch
		}
		return dispatcher.ReplayResult{}, dispatcher.Errorf(dispatcher.ESTATE,
			"run %s of dispatch %s has been superseded by run %s; replay the latest run", target, r.WorkflowID, latest.RunID)
	}
	src, err := e.readRun(ctx, r.WorkflowID, latest.RunID)
	if err != nil {
		return dispatcher.ReplayResult{}, err
	}
	if madeAll(src, r.Actions) || r.BulkReplayID != "" && madeByReplay(src, r.Actions) {
		return dispatcher.ReplayResult{}, dispatcher.Errorf(dispatcher.ESTATE,
			"run %s of dispatch %s made %s already; it is %s with other actions (%s): replay those (name no actions, or name them)",
			latest.RunID, r.WorkflowID, strings.Join(r.Actions, ", "), latest.Status, strings.Join(notMade(src), ", "))
	}
	if r.BulkReplayID != "" && src.input.Run != "" && len(r.Actions) > 0 {
		// A bulk replay sent again makes again only what its replay did
		// not (madeByReplay).
		r.Actions = slices.DeleteFunc(slices.Clone(r.Actions), func(id string) bool { return succeededIn(src, id) })
	}
	cfg, err := e.replayConfig(ctx, r, latest, src)
	if err != nil {
		return dispatcher.ReplayResult{}, err
	}
	actions, err := replayActions(r, latest, src, cfg)
	if err != nil {
		return dispatcher.ReplayResult{}, err
	}
	if actions, err = e.settleChildren(ctx, r, latest, src, actions); err != nil {
		return dispatcher.ReplayResult{}, err
	}
	if cfg, err = e.skipAgain(ctx, r, latest, src, cfg, actions); err != nil {
		return dispatcher.ReplayResult{}, err
	}
	if err := e.held(ctx, r.BulkReplayID); err != nil {
		return dispatcher.ReplayResult{}, err
	}
	if recent {
		return dispatcher.ReplayResult{}, dispatcher.Errorf(dispatcher.ESTATE,
			"dispatch %s was replayed moments ago: run %s, a replay of run %s (asked for by %s), is %s already; a request without a runId sent again would replay that replay. "+
				"To replay it, name it: {\"runId\": %q} (or send an Idempotency-Key)",
			r.WorkflowID, latest.RunID, latest.Replay.Of, cmp.Or(latest.Replay.RequestedBy, "someone"), latest.Status, latest.RunID)
	}
	claim := dispatcher.AuditEntry{ID: dispatcher.NewID(e.now()), WorkflowID: r.WorkflowID, Ref: replayID, Operation: dispatcher.AuditReplay,
		RunID: latest.RunID, Actor: r.Actor, Actions: actions, Config: r.Config, BulkReplayID: r.BulkReplayID,
		IdempotencyKey: key, At: e.now()}
	created, err := e.audit.RecordAudit(ctx, claim)
	if err != nil {
		return dispatcher.ReplayResult{}, err
	}
	other := false // another request's replay, which this one's does not cover
	if !created {
		// Another request claimed this replay a moment ago: answer with
		// its run if it has one; if not, starting it too is safe, as the
		// start is deduplicated by its request ID.
		if prev, _, err = e.audit.FindAudit(ctx, r.WorkflowID, dispatcher.AuditReplay, replayID); err != nil {
			return dispatcher.ReplayResult{}, err
		}
		if prev.NewRunID != "" && !covers(prev, r.Config, actions) {
			return dispatcher.ReplayResult{}, otherReplay(r.WorkflowID, prev, prev.NewRunID)
		}
		if prev.NewRunID != "" {
			return replayedAs(prev), nil
		}
		if prev.BulkReplayID != "" && prev.BulkReplayID != r.BulkReplayID {
			switch op, err := e.lastControl(ctx, prev.BulkReplayID); {
			case err != nil:
				return dispatcher.ReplayResult{}, err
			case op == dispatcher.AuditPause: // its bulk replay starts it once resumed
				return dispatcher.ReplayResult{}, dispatcher.Errorf(dispatcher.ESTATE,
					"the replay of run %s of dispatch %s is claimed by bulk replay %s, which is paused: it starts it once resumed",
					latest.RunID, r.WorkflowID, prev.BulkReplayID)
			case op == dispatcher.AuditCancel:
				// Canceled after its claim, before its start (its worker
				// died with the start in flight, and the cancel holds the
				// retry): it never starts it, so this request does, as
				// the claim, the audit trail's record, has it (its
				// actions, configuration, requester and bulk replay, where
				// it counts), under the same request ID should the
				// canceled one's start still be on its way; as any
				// request that loses a claim. Before, it was refused, and
				// no replay of the run could ever be made.
			}
		}
		other = !covers(prev, r.Config, actions)
		if prev.Config != r.Config || !sameSet(prev.Actions, actions) {
			// Start the replay it claimed, not this request's: the audit
			// trail names its configuration and actions.
			r.Config, r.Actions = prev.Config, prev.Actions
			if cfg, err = e.replayConfig(ctx, r, latest, src); err != nil {
				return dispatcher.ReplayResult{}, err
			}
			if cfg, err = e.skipAgain(ctx, r, latest, src, cfg, prev.Actions); err != nil {
				return dispatcher.ReplayResult{}, err
			}
		}
		claim = prev
	}
	// The request ID deduplicates a start only while the run it started is
	// the latest: look again, so a request that stalled since its first
	// look neither starts the replay a second time nor replays a run that
	// is no longer the latest.
	now, err := e.describe(ctx, r.WorkflowID, "")
	switch {
	case err != nil:
		return dispatcher.ReplayResult{}, err
	case now.Replay.ID == replayID:
		// Started already, maybe by a request that lost the claim to
		// this one (it may start the run too): the claimant still says
		// it started the replay, and it alone.
		claim.NewRunID = now.RunID
		if err := e.audit.SetAuditRun(ctx, r.WorkflowID, dispatcher.AuditReplay, replayID, now.RunID); err != nil || other {
			return dispatcher.ReplayResult{}, cmp.Or(err, otherReplay(r.WorkflowID, claim, now.RunID))
		}
		res := replayedAs(claim)
		res.AlreadyStarted = !created
		return res, nil
	case now.RunID != latest.RunID:
		return dispatcher.ReplayResult{}, dispatcher.Errorf(dispatcher.ESTATE,
			"run %s of dispatch %s has been superseded by run %s; replay the latest run", latest.RunID, r.WorkflowID, now.RunID)
	}
	carried, err := e.carried(ctx, r.WorkflowID, latest.RunID, src, claim.Actions)
	if err != nil {
		return dispatcher.ReplayResult{}, err
	}
	in := workflows.DispatchInput{Event: src.input.Event, Only: claim.Actions, Run: replayID, Keys: keptKeys(src, cfg),
		LocalCallLimit: e.localCallLimit, Version: workflows.DispatchVersion, Carried: carried}
	if claim.Config == dispatcher.ReplayConfigOriginal {
		in.Config = cfg
	}
	runID, err := e.startReplay(ctx, r.WorkflowID, replayID, in, claim)
	if err != nil {
		return dispatcher.ReplayResult{}, err
	}
	claim.NewRunID = runID
	e.releaseAfterReplay(ctx, r.WorkflowID, latest.RunID)
	if err := e.audit.SetAuditRun(ctx, r.WorkflowID, dispatcher.AuditReplay, replayID, runID); err != nil {
		return dispatcher.ReplayResult{}, fmt.Errorf("replay %s of dispatch %s started as run %s, but the audit trail does not say so: %w",
			replayID, r.WorkflowID, runID, err)
	}
	if other {
		// Started all the same: the claimant's request may have stopped.
		return dispatcher.ReplayResult{}, otherReplay(r.WorkflowID, claim, runID)
	}
	res := replayedAs(claim)
	res.AlreadyStarted = !created
	return res, nil
}

// covers reports whether the replay prev records made what a request
// asks for: with the request's configuration, each of actions (those it
// names, or else those it would replay). A request answered with a
// replay that does not was read as done, though none of it ran.
func covers(prev dispatcher.AuditEntry, config string, actions []string) bool {
	return prev.Config == config && !slices.ContainsFunc(actions, func(a string) bool { return !slices.Contains(prev.Actions, a) })
}

// sameRequest reports whether r asks for the replay prev records: its run
// and configuration, and the actions it named or, naming none, made (a
// request that named some would answer for all).
func (e *Executions) sameRequest(ctx context.Context, r dispatcher.ReplayRequest, prev dispatcher.AuditEntry) (bool, error) {
	if !asked(r, prev) || len(r.Actions) > 0 {
		return asked(r, prev), nil
	}
	want, err := e.wanted(ctx, r, prev.RunID)
	return err == nil && covers(prev, r.Config, want), err
}

// wanted returns the actions r asks to replay of run runID: those it
// names, or else those the run did not make — failed (but superseded),
// canceled (but a child that completed), and with the current
// configuration skipped — as the run's history has them (its search
// attributes may be cut short).
func (e *Executions) wanted(ctx context.Context, r dispatcher.ReplayRequest, runID string) ([]string, error) {
	if len(r.Actions) > 0 {
		return r.Actions, nil
	}
	src, err := e.readRun(ctx, r.WorkflowID, runID)
	if err != nil {
		return nil, err
	}
	var want []string
	for _, o := range src.outcomes {
		if o.Status != dispatcher.OutcomeSucceeded && o.ErrorClass != dispatcher.FailureSuperseded &&
			(o.Status != dispatcher.OutcomeSkipped || r.Config == dispatcher.ReplayConfigCurrent) {
			want = append(want, o.ActionID)
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	// Nor those whose child workflows completed after a cancel, which a
	// replay leaves out as done. Refused (a child still running, or all
	// done), the request could not have been claimed: all are asked.
	settled, err := e.settleChildren(ctx, r, dispatcher.Execution{RunID: runID}, src, want)
	if err != nil && dispatcher.ErrorCode(err) != dispatcher.ESTATE {
		return nil, err
	}
	if err == nil {
		want = settled
	}
	return want, nil
}

// otherReplay refuses a request that another request's replay, prev,
// run latest since, does not cover.
func otherReplay(workflowID string, prev dispatcher.AuditEntry, latest string) error {
	return dispatcher.Errorf(dispatcher.ESTATE,
		"run %s of dispatch %s was replayed already, as run %s, of actions %s with the %s configuration: not what this request asks; to run that, replay the latest run, %s, naming its actions",
		prev.RunID, workflowID, prev.NewRunID, strings.Join(prev.Actions, ","), prev.Config, latest)
}

// replayIDOf derives the replay ID of run runID of a dispatch: the same
// for every request to replay that run.
func replayIDOf(workflowID, runID string) string {
	sum := sha256.Sum256([]byte("replay\x00" + workflowID + "\x00" + runID))
	return hex.EncodeToString(sum[:12])
}

// idempotencyKey is what the audit trail keeps of a requester's
// Idempotency-Key: a hash, scoped to the requester.
func idempotencyKey(actor, key string) string {
	sum := sha256.Sum256([]byte(actor + "\x00" + key))
	return hex.EncodeToString(sum[:16])
}

// asked reports whether r asks for the replay that prev, recorded under
// r's Idempotency-Key, is: what r leaves out (run, actions) takes what
// prev chose.
func asked(r dispatcher.ReplayRequest, prev dispatcher.AuditEntry) bool {
	return r.Config == prev.Config && (r.RunID == "" || r.RunID == prev.RunID) &&
		(len(r.Actions) == 0 || sameSet(r.Actions, prev.Actions))
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// replayedAs is the answer for the replay an audit entry records.
func replayedAs(e dispatcher.AuditEntry) dispatcher.ReplayResult {
	return dispatcher.ReplayResult{WorkflowID: e.WorkflowID, RunID: e.NewRunID, ReplayOf: e.RunID, ReplayID: e.Ref,
		Actions: e.Actions, Config: e.Config, AlreadyStarted: true, BulkReplayID: e.BulkReplayID}
}

// startReplay starts the run of a replay. It calls the service itself,
// not the SDK's ExecuteWorkflow, for the one option the SDK does not
// offer: the request ID, which Temporal uses to answer a repeated start
// with the run it started, while that run is the dispatch's latest.
func (e *Executions) startReplay(ctx context.Context, workflowID, replayID string, in workflows.DispatchInput, claim dispatcher.AuditEntry) (string, error) {
	input, err := e.dc.ToPayloads(in)
	if err != nil {
		return "", err
	}
	memo, err := payloads(e.dc, map[string]any{
		workflows.MemoReplayOf: claim.RunID, workflows.MemoReplayID: replayID,
		workflows.MemoRequestedBy: claim.Actor, workflows.MemoBulkReplayID: claim.BulkReplayID,
	})
	if err != nil {
		return "", err
	}
	attrs := map[string]any{
		workflows.AttrEventType.GetName(): in.Event.Type,
		workflows.AttrEventID.GetName():   in.Event.ID,
		workflows.AttrReplayOf.GetName():  claim.RunID,
	}
	if in.Config != nil {
		// The run then upserts none (dispatchV2).
		ids := in.Config.DispatcherIDs(in.Only)
		for _, o := range in.Carried {
			if !slices.Contains(ids, o.DispatcherID) {
				ids = append(ids, o.DispatcherID)
			}
		}
		attrs[workflows.AttrDispatcherIDs.GetName()] = workflows.BoundKeywords(ids)
		if r := in.Config.SkipReason(in.Only); r != "" {
			attrs[workflows.AttrSkipped.GetName()] = r
		}
	}
	if claim.BulkReplayID != "" {
		attrs[workflows.AttrBulkReplayID.GetName()] = claim.BulkReplayID
	}
	if t := dispatcher.TenantOf(workflowID); t != "" {
		attrs[workflows.AttrTenant.GetName()] = t
	}
	// Search attributes are never encrypted: visibility must read them.
	sa, err := payloads(converter.GetDefaultDataConverter(), attrs)
	if err != nil {
		return "", err
	}
	res, err := e.client.WorkflowService().StartWorkflowExecution(ctx, &workflowservice.StartWorkflowExecutionRequest{
		Namespace:    e.namespace,
		WorkflowId:   workflowID,
		WorkflowType: &commonpb.WorkflowType{Name: workflows.WorkflowDispatch},
		TaskQueue:    &taskqueuepb.TaskQueue{Name: e.taskQueue, Kind: enums.TASK_QUEUE_KIND_NORMAL},
		Input:        input,
		Identity:     "dispatcher",
		RequestId:    "replay-" + replayID,
		// Replays alone may reuse the workflow ID of a closed run; the
		// intake keeps REJECT_DUPLICATE, so an event still dispatches once.
		WorkflowIdReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIdConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		Memo:                     &commonpb.Memo{Fields: memo},
		SearchAttributes:         &commonpb.SearchAttributes{IndexedFields: sa},
	})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &started):
		return "", dispatcher.Errorf(dispatcher.ESTATE,
			"dispatch %s started another run (%s) meanwhile; look at it before replaying again", workflowID, started.RunId)
	case err != nil:
		return "", temporalError(err, "starting the replay")
	}
	return res.GetRunId(), nil
}

// payloads encodes values for a memo or search attributes with dc.
func payloads(dc converter.DataConverter, values map[string]any) (map[string]*commonpb.Payload, error) {
	out := make(map[string]*commonpb.Payload, len(values))
	for k, v := range values {
		p, err := dc.ToPayload(v)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", k, err)
		}
		out[k] = p
	}
	return out, nil
}

// replayConfig returns the configuration that decides which actions
// exist: the replayed run's for the original, today's for the current
// one (nil when no DispatcherSource is wired: the run checks it then).
//
// The original configuration decides which actions run and what they
// send, not how a function is reached: its functions are called as they
// are now. A function given a rate or concurrency limit since (to spare
// it while it failed) is called through its gate, not around it, and one
// given a longer timeout (it was too slow) is given the time.
func (e *Executions) replayConfig(ctx context.Context, r dispatcher.ReplayRequest, latest dispatcher.Execution, src runRecord) (*dispatcher.Config, error) {
	if r.Config == dispatcher.ReplayConfigOriginal {
		if src.config == nil {
			return nil, dispatcher.Errorf(dispatcher.ESTATE,
				"run %s of dispatch %s recorded no configuration (it failed before loading one); replay it with config %q",
				latest.RunID, r.WorkflowID, dispatcher.ReplayConfigCurrent)
		}
		cfg := *src.config
		if e.dispatchers != nil {
			if err := cfg.ResolveFunctions(ctx, e.dispatchers.FindFunctionByName); err != nil {
				return nil, err
			}
		}
		return &cfg, nil
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

// skipAgain returns the configuration a replay runs with: the original
// one, cfg, with the dispatchers paused since its run skipped
// (SkipPaused), as a new event's dispatch skips them (a pause is how an
// admin stops a dispatcher, and replaying its failures would otherwise
// run it behind their back; their actions end skipped, and are replayed
// by skipReason paused once it is resumed), and those deleted or moved to
// another event type since skipped for good (SkipRemoved); or the
// current one as it is,
// its run deciding pauses and filters itself. A replay whose actions
// would all be skipped so, by a pause or, with the current
// configuration, by a filter that fails for the event, is refused
// (ESTATE), naming each dispatcher and what to change: its run would
// skip them again and complete, which a bulk replay counted as a replay
// that succeeded. A filter false for the event is no such reason: it
// did its job, and a replay that runs nothing else completes as a new
// event would (a dispatch that failed before it read its configuration
// has no other way out).
func (e *Executions) skipAgain(ctx context.Context, r dispatcher.ReplayRequest, latest dispatcher.Execution, src runRecord, cfg *dispatcher.Config, actions []string) (*dispatcher.Config, error) {
	if cfg == nil || e.dispatchers == nil {
		return cfg, nil // the run checks it
	}
	original := r.Config == dispatcher.ReplayConfigOriginal
	var out dispatcher.Config
	if original {
		now, err := e.dispatchers.DispatchersByEventType(ctx, src.input.Event.Type)
		if err != nil {
			return nil, err
		}
		// The actions it does not run are pinned as they were: those it
		// carries (carried) are replayed from it later.
		out = cfg.SkipSince(actions, func(d dispatcher.Dispatcher) string {
			switch i := slices.IndexFunc(now, func(n dispatcher.Dispatcher) bool { return n.ID == d.ID }); {
			case i < 0:
				return dispatcher.SkipRemoved
			case now[i].Paused:
				return dispatcher.SkipPaused
			}
			return ""
		}, func(d dispatcher.Dispatcher, a dispatcher.Action) bool {
			i := slices.IndexFunc(now, func(n dispatcher.Dispatcher) bool { return n.ID == d.ID })
			return slices.ContainsFunc(now[i].Actions, func(n dispatcher.Action) bool { return n.ID == a.ID })
		})
	} else {
		out = cfg.ForEvent(src.input.Event, actions...) // as its run will decide
	}
	runs := slices.ContainsFunc(actions, out.HasAction)
	if len(actions) == 0 { // every action
		runs = slices.ContainsFunc(out.Dispatchers, func(d dispatcher.Dispatcher) bool { return len(d.Actions) > 0 })
	}
	var why, gone []string
	for _, s := range out.Skipped[len(cfg.Skipped):] { // those skipped now
		mine := func(a dispatcher.SkippedAction) bool { return len(actions) == 0 || slices.Contains(actions, a.ID) }
		if !slices.ContainsFunc(s.Actions, mine) {
			continue
		}
		d := fmt.Sprintf("%q (%s)", s.Name, s.DispatcherID)
		switch {
		case s.Reason == dispatcher.SkipFilter: // for good, as a new event would be
		case s.Reason == dispatcher.SkipRemoved && out.HasDispatcher(s.DispatcherID): // its actions
			gone = append(gone, deletedActions(s, d)+" deleted since run "+latest.RunID)
		case s.Reason == dispatcher.SkipRemoved: // for good too, but the replay would run nothing
			gone = append(gone, d+" was deleted, or moved to another event type, since run "+latest.RunID)
		case s.Reason == dispatcher.SkipPaused && original:
			why = append(why, d+" is paused since run "+latest.RunID+": resume it (enabled: true)")
		case s.Reason == dispatcher.SkipPaused:
			why = append(why, d+" is paused now: resume it (enabled: true)")
		default:
			// Not the filter's error: it may quote the event's content.
			why = append(why, d+": its filter fails for the event: fix it")
		}
	}
	if !runs && len(why)+len(gone) > 0 {
		what := "the actions this replay would run (" + strings.Join(actions, ", ") + ")"
		if len(actions) == 0 {
			what = "the actions of event type " + strconv.Quote(src.input.Event.Type)
		}
		// Deleted is for good: before, nothing said so, and the current
		// configuration, tried next, sent the user back to the original.
		then := ": neither configuration runs them now"
		if len(why) > 0 {
			then = "; then replay it"
		}
		return nil, dispatcher.Errorf(dispatcher.ESTATE, "%s would all be skipped again (dispatch %s): %s%s",
			what, r.WorkflowID, strings.Join(append(gone, why...), "; "), then)
	}
	if !original {
		return cfg, nil
	}
	return &out, nil
}

// deletedActions names the actions of s, of the dispatcher d, deleted:
// "action a1 of d was", "actions a1, a2 of d were".
func deletedActions(s dispatcher.SkippedDispatcher, d string) string {
	ids := make([]string, len(s.Actions))
	for i, a := range s.Actions {
		ids[i] = a.ID
	}
	if len(ids) == 1 {
		return "action " + ids[0] + " of " + d + " was"
	}
	return "actions " + strings.Join(ids, ", ") + " of " + d + " were"
}

// replayActions returns the action ids a replay runs: the named ones,
// each of which must exist in cfg, or those that did not succeed in the
// replayed run. An empty result means every action, which is only chosen
// for a run that failed before running any.
//
// Actions the run skipped (a paused dispatcher, a filter) did not succeed
// either, but only the current configuration decides about them again:
// the original one skips them again, as it did. So a replay with the
// original configuration leaves them out, and refuses to name them; one
// with the current configuration runs them if their dispatcher is no
// longer paused and its filter, if any, is true for the event.
func replayActions(r dispatcher.ReplayRequest, latest dispatcher.Execution, src runRecord, cfg *dispatcher.Config) ([]string, error) {
	original := r.Config == dispatcher.ReplayConfigOriginal
	if len(r.Actions) > 0 {
		var out []string
		for i, id := range r.Actions {
			if cfg != nil && original {
				sk, ok := cfg.SkippedAction(id)
				if ok && sk.Reason == dispatcher.SkipRemoved && cfg.HasDispatcher(sk.DispatcherID) {
					return nil, dispatcher.Errorf(dispatcher.EINVALID, "actions[%d]: action %q was skipped in run %s: it was deleted from its dispatcher %q (%s) since the run before",
						i, id, latest.RunID, sk.Name, sk.DispatcherID)
				}
				if ok && sk.Reason == dispatcher.SkipRemoved {
					return nil, dispatcher.Errorf(dispatcher.EINVALID, "actions[%d]: action %q was skipped in run %s: its dispatcher %q (%s) was deleted, or moved to another event type, since the run before",
						i, id, latest.RunID, sk.Name, sk.DispatcherID)
				}
				if ok {
					// Not its detail: a filter's error quotes the event's
					// content, which replaying does not need to see.
					return nil, dispatcher.Errorf(dispatcher.EINVALID, "actions[%d]: action %q was skipped in run %s (%s); replay it with config %q",
						i, id, latest.RunID, sk.Reason, dispatcher.ReplayConfigCurrent)
				}
			}
			if cfg != nil && !cfg.HasAction(id) {
				if named := actionsNamed(cfg, id); len(named) > 0 {
					return nil, dispatcher.Errorf(dispatcher.EINVALID, "actions[%d]: actions are named by id; %q is the name of action %s",
						i, id, strings.Join(named, ", "))
				}
				return nil, dispatcher.Errorf(dispatcher.EINVALID, "actions[%d]: the %s configuration of event type %q has no action %q",
					i, r.Config, src.input.Event.Type, id)
			}
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
		return out, nil
	}
	var failed, skipped, superseded []string
	for _, o := range src.outcomes {
		switch {
		case o.Status == dispatcher.OutcomeSucceeded || slices.Contains(failed, o.ActionID):
		case o.Status == dispatcher.OutcomeSkipped && original:
			skipped = append(skipped, o.SkipReason)
		case o.ErrorClass == dispatcher.FailureSuperseded:
			// Not made, for a replay before it may have made it: made
			// again under a new key, the receiver could not tell.
			superseded = append(superseded, o.ActionID)
		default:
			failed = append(failed, o.ActionID)
		}
	}
	switch {
	case len(failed) == 0 && len(superseded) > 0:
		return nil, dispatcher.Errorf(dispatcher.ESTATE,
			"run %s of dispatch %s made none of its actions (%s): it resets a run that a replay had superseded, which may have made them; name the actions to make them again, under a new key",
			latest.RunID, r.WorkflowID, strings.Join(superseded, ", "))
	case len(failed) == 0 && len(skipped) > 0:
		return nil, dispatcher.Errorf(dispatcher.ESTATE,
			"no action failed in run %s of dispatch %s; the actions it skipped (%s) run again only with config %q",
			latest.RunID, r.WorkflowID, dispatcher.TopSkipReason(skipped), dispatcher.ReplayConfigCurrent)
	case len(failed) > 0 && cfg != nil:
		for _, id := range failed {
			if cfg.HasAction(id) {
				continue
			}
			// One that was skipped runs only with the current
			// configuration: the original one is no way out for it.
			what, way := "failed", "replay with the original one, or name the actions to run (actions)"
			if r.Config == dispatcher.ReplayConfigCurrent {
				// Deleted since: the original one skips it too (skipAgain),
				// and refused the replay it was sent to.
				way = "it was deleted since, and neither configuration runs it now: name the actions to run (actions)"
			}
			i := slices.IndexFunc(src.outcomes, func(o dispatcher.ActionOutcome) bool { return o.ActionID == id })
			if i >= 0 && src.outcomes[i].Status == dispatcher.OutcomeSkipped {
				what, way = "was skipped", "name the actions of the current configuration to run (actions, by their ids)"
			}
			if sk, ok := cfg.SkippedAction(id); ok && sk.Reason != dispatcher.SkipRemoved && original {
				// Carried by a replay whose configuration skipped its
				// dispatcher (paused, or a filter): before, said deleted.
				return nil, dispatcher.Errorf(dispatcher.ESTATE,
					"action %s that failed, as run %s carries it, is skipped by the configuration that run ran with: its dispatcher %q (%s) was skipped then (%s); replay it with config %q",
					id, latest.RunID, sk.Name, sk.DispatcherID, sk.Reason, dispatcher.ReplayConfigCurrent)
			}
			if i >= 0 && src.outcomes[i].DispatcherID != "" && !cfg.HasDispatcher(src.outcomes[i].DispatcherID) {
				// Said so: before, the original configuration (or the
				// current one's actions, of which it was none), after the
				// original one had sent the user here.
				o := src.outcomes[i]
				way = fmt.Sprintf("its dispatcher %q (%s) was deleted, or moved to another event type, since: nothing runs it now", o.DispatcherName, o.DispatcherID)
			}
			return nil, dispatcher.Errorf(dispatcher.ESTATE,
				"action %s that %s in run %s no longer exists in the %s configuration; %s",
				id, what, latest.RunID, r.Config, way)
		}
		return failed, nil
	case len(failed) > 0:
		return failed, nil
	case src.closed:
		return nil, dispatcher.Errorf(dispatcher.ESTATE,
			"no action failed in run %s of dispatch %s; name the actions to run them again", latest.RunID, r.WorkflowID)
	case src.config == nil && src.input.Config == nil:
		// It failed before it loaded its configuration, or lost the
		// first task that did (keptKeys): run them all.
		return nil, nil
	default:
		return nil, dispatcher.Errorf(dispatcher.ESTATE,
			"run %s of dispatch %s ended without recording its outcomes (%s); name the actions to run again (under the keys they had, so that a receiver tells one made already)",
			latest.RunID, r.WorkflowID, latest.Status)
	}
}

// carried returns what a replay of some actions, only, of run runID
// carries (workflows.DispatchInput.Carried): the outcomes of the others
// that failed in that run, as it left them. The replay's run shows them
// and fails with them: before, once its own actions succeeded, their
// failures showed in the replayed run's detail alone, which the replay
// superseded in lists of failed dispatches, failures summaries and bulk
// replays. Not those canceled: a cancel is a decision, which a replay
// that does not name them keeps (as before, they keep their keys for one
// that does: keptKeys); nor those a reset refused (Superseded: not made
// for a reason of their own), those whose child workflow completed (a
// replay leaves them out as done), nor those deleted since, which nothing
// can make now.
func (e *Executions) carried(ctx context.Context, workflowID, runID string, src runRecord, only []string) ([]dispatcher.ActionOutcome, error) {
	if len(only) == 0 || workflows.DispatchVersion < workflows.CarriedVersion {
		return nil, nil
	}
	deleted := func(string) bool { return false } // no DispatcherSource: as the run left them
	if e.dispatchers != nil {
		now, err := e.dispatchers.DispatchersByEventType(ctx, src.input.Event.Type)
		if err != nil {
			return nil, err
		}
		current := dispatcher.Config{Dispatchers: now}
		deleted = func(id string) bool { return !current.HasAction(id) }
	}
	var out []dispatcher.ActionOutcome
	for _, o := range src.outcomes {
		if o.Status != dispatcher.OutcomeFailed || o.ErrorClass == dispatcher.FailureSuperseded ||
			slices.Contains(only, o.ActionID) || deleted(o.ActionID) {
			continue
		}
		switch status, err := e.childStatus(ctx, src, workflowID, o.ActionID); {
		case err != nil:
			return nil, err
		case status == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			continue
		}
		o.CarriedFrom = cmp.Or(o.CarriedFrom, runID)
		out = append(out, o)
	}
	return out, nil
}

// madeAll reports whether src made every action of actions, when they
// are named, and fails only with the failures it carries of others
// (workflows.DispatchInput.Carried): a replay of them would call them
// again under new keys, carrying the others again. A run that failed
// with its own may be replayed for actions it made (their receiver lost
// them, say), as a first run may.
func madeAll(src runRecord, actions []string) bool {
	carries := slices.ContainsFunc(src.outcomes, func(o dispatcher.ActionOutcome) bool { return o.CarriedFrom != "" })
	own := slices.ContainsFunc(src.outcomes, func(o dispatcher.ActionOutcome) bool {
		return o.CarriedFrom == "" && o.Status != dispatcher.OutcomeSucceeded && o.Status != dispatcher.OutcomeSkipped
	})
	return carries && !own && madeByReplay(src, actions)
}

// notMade returns the actions src ended neither succeeded nor skipped.
func notMade(src runRecord) []string {
	var ids []string
	for _, o := range src.outcomes {
		if o.Status != dispatcher.OutcomeSucceeded && o.Status != dispatcher.OutcomeSkipped {
			ids = append(ids, o.ActionID)
		}
	}
	return ids
}

// keptKeys returns the actions of a replay of src that keep the keys
// they had (workflows.DispatchInput.Keys): those src did not see end with
// an answer, named or not. One canceled may have been called by a worker
// that died before the cancel, whose workflow task was lost with what it
// did; one timed out, cut off (unanswered), or cut short with its run (no
// outcome), may have been done by the receiver all the same. Under their
// old keys the receiver (Idempotency-Key), the mail store (Message-ID)
// and Temporal (the child's workflow ID) tell whether the call was made;
// under new ones it would be made twice. The others take the replay's
// keys: they ended, and a replay makes them again. The keys src carried
// for actions it did not run are kept too, for a replay that runs them.
// A run that recorded no configuration may have lost the workflow task
// that loaded it with the first attempts made in it (an ordered dispatch
// terminated during its first task): every action of cfg, the replay's
// configuration, keeps the key it had, which does no harm to one never
// made. Each key depends on src alone: every request that claims the
// replay starts it with the same keys.
func keptKeys(src runRecord, cfg *dispatcher.Config) map[string]string {
	kept := make(map[string]string)
	if src.config == nil && cfg != nil {
		for _, d := range cfg.Dispatchers {
			for _, a := range d.Actions {
				kept[a.ID] = src.input.KeyRun(a.ID)
			}
		}
	}
	made := func(id string) bool {
		return slices.ContainsFunc(src.outcomes, func(o dispatcher.ActionOutcome) bool {
			return o.ActionID == id && o.Status != dispatcher.OutcomeSkipped
		})
	}
	for id, run := range src.input.Keys {
		// src did not run it (not asked, or skipped: its dispatcher
		// paused): as the run before src left it.
		if src.config == nil || len(src.input.Only) > 0 && !slices.Contains(src.input.Only, id) || src.closed && !made(id) {
			kept[id] = run
		}
	}
	for _, id := range unended(src) {
		kept[id] = src.input.KeyRun(id)
	}
	if len(kept) == 0 {
		return nil
	}
	return kept
}

// unended returns the actions src ran whose end it did not see answered:
// canceled, failed unanswered, or, if it recorded no outcome
// (terminated), all.
func unended(src runRecord) []string {
	var ids []string
	for _, o := range src.outcomes {
		switch {
		case o.Status == dispatcher.OutcomeSucceeded, o.Status == dispatcher.OutcomeSkipped,
			o.Status == dispatcher.OutcomeFailed && !unanswered(o),
			// Canceled after its call's answer (a 503 that came after
			// the cancel): made again under a new key, as when failed.
			o.Status == dispatcher.OutcomeCanceled && !o.Unanswered && functionsAnswer(o.HTTPStatus):
		default:
			ids = append(ids, o.ActionID)
		}
	}
	if len(src.outcomes) > 0 || src.closed || src.config == nil {
		return ids
	}
	for _, d := range src.config.Dispatchers {
		for _, a := range d.Actions {
			if len(src.input.Only) == 0 || slices.Contains(src.input.Only, a.ID) {
				ids = append(ids, a.ID)
			}
		}
	}
	return ids
}

// unanswered reports whether a failed action's last attempt ended
// without its receiver's answer, which may have done it all the same: it
// timed out, or an HTTP call's connection broke (no status; also one
// never made, which keeping its key does no harm), a gateway answered
// for the function (502, 504, Cloudflare's 520 to 524) or an idempotency
// layer did (409: a call with the key is in progress), or a mail server
// did not answer the end of a mail (o.Unanswered). A function's own 5xx
// or 4xx is its answer under that key: a replay makes the call again
// under a new one. An action its run's history had no room for
// (HistoryFull) keeps the state of the attempt before, which its outcome
// no longer says: its key is kept.
func unanswered(o dispatcher.ActionOutcome) bool {
	return o.ErrorClass == dispatcher.FailureTimeout || o.Unanswered || o.ErrorClass == dispatcher.FailureHistoryFull ||
		o.ErrorClass == dispatcher.FailureHTTPTemporary && !functionsAnswer(o.HTTPStatus)
}

// functionsAnswer reports whether an HTTP status a call ended with is the
// function's own answer, not a gateway's or an idempotency layer's.
func functionsAnswer(status int) bool {
	return status != 0 && status != http.StatusBadGateway && status != http.StatusGatewayTimeout &&
		(status < 520 || status > 524) && // Cloudflare's: the origin's answer unknown
		status != http.StatusConflict // an idempotency layer's: a call with the key in progress
}

// settleChildren checks the temporal-function actions a replay would run
// against the child workflows the replayed run started for them. A
// canceled dispatch does not wait for its children (dispatchV8), so a
// child may still be running, or may have done its work after its action
// ended canceled. A running child refuses the replay (ESTATE): the task
// would run twice at once. A child that completed leaves its action out
// of a default replay, as if it had succeeded; a replay that names the
// action awaits that child again (from dispatchV14 a canceled action keeps
// its key, the child's workflow ID: keptKeys).
func (e *Executions) settleChildren(ctx context.Context, r dispatcher.ReplayRequest, latest dispatcher.Execution, src runRecord, actions []string) ([]string, error) {
	if src.config == nil {
		return actions, nil // no action ran
	}
	var out, done []string
	for _, id := range actions {
		status, err := e.childStatus(ctx, src, r.WorkflowID, id)
		if err != nil {
			return nil, err
		}
		switch {
		case status == enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
			child, _ := childOf(src, r.WorkflowID, id)
			return nil, dispatcher.Errorf(dispatcher.ESTATE,
				"action %s of run %s of dispatch %s is still running as child workflow %s, which ignored the cancel: wait for it to end, or terminate it, before replaying the action",
				id, latest.RunID, r.WorkflowID, child)
		case status == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED && len(r.Actions) == 0:
			done = append(done, id)
		default:
			out = append(out, id)
		}
	}
	if len(out) == 0 && len(done) > 0 {
		return nil, dispatcher.Errorf(dispatcher.ESTATE,
			"no action failed in run %s of dispatch %s: the child workflows of its canceled actions (%s) completed after the cancel; name the actions to run them again",
			latest.RunID, r.WorkflowID, strings.Join(done, ", "))
	}
	return out, nil
}

// childStatus returns the status of the child workflow that run src
// started for action id; unspecified when it started none.
func (e *Executions) childStatus(ctx context.Context, src runRecord, workflowID, id string) (enums.WorkflowExecutionStatus, error) {
	if src.config == nil {
		return enums.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED, nil
	}
	child, ok := childOf(src, workflowID, id)
	if !ok {
		return enums.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED, nil
	}
	res, err := e.client.DescribeWorkflowExecution(ctx, child, "")
	var missing *serviceerror.NotFound
	switch {
	case errors.As(err, &missing):
		return enums.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED, nil
	case err != nil:
		return 0, temporalError(err, "describing the child workflow of action "+id)
	}
	return res.GetWorkflowExecutionInfo().GetStatus(), nil
}

// childOf returns the workflow ID of the child that run src started for
// action id, if the action is a task of a temporal function.
func childOf(src runRecord, workflowID, id string) (string, bool) {
	for _, d := range src.config.Dispatchers {
		for _, a := range d.Actions {
			if a.ID != id || a.Type != dispatcher.ActionTask {
				continue
			}
			if fn, ok := src.config.Function(a.FunctionName); ok && fn.Kind == dispatcher.FunctionTemporal {
				return workflows.IdempotencyKey(workflowID, d.ID, a.ID, src.input.KeyRun(a.ID)), true
			}
		}
	}
	return "", false
}

// actionsNamed returns the ids of cfg's actions named name: a replay takes
// ids, and a name is what a person reads.
func actionsNamed(cfg *dispatcher.Config, name string) []string {
	var ids []string
	for _, d := range cfg.Dispatchers {
		for _, a := range d.Actions {
			if a.Name == name {
				ids = append(ids, a.ID)
			}
		}
	}
	return ids
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
	// Recorded before it is asked for, like a replay: no cancel happens
	// unrecorded, and an entry may record a cancel that Temporal then
	// refused.
	id := dispatcher.NewID(e.now())
	_, err = e.audit.RecordAudit(ctx, dispatcher.AuditEntry{
		ID: id, WorkflowID: workflowID, Ref: id, Operation: dispatcher.AuditCancel, RunID: x.RunID, Actor: actor, At: e.now(),
	})
	if err != nil {
		return dispatcher.Execution{}, err
	}
	if err := e.client.CancelWorkflow(ctx, workflowID, x.RunID); err != nil {
		return dispatcher.Execution{}, notFound(temporalError(err, "canceling the dispatch"), workflowID, x.RunID)
	}
	return x, nil
}

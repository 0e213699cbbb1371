package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// checkBulk validates a bulk replay request and fills in its defaults.
//
// A bulk replay by skipReason replays the actions the runs skipped, which
// only the current configuration can run (see replayActions): its config
// is current, and its status any, since a dispatch that skipped a paused
// dispatcher usually completed.
//
// A bulk replay of completed dispatches names the actions to run again,
// unless it runs the current configuration, which runs the actions they
// skipped: then it matches only those that skipped some.
//
// It replays the dispatches started before now at the latest: a from
// not before then matches none (before, the API accepted it, and the
// bulk replay then failed without saying why).
func checkBulk(r *dispatcher.BulkReplayRequest, now time.Time) error {
	if f := r.Filter; !f.From.IsZero() && (f.To.IsZero() || f.To.After(now)) && !f.From.Before(now) {
		return dispatcher.Errorf(dispatcher.EINVALID, "from: %s is not in the past; a bulk replay replays dispatches started before it",
			f.From.UTC().Format(time.RFC3339))
	}
	switch r.Filter.Status {
	case "":
		if r.Filter.SkipReason == "" {
			r.Filter.Status = dispatcher.ExecutionFailed
		}
	case dispatcher.ExecutionRunning, dispatcher.ExecutionScheduled:
		return dispatcher.Errorf(dispatcher.EINVALID, "status: %s dispatches cannot be replayed; choose failed, canceled or completed", r.Filter.Status)
	}
	switch {
	case r.Filter.SkipReason == dispatcher.SkipRemoved:
		return dispatcher.Errorf(dispatcher.EINVALID, "skipReason: %s: a dispatcher deleted, or moved to another event type, is not replayed; its actions were skipped for good (GET /executions/v1?skipReason=%s lists them)",
			dispatcher.SkipRemoved, dispatcher.SkipRemoved)
	case r.Filter.SkipReason != "" && r.Config == "":
		r.Config = dispatcher.ReplayConfigCurrent
	case r.Filter.SkipReason != "" && r.Config != dispatcher.ReplayConfigCurrent:
		return dispatcher.Errorf(dispatcher.EINVALID, "config: a bulk replay by skipReason runs the actions the dispatches skipped, which only config %q can run, not %q",
			dispatcher.ReplayConfigCurrent, r.Config)
	case r.Config == "":
		r.Config = dispatcher.ReplayConfigOriginal
	}
	if r.Config != dispatcher.ReplayConfigOriginal && r.Config != dispatcher.ReplayConfigCurrent {
		return dispatcher.Errorf(dispatcher.EINVALID, "config: must be %s or %s, not %q",
			dispatcher.ReplayConfigOriginal, dispatcher.ReplayConfigCurrent, r.Config)
	}
	if r.Filter.Status == dispatcher.ExecutionCompleted && r.Config == dispatcher.ReplayConfigOriginal && len(r.Actions) == 0 {
		// Each would be skipped at its turn: "no action failed".
		return dispatcher.Errorf(dispatcher.EINVALID, "actions: a completed dispatch has no failed action, which is what a replay runs again by default; name the actions to run again (or use config %q for the actions it skipped)",
			dispatcher.ReplayConfigCurrent)
	}
	if r.Filter.Status == dispatcher.ExecutionCompleted && len(r.Actions) == 0 {
		// The current configuration runs the actions a completed run
		// skipped; one that skipped none would be refused at its turn,
		// "no action failed", and was counted by the dry run.
		r.Filter.SkippedAny = true
	}
	if err := dispatcher.CheckReplayRate(r.Rate); err != nil {
		return err
	}
	if r.Rate == 0 {
		r.Rate = dispatcher.DefaultReplayRate
	}
	_, err := executionQuery(context.Background(), r.Filter)
	return err
}

// DryRunBulkReplay counts what a bulk replay of r would match now, and of
// those the runs a replay or a reset has superseded already (the bulk
// replay passes over them; counted among the newest MaxFailureScan), and returns a
// sample of up to sampleSize of the others; it starts nothing.
func (e *Executions) DryRunBulkReplay(ctx context.Context, r dispatcher.BulkReplayRequest, sampleSize int) (dispatcher.BulkReplayDryRun, error) {
	if err := checkBulk(&r, e.now()); err != nil {
		return dispatcher.BulkReplayDryRun{}, err
	}
	if now := e.now(); r.Filter.To.IsZero() || r.Filter.To.After(now) {
		r.Filter.To = now
	}
	q, err := executionQuery(ctx, r.Filter)
	if err != nil {
		return dispatcher.BulkReplayDryRun{}, err
	}
	n, err := e.Count(ctx, r.Filter)
	if err != nil {
		return dispatcher.BulkReplayDryRun{}, err
	}
	dry := dispatcher.BulkReplayDryRun{Matched: n, Sample: []dispatcher.Execution{}}
	if n == 0 {
		return dry, nil
	}
	// All of them, to count those superseded among them.
	infos, _, err := e.listAll(ctx, q, MaxFailureScan)
	if err != nil {
		return dispatcher.BulkReplayDryRun{}, err
	}
	p, err := e.passedOver(ctx, r, infos)
	if err != nil {
		return dispatcher.BulkReplayDryRun{}, err
	}
	dry.Replayed, dry.StillPaused, dry.Removed = p.replayed, p.paused, p.removed
	dry.Sample = append(dry.Sample, p.rest[:min(len(p.rest), sampleSize)]...)
	// Two reads: runs may close between them.
	dry.Replayed = min(dry.Replayed, dry.Matched)
	dry.StillPaused = min(dry.StillPaused, dry.Matched-dry.Replayed)
	dry.Removed = min(dry.Removed, dry.Matched-dry.Replayed-dry.StillPaused)
	return dry, nil
}

// skippedNow returns why the replay of a run by r, at its turn, is
// skipped for what the dispatchers of its event type are now (each type's
// read once), or "": SkipPaused when r replays those a paused dispatcher
// made skip actions and one of the run's is paused still, or when the
// actions it would run, those named or else those that failed, are all
// of dispatchers paused now ("is paused now"); SkipRemoved when none of
// them is an action of a dispatcher of its type now ("neither
// configuration runs them now"). Before, a dry run counted
// those among the dispatches to replay, and the bulk replay then
// replayed none of them. Without a DispatcherSource, none is.
func (e *Executions) skippedNow(ctx context.Context, r dispatcher.BulkReplayRequest) func(dispatcher.Execution) (string, error) {
	dispatchersOf := e.dispatchersByType(ctx)
	return func(x dispatcher.Execution) (string, error) {
		if e.dispatchers == nil {
			return "", nil
		}
		ds, err := dispatchersOf(x.EventType)
		if err != nil {
			return "", err
		}
		if r.Filter.SkipReason == dispatcher.SkipPaused && x.SkipReason == dispatcher.SkipPaused &&
			slices.ContainsFunc(ds, func(d dispatcher.Dispatcher) bool { return d.Paused && slices.Contains(x.DispatcherIDs, d.ID) }) {
			return dispatcher.SkipPaused, nil
		}
		if r.Filter.SkipReason != "" {
			return "", nil // its current configuration also runs what it skipped
		}
		actions := r.Actions
		if len(actions) == 0 {
			actions = x.FailedActionIDs
		}
		of := func(paused bool) func(id string) bool {
			return func(id string) bool {
				return slices.ContainsFunc(ds, func(d dispatcher.Dispatcher) bool {
					return d.Paused == paused && slices.ContainsFunc(d.Actions, func(a dispatcher.Action) bool { return a.ID == id })
				})
			}
		}
		switch {
		case len(actions) == 0 || slices.ContainsFunc(actions, of(false)):
			return "", nil
		case slices.ContainsFunc(actions, of(true)):
			// Its replay would skip them again ("is paused now: resume
			// it"): before, a dry run counted it among those to replay.
			return dispatcher.SkipPaused, nil
		}
		return dispatcher.SkipRemoved, nil
	}
}

// dispatchersByType returns the dispatchers of an event type now, reading
// those of each type once; e.dispatchers must be set.
func (e *Executions) dispatchersByType(ctx context.Context) func(eventType string) ([]dispatcher.Dispatcher, error) {
	byType := map[string][]dispatcher.Dispatcher{}
	return func(eventType string) ([]dispatcher.Dispatcher, error) {
		if ds, ok := byType[eventType]; ok {
			return ds, nil
		}
		ds, err := e.dispatchers.DispatchersByEventType(ctx, eventType)
		if err == nil {
			byType[eventType] = ds
		}
		return ds, err
	}
}

// StartBulkReplay starts a BulkReplay workflow and returns it. With an
// idempotency key, its ID is derived from the key and the actor, so a
// request that comes again answers with the bulk replay it started.
// Errors: EINVALID for a bad request, ESTATE when its filter matches no
// dispatch (NothingToReplay: nothing started) or the tenant runs
// MaxRunningBulkReplays already, EUNAVAILABLE.
func (e *Executions) StartBulkReplay(ctx context.Context, r dispatcher.BulkReplayRequest) (dispatcher.BulkReplayStatus, error) {
	if err := checkBulk(&r, e.now()); err != nil {
		return dispatcher.BulkReplayStatus{}, err
	}
	tenant := dispatcher.CallerOf(ctx).Tenant
	id := dispatcher.BulkReplayIDPrefix + dispatcher.NewID(e.now())
	if r.IdempotencyKey != "" {
		id = dispatcher.BulkReplayIDPrefix + idempotencyKey("bulk\x00"+tenant+"\x00"+r.Actor, r.IdempotencyKey)[:24]
	}
	id = dispatcher.TenantWorkflowID(tenant, id) // its activities act for the tenant (activities.Acting)
	if r.IdempotencyKey != "" {
		// The request again: the bulk replay it started, whatever
		// visibility says now (what it matched may have left it).
		if st, err := e.keyedBulk(ctx, id, r); dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
			if err == nil {
				err = e.audit.RecordBulkReplay(ctx, id, r) // as each request is
			}
			return st, err
		}
	}
	// Counted first, with the count the workflow begins with: one
	// visibility count, cheap next to a workflow that would start only to
	// replay nothing. It races with the runs that close meanwhile, as
	// the workflow's own count does: one that fails after it is left out,
	// as it would be had the request come a moment sooner.
	f := r.Filter
	if now := e.now(); f.To.IsZero() || f.To.After(now) {
		f.To = now
	}
	n, err := e.Count(ctx, f)
	if err != nil {
		return dispatcher.BulkReplayStatus{}, err
	}
	if n == 0 {
		// ESTATE (409), as a single replay of a run in which nothing
		// failed is: an error a client cannot take for a bulk replay
		// started (the console would follow one without an id), naming
		// the filter, which is what is too narrow.
		return dispatcher.BulkReplayStatus{}, dispatcher.Errorf(dispatcher.ESTATE, "%s (%s); no bulk replay was started",
			dispatcher.NothingToReplay, filterText(r.Filter))
	}
	// One at a time, from the count of those running to the start.
	e.bulkStarts.Lock()
	defer e.bulkStarts.Unlock()
	// Before the list of what it matches, which costs more.
	if err := e.roomForBulk(ctx); err != nil {
		return dispatcher.BulkReplayStatus{}, err
	}
	if why, err := e.noneReplayedNow(ctx, r, f, n); err != nil {
		return dispatcher.BulkReplayStatus{}, err
	} else if why != "" {
		// The same again once they are replayed (a request sent twice
		// without a key, a script run again), or those of a dispatcher
		// deleted since, which the bulk replay would pass over, ending
		// 0 of 0.
		return dispatcher.BulkReplayStatus{}, dispatcher.Errorf(dispatcher.ESTATE, "%s (%s) that a replay would run now: %s; no bulk replay was started",
			dispatcher.NothingToReplay, filterText(r.Filter), why)
	}
	// Recorded before it starts, so none runs unrecorded; a request that
	// comes again with its idempotency key is recorded again.
	if err := e.audit.RecordBulkReplay(ctx, id, r); err != nil {
		return dispatcher.BulkReplayStatus{}, err
	}
	run, err := e.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                e.taskQueue,
		WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, workflows.WorkflowBulkReplay, workflows.BulkReplayInput{
		Filter: r.Filter, Actions: r.Actions, Config: r.Config, Rate: r.Rate, Actor: r.Actor,
	})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &started) && r.IdempotencyKey != "":
		return e.keyedBulk(ctx, id, r)
	case err != nil:
		return dispatcher.BulkReplayStatus{}, temporalError(err, "starting the bulk replay")
	}
	if e.bulkStarts.recent == nil {
		e.bulkStarts.recent = map[string]time.Time{}
	}
	e.bulkStarts.recent[id] = e.now()
	return dispatcher.BulkReplayStatus{ID: id, Status: dispatcher.ExecutionRunning, Request: r, Start: e.now(),
		WebURL: e.webURL(id, run.GetRunID())}, nil
}

// passed counts the runs a bulk replay passes over (passedOver), and
// holds the others.
type passed struct {
	replayed, paused, removed int64
	rest                      []dispatcher.Execution
}

// passedOver sorts infos, the runs a bulk replay of r matches, into those
// it would pass over now — superseded by a replay or a reset, or skipped
// (skippedNow: its dispatcher paused still, or none of its actions a
// dispatcher's now) — and the others.
func (e *Executions) passedOver(ctx context.Context, r dispatcher.BulkReplayRequest, infos []*workflowpb.WorkflowExecutionInfo) (passed, error) {
	superseded, err := e.supersededBy(ctx, refs(infos))
	if err != nil {
		return passed{}, err
	}
	skippedNow := e.skippedNow(ctx, r)
	var p passed
	for _, info := range infos {
		x := e.toExecution(info)
		if superseded[x.RunID] != "" {
			p.replayed++
			continue
		}
		if madeAlready(x, r.Actions) {
			// As the bulk replay decides it: from its outcomes.
			src, err := e.readRun(ctx, x.WorkflowID, x.RunID)
			if err != nil {
				return passed{}, err
			}
			if madeByReplay(src, r.Actions) {
				p.replayed++
				continue
			}
		}
		switch reason, err := skippedNow(x); {
		case err != nil:
			return passed{}, err
		case reason == dispatcher.SkipPaused:
			p.paused++
		case reason == dispatcher.SkipRemoved:
			p.removed++
		default:
			p.rest = append(p.rest, x)
		}
	}
	return p, nil
}

// madeAlready reports whether x, as visibility tells, may be a replay's
// run that made every action a bulk replay names, actions (madeByReplay,
// which its outcomes decide): none is among its failed ones, and it
// skipped none.
func madeAlready(x dispatcher.Execution, actions []string) bool {
	return len(actions) > 0 && x.Replay.Of != "" && x.SkipReason == "" && (x.Status == dispatcher.ExecutionFailed || x.Status == dispatcher.ExecutionCanceled) &&
		!slices.ContainsFunc(actions, func(a string) bool { return slices.Contains(x.FailedActionIDs, a) })
}

// madeByReplay reports whether src is a replay's run that made every
// action a bulk replay names, actions: a bulk replay passes it over, as
// one a replay superseded, and replays of a run that made some only the
// others (Replay). It still fails, with others' failures, carried or its
// own, and matches the filter that found it: the same bulk replay sent
// again called the named actions again under new keys, for every
// dispatch it had replayed, each time.
func madeByReplay(src runRecord, actions []string) bool {
	return len(actions) > 0 && src.input.Run != "" && src.closed && !slices.ContainsFunc(actions, func(id string) bool {
		return !succeededIn(src, id)
	})
}

// succeededIn reports whether action id succeeded in src.
func succeededIn(src runRecord, id string) bool {
	return slices.ContainsFunc(src.outcomes, func(o dispatcher.ActionOutcome) bool {
		return o.ActionID == id && o.Status == dispatcher.OutcomeSucceeded
	})
}

// unmade is runs without the replays' runs that made every action of
// actions (madeByReplay), which a bulk replay naming them passes over.
func (e *Executions) unmade(ctx context.Context, runs []dispatcher.RunRef, actions []string) ([]dispatcher.RunRef, error) {
	if len(actions) == 0 {
		return runs, nil
	}
	out := runs[:0:0]
	for _, r := range runs {
		src, err := e.readRun(ctx, r.WorkflowID, r.RunID)
		if err != nil {
			return nil, err
		}
		if !madeByReplay(src, actions) {
			out = append(out, r)
		}
	}
	return out, nil
}

// noneReplayedNow says why a bulk replay of r would pass over each of the
// n runs f matches (passedOver), or "" when it would replay one, for n up
// to supersededCheck: more are taken for some it would replay, rather
// than listed on every request.
func (e *Executions) noneReplayedNow(ctx context.Context, r dispatcher.BulkReplayRequest, f dispatcher.ExecutionFilter, n int64) (string, error) {
	if n > supersededCheck {
		return "", nil
	}
	q, err := executionQuery(ctx, f)
	if err != nil {
		return "", err
	}
	infos, _, err := e.listAll(ctx, q, supersededCheck)
	if err != nil || len(infos) == 0 {
		return "", err
	}
	p, err := e.passedOver(ctx, r, infos)
	if err != nil || len(p.rest) > 0 {
		return "", err
	}
	if p.replayed == int64(len(infos)) {
		return fmt.Sprintf("all %d it matches were replayed since", p.replayed), nil
	}
	var why []string
	for _, c := range []struct {
		n    int64
		what string
	}{
		{p.replayed, "replayed since"},
		{p.paused, "of a dispatcher paused still (resume it first)"},
		{p.removed, "whose actions no dispatcher of their event type has now (deleted since, or named for another type)"},
	} {
		if c.n > 0 {
			why = append(why, fmt.Sprint(c.n, " ", c.what))
		}
	}
	return fmt.Sprintf("of the %d it matches, %s", len(infos), strings.Join(why, ", ")), nil
}

// supersededCheck is the most runs a bulk replay's request lists to find
// whether a replay superseded them all.
const supersededCheck = 1000

// keyedBulk returns bulk replay id, which an earlier request with r's
// Idempotency-Key started, if r asks for the same replays. ENOTFOUND when
// the key started none.
func (e *Executions) keyedBulk(ctx context.Context, id string, r dispatcher.BulkReplayRequest) (dispatcher.BulkReplayStatus, error) {
	st, err := e.BulkReplay(ctx, id)
	if err == nil && !sameBulk(st.Request, r) {
		return dispatcher.BulkReplayStatus{}, dispatcher.Errorf(dispatcher.EINVALID,
			"Idempotency-Key: already used for bulk replay %s, of another request; a new request needs a new key", id)
	}
	st.AlreadyStarted = err == nil
	return st, err
}

// filterText says a filter as the API spells it, for messages.
func filterText(f dispatcher.ExecutionFilter) string {
	var parts []string
	for _, p := range []struct{ name, value string }{
		{"eventType", f.EventType}, {"eventId", f.EventID}, {"dispatcherId", f.DispatcherID}, {"actionId", f.ActionID},
		{"status", f.Status}, {"errorClass", f.ErrorClass}, {"bulkReplayId", f.BulkReplayID}, {"skipReason", f.SkipReason},
	} {
		if p.value != "" {
			parts = append(parts, fmt.Sprintf("%s %q", p.name, p.value))
		}
	}
	for _, p := range []struct {
		name string
		at   time.Time
	}{{"from", f.From}, {"to", f.To}} {
		if !p.at.IsZero() {
			parts = append(parts, p.name+" "+p.at.UTC().Format(time.RFC3339Nano))
		}
	}
	return strings.Join(parts, ", ")
}

// sameBulk reports whether two bulk replay requests, as checkBulk left
// them, ask for the same replays.
func sameBulk(a, b dispatcher.BulkReplayRequest) bool {
	fa, fb := a.Filter, b.Filter
	fa.From, fa.To, fb.From, fb.To = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return fa == fb && a.Filter.From.Equal(b.Filter.From) && a.Filter.To.Equal(b.Filter.To) &&
		sameSet(a.Actions, b.Actions) && a.Config == b.Config && a.Rate == b.Rate
}

// BulkReplay returns a bulk replay with its progress. Errors: ENOTFOUND,
// EUNAVAILABLE.
func (e *Executions) BulkReplay(ctx context.Context, id string) (dispatcher.BulkReplayStatus, error) {
	if err := owned(ctx, id); err != nil {
		return dispatcher.BulkReplayStatus{}, err
	}
	desc, err := e.client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return dispatcher.BulkReplayStatus{}, bulkNotFound(temporalError(err, "describing the bulk replay"), id)
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != workflows.WorkflowBulkReplay {
		return dispatcher.BulkReplayStatus{}, bulkNotFound(dispatcher.Errorf(dispatcher.ENOTFOUND, ""), id)
	}
	st, in, err := e.bulkStatus(ctx, info)
	if undecryptable(err) {
		return dispatcher.BulkReplayStatus{}, unreadable(err)
	} else if err != nil {
		return dispatcher.BulkReplayStatus{}, err
	}
	if in.State != nil {
		st.Progress = in.State.CurrentProgress()
	}
	if p, ok := e.bulkProgress(ctx, id, info.GetExecution().GetRunId(), info.GetStatus(), st.Request.Actions); ok {
		st.Progress = p
	} else {
		st.ProgressUnknown = true
		// Paused or not, as the list says it: the audit trail holds its
		// starts whether a worker answers or not.
		one := []dispatcher.BulkReplayStatus{st}
		e.markPaused(ctx, one)
		st = one[0]
	}
	return st, nil
}

// bulkStatus returns the bulk replay a run's info describes, but its
// progress, with its request from the run's input; and that input.
func (e *Executions) bulkStatus(ctx context.Context, info *workflowpb.WorkflowExecutionInfo) (dispatcher.BulkReplayStatus, workflows.BulkReplayInput, error) {
	id, runID := info.GetExecution().GetWorkflowId(), info.GetExecution().GetRunId()
	st := dispatcher.BulkReplayStatus{ID: id, Start: info.GetStartTime().AsTime(), WebURL: e.webURL(id, runID)}
	st.Status, _ = executionStatus(info.GetStatus(), false)
	if info.GetCloseTime() != nil {
		st.Close = info.GetCloseTime().AsTime()
	}
	in, err := e.bulkInput(ctx, id, runID)
	if err != nil {
		return st, in, err
	}
	st.Request = dispatcher.BulkReplayRequest{Filter: in.Filter, Actions: in.Actions, Config: in.Config, Rate: in.Rate, Actor: in.Actor}
	if in.State != nil {
		st.Start = in.State.Snapshot // the first run's start
	}
	return st, in, nil
}

// bulkInput reads the input of a bulk replay's run, which holds its
// request and, after a ContinueAsNew, the progress it started from: the
// run's first event, alone.
func (e *Executions) bulkInput(ctx context.Context, id, runID string) (workflows.BulkReplayInput, error) {
	var in workflows.BulkReplayInput
	res, err := e.client.WorkflowService().GetWorkflowExecutionHistory(ctx, &workflowservice.GetWorkflowExecutionHistoryRequest{
		Namespace: e.namespace, Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: runID}, MaximumPageSize: 1,
	})
	if err != nil {
		return in, bulkNotFound(temporalError(err, "reading the bulk replay"), id)
	}
	if evs := res.GetHistory().GetEvents(); len(evs) > 0 {
		if err := e.dc.FromPayloads(evs[0].GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); undecryptable(err) {
			return in, err // its callers say it (unreadable)
		}
	}
	return in, nil
}

// BulkReplays returns the caller's tenant's bulk replays, those running
// first, then those closed most recently (visibility's order), at most
// limit, without their progress, which BulkReplay reads live, one by one;
// but a running one's Progress.Paused says whether it is paused. A bulk
// replay that continued as new is listed once, as its latest run.
func (e *Executions) BulkReplays(ctx context.Context, limit int) ([]dispatcher.BulkReplayStatus, error) {
	infos, err := e.bulkRuns(ctx, "ExecutionStatus != 'ContinuedAsNew'", limit)
	if err != nil {
		return nil, err
	}
	out := make([]dispatcher.BulkReplayStatus, 0, len(infos))
	for _, info := range infos {
		st, _, err := e.bulkStatus(ctx, info)
		if err != nil && !undecryptable(err) { // listed without its request, which its own GET explains
			return nil, err
		}
		out = append(out, st)
	}
	e.markPaused(ctx, out)
	return out, nil
}

// bulkRuns returns at most limit runs of the caller's tenant's bulk
// replays that match cond, in visibility's order.
func (e *Executions) bulkRuns(ctx context.Context, cond string, limit int) ([]*workflowpb.WorkflowExecutionInfo, error) {
	// By ID, which carries the tenant: bulk replays have no Tenant
	// search attribute. The prefix of the implicit tenant's is also that
	// of a tenant named bulk-replay-…, whose own owned leaves out.
	prefix := dispatcher.TenantWorkflowID(dispatcher.CallerOf(ctx).Tenant, dispatcher.BulkReplayIDPrefix)
	q := "WorkflowType = " + quote(workflows.WorkflowBulkReplay) + " AND WorkflowId STARTS_WITH " + quote(prefix) + " AND " + cond
	var infos []*workflowpb.WorkflowExecutionInfo
	for token := []byte(nil); len(infos) < limit; {
		page, next, err := e.list(ctx, q, limit-len(infos), token)
		if err != nil {
			return nil, err
		}
		for _, info := range page {
			if owned(ctx, info.GetExecution().GetWorkflowId()) == nil {
				infos = append(infos, info)
			}
		}
		if token = next; len(token) == 0 {
			break
		}
	}
	return infos, nil
}

// MaxRunningBulkReplays is how many bulk replays a tenant may have running
// (paused ones included) at once: each may replay up to 100 dispatches a
// second, with every mail and call of theirs, so without a bound one
// user with REPLAY_EXECUTIONS could have a tenant's functions called, and
// its workers kept busy, at any rate.
const MaxRunningBulkReplays = 10

// bulkListedWithin is how long after its start a bulk replay is surely
// listed by visibility.
const bulkListedWithin = 10 * time.Second

// roomForBulk refuses, ESTATE, a new bulk replay while the tenant has
// MaxRunningBulkReplays running: those visibility lists, and those this
// process started in the last bulkListedWithin that it does not list yet
// (it learns of a start within a second or so). Its caller holds
// bulkStarts. Before, 40 requests at once started 40. Other API processes'
// starts of that last second are not counted.
func (e *Executions) roomForBulk(ctx context.Context) error {
	running, err := e.bulkRuns(ctx, "ExecutionStatus = 'Running'", MaxRunningBulkReplays)
	if err != nil {
		return err
	}
	n := len(running)
	listed := make(map[string]bool, n)
	for _, r := range running {
		listed[r.GetExecution().GetWorkflowId()] = true
	}
	for id, at := range e.bulkStarts.recent {
		switch {
		case e.now().Sub(at) > bulkListedWithin:
			delete(e.bulkStarts.recent, id)
		case !listed[id] && owned(ctx, id) == nil:
			n++ // started, not listed yet (or ended already: counted a few seconds too long)
		}
	}
	if n < MaxRunningBulkReplays {
		return nil
	}
	return dispatcher.Errorf(dispatcher.ESTATE, "%d bulk replays are running, paused ones included, the most a tenant may run at once: "+
		"wait for one to end, or cancel one (GET /executions/v1/replays lists them); no bulk replay was started", MaxRunningBulkReplays)
}

// markPaused sets Progress.Paused of the running bulk replays of bs
// whose latest pause, resume or cancel in the audit trail is a pause: what
// holds their starts (held), read from the store. Before, each workflow was
// queried, and a worker slower to answer than queryTimeout (one busy, or
// none) had a paused bulk replay listed as running. One whose trail
// cannot be read is listed as running, paused or not.
func (e *Executions) markPaused(ctx context.Context, bs []dispatcher.BulkReplayStatus) {
	for i := range bs {
		if bs[i].Status != dispatcher.ExecutionRunning {
			continue
		}
		op, err := e.lastControl(ctx, bs[i].ID)
		if err != nil {
			e.log.WarnContext(ctx, "reading a bulk replay's audit trail failed: it is listed as running, paused or not", "bulkReplayId", bs[i].ID, "err", err)
			continue
		}
		bs[i].Progress.Paused = op == dispatcher.AuditPause
	}
}

// bulkProgress returns the live progress: the result or the
// cancellation's details of a run that completed or was canceled, else the
// query, which a worker also answers for a run that failed, timed out or
// was terminated (it replays the run up to its end). false when none
// answers.
func (e *Executions) bulkProgress(ctx context.Context, id, runID string, status enums.WorkflowExecutionStatus, actions []string) (dispatcher.BulkReplayProgress, bool) {
	var p dispatcher.BulkReplayProgress
	switch status {
	default:
		qctx, cancel := context.WithTimeout(ctx, queryTimeout)
		defer cancel()
		v, err := e.client.QueryWorkflow(qctx, id, runID, workflows.QueryProgress)
		if err == nil {
			err = v.Get(&p)
		}
		if err != nil {
			e.log.WarnContext(ctx, "progress query failed", "bulkReplayId", id, "err", err)
			return p, false
		}
		return e.withLiveCounts(ctx, id, actions, p), true
	case enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, enums.WORKFLOW_EXECUTION_STATUS_CANCELED:
		err := e.client.GetWorkflow(ctx, id, runID).Get(ctx, &p)
		var canceled *temporal.CanceledError
		if errors.As(err, &canceled) && canceled.HasDetails() {
			err = canceled.Details(&p)
		}
		if err == nil && (status == enums.WORKFLOW_EXECUTION_STATUS_CANCELED || p.Pending > 0) {
			// Canceled, or completed with replays that wait for their
			// startTimestamp (bulkReplayV6), it ended without waiting for
			// replays it started, which run on: before, one that failed
			// again vanished from its counts.
			p = e.withLiveCounts(ctx, id, actions, p)
		}
		return p, err == nil
	}
}

// withLiveCounts returns p with its replays counted as they are now: the
// bulk replay counts them only between pages of targets, so its succeeded
// and failed stayed at 0 until it ended.
func (e *Executions) withLiveCounts(ctx context.Context, id string, actions []string, p dispatcher.BulkReplayProgress) dispatcher.BulkReplayProgress {
	if p.Replayed == 0 {
		return p
	}
	c, err := e.CountReplays(ctx, id, actions)
	if err != nil {
		e.log.WarnContext(ctx, "counting a bulk replay's replays failed", "bulkReplayId", id, "err", err)
		return p
	}
	return liveProgress(p, c)
}

// liveProgress is p with its replays as visibility counts them now, c.
func liveProgress(p dispatcher.BulkReplayProgress, c workflows.ReplayCounts) dispatcher.BulkReplayProgress {
	// Each replay it counts was started: the bulk replay counts its
	// starts between pages only, and more replays showed succeeded than
	// started (23 of 1).
	if started := c.Completed + c.Failed + c.Canceled + c.Running; started > p.Replayed {
		p.Processed += started - p.Replayed
		if p.Matched > 0 {
			p.Processed = min(p.Processed, p.Matched)
		}
		p.Replayed, p.Remaining = started, max(p.Matched-p.Processed, 0)
	}
	// Counts only grow: a worker from before StartFailed, or an older
	// bulk replay, answers none, and its failed starts must not vanish.
	live := workflows.WithClosed(p, c)
	live.Failed = max(live.Failed, p.Failed)
	return live
}

// CancelBulkReplay cancels a running bulk replay: it starts no further
// replays; those started run on. ESTATE when it is not running.
func (e *Executions) CancelBulkReplay(ctx context.Context, id, actor string) (dispatcher.BulkReplayStatus, error) {
	st, err := e.BulkReplay(ctx, id)
	if err != nil {
		return dispatcher.BulkReplayStatus{}, err
	}
	if st.Status != dispatcher.ExecutionRunning {
		return dispatcher.BulkReplayStatus{}, dispatcher.Errorf(dispatcher.ESTATE, "bulk replay %s is not running: it is %s", id, st.Status)
	}
	ref := dispatcher.NewID(e.now()) // recorded before it is asked for, as a dispatch's cancel
	if _, err := e.audit.RecordAudit(ctx, dispatcher.AuditEntry{ID: ref, WorkflowID: id, Ref: ref,
		Operation: dispatcher.AuditCancel, Actor: actor, At: e.now()}); err != nil {
		return dispatcher.BulkReplayStatus{}, err
	}
	if err := e.client.CancelWorkflow(ctx, id, ""); err != nil {
		return dispatcher.BulkReplayStatus{}, bulkNotFound(temporalError(err, "canceling the bulk replay"), id)
	}
	return st, nil
}

// PauseBulkReplay pauses a running bulk replay (pause true): it starts no
// further replays until resumed (pause false); those started run on.
// ESTATE when it is not running, or has started every replay it will.
// A bulk replay started before pausing existed ignores it (see
// workflows.SignalPause).
func (e *Executions) PauseBulkReplay(ctx context.Context, id, actor string, pause bool) (dispatcher.BulkReplayStatus, error) {
	st, err := e.BulkReplay(ctx, id)
	if err != nil {
		return dispatcher.BulkReplayStatus{}, err
	}
	op, verb := dispatcher.AuditPause, "paused"
	if !pause {
		op, verb = dispatcher.AuditResume, "resumed"
	}
	switch {
	case st.Status != dispatcher.ExecutionRunning:
		return dispatcher.BulkReplayStatus{}, dispatcher.Errorf(dispatcher.ESTATE, "bulk replay %s cannot be %s: it is %s", id, verb, st.Status)
	case pause && !st.ProgressUnknown && st.Progress.Remaining == 0 && st.Progress.Matched > 0:
		return dispatcher.BulkReplayStatus{}, dispatcher.Errorf(dispatcher.ESTATE,
			"bulk replay %s cannot be paused: it has started every replay and waits for them to end", id)
	}
	ref := dispatcher.NewID(e.now())
	if _, err := e.audit.RecordAudit(ctx, dispatcher.AuditEntry{ID: ref, WorkflowID: id, Ref: ref,
		Operation: op, Actor: actor, At: e.now()}); err != nil {
		return dispatcher.BulkReplayStatus{}, err
	}
	if err := e.client.SignalWorkflow(ctx, id, "", workflows.SignalPause, pause); err != nil {
		return dispatcher.BulkReplayStatus{}, bulkNotFound(temporalError(err, "signaling the bulk replay"), id)
	}
	st.Progress.Paused = pause
	return st, nil
}

// errHeld is why a start of a bulk replay was not made: the bulk replay
// is paused or canceled (held).
var errHeld = errors.New("it starts no replay")

// held returns errHeld, with why, when the latest control of bulk
// replay id (lastControl) is a pause or a cancel: a start that its worker
// takes up late (after a crash, or with no worker for a while) must not
// run once the bulk replay was paused.
func (e *Executions) held(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	op, err := e.lastControl(ctx, id)
	switch {
	case err != nil:
		return err
	case op == dispatcher.AuditPause:
		return fmt.Errorf("bulk replay %s is paused: %w until resumed", id, errHeld)
	case op == dispatcher.AuditCancel:
		return fmt.Errorf("bulk replay %s is canceled: %w", id, errHeld)
	}
	return nil
}

// lastControl returns the latest pause, resume or cancel of bulk replay id
// in the audit trail, which each writes before it signals; "" for none.
func (e *Executions) lastControl(ctx context.Context, id string) (string, error) {
	trail, err := e.audit.AuditTrail(ctx, id)
	if err != nil {
		return "", err
	}
	for _, a := range slices.Backward(trail) {
		switch a.Operation {
		case dispatcher.AuditPause, dispatcher.AuditResume, dispatcher.AuditCancel:
			return a.Operation, nil
		}
	}
	return "", nil
}

func bulkNotFound(err error, id string) error {
	if dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
		return err
	}
	return dispatcher.Errorf(dispatcher.ENOTFOUND, "Requested resource is unknown: no bulk replay %s", strings.TrimSpace(id))
}

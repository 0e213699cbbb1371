package dispatch

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// runRecord is what a run's history says.
type runRecord struct {
	input    workflows.DispatchInput
	config   *dispatcher.Config
	outcomes []dispatcher.ActionOutcome
	closed   bool // the history holds the run's result
	// recorded: the history holds more than the start and workflow
	// tasks, what the run did (a marker, an activity, a timer…); taken:
	// a worker took its workflow task, and it has not failed since.
	recorded, taken bool
	failure         string
	// unreadable: a payload this process cannot decrypt (undecryptable).
	unreadable error
}

// maxRuns bounds the runs listed with a detail.
const maxRuns = 100

// queryTimeout bounds the outcomes query of a running dispatch, which
// needs a worker to answer.
const queryTimeout = 5 * time.Second

// Get returns a run of a dispatch with its event, configuration, action
// outcomes, every run of the same workflow ID and the audit trail. An
// empty runID means the latest run. Errors: ENOTFOUND, EUNAVAILABLE.
func (e *Executions) Get(ctx context.Context, workflowID, runID string) (dispatcher.ExecutionDetail, error) {
	desc, err := e.describeRun(ctx, workflowID, runID)
	if err != nil {
		return dispatcher.ExecutionDetail{}, err
	}
	x := e.toExecution(desc.GetWorkflowExecutionInfo())
	rec, err := e.readRun(ctx, workflowID, x.RunID)
	if err != nil {
		return dispatcher.ExecutionDetail{}, err
	}
	d := dispatcher.ExecutionDetail{
		Execution: x, Event: rec.input.Event, Config: rec.config, ConfigPinned: rec.input.Config != nil && rec.input.Run != "",
		Only: rec.input.Only, Outcomes: rec.outcomes, Failure: rec.failure,
	}
	if !rec.closed {
		// Running, or ended without a result (terminated, timed out):
		// the query replays the history to the present.
		qctx, cancel := context.WithTimeout(ctx, queryTimeout)
		defer cancel()
		var outcomes []dispatcher.ActionOutcome
		if v, err := e.client.QueryWorkflow(qctx, workflowID, x.RunID, workflows.QueryOutcomes); err != nil {
			switch {
			case !rec.recorded && rec.config != nil && x.Status == dispatcher.ExecutionRunning:
				// Nothing recorded yet: its first workflow task runs
				// the first attempts, and answers no query until they end.
				d.Outcomes = workflows.PlannedOutcomes(rec.input, rec.config, e.now(), rec.taken)
			case rec.config != nil && (x.Status == dispatcher.ExecutionRunning || x.Status == dispatcher.ExecutionScheduled):
				// No worker answers (none runs, or all are busy): its
				// actions as planned, rather than none, saying so.
				// Before, a scheduled dispatch showed no action while
				// its workers were down.
				e.log.WarnContext(ctx, "outcomes query failed: the actions are shown as planned", "workflowId", workflowID, "runId", x.RunID, "err", err)
				d.Outcomes, d.OutcomesUnknown = workflows.PlannedOutcomes(rec.input, rec.config, e.now(), rec.taken), true
				for i, o := range d.Outcomes {
					switch {
					case o.CarriedFrom != "": // as the run it replays left it
					case slices.Contains(x.FailedActionIDs, o.ActionID):
						d.Outcomes[i].Status = dispatcher.OutcomeFailed
					case o.Status != dispatcher.OutcomeScheduled && o.Status != dispatcher.OutcomeSkipped:
						// Made, maybe, or waiting to be: before, shown
						// running after one attempt, also one that had
						// succeeded long before. One that retries is
						// running (withRetries).
						d.Outcomes[i].Status = dispatcher.OutcomeUnknown
					}
				}
			default:
				e.log.WarnContext(ctx, "outcomes query failed", "workflowId", workflowID, "runId", x.RunID, "err", err)
			}
		} else if err := v.Get(&outcomes); err == nil {
			d.Outcomes = outcomes
			if x.Status != dispatcher.ExecutionRunning && x.Status != dispatcher.ExecutionScheduled {
				// Ended (terminated, timed out) where it was: an action
				// running may have been made, and none goes on.
				for i, o := range d.Outcomes {
					if o.Status == dispatcher.OutcomeScheduled || o.Status == dispatcher.OutcomeWaiting || o.Status == dispatcher.OutcomeRunning {
						d.Outcomes[i].Status = dispatcher.OutcomeUnknown
					}
				}
			}
		}
		ended := x.Status != dispatcher.ExecutionRunning && x.Status != dispatcher.ExecutionScheduled
		d.NextAttempts = e.withRetries(d.Outcomes, desc.GetPendingActivities(), ended)
		for _, o := range d.Outcomes {
			if !o.NextAttemptAt.IsZero() { // the workflow's timer, before the regular activity's
				if d.NextAttempts == nil {
					d.NextAttempts = map[string]time.Time{}
				}
				d.NextAttempts[o.ActionID] = o.NextAttemptAt
			}
		}
		for i := range d.Outcomes {
			if d.Outcomes[i].Status == dispatcher.OutcomeUnknown {
				d.Outcomes[i].Attempts = 0 // how many is not known
			}
		}
	}
	infos, _, err := e.listAll(ctx, "WorkflowId = "+quote(workflowID), maxRuns)
	if err != nil {
		return dispatcher.ExecutionDetail{}, err
	}
	for _, info := range infos {
		d.Runs = append(d.Runs, e.toExecution(info))
	}
	if err := e.markReplayed(ctx, d.Runs); err != nil { // as the list marks them
		return dispatcher.ExecutionDetail{}, err
	}
	if d.Audit, err = e.audit.AuditTrail(ctx, workflowID); err != nil {
		return dispatcher.ExecutionDetail{}, err
	}
	// Of a completed run too: reset from a failed one, it may hold the
	// key still (a worker from before releaseAfterReset).
	if seq := sequenceParent(workflowID, desc.GetWorkflowExecutionInfo()); seq != "" && x.Status != dispatcher.ExecutionCanceled {
		if st, err := e.sequenceState(ctx, seq); err != nil {
			e.log.WarnContext(ctx, "the dispatch's ordering key could not be asked what it holds", "workflowId", workflowID, "err", err)
		} else {
			d.Blocking, d.Waiting, d.WaitingIDs = behind(st, x)
		}
	}
	return d, nil
}

// behind reports whether run x blocks its ordering key's Sequence, whose
// state is st, and the events the key holds behind it: those waiting,
// when x runs as the key's dispatch or blocks it.
func behind(st workflows.SequenceState, x dispatcher.Execution) (blocking bool, waiting int, ids []string) {
	queue := st.Queue
	failed := x.Status == dispatcher.ExecutionFailed
	switch r := st.Running; {
	case r != nil && r.WorkflowID == x.WorkflowID && r.RunID == x.RunID:
		// Handed over by an earlier run of the Sequence: failed, it
		// blocks the key, which the Sequence finds within 30 s.
		blocking = failed && r.Block && !r.Released
	case failed || st.Blocked == x.WorkflowID:
		if blocking = st.Blocked == x.WorkflowID; !blocking {
			return false, 0, nil
		}
	case r != nil:
		return false, 0, nil
	case len(queue) > 0 && queue[0].WorkflowID == x.WorkflowID:
		queue = queue[1:] // the head, which the Sequence runs
	default:
		return false, 0, nil
	}
	for _, q := range queue[:min(len(queue), dispatcher.MaxWaitingIDs)] {
		ids = append(ids, q.WorkflowID)
	}
	return blocking, len(queue), ids
}

// readRun reads a run's history: the input from its first event, the
// configuration from the LoadConfig marker (or the pinned one), and the
// outcomes from its close event. Dispatch histories are short: a few
// events per action.
func (e *Executions) readRun(ctx context.Context, workflowID, runID string) (runRecord, error) {
	if err := owned(ctx, workflowID); err != nil {
		return runRecord{}, err
	}
	var rec runRecord
	it := e.client.GetWorkflowHistory(ctx, workflowID, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return runRecord{}, notFound(temporalError(err, "reading the dispatch's history"), workflowID, runID)
		}
		e.readEvent(ev, &rec)
	}
	if rec.unreadable != nil {
		return rec, unreadable(rec.unreadable)
	}
	if rec.config == nil {
		rec.config = rec.input.Config
	}
	return rec, nil
}

func (e *Executions) readEvent(ev *historypb.HistoryEvent, rec *runRecord) {
	var res workflows.DispatchResult
	rec.recorded = rec.recorded || recordsWork(ev.GetEventType())
	switch ev.GetEventType() {
	case enums.EVENT_TYPE_WORKFLOW_TASK_STARTED:
		rec.taken = true
	case enums.EVENT_TYPE_WORKFLOW_TASK_FAILED, enums.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
		rec.taken = false // its retries are not in the history until one completes
	}
	switch ev.GetEventType() {
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
		if err := e.decode(rec, ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &rec.input); err != nil && !undecryptable(err) {
			e.log.Warn("could not decode a dispatch's input", "err", err)
		}
	case enums.EVENT_TYPE_MARKER_RECORDED:
		if cfg, ok := e.loadConfigMarker(rec, ev.GetMarkerRecordedEventAttributes()); ok {
			rec.config = cfg
		}
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
		rec.closed = true
		if e.decode(rec, ev.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &res) == nil {
			rec.outcomes = res.Outcomes
		}
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
		f := ev.GetWorkflowExecutionFailedEventAttributes().GetFailure()
		rec.failure = e.failureMessage(f)
		if details := f.GetApplicationFailureInfo().GetDetails(); details != nil && e.decode(rec, details, &res) == nil {
			rec.closed = true
			rec.outcomes = res.Outcomes
		}
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
		if details := ev.GetWorkflowExecutionCanceledEventAttributes().GetDetails(); details != nil && e.decode(rec, details, &res) == nil {
			rec.closed = true
			rec.outcomes = res.Outcomes
		}
		rec.failure = "canceled"
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
		rec.failure = "terminated: " + ev.GetWorkflowExecutionTerminatedEventAttributes().GetReason()
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
		rec.failure = "the dispatch timed out"
	}
}

// recordsWork reports whether an event of type t records something a run
// did: not its start, nor its workflow tasks.
func recordsWork(t enums.EventType) bool {
	switch t {
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, enums.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, enums.EVENT_TYPE_WORKFLOW_TASK_STARTED,
		enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, enums.EVENT_TYPE_WORKFLOW_TASK_FAILED, enums.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
		return false
	}
	return true
}

// loadConfigMarker returns the configuration a LoadConfig local activity
// recorded: the marker's "data" names the activity, its "result" holds
// what it returned.
func (e *Executions) loadConfigMarker(rec *runRecord, m *historypb.MarkerRecordedEventAttributes) (*dispatcher.Config, bool) {
	if m.GetMarkerName() != "LocalActivity" {
		return nil, false
	}
	var data struct{ ActivityType string }
	if e.decode(rec, m.GetDetails()["data"], &data) != nil || data.ActivityType != workflows.ActivityLoadConfig {
		return nil, false
	}
	result := m.GetDetails()["result"]
	if result == nil {
		return nil, false // it failed; a retry records another marker
	}
	var cfg dispatcher.Config
	if e.decode(rec, result, &cfg) != nil {
		return nil, false
	}
	return &cfg, true
}

// decode decodes p into v, noting in rec a payload it cannot decrypt: no
// detail nor replay is made of a run it cannot read whole. Before, they
// were, of an empty event, or without the outcomes.
func (e *Executions) decode(rec *runRecord, p *commonpb.Payloads, v any) error {
	err := e.dc.FromPayloads(p, v)
	if undecryptable(err) && rec.unreadable == nil {
		rec.unreadable = err
	}
	return err
}

// History returns one page of a run's raw history; an empty runID means
// the latest run. Errors: ENOTFOUND, EINVALID (page token), EUNAVAILABLE.
//
// Its page tokens are its own, the run and the event the next page starts
// at, not Temporal's: Temporal reads the history its token names, whatever
// run the request names, appends the events a token carries to the page
// (which the payload codec would then decrypt), and trims a history whose
// token it cannot follow. A page is read from the run's start, up to its
// first event: a dispatch's history is short, and none is past Temporal's
// limit of 51,200 events.
func (e *Executions) History(ctx context.Context, workflowID, runID string, n int, pageToken string) (dispatcher.HistoryPage, error) {
	// Before anything: with a run id nothing below describes the run,
	// and a run id is no secret (links, logs, the Temporal UI).
	if err := owned(ctx, workflowID); err != nil {
		return dispatcher.HistoryPage{}, err
	}
	if err := checkRunID(runID); err != nil {
		return dispatcher.HistoryPage{}, err
	}
	tokenRun, from, err := e.decodeHistoryToken(ctx, pageToken)
	switch {
	case err != nil:
		return dispatcher.HistoryPage{}, err
	case tokenRun != "" && runID != "" && runID != tokenRun:
		return dispatcher.HistoryPage{}, dispatcher.Errorf(dispatcher.EINVALID, "pageToken: is a token of another run's history than runId's; start again from its first page")
	case tokenRun != "":
		runID = tokenRun // every page from the same run, even if a replay starts meanwhile
	case runID == "":
		x, err := e.describe(ctx, workflowID, "")
		if err != nil {
			return dispatcher.HistoryPage{}, err
		}
		runID = x.RunID
	}
	size := pageSize(n, defaultHistoryPage, maxHistoryPage)
	page := dispatcher.HistoryPage{RunID: runID}
	h := &historypb.History{}
	var token []byte
read:
	for {
		res, err := e.client.WorkflowService().GetWorkflowExecutionHistory(ctx, &workflowservice.GetWorkflowExecutionHistoryRequest{
			Namespace:       e.namespace,
			Execution:       &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: runID},
			MaximumPageSize: int32(max(size, defaultHistoryPage)),
			NextPageToken:   token,
		})
		if err != nil {
			return dispatcher.HistoryPage{}, notFound(temporalError(err, "reading the dispatch's history"), workflowID, runID)
		}
		for _, ev := range res.GetHistory().GetEvents() {
			switch {
			case ev.GetEventId() < from:
			case len(h.Events) == size:
				page.NextPageToken = e.encodeHistoryToken(ctx, runID, ev.GetEventId())
				break read
			default:
				h.Events = append(h.Events, ev)
			}
		}
		if token = res.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	if err := e.decodeHistory(ctx, h); err != nil {
		return dispatcher.HistoryPage{}, fmt.Errorf("decrypting the history of %s: %w", workflowID, err)
	}
	for _, ev := range h.GetEvents() {
		b, err := protojson.Marshal(ev)
		if err != nil {
			return dispatcher.HistoryPage{}, err
		}
		page.Events = append(page.Events, b)
	}
	return page, nil
}

// encodeHistoryToken is the page token of run's history from event on.
func (e *Executions) encodeHistoryToken(ctx context.Context, run string, event int64) string {
	return e.encodeToken(ctx, historyToken, []byte(run+"/"+strconv.FormatInt(event, 10)))
}

// decodeHistoryToken returns the run and first event of a history page
// token; none for no token.
func (e *Executions) decodeHistoryToken(ctx context.Context, s string) (run string, event int64, err error) {
	b, err := e.decodeToken(ctx, historyToken, s)
	if err != nil || b == nil {
		return "", 0, err
	}
	run, ev, _ := strings.Cut(string(b), "/")
	if event, err = strconv.ParseInt(ev, 10, 64); err != nil || event < 1 || uuid.Validate(run) != nil {
		return "", 0, dispatcher.Errorf(dispatcher.EINVALID, "pageToken: is not a token this API handed out to you; start again without it")
	}
	return run, event, nil
}

// History page sizes.
const (
	defaultHistoryPage = 100
	maxHistoryPage     = 1000
)

// withRetries completes the outcomes of running actions with what
// Temporal knows of their regular activity (workflows.ActionActivityID)
// while it retries: the attempts made, and the last attempt's error and
// class. The workflow learns them only once the activity ends. Of a run
// that ended (terminated, timed out), which Temporal still lists the
// activity of, only the last error: the action stays unknown, and no
// attempt comes. Before, it showed running, its next attempt due.
func (e *Executions) withRetries(outcomes []dispatcher.ActionOutcome, pending []*workflowpb.PendingActivityInfo, ended bool) (next map[string]time.Time) {
	for _, pa := range pending {
		for i := range outcomes {
			o := &outcomes[i]
			if o.Status != dispatcher.OutcomeRunning && o.Status != dispatcher.OutcomeUnknown || pa.GetActivityId() != workflows.ActionActivityID(o.ActionID) {
				continue
			}
			if f := pa.GetLastFailure(); f != nil {
				o.Error, o.ErrorClass = e.failureMessage(f), f.GetApplicationFailureInfo().GetType()
			}
			if ended {
				continue
			}
			o.Status = dispatcher.OutcomeRunning // its regular activity runs or waits to retry
			// Attempt is the one in flight or, in the backoff after a
			// failure, the next; the outcome counts the attempts made or
			// in flight, the first regular one among them.
			made := int(pa.GetAttempt()) - 1
			if pa.GetState() == enums.PENDING_ACTIVITY_STATE_SCHEDULED {
				made--
			}
			o.Attempts += max(made, 0)
			if t := pa.GetNextAttemptScheduleTime(); t != nil {
				if next == nil {
					next = map[string]time.Time{}
				}
				next[o.ActionID] = t.AsTime()
			}
		}
	}
	return next
}

// failureMessage returns a failure's message, decrypted when the worker
// encrypted it (FailureConverter).
func (e *Executions) failureMessage(f *failurepb.Failure) string {
	if f.GetEncodedAttributes() == nil {
		return f.GetMessage()
	}
	f = proto.Clone(f).(*failurepb.Failure)
	converter.DecodeCommonFailureAttributes(e.dc, f)
	return f.GetMessage()
}

// decodeHistory decrypts, in place, the payloads of h and the failure
// messages the worker encrypted, so that the raw history reads as it
// would without encryption. It does nothing when payloads are not
// encrypted; search attributes never are.
func (e *Executions) decodeHistory(ctx context.Context, h *historypb.History) error {
	err := proxy.VisitPayloads(ctx, h, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, p []*commonpb.Payload) ([]*commonpb.Payload, error) {
			return e.codec.Decode(p)
		},
	})
	if undecryptable(err) {
		return unreadable(err)
	} else if err != nil {
		return err
	}
	return proxy.VisitFailures(ctx, h, proxy.VisitFailuresOptions{
		Visitor: func(_ *proxy.VisitFailuresContext, f *failurepb.Failure) error {
			// Its payload is decrypted already; one another codec
			// encrypted stays as it is.
			var attrs map[string]any
			if dc := converter.GetDefaultDataConverter(); f.GetEncodedAttributes() != nil && dc.FromPayload(f.GetEncodedAttributes(), &attrs) == nil {
				converter.DecodeCommonFailureAttributes(dc, f)
				f.EncodedAttributes = nil
			}
			return nil
		},
	})
}

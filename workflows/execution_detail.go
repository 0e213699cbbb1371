package workflows

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
)

// ExecutionDetail is everything support needs about one run of a dispatch.
type ExecutionDetail struct {
	dispatcher.Execution
	Event dispatcher.Event
	// Config is the configuration the run ran with, as its history
	// recorded it; nil when the run ended before it loaded one.
	Config *activities.Config
	// ConfigPinned is true when the run was handed its configuration (a
	// replay with the original configuration) rather than loading it.
	ConfigPinned bool
	// Only lists the actions the run was limited to; empty means all.
	Only []string
	// Outcomes is what became of each action: the run's result once it
	// closed, the outcomes query while it runs.
	Outcomes []ActionOutcome
	Failure  string // why the run failed, when it did
	// Runs lists every run of the workflow ID (the first dispatch and its
	// replays), newest first.
	Runs  []dispatcher.Execution
	Audit []dispatcher.AuditEntry
}

// runRecord is what a run's history says.
type runRecord struct {
	input    DispatchInput
	config   *activities.Config
	outcomes []ActionOutcome
	closed   bool // the history holds the run's result
	failure  string
}

// maxRuns bounds the runs listed with a detail.
const maxRuns = 100

// queryTimeout bounds the outcomes query of a running dispatch, which
// needs a worker to answer.
const queryTimeout = 5 * time.Second

// Get returns a run of a dispatch with its event, configuration, action
// outcomes, every run of the same workflow ID and the audit trail. An
// empty runID means the latest run. Errors: ENOTFOUND, EUNAVAILABLE.
func (e *Executions) Get(ctx context.Context, workflowID, runID string) (ExecutionDetail, error) {
	x, err := e.describe(ctx, workflowID, runID)
	if err != nil {
		return ExecutionDetail{}, err
	}
	rec, err := e.readRun(ctx, workflowID, x.RunID)
	if err != nil {
		return ExecutionDetail{}, err
	}
	d := ExecutionDetail{
		Execution: x, Event: rec.input.Event, Config: rec.config, ConfigPinned: rec.input.Config != nil,
		Only: rec.input.Only, Outcomes: rec.outcomes, Failure: rec.failure,
	}
	if !rec.closed {
		// Running, or ended without a result (terminated, timed out):
		// the query replays the history to the present.
		qctx, cancel := context.WithTimeout(ctx, queryTimeout)
		defer cancel()
		var outcomes []ActionOutcome
		if v, err := e.client.QueryWorkflow(qctx, workflowID, x.RunID, QueryOutcomes); err != nil {
			slog.WarnContext(ctx, "outcomes query failed", "workflowId", workflowID, "runId", x.RunID, "err", err)
		} else if err := v.Get(&outcomes); err == nil {
			d.Outcomes = outcomes
		}
	}
	infos, _, err := e.listAll(ctx, "WorkflowId = "+quote(workflowID), maxRuns)
	if err != nil {
		return ExecutionDetail{}, err
	}
	for _, info := range infos {
		d.Runs = append(d.Runs, e.toExecution(info))
	}
	if d.Audit, err = e.audit.AuditTrail(ctx, workflowID); err != nil {
		return ExecutionDetail{}, err
	}
	return d, nil
}

// readRun reads a run's history: the input from its first event, the
// configuration from the LoadConfig marker (or the pinned one), and the
// outcomes from its close event. Dispatch histories are short: a few
// events per action.
func (e *Executions) readRun(ctx context.Context, workflowID, runID string) (runRecord, error) {
	var rec runRecord
	it := e.client.GetWorkflowHistory(ctx, workflowID, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return runRecord{}, notFound(temporalError(err, "reading the dispatch's history"), workflowID, runID)
		}
		e.readEvent(ev, &rec)
	}
	if rec.config == nil {
		rec.config = rec.input.Config
	}
	return rec, nil
}

func (e *Executions) readEvent(ev *historypb.HistoryEvent, rec *runRecord) {
	var res DispatchResult
	switch ev.GetEventType() {
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
		_ = e.dc.FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &rec.input)
	case enums.EVENT_TYPE_MARKER_RECORDED:
		if cfg, ok := e.loadConfigMarker(ev.GetMarkerRecordedEventAttributes()); ok {
			rec.config = cfg
		}
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
		rec.closed = true
		if e.dc.FromPayloads(ev.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &res) == nil {
			rec.outcomes = res.Outcomes
		}
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
		f := ev.GetWorkflowExecutionFailedEventAttributes().GetFailure()
		rec.failure = f.GetMessage()
		if details := f.GetApplicationFailureInfo().GetDetails(); details != nil && e.dc.FromPayloads(details, &res) == nil {
			rec.closed = true
			rec.outcomes = res.Outcomes
		}
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
		if details := ev.GetWorkflowExecutionCanceledEventAttributes().GetDetails(); details != nil && e.dc.FromPayloads(details, &res) == nil {
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

// loadConfigMarker returns the configuration a LoadConfig local activity
// recorded: the marker's "data" names the activity, its "result" holds
// what it returned.
func (e *Executions) loadConfigMarker(m *historypb.MarkerRecordedEventAttributes) (*activities.Config, bool) {
	if m.GetMarkerName() != "LocalActivity" {
		return nil, false
	}
	var data struct{ ActivityType string }
	if e.dc.FromPayloads(m.GetDetails()["data"], &data) != nil || data.ActivityType != ActivityLoadConfig {
		return nil, false
	}
	result := m.GetDetails()["result"]
	if result == nil {
		return nil, false // it failed; a retry records another marker
	}
	var cfg activities.Config
	if e.dc.FromPayloads(result, &cfg) != nil {
		return nil, false
	}
	return &cfg, true
}

// HistoryPage is one page of a run's raw Temporal history.
type HistoryPage struct {
	RunID string
	// Events are history events as Temporal's JSON encoding (protojson)
	// gives them, the form `temporal workflow show --output json` uses.
	Events        []json.RawMessage
	NextPageToken string
}

// History returns one page of a run's raw history; an empty runID means
// the latest run. Errors: ENOTFOUND, EINVALID (page token), EUNAVAILABLE.
func (e *Executions) History(ctx context.Context, workflowID, runID string, pageSize int, pageToken string) (HistoryPage, error) {
	token, err := decodeToken(pageToken)
	if err != nil {
		return HistoryPage{}, err
	}
	if runID == "" {
		// Pin the run, so that every page comes from the same one even if
		// a replay starts meanwhile.
		x, err := e.describe(ctx, workflowID, "")
		if err != nil {
			return HistoryPage{}, err
		}
		runID = x.RunID
	}
	res, err := e.client.WorkflowService().GetWorkflowExecutionHistory(ctx, &workflowservice.GetWorkflowExecutionHistoryRequest{
		Namespace:       e.namespace,
		Execution:       &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: runID},
		MaximumPageSize: int32(clampHistoryPageSize(pageSize)),
		NextPageToken:   token,
	})
	if err != nil {
		return HistoryPage{}, notFound(temporalError(err, "reading the dispatch's history"), workflowID, runID)
	}
	page := HistoryPage{RunID: runID, NextPageToken: encodeToken(res.GetNextPageToken())}
	for _, ev := range res.GetHistory().GetEvents() {
		b, err := protojson.Marshal(ev)
		if err != nil {
			return HistoryPage{}, err
		}
		page.Events = append(page.Events, b)
	}
	return page, nil
}

// History page sizes.
const (
	DefaultHistoryPageSize = 100
	MaxHistoryPageSize     = 1000
)

func clampHistoryPageSize(n int) int {
	switch {
	case n <= 0:
		return DefaultHistoryPageSize
	case n > MaxHistoryPageSize:
		return MaxHistoryPageSize
	}
	return n
}

package api

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// executionResponse is one run of a dispatch on the wire.
type executionResponse struct {
	WorkflowID        string                `json:"workflowId"`
	RunID             string                `json:"runId"`
	EventID           string                `json:"eventId"`
	EventType         string                `json:"eventType"`
	Status            string                `json:"status"`
	StartTimestamp    int64                 `json:"startTimestamp"`
	CloseTimestamp    *int64                `json:"closeTimestamp,omitempty"`
	DispatcherIDs     []string              `json:"dispatcherIds"`
	FailedActionCount int                   `json:"failedActionCount"`
	FailedActionIDs   []string              `json:"failedActionIds"`
	ErrorClasses      []string              `json:"errorClasses"`
	Failures          []classDispatcherJSON `json:"failures"`
	Replay            *replayInfoJSON       `json:"replay,omitempty"`
	WebURL            string                `json:"webUrl,omitempty"`
}

type classDispatcherJSON struct {
	ErrorClass   string `json:"errorClass"`
	DispatcherID string `json:"dispatcherId,omitempty"`
}

// replayInfoJSON says what a replay run replays.
type replayInfoJSON struct {
	Of           string `json:"of"`
	ID           string `json:"id,omitempty"`
	RequestedBy  string `json:"requestedBy,omitempty"`
	BulkReplayID string `json:"bulkReplayId,omitempty"`
}

// executionPage is a page of a cursor-paged list.
type executionPage struct {
	Data []executionResponse `json:"data"`
	Page struct {
		Limit         int    `json:"limit"`
		NextPageToken string `json:"nextPageToken,omitempty"`
	} `json:"page"`
}

// executionDetailResponse is GET /executions/v1/{workflowId}.
type executionDetailResponse struct {
	executionResponse
	Event   eventResponse        `json:"event"`
	Config  *configResponse      `json:"config"`
	Only    []string             `json:"only,omitempty"`
	Actions []actionOutcomeJSON  `json:"actions"`
	Failure string               `json:"failure,omitempty"`
	Runs    []executionResponse  `json:"runs"`
	Audit   []auditEntryResponse `json:"audit"`
}

type eventResponse struct {
	ID                string          `json:"id"`
	Type              string          `json:"type"`
	Content           json.RawMessage `json:"content"`
	CreationTimestamp int64           `json:"creationTimestamp"`
	Source            string          `json:"source,omitempty"`
}

// configResponse is the configuration a run ran with.
type configResponse struct {
	Version     int64                `json:"version"`
	Pinned      bool                 `json:"pinned"`
	Dispatchers []dispatcherResponse `json:"dispatchers"`
	Functions   []functionRefJSON    `json:"functions"`
}

type functionRefJSON struct {
	Name           string `json:"name"`
	Kind           string `json:"kind"`
	TimeoutSeconds int    `json:"timeoutSeconds,omitempty"`
	TaskQueue      string `json:"taskQueue,omitempty"`
}

type actionOutcomeJSON struct {
	DispatcherID    string         `json:"dispatcherId"`
	DispatcherName  string         `json:"dispatcherName,omitempty"`
	ActionID        string         `json:"actionId"`
	ActionName      string         `json:"actionName,omitempty"`
	Type            string         `json:"type"`
	Status          string         `json:"status"`
	Attempts        int            `json:"attempts"`
	LastError       *lastErrorJSON `json:"lastError,omitempty"`
	StartTimestamp  *int64         `json:"startTimestamp,omitempty"`
	FinishTimestamp *int64         `json:"finishTimestamp,omitempty"`
	HTTPStatus      int            `json:"httpStatus,omitempty"`
	MessageID       string         `json:"messageId,omitempty"`
}

type lastErrorJSON struct {
	Message string `json:"message"`
	Class   string `json:"class"`
}

type auditEntryResponse struct {
	Operation    string   `json:"operation"`
	Actor        string   `json:"actor"`
	Timestamp    int64    `json:"timestamp"`
	RunID        string   `json:"runId,omitempty"`
	NewRunID     string   `json:"newRunId,omitempty"`
	Actions      []string `json:"actions,omitempty"`
	Config       string   `json:"config,omitempty"`
	BulkReplayID string   `json:"bulkReplayId,omitempty"`
}

// historyResponse is one page of a run's raw Temporal history.
type historyResponse struct {
	WorkflowID    string            `json:"workflowId"`
	RunID         string            `json:"runId"`
	Events        []json.RawMessage `json:"events"`
	NextPageToken string            `json:"nextPageToken,omitempty"`
}

type failuresResponse struct {
	Failed     int                `json:"failed"`
	Superseded int                `json:"superseded"`
	Truncated  bool               `json:"truncated"`
	Groups     []failureGroupJSON `json:"groups"`
}

type failureGroupJSON struct {
	ErrorClass     string     `json:"errorClass"`
	DispatcherID   string     `json:"dispatcherId,omitempty"`
	DispatcherName string     `json:"dispatcherName,omitempty"`
	Count          int        `json:"count"`
	Summary        string     `json:"summary"`
	Sample         sampleJSON `json:"sample"`
}

type sampleJSON struct {
	Message    string `json:"message"`
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
}

// replayRequest is the body of POST /executions/v1/{workflowId}/replay;
// an empty body replays the failed actions with the original
// configuration.
type replayRequest struct {
	RunID   string   `json:"runId"`
	Actions []string `json:"actions"`
	Config  string   `json:"config"`
}

type replayResponse struct {
	WorkflowID     string   `json:"workflowId"`
	RunID          string   `json:"runId"`
	ReplayOf       string   `json:"replayOf"`
	ReplayID       string   `json:"replayId"`
	Actions        []string `json:"actions"`
	Config         string   `json:"config"`
	AlreadyStarted bool     `json:"alreadyStarted,omitempty"`
}

// filterJSON holds the list filters as a request body carries them.
type filterJSON struct {
	EventType    string          `json:"eventType"`
	EventID      string          `json:"eventId"`
	DispatcherID string          `json:"dispatcherId"`
	ActionID     string          `json:"actionId"`
	Status       string          `json:"status"`
	ErrorClass   string          `json:"errorClass"`
	From         json.RawMessage `json:"from"`
	To           json.RawMessage `json:"to"`
}

// bulkReplayRequest is the body of POST /executions/v1/replays.
type bulkReplayRequest struct {
	filterJSON
	Actions []string `json:"actions"`
	Config  string   `json:"config"`
	Rate    float64  `json:"rate"`
	DryRun  bool     `json:"dryRun"`
}

type dryRunResponse struct {
	DryRun  bool                `json:"dryRun"`
	Matched int64               `json:"matched"`
	Sample  []executionResponse `json:"sample"`
}

type bulkReplayResponse struct {
	ID             string         `json:"id"`
	Status         string         `json:"status"`
	Filter         filterResponse `json:"filter"`
	Actions        []string       `json:"actions,omitempty"`
	Config         string         `json:"config"`
	Rate           float64        `json:"rate"`
	RequestedBy    string         `json:"requestedBy,omitempty"`
	Progress       progressJSON   `json:"progress"`
	StartTimestamp int64          `json:"startTimestamp"`
	CloseTimestamp *int64         `json:"closeTimestamp,omitempty"`
	WebURL         string         `json:"webUrl,omitempty"`
}

type filterResponse struct {
	EventType    string `json:"eventType,omitempty"`
	EventID      string `json:"eventId,omitempty"`
	DispatcherID string `json:"dispatcherId,omitempty"`
	ActionID     string `json:"actionId,omitempty"`
	Status       string `json:"status,omitempty"`
	ErrorClass   string `json:"errorClass,omitempty"`
	From         *int64 `json:"from,omitempty"`
	To           *int64 `json:"to,omitempty"`
}

type progressJSON struct {
	Matched   int      `json:"matched"`
	Processed int      `json:"processed"`
	Replayed  int      `json:"replayed"`
	Skipped   int      `json:"skipped"`
	Succeeded int      `json:"succeeded"`
	Failed    int      `json:"failed"`
	Pending   int      `json:"pending"`
	Remaining int      `json:"remaining"`
	Errors    []string `json:"errors"`
}

func toFilter(f filterJSON) (dispatcher.ExecutionFilter, error) {
	out := dispatcher.ExecutionFilter{EventType: f.EventType, EventID: f.EventID, DispatcherID: f.DispatcherID,
		ActionID: f.ActionID, Status: f.Status, ErrorClass: f.ErrorClass}
	for _, b := range []struct {
		name string
		raw  json.RawMessage
		dst  *time.Time
	}{{"from", f.From, &out.From}, {"to", f.To, &out.To}} {
		if len(b.raw) == 0 || string(b.raw) == "null" {
			continue
		}
		t, err := parseTimestamp(b.raw)
		if err != nil {
			return out, dispatcher.Errorf(dispatcher.EINVALID, "%s: %v", b.name, err)
		}
		*b.dst = t
	}
	return out, nil
}

func toExecutionResponse(x dispatcher.Execution) executionResponse {
	out := executionResponse{
		WorkflowID: x.WorkflowID, RunID: x.RunID, EventID: x.EventID, EventType: x.EventType, Status: x.Status,
		StartTimestamp: x.Start.UnixMilli(), CloseTimestamp: optionalMillis(x.Close),
		DispatcherIDs: nonNil(x.DispatcherIDs), FailedActionCount: len(x.FailedActionIDs),
		FailedActionIDs: nonNil(x.FailedActionIDs), ErrorClasses: nonNil(x.ErrorClasses),
		Failures: make([]classDispatcherJSON, len(x.Failures)), WebURL: x.WebURL,
	}
	for i, p := range x.Failures {
		out.Failures[i] = classDispatcherJSON{ErrorClass: p.ErrorClass, DispatcherID: p.DispatcherID}
	}
	if x.Replay.Of != "" {
		out.Replay = &replayInfoJSON{Of: x.Replay.Of, ID: x.Replay.ID, RequestedBy: x.Replay.RequestedBy, BulkReplayID: x.Replay.BulkReplayID}
	}
	return out
}

func toExecutionDetailResponse(d workflows.ExecutionDetail) executionDetailResponse {
	out := executionDetailResponse{
		executionResponse: toExecutionResponse(d.Execution),
		Event: eventResponse{ID: d.Event.ID, Type: d.Event.Type, Content: d.Event.Content,
			CreationTimestamp: d.Event.Time.UnixMilli(), Source: d.Event.Source},
		Config:  toConfigResponse(d.Config, d.ConfigPinned),
		Only:    d.Only,
		Actions: make([]actionOutcomeJSON, len(d.Outcomes)),
		Failure: d.Failure,
		Runs:    make([]executionResponse, len(d.Runs)),
		Audit:   make([]auditEntryResponse, len(d.Audit)),
	}
	if len(out.Event.Content) == 0 {
		out.Event.Content = json.RawMessage("{}")
	}
	for i, o := range d.Outcomes {
		out.Actions[i] = toActionOutcomeJSON(o)
	}
	for i, r := range d.Runs {
		out.Runs[i] = toExecutionResponse(r)
	}
	for i, a := range d.Audit {
		out.Audit[i] = auditEntryResponse{Operation: a.Operation, Actor: a.Actor, Timestamp: a.At.UnixMilli(), RunID: a.RunID,
			NewRunID: a.NewRunID, Actions: a.Actions, Config: a.Config, BulkReplayID: a.BulkReplayID}
	}
	return out
}

func toConfigResponse(cfg *activities.Config, pinned bool) *configResponse {
	if cfg == nil {
		return nil
	}
	out := &configResponse{Version: cfg.Version, Pinned: pinned,
		Dispatchers: make([]dispatcherResponse, len(cfg.Dispatchers)), Functions: make([]functionRefJSON, len(cfg.Functions))}
	for i, d := range cfg.Dispatchers {
		out.Dispatchers[i] = toDispatcherResponse(d)
	}
	for i, f := range cfg.Functions {
		out.Functions[i] = functionRefJSON{Name: f.Name, Kind: f.Kind, TimeoutSeconds: int(f.Timeout.Seconds()), TaskQueue: f.TaskQueue}
	}
	return out
}

func toActionOutcomeJSON(o workflows.ActionOutcome) actionOutcomeJSON {
	out := actionOutcomeJSON{DispatcherID: o.DispatcherID, DispatcherName: o.DispatcherName, ActionID: o.ActionID,
		ActionName: o.ActionName, Type: o.Type, Status: o.Status, Attempts: o.Attempts,
		StartTimestamp: optionalMillis(o.StartedAt), FinishTimestamp: optionalMillis(o.FinishedAt),
		HTTPStatus: o.HTTPStatus, MessageID: o.MessageID}
	if o.Error != "" || o.ErrorClass != "" {
		out.LastError = &lastErrorJSON{Message: o.Error, Class: o.ErrorClass}
	}
	return out
}

func toFailuresResponse(s workflows.FailureSummary) failuresResponse {
	out := failuresResponse{Failed: s.Failed, Superseded: s.Superseded, Truncated: s.Truncated, Groups: make([]failureGroupJSON, len(s.Groups))}
	for i, g := range s.Groups {
		who := g.DispatcherName
		if who == "" {
			who = g.DispatcherID
		}
		summary := fmt.Sprintf("%d × %s: %s", g.Count, g.ErrorClass, g.Sample)
		if who != "" {
			summary += ", dispatcher " + who
		}
		out.Groups[i] = failureGroupJSON{ErrorClass: g.ErrorClass, DispatcherID: g.DispatcherID, DispatcherName: g.DispatcherName,
			Count: g.Count, Summary: summary, Sample: sampleJSON{Message: g.Sample, WorkflowID: g.SampleWorkflowID, RunID: g.SampleRunID}}
	}
	return out
}

func toReplayResponse(r dispatcher.ReplayResult) replayResponse {
	return replayResponse{WorkflowID: r.WorkflowID, RunID: r.RunID, ReplayOf: r.ReplayOf, ReplayID: r.ReplayID,
		Actions: nonNil(r.Actions), Config: r.Config, AlreadyStarted: r.AlreadyStarted}
}

func toBulkReplayResponse(b workflows.BulkReplayStatus) bulkReplayResponse {
	f := b.Request.Filter
	p := b.Progress
	return bulkReplayResponse{
		ID: b.ID, Status: b.Status,
		Filter: filterResponse{EventType: f.EventType, EventID: f.EventID, DispatcherID: f.DispatcherID, ActionID: f.ActionID,
			Status: f.Status, ErrorClass: f.ErrorClass, From: optionalMillis(f.From), To: optionalMillis(f.To)},
		Actions: b.Request.Actions, Config: b.Request.Config, Rate: b.Request.Rate, RequestedBy: b.Request.Actor,
		Progress: progressJSON{Matched: p.Matched, Processed: p.Processed, Replayed: p.Replayed, Skipped: p.Skipped,
			Succeeded: p.Succeeded, Failed: p.Failed, Pending: p.Pending, Remaining: p.Remaining, Errors: nonNil(p.Errors)},
		StartTimestamp: b.Start.UnixMilli(), CloseTimestamp: optionalMillis(b.Close), WebURL: b.WebURL,
	}
}

func optionalMillis(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}

// nonNil keeps empty lists as [] rather than null on the wire.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

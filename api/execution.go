package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/gin-gonic/gin"
)

// Executions is what the API needs of the executions service
// (dispatch.Executions): the support view of dispatches over Temporal.
// Methods return *dispatcher.Error values: ENOTFOUND, EINVALID, ESTATE
// (the dispatch's state forbids it), EUNAVAILABLE; anything else is a 500.
type Executions interface {
	List(ctx context.Context, f dispatcher.ExecutionFilter, r dispatcher.ListRequest) (dispatcher.ExecutionPage, error)
	Get(ctx context.Context, workflowID, runID string) (dispatcher.ExecutionDetail, error)
	History(ctx context.Context, workflowID, runID string, pageSize int, pageToken string) (dispatcher.HistoryPage, error)
	Failures(ctx context.Context, f dispatcher.ExecutionFilter, includeReplayed bool, buckets int) (dispatcher.FailureSummary, error)
	Replay(ctx context.Context, r dispatcher.ReplayRequest) (dispatcher.ReplayResult, error)
	Cancel(ctx context.Context, workflowID, actor string) (dispatcher.Execution, error)
	Release(ctx context.Context, workflowID, actor string) (dispatcher.Execution, error)
	DryRunBulkReplay(ctx context.Context, r dispatcher.BulkReplayRequest, sampleSize int) (dispatcher.BulkReplayDryRun, error)
	StartBulkReplay(ctx context.Context, r dispatcher.BulkReplayRequest) (dispatcher.BulkReplayStatus, error)
	BulkReplay(ctx context.Context, id string) (dispatcher.BulkReplayStatus, error)
	BulkReplays(ctx context.Context, limit int) ([]dispatcher.BulkReplayStatus, error)
	CancelBulkReplay(ctx context.Context, id, actor string) (dispatcher.BulkReplayStatus, error)
	PauseBulkReplay(ctx context.Context, id, actor string, pause bool) (dispatcher.BulkReplayStatus, error)
}

// dryRunSample is how many runs a dry run shows.
const dryRunSample = 10

// validWorkflowID refuses a path parameter that is not a dispatch's
// workflow ID with 400 code 12. A tenant's caller may leave out the
// tenant: dispatch-evt-1 is theirs, <tenant>:dispatch-evt-1 (before, it
// was the implicit tenant's, never theirs to see: a 404).
func validWorkflowID(c *gin.Context) {
	id := c.Param("workflowId")
	if !dispatcher.ValidWorkflowID(id) {
		abort(c, errIDFormat, fmt.Sprintf("workflowId: %q is not the workflow ID of a dispatch ([<tenant>:]dispatch-<event id>, or dispatch.<hash> for a CloudEvent or an id of other characters)", id))
		return
	}
	ownParam(c, "workflowId")
	c.Next()
}

// ownParam puts the caller's tenant before path parameter name when it
// names none (ownID).
func ownParam(c *gin.Context, name string) {
	for i := range c.Params {
		if c.Params[i].Key == name {
			c.Params[i].Value = ownID(c, c.Params[i].Value)
		}
	}
}

// ownID is a dispatch's or a bulk replay's id in the caller's tenant: a
// tenant's caller may leave the tenant out.
func ownID(c *gin.Context, id string) string {
	if t := principalOf(c).Tenant; t != "" && id != "" && !strings.Contains(id, ":") {
		return dispatcher.TenantWorkflowID(t, id)
	}
	return id
}

// The query parameters of the executions routes.
var (
	filterParams  = []string{"eventType", "eventId", "dispatcherId", "actionId", "status", "errorClass", "bulkReplayId", "skipReason", "from", "to"}
	listParams    = append(slices.Clip(filterParams), "hideReplayed", "limit", "pageToken")
	failureParams = append(slices.Clip(filterParams), "includeReplayed", "buckets")
	historyParams = []string{"runId", "limit", "pageToken"}
)

// validQuery refuses, with 400 code 15, a query string that does not
// parse (Go drops a malformed pair) or has a parameter other than known
// (a misspelt "stauts"): either way the request would go on without the
// filter it meant to send.
func validQuery(known ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		q, err := url.ParseQuery(c.Request.URL.RawQuery)
		if err != nil {
			abort(c, errFieldFormat, "the query string: "+err.Error())
			return
		}
		for _, k := range slices.Sorted(maps.Keys(q)) {
			if slices.Contains(known, k) {
				if len(q[k]) > 1 {
					abort(c, errFieldFormat, fmt.Sprintf("%s: given %d times; a filter takes one value", k, len(q[k])))
					return
				}
				if q[k][0] == "" && slices.Contains(filterParams, k) {
					// A script's unset variable: before, it filtered by
					// nothing, and listed every dispatch.
					abort(c, errFieldFormat, k+": empty; leave the parameter out not to filter by it")
					return
				}
				continue
			}
			msg := fmt.Sprintf("%s: unknown query parameter; the parameters are %s", k, strings.Join(known, ", "))
			if len(known) == 0 {
				msg = k + ": unknown query parameter; this route takes none"
			}
			if i := slices.IndexFunc(known, func(n string) bool { return wire.Nearly(k, n) }); i >= 0 {
				msg = fmt.Sprintf("%s: unknown query parameter; did you mean %q?", k, known[i])
			}
			abort(c, errFieldFormat, msg)
			return
		}
		c.Next()
	}
}

// validBulkReplayID refuses a malformed bulk replay id with 400 code 12.
// A tenant's caller may leave the tenant out, as of a dispatch's id.
// Before, bulk-replay-… was the implicit tenant's, a 404 to them.
func validBulkReplayID(c *gin.Context) {
	if id := c.Param("id"); !dispatcher.ValidBulkReplayID(id) {
		abort(c, errIDFormat, fmt.Sprintf("id: %q is not the id of a bulk replay ([<tenant>:]bulk-replay-<24 hex digits>)", id))
		return
	}
	ownParam(c, "id")
	c.Next()
}

// filterFromQuery reads the list filters from the query string.
func filterFromQuery(c *gin.Context) (dispatcher.ExecutionFilter, error) {
	f := wire.Filter{
		EventType: c.Query("eventType"), EventID: c.Query("eventId"), DispatcherID: c.Query("dispatcherId"),
		ActionID: c.Query("actionId"), Status: c.Query("status"), ErrorClass: c.Query("errorClass"),
		BulkReplayID: ownID(c, c.Query("bulkReplayId")), SkipReason: c.Query("skipReason"),
	}
	for _, p := range []struct {
		name string
		dst  *json.RawMessage
	}{{"from", &f.From}, {"to", &f.To}} {
		v := c.Query(p.name)
		if v == "" {
			continue
		}
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			*p.dst = json.RawMessage(v)
		} else {
			*p.dst, _ = json.Marshal(v)
		}
	}
	return f.ToDomain()
}

// intQuery reads an optional positive whole number from the query string.
func intQuery(c *gin.Context, name string) (int, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, dispatcher.Errorf(dispatcher.EINVALID, "%s: must be a positive whole number, not %q", name, v)
	}
	return n, nil
}

// boolQuery reads an optional true or false from the query string.
func boolQuery(c *gin.Context, name string) (bool, error) {
	v := c.Query(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, dispatcher.Errorf(dispatcher.EINVALID, "%s: must be true or false, not %q", name, v)
	}
	return b, nil
}

// listExecutions answers GET /executions/v1.
func (s *Server) listExecutions(c *gin.Context) {
	f, err := filterFromQuery(c)
	if err != nil {
		fail(c, err)
		return
	}
	limit, err := intQuery(c, "limit")
	if err != nil {
		fail(c, err)
		return
	}
	r := dispatcher.ListRequest{Limit: limit, PageToken: c.Query("pageToken")}
	if r.HideReplayed, err = boolQuery(c, "hideReplayed"); err != nil {
		fail(c, err)
		return
	}
	page, err := s.executions.List(c.Request.Context(), f, r)
	if err != nil {
		fail(c, err)
		return
	}
	var out wire.ExecutionPage
	out.Data = make([]wire.Execution, len(page.Executions))
	for i, x := range page.Executions {
		out.Data[i] = wire.FromExecution(x)
	}
	out.Page.Limit = min(limit, dispatcher.MaxExecutionPage)
	if limit == 0 {
		out.Page.Limit = dispatcher.DefaultExecutionPage
	}
	out.Page.NextPageToken = page.NextPageToken
	c.JSON(http.StatusOK, out)
}

// getExecution answers GET /executions/v1/{workflowId}. It shows the
// event's content and the configuration only to those who may see them
// elsewhere (see withhold).
func (s *Server) getExecution(c *gin.Context) {
	d, err := s.executions.Get(c.Request.Context(), c.Param("workflowId"), c.Query("runId"))
	if err != nil {
		fail(c, err)
		return
	}
	out := wire.FromExecutionDetail(d)
	withhold(&out, principalOf(c))
	c.JSON(http.StatusOK, out)
}

// withhold leaves out of an execution's detail what VIEW_EXECUTIONS alone
// does not show: the event's content (VIEW_EVENT_CONTENT: what producers
// send holds personal data), the dispatchers with their actions' data and
// recipients (VIEW_DISPATCHERS, as at /dispatchers/v1) and the functions
// (VIEW_FUNCTIONS, as at /functions/v1). A filter's error is the event's
// content too: CEL's errors quote the values they met ("no such key:
// ann@example.com"). It names each part it leaves out in d.Withheld, with
// the permission that would show it.
func withhold(d *wire.ExecutionDetail, p principal) {
	hide := func(part, perm string, clear func()) {
		if p.Permissions[perm] {
			return
		}
		clear()
		if d.Withheld == nil {
			d.Withheld = make(map[string]string)
		}
		d.Withheld[part] = perm
	}
	hide("event.content", PermViewEventContent, func() { d.Event.Content = nil })
	if d.Config != nil {
		hide("config.dispatchers", PermViewDispatchers, func() { d.Config.Dispatchers = nil })
		hide("config.functions", PermViewFunctions, func() { d.Config.Functions = nil })
		for i, sk := range d.Config.Skipped {
			if sk.Reason == dispatcher.SkipFilterError {
				hide("config.skipped.detail", PermViewEventContent, func() { d.Config.Skipped[i].Detail = "" })
			}
		}
	}
	for i, a := range d.Actions {
		if a.SkipReason == dispatcher.SkipFilterError {
			hide("actions.skipDetail", PermViewEventContent, func() { d.Actions[i].SkipDetail = "" })
		}
	}
}

// historyPermissions are what a run's raw history needs besides
// VIEW_EXECUTIONS: it holds the event and the configuration, and nothing
// can be left out of it.
var historyPermissions = []string{PermViewEventContent, PermViewDispatchers, PermViewFunctions}

// requireToo returns the middleware that refuses, with 403 code 10 naming
// every one missing, a request whose principal lacks one of perms; why
// says what they guard.
func requireToo(why string, perms ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		var missing []string
		for _, perm := range perms {
			if !principalOf(c).Permissions[perm] {
				missing = append(missing, perm)
			}
		}
		if len(missing) > 0 {
			abort(c, errNoPermission, fmt.Sprintf("permissions %s are required too: %s", strings.Join(missing, ", "), why))
		}
	}
}

// executionHistory answers GET /executions/v1/{workflowId}/history.
func (s *Server) executionHistory(c *gin.Context) {
	limit, err := intQuery(c, "limit")
	if err != nil {
		fail(c, err)
		return
	}
	id := c.Param("workflowId")
	page, err := s.executions.History(c.Request.Context(), id, c.Query("runId"), limit, c.Query("pageToken"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.History{WorkflowID: id, RunID: page.RunID, Events: wire.NonNil(page.Events), NextPageToken: page.NextPageToken})
}

// executionFailures answers GET /executions/v1/failures.
func (s *Server) executionFailures(c *gin.Context) {
	f, err := filterFromQuery(c)
	if err != nil {
		fail(c, err)
		return
	}
	includeReplayed, err := boolQuery(c, "includeReplayed")
	if err != nil {
		fail(c, err)
		return
	}
	buckets, err := intQuery(c, "buckets")
	if err != nil {
		fail(c, err)
		return
	}
	sum, err := s.executions.Failures(c.Request.Context(), f, includeReplayed, buckets)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.FromFailureSummary(sum))
}

// replayExecution answers POST /executions/v1/{workflowId}/replay.
func (s *Server) replayExecution(c *gin.Context) {
	key, ok := idempotencyKey(c)
	if !ok {
		return
	}
	var req wire.ReplayRequest
	if !bindOptionalJSON(c, &req) {
		return
	}
	res, err := s.executions.Replay(c.Request.Context(), dispatcher.ReplayRequest{
		WorkflowID: c.Param("workflowId"), RunID: req.RunID, Actions: req.Actions, Config: req.Config,
		Actor: principalOf(c).Subject, IdempotencyKey: key,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, wire.FromReplayResult(res))
}

// cancelExecution answers POST /executions/v1/{workflowId}/cancel.
func (s *Server) cancelExecution(c *gin.Context) {
	x, err := s.executions.Cancel(c.Request.Context(), c.Param("workflowId"), principalOf(c).Subject)
	if err != nil {
		fail(c, err)
		return
	}
	out := wire.FromExecution(x)
	out.Status = "canceling"
	c.JSON(http.StatusAccepted, out)
}

// releaseExecution answers POST /executions/v1/:workflowId/release: the
// ordering key the failed dispatch blocks goes on without it.
func (s *Server) releaseExecution(c *gin.Context) {
	x, err := s.executions.Release(c.Request.Context(), c.Param("workflowId"), principalOf(c).Subject)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.FromExecution(x))
}

// bulkReplay answers POST /executions/v1/replays: a dry run counts, a
// real one starts the BulkReplay workflow.
func (s *Server) bulkReplay(c *gin.Context) {
	var req wire.BulkReplayRequest
	if !bindOptionalJSON(c, &req) {
		return
	}
	req.BulkReplayID = ownID(c, req.BulkReplayID)
	f, err := req.Filter.ToDomain()
	if err != nil {
		fail(c, err)
		return
	}
	key, ok := idempotencyKey(c)
	if !ok {
		return
	}
	// Checked here too, so that a rate below the floor is a 400 at once,
	// whatever the executions service does.
	if err := dispatcher.CheckReplayRate(req.Rate); err != nil {
		fail(c, err)
		return
	}
	// A malformed id names no action: each run would skip it, with an
	// error, under a 202.
	for i, a := range req.Actions {
		if !dispatcher.ValidID(a) {
			abort(c, errFieldFormat, fmt.Sprintf("actions[%d]: %q is not a valid id (24 lowercase hexadecimal characters)", i, a))
			return
		}
	}
	if f == (dispatcher.ExecutionFilter{}) && !req.DryRun {
		abort(c, errFieldFormat, `a bulk replay needs at least one filter: eventType, eventId, dispatcherId, actionId, status, errorClass, bulkReplayId, skipReason, from or to ("status": "failed" replays every failed dispatch); a dry run may count without one`)
		return
	}
	if !mayAct(c, "replay", "eventType", f.EventType) {
		return
	}
	if f.SkipReason == dispatcher.SkipPaused && f.DispatcherID != "" && !req.DryRun {
		// Replayed while it is paused, each run skips its actions again,
		// and the bulk replay reports them succeeded. A dry run counts
		// them (stillPaused): before, it was refused too, and what a
		// paused dispatcher skipped could not be counted before resuming.
		// Named by the id the caller gave: the name is VIEW_DISPATCHERS'.
		d, err := s.store.FindDispatcher(c.Request.Context(), f.DispatcherID)
		switch {
		case err != nil && dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND:
			fail(c, err)
			return
		case err == nil && d.Paused:
			fail(c, dispatcher.Errorf(dispatcher.ESTATE, "dispatcherId: dispatcher %s is still paused: resume it (enabled: true) first, or its actions are skipped again", f.DispatcherID))
			return
		}
	}
	r := dispatcher.BulkReplayRequest{Filter: f, Actions: req.Actions, Config: req.Config, Rate: req.Rate,
		Actor: principalOf(c).Subject, IdempotencyKey: key}
	if req.DryRun {
		dry, err := s.executions.DryRunBulkReplay(c.Request.Context(), r, dryRunSample)
		if err != nil {
			fail(c, err)
			return
		}
		out := wire.DryRun{DryRun: true, Matched: dry.Matched, Replayed: dry.Replayed, StillPaused: dry.StillPaused, Removed: dry.Removed, Sample: make([]wire.Execution, len(dry.Sample))}
		for i, x := range dry.Sample {
			out.Sample[i] = wire.FromExecution(x)
		}
		if !principalOf(c).Permissions[PermViewExecutions] {
			// The executions it would replay are read with VIEW_EXECUTIONS,
			// not listed to whoever may replay them. Before, they were.
			out.Sample, out.Withheld = []wire.Execution{}, map[string]string{"sample": PermViewExecutions}
		}
		c.JSON(http.StatusOK, out)
		return
	}
	st, err := s.executions.StartBulkReplay(c.Request.Context(), r)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, wire.FromBulkReplay(st))
}

// listBulkReplays answers GET /executions/v1/replays?limit=: the
// caller's tenant's bulk replays, running first, then the last closed.
func (s *Server) listBulkReplays(c *gin.Context) {
	limit, err := intQuery(c, "limit")
	if err != nil {
		fail(c, err)
		return
	}
	if limit == 0 {
		limit = dispatcher.DefaultExecutionPage
	}
	list, err := s.executions.BulkReplays(c.Request.Context(), min(limit, dispatcher.MaxExecutionPage))
	if err != nil {
		fail(c, err)
		return
	}
	out := struct {
		Data []wire.BulkReplayItem `json:"data"`
	}{Data: make([]wire.BulkReplayItem, len(list))}
	for i, b := range list {
		out.Data[i] = wire.FromBulkReplayItem(b)
	}
	c.JSON(http.StatusOK, out)
}

// getBulkReplay answers GET /executions/v1/replays/{id}.
func (s *Server) getBulkReplay(c *gin.Context) {
	st, err := s.executions.BulkReplay(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.FromBulkReplay(st))
}

// cancelBulkReplay answers POST /executions/v1/replays/{id}/cancel.
func (s *Server) cancelBulkReplay(c *gin.Context) {
	st, err := s.executions.CancelBulkReplay(c.Request.Context(), c.Param("id"), principalOf(c).Subject)
	if err != nil {
		fail(c, err)
		return
	}
	out := wire.FromBulkReplay(st)
	out.Status = "canceling"
	c.JSON(http.StatusAccepted, out)
}

// pauseBulkReplay answers POST /executions/v1/replays/{id}/pause (pause
// true) and …/resume.
func (s *Server) pauseBulkReplay(pause bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		st, err := s.executions.PauseBulkReplay(c.Request.Context(), c.Param("id"), principalOf(c).Subject, pause)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusAccepted, wire.FromBulkReplay(st))
	}
}

// idempotencyKey reads the optional Idempotency-Key header: a request that
// comes again with the same key gets the answer the first one got. On a
// malformed key it answers 400 and returns false.
func idempotencyKey(c *gin.Context) (string, bool) {
	key := c.GetHeader("Idempotency-Key")
	if len(key) > 255 || strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		abort(c, errFieldFormat, "Idempotency-Key: must be at most 255 printable ASCII characters")
		return "", false
	}
	return key, true
}

// bindOptionalJSON is bindJSON for the bodies of replays, which may be
// left out: an empty body, or null, is the zero request. Only our own
// clients send them, so a key the request does not have is refused, not
// ignored: a misspelt filter would otherwise widen what is replayed.
func bindOptionalJSON(c *gin.Context, v any) bool {
	body, ok := readBody(c)
	if !ok {
		return false
	}
	body = wire.TrimBOM(body) // as bindJSON does, or unknownKey would see no object
	if b := bytes.TrimSpace(body); len(b) == 0 || string(b) == "null" {
		return true // no body, or JSON's word for none
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	if !bindJSON(c, v) {
		return false
	}
	if key := unknownKey(body, v); key != "" {
		abort(c, errFieldFormat, key+": unknown field")
		return false
	}
	if msg := unset(body); msg != "" {
		// A script's unset variable, as in a list's query string:
		// before, a filter was taken for none, and a bulk replay of one
		// dispatcher's failures replayed the whole tenant's; a dry run
		// for a real one.
		abort(c, errFieldFormat, msg)
		return false
	}
	return true
}

// unset says which filter of body, a JSON object, is given as "" or null,
// or which of its dryRun, config and rate is null, or its actions empty;
// "" when none is (actions null is none, as the CLI sends it).
func unset(body []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return ""
	}
	for _, k := range filterParams {
		if v, ok := fields[k]; ok && (string(v) == `""` || string(v) == "null") {
			return k + ": empty; leave the field out not to filter by it"
		}
	}
	var actions []json.RawMessage
	switch {
	case json.Unmarshal(fields["actions"], &actions) == nil && actions != nil && len(actions) == 0:
		return "actions: empty; name the actions to run again, or leave the field out for those that failed"
	case string(fields["dryRun"]) == "null":
		return "dryRun: null; true counts what a bulk replay would replay, false (or none) starts it"
	case string(fields["config"]) == "null":
		return `config: null; "original" or "current", or leave the field out for "original"`
	case string(fields["rate"]) == "null":
		return "rate: null; replays a second, or leave the field out for the default"
	}
	return ""
}

// noFields refuses a body with a field on a route that takes none: what
// a client meant by it (a reason to record) would be lost without a word.
func noFields(c *gin.Context) {
	var none struct{}
	bindOptionalJSON(c, &none)
}

// unknownKey returns the first key of body, a JSON object that decodes
// into v, that v has no field for; "" when it has none.
func unknownKey(body []byte, v any) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(reflect.New(reflect.TypeOf(v).Elem()).Interface())
	key, found := strings.CutPrefix(fmt.Sprint(err), "json: unknown field ")
	if !found {
		return ""
	}
	return strings.Trim(key, `"`)
}

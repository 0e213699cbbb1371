package api

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeExecutions records what the handlers ask of the executions service
// and answers with canned values or err. The service itself is tested
// against a real Temporal server in package workflows and end to end.
type fakeExecutions struct {
	err error

	filter       dispatcher.ExecutionFilter
	pageSize     int
	pageToken    string
	hideReplayed bool
	replay       dispatcher.ReplayRequest
	bulk         dispatcher.BulkReplayRequest
	actor        string
	dryRuns      int
	bulkStarts   int
	included     bool
	buckets      int
	paused       *bool
	listLimit    int
	bulkList     []dispatcher.BulkReplayStatus // BulkReplays' answer, when set
}

var sampleExecution = dispatcher.Execution{
	WorkflowID: "dispatch-evt-1", RunID: "run-1", EventID: "evt-1", EventType: "user_deleted", Status: dispatcher.ExecutionFailed,
	Start: time.UnixMilli(1767225600000), Close: time.UnixMilli(1767225600420), DispatcherIDs: []string{"d1"},
	FailedActionIDs: []string{"a1"}, ErrorClasses: []string{"HTTPPermanent"},
	Failures: []dispatcher.ClassDispatcher{{ErrorClass: "HTTPPermanent", DispatcherID: "d1"}},
}

func (f *fakeExecutions) List(_ context.Context, fl dispatcher.ExecutionFilter, r dispatcher.ListRequest) (dispatcher.ExecutionPage, error) {
	f.filter, f.pageSize, f.pageToken, f.hideReplayed = fl, r.Limit, r.PageToken, r.HideReplayed
	return dispatcher.ExecutionPage{Executions: []dispatcher.Execution{sampleExecution}, NextPageToken: "next"}, f.err
}

func (f *fakeExecutions) Get(context.Context, string, string) (dispatcher.ExecutionDetail, error) {
	d := dispatcher.ExecutionDetail{Execution: sampleExecution, Event: dispatcher.Event{ID: "evt-1", Type: "user_deleted"},
		Outcomes: []dispatcher.ActionOutcome{{DispatcherID: "d1", ActionID: "a1", Type: "task", Status: "failed", Attempts: 1,
			Error: "function answered 404", ErrorClass: "HTTPPermanent", HTTPStatus: 404}},
		Runs:  []dispatcher.Execution{sampleExecution},
		Audit: []dispatcher.AuditEntry{{Operation: dispatcher.AuditCancel, Actor: "bob", At: time.UnixMilli(5)}}}
	return d, f.err
}

func (f *fakeExecutions) History(_ context.Context, _, runID string, pageSize int, token string) (dispatcher.HistoryPage, error) {
	f.pageSize, f.pageToken = pageSize, token
	return dispatcher.HistoryPage{RunID: "run-1", Events: []json.RawMessage{json.RawMessage(`{"eventId":"1"}`)}}, f.err
}

func (f *fakeExecutions) Failures(_ context.Context, fl dispatcher.ExecutionFilter, includeReplayed bool, buckets int) (dispatcher.FailureSummary, error) {
	f.filter, f.included, f.buckets = fl, includeReplayed, buckets
	return dispatcher.FailureSummary{Failed: 412, Groups: []dispatcher.FailureGroup{{ErrorClass: "SMTPPermanent", DispatcherID: "d1",
		DispatcherName: "welcome-mail", Count: 412, Sample: "550 mailbox unavailable", Trend: []int{400, 12}}},
		Trend: dispatcher.Trend{From: time.UnixMilli(1767225600000), Bucket: time.Hour, Counts: []int{400, 12}}}, f.err
}

func (f *fakeExecutions) Replay(_ context.Context, r dispatcher.ReplayRequest) (dispatcher.ReplayResult, error) {
	f.replay = r
	return dispatcher.ReplayResult{WorkflowID: r.WorkflowID, RunID: "run-2", ReplayOf: "run-1", ReplayID: "r1", Config: "original"}, f.err
}

func (f *fakeExecutions) Cancel(_ context.Context, _ string, actor string) (dispatcher.Execution, error) {
	f.actor = actor
	return sampleExecution, f.err
}

func (f *fakeExecutions) Release(_ context.Context, _ string, actor string) (dispatcher.Execution, error) {
	f.actor = actor
	return sampleExecution, f.err
}

func (f *fakeExecutions) DryRunBulkReplay(_ context.Context, r dispatcher.BulkReplayRequest, _ int) (dispatcher.BulkReplayDryRun, error) {
	f.bulk = r
	f.dryRuns++
	return dispatcher.BulkReplayDryRun{Matched: 50, Sample: []dispatcher.Execution{sampleExecution}}, f.err
}

func (f *fakeExecutions) StartBulkReplay(_ context.Context, r dispatcher.BulkReplayRequest) (dispatcher.BulkReplayStatus, error) {
	f.bulk = r
	f.bulkStarts++
	return dispatcher.BulkReplayStatus{ID: "bulk-replay-0123456789abcdef01234567", Status: "running", Request: r}, f.err
}

func (f *fakeExecutions) BulkReplay(_ context.Context, id string) (dispatcher.BulkReplayStatus, error) {
	return dispatcher.BulkReplayStatus{ID: id, Status: "running", Progress: dispatcher.BulkReplayProgress{Matched: 50, Replayed: 10, Remaining: 40}}, f.err
}

func (f *fakeExecutions) BulkReplays(_ context.Context, limit int) ([]dispatcher.BulkReplayStatus, error) {
	f.listLimit = limit
	if f.bulkList != nil {
		return f.bulkList, f.err
	}
	return []dispatcher.BulkReplayStatus{{ID: "bulk-replay-0123456789abcdef01234567", Status: "completed",
		Request: dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{Status: dispatcher.ExecutionFailed}, Actor: "ann", Config: "original", Rate: 10}}}, f.err
}

func (f *fakeExecutions) CancelBulkReplay(_ context.Context, id, actor string) (dispatcher.BulkReplayStatus, error) {
	f.actor = actor
	return dispatcher.BulkReplayStatus{ID: id, Status: "running"}, f.err
}

func (f *fakeExecutions) PauseBulkReplay(_ context.Context, id, actor string, pause bool) (dispatcher.BulkReplayStatus, error) {
	f.actor, f.paused = actor, &pause
	return dispatcher.BulkReplayStatus{ID: id, Status: "running", Progress: dispatcher.BulkReplayProgress{Paused: pause}}, f.err
}

// executionsServer serves the API over a fakeExecutions and returns a
// function that sends a request with a token for subject "ann" holding
// every permission.
func executionsServer(t *testing.T, f *fakeExecutions) func(method, path, body string) (int, map[string]any) {
	t.Helper()
	return tenantExecutionsServer(t, f, "")
}

// tenantExecutionsServer is executionsServer with a token of tenant.
func tenantExecutionsServer(t *testing.T, f *fakeExecutions, tenant string) func(method, path, body string) (int, map[string]any) {
	t.Helper()
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Secret: []byte(harnessSecret)}, MaxBodyBytes: 4096, MaxEventBytes: 2048},
		Deps{Executions: f, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := SignToken([]byte(harnessSecret), TokenClaims{Subject: "ann", Permissions: Permissions(), TTL: time.Hour, Tenant: tenant}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Host = "localhost"
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, rec.Body)
		}
		return rec.Code, out
	}
}

// A tenant's caller names its bulk replays without the tenant, as its
// dispatches: in the path, and in the filter of a list or a bulk replay.
// Before, bulk-replay-… was the implicit tenant's: a 404, and lists of
// nothing, from which support concluded it had started nothing.
func TestBulkReplayIDInTheCallersTenant(t *testing.T) {
	const bare = "bulk-replay-0123456789abcdef01234567"
	f := &fakeExecutions{}
	do := tenantExecutionsServer(t, f, "acme")
	if code, b := do("GET", "/executions/v1/replays/"+bare, ""); code != 200 || b["id"] != "acme:"+bare {
		t.Errorf("GET its bulk replay without the tenant: %d %v", code, b)
	}
	if code, _ := do("GET", "/executions/v1?bulkReplayId="+bare, ""); code != 200 || f.filter.BulkReplayID != "acme:"+bare {
		t.Errorf("the list's filter: %d, %q", code, f.filter.BulkReplayID)
	}
	if code, _ := do("POST", "/executions/v1/replays", `{"bulkReplayId":"`+bare+`","dryRun":true}`); code != 200 || f.bulk.Filter.BulkReplayID != "acme:"+bare {
		t.Errorf("the bulk replay's filter: %d, %q", code, f.bulk.Filter.BulkReplayID)
	}
}

func TestListExecutionsFilters(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name  string
		query string
		want  dispatcher.ExecutionFilter
		size  int
		hide  bool
	}{
		{"none", "", dispatcher.ExecutionFilter{}, 0, false},
		{"every field", "?eventType=user_deleted&eventId=evt-1&dispatcherId=0123456789abcdef01234567&actionId=89abcdef0123456701234567&status=failed&errorClass=HTTPPermanent&hideReplayed=true&limit=5&pageToken=abc",
			dispatcher.ExecutionFilter{EventType: "user_deleted", EventID: "evt-1", DispatcherID: "0123456789abcdef01234567", ActionID: "89abcdef0123456701234567", Status: "failed", ErrorClass: "HTTPPermanent"}, 5, true},
		{"dates as ISO-8601 and epoch milliseconds", "?from=2026-01-01T00:00:00Z&to=1767225600000",
			dispatcher.ExecutionFilter{From: from, To: time.UnixMilli(1767225600000).UTC()}, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeExecutions{}
			code, body := executionsServer(t, f)("GET", "/executions/v1"+tt.query, "")
			if code != 200 {
				t.Fatalf("answered %d %v", code, body)
			}
			if !f.filter.From.Equal(tt.want.From) || !f.filter.To.Equal(tt.want.To) {
				t.Fatalf("time range = %v..%v, want %v..%v", f.filter.From, f.filter.To, tt.want.From, tt.want.To)
			}
			f.filter.From, f.filter.To, tt.want.From, tt.want.To = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if f.filter != tt.want || f.pageSize != tt.size || f.hideReplayed != tt.hide {
				t.Fatalf("filter = %+v size %d hideReplayed %t, want %+v size %d hideReplayed %t", f.filter, f.pageSize, f.hideReplayed, tt.want, tt.size, tt.hide)
			}
			item := body["data"].([]any)[0].(map[string]any)
			if item["workflowId"] != "dispatch-evt-1" || item["failedActionCount"] != 1.0 || item["startTimestamp"] != 1767225600000.0 ||
				item["closeTimestamp"] != 1767225600420.0 || body["page"].(map[string]any)["nextPageToken"] != "next" {
				t.Fatalf("body = %v", body)
			}
		})
	}
}

func TestExecutionsErrors(t *testing.T) {
	f := &fakeExecutions{}
	do := executionsServer(t, f)
	for _, tt := range []struct {
		method, path, body string
		err                error
		status, code       int
		mention            string
	}{
		{"GET", "/executions/v1?from=yesterday", "", nil, 400, 15, "from:"},
		// Seconds: before, 1970, and every run matched.
		{"GET", "/executions/v1?from=1796637960", "", nil, 400, 15, "from: 1796637960 is too small for epoch milliseconds"},
		{"GET", "/executions/v1?limit=-3", "", nil, 400, 15, "limit:"},
		// Before, Go dropped a malformed pair, and the list was not filtered.
		{"GET", "/executions/v1?eventType=%", "", nil, 400, 15, "query string"},
		{"GET", "/executions/v1/failures?eventType=a%zz", "", nil, 400, 15, "query string"},
		{"GET", "/executions/v1/dispatch-evt-1/history?runId=%", "", nil, 400, 15, "query string"},
		{"GET", "/executions/v1/failures?includeReplayed=maybe", "", nil, 400, 15, "includeReplayed"},
		{"GET", "/executions/v1?hideReplayed=yes", "", nil, 400, 15, `hideReplayed: must be true or false, not "yes"`},
		{"GET", "/executions/v1/failures?hideReplayed=true", "", nil, 400, 15, "hideReplayed: unknown query parameter"},
		// Before, a parameter the route does not have was ignored, and
		// the list came unfiltered.
		{"GET", "/executions/v1?stauts=failed", "", nil, 400, 15, `stauts: unknown query parameter; did you mean "status"?`},
		{"GET", "/executions/v1/failures?limit=5", "", nil, 400, 15, "limit: unknown query parameter; the parameters are eventType, "},
		{"GET", "/executions/v1/dispatch-evt-1?runid=x", "", nil, 400, 15, `runid: unknown query parameter; did you mean "runId"?`},
		{"GET", "/executions/v1/failures?buckets=0", "", nil, 400, 15, "buckets:"},
		// Before, these matched nothing, or the first value alone.
		{"GET", "/executions/v1?dispatcherId=nothex", "", nil, 400, 15, `dispatcherId: "nothex" is not a valid id`},
		{"GET", "/executions/v1/failures?actionId=a1", "", nil, 400, 15, `actionId: "a1" is not a valid id`},
		{"POST", "/executions/v1/replays", `{"dispatcherId":"zz","dryRun":true}`, nil, 400, 15, `dispatcherId: "zz" is not a valid id`},
		{"POST", "/executions/v1/replays", `{"eventId":"m5","actions":["0123456789abcdef01234567","zz"]}`, nil, 400, 15, `actions[1]: "zz" is not a valid id`},
		// A script's unset variable too: before, the failed actions were
		// replayed, where the caller meant one.
		{"POST", "/executions/v1/replays", `{"status":"failed","actions":[ ]}`, nil, 400, 15, "actions: empty; name the actions to run again"},
		{"POST", "/executions/v1/dispatch-evt-1/replay", `{"actions":[]}`, nil, 400, 15, "actions: empty; name the actions to run again"},
		{"GET", "/executions/v1?bulkReplayId=zz", "", nil, 400, 15, `bulkReplayId: "zz" is not the id of a bulk replay`},
		{"GET", "/executions/v1?eventId=f-500&eventId=f-400", "", nil, 400, 15, "eventId: given 2 times"},
		// A script's unset variable: before, it listed every dispatch.
		{"GET", "/executions/v1?eventId=", "", nil, 400, 15, "eventId: empty; leave the parameter out"},
		{"GET", "/executions/v1/failures?dispatcherId=&from=2026-01-01T00:00:00Z", "", nil, 400, 15, "dispatcherId: empty"},
		{"POST", "/executions/v1/replays/bulk-replay-0123456789abcdef01234567/pause", "", dispatcher.Errorf(dispatcher.ESTATE, "bulk replay x cannot be paused: it is completed"), 409, 409, "cannot be paused"},
		{"GET", "/executions/v1/not-a-dispatch", "", nil, 400, 12, "workflowId"},
		{"GET", "/executions/v1/replays/xyz", "", nil, 400, 12, "bulk replay"},
		{"GET", "/executions/v1/replays/bulk-replay-0123456789abcdef01234567?limit=5", "", nil, 400, 15, "limit: unknown query parameter; this route takes none"},
		{"POST", "/executions/v1/dispatch-evt-1/replay", `[1]`, nil, 400, 22, "JSON object"},
		{"POST", "/executions/v1/dispatch-evt-1/replay", "", dispatcher.Errorf(dispatcher.ESTATE, "dispatch dispatch-evt-1 is still running"), 409, 409, "still running"},
		{"GET", "/executions/v1/dispatch-evt-1", "", dispatcher.Errorf(dispatcher.ENOTFOUND, "no dispatch"), 404, 16, "no dispatch"},
		{"GET", "/executions/v1", "", dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable"), 503, 503, "unavailable"},
	} {
		f.err = tt.err
		code, body := do(tt.method, tt.path, tt.body)
		wantError(t, code, body, tt.status, tt.code, tt.mention)
	}
}

func TestExecutionDetailAndHistory(t *testing.T) {
	f := &fakeExecutions{}
	do := executionsServer(t, f)
	code, d := do("GET", "/executions/v1/dispatch-evt-1?runId=run-1", "")
	if code != 200 || d["event"].(map[string]any)["id"] != "evt-1" || d["config"] != nil || len(d["runs"].([]any)) != 1 {
		t.Fatalf("detail = %d %v", code, d)
	}
	a := d["actions"].([]any)[0].(map[string]any)
	if a["httpStatus"] != 404.0 || a["lastError"].(map[string]any)["class"] != "HTTPPermanent" || a["status"] != "failed" {
		t.Errorf("action = %v", a)
	}
	if audit := d["audit"].([]any)[0].(map[string]any); audit["actor"] != "bob" || audit["operation"] != "cancel" {
		t.Errorf("audit = %v", audit)
	}
	code, h := do("GET", "/executions/v1/dispatch-evt-1/history?limit=2&pageToken=t", "")
	if code != 200 || h["runId"] != "run-1" || len(h["events"].([]any)) != 1 || f.pageSize != 2 || f.pageToken != "t" {
		t.Fatalf("history = %d %v (size %d, token %q)", code, h, f.pageSize, f.pageToken)
	}
	code, s := do("GET", "/executions/v1/failures?dispatcherId=0123456789abcdef01234567&includeReplayed=true&buckets=12", "")
	g := s["groups"].([]any)[0].(map[string]any)
	if code != 200 || g["summary"] != "412 × SMTPPermanent: 550 mailbox unavailable, dispatcher welcome-mail (d1)" || f.filter.DispatcherID != "0123456789abcdef01234567" || !f.included || f.buckets != 12 {
		t.Fatalf("failures = %d %v (buckets %d)", code, s, f.buckets)
	}
	trend := s["trend"].(map[string]any)
	if trend["from"] != 1767225600000.0 || trend["bucketMs"] != 3600000.0 || fmt.Sprint(trend["counts"]) != "[400 12]" || fmt.Sprint(g["trend"]) != "[400 12]" {
		t.Fatalf("trend = %v, group trend %v", trend, g["trend"])
	}
}

func TestReplayAndCancelRoutes(t *testing.T) {
	f := &fakeExecutions{}
	do := executionsServer(t, f)

	// No body: the defaults; the caller is the audit's actor.
	code, r := do("POST", "/executions/v1/dispatch-evt-1/replay", "")
	if code != 202 || r["runId"] != "run-2" || f.replay.WorkflowID != "dispatch-evt-1" || f.replay.Actor != "ann" || f.replay.Actions != nil || f.replay.Config != "" {
		t.Fatalf("replay = %d %v, request %+v", code, r, f.replay)
	}
	do("POST", "/executions/v1/dispatch-evt-1/replay", `{"actions":["a1","a2"],"config":"current","runId":"run-1"}`)
	if strings.Join(f.replay.Actions, ",") != "a1,a2" || f.replay.Config != "current" || f.replay.RunID != "run-1" {
		t.Fatalf("replay request = %+v", f.replay)
	}

	code, c := do("POST", "/executions/v1/dispatch-evt-1/cancel", "")
	if code != 202 || c["status"] != "canceling" || f.actor != "ann" {
		t.Fatalf("cancel = %d %v", code, c)
	}

	// A dry run counts and starts nothing.
	code, dry := do("POST", "/executions/v1/replays", `{"dispatcherId":"0123456789abcdef01234567","status":"failed","from":1767225600000,"dryRun":true}`)
	if code != 200 || dry["matched"] != 50.0 || len(dry["sample"].([]any)) != 1 || f.dryRuns != 1 || f.bulkStarts != 0 ||
		f.bulk.Filter.DispatcherID != "0123456789abcdef01234567" || !f.bulk.Filter.From.Equal(time.UnixMilli(1767225600000)) {
		t.Fatalf("dry run = %d %v, request %+v", code, dry, f.bulk)
	}
	code, b := do("POST", "/executions/v1/replays", `{"errorClass":"SMTPTemporary","rate":5,"actions":["0123456789abcdef01234567"]}`)
	if code != 202 || b["id"] != "bulk-replay-0123456789abcdef01234567" || f.bulkStarts != 1 || f.bulk.Rate != 5 || f.bulk.Actor != "ann" ||
		f.bulk.Filter.ErrorClass != "SMTPTemporary" {
		t.Fatalf("bulk replay = %d %v, request %+v", code, b, f.bulk)
	}
	code, p := do("GET", "/executions/v1/replays/bulk-replay-0123456789abcdef01234567", "")
	if progress := p["progress"].(map[string]any); code != 200 || progress["replayed"] != 10.0 || progress["remaining"] != 40.0 {
		t.Fatalf("progress = %d %v", code, p)
	}
	// The list: at most 100 a request, 20 unless told; without progress.
	for _, tc := range []struct {
		query string
		limit int
	}{{"", 20}, {"?limit=5", 5}, {"?limit=1000", 100}} {
		code, l := do("GET", "/executions/v1/replays"+tc.query, "")
		data, _ := l["data"].([]any)
		if code != 200 || len(data) != 1 || f.listLimit != tc.limit {
			t.Fatalf("list%s = %d %v, asked for %d", tc.query, code, l, f.listLimit)
		}
		if item := data[0].(map[string]any); item["requestedBy"] != "ann" || item["status"] != "completed" || item["progress"] != nil {
			t.Fatalf("listed %v", item)
		}
	}
	for _, query := range []string{"?limit=0", "?limit=x", "?status=running"} {
		if code, l := do("GET", "/executions/v1/replays"+query, ""); code != 400 {
			t.Fatalf("list%s = %d %v, want 400", query, code, l)
		}
	}
	code, bc := do("POST", "/executions/v1/replays/bulk-replay-0123456789abcdef01234567/cancel", "")
	if code != 202 || bc["status"] != "canceling" {
		t.Fatalf("bulk cancel = %d %v", code, bc)
	}
	for _, pause := range []bool{true, false} {
		verb := map[bool]string{true: "pause", false: "resume"}[pause]
		f.actor, f.paused = "", nil
		code, bp := do("POST", "/executions/v1/replays/bulk-replay-0123456789abcdef01234567/"+verb, "")
		if code != 202 || bp["progress"].(map[string]any)["paused"] != pause || f.paused == nil || *f.paused != pause || f.actor != "ann" {
			t.Fatalf("bulk %s = %d %v (asked pause=%v as %q)", verb, code, bp, f.paused, f.actor)
		}
	}
}

// The list says which running bulk replay is paused (paused: true; its
// status stays running, as on its own route). Before, it could not.
func TestBulkReplayListSaysPaused(t *testing.T) {
	paused := dispatcher.BulkReplayProgress{Paused: true}
	f := &fakeExecutions{bulkList: []dispatcher.BulkReplayStatus{
		{ID: "bulk-replay-000000000000000000000001", Status: dispatcher.ExecutionRunning, Progress: paused},
		{ID: "bulk-replay-000000000000000000000002", Status: dispatcher.ExecutionRunning},
		{ID: "bulk-replay-000000000000000000000003", Status: dispatcher.ExecutionCanceled, Progress: paused}, // canceled while paused
	}}
	code, l := executionsServer(t, f)("GET", "/executions/v1/replays", "")
	data, _ := l["data"].([]any)
	if code != 200 || len(data) != 3 {
		t.Fatalf("list = %d %v", code, l)
	}
	for i, want := range []any{true, nil, nil} {
		if item := data[i].(map[string]any); item["paused"] != want {
			t.Errorf("%s (%s): paused %v, want %v", item["id"], item["status"], item["paused"], want)
		}
	}
}

func TestExecutionsPermissions(t *testing.T) {
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Secret: []byte(harnessSecret)}, MaxBodyBytes: 4096, MaxEventBytes: 2048},
		Deps{Executions: &fakeExecutions{}, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := SignToken([]byte(harnessSecret), TokenClaims{Subject: "v", Permissions: []string{PermViewExecutions}, TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/executions/v1", http.StatusOK},
		{"GET", "/executions/v1/dispatch-evt-1", http.StatusOK},
		{"POST", "/executions/v1/dispatch-evt-1/replay", http.StatusForbidden},
		{"POST", "/executions/v1/dispatch-evt-1/cancel", http.StatusForbidden},
		{"POST", "/executions/v1/replays", http.StatusForbidden},
	} {
		req := httptest.NewRequest(tt.method, tt.path, nil)
		req.Host = "localhost"
		req.Header.Set("Authorization", "Bearer "+viewer)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.status {
			t.Errorf("%s %s with VIEW_EXECUTIONS only = %d, want %d", tt.method, tt.path, rec.Code, tt.status)
		}
	}
}

// TestBulkReplayRateBounds shows that the API refuses a bulk replay rate
// outside [MinReplayRate, MaxReplayRate] with a 400 that names the field
// and the bounds, before the executions service (and Temporal) is asked.
func TestBulkReplayRateBounds(t *testing.T) {
	f := &fakeExecutions{}
	do := executionsServer(t, f)
	for _, body := range []string{
		`{"rate":0.001}`, `{"rate":0.009,"dryRun":true}`, `{"rate":-1}`, `{"rate":1e-300}`, `{"rate":1000}`, `{"rate":100.5,"dryRun":true}`,
	} {
		code, out := do("POST", "/executions/v1/replays", body)
		wantError(t, code, out, 400, 15, "rate: must be between 0.01 and 100 replays per second")
	}
	if f.dryRuns != 0 || f.bulkStarts != 0 {
		t.Fatalf("the executions service was asked: %d dry runs, %d starts", f.dryRuns, f.bulkStarts)
	}
	for _, body := range []string{`{"rate":0.01,"dryRun":true}`, `{"rate":100,"dryRun":true}`, `{"dryRun":true}`} {
		if code, out := do("POST", "/executions/v1/replays", body); code != 200 {
			t.Errorf("%s = %d %v, want 200", body, code, out)
		}
	}
}

// TestBulkReplayEmptyFilter shows that a bulk replay's filter given empty
// (a script's unset variable) is a 400 naming it, as in a list's query
// string. Before, it was taken for no filter: {"status": "failed",
// "dispatcherId": ""} replayed every failed dispatch of the tenant.
func TestBulkReplayEmptyFilter(t *testing.T) {
	f := &fakeExecutions{}
	do := executionsServer(t, f)
	for _, field := range []string{"eventType", "eventId", "dispatcherId", "actionId", "errorClass", "bulkReplayId", "skipReason", "from", "to"} {
		for _, v := range []string{`""`, "null"} {
			for _, dry := range []bool{false, true} {
				code, out := do("POST", "/executions/v1/replays", fmt.Sprintf(`{"status":"failed","%s":%s,"dryRun":%t}`, field, v, dry))
				wantError(t, code, out, 400, 15, field+": empty; leave the field out not to filter by it")
			}
		}
	}
	// Nor a dry run asked for with null: before, it started the replay;
	// nor a configuration or rate.
	for field, msg := range map[string]string{"dryRun": "true counts what a bulk replay would replay", "config": `"original" or "current"`, "rate": "replays a second"} {
		code, out := do("POST", "/executions/v1/replays", fmt.Sprintf(`{"status":"failed","%s":null}`, field))
		wantError(t, code, out, 400, 15, field+": null; "+msg)
	}
	// Nor in another case, which encoding/json would take for the field.
	for _, field := range []string{"dispatcherID", "EventType", "DISPATCHERID"} {
		code, out := do("POST", "/executions/v1/replays", fmt.Sprintf(`{"status":"failed","%s":""}`, field))
		wantError(t, code, out, 400, 15, field+": unknown field; did you mean")
	}
	if f.dryRuns != 0 || f.bulkStarts != 0 {
		t.Fatalf("the executions service was asked: %d dry runs, %d starts", f.dryRuns, f.bulkStarts)
	}
	if code, out := do("POST", "/executions/v1/replays", `{"status":"failed"}`); code != 202 {
		t.Errorf("a filter of status alone = %d %v, want 202", code, out)
	}
}

// detailedExecutions answers Get with a detail that holds an event's
// content and a configuration.
type detailedExecutions struct {
	fakeExecutions
}

func (f *detailedExecutions) Get(context.Context, string, string) (dispatcher.ExecutionDetail, error) {
	return dispatcher.ExecutionDetail{Execution: sampleExecution,
		Event: dispatcher.Event{ID: "evt-1", Type: "user_deleted", Content: json.RawMessage(`{"email":"ann@example.com"}`)},
		Config: &dispatcher.Config{Version: 7,
			Dispatchers: []dispatcher.Dispatcher{{ID: "d1", Name: "gdpr", EventType: "user_deleted", Actions: []dispatcher.Action{{ID: "a1",
				Type: dispatcher.ActionMail, TemplateID: "0123456789abcdef01234567", Recipients: dispatcher.Recipients{To: []string{"dpo@example.com"}}}}}},
			Functions: []dispatcher.FunctionRef{{Name: "erase", Kind: dispatcher.FunctionHTTP}},
			Skipped: []dispatcher.SkippedDispatcher{
				{DispatcherID: "d2", Reason: dispatcher.SkipFilterError, Detail: "filter: no such key: ann@example.com"},
				{DispatcherID: "d3", Reason: dispatcher.SkipPaused, Detail: "the dispatcher is paused"}}},
		Outcomes: []dispatcher.ActionOutcome{
			{DispatcherID: "d2", ActionID: "a2", Status: dispatcher.OutcomeSkipped, SkipReason: dispatcher.SkipFilterError, Error: "filter: no such key: ann@example.com"},
			{DispatcherID: "d3", ActionID: "a3", Status: dispatcher.OutcomeSkipped, SkipReason: dispatcher.SkipPaused, Error: "the dispatcher is paused"}},
	}, nil
}

// TestExecutionDetailPermissions shows that an execution's detail shows
// the event's content and the configuration only with the permissions that
// show them elsewhere, says what it left out, and that the raw history,
// which cannot leave anything out, needs them all. A filter's error is
// the event's content too: CEL's errors quote the values they met.
func TestExecutionDetailPermissions(t *testing.T) {
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Secret: []byte(harnessSecret)}, MaxBodyBytes: 4096, MaxEventBytes: 2048},
		Deps{Executions: &detailedExecutions{}, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, perms ...string) (int, string) {
		t.Helper()
		tok, err := SignToken([]byte(harnessSecret), TokenClaims{Subject: "support", Permissions: perms, TTL: time.Hour}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", path, nil)
		req.Host = "localhost"
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, tt := range []struct {
		name     string
		perms    []string
		shown    []string // fragments the answer must hold
		hidden   []string // fragments it must not
		withheld map[string]string
	}{
		{"executions only", []string{PermViewExecutions},
			[]string{`"content":null`, `"dispatchers":null`, `"functions":null`, `"version":7`, `"reason":"filter-error"`,
				`"skipReason":"filter-error"`, `"detail":"the dispatcher is paused"`, `"skipDetail":"the dispatcher is paused"`},
			[]string{"ann@example.com", "dpo@example.com", "gdpr", `"erase"`},
			map[string]string{"event.content": PermViewEventContent, "config.dispatchers": PermViewDispatchers, "config.functions": PermViewFunctions,
				"config.skipped.detail": PermViewEventContent, "actions.skipDetail": PermViewEventContent}},
		{"with event content and dispatchers", []string{PermViewExecutions, PermViewEventContent, PermViewDispatchers},
			[]string{"ann@example.com", "dpo@example.com", "gdpr", `"functions":null`, `"detail":"filter: no such key: ann@example.com"`,
				`"skipDetail":"filter: no such key: ann@example.com"`},
			[]string{`"erase"`},
			map[string]string{"config.functions": PermViewFunctions}},
		{"everything", Permissions(),
			[]string{"ann@example.com", "dpo@example.com", "gdpr", `"erase"`},
			[]string{`"withheld"`},
			nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get("/executions/v1/dispatch-evt-1", tt.perms...)
			if code != http.StatusOK {
				t.Fatalf("detail = %d %s", code, body)
			}
			for _, s := range tt.shown {
				if !strings.Contains(body, s) {
					t.Errorf("detail lacks %s: %s", s, body)
				}
			}
			for _, s := range tt.hidden {
				if strings.Contains(body, s) {
					t.Errorf("detail shows %s: %s", s, body)
				}
			}
			var d struct {
				Withheld map[string]string `json:"withheld"`
			}
			if err := json.Unmarshal([]byte(body), &d); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(d.Withheld, tt.withheld) {
				t.Errorf("withheld = %v, want %v", d.Withheld, tt.withheld)
			}
		})
	}

	code, body := get("/executions/v1/dispatch-evt-1/history", PermViewExecutions, PermViewDispatchers)
	var e map[string]any
	_ = json.Unmarshal([]byte(body), &e)
	wantError(t, code, e, 403, 10, "permissions VIEW_EVENT_CONTENT, VIEW_FUNCTIONS are required too: a run's history holds its event and configuration")
	if code, body := get("/executions/v1/dispatch-evt-1/history", PermViewExecutions, PermViewEventContent, PermViewDispatchers, PermViewFunctions); code != 200 {
		t.Errorf("history with every permission it needs = %d %s", code, body)
	}
}

// TestReplaysRefuseWhatWouldWidenThem: a replay's body is never read
// loosely. A misspelt key ("evenType") would drop the filter it meant and
// replay more than asked, and a bulk replay with no filter at all would
// replay every failed dispatch; both are 400s that name the field, and
// the executions service is not asked. A dry run may count everything.
func TestReplaysRefuseWhatWouldWidenThem(t *testing.T) {
	f := &fakeExecutions{}
	do := executionsServer(t, f)
	for _, tt := range []struct{ path, body, mention string }{
		{"/executions/v1/replays", `{"evenType":"user_deleted","status":"failed"}`, `evenType: unknown field`},
		{"/executions/v1/replays", `{"status":"failed","dryRun":true,"dispatcher":"d1"}`, `dispatcher: unknown field`},
		{"/executions/v1/replays", `{}`, "a bulk replay needs at least one filter: eventType, eventId"},
		{"/executions/v1/replays", `{"rate":5,"config":"current","actions":["0123456789abcdef01234567"]}`, "a bulk replay needs at least one filter: eventType, eventId"},
		{"/executions/v1/dispatch-evt-1/replay", `{"action":["a1"]}`, `action: unknown field`},
		// A byte order mark, which the body's decoding ignores, hid the
		// misspelt key from the check.
		{"/executions/v1/replays", "\xef\xbb\xbf" + `{"status":"failed","colour":"red"}`, `colour: unknown field`},
	} {
		code, out := do("POST", tt.path, tt.body)
		wantError(t, code, out, 400, 15, tt.mention)
	}
	if f.dryRuns != 0 || f.bulkStarts != 0 || f.replay.WorkflowID != "" {
		t.Fatalf("the executions service was asked: %d dry runs, %d starts, replay %+v", f.dryRuns, f.bulkStarts, f.replay)
	}
	for _, body := range []string{`{"dryRun":true}`, `{"status":"failed"}`, `{"skipReason":"paused"}`} {
		if code, out := do("POST", "/executions/v1/replays", body); code/100 != 2 {
			t.Errorf("%s = %d %v, want it accepted", body, code, out)
		}
	}
}

// deadlines records the time left to the requests that reach it.
type deadlines struct {
	fakeExecutions
	left map[string]time.Duration
}

func (d *deadlines) note(ctx context.Context, what string) {
	if at, ok := ctx.Deadline(); ok {
		d.left[what] = time.Until(at)
	}
}

func (d *deadlines) List(ctx context.Context, fl dispatcher.ExecutionFilter, r dispatcher.ListRequest) (dispatcher.ExecutionPage, error) {
	d.note(ctx, "list")
	return d.fakeExecutions.List(ctx, fl, r)
}

func (d *deadlines) Failures(ctx context.Context, fl dispatcher.ExecutionFilter, replayed bool, buckets int) (dispatcher.FailureSummary, error) {
	d.note(ctx, "failures")
	return d.fakeExecutions.Failures(ctx, fl, replayed, buckets)
}

func (d *deadlines) DryRunBulkReplay(ctx context.Context, r dispatcher.BulkReplayRequest, n int) (dispatcher.BulkReplayDryRun, error) {
	d.note(ctx, "bulk count")
	return d.fakeExecutions.DryRunBulkReplay(ctx, r, n)
}

func (d *deadlines) Start(ctx context.Context, ev dispatcher.Event) (dispatcher.StartResult, error) {
	d.note(ctx, "intake")
	return dispatcher.StartResult{WorkflowID: dispatcher.WorkflowID(ev.ID), RunID: "run-1"}, nil
}

// TestRequestDeadlines: a request waits at most RequestTimeout, but the
// three that may rightly take longer, the intake of a batch (a start per
// event, each waiting for Temporal), the failures summary (up to 40,000
// runs from visibility) and a bulk replay's count (up to 20,000, and what
// replaced them), get the slow routes' time, within the server's write
// timeout. Before, the count had 30 s, and failed under load.
func TestRequestDeadlines(t *testing.T) {
	d := &deadlines{left: map[string]time.Duration{}}
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Secret: []byte(harnessSecret)}, MaxBodyBytes: 4096, MaxEventBytes: 2048,
		RequestTimeout: 2 * time.Second}, Deps{Executions: d, Starter: d, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := SignToken([]byte(harnessSecret), TokenClaims{Subject: "ann", Permissions: Permissions(), TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/executions/v1", ""}, {"GET", "/executions/v1/failures", ""}, {"POST", "/events/v1", `{"id":"e1","type":"t"}`},
		{"POST", "/executions/v1/replays", `{"dryRun":true}`},
	} {
		req := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
		req.Host = "localhost"
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code/100 != 2 {
			t.Fatalf("%s %s = %d %s", r.method, r.path, rec.Code, rec.Body)
		}
	}
	if left := d.left["list"]; left <= 0 || left > 2*time.Second {
		t.Errorf("the list had %v left, want at most the request timeout, 2s", left)
	}
	for _, slow := range []string{"failures", "intake", "bulk count"} {
		if left := d.left[slow]; left < 90*time.Second || left > 2*time.Minute {
			t.Errorf("%s had %v left, want the slow routes' time: over 90s, under the 2m write timeout", slow, left)
		}
	}
	// Clients learn it, to wait longer than the server does (the console).
	req := httptest.NewRequest("GET", "/auth/v1/me", nil)
	req.Host = "localhost"
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), `"requestTimeoutMs":2000`) {
		t.Errorf("GET /auth/v1/me = %d %s, want requestTimeoutMs 2000", rec.Code, rec.Body)
	}
}

// outlasting waits for its request's deadline, as Temporal's client does
// for a read that does not end in time, and fails as it then does.
type outlasting struct{ fakeExecutions }

func (o *outlasting) List(ctx context.Context, _ dispatcher.ExecutionFilter, _ dispatcher.ListRequest) (dispatcher.ExecutionPage, error) {
	return dispatcher.ExecutionPage{}, outlast(ctx)
}

func (o *outlasting) Get(ctx context.Context, _, _ string) (dispatcher.ExecutionDetail, error) {
	return dispatcher.ExecutionDetail{}, outlast(ctx)
}

func outlast(ctx context.Context) error {
	<-ctx.Done()
	return fmt.Errorf("%w (%w)", dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable: try again"), ctx.Err())
}

// A request that outlasts its deadline is told so, and how to ask for
// less: before, "temporal is unavailable" when Temporal answered all
// along, but not within the request's time.
func TestRequestPastItsDeadline(t *testing.T) {
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Secret: []byte(harnessSecret)}, MaxBodyBytes: 4096, MaxEventBytes: 2048,
		RequestTimeout: 200 * time.Millisecond}, Deps{Executions: &outlasting{}, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/executions/v1", nil)
	req.Host = "localhost"
	req.Header.Set("Authorization", "Bearer "+tokenWith(t, PermViewExecutions))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	msg, _ := out["message"].(string)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(msg, "took longer than the 200ms the server gives one") ||
		!strings.Contains(msg, "narrower from and to") || strings.Contains(msg, "unavailable") {
		t.Errorf("GET /executions/v1 past its deadline = %d %s, want 503 saying it took too long", rec.Code, rec.Body)
	}
	// One dispatch is no search: nothing to narrow.
	req = httptest.NewRequest("GET", "/executions/v1/dispatch-e1", nil)
	req.Host = "localhost"
	req.Header.Set("Authorization", "Bearer "+tokenWith(t, PermViewExecutions))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "took longer than the 200ms") || strings.Contains(rec.Body.String(), "narrower") {
		t.Errorf("GET /executions/v1/dispatch-e1 past its deadline = %d %s, want 503 saying it took too long, and no narrowing", rec.Code, rec.Body)
	}
}

// TestActionsWithoutFieldsRefuseFields: cancel, release, pause and resume
// take no fields; a body with one (a "reason" a client means to record)
// is a 400 naming it, and nothing is done. Before, it was dropped without
// a word. An empty body, {} or null (no body, as some clients send it)
// still goes.
func TestActionsWithoutFieldsRefuseFields(t *testing.T) {
	const bulkID = "bulk-replay-0123456789abcdef01234567"
	f := &fakeExecutions{}
	do := executionsServer(t, f)
	paths := []string{"/executions/v1/dispatch-evt-1/cancel", "/executions/v1/dispatch-evt-1/release",
		"/executions/v1/replays/" + bulkID + "/cancel", "/executions/v1/replays/" + bulkID + "/pause", "/executions/v1/replays/" + bulkID + "/resume"}
	for _, path := range paths {
		code, out := do("POST", path, `{"reason":"wrong template"}`)
		wantError(t, code, out, 400, 15, "reason: unknown field")
	}
	if f.actor != "" || f.paused != nil {
		t.Fatalf("the executions service was asked: actor %q, paused %v", f.actor, f.paused)
	}
	for _, path := range paths {
		for _, body := range []string{"", "{}", "null", " null\n"} {
			if code, out := do("POST", path, body); code/100 != 2 {
				t.Errorf("POST %s %q = %d %v, want it done", path, body, code, out)
			}
		}
	}
}

// A bulk replay's dry run lists its sample only to a caller who may read
// executions: one who may only replay them gets the count. Before, a
// REPLAY_EXECUTIONS token read through it the runs GET refused it.
func TestDryRunSampleNeedsViewExecutions(t *testing.T) {
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Secret: []byte(harnessSecret)}, MaxBodyBytes: 4096, MaxEventBytes: 2048},
		Deps{Executions: &fakeExecutions{}, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		perms []string
		want  string
	}{
		{[]string{PermReplayExecutions}, `"matched":50,"replayed":0,"stillPaused":0,"removed":0,"sample":[],"withheld":{"sample":"VIEW_EXECUTIONS"}}`},
		{[]string{PermReplayExecutions, PermViewExecutions}, `"workflowId":"` + sampleExecution.WorkflowID + `"`},
	} {
		tok, err := SignToken([]byte(harnessSecret), TokenClaims{Subject: "support", Permissions: tt.perms, TTL: time.Hour}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("POST", "/executions/v1/replays", strings.NewReader(`{"status":"failed","dryRun":true}`))
		req.Host = "localhost"
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("%v: %d %s, want %s", tt.perms, rec.Code, rec.Body, tt.want)
		}
	}
}

package dispatch_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// executionsEnv is a dev server with a worker running the real Dispatch
// workflow and activities against an HTTP function whose answer the test
// controls, and the executions service on top.
type executionsEnv struct {
	t       *testing.T
	c       client.Client
	ex      *dispatch.Executions
	starter dispatch.Starter
	acts    *activities.Effects
	audit   *models.Store
	store   *testenv.MemStore
	broken  atomic.Bool // the "gone" function answers 404 while set
	tardy   atomic.Bool // the "tardy" function does not answer while set
	cut     atomic.Bool // the "tardy" function closes the connection while set
	mu      sync.Mutex
	keys    []string // Idempotency-Keys of calls to the "gone" and "tardy" functions
	// The "slow" function tells each call on called and answers once
	// release is closed: 503 to the first unavailable calls.
	called, release chan struct{}
	unavailable     atomic.Int32
	// auditDown fails the audit trail's next SetAuditRun, as a blip of
	// the database does, when set.
	auditDown atomic.Bool
}

// blippingAudit is the audit trail of an executionsEnv, whose SetAuditRun
// fails once when the env's auditDown is set.
type blippingAudit struct {
	*models.Store
	e *executionsEnv
}

func (a blippingAudit) SetAuditRun(ctx context.Context, workflowID, operation, ref, newRunID string) error {
	if a.e.auditDown.Swap(false) {
		return dispatcher.Errorf(dispatcher.EUNAVAILABLE, "the database is unavailable or busy: try again")
	}
	return a.Store.SetAuditRun(ctx, workflowID, operation, ref, newRunID)
}

func newExecutionsEnv(t *testing.T) *executionsEnv {
	t.Helper()
	c := testenv.TemporalClient(t)
	e := &executionsEnv{t: t, c: c, audit: testenv.Store(t), called: make(chan struct{}, 10), release: make(chan struct{})}
	e.broken.Store(true)
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select { // a test that does not count the calls is not held by them
			case e.called <- struct{}{}:
			default:
			}
			select {
			case <-e.release:
			case <-r.Context().Done():
			}
			if e.unavailable.Add(-1) >= 0 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
			}
		}
		if r.URL.Path == "/tardy" {
			e.mu.Lock()
			e.keys = append(e.keys, r.Header.Get("Idempotency-Key"))
			e.mu.Unlock()
			if e.tardy.Load() {
				_, _ = io.Copy(io.Discard, r.Body) // so that the server sees the caller give up
				<-r.Context().Done()
			}
			if e.cut.Load() {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close() // done, but the caller does not hear it
				}
				return
			}
		}
		if r.URL.Path == "/gone" {
			e.mu.Lock()
			e.keys = append(e.keys, r.Header.Get("Idempotency-Key"))
			e.mu.Unlock()
			if e.broken.Load() {
				http.Error(w, "no such user", http.StatusNotFound)
			}
		}
	}))
	t.Cleanup(fn.Close)

	const queue, stubbornQueue = "executions-test", "executions-test-functions"
	later := time.Now().Add(time.Hour)
	store := &testenv.MemStore{
		Dispatchers: []dispatcher.Dispatcher{
			{ID: "d1", Name: "erase", EventType: "signup", Actions: []dispatcher.Action{
				{ID: "m1", Type: dispatcher.ActionMail, TemplateID: "tpl", Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}}},
				{ID: "t1", Type: dispatcher.ActionTask, Name: "erase-user", FunctionName: "gone"},
			}},
			{ID: "d2", Name: "welcome", EventType: "signup", Actions: []dispatcher.Action{
				{ID: "m2", Type: dispatcher.ActionMail, TemplateID: "bad", Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}}},
			}},
			{ID: "d4", Name: "hello", EventType: "hello", Actions: []dispatcher.Action{
				{ID: "m4", Type: dispatcher.ActionMail, TemplateID: "tpl", Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}}},
			}},
			{ID: "d3", Name: "reminder", EventType: "later", Actions: []dispatcher.Action{
				{ID: "t3", Type: dispatcher.ActionTask, FunctionName: "gone", StartTimestamp: &later},
			}},
			{ID: "d6", Name: "export", EventType: "slow", Actions: []dispatcher.Action{
				{ID: "t6", Type: dispatcher.ActionTask, Name: "export", FunctionName: "slow"},
				{ID: "t7", Type: dispatcher.ActionTask, Name: "remind", FunctionName: "slow", StartTimestamp: &later},
			}},
			{ID: "d9", Name: "retry-and-remind", EventType: "retry-and-remind", Actions: []dispatcher.Action{
				{ID: "t11", Type: dispatcher.ActionTask, Name: "export", FunctionName: "slow", RetryPolicy: &dispatcher.RetryPolicy{
					MaximumAttempts: 100, InitialInterval: 300 * time.Millisecond, BackoffCoefficient: 1}},
				{ID: "t12", Type: dispatcher.ActionTask, Name: "remind", FunctionName: "gone", StartTimestamp: &later},
			}},
			{ID: "d7", Name: "purge", EventType: "tardy", Actions: []dispatcher.Action{
				{ID: "t8", Type: dispatcher.ActionTask, FunctionName: "tardy", RetryPolicy: &dispatcher.RetryPolicy{MaximumAttempts: 1}},
				{ID: "t9", Type: dispatcher.ActionTask, FunctionName: "gone"},
			}},
			{ID: "d8", Name: "patient", EventType: "patient", Actions: []dispatcher.Action{
				{ID: "t10", Type: dispatcher.ActionTask, FunctionName: "slow", RetryPolicy: &dispatcher.RetryPolicy{
					InitialInterval: time.Second, BackoffCoefficient: 60, MaximumInterval: time.Minute}},
			}},
			{ID: "d5", Name: "archive", EventType: "archive", Actions: []dispatcher.Action{
				{ID: "m5", Type: dispatcher.ActionMail, TemplateID: "bad", Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}}},
				{ID: "t5", Type: dispatcher.ActionTask, FunctionName: "stubborn"},
			}},
		},
		Templates: map[string]dispatcher.Template{
			"tpl": {ID: "tpl", Subject: "Hi", Text: "Hello"},
			"bad": {ID: "bad", Subject: "Hi {{ .event.content.nope }}"},
		},
		Functions: map[string]dispatcher.Function{
			"gone":     {Name: "gone", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/gone", Timeout: 5 * time.Second},
			"stubborn": {Name: "stubborn", Kind: dispatcher.FunctionTemporal, TaskQueue: stubbornQueue},
			"slow":     {Name: "slow", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/slow", Timeout: 30 * time.Second},
			"tardy":    {Name: "tardy", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/tardy", Timeout: time.Second},
		},
	}
	ex, err := dispatch.NewExecutions(dispatch.ExecutionsOptions{
		Client: c, UIURL: "http://ui.example", TaskQueue: queue, Audit: blippingAudit{e.audit, e}, Dispatchers: store,
	})
	if err != nil {
		t.Fatal(err)
	}
	loopback, err := dispatcher.NewOutbound([]string{"127.0.0.0/8"}, []string{stubbornQueue}) // the function sinks
	if err != nil {
		t.Fatal(err)
	}
	acts, err := activities.New(activities.Options{Store: store, SMTPURL: "smtp://" + testenv.SMTP(t).Addr, MailFrom: "no-reply@example.com",
		Outbound: loopback, LaterReplay: func(ctx context.Context, workflowID, run string) (string, error) {
			return e.ex.LaterReplay(ctx, workflowID, run)
		}})
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(c, queue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivity(acts)
	rw := worker.New(c, workflows.ReplayTaskQueue(queue), worker.Options{})
	rw.RegisterActivity(dispatch.NewReplayActivities(ex))
	// A temporal function that ignores a cancel and ends when signaled
	// "finish".
	fw := worker.New(c, stubbornQueue, worker.Options{})
	fw.RegisterWorkflowWithOptions(func(ctx workflow.Context, _ dispatcher.TaskPayload) error {
		ctx, _ = workflow.NewDisconnectedContext(ctx)
		workflow.GetSignalChannel(ctx, "finish").Receive(ctx, nil)
		return nil
	}, workflow.RegisterOptions{Name: "stubborn"})
	for _, w := range []worker.Worker{w, rw, fw} {
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	e.ex, e.starter, e.store, e.acts = ex, dispatch.Starter{Client: c, TaskQueue: queue}, store, acts
	return e
}

func (e *executionsEnv) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// dispatch starts the dispatch of an event and, unless wait is false,
// waits for it to close.
func (e *executionsEnv) dispatch(id, eventType string, wait bool) dispatcher.StartResult {
	e.t.Helper()
	res, err := e.starter.Start(e.ctx(), dispatcher.Event{ID: id, Type: eventType, Content: json.RawMessage(`{"name":"Ann"}`), Time: time.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	if wait {
		e.wait(res.WorkflowID, res.RunID)
	}
	return res
}

func (e *executionsEnv) wait(workflowID, runID string) {
	e.t.Helper()
	_ = e.c.GetWorkflow(e.ctx(), workflowID, runID).Get(e.ctx(), nil)
}

// list polls until the filter matches the workflow IDs want, in any
// order: visibility lags a little behind the runs.
func (e *executionsEnv) list(f dispatcher.ExecutionFilter, want ...string) []dispatcher.Execution {
	e.t.Helper()
	slices.Sort(want)
	var page dispatcher.ExecutionPage
	testenv.Eventually(e.t, 10*time.Second, func() string {
		var err error
		if page, err = e.ex.List(e.ctx(), f, dispatcher.ListRequest{}); err != nil {
			e.t.Fatalf("List(%+v): %v", f, err)
		}
		var got []string
		for _, x := range page.Executions {
			got = append(got, x.WorkflowID)
		}
		slices.Sort(got)
		if slices.Equal(got, want) {
			return ""
		}
		return fmt.Sprintf("List(%+v) = %v, want %v", f, got, want)
	})
	return page.Executions
}

func TestExecutions(t *testing.T) {
	e := newExecutionsEnv(t)
	failed := e.dispatch("ev-failed", "signup", true)
	scheduled := e.dispatch("ev-later", "later", false)
	wf, ws := failed.WorkflowID, scheduled.WorkflowID

	// Listing: status, dispatcher, error class and event filters.
	x := e.list(dispatcher.ExecutionFilter{Status: dispatcher.ExecutionFailed}, wf)[0]
	if x.Status != dispatcher.ExecutionFailed || x.EventID != "ev-failed" || x.EventType != "signup" ||
		!slices.Equal(x.FailedActionIDs, []string{"t1", "m2"}) || !slices.Equal(x.ErrorClasses, []string{"HTTPPermanent", "TemplateError"}) ||
		x.Close.IsZero() || x.WebURL != "http://ui.example/namespaces/default/workflows/"+wf+"/"+failed.RunID+"/history" {
		t.Errorf("failed execution = %+v", x)
	}
	// The pairs say which dispatcher failed with which class.
	wantPairs := []dispatcher.ClassDispatcher{{ErrorClass: "HTTPPermanent", DispatcherID: "d1"}, {ErrorClass: "TemplateError", DispatcherID: "d2"}}
	if !slices.Equal(x.Failures, wantPairs) {
		t.Errorf("failures = %+v, want %+v", x.Failures, wantPairs)
	}
	e.list(dispatcher.ExecutionFilter{Status: dispatcher.ExecutionScheduled}, ws)
	e.list(dispatcher.ExecutionFilter{Status: dispatcher.ExecutionRunning})
	e.list(dispatcher.ExecutionFilter{Status: dispatcher.ExecutionCompleted})
	e.list(dispatcher.ExecutionFilter{DispatcherID: "d2", ErrorClass: dispatcher.FailureTemplate}, wf)
	e.list(dispatcher.ExecutionFilter{ErrorClass: dispatcher.FailureSMTPPermanent})
	e.list(dispatcher.ExecutionFilter{ActionID: "t1"}, wf)
	e.list(dispatcher.ExecutionFilter{EventID: "ev-later"}, ws)
	e.list(dispatcher.ExecutionFilter{EventType: "signup", From: time.Now().Add(-time.Minute)}, wf)
	e.list(dispatcher.ExecutionFilter{To: time.Now().Add(-time.Minute)})

	// Failures: one group per class and dispatcher, not every combination.
	sum, err := e.ex.Failures(e.ctx(), dispatcher.ExecutionFilter{}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 1 || len(sum.Groups) != 2 {
		t.Fatalf("failures = %+v", sum)
	}
	if g := sum.Groups[0]; g.ErrorClass != "HTTPPermanent" || g.DispatcherID != "d1" || g.DispatcherName != "erase" || g.Count != 1 || !strings.Contains(g.Sample, "404") {
		t.Errorf("first group = %+v", g)
	}
	if g := sum.Groups[1]; g.ErrorClass != "TemplateError" || g.DispatcherID != "d2" || !strings.Contains(g.Sample, "nope") {
		t.Errorf("second group = %+v", g)
	}
	// The trend: the one failed run in one of the buckets, overall and
	// per group; over the last hour in 6 buckets, in the newest.
	if n := len(sum.Trend.Counts); n != dispatcher.DefaultTrendBuckets || sum.Trend.From.After(x.Start) || slices.Max(sum.Trend.Counts) != 1 ||
		slices.Max(sum.Groups[0].Trend) != 1 || len(sum.Groups[0].Trend) != n {
		t.Errorf("trend = %+v, group trend %v; want the run in one of %d buckets", sum.Trend, sum.Groups[0].Trend, dispatcher.DefaultTrendBuckets)
	}
	now := time.Now()
	hour, err := e.ex.Failures(e.ctx(), dispatcher.ExecutionFilter{From: now.Add(-time.Hour), To: now}, false, 6)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hour.Trend.Counts, []int{0, 0, 0, 0, 0, 1}) || hour.Trend.Bucket != 10*time.Minute {
		t.Errorf("trend of the last hour = %+v, want 6 buckets of 10m, the run in the last", hour.Trend)
	}
	if _, err := e.ex.Failures(e.ctx(), dispatcher.ExecutionFilter{}, false, dispatcher.MaxTrendBuckets+1); dispatcher.ErrorCode(err) != dispatcher.EINVALID {
		t.Errorf("%d buckets: %v, want EINVALID", dispatcher.MaxTrendBuckets+1, err)
	}
	// A range that starts after now has no trend to draw: before, it was
	// answered with buckets of a millisecond at its start.
	if _, err := e.ex.Failures(e.ctx(), dispatcher.ExecutionFilter{From: now.Add(time.Hour)}, false, 0); dispatcher.ErrorCode(err) != dispatcher.EINVALID ||
		!strings.Contains(err.Error(), "from: is after now") {
		t.Errorf("from an hour ahead: %v, want EINVALID naming from", err)
	}

	// Detail: the event, the configuration it loaded, every outcome.
	d, err := e.ex.Get(e.ctx(), wf, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Event.ID != "ev-failed" || d.Config == nil || len(d.Config.Dispatchers) != 2 || d.ConfigPinned || len(d.Runs) != 1 {
		t.Fatalf("detail = %+v", d)
	}
	if got := outcomeSummary(d.Outcomes); got != "m1:succeeded t1:failed:HTTPPermanent m2:failed:TemplateError" {
		t.Errorf("outcomes = %s", got)
	}
	// A running dispatch's outcomes come from the query.
	ds, err := e.ex.Get(e.ctx(), ws, "")
	if err != nil {
		t.Fatal(err)
	}
	if ds.Status != dispatcher.ExecutionScheduled || outcomeSummary(ds.Outcomes) != "t3:scheduled" {
		t.Errorf("scheduled detail: status %s, outcomes %s", ds.Status, outcomeSummary(ds.Outcomes))
	}
	// Temporal pages by stored event batches, so a page may hold a few
	// more events than asked for.
	hist, err := e.ex.History(e.ctx(), wf, "", 2, "")
	if err != nil || len(hist.Events) < 2 || len(hist.Events) > 5 || hist.NextPageToken == "" || hist.RunID != failed.RunID ||
		!strings.Contains(string(hist.Events[0]), "WORKFLOW_EXECUTION_STARTED") {
		t.Fatalf("history page = %d events, token %q, %v", len(hist.Events), hist.NextPageToken, err)
	}
	next, err := e.ex.History(e.ctx(), wf, failed.RunID, 2, hist.NextPageToken)
	if err != nil || len(next.Events) == 0 || strings.Contains(string(next.Events[0]), "WORKFLOW_EXECUTION_STARTED") {
		t.Fatalf("second history page = %d events, %v", len(next.Events), err)
	}
	// A page token of another run's history reads nothing, with or
	// without that run's id: Temporal reads the history a token names,
	// whatever execution the request names, so a token of another tenant's
	// dispatch read its history. Before, it was answered.
	theirs, err := e.ex.History(e.ctx(), ws, "", 1, "")
	if err != nil || theirs.NextPageToken == "" {
		t.Fatalf("the scheduled dispatch's first history page: token %q, %v", theirs.NextPageToken, err)
	}
	if _, err := e.ex.History(e.ctx(), wf, failed.RunID, 2, theirs.NextPageToken); dispatcher.ErrorCode(err) != dispatcher.EINVALID {
		t.Errorf("another run's page token: %v, want EINVALID", err)
	}
	if _, err := e.ex.History(e.ctx(), wf, theirs.RunID, 2, theirs.NextPageToken); dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
		t.Errorf("another run's page token and run id: %v, want ENOTFOUND", err)
	}
	// A page token or run id the API did not hand out is the client's
	// mistake, said at once. Before, Temporal was asked, and the request
	// waited 10 s for its retries and answered 503, or 500 for a run id
	// that is not UTF-8.
	for what, call := range map[string]func() error{
		"a list with a made-up page token": func() error {
			_, err := e.ex.List(e.ctx(), dispatcher.ExecutionFilter{}, dispatcher.ListRequest{PageToken: "abc"})
			return err
		},
		// CRC-32 was all a token carried: one computed for bytes
		// Temporal did not write was passed on to it.
		"a list with a forged page token": func() error {
			b := []byte(`{"CloseTime":`)
			forged := base64.RawURLEncoding.EncodeToString(binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b)))
			_, err := e.ex.List(e.ctx(), dispatcher.ExecutionFilter{}, dispatcher.ListRequest{PageToken: forged})
			return err
		},
		"a list with another tenant's page token": func() error {
			page, err := e.ex.List(e.ctx(), dispatcher.ExecutionFilter{}, dispatcher.ListRequest{Limit: 1})
			if err != nil || page.NextPageToken == "" {
				return fmt.Errorf("a first page of 1: token %q, %v", page.NextPageToken, err)
			}
			if _, err := e.ex.List(e.ctx(), dispatcher.ExecutionFilter{}, dispatcher.ListRequest{Limit: 1, PageToken: page.NextPageToken}); err != nil {
				return fmt.Errorf("the next page, with its token: %v", err)
			}
			other := dispatcher.WithCaller(e.ctx(), dispatcher.Caller{Tenant: "page-token-x"})
			_, err = e.ex.List(other, dispatcher.ExecutionFilter{}, dispatcher.ListRequest{Limit: 1, PageToken: page.NextPageToken})
			return err
		},
		"a list with a history's page token": func() error {
			h, err := e.ex.History(e.ctx(), wf, "", 1, "")
			if err != nil || h.NextPageToken == "" {
				return fmt.Errorf("a history page of 1: token %q, %v", h.NextPageToken, err)
			}
			_, err = e.ex.List(e.ctx(), dispatcher.ExecutionFilter{}, dispatcher.ListRequest{PageToken: h.NextPageToken})
			return err
		},
		"a history with a made-up page token": func() error {
			_, err := e.ex.History(e.ctx(), wf, "", 2, "abc")
			return err
		},
		"a history of a run id that is not UTF-8": func() error {
			_, err := e.ex.History(e.ctx(), wf, "\xff", 2, "")
			return err
		},
		"a run id that is not UTF-8": func() error {
			_, err := e.ex.Get(e.ctx(), wf, "\xff")
			return err
		},
	} {
		start := time.Now()
		if err := call(); dispatcher.ErrorCode(err) != dispatcher.EINVALID || time.Since(start) > 5*time.Second {
			t.Errorf("%s: %v after %v, want EINVALID at once", what, err, time.Since(start).Round(time.Millisecond))
		}
	}

	// Refusals.
	for _, tt := range []struct {
		name string
		req  dispatcher.ReplayRequest
		code string
		msg  string
	}{
		{"a running dispatch", dispatcher.ReplayRequest{WorkflowID: ws}, dispatcher.ESTATE, "still scheduled"},
		{"an unknown dispatch", dispatcher.ReplayRequest{WorkflowID: "dispatch-nope"}, dispatcher.ENOTFOUND, "no dispatch"},
		{"an unknown action", dispatcher.ReplayRequest{WorkflowID: wf, Actions: []string{"t1", "zz"}}, dispatcher.EINVALID, `actions[1]`},
		{"an action by its name", dispatcher.ReplayRequest{WorkflowID: wf, Actions: []string{"erase-user"}}, dispatcher.EINVALID,
			`actions[0]: actions are named by id; "erase-user" is the name of action t1`},
		{"a bad config", dispatcher.ReplayRequest{WorkflowID: wf, Config: "yesterday"}, dispatcher.EINVALID, "config"},
		{"an action today's configuration lacks", dispatcher.ReplayRequest{WorkflowID: wf, Config: "current", Actions: []string{"t3"}},
			dispatcher.EINVALID, `the current configuration of event type "signup" has no action "t3"`},
		// Before, a run that does not exist was "superseded" (409).
		{"a run the dispatch never had", dispatcher.ReplayRequest{WorkflowID: wf, RunID: "0194f0c5-7d6e-7a8b-9c0d-1e2f3a4b5c6d"},
			dispatcher.ENOTFOUND, "no run 0194f0c5-7d6e-7a8b-9c0d-1e2f3a4b5c6d of dispatch"},
		{"a run id that is none", dispatcher.ReplayRequest{WorkflowID: wf, RunID: "x"}, dispatcher.EINVALID, "runId"},
		// The request is checked before the dispatch's state: before, a
		// run id that is none was "still scheduled" (409).
		{"a run id that is none, of a running dispatch", dispatcher.ReplayRequest{WorkflowID: ws, RunID: "nope"}, dispatcher.EINVALID, "runId"},
	} {
		if _, err := e.ex.Replay(e.ctx(), tt.req); dispatcher.ErrorCode(err) != tt.code || !strings.Contains(dispatcher.ErrorMessage(err), tt.msg) {
			t.Errorf("replay of %s: %v, want %s mentioning %q", tt.name, err, tt.code, tt.msg)
		}
	}

	// The function is fixed; a replay of the task alone calls only it,
	// once, with a key that tells it from the first call.
	e.broken.Store(false)
	r, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: wf, Actions: []string{"t1"}, Actor: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if r.RunID == failed.RunID || r.ReplayOf != failed.RunID || r.AlreadyStarted || !slices.Equal(r.Actions, []string{"t1"}) || r.Config != "original" {
		t.Fatalf("replay = %+v", r)
	}
	e.wait(wf, r.RunID)
	// A run is replayed once: asking again reports the replay, or, for
	// more than it made (every failed action), says so.
	again, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: wf, RunID: failed.RunID, Actions: []string{"t1"}, Actor: "bob"})
	if err != nil || !again.AlreadyStarted || again.RunID != r.RunID || again.ReplayID != r.ReplayID || !slices.Equal(again.Actions, []string{"t1"}) {
		t.Fatalf("repeated replay = %+v, %v", again, err)
	}
	if _, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: wf, RunID: failed.RunID, Actor: "bob"}); dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		!strings.Contains(err.Error(), "was replayed already, as run "+r.RunID+", of actions t1") {
		t.Fatalf("replay of every failed action after the replay of t1 = %v; want ESTATE naming it", err)
	}
	e.mu.Lock()
	keys := slices.Clone(e.keys)
	e.mu.Unlock()
	if len(keys) != 2 || keys[1] != wf+"/d1/t1/replay-"+r.ReplayID {
		t.Fatalf("function calls: %q; want the first and one replay", keys)
	}
	d, err = e.ex.Get(e.ctx(), wf, "")
	if err != nil {
		t.Fatal(err)
	}
	// It carries m2, which it did not run, as the first run left it.
	if d.RunID != r.RunID || d.Status != dispatcher.ExecutionFailed || !d.ConfigPinned || !slices.Equal(d.Only, []string{"t1"}) ||
		d.Replay.Of != failed.RunID || d.Replay.RequestedBy != "ann" || len(d.Runs) != 2 || outcomeSummary(d.Outcomes) != "t1:succeeded m2:failed:TemplateError" {
		t.Fatalf("detail after the replay = %+v", d)
	}
	if len(d.Audit) != 1 || d.Audit[0].Operation != dispatcher.AuditReplay || d.Audit[0].NewRunID != r.RunID || d.Audit[0].Actor != "ann" {
		t.Fatalf("audit = %+v", d.Audit)
	}
	// Its runs say which the replay superseded, as the list does.
	// Before, only the list did.
	if i := slices.IndexFunc(d.Runs, func(x dispatcher.Execution) bool { return x.RunID == failed.RunID }); i < 0 || d.Runs[i].ReplayedAs != r.RunID {
		t.Fatalf("runs = %+v; want the failed one replayed as %s", d.Runs, r.RunID)
	}
	// The replayed failure leaves the summary, unless asked for; the
	// carried one stays, in the replay's run.
	e.list(dispatcher.ExecutionFilter{Status: dispatcher.ExecutionFailed, ErrorClass: dispatcher.FailureHTTPPermanent}, wf)
	e.list(dispatcher.ExecutionFilter{Status: dispatcher.ExecutionFailed, ErrorClass: dispatcher.FailureTemplate}, wf, wf)
	if sum, err := e.ex.Failures(e.ctx(), dispatcher.ExecutionFilter{}, false, 0); err != nil || sum.Failed != 1 || sum.Superseded != 1 ||
		len(sum.Groups) != 1 || sum.Groups[0].DispatcherID != "d2" || sum.Groups[0].SampleRunID != r.RunID {
		t.Errorf("failures after the replay = %+v, %v; want m2's in the replay's run alone", sum, err)
	}
	if sum, err := e.ex.Failures(e.ctx(), dispatcher.ExecutionFilter{}, true, 0); err != nil || sum.Failed != 2 {
		t.Errorf("failures with replayed ones = %+v, %v", sum, err)
	}

	// Canceling the scheduled dispatch ends its waiting task canceled.
	if _, err := e.ex.Cancel(e.ctx(), ws, "bob"); err != nil {
		t.Fatal(err)
	}
	e.wait(ws, scheduled.RunID)
	e.list(dispatcher.ExecutionFilter{Status: dispatcher.ExecutionCanceled}, ws)
	ds, err = e.ex.Get(e.ctx(), ws, "")
	if err != nil {
		t.Fatal(err)
	}
	if outcomeSummary(ds.Outcomes) != "t3:canceled:Canceled" || len(ds.Audit) != 1 || ds.Audit[0].Actor != "bob" {
		t.Errorf("canceled detail: outcomes %s, audit %+v", outcomeSummary(ds.Outcomes), ds.Audit)
	}
	if _, err := e.ex.Cancel(e.ctx(), ws, "bob"); dispatcher.ErrorCode(err) != dispatcher.ESTATE {
		t.Errorf("second cancel: %v, want ESTATE", err)
	}
}

func outcomeSummary(os []dispatcher.ActionOutcome) string {
	var parts []string
	for _, o := range os {
		p := o.ActionID + ":" + o.Status
		if o.ErrorClass != "" {
			p += ":" + o.ErrorClass
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

// While a dispatch's first workflow task makes its first attempts (local
// activities), no worker answers its outcomes query: the detail lists its
// actions from the configuration its input holds, running or scheduled.
// Before, it listed none for as long as the attempts took.
func TestExecutionDetailDuringTheFirstAttempts(t *testing.T) {
	e := newExecutionsEnv(t)
	release := sync.OnceFunc(func() { close(e.release) })
	t.Cleanup(release) // before the worker stops: it waits for the call
	starter := e.starter
	starter.Configs = activities.NewCache(e.store) // the intake hands the configuration over
	res, err := starter.Start(e.ctx(), dispatcher.Event{ID: "first-1", Type: "slow", Content: json.RawMessage(`{}`), Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	<-e.called
	d, err := e.ex.Get(e.ctx(), res.WorkflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomeSummary(d.Outcomes); d.Status != dispatcher.ExecutionRunning || got != "t6:running t7:scheduled" || d.Outcomes[0].Attempts != 1 {
		t.Fatalf("during the first attempt: %s, outcomes %s (%+v), want t6 running its first attempt, t7 scheduled", d.Status, got, d.Outcomes)
	}
	release()
	testenv.Eventually(t, 20*time.Second, func() string {
		if d, err = e.ex.Get(e.ctx(), res.WorkflowID, ""); err != nil {
			t.Fatal(err)
		}
		if got := outcomeSummary(d.Outcomes); got != "t6:succeeded t7:scheduled" {
			return "once the first attempt ended: " + got
		}
		return ""
	})
	if err := e.c.TerminateWorkflow(e.ctx(), res.WorkflowID, "", "done"); err != nil {
		t.Fatal(err)
	}
	// Terminated, it will not run its scheduled action: not shown as
	// scheduled still, as if it would.
	if d, err = e.ex.Get(e.ctx(), res.WorkflowID, ""); err != nil {
		t.Fatal(err)
	}
	if got := outcomeSummary(d.Outcomes); d.Status != dispatcher.ExecutionFailed || got != "t6:succeeded t7:unknown" {
		t.Fatalf("once terminated: %s, outcomes %s, want t6 succeeded, t7 unknown", d.Status, got)
	}
	// No worker took its first workflow task: no attempt was made.
	starter.TaskQueue = "nobody-polls"
	if res, err = starter.Start(e.ctx(), dispatcher.Event{ID: "first-2", Type: "slow", Content: json.RawMessage(`{}`), Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.TerminateWorkflow(context.Background(), res.WorkflowID, "", "done") })
	if d, err = e.ex.Get(e.ctx(), res.WorkflowID, ""); err != nil {
		t.Fatal(err)
	}
	if got := outcomeSummary(d.Outcomes); got != "t6:running t7:scheduled" || d.Outcomes[0].Attempts != 0 {
		t.Fatalf("before a worker took it: outcomes %s (%+v), want t6 running without an attempt, t7 scheduled", got, d.Outcomes)
	}
}

// An action's retries are a regular activity that the Temporal Web UI
// shows by its id, action:<action id>: its summary says which action of
// which dispatcher it is.
func TestRetriesAreSummarized(t *testing.T) {
	e := newExecutionsEnv(t)
	close(e.release)
	e.unavailable.Store(1) // the first attempt fails: the second is a regular activity
	starter := e.starter
	starter.Configs = activities.NewCache(e.store)
	res, err := starter.Start(e.ctx(), dispatcher.Event{ID: "summary-1", Type: "slow", Content: json.RawMessage(`{}`), Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.TerminateWorkflow(context.Background(), res.WorkflowID, "", "done") })
	testenv.Eventually(t, 20*time.Second, func() string {
		var summaries []string
		it := e.c.GetWorkflowHistory(e.ctx(), res.WorkflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetEventType() != enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED {
				continue
			}
			var s string
			if err := converter.GetDefaultDataConverter().FromPayload(ev.GetUserMetadata().GetSummary(), &s); err != nil {
				t.Fatal(err)
			}
			summaries = append(summaries, ev.GetActivityTaskScheduledEventAttributes().GetActivityId()+": "+s)
		}
		if want := `action:t6: task "export" of dispatcher "export"`; !slices.Equal(summaries, []string{want}) {
			return fmt.Sprintf("activities scheduled: %q, want [%q]", summaries, want)
		}
		return ""
	})
}

// An action that waits to retry says when its next attempt comes, as
// Temporal has it. Before, the detail showed its attempts and last error,
// not when it would try again.
func TestNextAttemptShown(t *testing.T) {
	e := newExecutionsEnv(t)
	close(e.release)
	e.unavailable.Store(100) // every attempt fails: the regular one waits a minute to retry
	res, err := e.starter.Start(e.ctx(), dispatcher.Event{ID: "patient-1", Type: "patient", Content: json.RawMessage(`{}`), Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.TerminateWorkflow(context.Background(), res.WorkflowID, "", "done") })
	testenv.Eventually(t, 20*time.Second, func() string {
		d, err := e.ex.Get(e.ctx(), res.WorkflowID, res.RunID)
		if err != nil {
			t.Fatal(err)
		}
		next, ok := d.NextAttempts["t10"]
		if len(d.Outcomes) != 1 || d.Outcomes[0].Attempts != 2 || !ok || next.Before(time.Now().Add(30*time.Second)) || next.After(time.Now().Add(time.Minute)) {
			return fmt.Sprintf("outcomes %+v, next attempts %v; want t10 after 2 attempts, its next within a minute", d.Outcomes, d.NextAttempts)
		}
		return ""
	})
}

// A running bulk replay's progress counts the replays that have ended:
// before, the bulk replay counted them only between pages of targets, and
// its succeeded and failed stayed at 0 until it ended.
func TestBulkReplayProgressIsLive(t *testing.T) {
	e := newExecutionsEnv(t)
	st := e.bulkReplayedOne("live")
	// Canceled, it ends without waiting for its replays, and its counts
	// stay as they are: before, they went back to what it had counted
	// itself, none succeeded or failed.
	if _, err := e.ex.CancelBulkReplay(e.ctx(), st.ID, "ann"); err != nil {
		t.Fatal(err)
	}
	e.bulkEnds(st.ID, dispatcher.ExecutionCanceled)
}

// A bulk replay terminated (or failed) keeps the progress it had, read by
// replaying its run on a worker: before, it showed none, as if it had
// replayed nothing.
func TestBulkReplayTerminatedKeepsItsProgress(t *testing.T) {
	e := newExecutionsEnv(t)
	st := e.bulkReplayedOne("ended")
	if err := e.c.TerminateWorkflow(e.ctx(), st.ID, "", "stopped by an operator"); err != nil {
		t.Fatal(err)
	}
	e.bulkEnds(st.ID, dispatcher.ExecutionFailed)
}

// The list says which running bulk replay is paused, as its own route
// does. Before, a paused one was listed as running, no more.
func TestBulkReplaysListPaused(t *testing.T) {
	e := newExecutionsEnv(t)
	st := e.bulkReplayedOne("listed")
	listed := func(paused bool) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, func() string {
			l, err := e.ex.BulkReplays(e.ctx(), 10)
			if err != nil || len(l) != 1 || l[0].ID != st.ID || l[0].Status != dispatcher.ExecutionRunning || l[0].Progress.Paused != paused {
				return fmt.Sprintf("bulk replays = %+v, %v; want %s running, paused %v", l, err, st.ID, paused)
			}
			return ""
		})
	}
	listed(false)
	for _, pause := range []bool{true, false} {
		if _, err := e.ex.PauseBulkReplay(e.ctx(), st.ID, "ann", pause); err != nil {
			t.Fatal(err)
		}
		listed(pause)
	}
}

// bulkReplayedOne fails two dispatches named after prefix and starts a
// bulk replay of them that replays the first at once and would replay
// the second 100 s later; it returns it once the first replay succeeded.
func (e *executionsEnv) bulkReplayedOne(prefix string) dispatcher.BulkReplayStatus {
	t := e.t
	t.Helper()
	_, f := e.failed(prefix+"-a", prefix+"-b")
	e.broken.Store(false)
	st := e.startSlowBulkReplay(dispatcher.BulkReplayRequest{Filter: f, Actions: []string{"t1"}, Rate: 0.01, Actor: "ann"})
	var err error
	testenv.Eventually(t, 20*time.Second, func() string {
		if st, err = e.ex.BulkReplay(e.ctx(), st.ID); err != nil {
			t.Fatal(err)
		}
		if p := st.Progress; st.Status != dispatcher.ExecutionRunning || p.Replayed != 1 || p.Succeeded != 1 || p.Pending != 0 {
			return fmt.Sprintf("bulk replay %s: %+v", st.Status, p)
		}
		return ""
	})
	return st
}

// failed dispatches events with ids, whose t1 (d1) fails for good while
// e.broken, and waits until the filter f of that failure lists them; it
// returns their workflow IDs and f.
func (e *executionsEnv) failed(ids ...string) ([]string, dispatcher.ExecutionFilter) {
	e.t.Helper()
	var wids []string
	for _, id := range ids {
		wids = append(wids, e.dispatch(id, "signup", true).WorkflowID)
	}
	f := dispatcher.ExecutionFilter{DispatcherID: "d1", ErrorClass: dispatcher.FailureHTTPPermanent}
	e.list(f, wids...)
	return wids, f
}

// startSlowBulkReplay starts the bulk replay req, at a rate that lets it
// run past the test, and cancels it when the test ends.
func (e *executionsEnv) startSlowBulkReplay(req dispatcher.BulkReplayRequest) dispatcher.BulkReplayStatus {
	e.t.Helper()
	st, err := e.ex.StartBulkReplay(e.ctx(), req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _, _ = e.ex.CancelBulkReplay(context.Background(), st.ID, req.Actor) })
	return st
}

// bulkReplayEnded waits for bulk replay id to end, and returns it.
func (e *executionsEnv) bulkReplayEnded(id string) dispatcher.BulkReplayStatus {
	e.t.Helper()
	var st dispatcher.BulkReplayStatus
	testenv.Eventually(e.t, 20*time.Second, func() string {
		var err error
		if st, err = e.ex.BulkReplay(e.ctx(), id); err != nil {
			e.t.Fatal(err)
		}
		if st.Status == dispatcher.ExecutionRunning {
			return fmt.Sprintf("bulk replay still running: %+v", st)
		}
		return ""
	})
	return st
}

// bulkEnds waits for bulk replay id to be status, with the progress
// bulkReplayedOne left it at.
func (e *executionsEnv) bulkEnds(id, status string) {
	e.t.Helper()
	testenv.Eventually(e.t, 20*time.Second, func() string {
		st, err := e.ex.BulkReplay(e.ctx(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if p := st.Progress; st.Status != status || st.ProgressUnknown || p.Replayed != 1 || p.Succeeded != 1 {
			return fmt.Sprintf("bulk replay %s (progress unknown: %v): %+v", st.Status, st.ProgressUnknown, p)
		}
		return ""
	})
}

func TestBulkReplayOnDevServer(t *testing.T) {
	e := newExecutionsEnv(t)
	ids, f := e.failed("ev-a", "ev-b", "ev-c")

	dry, err := e.ex.DryRunBulkReplay(e.ctx(), dispatcher.BulkReplayRequest{Filter: f, Actions: []string{"t1"}}, 2)
	if err != nil || dry.Matched != 3 || len(dry.Sample) != 2 {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	if _, err := e.ex.StartBulkReplay(e.ctx(), dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{Status: dispatcher.ExecutionRunning}}); dispatcher.ErrorCode(err) != dispatcher.EINVALID {
		t.Fatalf("bulk replay of running dispatches: %v, want EINVALID", err)
	}

	e.broken.Store(false)
	st, err := e.ex.StartBulkReplay(e.ctx(), dispatcher.BulkReplayRequest{Filter: f, Actions: []string{"t1"}, Rate: 50, Actor: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if !dispatcher.ValidBulkReplayID(st.ID) || st.Request.Filter.Status != dispatcher.ExecutionFailed {
		t.Fatalf("started = %+v", st)
	}
	st = e.bulkReplayEnded(st.ID)
	p := st.Progress
	if st.Status != dispatcher.ExecutionCompleted || p.Matched != 3 || p.Replayed != 3 || p.Succeeded != 3 || p.Failed != 0 || p.Remaining != 0 || st.Request.Actor != "ann" {
		t.Fatalf("bulk replay = %+v", st)
	}
	// Listed, with its request, once visibility has its close; another
	// tenant's list does not hold it, nor this list that tenant's, even
	// one named so that its ids start as these do. Before, the list
	// found bulk replays by that start alone.
	tenant := dispatcher.WithCaller(e.ctx(), dispatcher.Caller{Tenant: "bulk-replay-x"})
	// Started as StartBulkReplay starts one: it would refuse this filter,
	// which matches none of that tenant's dispatches.
	theirs := dispatcher.TenantWorkflowID("bulk-replay-x", dispatcher.BulkReplayIDPrefix+dispatcher.NewID(time.Now()))
	if _, err := e.c.ExecuteWorkflow(e.ctx(), client.StartWorkflowOptions{ID: theirs, TaskQueue: "executions-test"}, workflows.WorkflowBulkReplay,
		workflows.BulkReplayInput{Filter: f, Config: dispatcher.ReplayConfigOriginal, Rate: dispatcher.DefaultReplayRate, Actor: "eve"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		if l, err := e.ex.BulkReplays(tenant, 10); err != nil || len(l) != 1 || l[0].ID != theirs {
			return fmt.Sprintf("the other tenant's bulk replays = %+v, %v; want its own", l, err)
		}
		return ""
	})
	testenv.Eventually(t, 10*time.Second, func() string {
		listed, err := e.ex.BulkReplays(e.ctx(), 10)
		if err != nil || len(listed) != 1 || listed[0].ID != st.ID || listed[0].Status != dispatcher.ExecutionCompleted ||
			listed[0].Request.Actor != "ann" || !slices.Equal(listed[0].Request.Actions, []string{"t1"}) || listed[0].Close.IsZero() {
			return fmt.Sprintf("bulk replays = %+v, %v; want the one, completed, with its request", listed, err)
		}
		return ""
	})
	if other, err := e.ex.BulkReplays(dispatcher.WithCaller(e.ctx(), dispatcher.Caller{Tenant: "acme"}), 10); err != nil || len(other) != 0 {
		t.Fatalf("another tenant's bulk replays = %+v, %v; want none", other, err)
	}
	replayed := map[string]string{} // workflow ID → the run the bulk replay replayed
	for _, wid := range ids {
		d, err := e.ex.Get(e.ctx(), wid, "")
		if err != nil {
			t.Fatal(err)
		}
		// t1 made, m2 carried: its run failed, the bulk replay counts it
		// succeeded (above), as it made what it was asked.
		if len(d.Runs) != 2 || d.Replay.BulkReplayID != st.ID || d.Status != dispatcher.ExecutionFailed || len(d.Audit) != 1 ||
			outcomeSummary(d.Outcomes) != "t1:succeeded m2:failed:TemplateError" {
			t.Errorf("%s after the bulk replay: %d runs, replay %+v, status %s, outcomes %s, audit %+v", wid, len(d.Runs), d.Replay, d.Status, outcomeSummary(d.Outcomes), d.Audit)
		}
		replayed[wid] = d.Replay.Of
	}
	// A dry run now counts those runs as replayed already, which a bulk
	// replay skips, and samples none of them. Before, it counted them
	// as what it would replay.
	if dry, err := e.ex.DryRunBulkReplay(e.ctx(), dispatcher.BulkReplayRequest{Filter: f, Actions: []string{"t1"}}, 2); err != nil ||
		dry.Matched != 3 || dry.Replayed != 3 || len(dry.Sample) != 0 {
		t.Fatalf("dry run after the bulk replay = %+v, %v; want 3 matched, all 3 replayed already", dry, err)
	}
	// A manual replay of a run the bulk replay replayed is reported, not
	// repeated; one of all its failed actions is refused: the bulk replay
	// made t1 alone.
	r, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: ids[0], RunID: replayed[ids[0]], Actions: []string{"t1"}, Actor: "bob"})
	if err != nil || !r.AlreadyStarted || r.BulkReplayID != st.ID {
		t.Fatalf("replay of a run the bulk replay replayed = %+v, %v", r, err)
	}
	if _, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: ids[0], RunID: replayed[ids[0]], Actor: "bob"}); dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		!strings.Contains(err.Error(), "of actions t1 with the original configuration: not what this request asks") {
		t.Fatalf("replay of all the failed actions of a run the bulk replay replayed = %v; want ESTATE saying it made t1 alone", err)
	}
	if _, err := e.ex.CancelBulkReplay(e.ctx(), st.ID, "ann"); dispatcher.ErrorCode(err) != dispatcher.ESTATE {
		t.Errorf("cancel of a finished bulk replay: %v, want ESTATE", err)
	}
	if _, err := e.ex.PauseBulkReplay(e.ctx(), st.ID, "ann", true); dispatcher.ErrorCode(err) != dispatcher.ESTATE {
		t.Errorf("pause of a finished bulk replay: %v, want ESTATE", err)
	}
	if _, err := e.ex.BulkReplay(e.ctx(), "bulk-replay-0123456789abcdef01234567"); dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
		t.Errorf("unknown bulk replay: %v, want ENOTFOUND", err)
	}
	if _, err := e.ex.BulkReplay(e.ctx(), ids[0]); dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
		t.Errorf("a dispatch's ID as a bulk replay: %v, want ENOTFOUND", err)
	}

	// Its runs were all replayed by the bulk replay: the same request
	// again starts nothing, saying so, as the dry run said. Before, it
	// started a bulk replay that ended 0 of 0.
	if _, err := e.ex.StartBulkReplay(e.ctx(), dispatcher.BulkReplayRequest{Filter: f, Actions: []string{"t1"}, Rate: 50, Actor: "ann"}); dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		!strings.HasPrefix(dispatcher.ErrorMessage(err), dispatcher.NothingToReplay) || !strings.Contains(err.Error(), "all 3 it matches were replayed since") {
		t.Fatalf("a bulk replay of replayed runs = %v; want ESTATE, nothing to replay, all 3 replayed since", err)
	}

	// An Idempotency-Key answers with the bulk replay it started, to the
	// same request only: another request under it is refused, where
	// before it got the first one's answer, as if it had started.
	e.broken.Store(true)
	e.list(f, append(ids, e.dispatch("ev-d", "signup", true).WorkflowID)...)
	e.broken.Store(false)
	keyed := dispatcher.BulkReplayRequest{Filter: f, Actions: []string{"t1"}, Rate: 50, Actor: "ann", IdempotencyKey: "bk-1"}
	first, err := e.ex.StartBulkReplay(e.ctx(), keyed)
	if err != nil {
		t.Fatal(err)
	}
	if first.AlreadyStarted {
		t.Fatalf("the first request = %+v; want it not said already started", first)
	}
	// Said so, as a single replay's answer says it. Before, it could not
	// be told from a new bulk replay.
	if again, err := e.ex.StartBulkReplay(e.ctx(), keyed); err != nil || again.ID != first.ID || !again.AlreadyStarted {
		t.Fatalf("the same request and key again = %+v, %v; want bulk replay %s, already started", again, err, first.ID)
	}
	// It matches the one run not replayed yet, and passes over the 3
	// replayed. Before, it matched those 3 too and skipped each at its
	// turn, listing 3 problems.
	testenv.Eventually(t, 20*time.Second, func() string {
		if first, err = e.ex.BulkReplay(e.ctx(), first.ID); err != nil {
			t.Fatal(err)
		}
		if p := first.Progress; first.Status != dispatcher.ExecutionCompleted || p.Matched != 1 || p.Processed != 1 || p.Skipped != 0 || len(p.Errors) != 0 {
			return fmt.Sprintf("a bulk replay of 1 run and 3 superseded = %+v; want it completed, matching 1", first)
		}
		return ""
	})
	other := keyed
	other.Rate = 5
	if _, err := e.ex.StartBulkReplay(e.ctx(), other); dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.Contains(err.Error(), "Idempotency-Key") {
		t.Errorf("another request under the key = %v, want EINVALID naming the Idempotency-Key", err)
	}
}

// A dispatch that retries an action while another waits for its
// startTimestamp is running, and counted among the pending ones, until
// the retries end; then it is scheduled. Before (Dispatch version 19), it
// was scheduled from the start, which hid it from the running ones and
// from the pending dispatches' age, whose alert never fired for it.
func TestRetryingBesideAWaitingActionIsRunning(t *testing.T) {
	e := newExecutionsEnv(t)
	close(e.release)          // /slow answers at once,
	e.unavailable.Store(1000) // 503 until told otherwise
	res := e.dispatch("ev-retrying", "retry-and-remind", false)
	t.Cleanup(func() { _ = e.c.TerminateWorkflow(context.Background(), res.WorkflowID, res.RunID, "test over") })
	testenv.Eventually(t, 20*time.Second, func() string {
		d, err := e.ex.Get(e.ctx(), res.WorkflowID, res.RunID)
		if err != nil || d.Status != dispatcher.ExecutionRunning || len(d.Outcomes) != 2 || d.Outcomes[0].Attempts < 3 {
			return fmt.Sprintf("%+v, %v; want it running, t11 retried", d, err)
		}
		return ""
	})
	e.list(dispatcher.ExecutionFilter{EventType: "retry-and-remind", Status: dispatcher.ExecutionRunning}, res.WorkflowID)
	e.list(dispatcher.ExecutionFilter{EventType: "retry-and-remind", Status: dispatcher.ExecutionScheduled})
	// Pending from when the retries began, which the pending age counts
	// from: here, its first workflow task (stored to the second, perhaps).
	desc, err := e.c.DescribeWorkflowExecution(e.ctx(), res.WorkflowID, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	var since time.Time
	info := desc.GetWorkflowExecutionInfo()
	if f := info.GetSearchAttributes().GetIndexedFields()[workflows.AttrPendingSince.GetName()]; f == nil ||
		converter.GetDefaultDataConverter().FromPayload(f, &since) != nil || since.Before(info.GetStartTime().AsTime().Add(-time.Second)) {
		t.Errorf("DispatchPendingSince = %v (%v), want it set, after the start %v", since, f, info.GetStartTime().AsTime())
	}
	pending := &dispatch.PendingCollector{Client: e.c, Namespace: "default", Now: time.Now, Limit: 100}
	testenv.Eventually(t, 10*time.Second, func() string {
		ch := make(chan prometheus.Metric, 100)
		pending.Collect(ch)
		close(ch)
		for m := range ch {
			var out dto.Metric
			if err := m.Write(&out); err == nil && len(out.GetLabel()) == 1 && out.GetLabel()[0].GetValue() == "d9" {
				return ""
			}
		}
		return "the pending dispatches' age has no series for d9, whose dispatch retries"
	})
	e.unavailable.Store(0) // the next attempt succeeds
	e.list(dispatcher.ExecutionFilter{EventType: "retry-and-remind", Status: dispatcher.ExecutionScheduled}, res.WorkflowID)
	e.list(dispatcher.ExecutionFilter{EventType: "retry-and-remind", Status: dispatcher.ExecutionRunning})
	if d, err := e.ex.Get(e.ctx(), res.WorkflowID, res.RunID); err != nil || outcomeSummary(d.Outcomes) != "t11:succeeded t12:scheduled" {
		t.Fatalf("%+v, %v; want t11 succeeded, t12 scheduled", d, err)
	}
}

// A dispatch terminated while an action retries shows the action unknown
// (it may have been made), with its last error and no next attempt.
// Before, Temporal's pending activity of the ended run made it running,
// its next attempt due, which never came.
func TestTerminatedWhileRetrying(t *testing.T) {
	e := newExecutionsEnv(t)
	close(e.release)
	e.unavailable.Store(1000) // 503 until the test ends
	res := e.dispatch("ev-terminated", "retry-and-remind", false)
	testenv.Eventually(t, 20*time.Second, func() string {
		d, err := e.ex.Get(e.ctx(), res.WorkflowID, res.RunID)
		if err != nil || len(d.Outcomes) != 2 || d.Outcomes[0].Attempts < 2 || d.NextAttempts[d.Outcomes[0].ActionID].IsZero() {
			return fmt.Sprintf("%+v, %v; want t11 retrying", d, err)
		}
		return ""
	})
	if err := e.c.TerminateWorkflow(e.ctx(), res.WorkflowID, res.RunID, "by an operator"); err != nil {
		t.Fatal(err)
	}
	d, err := e.ex.Get(e.ctx(), res.WorkflowID, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	o := d.Outcomes[0]
	if d.Status != dispatcher.ExecutionFailed || o.Status != dispatcher.OutcomeUnknown || len(d.NextAttempts) != 0 || !strings.Contains(o.Error, "503") {
		t.Fatalf("terminated: status %s, t11 %+v, next attempts %v; want t11 unknown, its last error kept, no next attempt", d.Status, o, d.NextAttempts)
	}
}

// A dispatch whose workers are all gone shows its actions as planned,
// saying that their progress is unknown. Before, a scheduled dispatch
// showed no action at all while no worker ran.
func TestDetailWithoutWorker(t *testing.T) {
	e := newExecutionsEnv(t)
	close(e.release) // t6 succeeds at once; t7 waits an hour
	const queue = "executions-test-gone"
	w := worker.New(e.c, queue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivity(e.acts)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	starter := dispatch.Starter{Client: e.c, TaskQueue: queue}
	res, err := starter.Start(e.ctx(), dispatcher.Event{ID: "ev-alone", Type: "slow", Content: json.RawMessage(`{}`), Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.TerminateWorkflow(context.Background(), res.WorkflowID, res.RunID, "test over") })
	testenv.Eventually(t, 10*time.Second, func() string {
		d, err := e.ex.Get(e.ctx(), res.WorkflowID, res.RunID)
		if err != nil || d.Status != dispatcher.ExecutionScheduled || outcomeSummary(d.Outcomes) != "t6:succeeded t7:scheduled" || d.OutcomesUnknown {
			return fmt.Sprintf("with its worker: %+v, %v; want it scheduled, t6 succeeded, t7 scheduled", d, err)
		}
		return ""
	})
	w.Stop()
	// Its actions as planned: the one that waits, and one whose progress
	// is unknown. Before, none at all; then, t6 running after 1 attempt.
	d, err := e.ex.Get(e.ctx(), res.WorkflowID, res.RunID)
	if err != nil || !d.OutcomesUnknown || outcomeSummary(d.Outcomes) != "t6:unknown t7:scheduled" || d.Outcomes[0].Attempts != 0 {
		t.Fatalf("without a worker: %+v, %v; want t6 unknown, no attempts said, t7 scheduled, the outcomes unknown", d.Outcomes, err)
	}
}

// A tenant runs at most MaxRunningBulkReplays bulk replays at once; the
// next is refused, naming what to do, until one ends; another tenant's
// are not counted. Before, any number ran, each at up to 100 replays a
// second.
func TestBulkReplaysRunningAreBounded(t *testing.T) {
	e := newExecutionsEnv(t)
	_, f := e.failed("ev-bound")
	// Bulk replays that run until the test ends: no worker polls their
	// task queue.
	var ids []string
	for range dispatch.MaxRunningBulkReplays {
		id := dispatcher.BulkReplayIDPrefix + dispatcher.NewID(time.Now())
		if _, err := e.c.ExecuteWorkflow(e.ctx(), client.StartWorkflowOptions{ID: id, TaskQueue: "nobody-polls"}, workflows.WorkflowBulkReplay,
			workflows.BulkReplayInput{Filter: f, Config: dispatcher.ReplayConfigOriginal, Rate: dispatcher.DefaultReplayRate, Actor: "eve"}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.c.TerminateWorkflow(context.Background(), id, "", "test over") })
		ids = append(ids, id)
	}
	req := dispatcher.BulkReplayRequest{Filter: f, Actions: []string{"t1"}, Rate: 0.01, Actor: "ann"}
	testenv.Eventually(t, 10*time.Second, func() string { // once visibility has them all
		if err := e.ex.RoomForBulk(e.ctx()); dispatcher.ErrorCode(err) != dispatcher.ESTATE {
			return fmt.Sprintf("room for a bulk replay: %v; want ESTATE", err)
		}
		return ""
	})
	_, err := e.ex.StartBulkReplay(e.ctx(), req)
	if dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(err.Error(), "cancel one") {
		t.Fatalf("a bulk replay past the bound: %v; want ESTATE saying what to do", err)
	}
	if err := e.ex.RoomForBulk(dispatcher.WithCaller(e.ctx(), dispatcher.Caller{Tenant: "acme"})); err != nil {
		t.Fatalf("another tenant: %v; want room for its bulk replays", err)
	}
	if err := e.c.TerminateWorkflow(e.ctx(), ids[0], "", "making room"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		if err := e.ex.RoomForBulk(e.ctx()); err != nil {
			return err.Error()
		}
		return ""
	})
	// Room for one: of five requests at once, one starts. Before, all
	// five did, none of them listed yet when the others counted.
	var wg sync.WaitGroup
	var started atomic.Int32
	for range 5 {
		wg.Go(func() {
			st, err := e.ex.StartBulkReplay(e.ctx(), req)
			switch {
			case err == nil:
				started.Add(1)
				t.Cleanup(func() { _, _ = e.ex.CancelBulkReplay(context.Background(), st.ID, req.Actor) })
			case dispatcher.ErrorCode(err) != dispatcher.ESTATE:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := started.Load(); n != 1 {
		t.Fatalf("five requests at once with room for one started %d", n)
	}
}

// A reset from the Temporal Web UI or CLI supersedes the run it ends, as
// a replay does: the list links the ended run to the new one, and the
// failures summary, a bulk replay's dry run and its pages pass over it.
// Before, only a replay superseded a run: the ended run stayed a failure
// to fix, and a bulk replay tried it and was refused.
func TestResetSupersedesTheRunItEnds(t *testing.T) {
	e := newExecutionsEnv(t)
	first := e.dispatch("reset-1", "signup", true) // gone answers 404, the bad template fails
	e.list(dispatcher.ExecutionFilter{Status: dispatcher.ExecutionFailed}, first.WorkflowID)

	reset, err := e.c.ResetWorkflowExecution(e.ctx(), &workflowservice.ResetWorkflowExecutionRequest{
		Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: first.WorkflowID, RunId: first.RunID},
		Reason: "test", WorkflowTaskFinishEventId: firstTaskCompleted(t, e.c, first.WorkflowID, first.RunID), RequestId: "reset-1"})
	if err != nil {
		t.Fatal(err)
	}
	second := reset.GetRunId()
	e.wait(first.WorkflowID, second) // fails again: nothing was fixed
	xs := e.list(dispatcher.ExecutionFilter{Status: dispatcher.ExecutionFailed}, first.WorkflowID, first.WorkflowID)
	for _, x := range xs {
		if want := map[string]string{first.RunID: second, second: ""}[x.RunID]; x.ReplayedAs != want {
			t.Errorf("run %s: replayedAs %q, want %q", x.RunID, x.ReplayedAs, want)
		}
	}
	sum, err := e.ex.Failures(e.ctx(), dispatcher.ExecutionFilter{}, false, 0)
	if err != nil || sum.Failed != 1 || sum.Superseded != 1 || len(sum.Groups) == 0 || sum.Groups[0].SampleRunID != second {
		t.Errorf("failures after the reset = %+v, %v; want the reset run's alone", sum, err)
	}
	f := dispatcher.ExecutionFilter{Status: dispatcher.ExecutionFailed}
	dry, err := e.ex.DryRunBulkReplay(e.ctx(), dispatcher.BulkReplayRequest{Filter: f}, 5)
	if err != nil || dry.Matched != 2 || dry.Replayed != 1 || len(dry.Sample) != 1 || dry.Sample[0].RunID != second {
		t.Errorf("dry run = %+v, %v; want 2 matched, 1 superseded, the reset run as the sample", dry, err)
	}
	page, err := dispatch.NewReplayActivities(e.ex).ListExecutions(e.ctx(), workflows.ListExecutionsInput{Filter: f, PageSize: 10})
	if err != nil || len(page.Runs) != 1 || page.Runs[0].RunID != second {
		t.Errorf("bulk replay page = %+v, %v; want the reset run alone", page, err)
	}
}

// A list that hides replayed runs fills its pages with the runs still to
// fix, however many replays superseded among them. Before, the console
// left them out of each page it was given, and a list of failed
// dispatches after a bulk replay was pages of nothing.
func TestListHidesReplayedRuns(t *testing.T) {
	e := newExecutionsEnv(t)
	var failed []string // newest first, as listed
	for i := range 7 {
		failed = slices.Insert(failed, 0, e.dispatch(fmt.Sprintf("hide-%d", i), "signup", true).WorkflowID) // gone answers 404, the bad template fails
	}
	kept := []string{failed[0], failed[3]}
	// Both fixed: the replays, of the failed actions with the current
	// configuration, complete.
	e.broken.Store(false)
	e.store.Update("d2", func(d *dispatcher.Dispatcher) { d.Actions[0].TemplateID = "tpl" })
	for _, id := range failed {
		if slices.Contains(kept, id) {
			continue
		}
		r, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: id, Config: dispatcher.ReplayConfigCurrent, Actor: "ann"})
		if err != nil {
			t.Fatal(err)
		}
		e.wait(id, r.RunID)
	}
	e.broken.Store(true)
	f := dispatcher.ExecutionFilter{Status: dispatcher.ExecutionFailed}
	e.list(f, failed...) // visibility has every failed run
	testenv.Eventually(t, 10*time.Second, func() string {
		var got []string
		pages, token := 0, ""
		for {
			page, err := e.ex.List(e.ctx(), f, dispatcher.ListRequest{Limit: 1, PageToken: token, HideReplayed: true})
			if err != nil {
				t.Fatalf("page %d: %v", pages+1, err)
			}
			pages++
			for _, x := range page.Executions {
				got = append(got, x.WorkflowID)
			}
			if token = page.NextPageToken; token == "" {
				break
			}
		}
		if !slices.Equal(got, kept) || pages > len(kept)+1 {
			return fmt.Sprintf("pages of 1 hiding replayed runs: %v in %d pages, want %v in at most %d", got, pages, kept, len(kept)+1)
		}
		return ""
	})
	hidden, err := e.ex.List(e.ctx(), f, dispatcher.ListRequest{Limit: 1, HideReplayed: true})
	if err != nil || hidden.NextPageToken == "" || len(hidden.Executions) != 1 || hidden.Executions[0].WorkflowID != kept[0] {
		t.Fatalf("a first page of 1: %+v, token %q, %v", hidden.Executions, hidden.NextPageToken, err)
	}
	// A dispatch that fails meanwhile comes first in the listing: the next
	// page goes on after the run the first gave, not after as many runs.
	// Before, it gave that run again.
	later := e.dispatch("hide-later", "signup", true).WorkflowID
	e.list(f, append(slices.Clone(failed), later)...)
	next, err := e.ex.List(e.ctx(), f, dispatcher.ListRequest{Limit: 1, PageToken: hidden.NextPageToken, HideReplayed: true})
	if err != nil || len(next.Executions) != 1 || next.Executions[0].WorkflowID != kept[1] {
		t.Fatalf("the second page after a new failure: %+v, %v; want %s", next.Executions, err, kept[1])
	}
	if _, err := e.ex.List(e.ctx(), f, dispatcher.ListRequest{PageToken: hidden.NextPageToken}); dispatcher.ErrorCode(err) != dispatcher.EINVALID {
		t.Errorf("a token of a list hiding replayed runs, in one that shows them: %v, want EINVALID", err)
	}
}

// A list hiding replayed runs goes on after the run its page gave even
// when more runs than a Temporal page holds came first since. Before, that
// run fell out of the page read again, and the list went on after as many
// runs, giving runs again.
func TestListHidesReplayedRunsPushedDown(t *testing.T) {
	e := newExecutionsEnv(t)
	var failed []string // newest first
	for i := range 3 {
		failed = slices.Insert(failed, 0, e.dispatch(fmt.Sprintf("down-%d", i), "signup", true).WorkflowID)
	}
	f := dispatcher.ExecutionFilter{Status: dispatcher.ExecutionFailed}
	e.list(f, slices.Clone(failed)...) // which sorts them
	first, err := e.ex.List(e.ctx(), f, dispatcher.ListRequest{Limit: 1, HideReplayed: true})
	if err != nil || len(first.Executions) != 1 || first.Executions[0].WorkflowID != failed[0] {
		t.Fatalf("the first page: %+v, %v; want %s", first.Executions, err, failed[0])
	}
	const more = dispatcher.MaxExecutionPage + 5
	for i := range more {
		e.dispatch(fmt.Sprintf("later-%d", i), "signup", false)
	}
	testenv.Eventually(t, 30*time.Second, func() string {
		if n, err := e.ex.Count(e.ctx(), f); err != nil || n < more+3 {
			return fmt.Sprintf("%d failed dispatches listed (%v), want %d", n, err, more+3)
		}
		return ""
	})
	next, err := e.ex.List(e.ctx(), f, dispatcher.ListRequest{Limit: 1, PageToken: first.NextPageToken, HideReplayed: true})
	if err != nil || len(next.Executions) != 1 || next.Executions[0].WorkflowID != failed[1] {
		t.Fatalf("the second page after %d failures since: %+v, %v; want %s", more, next.Executions, err, failed[1])
	}
}

// A reset of a run that a replay has superseded makes none of its
// actions: the replay may have made them under its own keys, which the
// reset run, carrying the input of the run it resets, does not know.
// Before, it called the function again under the first run's key, and
// sent the mail again, after the replay had done both. A reset of the
// replay's run makes them again under the keys that run used.
func TestResetOfASupersededRunMakesNothing(t *testing.T) {
	e := newExecutionsEnv(t)
	first := e.dispatch("reset-2", "signup", true) // gone answers 404, the bad template fails
	e.broken.Store(false)
	e.store.Update("d2", func(d *dispatcher.Dispatcher) { d.Actions[0].TemplateID = "tpl" })
	a, got := e.replay(dispatcher.ReplayRequest{WorkflowID: first.WorkflowID, Actor: "ann", Config: dispatcher.ReplayConfigCurrent})
	if got != "t1:succeeded m2:succeeded" {
		t.Fatalf("replay: %s, want the failed actions run again", got)
	}
	b, got := e.replay(dispatcher.ReplayRequest{WorkflowID: first.WorkflowID, RunID: a.RunID, Actor: "ann", Actions: []string{"t1"}})
	if got != "t1:succeeded" {
		t.Fatalf("second replay: %s, want t1 run again", got)
	}
	keys := func() []string {
		e.mu.Lock()
		defer e.mu.Unlock()
		return slices.Clone(e.keys)
	}
	before := keys()
	if len(before) != 3 || len(slices.Compact(slices.Clone(before))) != 3 {
		t.Fatalf("calls before the resets: %q, want the first run's and each replay's", before)
	}

	reset := func(runID, requestID string) dispatcher.ExecutionDetail {
		res, err := e.c.ResetWorkflowExecution(e.ctx(), &workflowservice.ResetWorkflowExecutionRequest{
			Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: first.WorkflowID, RunId: runID},
			Reason: "test", WorkflowTaskFinishEventId: firstTaskCompleted(t, e.c, first.WorkflowID, runID), RequestId: requestID})
		if err != nil {
			t.Fatal(err)
		}
		e.wait(first.WorkflowID, res.GetRunId())
		x, err := e.ex.Get(e.ctx(), first.WorkflowID, res.GetRunId())
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	x := reset(first.RunID, "reset-first")
	if got := outcomeSummary(x.Outcomes); got != "m1:failed:Superseded t1:failed:Superseded m2:failed:Superseded" ||
		!strings.Contains(x.Outcomes[0].Error, "replay "+b.ReplayID+" has superseded since") {
		t.Errorf("reset of the first run: %s (%+v), want every action refused, naming the latest replay", got, x.Outcomes)
	}
	// Replayed as it is, it would make them all under a new key: m1, sent
	// by the first run, too.
	if _, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: first.WorkflowID, Actor: "ann"}); dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		!strings.Contains(err.Error(), "made none of its actions (m1, t1, m2): it resets a run that a replay had superseded") {
		t.Errorf("replay of the refused reset: %v, want ESTATE saying why", err)
	}
	if got := outcomeSummary(reset(a.RunID, "reset-a").Outcomes); got != "t1:failed:Superseded m2:failed:Superseded" {
		t.Errorf("reset of the first replay's run: %s, want it refused", got)
	}
	if after := keys(); !slices.Equal(after, before) {
		t.Errorf("the resets of superseded runs called the function again: %q", after[len(before):])
	}

	// The latest replay's, after those refused resets, runs under its keys.
	if got := outcomeSummary(reset(b.RunID, "reset-b").Outcomes); got != "t1:succeeded" {
		t.Errorf("reset of the latest replay's run: %s, want its action made again", got)
	}
	if after := keys(); len(after) != 4 || after[3] != before[2] {
		t.Errorf("the reset of the latest replay's run called with %q, want the replay's key %q", after[len(before):], before[2])
	}
}

// A replay keeps the key of an action whose call the replayed run did
// not see end: timed out or cut off, as here, or canceled, or cut short
// with its run. The receiver may have done it after the run stopped waiting; under
// the replay's key it would do it again. An action that failed with an
// answer takes the replay's key, to be made again. Before, both took the
// replay's.
func TestReplayKeepsTheKeyOfACallThatDidNotEnd(t *testing.T) {
	for _, tc := range []struct {
		name, class string
		flag        func(*executionsEnv) *atomic.Bool
	}{
		{"timed out", dispatcher.FailureTimeout, func(e *executionsEnv) *atomic.Bool { return &e.tardy }},
		// Before, it took the replay's key, as if the function had answered.
		{"cut off", dispatcher.FailureHTTPTemporary, func(e *executionsEnv) *atomic.Bool { return &e.cut }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newExecutionsEnv(t)
			tc.flag(e).Store(true)
			first := e.dispatch("keep-1", "tardy", true)
			x, err := e.ex.Get(e.ctx(), first.WorkflowID, first.RunID)
			if got := outcomeSummary(x.Outcomes); err != nil || got != "t8:failed:"+tc.class+" t9:failed:HTTPPermanent" {
				t.Fatalf("first run: %s, %v; want t8 %s, t9 refused", got, err, tc.class)
			}
			tc.flag(e).Store(false)
			_, got := e.replay(dispatcher.ReplayRequest{WorkflowID: first.WorkflowID, Actor: "ann"})
			if got != "t8:succeeded t9:failed:HTTPPermanent" {
				t.Fatalf("replay: %s, want t8 made, t9 refused again", got)
			}
			e.mu.Lock()
			keys := slices.Clone(e.keys)
			e.mu.Unlock()
			by := map[string][]string{} // <workflowID>/<dispatcherID>/<actionID>[/replay-<run>], by action id
			for _, k := range keys {
				if parts := strings.Split(k, "/"); len(parts) > 2 {
					by[parts[2]] = append(by[parts[2]], k)
				}
			}
			if t8 := by["t8"]; len(t8) != 2 || t8[0] != t8[1] || strings.Contains(t8[0], "/replay-") {
				t.Errorf("t8 called with %q, want the first run's key twice", t8)
			}
			if t9 := by["t9"]; len(t9) != 2 || strings.Contains(t9[0], "/replay-") || !strings.HasPrefix(t9[1], t9[0]+"/replay-") {
				t.Errorf("t9 called with %q, want the first run's key, then the replay's", t9)
			}
		})
	}
}

// A replay that names some of a run's failed actions carries the others,
// as that run left them: its run fails with them, so the dispatch stays
// among the failed ones, hidden replayed runs and all, and in the
// failures summary, until a replay of the latest run makes them, under
// the key each needs: the first run's for a call that did not end, a new
// one for a call its function answered. Before, the replay superseded the
// run and completed: their failures showed in that run's detail alone.
func TestReplayOfSomeActionsCarriesTheOthers(t *testing.T) {
	for _, tc := range []struct {
		name, replayed, carried, class string
		newKey                         bool // the carried action is called again under a new key
	}{
		{"timed out", "t9", "t8", dispatcher.FailureTimeout, false},
		{"refused", "t8", "t9", dispatcher.FailureHTTPPermanent, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newExecutionsEnv(t)
			e.tardy.Store(true)
			first := e.dispatch("carry-"+tc.carried, "tardy", true)
			e.tardy.Store(false)
			if tc.replayed == "t9" {
				e.broken.Store(false)
			}
			some, got := e.replay(dispatcher.ReplayRequest{WorkflowID: first.WorkflowID, RunID: first.RunID, Actions: []string{tc.replayed}, Actor: "ann"})
			if want := tc.replayed + ":succeeded " + tc.carried + ":failed:" + tc.class; got != want {
				t.Fatalf("replay of %s: %s, want %s", tc.replayed, got, want)
			}
			// The same request for the latest run, which made it already,
			// is refused: it would call it again (probe).
			_, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: first.WorkflowID, RunID: some.RunID, Actions: []string{tc.replayed}, Actor: "ann"})
			if dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(err.Error(), "made "+tc.replayed+" already") {
				t.Errorf("replay of %s again from the run that made it: %v, want ESTATE", tc.replayed, err)
			}
			d, err := e.ex.Get(e.ctx(), first.WorkflowID, some.RunID)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != dispatcher.ExecutionFailed || d.Outcomes[1].CarriedFrom != first.RunID {
				t.Fatalf("replay run %s, %s carried from %q; want failed, carried from %s", d.Status, tc.carried, d.Outcomes[1].CarriedFrom, first.RunID)
			}
			// Listed with the replayed runs hidden, by the carried action's
			// dispatcher and class, and counted in the failures summary.
			f := dispatcher.ExecutionFilter{EventID: "carry-" + tc.carried, DispatcherID: "d7", ErrorClass: tc.class}
			testenv.Eventually(t, 10*time.Second, func() string {
				page, err := e.ex.List(e.ctx(), f, dispatcher.ListRequest{HideReplayed: true})
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Executions) != 1 || page.Executions[0].RunID != some.RunID {
					return fmt.Sprintf("failed dispatches listed: %+v, want run %s", page.Executions, some.RunID)
				}
				return ""
			})
			sum, err := e.ex.Failures(e.ctx(), dispatcher.ExecutionFilter{EventID: "carry-" + tc.carried}, false, 0)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Failed != 1 || len(sum.Groups) != 1 || sum.Groups[0].DispatcherID != "d7" || sum.Groups[0].ErrorClass != tc.class {
				t.Errorf("failures summary %+v, want the carried failure alone", sum)
			}

			// The latest run replayed as it is: the carried action made.
			e.broken.Store(false)
			_, got = e.replay(dispatcher.ReplayRequest{WorkflowID: first.WorkflowID, RunID: some.RunID, Actor: "ann"})
			if want := tc.carried + ":succeeded"; got != want {
				t.Fatalf("replay of the latest run: %s, want %s", got, want)
			}
			e.mu.Lock()
			var keys []string
			for _, k := range e.keys {
				if strings.Split(k, "/")[2] == tc.carried {
					keys = append(keys, k)
				}
			}
			e.mu.Unlock()
			switch {
			case len(keys) != 2 || strings.Contains(keys[0], "/replay-"):
				t.Errorf("%s called with %q, want the first run's key, then once again", tc.carried, keys)
			case tc.newKey && !strings.HasPrefix(keys[1], keys[0]+"/replay-"):
				t.Errorf("%s called again with %q, want a replay's key: its function answered", tc.carried, keys[1])
			case !tc.newKey && keys[1] != keys[0]:
				t.Errorf("%s called again with %q, want the first run's key %q: its call did not end", tc.carried, keys[1], keys[0])
			}
		})
	}
}

// A replay of some actions of a canceled run carries none of those the
// cancel ended: a cancel is a decision, which the replay keeps. Before,
// the scheduled action canceled was carried, its run failed with it, and
// a bulk replay of the failed dispatches made it (review).
func TestReplayOfSomeActionsCarriesNoCancel(t *testing.T) {
	e := newExecutionsEnv(t)
	close(e.release)
	e.unavailable.Store(1000) // t11 retries; t12 waits for its startTimestamp
	res := e.dispatch("carry-canceled", "retry-and-remind", false)
	testenv.Eventually(t, 20*time.Second, func() string {
		d, err := e.ex.Get(e.ctx(), res.WorkflowID, "")
		if err != nil {
			t.Fatal(err)
		}
		if d.Outcomes == nil || d.Outcomes[0].Attempts < 2 {
			return "t11 not retrying yet: " + outcomeSummary(d.Outcomes)
		}
		return ""
	})
	if _, err := e.ex.Cancel(e.ctx(), res.WorkflowID, "ann"); err != nil {
		t.Fatal(err)
	}
	e.wait(res.WorkflowID, res.RunID)
	e.unavailable.Store(0)
	r, got := e.replay(dispatcher.ReplayRequest{WorkflowID: res.WorkflowID, Actions: []string{"t11"}, Actor: "ann"})
	if got != "t11:succeeded" {
		t.Errorf("replay of t11: %s, want t12, canceled, not carried", got)
	}
	if d, err := e.ex.Get(e.ctx(), res.WorkflowID, r.RunID); err != nil || d.Status != dispatcher.ExecutionCompleted {
		t.Errorf("replay run: %v, %v; want completed", d.Status, err)
	}
}

// A replay's run that failed with its own failures is replayed for an
// action it made, as a first run is (its receiver lost it, say); one that
// fails only with what it carries is not: that would call it again for
// nothing. A dry run counts as its bulk replay does: a replay's run that
// did not run the named action is replayed (review).
func TestReplayOfActionsARunMade(t *testing.T) {
	e := newExecutionsEnv(t)
	own := e.dispatch("made-own", "signup", true) // t1 answers 404, m2's template is bad
	e.broken.Store(false)
	second, got := e.replay(dispatcher.ReplayRequest{WorkflowID: own.WorkflowID, Actor: "ann"})
	if got != "t1:succeeded m2:failed:TemplateError" {
		t.Fatalf("replay: %s, want t1 made, m2 failed again, its own", got)
	}
	third, got := e.replay(dispatcher.ReplayRequest{WorkflowID: own.WorkflowID, RunID: second.RunID, Actions: []string{"t1"}, Actor: "ann"})
	if got != "t1:succeeded m2:failed:TemplateError" {
		t.Fatalf("replay of t1 from a run that failed with m2: %s, want t1 made again, m2 carried", got)
	}
	if _, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: own.WorkflowID, RunID: third.RunID, Actions: []string{"t1"}, Actor: "ann"}); dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		!strings.Contains(err.Error(), "made t1 already; it is failed with other actions (m2)") {
		t.Errorf("replay of t1 from the run that carries m2: %v, want ESTATE", err)
	}

	// m2 alone replayed from a run whose t1 succeeded: its run has no t1.
	x := e.dispatch("made-x", "signup", true)
	if _, got = e.replay(dispatcher.ReplayRequest{WorkflowID: x.WorkflowID, Actions: []string{"m2"}, Actor: "ann"}); got != "m2:failed:TemplateError" {
		t.Fatalf("replay of m2: %s", got)
	}
	e.broken.Store(true)
	y := e.dispatch("made-y", "signup", true)
	e.broken.Store(false)
	req := dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{EventType: "signup", Status: dispatcher.ExecutionFailed}, Actions: []string{"t1"}, Rate: 50, Actor: "ann"}
	e.list(req.Filter, own.WorkflowID, own.WorkflowID, own.WorkflowID, x.WorkflowID, x.WorkflowID, y.WorkflowID)
	dry, err := e.ex.DryRunBulkReplay(e.ctx(), req, 10)
	var sampled []string
	for _, s := range dry.Sample {
		sampled = append(sampled, s.WorkflowID)
	}
	slices.Sort(sampled)
	if err != nil || dry.Matched != 6 || dry.Replayed != 4 || !slices.Equal(sampled, []string{x.WorkflowID, y.WorkflowID}) {
		t.Fatalf("dry run: %+v, %v; want 6 matched, 4 passed over (3 superseded, own's latest), x and y sampled", dry, err)
	}
	st, err := e.ex.StartBulkReplay(e.ctx(), req)
	if err != nil {
		t.Fatal(err)
	}
	if p := e.bulkReplayEnded(st.ID).Progress; p.Replayed != 2 {
		t.Errorf("bulk replay: %+v, want the 2 the dry run sampled replayed", p)
	}
}

// The same bulk replay of named actions sent again passes over the
// replays it made, which fail with what they carry of other actions:
// before, it replayed them, calling the named actions again under new
// keys, and would each time it was sent (review).
func TestBulkReplayOfNamedActionsSentAgainMakesThemOnce(t *testing.T) {
	e := newExecutionsEnv(t)
	e.dispatch("again-a", "signup", true) // t1 answers 404, m2's template is bad
	e.dispatch("again-b", "signup", true)
	f := dispatcher.ExecutionFilter{EventType: "signup", Status: dispatcher.ExecutionFailed}
	e.broken.Store(false)
	req := dispatcher.BulkReplayRequest{Filter: f, Actions: []string{"t1"}, Rate: 50, Actor: "ann"}
	st, err := e.ex.StartBulkReplay(e.ctx(), req)
	if err != nil {
		t.Fatal(err)
	}
	if p := e.bulkReplayEnded(st.ID).Progress; p.Replayed != 2 || p.Succeeded != 2 {
		t.Fatalf("first bulk replay: %+v, want 2 replayed, succeeded", p)
	}
	calls := func() int {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.keys)
	}
	if n := calls(); n != 4 {
		t.Fatalf("%d calls of t1, want 4: two first, two replays", n)
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		dry, err := e.ex.DryRunBulkReplay(e.ctx(), req, 5)
		if err != nil || dry.Matched != 4 || dry.Replayed != 4 || len(dry.Sample) != 0 {
			return fmt.Sprintf("dry run sent again: %+v, %v; want the 2 runs and their 2 replays matched, all replayed already", dry, err)
		}
		return ""
	})
	if _, err := e.ex.StartBulkReplay(e.ctx(), req); dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(err.Error(), "all 4 it matches were replayed since") {
		t.Errorf("the bulk replay sent again: %v, want ESTATE, nothing to replay", err)
	}
	// With a new failure among them, it replays that one alone.
	e.broken.Store(true)
	e.dispatch("again-c", "signup", true)
	e.broken.Store(false)
	testenv.Eventually(t, 10*time.Second, func() string {
		if n, err := e.ex.Count(e.ctx(), f); err != nil || n != 5 {
			return fmt.Sprintf("%d failed runs listed (%v), want 5", n, err)
		}
		return ""
	})
	st, err = e.ex.StartBulkReplay(e.ctx(), req)
	if err != nil {
		t.Fatal(err)
	}
	// The runs that made t1 are passed over, as the dry run counts them:
	// before, each was listed, waited its turn and was refused (re-check).
	if p := e.bulkReplayEnded(st.ID).Progress; p.Matched != 1 || p.Replayed != 1 || p.Succeeded != 1 || p.Skipped != 0 || len(p.Errors) != 0 {
		t.Errorf("the bulk replay with a new failure: %+v, want it alone matched and replayed", p)
	}
	if n := calls(); n != 6 {
		t.Errorf("%d calls of t1, want 6: the new one's first and its replay's", n)
	}

	// Named with m2, which fails again each time, its own failure: sent
	// again, it makes m2 alone, not t1 again (re-check).
	e.broken.Store(true)
	e.dispatch("again-d", "signup", true)
	e.broken.Store(false)
	both := dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{EventID: "again-d", Status: dispatcher.ExecutionFailed},
		Actions: []string{"t1", "m2"}, Rate: 50, Actor: "ann"}
	for i := range 2 {
		e.list(both.Filter, slices.Repeat([]string{"dispatch-again-d"}, i+1)...) // and its replay's run
		st, err := e.ex.StartBulkReplay(e.ctx(), both)
		if err != nil {
			t.Fatal(err)
		}
		if p := e.bulkReplayEnded(st.ID).Progress; p.Replayed != 1 || p.Failed != 1 {
			t.Errorf("bulk replay of t1 and m2: %+v, want one replay, failed (m2)", p)
		}
	}
	if n := calls(); n != 8 {
		t.Errorf("%d calls of t1, want 8: again-d's first and its first replay's", n)
	}
}

// firstTaskCompleted returns the event ID of the run's first completed
// workflow task: a reset to it is the Web UI's "Reset" to the first
// workflow task.
func firstTaskCompleted(t *testing.T, c client.Client, workflowID, runID string) int64 {
	t.Helper()
	it := c.GetWorkflowHistory(t.Context(), workflowID, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			return ev.GetEventId()
		}
	}
	t.Fatalf("run %s of %s has no completed workflow task", runID, workflowID)
	return 0
}

// A replay with the original configuration skips the dispatchers paused
// since the run it replays, as a new event's dispatch does: a pause is
// how an admin stops a dispatcher. Their actions end skipped, to be
// replayed once it is resumed; a replay left with nothing else to run is
// refused. Before, the replay ran them.
func TestReplaySkipsDispatchersPausedSince(t *testing.T) {
	e := newExecutionsEnv(t)
	failed := e.dispatch("paused-1", "signup", true) // t1 (d1) and m2 (d2) fail
	e.store.SetPaused("d1", true)
	r := e.replaySkipsT1(failed, dispatcher.SkipPaused)

	e.store.SetPaused("d2", true)
	if _, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, RunID: r.RunID, Actor: "ann"}); dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		!strings.Contains(err.Error(), `"welcome" (d2) is paused since run `+r.RunID+`: resume it (enabled: true)`) {
		t.Errorf("replay with every action paused: %v, want ESTATE naming the paused dispatcher", err)
	}
}

// A replay with the original configuration does not run a dispatcher
// deleted, or moved to another event type, since the run it replays: its
// actions end skipped for good (SkipRemoved), and a replay left with
// nothing else to run is refused. Before, a replay of every failed
// dispatch ran a deleted dispatcher's actions again.
func TestReplaySkipsDispatchersRemovedSince(t *testing.T) {
	e := newExecutionsEnv(t)
	failed := e.dispatch("removed-1", "signup", true) // t1 (d1) and m2 (d2) fail
	e.store.Update("d1", func(d *dispatcher.Dispatcher) { d.EventType = "elsewhere" })
	_, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "ann", Actions: []string{"t1"}})
	if dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		!strings.HasSuffix(err.Error(), `"erase" (d1) was deleted, or moved to another event type, since run `+failed.RunID+`: neither configuration runs them now`) {
		t.Errorf("replay of the removed dispatcher's action: %v, want ESTATE saying it was removed", err)
	}
	e.replaySkipsT1(failed, dispatcher.SkipRemoved)
	_, err = e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "ann", Actions: []string{"t1"}})
	if dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.Contains(err.Error(), `its dispatcher "erase" (d1) was deleted, or moved to another event type`) {
		t.Errorf("replay of the action the replay skipped: %v, want EINVALID saying its dispatcher was removed", err)
	}
}

// What a replay of some actions carries stays replayable: an action of a
// dispatcher paused since is carried, and replayed from the latest run
// once its dispatcher is resumed (its definition pinned as it was: before,
// the pinned configuration held it as skipped, and the replay said it no
// longer existed); one of a dispatcher deleted since is not carried, as
// nothing can make it.
func TestReplayOfSomeActionsCarriesWhatCanBeMade(t *testing.T) {
	e := newExecutionsEnv(t)
	failed := e.dispatch("carry-paused", "signup", true) // t1 (d1) and m2 (d2) fail
	e.broken.Store(false)
	e.store.SetPaused("d2", true)
	some, got := e.replay(dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actions: []string{"t1"}, Actor: "ann"})
	if got != "t1:succeeded m2:failed:TemplateError" {
		t.Fatalf("replay of t1: %s, want m2 carried", got)
	}
	_, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, RunID: some.RunID, Actor: "ann"})
	if dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(err.Error(), `"welcome" (d2) is paused since run `+some.RunID) {
		t.Errorf("replay of the carried action of a paused dispatcher: %v, want ESTATE saying resume it", err)
	}
	e.store.SetPaused("d2", false)
	if _, got = e.replay(dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, RunID: some.RunID, Actor: "ann"}); got != "m2:failed:TemplateError" {
		t.Errorf("replay of the latest run once d2 is resumed: %s, want m2 made (and failed, its template still broken)", got)
	}

	// The same with the current configuration, which the replay's run
	// resolves: before, it skipped d2 whole, and the carried m2 could be
	// replayed with the current configuration alone (probe).
	e.broken.Store(true)
	current := e.dispatch("carry-current", "signup", true)
	e.broken.Store(false)
	e.store.SetPaused("d2", true)
	some, got = e.replay(dispatcher.ReplayRequest{WorkflowID: current.WorkflowID, Actions: []string{"t1"}, Config: dispatcher.ReplayConfigCurrent, Actor: "ann"})
	if got != "t1:succeeded m2:failed:TemplateError" {
		t.Fatalf("replay of t1 with the current configuration: %s, want m2 carried", got)
	}
	e.store.SetPaused("d2", false)
	if _, got = e.replay(dispatcher.ReplayRequest{WorkflowID: current.WorkflowID, RunID: some.RunID, Actor: "ann"}); got != "m2:failed:TemplateError" {
		t.Errorf("replay of the latest run once d2 is resumed: %s, want m2 made (and failed)", got)
	}

	// A carried action of a paused dispatcher that the replay names
	// another action of: pinned as it was, it is replayed once resumed.
	// Before, the whole dispatcher was pinned skipped, and the action said
	// deleted (review).
	e.broken.Store(true)
	e.store.Update("d1", func(d *dispatcher.Dispatcher) { d.Actions[0].TemplateID = "bad" })
	both := e.dispatch("carry-both", "signup", true) // m1, t1 (d1) and m2 (d2) fail
	e.store.SetPaused("d1", true)
	some, got = e.replay(dispatcher.ReplayRequest{WorkflowID: both.WorkflowID, Actions: []string{"t1", "m2"}, Actor: "ann"})
	if got != "m2:failed:TemplateError t1:skipped m1:failed:TemplateError" {
		t.Fatalf("replay of t1 and m2, d1 paused: %s, want m2 run (and failed again), t1 skipped, m1 carried", got)
	}
	e.store.SetPaused("d1", false)
	if _, got = e.replay(dispatcher.ReplayRequest{WorkflowID: both.WorkflowID, RunID: some.RunID, Actions: []string{"m1"}, Actor: "ann"}); got != "m1:failed:TemplateError m2:failed:TemplateError" {
		t.Errorf("replay of m1 once d1 is resumed: %s, want it made (and failed, its template still broken), m2 carried", got)
	}

	e.broken.Store(true)
	e.store.Update("d1", func(d *dispatcher.Dispatcher) { d.Actions[0].TemplateID = "tpl" })
	gone := e.dispatch("carry-deleted", "signup", true)
	e.store.Update("d2", func(d *dispatcher.Dispatcher) { d.EventType = "elsewhere" })
	e.broken.Store(false)
	some, got = e.replay(dispatcher.ReplayRequest{WorkflowID: gone.WorkflowID, Actions: []string{"t1"}, Actor: "ann"})
	if got != "t1:succeeded" {
		t.Errorf("replay of t1 with d2 deleted: %s, want m2 not carried", got)
	}
	if d, err := e.ex.Get(e.ctx(), gone.WorkflowID, some.RunID); err != nil || d.Status != dispatcher.ExecutionCompleted {
		t.Errorf("replay run: %v, %v; want completed", d.Status, err)
	}
}

// A bulk replay's dry run counts the dispatches none of whose failed
// actions a dispatcher of their event type has now as removed, and leaves
// them out of those it would replay, as the bulk replay skips them; the
// failures summary marks the groups of a dispatcher removed so. Before,
// the dry run said they would be replayed, the console offered to, and
// the bulk replay then replayed none.
func TestBulkReplayDryRunCountsTheRemoved(t *testing.T) {
	e := newExecutionsEnv(t)
	gone := e.dispatch("removed-3", "signup", true) // t1 (d1) and m2 (d2) fail
	f := dispatcher.ExecutionFilter{Status: dispatcher.ExecutionFailed}
	e.list(f, gone.WorkflowID)
	r := dispatcher.BulkReplayRequest{Filter: f, Rate: 50, Actor: "ann"}
	e.store.Update("d1", func(d *dispatcher.Dispatcher) { d.EventType = "elsewhere" })
	if dry, err := e.ex.DryRunBulkReplay(e.ctx(), r, 10); err != nil || dry.Matched != 1 || dry.Removed != 0 || len(dry.Sample) != 1 {
		t.Fatalf("dry run with d2 still there = %+v, %v; want the dispatch to replay", dry, err)
	}
	sum, err := e.ex.Failures(e.ctx(), f, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	removed := map[string]bool{}
	for _, g := range sum.Groups {
		removed[g.DispatcherID] = g.Removed
	}
	if !removed["d1"] || removed["d2"] || len(removed) != 2 {
		t.Errorf("failure groups removed: %v, want d1's alone", removed)
	}
	e.store.Update("d2", func(d *dispatcher.Dispatcher) { d.EventType = "elsewhere" })
	if dry, err := e.ex.DryRunBulkReplay(e.ctx(), r, 10); err != nil || dry.Matched != 1 || dry.Removed != 1 || len(dry.Sample) != 0 {
		t.Fatalf("dry run with d1 and d2 moved = %+v, %v; want it counted as removed", dry, err)
	}
	// Nor does a bulk replay of it alone start, to replay nothing:
	// before, it started and ended 0 of 1, skipped.
	_, err = e.ex.StartBulkReplay(e.ctx(), r)
	if dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.HasPrefix(dispatcher.ErrorMessage(err), dispatcher.NothingToReplay) ||
		!strings.Contains(err.Error(), "of the 1 it matches, 1 whose actions no dispatcher of their event type has now (deleted since, or named for another type); no bulk replay was started") {
		t.Fatalf("a bulk replay of the removed alone = %v; want ESTATE, nothing to replay, saying why", err)
	}
	// With one to replay it starts, and passes over the other.
	moved := e.dispatch("removed-4", "elsewhere", true) // t1 (d1) and m2 (d2) fail there now
	e.list(f, gone.WorkflowID, moved.WorkflowID)
	st, err := e.ex.StartBulkReplay(e.ctx(), r)
	if err != nil {
		t.Fatal(err)
	}
	if p := e.bulkReplayEnded(st.ID).Progress; p.Matched != 2 || p.Replayed != 1 || p.Skipped != 1 {
		t.Fatalf("bulk replay = %+v, want the moved dispatch replayed and the other skipped, as its dry run said", p)
	}
}

// A bulk replay's dry run counts the dispatches all of whose failed
// actions are of dispatchers paused now as paused still, and leaves them
// out of those it would replay, as each replay is refused ("is paused
// now: resume it"); a bulk replay of them alone starts nothing. Before,
// only a request of skipReason paused counted them: the dry run of
// {"status": "failed"} said 1 would be replayed, and the bulk replay then
// completed, 0 replayed, 1 skipped (support probe).
func TestBulkReplayDryRunCountsThePaused(t *testing.T) {
	e := newExecutionsEnv(t)
	failed := e.dispatch("paused-3", "signup", true) // t1 (d1) and m2 (d2) fail
	f := dispatcher.ExecutionFilter{Status: dispatcher.ExecutionFailed}
	e.list(f, failed.WorkflowID)
	r := dispatcher.BulkReplayRequest{Filter: f, Rate: 50, Actor: "ann"}
	e.store.SetPaused("d1", true)
	if dry, err := e.ex.DryRunBulkReplay(e.ctx(), r, 10); err != nil || dry.Matched != 1 || dry.StillPaused != 0 || len(dry.Sample) != 1 {
		t.Fatalf("dry run with d2 running = %+v, %v; want the dispatch to replay", dry, err)
	}
	e.store.SetPaused("d2", true)
	if dry, err := e.ex.DryRunBulkReplay(e.ctx(), r, 10); err != nil || dry.Matched != 1 || dry.StillPaused != 1 || len(dry.Sample) != 0 {
		t.Fatalf("dry run with d1 and d2 paused = %+v, %v; want it counted as paused still", dry, err)
	}
	_, err := e.ex.StartBulkReplay(e.ctx(), r)
	if dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.HasPrefix(dispatcher.ErrorMessage(err), dispatcher.NothingToReplay) ||
		!strings.Contains(err.Error(), "of the 1 it matches, 1 of a dispatcher paused still (resume it first)") {
		t.Fatalf("a bulk replay of the paused alone = %v; want ESTATE, nothing to replay, saying why", err)
	}
}

// Nor does it run an action deleted since from a dispatcher that is still
// there: the admin removed it, and a replay of every failed dispatch
// would bring it back. Before, only a deleted dispatcher was skipped.
func TestReplaySkipsActionsDeletedSince(t *testing.T) {
	e := newExecutionsEnv(t)
	failed := e.dispatch("removed-2", "signup", true) // t1 (d1) and m2 (d2) fail
	e.store.Update("d1", func(d *dispatcher.Dispatcher) { d.Actions = nil })
	_, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "ann", Actions: []string{"t1"}})
	if dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		!strings.HasSuffix(err.Error(), `action t1 of "erase" (d1) was deleted since run `+failed.RunID+`: neither configuration runs them now`) {
		t.Errorf("replay of the deleted action: %v, want ESTATE saying it was deleted", err)
	}
	r := e.replaySkipsT1(failed, dispatcher.SkipRemoved)
	_, err = e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "ann", Actions: []string{"t1"}})
	if dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.Contains(err.Error(), `action "t1" was skipped in run `+r.RunID+`: it was deleted from its dispatcher "erase" (d1)`) {
		t.Errorf("replay of the action the replay skipped: %v, want EINVALID saying it was deleted", err)
	}
}

// replaySkipsT1 replays failed, whose t1 (d1) and m2 (d2) failed, once d1
// has stopped: m2 runs again, t1 ends skipped for reason without a call
// of its function, and a list by reason finds the replay's run.
func (e *executionsEnv) replaySkipsT1(failed dispatcher.StartResult, reason string) dispatcher.ReplayResult {
	e.t.Helper()
	e.mu.Lock()
	calls := len(e.keys)
	e.mu.Unlock()
	r, got := e.replay(dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "ann"})
	if got != "m2:failed:TemplateError t1:skipped" {
		e.t.Errorf("replay outcomes %s, want m2 run again and t1 skipped", got)
	}
	d, err := e.ex.Get(e.ctx(), failed.WorkflowID, r.RunID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, o := range d.Outcomes {
		if o.ActionID == "t1" && o.SkipReason != reason {
			e.t.Errorf("t1 skipped for %q, want %q", o.SkipReason, reason)
		}
	}
	e.mu.Lock()
	if len(e.keys) != calls {
		e.t.Errorf("the stopped dispatcher's function was called: %q", e.keys[calls:])
	}
	e.mu.Unlock()
	e.list(dispatcher.ExecutionFilter{SkipReason: reason}, failed.WorkflowID)
	return r
}

// A replay, with the current configuration, of a dispatch whose
// dispatchers are still paused, or whose filters are still false for its
// event, is refused: its run would skip them all again and complete,
// which a bulk replay counted as a replay that succeeded. Once one runs
// for the event its actions run, and the other's are skipped again.
func TestReplayOfDispatchersStillSkipped(t *testing.T) {
	e := newExecutionsEnv(t)
	e.broken.Store(false)
	e.store.SetPaused("d1", true)
	e.store.SetPaused("d2", true)
	skipped := e.dispatch("paused-2", "signup", true)
	e.list(dispatcher.ExecutionFilter{SkipReason: dispatcher.SkipPaused}, skipped.WorkflowID)

	current := dispatcher.ReplayRequest{WorkflowID: skipped.WorkflowID, Actor: "ann", Config: dispatcher.ReplayConfigCurrent}
	if _, err := e.ex.Replay(e.ctx(), current); dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		!strings.Contains(err.Error(), `would all be skipped again`) || !strings.Contains(err.Error(), `"erase" (d1) is paused now: resume it`) ||
		!strings.Contains(err.Error(), `"welcome" (d2) is paused now`) {
		t.Fatalf("replay of paused dispatchers: %v, want ESTATE naming both", err)
	}
	only := current
	only.Actions = []string{"t1"}
	if _, err := e.ex.Replay(e.ctx(), only); dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		!strings.Contains(err.Error(), "(d1)") || strings.Contains(err.Error(), "(d2)") {
		t.Fatalf("replay of t1, paused: %v, want ESTATE naming d1 alone", err)
	}

	// A bulk replay of it alone starts nothing, saying why. Before, it
	// started, and skipped the dispatch.
	_, err := e.ex.StartBulkReplay(e.ctx(), dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{SkipReason: dispatcher.SkipPaused}, Rate: 50, Actor: "ann"})
	if dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(err.Error(), "of the 1 it matches, 1 of a dispatcher paused still (resume it first)") {
		t.Fatalf("bulk replay while paused: %v, want ESTATE saying the dispatcher is paused still", err)
	}

	// A filter that fails for the event is fixed first; one false for it
	// did its job: d1 is skipped for good then, and only the pause
	// stands in the way.
	e.store.Update("d1", func(d *dispatcher.Dispatcher) { d.Paused, d.Filter = false, `event.content.nope > 1` })
	if _, err := e.ex.Replay(e.ctx(), current); dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		!strings.Contains(err.Error(), `"erase" (d1): its filter fails for the event: fix it`) || !strings.Contains(err.Error(), `"welcome" (d2) is paused now`) {
		t.Fatalf("replay of a dispatcher resumed whose filter fails: %v, want ESTATE naming its filter", err)
	}
	e.store.Update("d1", func(d *dispatcher.Dispatcher) { d.Filter = `event.content.name == "Bob"` })
	if _, err := e.ex.Replay(e.ctx(), current); dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		strings.Contains(err.Error(), "(d1)") || !strings.Contains(err.Error(), `"welcome" (d2) is paused now`) {
		t.Fatalf("replay of a dispatcher whose filter is false beside a paused one: %v, want ESTATE naming the paused one alone", err)
	}
	// With every filter false, the replay completes, skipping all, as a
	// new event does: a dispatch that failed before it read its
	// configuration has no other way out.
	e.store.Update("d2", func(d *dispatcher.Dispatcher) { d.Paused, d.Filter = false, `event.content.name == "Bob"` })
	skippedAll, got := e.replay(current)
	if got != "m1:skipped t1:skipped m2:skipped" {
		t.Errorf("replay with every filter false: %s, want every action skipped", got)
	}
	current.RunID = skippedAll.RunID // a replay of that replay, named

	e.store.Update("d1", func(d *dispatcher.Dispatcher) { d.Filter = `event.content.name == "Ann"` })
	e.store.Update("d2", func(d *dispatcher.Dispatcher) { d.Paused, d.Filter = true, "" })
	r, got := e.replay(current)
	if got != "m1:succeeded t1:succeeded m2:skipped" {
		t.Errorf("replay once d1 is resumed: %s, want d1's actions run and m2 skipped", got)
	}
	// Listed by its skip reason, the run replayed says so, as a failed
	// one does: before, it was listed as if nothing had been done.
	for _, x := range e.list(dispatcher.ExecutionFilter{SkipReason: dispatcher.SkipPaused}, skipped.WorkflowID, skipped.WorkflowID) {
		if replayed := x.ReplayedAs != ""; replayed != (x.RunID == skipped.RunID) {
			t.Errorf("run %s listed replayed as %q; want the first run replayed, run %s not", x.RunID, x.ReplayedAs, r.RunID)
		}
	}
}

// A start of a bulk replay that its worker takes up once the bulk replay
// is paused (its worker crashed with it in flight, or none ran for a
// while) is held, and made once it is resumed. Before, it was made a
// minute after the pause.
func TestBulkReplayStartIsHeldWhilePaused(t *testing.T) {
	e := newExecutionsEnv(t)
	failed := e.dispatch("held-1", "signup", true)
	const bulk = "bulk-replay-0123456789abcdef0badcafe"
	pause := func(op string) {
		ref := dispatcher.NewID(time.Now())
		if _, err := e.audit.RecordAudit(e.ctx(), dispatcher.AuditEntry{ID: ref, WorkflowID: bulk, Ref: ref, Operation: op, Actor: "ann", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	start := func() (dispatcher.ReplayResult, error) {
		return dispatch.NewReplayActivities(e.ex).ReplayExecution(e.ctx(), workflows.ReplayExecutionInput{Request: dispatcher.ReplayRequest{
			WorkflowID: failed.WorkflowID, RunID: failed.RunID, Actor: "ann", BulkReplayID: bulk}})
	}
	pause(dispatcher.AuditPause)
	var appErr *temporal.ApplicationError
	// Benign: the SDK does not log it as an error, once per start held.
	if res, err := start(); !errors.As(err, &appErr) || appErr.Type() != workflows.FailureReplayHeld || !appErr.NonRetryable() ||
		appErr.Category() != temporal.ApplicationErrorCategoryBenign ||
		!strings.Contains(appErr.Message(), "bulk replay "+bulk+" is paused: it starts no replay until resumed") {
		t.Fatalf("a start while paused = %+v, %v; want it held", res, err)
	}
	pause(dispatcher.AuditCancel)
	if _, err := start(); !errors.As(err, &appErr) || !strings.HasSuffix(appErr.Message(), "bulk replay "+bulk+" is canceled: it starts no replay") {
		t.Fatalf("a start once canceled: %v; want it held, not until a resume", err)
	}
	pause(dispatcher.AuditResume)
	pause(dispatcher.AuditPause)
	if x, err := e.ex.Get(e.ctx(), failed.WorkflowID, ""); err != nil || x.RunID != failed.RunID {
		t.Fatalf("latest run %s, %v; want no replay started", x.RunID, err)
	}
	pause(dispatcher.AuditResume)
	if res, err := start(); err != nil || res.RunID == failed.RunID || res.BulkReplayID != bulk {
		t.Fatalf("a start once resumed = %+v, %v; want the replay started", res, err)
	}
}

// A bulk replay of completed dispatches with the current configuration
// matches those that skipped a dispatcher: the others have nothing to
// run again. Before, its dry run counted them, and it skipped each, "no
// action failed".
func TestBulkReplayOfCompletedMatchesTheSkipped(t *testing.T) {
	e := newExecutionsEnv(t)
	e.broken.Store(false)
	done := e.dispatch("all-ran", "hello", true)
	e.store.SetPaused("d2", true)
	skipped := e.dispatch("d2-paused", "signup", true)
	e.list(dispatcher.ExecutionFilter{Status: dispatcher.ExecutionCompleted}, skipped.WorkflowID, done.WorkflowID)
	e.store.Update("d2", func(d *dispatcher.Dispatcher) { d.Paused, d.Actions[0].TemplateID = false, "tpl" })

	r := dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{Status: dispatcher.ExecutionCompleted}, Config: dispatcher.ReplayConfigCurrent, Rate: 50, Actor: "ann"}
	named := r
	named.Actions = []string{"m2"}
	if dry, err := e.ex.DryRunBulkReplay(e.ctx(), named, 10); err != nil || dry.Matched != 2 {
		t.Fatalf("dry run naming m2 = %+v, %v; want both", dry, err)
	}
	if dry, err := e.ex.DryRunBulkReplay(e.ctx(), r, 10); err != nil || dry.Matched != 1 || len(dry.Sample) != 1 || dry.Sample[0].WorkflowID != skipped.WorkflowID {
		t.Fatalf("dry run = %+v, %v; want the dispatch that skipped d2 alone", dry, err)
	}
	st, err := e.ex.StartBulkReplay(e.ctx(), r)
	if err != nil {
		t.Fatal(err)
	}
	if p := e.bulkReplayEnded(st.ID).Progress; p.Matched != 1 || p.Replayed != 1 || p.Succeeded != 1 || p.Skipped != 0 {
		t.Fatalf("bulk replay = %+v, want the one that skipped d2 replayed", p)
	}
}

// replay replays r and waits for the replay's run to end; it returns the
// replay and its run's outcomes (outcomeSummary).
func (e *executionsEnv) replay(r dispatcher.ReplayRequest) (dispatcher.ReplayResult, string) {
	e.t.Helper()
	res, err := e.ex.Replay(e.ctx(), r)
	if err != nil {
		e.t.Fatal(err)
	}
	e.wait(r.WorkflowID, res.RunID)
	d, err := e.ex.Get(e.ctx(), r.WorkflowID, res.RunID)
	if err != nil {
		e.t.Fatal(err)
	}
	return res, outcomeSummary(d.Outcomes)
}

// A bulk replay leaves out of Matched the runs a replay has superseded
// already, as its dry run counts them apart, once it lists them: before,
// they stayed in until its last page, and a paused or canceled bulk
// replay said that many more remained.
func TestBulkReplayDoesNotMatchRunsReplayedAlready(t *testing.T) {
	e := newExecutionsEnv(t)
	ids, f := e.failed("sup-a", "sup-b", "sup-c")
	e.broken.Store(false)
	r, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: ids[0], Actions: []string{"t1"}, Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	e.wait(ids[0], r.RunID)
	req := dispatcher.BulkReplayRequest{Filter: f, Actions: []string{"t1"}, Rate: 0.01, Actor: "ann"}
	if dry, err := e.ex.DryRunBulkReplay(e.ctx(), req, 5); err != nil || dry.Matched != 3 || dry.Replayed != 1 {
		t.Fatalf("dry run = %+v, %v; want 3 matched, 1 of them replayed already", dry, err)
	}
	st := e.startSlowBulkReplay(req)
	// It replays one at once and waits 100 s for the next.
	testenv.Eventually(t, 20*time.Second, func() string {
		if st, err = e.ex.BulkReplay(e.ctx(), st.ID); err != nil {
			t.Fatal(err)
		}
		if p := st.Progress; st.Status != dispatcher.ExecutionRunning || p.Replayed != 1 || p.Matched != 2 || p.Remaining != 1 || p.Skipped != 0 {
			return fmt.Sprintf("bulk replay %s: %+v; want 2 matched, 1 replayed, 1 remaining", st.Status, p)
		}
		return ""
	})
}

package activities_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// functionSink is a real HTTP task function that records every request
// and answers with handler (200 when nil).
type functionSink struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recordedRequest
}

type recordedRequest struct {
	header http.Header
	body   []byte
}

func startFunctionSink(t *testing.T, handler http.HandlerFunc) *functionSink {
	t.Helper()
	s := &functionSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, recordedRequest{header: r.Header.Clone(), body: body})
		s.mu.Unlock()
		if handler != nil {
			handler(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *functionSink) last(t *testing.T) recordedRequest {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		t.Fatal("the function received no request")
	}
	return s.requests[len(s.requests)-1]
}

// A function saved with two headers whose names differ in case only,
// before the API refused them, sends the same one on every call. Before,
// Go's map order chose one by chance on each.
func TestCallFunctionHeadersDifferingInCase(t *testing.T) {
	sink := startFunctionSink(t, nil)
	store := newFakeStore()
	store.functions["f"] = dispatcher.Function{Name: "f", Kind: dispatcher.FunctionHTTP, URL: sink.URL + "/f", Timeout: 5 * time.Second,
		Headers: map[string]string{"x-a": "lower", "X-A": "upper"}}
	a := newActivities(t, activities.Options{Store: store, Outbound: loopback(t)})
	for i := range 20 {
		in := dispatcher.TaskInput{Event: testEvent(), DispatcherID: "d1", ActionID: "a1", FunctionName: "f", IdempotencyKey: fmt.Sprint("k", i)}
		var res dispatcher.TaskResult
		if err := execute(t, a, a.CallFunction, in, &res); err != nil {
			t.Fatalf("CallFunction: %v", err)
		}
		if got := sink.last(t).header.Values("X-A"); !slices.Equal(got, []string{"lower"}) {
			t.Fatalf("call %d: X-A %q, want the same on every call, that of x-a, last in byte order", i, got)
		}
	}
}

func TestCallFunction(t *testing.T) {
	sink := startFunctionSink(t, nil)
	store := newFakeStore()
	store.functions["erase-pii"] = dispatcher.Function{
		Name: "erase-pii", Kind: dispatcher.FunctionHTTP, URL: sink.URL + "/erase",
		Timeout: 5 * time.Second, Secret: "top-secret", Headers: map[string]string{"X-Team": "privacy"},
	}
	a := newActivities(t, activities.Options{Store: store, Outbound: loopback(t)})
	start := testNow.Add(-time.Second)
	in := dispatcher.TaskInput{
		Event:          testEvent(),
		DispatcherID:   "d1",
		ActionID:       "a1",
		FunctionName:   "erase-pii",
		Data:           json.RawMessage(`{"userId":"{{ .event.content.userId }}","mode":"hard","event":"admin value"}`),
		Tags:           []string{"gdpr"},
		StartTimestamp: &start,
		IdempotencyKey: "dispatch-ev-1/d1/a1",
		LocalAttempts:  1,
	}

	var res dispatcher.TaskResult
	if err := execute(t, a, a.CallFunction, in, &res); err != nil {
		t.Fatalf("CallFunction: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		t.Errorf("StatusCode = %d", res.StatusCode)
	}
	req := sink.last(t)
	for name, want := range map[string]string{
		"Content-Type":         "application/json",
		"Idempotency-Key":      in.IdempotencyKey,
		"X-Dispatcher-Attempt": "2", // the first regular attempt after one local one
		"X-Team":               "privacy",
	} {
		if got := req.header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	if got, want := req.header.Get(activities.HeaderSignature), activities.Sign("top-secret", testNow, req.body); got != want {
		t.Errorf("signature = %q, want %q", got, want)
	}
	if activities.Sign("other-secret", testNow, req.body) == req.header.Get(activities.HeaderSignature) {
		t.Error("the signature verifies with another secret")
	}

	var body struct {
		TaskID         string   `json:"taskId"`
		FunctionName   string   `json:"functionName"`
		Tags           []string `json:"tags"`
		StartTimestamp string   `json:"startTimestamp"`
		Data           struct {
			UserID json.Number `json:"userId"`
			Mode   string      `json:"mode"`
			Event  struct {
				ID      string          `json:"id"`
				Type    string          `json:"type"`
				Content json.RawMessage `json:"content"`
				Source  string          `json:"source"`
			} `json:"event"`
		} `json:"data"`
	}
	if err := json.Unmarshal(req.body, &body); err != nil {
		t.Fatalf("body %s: %v", req.body, err)
	}
	if body.TaskID != in.IdempotencyKey || body.FunctionName != "erase-pii" || strings.Join(body.Tags, ",") != "gdpr" ||
		body.StartTimestamp != start.Format(time.RFC3339Nano) {
		t.Errorf("body = %s", req.body)
	}
	// Every attempt of the action sends this body: an idempotency layer
	// that checks a reused key's request (the IETF draft answers 422,
	// Stripe idempotency_error) answers a retry with the first call's
	// answer. Before, the body's "attempt" counted up, and the retry of a
	// call whose answer was lost failed for good, though the call was done.
	first := req.body
	in.LocalAttempts = 0
	if err := execute(t, a, a.CallFunction, in, &res); err != nil {
		t.Fatalf("CallFunction: %v", err)
	}
	if again := sink.last(t); !bytes.Equal(again.body, first) || again.header.Get("X-Dispatcher-Attempt") != "1" {
		t.Errorf("another attempt sent attempt %s and the body\n%s\nwant attempt 1 and the same body as attempt 2's\n%s",
			again.header.Get("X-Dispatcher-Attempt"), again.body, first)
	}
	in.LocalAttempts = 1
	if body.Data.UserID != "42" || body.Data.Mode != "hard" {
		t.Errorf("data = %s", req.body)
	}
	if !strings.Contains(string(req.body), `"userId":42`) {
		t.Errorf("userId did not keep its JSON type: %s", req.body)
	}
	if e := body.Data.Event; e.ID != "ev-1" || e.Type != "user_deleted" || e.Source != "test" || string(e.Content) != string(testEvent().Content) {
		t.Errorf("data.event = %+v (the admin's \"event\" key must be overwritten)", e)
	}
	if !strings.Contains(string(req.body), `"data":{"userId":42,"mode":"hard","event":{`) {
		t.Errorf("data keys out of order: %s", req.body)
	}
	if strings.Contains(string(req.body), `"tenant"`) {
		t.Errorf("a call of the implicit tenant names a tenant: %s", req.body)
	}

	// A tenant's call names it: a receiver (or a worker of a task queue)
	// that several tenants' functions call tells them apart.
	in.IdempotencyKey = "acme:dispatch-ev-1/d1/a1"
	if err := execute(t, a, a.CallFunction, in, &res); err != nil {
		t.Fatalf("CallFunction: %v", err)
	}
	var tenanted struct{ Tenant string }
	if err := json.Unmarshal(sink.last(t).body, &tenanted); err != nil || tenanted.Tenant != "acme" {
		t.Errorf("the body's tenant = %q (%v), want acme", tenanted.Tenant, err)
	}
}

// TestCallFunctionTimeoutRaisedSince: Temporal gives every attempt of an
// activity the time the workflow gave the first, its function's timeout
// then and dispatcher.CallRoom. A call cut short of a timeout raised
// since says so, and what to do; before, support saw "did not answer
// within 13.5s" for a function whose timeout was 5 s, then 60 s.
func TestCallFunctionTimeoutRaisedSince(t *testing.T) {
	store := newFakeStore()
	a := newActivities(t, activities.Options{Store: store, Outbound: loopback(t)})
	sink := startFunctionSink(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	for _, tt := range []struct {
		timeout, given time.Duration
		want, not      string
	}{
		// The budget is what is left of the attempt's time when the call
		// begins: on a loaded machine, a millisecond or so less.
		{timeout: time.Minute, given: 3 * time.Second,
			want: `function "fn" did not answer within (2s|1\.9\d*s) \(the function's timeout is 1m0s now, raised after this action's attempts were given 3s each, the timeout then and 10s: replay the dispatch`},
		{timeout: time.Second, given: time.Second + dispatcher.CallRoom, want: `function "fn" did not answer within (1s|0\.9\d*s)`, not: "raised"},
	} {
		store.change(func(s *fakeStore) {
			s.functions = map[string]dispatcher.Function{"fn": {Name: "fn", Kind: dispatcher.FunctionHTTP, URL: sink.URL, Timeout: tt.timeout}}
		})
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.RegisterActivity(a)
		env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
			ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: tt.given, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
			return workflow.ExecuteActivity(ctx, "CallFunction", dispatcher.TaskInput{Event: testEvent(), FunctionName: "fn", IdempotencyKey: "k"}).Get(ctx, nil)
		}, workflow.RegisterOptions{Name: "call"})
		env.ExecuteWorkflow("call")
		err := env.GetWorkflowError()
		if err == nil || !regexp.MustCompile(tt.want).MatchString(err.Error()) || tt.not != "" && strings.Contains(err.Error(), tt.not) {
			t.Errorf("timeout %s, attempt given %s: %v\nwant it to say %q (and not %q)", tt.timeout, tt.given, err, tt.want, tt.not)
		}
	}
}

func TestCallFunctionFailures(t *testing.T) {
	store := newFakeStore()
	a := newActivities(t, activities.Options{Store: store, Outbound: loopback(t)})
	in := dispatcher.TaskInput{Event: testEvent(), FunctionName: "fn", IdempotencyKey: "k"}
	retryAfterDate := testNow.Add(90 * time.Second).Format(http.TimeFormat)

	tests := []struct {
		name       string
		handler    http.HandlerFunc
		fn         *dispatcher.Function // nil: an HTTP function at the sink
		data       string
		wantType   string
		retryable  bool
		wantMsg    string
		wantDelay  time.Duration
		wantStatus int    // in the failure details
		hidden     string // what the message must not show
	}{
		{name: "404 is permanent", handler: status(404, "", "no such user"),
			wantType: dispatcher.FailureHTTPPermanent, wantMsg: `answered 404 Not Found (no task function at this URL)`, wantStatus: 404},
		{name: "400 is permanent", handler: status(400, "", ""), wantType: dispatcher.FailureHTTPPermanent, wantStatus: 400},
		// The status line's text is the function's to write, and the
		// failure is shown to support staff: only the code's own name.
		{name: "the function's reason phrase is not shown", handler: rawStatus("422 Call +1-555-0100 to fix <img src=x>"),
			wantType: dispatcher.FailureHTTPPermanent, wantMsg: `function "fn" answered 422 Unprocessable Entity (`, wantStatus: 422, hidden: "555"},
		// A 3xx the client cannot follow answers every attempt alike:
		// before, it was retried for the whole retry policy.
		{name: "302 without Location is permanent", handler: status(302, "", ""), wantType: dispatcher.FailureHTTPPermanent,
			wantMsg: `answered 302 Found (a 3xx with nowhere to follow`, wantStatus: 302},
		{name: "304 is permanent", handler: status(304, "", ""), wantType: dispatcher.FailureHTTPPermanent, wantStatus: 304},
		{name: "429 is temporary", handler: status(429, "", ""), wantType: dispatcher.FailureHTTPTemporary, retryable: true, wantStatus: 429},
		{name: "408 is temporary", handler: status(408, "", ""), wantType: dispatcher.FailureHTTPTemporary, retryable: true, wantStatus: 408},
		// An idempotency layer's answer while a request with the same key
		// is in flight: the effect may well happen, so try again.
		{name: "409 is temporary", handler: status(409, "", "in progress"), wantType: dispatcher.FailureHTTPTemporary, retryable: true, wantStatus: 409},
		{name: "425 is temporary", handler: status(425, "", ""), wantType: dispatcher.FailureHTTPTemporary, retryable: true, wantStatus: 425},
		{name: "503 with Retry-After seconds", handler: status(503, "7", "busy"),
			wantType: dispatcher.FailureHTTPTemporary, retryable: true, wantMsg: "503 Service Unavailable (unavailable)", wantDelay: 7 * time.Second, wantStatus: 503},
		{name: "503 with Retry-After date", handler: status(503, retryAfterDate, ""),
			wantType: dispatcher.FailureHTTPTemporary, retryable: true, wantDelay: 90 * time.Second, wantStatus: 503},
		{name: "500 without Retry-After", handler: status(500, "", ""), wantType: dispatcher.FailureHTTPTemporary, retryable: true, wantStatus: 500},
		{name: "timeout is retryable", handler: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			fn:       &dispatcher.Function{Kind: dispatcher.FunctionHTTP, Timeout: 50 * time.Millisecond},
			wantType: dispatcher.FailureTimeout, retryable: true, wantMsg: "did not answer within 50ms"},
		{name: "missing function", fn: &dispatcher.Function{Name: "other"}, wantType: dispatcher.FailureNotFound, wantMsg: `function "fn" does not exist`},
		{name: "temporal function is not callable over HTTP", fn: &dispatcher.Function{Kind: dispatcher.FunctionTemporal},
			wantType: dispatcher.FailureNotFound},
		{name: "data template error", data: `{"x":"{{ .content.nope }}"}`, wantType: dispatcher.FailureTemplate,
			wantMsg: `data.x: line 1: at <.content.nope>: map has no entry for key "nope"`},
		{name: "unreachable is temporary", fn: &dispatcher.Function{Kind: dispatcher.FunctionHTTP, URL: "http://127.0.0.1:1/"},
			wantType: dispatcher.FailureHTTPTemporary, retryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := startFunctionSink(t, tt.handler)
			f := dispatcher.Function{Name: "fn", Kind: dispatcher.FunctionHTTP, URL: sink.URL}
			if tt.fn != nil {
				f = *tt.fn
				if f.Name == "" {
					f.Name = "fn"
				}
				if f.URL == "" {
					f.URL = sink.URL
				}
			}
			store.change(func(s *fakeStore) { s.functions = map[string]dispatcher.Function{f.Name: f} })
			in := in
			if tt.data != "" {
				in.Data = json.RawMessage(tt.data)
			}
			var res dispatcher.TaskResult
			appErr := wantFailure(t, execute(t, a, a.CallFunction, in, &res), tt.wantType, tt.retryable)
			if !strings.Contains(appErr.Error(), tt.wantMsg) || tt.hidden != "" && strings.Contains(appErr.Error(), tt.hidden) {
				t.Errorf("error = %q, want it to contain %q (and not %q)", appErr.Error(), tt.wantMsg, tt.hidden)
			}
			if appErr.NextRetryDelay() != tt.wantDelay {
				t.Errorf("NextRetryDelay = %s, want %s", appErr.NextRetryDelay(), tt.wantDelay)
			}
			var details dispatcher.FailureDetails
			if err := appErr.Details(&details); err != nil || details.Attempt != 1 || details.StatusCode != tt.wantStatus {
				t.Errorf("details = %+v (%v), want attempt 1 and status %d", details, err, tt.wantStatus)
			}
		})
	}
}

// rawStatus answers with the status line "HTTP/1.1 " + line, as written.
func rawStatus(line string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 " + line + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		_ = buf.Flush()
	}
}

func status(code int, retryAfter, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// A call whose connection the function closes once it has the request
// (it may have run it) is one call, failed: the attempt ends, and the next
// is the dispatcher's to make, counted and backed off. Before, Go's HTTP
// client made it again at once on a reused connection, as it does for a
// request with an Idempotency-Key, unseen and uncounted. Headers a
// function was saved with before such names were refused change nothing:
// its own Idempotency-Key is not sent, an X-Idempotency-Key is.
func TestCallCutOffIsNotMadeAgain(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		key := r.Header.Get("Idempotency-Key")
		if v := r.Header.Values("Idempotency-Key"); len(v) != 1 || r.Header.Get("X-Idempotency-Key") != "theirs" {
			t.Errorf("Idempotency-Key %q, X-Idempotency-Key %q; want the call's own alone, and theirs", v, r.Header.Get("X-Idempotency-Key"))
		}
		mu.Lock()
		calls[key]++
		mu.Unlock()
		if strings.HasSuffix(key, "/cut") {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close() // done, but the caller does not hear it
			}
		}
	}))
	t.Cleanup(srv.Close)
	store := newFakeStore()
	store.functions["f"] = dispatcher.Function{Name: "f", Kind: dispatcher.FunctionHTTP, URL: srv.URL, Timeout: 5 * time.Second,
		Headers: map[string]string{"Idempotency-Key": "stale", "X-Idempotency-Key": "theirs"}}
	a := newActivities(t, activities.Options{Store: store, Outbound: loopback(t)})
	call := func(key string) error {
		in := dispatcher.TaskInput{Event: testEvent(), DispatcherID: "d1", ActionID: "a1", FunctionName: "f", IdempotencyKey: key}
		var res dispatcher.TaskResult
		return execute(t, a, a.CallFunction, in, &res)
	}
	// A first call leaves a connection to reuse: only then does the
	// client make a call again.
	if err := call("dispatch-ev-1/d1/a1/warm"); err != nil {
		t.Fatal(err)
	}
	wantFailure(t, call("dispatch-ev-1/d1/a1/cut"), dispatcher.FailureHTTPTemporary, true)
	mu.Lock()
	defer mu.Unlock()
	if n := calls["dispatch-ev-1/d1/a1/cut"]; n != 1 {
		t.Errorf("the cut-off call was made %d times, want once", n)
	}
}

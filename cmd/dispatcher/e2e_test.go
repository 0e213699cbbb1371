package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

const e2eSecret = "e2e-secret-e2e-secret-e2e-secret-e2e"

// e2eMetricsToken is the processes' DISPATCHER_METRICS_TOKEN, which
// getMetrics sends.
const e2eMetricsToken = "e2e-metrics-token-0123456789"

// system is the real dispatcher binary running `serve` against a real
// Temporal dev server, a PostgreSQL schema and an SMTP sink on loopback.
type system struct {
	t        *testing.T
	url      string
	env      []string
	bin      string
	token    string
	temporal client.Client
	smtp     *testenv.SMTPSink
	logs     *testenv.Buffer
	worker   *proc // the worker process, when started apart from the API
}

func startSystem(t *testing.T, opts ...systemOption) *system {
	t.Helper()
	var o systemOptions
	for _, opt := range opts {
		opt(&o)
	}
	temporalAddr, tc := "", client.Client(nil)
	if o.temporal != nil {
		temporalAddr, tc = o.temporal(t)
	} else {
		srv := testenv.Temporal(t)
		temporalAddr, tc = srv.FrontendHostPort(), srv.Client()
	}
	s := &system{t: t, bin: testenv.Binary(t), temporal: tc, smtp: testenv.SMTP(t), logs: &testenv.Buffer{}}
	s.env = append(os.Environ(),
		"DATABASE_URL="+testenv.Postgres(t),
		"DISPATCHER_JWT_SECRET="+e2eSecret,
		"DISPATCHER_METRICS_TOKEN="+e2eMetricsToken,
		"TEMPORAL_ADDRESS="+temporalAddr,
		"DISPATCHER_HTTP_ADDR=127.0.0.1:0",
		"DISPATCHER_SMTP_URL=smtp://"+s.smtp.Addr,
		"DISPATCHER_MAIL_FROM=dispatcher@example.com",
		"DISPATCHER_LOG_LEVEL=warn",
		"DISPATCHER_OUTBOUND_ALLOW=127.0.0.0/8", // the functions of the tests run on loopback
	)
	s.env = append(s.env, o.env...)
	if o.split {
		// The worker first: it registers the search attributes.
		s.worker = s.startProcess("worker")
		s.url = s.startProcess("api").url
	} else {
		s.url = s.startProcess("serve").url
	}
	// Every change the test makes must be in the audit trail.
	s.recordChanges()
	s.waitReady()
	s.token = strings.TrimSpace(s.run("token", "--admin"))
	return s
}

// waitReady waits until the API answers /readyz with 200: until then an
// event may be refused because Temporal does not know the search
// attributes yet.
func (s *system) waitReady() {
	s.t.Helper()
	var ready string // the last answer of /readyz, for the failure message
	s.poll("the API to be ready", func() bool {
		res, err := http.Get(s.url + "/readyz")
		if err != nil {
			ready = err.Error()
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		ready = string(b)
		return res.StatusCode == 200
	}, &ready)
}

// run runs a dispatcher subcommand with the system's environment.
func (s *system) run(args ...string) string {
	s.t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("dispatcher %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// poll waits until cond holds, failing the test after 60 s; detail, when
// given, is shown with the failure.
func (s *system) poll(what string, cond func() bool, detail ...*string) {
	s.t.Helper()
	s.pollFor(60*time.Second, what, cond, detail...)
}

// call sends a request with the admin token and decodes the JSON answer.
func (s *system) call(method, path string, body any, want int) map[string]any {
	s.t.Helper()
	code, raw := s.request(method, path, body)
	if code != want {
		s.t.Fatalf("%s %s = %d %s, want %d", method, path, code, raw, want)
	}
	var out map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out); err != nil {
			s.t.Fatal(err)
		}
	}
	return out
}

// request sends body (JSON, when not nil) with the admin token and
// returns the answer's status and body.
func (s *system) request(method, path string, body any) (int, []byte) {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, raw
}

// TestEndToEndAdminAPI runs the reference's admin flow against the real
// binary over HTTP.
func TestEndToEndAdminAPI(t *testing.T) {
	s := startSystem(t)
	// Whatever the latest migration is, serve applied it.
	out := s.run("migrate", "--status")
	if m := regexp.MustCompile(`schema version (\d+) \(latest (\d+)\)`).FindStringSubmatch(out); m == nil || m[1] != m[2] {
		t.Fatalf("migrate --status: %s", out)
	}
	res, err := http.Get(s.url + "/dispatchers/v1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("no token: %d, want 401", res.StatusCode)
	}

	tmpl := s.call("POST", "/templates/v1", map[string]any{"name": "bye", "subject": "Bye", "text": "Bye"}, 200)["id"].(string)
	s.call("POST", "/functions/v1", map[string]any{"name": "erase", "url": "http://127.0.0.1:9/"}, 200)
	d := s.call("POST", "/dispatchers/v1", map[string]any{
		"name": "gdpr", "eventType": "user_deleted", "tags": []string{"EXH_CLI_MANAGED"},
		"actions": []any{map[string]any{"type": "mail", "recipients": map[string]any{"to": []string{"a@example.com"}}, "templateId": tmpl}},
	}, 200)
	id := d["id"].(string)
	page := s.call("GET", "/dispatchers/v1?eq(tags,EXH_CLI_MANAGED)&limit(50)", nil, 200)
	if page["page"].(map[string]any)["total"] != 1.0 {
		t.Fatalf("list by tag: %v", page)
	}
	found := s.call("GET", "/dispatchers/v1?eq(id,"+id+")", nil, 200)["data"].([]any)
	if len(found) != 1 {
		t.Fatalf("find by id: %v", found)
	}
	s.call("PUT", "/dispatchers/v1/"+id, map[string]any{"description": "erase PII"}, 200)
	a := s.call("POST", "/dispatchers/v1/"+id+"/actions", map[string]any{"type": "task", "functionName": "erase", "data": map[string]any{"k": 1}}, 200)
	s.call("PUT", "/dispatchers/v1/"+id+"/actions/"+a["id"].(string), map[string]any{"data": map[string]any{"k": 2}}, 200)
	s.call("DELETE", "/dispatchers/v1/"+id+"/actions/"+a["id"].(string), nil, 200)
	got := s.call("GET", "/dispatchers/v1/"+id, nil, 200)
	if got["description"] != "erase PII" || len(got["actions"].([]any)) != 1 {
		t.Fatalf("after updates: %v", got)
	}
	s.call("DELETE", "/dispatchers/v1/"+id, nil, 200)
	s.call("GET", "/dispatchers/v1/"+id, nil, 404)
}

// functionSink is a real HTTP task function that records its calls and
// answers with the statuses it is given, in order, then 200.
// With a secret, it refuses (401) a call not signed with it, as a
// receiver does: on a shared machine a port that another test's server
// freed may be given to this one while that test's calls still come.
type functionSink struct {
	secret   string
	mu       sync.Mutex
	calls    []map[string]any
	headers  []http.Header
	times    []time.Time
	statuses []int
	foreign  []string // the calls refused, by their Idempotency-Key
}

func (f *functionSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.secret != "" && !signed(f.secret, r.Header.Get(activities.HeaderSignature), raw) {
		f.foreign = append(f.foreign, r.Header.Get(activities.HeaderIdempotencyKey))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	f.calls = append(f.calls, body)
	f.headers = append(f.headers, r.Header.Clone())
	f.times = append(f.times, time.Now())
	status := 200
	if len(f.statuses) > 0 {
		status, f.statuses = f.statuses[0], f.statuses[1:]
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"status":%d}`, status)
}

// signed reports whether sig, an X-Dispatcher-Signature, signs body
// with secret.
func signed(secret, sig string, body []byte) bool {
	ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
	unix, err := strconv.ParseInt(ts, 10, 64)
	return err == nil && hmac.Equal([]byte(sig), []byte(activities.Sign(secret, time.Unix(unix, 0), body)))
}

// history lists the events of workflow id's latest run, for a failure
// message.
func (s *system) history(id string) string {
	var b strings.Builder
	it := s.temporal.GetWorkflowHistory(s.t.Context(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return b.String() + err.Error()
		}
		fmt.Fprintf(&b, "  %d %s %s\n", e.GetEventId(), e.GetEventTime().AsTime().Format("15:04:05.000"), e.GetEventType())
	}
	return b.String()
}

// String lists the calls received, each by its key, attempt and time.
func (f *functionSink) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for i := range f.calls {
		fmt.Fprintf(&b, "  %s key=%s attempt=%v\n", f.times[i].Format("15:04:05.000"), f.headers[i].Get("Idempotency-Key"), f.headers[i].Get("X-Dispatcher-Attempt"))
	}
	for _, key := range f.foreign {
		fmt.Fprintf(&b, "  refused, not signed with its secret: key=%s\n", key)
	}
	return b.String()
}

func (f *functionSink) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// metric sums the samples of the metric family name whose labels include
// labels; for a histogram, its observation count.
func (s *system) metric(name string, labels map[string]string) float64 {
	families := s.families()
	if families == nil {
		return -1
	}
	var sum float64
	for _, m := range families[name].GetMetric() {
		if matches(m.GetLabel(), labels) {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// families reads /metrics; nil when it does not answer.
func (s *system) families() map[string]*dto.MetricFamily {
	res, err := getMetrics(s.url)
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		s.t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

func matches(pairs []*dto.LabelPair, want map[string]string) bool {
	n := 0
	for _, p := range pairs {
		if v, ok := want[p.GetName()]; ok && v == p.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// result waits for a dispatch to close and returns its outcomes and
// whether it failed.
func (s *system) result(workflowID, runID string) (workflows.DispatchResult, bool) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var res workflows.DispatchResult
	err := s.temporal.GetWorkflow(ctx, workflowID, runID).Get(ctx, &res)
	if err == nil {
		return res, false
	}
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != dispatcher.FailureDispatch {
		s.t.Fatalf("dispatch %s: %v\nlogs:\n%s", workflowID, err, s.logs)
	}
	if err := app.Details(&res); err != nil {
		s.t.Fatalf("failure details: %v", err)
	}
	return res, true
}

// TestEndToEndDispatch sends events through the real binary and checks
// what reaches a real SMTP server and a real HTTP function.
func TestEndToEndDispatch(t *testing.T) {
	s := startSystem(t)
	good := &functionSink{secret: "fn-secret-erase"}
	flaky := &functionSink{secret: "fn-secret-flaky", statuses: []int{503, 503}}
	broken := &functionSink{secret: "fn-secret-broken", statuses: []int{404, 404, 404}}
	for name, f := range map[string]*functionSink{"erase": good, "flaky": flaky, "broken": broken} {
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		s.call("POST", "/functions/v1", map[string]any{"name": name, "url": srv.URL + "/" + name, "secret": f.secret}, 200)
	}
	tmpl := s.call("POST", "/templates/v1", map[string]any{
		"name": "goodbye", "subject": "Goodbye {{ .event.content.name }}",
		"text": "Your account {{ .content.userId }} is gone.", "html": "<p>Bye {{ .content.name }}</p>",
	}, 200)["id"].(string)
	fast := map[string]any{"initialIntervalMs": 100, "backoffCoefficient": 1, "maximumAttempts": 5}
	s.call("POST", "/dispatchers/v1", map[string]any{
		"name": "gdpr", "eventType": "user_deleted",
		"actions": []any{
			map[string]any{"type": "mail", "name": "mail", "templateId": tmpl, "recipients": map[string]any{"to": []string{"{{ .event.content.email }}"}, "bcc": []string{"audit@example.com"}}},
			map[string]any{"type": "task", "name": "erase", "functionName": "erase", "data": map[string]any{"userId": "{{ .event.content.userId }}", "event": "overwritten", "fixed": true}, "tags": []string{"pii"}},
			map[string]any{"type": "task", "name": "flaky", "functionName": "flaky", "retryPolicy": fast},
		},
	}, 200)

	ev := map[string]any{"id": "evt-1", "type": "user_deleted", "content": map[string]any{"name": "Ann <b>", "userId": 42, "email": "ann@example.com"}}
	acc := s.call("POST", "/events/v1", ev, 202)
	if acc["duplicate"] != false || acc["workflowId"] != "dispatch-evt-1" {
		t.Fatalf("accepted = %v", acc)
	}
	res, failed := s.result(acc["workflowId"].(string), acc["runId"].(string))
	if failed || len(res.Outcomes) != 3 {
		t.Fatalf("dispatch failed=%v outcomes=%+v\nlogs:\n%s", failed, res.Outcomes, s.logs)
	}
	for _, o := range res.Outcomes {
		if o.Status != dispatcher.OutcomeSucceeded {
			t.Fatalf("outcome %+v", o)
		}
		if o.ActionName == "flaky" && o.Attempts != 3 {
			t.Fatalf("flaky function: %d attempts, want 3 (two 503s, then 200)", o.Attempts)
		}
	}

	mails := s.smtp.Mails()
	if len(mails) != 1 || len(mails[0].To) != 2 || mails[0].To[0] != "ann@example.com" {
		t.Fatalf("mails = %+v", mails)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(mails[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if subject := msg.Header.Get("Subject"); subject != "Goodbye Ann <b>" {
		t.Errorf("subject = %q", subject)
	}
	if id := strings.TrimSpace(msg.Header.Get("Message-Id")); !strings.HasPrefix(id, "<dispatch-evt-1.") || !strings.HasSuffix(id, "@dispatcher>") {
		t.Errorf("Message-Id = %q, want one derived from the dispatch", id)
	}
	body, _ := io.ReadAll(msg.Body)
	for _, want := range []string{"Your account 42 is gone.", "<p>Bye Ann &lt;b&gt;</p>"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("mail body lacks %q:\n%s", want, body)
		}
	}

	if good.count() != 1 {
		t.Fatalf("erase called %d times:\n%s", good.count(), good)
	}
	call := good.calls[0]
	data := call["data"].(map[string]any)
	event := data["event"].(map[string]any)
	if data["userId"] != 42.0 || data["fixed"] != true || event["id"] != "evt-1" || event["content"].(map[string]any)["name"] != "Ann <b>" {
		t.Fatalf("function received %v", call)
	}
	if call["functionName"] != "erase" || fmt.Sprint(call["tags"]) != "[pii]" {
		t.Fatalf("function received %v", call)
	}
	if key := good.headers[0].Get("Idempotency-Key"); key == "" {
		t.Fatal("no Idempotency-Key")
	}
	if keys := flaky.headers; keys[0].Get("Idempotency-Key") != keys[2].Get("Idempotency-Key") {
		t.Fatalf("Idempotency-Key changed between attempts: %q vs %q", keys[0].Get("Idempotency-Key"), keys[2].Get("Idempotency-Key"))
	}
	if sig := good.headers[0].Get("X-Dispatcher-Signature"); !strings.Contains(sig, "v1=") {
		t.Fatalf("signature header = %q", sig)
	}

	// Prometheus sees the dispatch, its actions and the SDK's own metrics.
	for _, want := range []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"dispatcher_dispatches_total", map[string]string{"status": "completed"}, 1},
		{"dispatcher_action_outcomes_total", map[string]string{"status": "succeeded", "type": "task"}, 2},
		{"dispatcher_action_duration_seconds", map[string]string{"type": "mail"}, 1},
		{"dispatcher_events_received_total", map[string]string{"source": "http", "duplicate": "false", "envelope": "extrahorizon", "type": "user_deleted"}, 1},
		{"dispatcher_ready", map[string]string{"check": "database"}, 1},
		{"temporal_workflow_completed_total", map[string]string{"workflow_type": "Dispatch"}, 1},
	} {
		s.poll(fmt.Sprintf("metric %s%v = %v", want.name, want.labels, want.value), func() bool {
			return s.metric(want.name, want.labels) == want.value
		})
	}
	// The SDK's handler has no help text: the dispatcher's own metrics get
	// theirs (those that counted something: the three above, at least).
	families := s.families()
	for name, help := range workflows.MetricHelp {
		if f, ok := families[name]; ok && f.GetHelp() != help {
			t.Errorf("%s help = %q, want %q", name, f.GetHelp(), help)
		}
	}

	// The same event again dispatches nothing.
	again := s.call("POST", "/events/v1", ev, 202)
	if again["duplicate"] != true || again["runId"] != acc["runId"] {
		t.Fatalf("second delivery = %v, want duplicate of %v", again, acc["runId"])
	}
	if good.count() != 1 || len(s.smtp.Mails()) != 1 {
		t.Fatalf("duplicate event ran actions again: %d mails, calls:\n%s\nhistory:\n%s\nlogs:\n%s", len(s.smtp.Mails()), good, s.history("dispatch-evt-1"), s.logs)
	}
}

// TestEndToEndFailureAndSchedule: a permanently failing function fails the
// dispatch while the other actions succeed; a future startTimestamp waits.
func TestEndToEndFailureAndSchedule(t *testing.T) {
	s := startSystem(t)
	ok, broken := &functionSink{}, &functionSink{statuses: []int{404, 404, 404}}
	for name, h := range map[string]http.Handler{"ok": ok, "broken": broken} {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		s.call("POST", "/functions/v1", map[string]any{"name": name, "url": srv.URL}, 200)
	}
	start := time.Now().Add(2 * time.Second).UTC()
	s.call("POST", "/dispatchers/v1", map[string]any{
		"name": "mixed", "eventType": "order_paid",
		"actions": []any{
			map[string]any{"type": "task", "name": "broken", "functionName": "broken"},
			map[string]any{"type": "task", "name": "later", "functionName": "ok", "startTimestamp": start.Format(time.RFC3339Nano)},
		},
	}, 200)
	acc := s.call("POST", "/events/v1", map[string]any{"id": "order-7", "type": "order_paid", "content": map[string]any{}}, 202)
	res, failed := s.result(acc["workflowId"].(string), acc["runId"].(string))
	if !failed {
		t.Fatalf("dispatch with a failing action completed: %+v", res)
	}
	byName := map[string]dispatcher.ActionOutcome{}
	for _, o := range res.Outcomes {
		byName[o.ActionName] = o
	}
	if o := byName["broken"]; o.Status != dispatcher.OutcomeFailed || o.Attempts != 1 || o.ErrorClass != dispatcher.FailureHTTPPermanent || !strings.Contains(o.Error, "404") {
		t.Fatalf("broken outcome %+v: want failed after 1 attempt (404 is permanent)", o)
	}
	if o := byName["later"]; o.Status != dispatcher.OutcomeSucceeded || o.StartedAt.Before(start) {
		t.Fatalf("scheduled outcome %+v: want succeeded, started after %v", o, start)
	}
	if ok.count() != 1 || broken.count() != 1 {
		t.Fatalf("calls: ok %d, broken %d; want 1 each", ok.count(), broken.count())
	}
}

// TestEndToEndOutcomesBeforeTheDispatchCloses: an action's outcome is
// counted as it ends, while another action of the dispatch waits for its
// startTimestamp, and found by its error class then, and a dispatch
// canceled is counted as canceled, not failed. Before, the outcomes were counted when the dispatch closed
// (months later, for a reminder), and a cancel as a failure, which set off
// the failed-dispatch alert.
func TestEndToEndOutcomesBeforeTheDispatchCloses(t *testing.T) {
	s := startSystem(t)
	broken := &functionSink{statuses: []int{404}}
	srv := httptest.NewServer(broken)
	t.Cleanup(srv.Close)
	s.call("POST", "/functions/v1", map[string]any{"name": "broken", "url": srv.URL}, 200)
	s.call("POST", "/dispatchers/v1", map[string]any{
		"name": "reminder", "eventType": "trial_started",
		"actions": []any{
			map[string]any{"type": "task", "name": "now", "functionName": "broken"},
			map[string]any{"type": "task", "name": "later", "functionName": "broken", "startTimestamp": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)},
		},
	}, 200)
	acc := s.call("POST", "/events/v1", map[string]any{"id": "trial-1", "type": "trial_started", "content": map[string]any{}}, 202)
	failed := map[string]string{"status": "failed", "type": "task"}
	s.poll("the failed action counted while the other waits", func() bool { return s.metric("dispatcher_action_outcomes_total", failed) == 1 })
	if x := s.call("GET", "/executions/v1/"+acc["workflowId"].(string), nil, 200); x["status"] != "scheduled" {
		t.Fatalf("the dispatch is %v, want scheduled", x["status"])
	}
	// Found by its error class, its failure counted, while it waits
	// (dispatchV10). Before, only its own detail showed the failure.
	s.poll("the scheduled dispatch found by its failure's class", func() bool {
		page := s.call("GET", "/executions/v1?errorClass=HTTPPermanent", nil, 200)
		data, _ := page["data"].([]any)
		return len(data) == 1 && data[0].(map[string]any)["failedActionCount"] == 1.0 && data[0].(map[string]any)["status"] == "scheduled"
	})
	s.call("POST", "/executions/v1/"+acc["workflowId"].(string)+"/cancel", nil, 202)
	s.poll("the dispatch counted as canceled", func() bool {
		return s.metric("dispatcher_dispatches_total", map[string]string{"status": "canceled"}) == 1
	})
	if n := s.metric("dispatcher_dispatches_total", map[string]string{"status": "failed"}); n != 0 {
		t.Errorf("dispatches counted failed: %v, want 0", n)
	}
	if n := s.metric("dispatcher_action_outcomes_total", map[string]string{"status": "canceled", "type": "task"}); n != 1 {
		t.Errorf("canceled actions counted: %v, want 1, the one that waited", n)
	}
}

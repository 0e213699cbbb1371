package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
	"github.com/prometheus/client_golang/prometheus"
)

const harnessSecret = "test-secret-test-secret-test-secret!"

// harness is an API server on a real store with a fake Starter.
type harness struct {
	t       *testing.T
	h       http.Handler
	store   *models.Store
	starter *fakeStarter
	token   string // every permission
}

func newHarness(t *testing.T, url string) *harness {
	t.Helper()
	return harnessWith(t, url, harnessHosts)
}

// harnessWith is newHarness with hosts resolving functions' hosts.
func harnessWith(t *testing.T, url string, hosts dispatcher.Resolver) *harness {
	t.Helper()
	db, err := models.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	// A clock that moves a millisecond per reading: every change gets a
	// later timestamp, without sleeping.
	var ticks atomic.Int64
	store := models.NewStore(db, func() time.Time { return time.Now().Add(time.Duration(ticks.Add(1)) * time.Millisecond) })
	starter := &fakeStarter{}
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Secret: []byte(harnessSecret)}, MaxBodyBytes: 4096, MaxEventBytes: 2048,
		Outbound: harnessOutbound(t), MetricsToken: harnessMetricsToken},
		Deps{Store: store, Starter: starter, Registry: prometheus.NewRegistry(), Checks: map[string]Check{"database": store.Ping},
			Resolver: hosts})
	if err != nil {
		t.Fatal(err)
	}
	hs := &harness{t: t, h: h, store: store, starter: starter}
	hs.token = hs.tokenWith(Permissions()...)
	return hs
}

func (hs *harness) tokenWith(perms ...string) string {
	hs.t.Helper()
	tok, err := SignToken([]byte(harnessSecret), TokenClaims{Subject: "test", Permissions: perms, TTL: time.Hour}, time.Now())
	if err != nil {
		hs.t.Fatal(err)
	}
	return tok
}

// do sends a request with the all-permissions token and returns the status
// and the decoded JSON body.
func (hs *harness) do(method, path, body string) (int, map[string]any) {
	hs.t.Helper()
	return hs.doAs(hs.token, method, path, body)
}

func (hs *harness) doAs(token, method, path, body string) (int, map[string]any) {
	hs.t.Helper()
	rec := hs.send(token, method, path, body)
	return rec.Code, hs.decode(rec, method, path)
}

// send sends a request with token, and headers as name, value pairs.
func (hs *harness) send(token, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	hs.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host, req.RemoteAddr = "localhost", "127.0.0.1:40000"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	return rec
}

// decode returns the JSON object rec answered, or nil for another body.
func (hs *harness) decode(rec *httptest.ResponseRecorder, method, path string) map[string]any {
	hs.t.Helper()
	var out map[string]any
	if rec.Body.Len() > 0 && rec.Body.Bytes()[0] == '{' {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			hs.t.Fatalf("%s %s: body is not JSON: %v\n%s", method, path, err, rec.Body)
		}
	}
	return out
}

// must sends a request that must answer want, and returns the body.
func (hs *harness) must(want int, method, path, body string) map[string]any {
	hs.t.Helper()
	code, out := hs.do(method, path, body)
	if code != want {
		hs.t.Fatalf("%s %s = %d %v, want %d", method, path, code, out, want)
	}
	return out
}

// seed creates a template and a function that actions can refer to and
// returns the template's id.
func (hs *harness) seed() string {
	hs.t.Helper()
	tmpl := hs.must(200, "POST", "/templates/v1", `{"name":"welcome","subject":"Hi {{ .event.content.name }}","text":"Hello {{ .content.name }}"}`)
	hs.must(200, "POST", "/functions/v1", `{"name":"erase","url":"http://127.0.0.1:9/erase"}`)
	return tmpl["id"].(string)
}

type fakeStarter struct {
	events []dispatcher.Event
	err    error
	refuse map[string]error // by event id
}

func (f *fakeStarter) Start(_ context.Context, ev dispatcher.Event) (dispatcher.StartResult, error) {
	if err := cmp.Or(f.err, f.refuse[ev.ID]); err != nil {
		return dispatcher.StartResult{}, err
	}
	dup := false
	for _, seen := range f.events {
		dup = dup || seen.ID == ev.ID
	}
	f.events = append(f.events, ev)
	return dispatcher.StartResult{WorkflowID: dispatcher.WorkflowID(ev.ID), RunID: "run-" + ev.ID, Duplicate: dup}, nil
}

func wantError(t *testing.T, code int, body map[string]any, status, wireCode int, mention string) {
	t.Helper()
	if code != status || body["code"] != float64(wireCode) {
		t.Fatalf("got %d %v, want %d with code %d", code, body, status, wireCode)
	}
	if name, _ := body["name"].(string); !strings.HasSuffix(name, "_EXCEPTION") {
		t.Fatalf("error name %q", name)
	}
	if msg, _ := body["message"].(string); !strings.Contains(msg, mention) {
		t.Fatalf("message %q does not mention %q", msg, mention)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	for _, path := range []string{"/health", "/healthz", "/dispatchers/v1/health"} {
		code, _ := hs.doAs("", "GET", path, "")
		if code != 200 {
			t.Errorf("GET %s = %d without a token, want 200", path, code)
		}
	}
	code, body := hs.doAs("", "GET", "/readyz", "")
	if code != 200 || body["checks"].(map[string]any)["database"] != "ok" {
		t.Fatalf("readyz = %d %v", code, body)
	}
}

const harnessMetricsToken = "harness-metrics-token-0123"

func TestMetricsEndpoint(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	hs.must(200, "GET", "/dispatchers/v1", "")
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+harnessMetricsToken)
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `dispatcher_http_requests_total{code="200",method="GET",route="/dispatchers/v1"}`) {
		t.Fatalf("metrics = %d\n%s", rec.Code, rec.Body)
	}
	// Its latency has buckets up to the slow routes' timeout (100 s):
	// before, the top one was 10 s, and the p99 of an intake that waited
	// for Temporal until its timeout (30 s) showed as 10 s.
	if !strings.Contains(rec.Body.String(), `dispatcher_http_request_duration_seconds_bucket{method="GET",route="/dispatchers/v1",le="120"}`) {
		t.Errorf("no latency bucket of 120 s:\n%s", rec.Body)
	}
}

// /metrics names tenants, event types and functions: with
// DISPATCHER_METRICS_TOKEN it answers only that bearer token; without one
// it answers no one, unless authentication is disabled, and then only
// this machine's loopback; on the API and on a worker alike. Before, it
// answered anyone who reached the port.
func TestMetricsNeedTheToken(t *testing.T) {
	const token = "metrics-token-0123456789"
	handlers := func(token string, authDisabled bool) map[string]http.Handler {
		a, err := NewServer(t.Context(), Config{Auth: AuthConfig{Secret: []byte(harnessSecret), Disabled: authDisabled},
			MaxBodyBytes: 4096, MaxEventBytes: 2048, MetricsToken: token}, Deps{Registry: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		return map[string]http.Handler{"api": a, "worker": NewOpsHandler(nil, prometheus.NewRegistry(), token, authDisabled, BuildInfo{}, nil)}
	}
	for _, tt := range []struct {
		token                string
		authDisabled         bool
		host, remote, header string
		want                 int
	}{
		// No token: no one, not even loopback, which a reverse proxy on
		// this machine speaks from with whatever Host it is told.
		{"", false, "localhost:8080", "127.0.0.1:40000", "", 403},
		{"", false, "dispatcher.example.com", "10.0.0.7:40000", "", 403},
		// Authentication disabled (a local run): this machine's loopback.
		{"", true, "localhost:8080", "127.0.0.1:40000", "", 200},
		{"", true, "[::1]:8080", "[::1]:40000", "", 200},
		{"", true, "dispatcher.example.com", "127.0.0.1:40000", "", 403},
		{"", true, "127.0.0.1:8080", "10.0.0.7:40000", "", 403},
		// The token, from anywhere; nothing else.
		{token, false, "dispatcher.example.com", "10.0.0.7:40000", "Bearer " + token, 200},
		{token, true, "localhost:8080", "127.0.0.1:40000", "Bearer " + token, 200},
		{token, false, "localhost:8080", "127.0.0.1:40000", "", 401},
		{token, true, "localhost:8080", "127.0.0.1:40000", "", 401},
		{token, false, "dispatcher.example.com", "10.0.0.7:40000", "Bearer " + token[:len(token)-1], 401},
		{token, false, "dispatcher.example.com", "10.0.0.7:40000", token, 401},
	} {
		for name, h := range handlers(tt.token, tt.authDisabled) {
			req := httptest.NewRequest("GET", "/metrics", nil)
			req.Host, req.RemoteAddr = tt.host, tt.remote
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("%s, token %t, auth disabled %t, Host %s from %s, Authorization %q: %d %s, want %d",
					name, tt.token != "", tt.authDisabled, tt.host, tt.remote, tt.header, rec.Code, rec.Body, tt.want)
			}
			if body := rec.Body.String(); rec.Code != 200 && !strings.Contains(body, "DISPATCHER_METRICS_TOKEN") && !strings.Contains(body, "loopback") {
				t.Errorf("%s: the refusal does not say what to do: %s", name, rec.Body)
			}
		}
	}
}

// TestReadinessNamesDependencyNotError shows that /readyz, which needs no
// token, says which dependency is down but never its error, which may name
// hosts, users or paths; the log gets the error.
func TestReadinessNamesDependencyNotError(t *testing.T) {
	const secret = "dial tcp 10.1.2.3:5432: password authentication failed for user \"dispatcher\""
	checks := map[string]Check{
		"database": func(context.Context) error { return errors.New(secret) },
		"temporal": func(context.Context) error { return nil },
	}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	api, err := NewServer(t.Context(), Config{Auth: AuthConfig{Secret: []byte(harnessSecret)}, MaxBodyBytes: 4096, MaxEventBytes: 2048},
		Deps{Checks: checks, Registry: prometheus.NewRegistry(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]http.Handler{
		"api":    api,
		"worker": NewOpsHandler(checks, prometheus.NewRegistry(), "", false, BuildInfo{}, log),
	} {
		logs.Reset()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		var body struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, rec.Body)
		}
		if rec.Code != http.StatusServiceUnavailable || body.Status != "not ready" ||
			body.Checks["database"] != "down" || body.Checks["temporal"] != "ok" {
			t.Errorf("%s: readyz = %d %s, want 503 with database down and temporal ok", name, rec.Code, rec.Body)
		}
		if strings.Contains(rec.Body.String(), "10.1.2.3") || strings.Contains(rec.Body.String(), "password") {
			t.Errorf("%s: readyz shows the check's error: %s", name, rec.Body)
		}
		if !strings.Contains(logs.String(), "password authentication failed") || !strings.Contains(logs.String(), "check=database") {
			t.Errorf("%s: the log lacks the failed check's error:\n%s", name, logs.String())
		}
	}
}

// A request's method labels its series, and net/http takes any token as
// a method before authentication: each new one was a series kept for
// good, a way for anyone to grow the process's memory.
func TestMetricsMethodsAreBounded(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	for _, m := range []string{"FOO", "X" + strings.Repeat("A", 4096), "GET"} {
		hs.h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(m, "/health", nil))
	}
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+harnessMetricsToken)
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	body := rec.Body.String()
	if strings.Contains(body, `method="FOO"`) || strings.Contains(body, "XAAAA") {
		t.Fatalf("an unknown method has a series of its own:\n%s", body)
	}
	if !strings.Contains(body, `method="other"`) || !strings.Contains(body, `method="GET",route="/health"`) {
		t.Fatalf("metrics lack the other and GET series:\n%s", body)
	}
}

// A check that takes all of /readyz's time is down alone: each check has
// the whole time to itself. Before, they ran one after another within one
// deadline, so a broker check stuck while its client reconnected made
// Temporal, checked after it, look down too.
func TestReadinessChecksDoNotWaitForEachOther(t *testing.T) {
	checks := map[string]Check{
		"nats":     func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
		"temporal": func(ctx context.Context) error { return ctx.Err() },
	}
	h := NewOpsHandler(checks, prometheus.NewRegistry(), "", false, BuildInfo{}, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%v\n%s", err, rec.Body)
	}
	if rec.Code != http.StatusServiceUnavailable || body.Checks["nats"] != "down" || body.Checks["temporal"] != "ok" {
		t.Errorf("readyz = %d %s, want 503 with nats down and temporal ok", rec.Code, rec.Body)
	}
}

// A refused request's log line says who was refused, and from where: the
// request id is the client's choice and a refusal leaves no audit record.
// Before, the line held the method, route and status alone.
func TestRefusedRequestLogSaysWho(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Secret: []byte(harnessSecret)}, MaxBodyBytes: 4096, MaxEventBytes: 2048},
		Deps{Registry: prometheus.NewRegistry(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := SignToken([]byte(harnessSecret), TokenClaims{Subject: "mallory", Tenant: "acme", Permissions: []string{PermViewTemplates}, TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/apikeys/v1", strings.NewReader(`{"name":"k","permissions":["CREATE_APIKEYS"]}`))
	req.Host, req.RemoteAddr = "localhost", "192.0.2.7:40000"
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("POST /apikeys/v1 without CREATE_APIKEYS = %d, want 403", rec.Code)
	}
	for _, want := range []string{"status=403", "client_addr=192.0.2.7", "subject=mallory", "tenant=acme"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, logs.String())
		}
	}
}

// A request for no route logs the path it asked for, without its query:
// before, route="" said nothing of what a misrouted client asked (a
// probe).
func TestUnroutedRequestLogSaysThePath(t *testing.T) {
	var logs strings.Builder
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Secret: []byte(harnessSecret)}, MaxBodyBytes: 4096, MaxEventBytes: 2048},
		Deps{Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/dispatcher/v1/x?token=secret", nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(logs.String(), "path=/dispatcher/v1/x") || strings.Contains(logs.String(), "secret") {
		t.Errorf("%d, log:\n%s\nwant 404 logged with the path, not its query", rec.Code, logs.String())
	}
}

// A request refused because a dependency is down (503) is logged as a
// warning, and one that failed for a reason of the server's own (500) as
// an error: through an outage of Temporal every event a producer sends,
// and sends again, is a 503, and each was an ERROR line, which buried the
// errors that are bugs and paged whoever alerts on them.
func TestUnavailableIsAWarningNotAnError(t *testing.T) {
	var logs strings.Builder
	starter := &fakeStarter{}
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Disabled: true}, MaxBodyBytes: 4096, MaxEventBytes: 2048},
		Deps{Starter: starter, Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		err    error
		status int
		level  string
	}{
		{dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable: connection refused"), 503, "level=WARN"},
		{errors.New("a bug"), 500, "level=ERROR"},
	} {
		logs.Reset()
		starter.err = c.err
		req := httptest.NewRequest("POST", "/events/v1", strings.NewReader(`{"type":"t"}`))
		req.Host = "localhost"
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var failed string
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, `msg="request failed"`) {
				failed = line
			}
		}
		if rec.Code != c.status || !strings.Contains(failed, c.level) || !strings.Contains(failed, "err=") {
			t.Errorf("%v: %d, logged %q; want %d, logged at %s with the error", c.err, rec.Code, failed, c.status, c.level)
		}
	}
}

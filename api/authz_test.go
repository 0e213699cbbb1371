package api

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// The helpers of the authorization tests (authz_matrix_test.go,
// apikey_test.go): a server on a real store whose clock the test moves,
// tenant-aware executions, and tokens of any tenant.

// testClock is a clock the test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// authzServer is the API on a SQLite store, with a clock for expiry,
// tenant-aware executions and a fake starter.
type authzServer struct {
	*harness
	engine *gin.Engine
	clock  *testClock
	execs  *tenantExecutions
	seq    atomic.Int64 // makes fixture names unique
}

// newAuthzServer serves the API with auth (HS256 with harnessSecret unless
// disabled) checked against the server's clock.
func newAuthzServer(t *testing.T, auth AuthConfig, opts ...func(*Config)) *authzServer {
	t.Helper()
	db, err := models.Open(testenv.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Now().UTC().Truncate(time.Millisecond)}
	// The store keeps real time: keys' expiry is checked against the
	// server's clock, which only ever moves forward from it.
	var ticks atomic.Int64
	store := models.NewStore(db, func() time.Time { return time.Now().Add(time.Duration(ticks.Add(1)) * time.Millisecond) })
	outbound, err := dispatcher.NewOutbound([]string{"127.0.0.0/8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !auth.Disabled {
		auth.Secret = []byte(harnessSecret)
	}
	auth.Now = clock.Now
	execs := newTenantExecutions()
	starter := &fakeStarter{}
	cfg := Config{Auth: auth, MaxBodyBytes: 1 << 16, MaxEventBytes: 1 << 16, Outbound: outbound}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := NewServer(t.Context(), cfg,
		Deps{Store: store, Starter: starter, Executions: execs, Registry: prometheus.NewRegistry(), Now: clock.Now,
			Checks: map[string]Check{"database": store.Ping}})
	if err != nil {
		t.Fatal(err)
	}
	engine, ok := h.(headAsGet)
	if !ok {
		t.Fatalf("NewServer returned a %T, not the gin engine", h)
	}
	return &authzServer{harness: &harness{t: t, h: h, store: store, starter: starter}, engine: engine.Engine, clock: clock, execs: execs}
}

// jwtFor returns an HS256 token of subject in tenant holding perms and
// expiring at exp.
func (s *authzServer) jwtFor(tenant, subject string, perms []string, exp time.Time) string {
	s.t.Helper()
	c := tokenClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: subject, IssuedAt: jwt.NewNumericDate(exp.Add(-2 * time.Hour)),
		ExpiresAt: jwt.NewNumericDate(exp)}, Permissions: perms, Tenant: tenant}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(harnessSecret))
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// admin returns a token of tenant holding every permission, valid for an
// hour of the server's clock.
func (s *authzServer) admin(tenant string) string {
	return s.jwtFor(tenant, "admin-of-"+tenant, Permissions(), s.clock.Now().Add(time.Hour))
}

// apiKey stores a key of tenant holding perms, as the store would for
// its creator, and returns it.
func (s *authzServer) apiKey(tenant string, perms ...string) string {
	s.t.Helper()
	key, hash := dispatcher.NewAPIKey()
	k := dispatcher.APIKey{Name: "fixture", Permissions: perms, Hash: hash}
	ctx := dispatcher.WithCaller(context.Background(), dispatcher.Caller{Tenant: tenant, Subject: "fixture"})
	if err := s.store.CreateAPIKey(ctx, &k); err != nil {
		s.t.Fatal(err)
	}
	return key
}

// mustAs sends a request as token that must answer want.
func (s *authzServer) mustAs(token string, want int, method, path, body string) map[string]any {
	s.t.Helper()
	code, out := s.doAs(token, method, path, body)
	if code != want {
		s.t.Fatalf("%s %s = %d %v, want %d", method, path, code, out, want)
	}
	return out
}

// without returns every permission but perm.
func without(perm string) []string {
	return slices.DeleteFunc(Permissions(), func(p string) bool { return p == perm })
}

// tenantExecutions keeps each dispatch and bulk replay in the tenant that
// owns it and answers only the caller's (dispatcher.CallerOf), as
// dispatch.Executions does over Temporal with tenant-prefixed workflow
// IDs. Against it, a test shows the API's share of tenant isolation:
// every executions route hands the caller's tenant down in the request's
// context. That Temporal keeps them apart is dispatch's to test.
type tenantExecutions struct {
	mu    sync.Mutex
	runs  map[string]string // workflow ID → tenant
	bulks map[string]string // bulk replay id → tenant
	// filters are the bulk replays' filters, by id.
	filters map[string]dispatcher.ExecutionFilter
}

func newTenantExecutions() *tenantExecutions {
	return &tenantExecutions{runs: make(map[string]string), bulks: make(map[string]string), filters: make(map[string]dispatcher.ExecutionFilter)}
}

// add records a failed dispatch of tenant.
func (f *tenantExecutions) add(tenant, workflowID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs[workflowID] = tenant
}

// addBulk records a bulk replay of tenant.
func (f *tenantExecutions) addBulk(tenant, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bulks[id] = tenant
}

func (f *tenantExecutions) own(ctx context.Context, m map[string]string, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if tenant, ok := m[id]; !ok || tenant != dispatcher.CallerOf(ctx).Tenant {
		return dispatcher.Errorf(dispatcher.ENOTFOUND, "no dispatch or bulk replay %s", id)
	}
	return nil
}

func (f *tenantExecutions) mine(ctx context.Context) []dispatcher.Execution {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []dispatcher.Execution
	for id, tenant := range f.runs {
		if tenant == dispatcher.CallerOf(ctx).Tenant {
			out = append(out, execution(id))
		}
	}
	slices.SortFunc(out, func(a, b dispatcher.Execution) int { return strings.Compare(a.WorkflowID, b.WorkflowID) })
	return out
}

func execution(workflowID string) dispatcher.Execution {
	return dispatcher.Execution{WorkflowID: workflowID, RunID: "run-1", EventID: workflowID, EventType: "user_deleted",
		Status: dispatcher.ExecutionFailed, Start: time.UnixMilli(1767225600000)}
}

func (f *tenantExecutions) List(ctx context.Context, _ dispatcher.ExecutionFilter, _ dispatcher.ListRequest) (dispatcher.ExecutionPage, error) {
	return dispatcher.ExecutionPage{Executions: f.mine(ctx)}, nil
}

func (f *tenantExecutions) Get(ctx context.Context, workflowID, _ string) (dispatcher.ExecutionDetail, error) {
	if err := f.own(ctx, f.runs, workflowID); err != nil {
		return dispatcher.ExecutionDetail{}, err
	}
	x := execution(workflowID)
	d := dispatcher.ExecutionDetail{Execution: x, Event: dispatcher.Event{Type: x.EventType}, Runs: []dispatcher.Execution{x}}
	if strings.HasSuffix(workflowID, "-untyped") { // failed before it read its configuration: no type attribute
		d.EventType = ""
	}
	return d, nil
}

func (f *tenantExecutions) History(ctx context.Context, workflowID, _ string, _ int, _ string) (dispatcher.HistoryPage, error) {
	return dispatcher.HistoryPage{RunID: "run-1"}, f.own(ctx, f.runs, workflowID)
}

func (f *tenantExecutions) Failures(ctx context.Context, _ dispatcher.ExecutionFilter, _ bool, _ int) (dispatcher.FailureSummary, error) {
	return dispatcher.FailureSummary{Failed: len(f.mine(ctx))}, nil
}

func (f *tenantExecutions) Replay(ctx context.Context, r dispatcher.ReplayRequest) (dispatcher.ReplayResult, error) {
	return dispatcher.ReplayResult{WorkflowID: r.WorkflowID, RunID: "run-2", ReplayOf: "run-1", ReplayID: "r1", Config: "original"},
		f.own(ctx, f.runs, r.WorkflowID)
}

func (f *tenantExecutions) Cancel(ctx context.Context, workflowID, _ string) (dispatcher.Execution, error) {
	return execution(workflowID), f.own(ctx, f.runs, workflowID)
}

func (f *tenantExecutions) Release(ctx context.Context, workflowID, _ string) (dispatcher.Execution, error) {
	return execution(workflowID), f.own(ctx, f.runs, workflowID)
}

func (f *tenantExecutions) DryRunBulkReplay(ctx context.Context, _ dispatcher.BulkReplayRequest, _ int) (dispatcher.BulkReplayDryRun, error) {
	mine := f.mine(ctx)
	return dispatcher.BulkReplayDryRun{Matched: int64(len(mine)), Sample: mine}, nil
}

func (f *tenantExecutions) StartBulkReplay(ctx context.Context, r dispatcher.BulkReplayRequest) (dispatcher.BulkReplayStatus, error) {
	id := "bulk-replay-" + dispatcher.NewID(time.Now())
	f.addBulk(dispatcher.CallerOf(ctx).Tenant, id)
	f.mu.Lock()
	f.filters[id] = r.Filter
	f.mu.Unlock()
	return dispatcher.BulkReplayStatus{ID: id, Status: "running", Request: r}, nil
}

func (f *tenantExecutions) BulkReplay(ctx context.Context, id string) (dispatcher.BulkReplayStatus, error) {
	f.mu.Lock()
	r := dispatcher.BulkReplayRequest{Filter: f.filters[id]}
	f.mu.Unlock()
	return dispatcher.BulkReplayStatus{ID: id, Status: "running", Request: r}, f.own(ctx, f.bulks, id)
}

func (f *tenantExecutions) BulkReplays(ctx context.Context, _ int) ([]dispatcher.BulkReplayStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []dispatcher.BulkReplayStatus
	for id, tenant := range f.bulks {
		if tenant == dispatcher.CallerOf(ctx).Tenant {
			out = append(out, dispatcher.BulkReplayStatus{ID: id, Status: "running", Request: dispatcher.BulkReplayRequest{Filter: f.filters[id]}})
		}
	}
	return out, nil
}

func (f *tenantExecutions) CancelBulkReplay(ctx context.Context, id, _ string) (dispatcher.BulkReplayStatus, error) {
	return dispatcher.BulkReplayStatus{ID: id, Status: "canceled"}, f.own(ctx, f.bulks, id)
}

func (f *tenantExecutions) PauseBulkReplay(ctx context.Context, id, _ string, pause bool) (dispatcher.BulkReplayStatus, error) {
	return dispatcher.BulkReplayStatus{ID: id, Status: "running", Progress: dispatcher.BulkReplayProgress{Paused: pause}}, f.own(ctx, f.bulks, id)
}

// tenantFixture is one of everything a tenant owns, made through the API.
type tenantFixture struct {
	template, function, dispatcher, action, apiKey string
	workflowID, bulkReplay                         string
}

// seedTenant makes a fixture for tenant as token, with fresh names.
func (s *authzServer) seedTenant(tenant, token string) tenantFixture {
	s.t.Helper()
	n := s.seq.Add(1)
	var f tenantFixture
	f.template = s.mustAs(token, 200, "POST", "/templates/v1", fmt.Sprintf(`{"name":"t%d","subject":"Hi","text":"Hello"}`, n))["id"].(string)
	f.function = s.mustAs(token, 200, "POST", "/functions/v1", fmt.Sprintf(`{"name":"f%d","url":"http://127.0.0.1:9/erase"}`, n))["id"].(string)
	d := s.mustAs(token, 200, "POST", "/dispatchers/v1", fmt.Sprintf(`{"name":"d%d","eventType":"user_deleted","actions":[
		{"type":"mail","name":"bye","recipients":{"to":["a@example.com"]},"templateId":%q}]}`, n, f.template))
	f.dispatcher = d["id"].(string)
	f.action = d["actions"].([]any)[0].(map[string]any)["id"].(string)
	f.apiKey = s.mustAs(token, 200, "POST", "/apikeys/v1", fmt.Sprintf(`{"name":"k%d","permissions":["CREATE_EVENTS"]}`, n))["id"].(string)
	f.workflowID = fmt.Sprintf("dispatch-evt-%s-%d", tenant, n)
	s.execs.add(tenant, f.workflowID)
	f.bulkReplay = "bulk-replay-" + dispatcher.NewID(time.Now())
	s.execs.addBulk(tenant, f.bulkReplay)
	return f
}

// fill puts the fixture's ids into a route's path in OpenAPI form.
func (f tenantFixture) fill(t *testing.T, path string) string {
	t.Helper()
	return pathParam.ReplaceAllStringFunc(path, func(m string) string {
		switch name := m[1 : len(m)-1]; {
		case name == "dispatcherId":
			return f.dispatcher
		case name == "actionId":
			return f.action
		case name == "workflowId":
			return f.workflowID
		case name == "id" && strings.HasPrefix(path, "/templates/v1/"):
			return f.template
		case name == "id" && strings.HasPrefix(path, "/functions/v1/"):
			return f.function
		case name == "id" && strings.HasPrefix(path, "/apikeys/v1/"):
			return f.apiKey
		case name == "id" && strings.HasPrefix(path, "/executions/v1/replays/"):
			return f.bulkReplay
		case name == "path" && strings.HasPrefix(path, "/console/"):
			return "index.html"

		default:
			t.Fatalf("%s: no fixture for the path parameter %s; add one to tenantFixture.fill", path, name)
			return ""
		}
	})
}

// pathParam matches a path parameter in OpenAPI form, {name}.
var pathParam = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

// routesOf lists the engine's routes in OpenAPI form, sorted.
func routesOf(e *gin.Engine) []openAPIRoute {
	var out []openAPIRoute
	for _, r := range e.Routes() {
		out = append(out, openAPIRoute{r.Method, ginParam.ReplaceAllString(r.Path, "{$1}")})
	}
	slices.SortFunc(out, func(a, b openAPIRoute) int { return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method) })
	return out
}

package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// The authorization matrix: every route of the engine — not of a list
// kept by hand, so a new route cannot escape it — is refused to the
// requests that must not pass, and one tenant cannot reach another's
// resources through it. A route is either public (openAPIPublic) or
// requires the permission that api/openapi.json names for it
// (TestOpenAPISecurity keeps the two in step), and has a case in
// tenantIsolation below.

// TestAuthorizationMatrix: every protected route × {no token, expired
// token, every permission but the route's, an API key with every
// permission but the route's, a revoked API key} is refused with the
// right status and code; every public route answers without a token.
func TestAuthorizationMatrix(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	now := s.clock.Now()
	expired := s.jwtFor("acme", "ann", Permissions(), now.Add(-time.Second))

	// A key with every permission that worked until it was revoked.
	admin := s.admin("acme")
	perms, err := json.Marshal(Permissions())
	if err != nil {
		t.Fatal(err)
	}
	created := s.mustAs(admin, 200, "POST", "/apikeys/v1", `{"name":"doomed","permissions":`+string(perms)+`}`)
	revoked := created["key"].(string)
	s.mustAs(revoked, 200, "GET", "/apikeys/v1", "")
	s.mustAs(admin, 200, "DELETE", "/apikeys/v1/"+created["id"].(string), "")

	doc := loadOpenAPI(t, openAPI)
	routes := routesOf(s.engine)
	if len(routes) == 0 {
		t.Fatal("the engine has no routes")
	}
	fixture := tenantFixture{template: "5f2b3c4d5e6f708192a3b4c5", function: "5f2b3c4d5e6f708192a3b4c6",
		dispatcher: "5f2b3c4d5e6f708192a3b4c7", action: "5f2b3c4d5e6f708192a3b4c8", apiKey: "5f2b3c4d5e6f708192a3b4c9",
		workflowID: "dispatch-evt-1", bulkReplay: "bulk-replay-5f2b3c4d5e6f708192a3b4c5"}
	for _, r := range routes {
		path := fixture.fill(t, r.Path)
		if r == openAPIMetrics {
			continue // its own token: TestMetricsNeedTheToken
		}
		if slices.Contains(openAPIPublic, r) {
			t.Run(r.String()+"/public", func(t *testing.T) {
				if code, body := s.doAs("", r.Method, path, ""); code != http.StatusOK {
					t.Errorf("a public route answered %d %v without a token, want 200", code, body)
				}
			})
			continue
		}
		if slices.Contains(openAPIAuthenticated, r) {
			t.Run(r.String()+"/authenticated", func(t *testing.T) {
				for _, c := range []struct {
					name   string
					token  string
					status int
					code   int
				}{
					{"no token", "", 401, 104},
					{"expired token", expired, 401, 118},
					{"revoked API key", revoked, 401, 117},
				} {
					code, body := s.doAs(c.token, r.Method, path, "")
					wantError(t, code, body, c.status, c.code, "")
				}
				for _, token := range []string{s.jwtFor("acme", "ann", nil, now.Add(time.Hour)), s.apiKey("acme", PermCreateEvents)} {
					if code, body := s.doAs(token, r.Method, path, ""); code != http.StatusOK {
						t.Errorf("a valid token or key without the permissions of other routes got %d %v, want 200", code, body)
					}
				}
			})
			continue
		}
		perm := requiredPermission(doc, r)
		if perm == "" {
			t.Errorf("%s is neither public (openAPIPublic), for any caller (openAPIAuthenticated), nor documented with an x-required-permission in api/openapi.json", r)
			continue
		}
		for _, c := range []struct {
			name    string
			token   string
			status  int
			code    int
			mention string
		}{
			{"no token", "", 401, 104, "bearer token"},
			{"expired token", expired, 401, 118, "expired"},
			{"wrong permission", s.jwtFor("acme", "ann", without(perm), now.Add(time.Hour)), 403, 10, perm},
			{"API key with the wrong permission", s.apiKey("acme", without(perm)...), 403, 10, perm},
			{"revoked API key", revoked, 401, 117, "revoked"},
		} {
			t.Run(r.String()+"/"+c.name, func(t *testing.T) {
				code, body := s.doAs(c.token, r.Method, path, "{}")
				wantError(t, code, body, c.status, c.code, c.mention)
			})
		}
	}
}

// requiredPermission is the x-required-permission of a route in doc, or
// "" when the route is not documented with one.
func requiredPermission(doc *openapi3.T, r openAPIRoute) string {
	item := doc.Paths.Value(r.Path)
	if item == nil {
		return ""
	}
	op := item.GetOperation(r.Method)
	if op == nil {
		return ""
	}
	perm, _ := op.Extensions["x-required-permission"].(string)
	return perm
}

// isolation is how a route is checked against another tenant's resources.
type isolation struct {
	// body is sent with the request; it is valid for the route, so that
	// only the tenant can make the request fail.
	body string
	// check, when set, judges the answer; nil means it must be 404.
	check func(t *testing.T, a tenantFixture, code int, body map[string]any)
	// na, when set, is why the route has nothing of another tenant's to
	// reach: it is not requested.
	na string
}

// lacks checks that a 200 list answer's data holds no item whose field
// is value.
func lacks(field string, value func(tenantFixture) string) func(*testing.T, tenantFixture, int, map[string]any) {
	return func(t *testing.T, a tenantFixture, code int, body map[string]any) {
		t.Helper()
		if code != http.StatusOK {
			t.Fatalf("answered %d %v, want 200", code, body)
		}
		data, ok := body["data"].([]any)
		if !ok {
			t.Fatalf("the answer has no data list: %v", body)
		}
		for _, it := range data {
			if it.(map[string]any)[field] == value(a) {
				t.Fatalf("another tenant's list shows %s %s of tenant acme: %v", field, value(a), it)
			}
		}
	}
}

// counts checks that a 200 answer's field, a count, is zero: another
// tenant's dispatches do not count.
func counts(field string) func(*testing.T, tenantFixture, int, map[string]any) {
	return func(t *testing.T, _ tenantFixture, code int, body map[string]any) {
		t.Helper()
		if code != http.StatusOK || body[field] != 0.0 {
			t.Fatalf("answered %d %v, want 200 with %s 0: tenant acme's dispatches counted for globex", code, body, field)
		}
	}
}

// refused checks that the answer is 403: no tenant may use the route.
func refused(t *testing.T, _ tenantFixture, code int, body map[string]any) {
	t.Helper()
	wantError(t, code, body, 403, 10, "tenant")
}

// tenantIsolation has a case for every protected route. A route added
// without one fails TestTenantIsolation.
var tenantIsolation = map[openAPIRoute]isolation{
	{"GET", "/dispatchers/v1"}:                                      {check: lacks("id", func(a tenantFixture) string { return a.dispatcher })},
	{"GET", "/dispatchers/v1/"}:                                     {check: lacks("id", func(a tenantFixture) string { return a.dispatcher })},
	{"POST", "/dispatchers/v1"}:                                     {na: "creates in the caller's tenant, which the list cases show"},
	{"POST", "/dispatchers/v1/"}:                                    {na: "creates in the caller's tenant, which the list cases show"},
	{"GET", "/dispatchers/v1/{dispatcherId}"}:                       {},
	{"PUT", "/dispatchers/v1/{dispatcherId}"}:                       {body: `{"description":"taken over"}`},
	{"DELETE", "/dispatchers/v1/{dispatcherId}"}:                    {},
	{"POST", "/dispatchers/v1/{dispatcherId}/batch"}:                {body: `{"dispatcher":{"description":"taken over"},"createActions":[{"type":"task","name":"steal","functionName":"%FUNCTION%"}]}`},
	{"POST", "/dispatchers/v1/{dispatcherId}/actions"}:              {body: `{"type":"task","name":"steal","functionName":"%FUNCTION%"}`},
	{"PUT", "/dispatchers/v1/{dispatcherId}/actions/{actionId}"}:    {body: `{"name":"taken over"}`},
	{"DELETE", "/dispatchers/v1/{dispatcherId}/actions/{actionId}"}: {},

	{"POST", "/events/v1"}:  {na: "starts a dispatch in the caller's tenant; the executions cases show it stays there"},
	{"POST", "/events/v1/"}: {na: "starts a dispatch in the caller's tenant; the executions cases show it stays there"},

	{"GET", "/templates/v1"}:              {check: lacks("id", func(a tenantFixture) string { return a.template })},
	{"GET", "/templates/v1/"}:             {check: lacks("id", func(a tenantFixture) string { return a.template })},
	{"POST", "/templates/v1"}:             {na: "creates in the caller's tenant, which the list cases show"},
	{"POST", "/templates/v1/"}:            {na: "creates in the caller's tenant, which the list cases show"},
	{"GET", "/templates/v1/{id}"}:         {},
	{"PUT", "/templates/v1/{id}"}:         {body: `{"subject":"taken over"}`},
	{"DELETE", "/templates/v1/{id}"}:      {},
	{"POST", "/templates/v1/{id}/render"}: {body: `{"event":{"type":"user_deleted","content":{}}}`},

	{"GET", "/functions/v1"}:         {check: lacks("id", func(a tenantFixture) string { return a.function })},
	{"GET", "/functions/v1/"}:        {check: lacks("id", func(a tenantFixture) string { return a.function })},
	{"POST", "/functions/v1"}:        {na: "creates in the caller's tenant, which the list cases show"},
	{"POST", "/functions/v1/"}:       {na: "creates in the caller's tenant, which the list cases show"},
	{"GET", "/functions/v1/{id}"}:    {},
	{"PUT", "/functions/v1/{id}"}:    {body: `{"url":"http://127.0.0.1:9/stolen"}`},
	{"DELETE", "/functions/v1/{id}"}: {},

	{"GET", "/apikeys/v1"}:         {check: lacks("id", func(a tenantFixture) string { return a.apiKey })},
	{"GET", "/apikeys/v1/"}:        {check: lacks("id", func(a tenantFixture) string { return a.apiKey })},
	{"POST", "/apikeys/v1"}:        {na: "creates in the caller's tenant, which the list cases show"},
	{"POST", "/apikeys/v1/"}:       {na: "creates in the caller's tenant, which the list cases show"},
	{"DELETE", "/apikeys/v1/{id}"}: {},

	{"GET", "/executions/v1"}:                       {check: lacks("workflowId", func(a tenantFixture) string { return a.workflowID })},
	{"GET", "/executions/v1/"}:                      {check: lacks("workflowId", func(a tenantFixture) string { return a.workflowID })},
	{"GET", "/executions/v1/failures"}:              {check: counts("failed")},
	{"POST", "/executions/v1/replays"}:              {body: `{"status":"failed","dryRun":true}`, check: counts("matched")},
	{"GET", "/executions/v1/replays"}:               {check: lacks("id", func(a tenantFixture) string { return a.bulkReplay })},
	{"GET", "/executions/v1/replays/{id}"}:          {},
	{"POST", "/executions/v1/replays/{id}/cancel"}:  {},
	{"POST", "/executions/v1/replays/{id}/pause"}:   {},
	{"POST", "/executions/v1/replays/{id}/resume"}:  {},
	{"GET", "/executions/v1/{workflowId}"}:          {},
	{"GET", "/executions/v1/{workflowId}/history"}:  {},
	{"POST", "/executions/v1/{workflowId}/replay"}:  {body: `{}`},
	{"POST", "/executions/v1/{workflowId}/cancel"}:  {},
	{"POST", "/executions/v1/{workflowId}/release"}: {},

	{"GET", "/auth/v1/me"}: {na: "shows the caller itself, nothing stored"},

	// Each tenant's audit trail holds its own changes only: acme's
	// seeding is in acme's.
	{"GET", "/audit/v1"}:  {check: lacks("target", func(a tenantFixture) string { return a.template })},
	{"GET", "/audit/v1/"}: {check: lacks("target", func(a tenantFixture) string { return a.template })},

	// The codec decrypts what it is handed with the deployment's keys,
	// whoever's it is, and a namespace's payloads are every tenant's: a
	// tenant's token may not use it.
	{"POST", "/codec/decode"}: {body: `{"payloads":[]}`, check: refused},
	{"POST", "/codec/encode"}: {body: `{"payloads":[]}`, check: refused},
}

// TestTenantIsolation: for every protected route, tenant globex, holding
// every permission, cannot read, change, delete, replay or cancel what
// tenant acme owns (404, as for what does not exist), nor see it in a
// list. Each case gets fresh resources of both tenants, so a case that
// fails (a delete that went through) cannot mask another.
func TestTenantIsolation(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	acme, globex := s.admin("acme"), s.admin("globex")
	// globex owns only a function, for the bodies that name one: its
	// lists and counts then show acme's things or nothing.
	const globexFunction = "globex-erase"
	s.mustAs(globex, 200, "POST", "/functions/v1", `{"name":"`+globexFunction+`","url":"http://127.0.0.1:9/erase"}`)
	doc := loadOpenAPI(t, openAPI)
	for _, r := range routesOf(s.engine) {
		if slices.Contains(openAPIPublic, r) || r == openAPIMetrics {
			continue // no tenant's token reaches /metrics: only DISPATCHER_METRICS_TOKEN does
		}
		c, ok := tenantIsolation[r]
		if !ok {
			t.Errorf("%s has no case in tenantIsolation: add one, or the reason it reaches nothing of another tenant's", r)
			continue
		}
		if c.na != "" {
			continue
		}
		if requiredPermission(doc, r) == "" {
			t.Errorf("%s is not documented with its permission in api/openapi.json", r)
		}
		t.Run("other tenant/"+r.String(), func(t *testing.T) {
			a := s.seedTenant("acme", acme)
			body := strings.ReplaceAll(c.body, "%FUNCTION%", globexFunction)
			code, out := s.doAs(globex, r.Method, a.fill(t, r.Path), body)
			if c.check != nil {
				c.check(t, a, code, out)
				return
			}
			wantError(t, code, out, 404, 16, "")
		})
	}
	for r := range tenantIsolation {
		if !slices.Contains(routesOf(s.engine), r) {
			t.Errorf("tenantIsolation has a case for %s, which is not a route", r)
		}
	}
}

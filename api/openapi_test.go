package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// These tests keep api/openapi.json and the routes of routes.go in step.
//
// Trailing slashes: routes.go registers the collection roots both with and
// without a trailing slash (/dispatchers/v1 and /dispatchers/v1/, and so on),
// and the document lists both forms as separate paths. The comparison is
// therefore exact: "X" and "X/" are different routes, and each must be
// documented on its own.

// openAPIRoute is one operation: an HTTP method and a path in OpenAPI form
// ({param}, not gin's :param).
type openAPIRoute struct {
	Method string
	Path   string
}

func (r openAPIRoute) String() string { return r.Method + " " + r.Path }

// openAPIPublic are the operations that need no token.
var openAPIPublic = []openAPIRoute{
	{"GET", "/health"},
	{"GET", "/healthz"},
	{"GET", "/readyz"},
	{"GET", "/openapi.json"},
	{"GET", "/dispatchers/v1/health"},
	{"OPTIONS", "/codec/decode"}, // CORS preflights carry no token
	{"OPTIONS", "/codec/encode"},
	{"GET", "/console"}, // the console's files; its data comes with the user's token
	{"GET", "/console/{path}"},
}

// openAPIMetrics takes DISPATCHER_METRICS_TOKEN, not a JWT
// (TestMetricsNeedTheToken).
var openAPIMetrics = openAPIRoute{"GET", "/metrics"}

// openAPIAuthenticated are the operations that need a valid token or key
// but no permission: they show the caller only what it holds.
var openAPIAuthenticated = []openAPIRoute{
	{"GET", "/auth/v1/me"},
}

func loadOpenAPI(t *testing.T, data []byte) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	return doc
}

// newOpenAPIEngine builds the real engine; no request that reaches a
// handler is served, so it needs no store and no starter.
func newOpenAPIEngine(t *testing.T, auth AuthConfig) *gin.Engine {
	t.Helper()
	h, err := NewServer(context.Background(),
		Config{Auth: auth, MaxBodyBytes: 1 << 20, MaxEventBytes: 1 << 18},
		Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	engine, ok := h.(headAsGet)
	if !ok {
		t.Fatalf("NewServer returned a %T, not the gin engine", h)
	}
	return engine.Engine
}

// ginParam matches a gin path parameter, :name or *name.
var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// engineRoutes lists the engine's routes in OpenAPI form.
func engineRoutes(t *testing.T) []openAPIRoute {
	t.Helper()
	var out []openAPIRoute
	for _, r := range newOpenAPIEngine(t, AuthConfig{Disabled: true}).Routes() {
		out = append(out, openAPIRoute{r.Method, ginParam.ReplaceAllString(r.Path, "{$1}")})
	}
	return out
}

// documentedRoutes lists the operations of doc.
func documentedRoutes(doc *openapi3.T) []openAPIRoute {
	var out []openAPIRoute
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, openAPIRoute{strings.ToUpper(method), path})
		}
	}
	return out
}

// routeDrift returns the routes that are not documented and the documented
// operations that have no route, each sorted.
func routeDrift(routes, documented []openAPIRoute) (undocumented, unrouted []openAPIRoute) {
	missing := func(from, in []openAPIRoute) []openAPIRoute {
		var out []openAPIRoute
		for _, r := range from {
			if !slices.Contains(in, r) && !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
		slices.SortFunc(out, func(a, b openAPIRoute) int { return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method) })
		return out
	}
	return missing(routes, documented), missing(documented, routes)
}

// driftReport says what is out of step, or "" when nothing is.
func driftReport(undocumented, unrouted []openAPIRoute) string {
	if len(undocumented) == 0 && len(unrouted) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("api/openapi.json and the routes of api/routes.go are out of step " +
		"(paths compare exactly: \"X\" and \"X/\" are different routes):")
	if len(undocumented) > 0 {
		fmt.Fprintf(&b, "\n  %d route(s) registered in routes.go but missing from openapi.json:", len(undocumented))
		for _, r := range undocumented {
			fmt.Fprintf(&b, "\n    - %s", r)
		}
	}
	if len(unrouted) > 0 {
		fmt.Fprintf(&b, "\n  %d operation(s) documented in openapi.json with no route in routes.go:", len(unrouted))
		for _, r := range unrouted {
			fmt.Fprintf(&b, "\n    - %s", r)
		}
	}
	return b.String()
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadOpenAPI(t, openAPI)
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	if doc.Info.Title != "dispatcher" || doc.Info.Version == "" || doc.Info.Description == "" {
		t.Errorf("info = {title %q, version %q, description %d bytes}, want title \"dispatcher\", a version and a description",
			doc.Info.Title, doc.Info.Version, len(doc.Info.Description))
	}
}

func TestOpenAPIRouteParity(t *testing.T) {
	routes := engineRoutes(t)
	if len(routes) == 0 {
		t.Fatal("the engine has no routes")
	}
	documented := documentedRoutes(loadOpenAPI(t, openAPI))
	if report := driftReport(routeDrift(routes, documented)); report != "" {
		t.Error(report)
	}
}

// TestOpenAPIRouteParityReportsDrift shows that the parity check fails, and
// names the operation, when a copy of the document loses a path or gains one
// that has no route.
func TestOpenAPIRouteParityReportsDrift(t *testing.T) {
	var raw map[string]any
	if err := json.Unmarshal(openAPI, &raw); err != nil {
		t.Fatal(err)
	}
	paths := raw["paths"].(map[string]any)
	if _, ok := paths["/dispatchers/v1/{dispatcherId}/actions"]; !ok {
		t.Fatal("openapi.json has no /dispatchers/v1/{dispatcherId}/actions to remove")
	}
	delete(paths, "/dispatchers/v1/{dispatcherId}/actions")
	paths["/dispatchers/v1/{dispatcherId}/bogus"] = map[string]any{"get": map[string]any{
		"parameters": []any{map[string]any{"$ref": "#/components/parameters/dispatcherId"}},
		"responses":  map[string]any{"200": map[string]any{"description": "never"}},
	}}
	changed, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	report := driftReport(routeDrift(engineRoutes(t), documentedRoutes(loadOpenAPI(t, changed))))
	for _, want := range []string{
		"missing from openapi.json:\n    - POST /dispatchers/v1/{dispatcherId}/actions",
		"with no route in routes.go:\n    - GET /dispatchers/v1/{dispatcherId}/bogus",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the drift report lacks %q; it is:\n%s", want, report)
		}
	}
}

// TestOpenAPISecurity checks each operation's security against the engine:
// with a valid token that holds no permission, every protected route answers
// 403 code 10 naming the permission the document names, and every public
// one answers without asking for a token. Every protected operation
// documents 401 (not authenticated), 403 (not allowed) and 429 (rate
// limited).
func TestOpenAPISecurity(t *testing.T) {
	secret := []byte("openapi-test-secret-0123456789abcdef")
	engine := newOpenAPIEngine(t, AuthConfig{Secret: secret})
	token, err := SignToken(secret, TokenClaims{Subject: "nobody", TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	doc := loadOpenAPI(t, openAPI)
	id := "5f2b3c4d5e6f708192a3b4c5"
	param := regexp.MustCompile(`\{[^}]+\}`)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			r := openAPIRoute{strings.ToUpper(method), path}
			public := slices.Contains(openAPIPublic, r)
			if r == openAPIMetrics {
				if op.Security == nil || len(*op.Security) != 1 || (*op.Security)[0]["metricsToken"] == nil ||
					op.Responses.Value("401") == nil || op.Responses.Value("403") == nil {
					t.Errorf("%s: want security [{metricsToken: []}] and 401 and 403 responses", r)
				}
				continue
			}
			if slices.Contains(openAPIAuthenticated, r) {
				checkAuthenticatedOnly(t, engine, token, r, op)
				continue
			}
			if op.Security == nil {
				t.Errorf("%s: no operation-level security; want [] (public) or [{bearerAuth: []}]", r)
				continue
			}
			perm, _ := op.Extensions["x-required-permission"].(string)
			switch {
			case public && len(*op.Security) != 0:
				t.Errorf("%s: security %v, want [] (a public route)", r, *op.Security)
			case public:
			case len(*op.Security) != 1 || (*op.Security)[0]["bearerAuth"] == nil:
				t.Errorf("%s: security %v, want [{bearerAuth: []}]", r, *op.Security)
			case !slices.Contains(Permissions(), perm):
				t.Errorf("%s: x-required-permission %q is not one of %v", r, perm, Permissions())
			case !strings.Contains(op.Description, "`"+perm+"`"):
				t.Errorf("%s: the description does not name the permission %s", r, perm)
			case op.Responses.Value("401") == nil:
				t.Errorf("%s: no 401 response", r)
			case op.Responses.Value("403") == nil:
				t.Errorf("%s: no 403 response", r)
			case op.Responses.Value("429") == nil:
				t.Errorf("%s: no 429 response", r)
			}

			req := httptest.NewRequest(r.Method, param.ReplaceAllString(path, id), strings.NewReader("{}"))

			req.Host, req.RemoteAddr = "localhost", "127.0.0.1:40000" // /metrics answers loopback
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			engine.ServeHTTP(rec, req)
			if public {
				if rec.Code != http.StatusOK {
					t.Errorf("%s: public route answered %d, want 200: %s", r, rec.Code, rec.Body)
				}
				continue
			}
			var body wire.Error
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if want := "permission " + perm + " is required"; rec.Code != http.StatusForbidden || body.Code != 10 || body.Message != want {
				t.Errorf("%s: without permissions the route answered %d %+v; the document says it requires %s", r, rec.Code, body, perm)
			}
		}
	}
}

// checkAuthenticatedOnly checks an operation of openAPIAuthenticated: it
// documents bearer security, no permission, 401 and 429, and answers 200
// to a valid token that holds no permission.
func checkAuthenticatedOnly(t *testing.T, engine http.Handler, token string, r openAPIRoute, op *openapi3.Operation) {
	t.Helper()
	if op.Security == nil || len(*op.Security) != 1 || (*op.Security)[0]["bearerAuth"] == nil {
		t.Errorf("%s: security %v, want [{bearerAuth: []}]", r, op.Security)
	}
	if perm, ok := op.Extensions["x-required-permission"]; ok {
		t.Errorf("%s: x-required-permission %v, but the route needs no permission (openAPIAuthenticated)", r, perm)
	}
	if op.Responses.Value("401") == nil || op.Responses.Value("429") == nil {
		t.Errorf("%s: want 401 and 429 responses", r)
	}
	req := httptest.NewRequest(r.Method, r.Path, nil)
	req.Host = "localhost"
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	engine.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("%s: a token without permissions got %d, want 200: %s", r, rec.Code, rec.Body)
	}
}

func TestOpenAPIServed(t *testing.T) {
	engine := newOpenAPIEngine(t, AuthConfig{Disabled: true})
	rec := httptest.NewRecorder()
	engine.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://localhost/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.json answered %d, want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if !bytes.Equal(rec.Body.Bytes(), openAPI) {
		t.Errorf("GET /openapi.json served %d bytes that differ from the embedded openapi.json (%d bytes)", rec.Body.Len(), len(openAPI))
	}
}

package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// TestAPIKeyLifecycle: a key is shown once, works as a bearer token with
// its permissions in its creator's tenant, records its last use, and is
// refused from the request after its revocation on.
func TestAPIKeyLifecycle(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	admin := s.admin("acme")
	created := s.mustAs(admin, 200, "POST", "/apikeys/v1/",
		`{"name":"billing producer","permissions":["VIEW_DISPATCHERS","CREATE_EVENTS","VIEW_DISPATCHERS"]}`)
	key, id := created["key"].(string), created["id"].(string)
	if !strings.HasPrefix(key, dispatcher.APIKeyPrefix) || len(key) < 40 || !dispatcher.ValidID(id) {
		t.Fatalf("created %v: want a dsp_ key and an id", created)
	}
	if created["createdBy"] != "admin-of-acme" || fmt.Sprint(created["permissions"]) != "[CREATE_EVENTS VIEW_DISPATCHERS]" ||
		created["eventTypes"] != nil || created["expiresAt"] != nil || created["lastUsedTimestamp"] != nil {
		t.Fatalf("created %v", created)
	}

	// Used: it acts in acme with its permissions, and no more.
	s.mustAs(admin, 200, "POST", "/templates/v1", `{"name":"acme-only","subject":"Hi","text":"Hello"}`)
	s.mustAs(key, 200, "GET", "/dispatchers/v1", "")
	code, body := s.doAs(key, "GET", "/templates/v1", "")
	wantError(t, code, body, 403, 10, PermViewTemplates)
	if got := s.mustAs(key, 202, "POST", "/events/v1", `{"id":"evt-k1","type":"user_deleted","content":{}}`); got["workflowId"] == nil {
		t.Fatalf("event answer %v", got)
	}

	// Listed without the key, with its last use, to the minute.
	listed := s.mustAs(admin, 200, "GET", "/apikeys/v1", "")
	raw := fmt.Sprint(listed)
	if strings.Contains(raw, key) || strings.Contains(raw, dispatcher.APIKeyHash(key)) {
		t.Fatalf("the list shows the key or its hash: %v", listed)
	}
	data := listed["data"].([]any)
	if len(data) != 1 || data[0].(map[string]any)["id"] != id || data[0].(map[string]any)["lastUsedTimestamp"] == nil {
		t.Fatalf("list = %v, want the key with its last use", listed)
	}
	if page := s.mustAs(admin, 200, "GET", "/apikeys/v1?eq(name,nothing)", ""); len(page["data"].([]any)) != 0 {
		t.Fatalf("RQL filter on name: %v", page)
	}
	if other := s.mustAs(s.admin("globex"), 200, "GET", "/apikeys/v1", ""); len(other["data"].([]any)) != 0 {
		t.Fatalf("globex lists acme's keys: %v", other)
	}

	// Revoked: refused at once; another tenant cannot revoke it.
	code, body = s.doAs(s.admin("globex"), "DELETE", "/apikeys/v1/"+id, "")
	wantError(t, code, body, 404, 16, id)
	s.mustAs(key, 200, "GET", "/dispatchers/v1", "")
	s.mustAs(admin, 200, "DELETE", "/apikeys/v1/"+id, "")
	code, body = s.doAs(key, "GET", "/dispatchers/v1", "")
	wantError(t, code, body, 401, 117, "revoked")
	code, body = s.doAs(admin, "DELETE", "/apikeys/v1/"+id, "")
	wantError(t, code, body, 404, 16, id)
	if page := s.mustAs(admin, 200, "GET", "/apikeys/v1", ""); len(page["data"].([]any)) != 0 {
		t.Fatalf("a revoked key is still listed: %v", page)
	}

	code, body = s.doAs(key+"x", "GET", "/dispatchers/v1", "")
	wantError(t, code, body, 401, 117, "unknown")
}

// TestAPIKeyLastUseOncePerMinute: the last use moves on only when a
// minute has passed since the recorded one.
func TestAPIKeyLastUseOncePerMinute(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	admin := s.admin("")
	key := s.mustAs(admin, 200, "POST", "/apikeys/v1", `{"name":"k","permissions":["VIEW_DISPATCHERS"]}`)["key"].(string)
	lastUse := func() float64 {
		t.Helper()
		data := s.mustAs(admin, 200, "GET", "/apikeys/v1", "")["data"].([]any)
		v, _ := data[0].(map[string]any)["lastUsedTimestamp"].(float64)
		return v
	}
	if lastUse() != 0 {
		t.Fatal("an unused key has a last use")
	}
	s.mustAs(key, 200, "GET", "/dispatchers/v1", "")
	first := lastUse()
	if first != float64(s.clock.Now().UnixMilli()) {
		t.Fatalf("last use %v, want the server's clock %d", first, s.clock.Now().UnixMilli())
	}
	s.clock.Advance(59 * time.Second)
	s.mustAs(key, 200, "GET", "/dispatchers/v1", "")
	if got := lastUse(); got != first {
		t.Fatalf("used again within the minute: last use %v, want it left at %v", got, first)
	}
	s.clock.Advance(time.Second)
	s.mustAs(key, 200, "GET", "/dispatchers/v1", "")
	if got := lastUse(); got != float64(s.clock.Now().UnixMilli()) {
		t.Fatalf("used a minute later: last use %v, want %d", got, s.clock.Now().UnixMilli())
	}
}

// TestAPIKeyExpiry: a key is refused with 118 once its expiry is reached.
func TestAPIKeyExpiry(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	admin := s.admin("")
	expires := s.clock.Now().Add(time.Hour).UTC()
	created := s.mustAs(admin, 200, "POST", "/apikeys/v1",
		fmt.Sprintf(`{"name":"k","permissions":["VIEW_DISPATCHERS"],"expiresAt":%q}`, expires.Format(time.RFC3339Nano)))
	if created["expiresAt"] != float64(expires.UnixMilli()) {
		t.Fatalf("expiresAt = %v, want %d", created["expiresAt"], expires.UnixMilli())
	}
	key := created["key"].(string)
	s.mustAs(key, 200, "GET", "/dispatchers/v1", "")
	s.clock.Advance(time.Hour)
	code, body := s.doAs(key, "GET", "/dispatchers/v1", "")
	wantError(t, code, body, 401, 118, "expired")
	// Still listed, so that its owner sees why it stopped working.
	if data := s.mustAs(s.admin(""), 200, "GET", "/apikeys/v1", "")["data"].([]any); len(data) != 1 {
		t.Fatalf("an expired key is not listed: %v", data)
	}
}

// TestAPIKeyCreationErrors: each refusal names the field, the permission
// or the event type at fault.
func TestAPIKeyCreationErrors(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	admin := s.admin("")
	limited := s.jwtFor("", "lee", []string{PermCreateAPIKeys, PermViewDispatchers}, s.clock.Now().Add(time.Hour))
	past := s.clock.Now().Add(-time.Minute).UnixMilli()
	for _, tc := range []struct {
		name, token, body string
		status, code      int
		mention           string
	}{
		{"no name", admin, `{"permissions":["CREATE_EVENTS"]}`, 400, 14, "name:"},
		{"blank name", admin, `{"name":"  ","permissions":["CREATE_EVENTS"]}`, 400, 14, "name:"},
		{"no permissions", admin, `{"name":"k"}`, 400, 14, "permissions:"},
		{"unknown permission", admin, `{"name":"k","permissions":["CREATE_EVENTS","SEND_EVENTS"]}`, 400, 15, `permissions[1]: unknown permission "SEND_EVENTS"`},
		{"permissions not a list", admin, `{"name":"k","permissions":"CREATE_EVENTS"}`, 400, 15, "permissions"},
		{"expiry in the past", admin, fmt.Sprintf(`{"name":"k","permissions":["CREATE_EVENTS"],"expiresAt":%d}`, past), 400, 15, "expiresAt:"},
		{"expiry not a time", admin, `{"name":"k","permissions":["CREATE_EVENTS"],"expiresAt":"tomorrow"}`, 400, 15, "expiresAt:"},
		{"no event types", admin, `{"name":"k","permissions":["CREATE_EVENTS"],"eventTypes":[]}`, 400, 15, "eventTypes:"},
		// Before, accepted: a restriction of nothing, which read as one.
		{"event types without CREATE_EVENTS", admin, `{"name":"k","permissions":["VIEW_EXECUTIONS"],"eventTypes":["invoice_paid"]}`, 400, 15,
			"eventTypes: limits the events a key sends, and this one may send none: add CREATE_EVENTS"},
		// It could move another type's dispatcher to one of its types,
		// or point a function other types call elsewhere. Before, accepted.
		{"event types with configuration permissions", admin, `{"name":"k","permissions":["CREATE_EVENTS","UPDATE_DISPATCHERS","CREATE_FUNCTIONS"],"eventTypes":["invoice_paid"]}`, 400, 15,
			"permissions: a key held to event types (eventTypes) may not change the configuration, which every type shares: leave out CREATE_FUNCTIONS, UPDATE_DISPATCHERS"},
		{"more than the creator holds", limited, `{"name":"k","permissions":["VIEW_DISPATCHERS","DELETE_DISPATCHERS"]}`, 403, 10, "DELETE_DISPATCHERS"},
		{"without CREATE_APIKEYS", s.jwtFor("", "vic", []string{PermViewAPIKeys}, s.clock.Now().Add(time.Hour)),
			`{"name":"k","permissions":["VIEW_APIKEYS"]}`, 403, 10, PermCreateAPIKeys},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := s.doAs(tc.token, "POST", "/apikeys/v1", tc.body)
			wantError(t, code, body, tc.status, tc.code, tc.mention)
		})
	}
	if data := s.mustAs(admin, 200, "GET", "/apikeys/v1", "")["data"].([]any); len(data) != 0 {
		t.Fatalf("refused requests created keys: %v", data)
	}
	// What the creator holds, it may grant.
	s.mustAs(limited, 200, "POST", "/apikeys/v1", `{"name":"k","permissions":["VIEW_DISPATCHERS"]}`)
}

// TestAPIKeyEventTypesChangeNoConfiguration: a key held to event types
// that was made with configuration permissions before they were refused
// together does not hold them: it cannot move another type's dispatcher
// to its own type (and then send its calls) nor change a function.
func TestAPIKeyEventTypesChangeNoConfiguration(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	admin := s.admin("")
	d := s.mustAs(admin, 200, "POST", "/dispatchers/v1", `{"name":"outb","eventType":"user_deleted","actions":[]}`)
	ctx := dispatcher.WithCaller(context.Background(), dispatcher.Caller{Subject: "fixture"})
	key, hash := dispatcher.NewAPIKey()
	k := dispatcher.APIKey{Name: "old", Permissions: []string{PermCreateEvents, PermUpdateDispatchers, PermViewDispatchers, PermViewAPIKeys, PermDeleteAPIKeys},
		EventTypes: []string{"simple"}, Hash: hash}
	if err := s.store.CreateAPIKey(ctx, &k); err != nil {
		t.Fatal(err)
	}
	// One it made then, holding what it held.
	_, childHash := dispatcher.NewAPIKey()
	child := dispatcher.APIKey{Name: "child", Permissions: []string{PermCreateEvents, PermUpdateDispatchers}, EventTypes: []string{"simple"}, Hash: childHash}
	if err := s.store.CreateAPIKey(dispatcher.WithCaller(context.Background(), dispatcher.Caller{Subject: dispatcher.APIKeySubject(k.ID)}), &child); err != nil {
		t.Fatal(err)
	}
	code, body := s.doAs(key, "PUT", "/dispatchers/v1/"+d["id"].(string), `{"eventType":"simple"}`)
	wantError(t, code, body, 403, 10, PermUpdateDispatchers)
	if me := s.mustAs(key, 200, "GET", "/auth/v1/me", ""); slices.Contains(me["permissions"].([]any), any(PermUpdateDispatchers)) {
		t.Fatalf("/auth/v1/me says the key may update dispatchers: %v", me)
	}
	s.mustAs(key, 200, "GET", "/dispatchers/v1/"+d["id"].(string), "")
	// Listed with what they hold, and the key still revokes its own.
	for _, l := range s.mustAs(admin, 200, "GET", "/apikeys/v1", "")["data"].([]any) {
		if perms := l.(map[string]any)["permissions"].([]any); slices.Contains(perms, any(PermUpdateDispatchers)) {
			t.Errorf("listed with %v", perms)
		}
	}
	s.mustAs(key, 200, "DELETE", "/apikeys/v1/"+child.ID, "")
}

// TestAPIKeyEventTypes: a key restricted to event types sends only those,
// a batch holding another is refused whole, and keys it creates are held
// to its types.
func TestAPIKeyEventTypes(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	admin := s.admin("")
	created := s.mustAs(admin, 200, "POST", "/apikeys/v1",
		`{"name":"billing","permissions":["CREATE_EVENTS","CREATE_APIKEYS"],"eventTypes":["invoice_paid","invoice_due"]}`)
	if fmt.Sprint(created["eventTypes"]) != "[invoice_due invoice_paid]" {
		t.Fatalf("eventTypes = %v", created["eventTypes"])
	}
	key := created["key"].(string)
	s.mustAs(key, 202, "POST", "/events/v1", `{"id":"evt-1","type":"invoice_paid","content":{}}`)
	code, body := s.doAs(key, "POST", "/events/v1", `{"id":"evt-2","type":"user_deleted","content":{}}`)
	wantError(t, code, body, 403, 10, `"user_deleted"`)

	rec := s.post("/events/v1", "application/cloudevents-batch+json", `[
		{"specversion":"1.0","id":"b1","source":"billing","type":"invoice_due"},
		{"specversion":"1.0","id":"b2","source":"billing","type":"user_deleted"}]`,
		map[string]string{"Authorization": "Bearer " + key})
	if rec.Code != 403 || !strings.Contains(rec.Body.String(), `[1].type`) || !strings.Contains(rec.Body.String(), `user_deleted`) {
		t.Fatalf("a batch with a forbidden type = %d %s, want 403 naming [1].type user_deleted", rec.Code, rec.Body)
	}
	if n := len(s.starter.events); n != 1 {
		t.Fatalf("%d events started, want only evt-1: a refused batch must start none", n)
	}

	// Keys it makes: its types when they name none, never others.
	child := s.mustAs(key, 200, "POST", "/apikeys/v1", `{"name":"child","permissions":["CREATE_EVENTS"]}`)
	if fmt.Sprint(child["eventTypes"]) != "[invoice_due invoice_paid]" || child["createdBy"] != "apikey:"+created["id"].(string) {
		t.Fatalf("child = %v, want the parent's event types, created by the parent", child)
	}
	code, body = s.doAs(key, "POST", "/apikeys/v1", `{"name":"child","permissions":["CREATE_EVENTS"],"eventTypes":["invoice_paid","user_deleted"]}`)
	wantError(t, code, body, 403, 10, `"user_deleted"`)
	code, body = s.doAs(child["key"].(string), "POST", "/events/v1", `{"id":"evt-3","type":"user_deleted","content":{}}`)
	wantError(t, code, body, 403, 10, `"user_deleted"`)

	// Tokens and unrestricted keys send any type.
	open := s.mustAs(admin, 200, "POST", "/apikeys/v1", `{"name":"any","permissions":["CREATE_EVENTS"]}`)
	s.mustAs(open["key"].(string), 202, "POST", "/events/v1", `{"id":"evt-4","type":"user_deleted","content":{}}`)
	s.mustAs(admin, 202, "POST", "/events/v1", `{"id":"evt-5","type":"user_deleted","content":{}}`)

	// It revokes only keys it could have made. Before, a key held to one
	// type revoked every producer's key of its tenant.
	revoker := s.mustAs(admin, 200, "POST", "/apikeys/v1",
		`{"name":"revoker","permissions":["CREATE_EVENTS","DELETE_APIKEYS"],"eventTypes":["invoice_paid"]}`)["key"].(string)
	users := s.mustAs(admin, 200, "POST", "/apikeys/v1", `{"name":"users","permissions":["CREATE_EVENTS"],"eventTypes":["user_deleted"]}`)
	stronger := s.mustAs(admin, 200, "POST", "/apikeys/v1", `{"name":"stronger","permissions":["CREATE_EVENTS","VIEW_EXECUTIONS"],"eventTypes":["invoice_paid"]}`)
	for _, tc := range []struct {
		target  map[string]any
		mention string
	}{
		{open, "may send events of every type"},
		{users, `may send events of type "user_deleted"`},
		{stronger, "holds VIEW_EXECUTIONS"},
		{created, "holds CREATE_APIKEYS"},
	} {
		code, body = s.doAs(revoker, "DELETE", "/apikeys/v1/"+tc.target["id"].(string), "")
		wantError(t, code, body, 403, 10, tc.mention)
	}
	s.mustAs(users["key"].(string), 202, "POST", "/events/v1", `{"id":"evt-6","type":"user_deleted","content":{}}`)
	within := s.mustAs(admin, 200, "POST", "/apikeys/v1", `{"name":"within","permissions":["CREATE_EVENTS"],"eventTypes":["invoice_paid"]}`)
	s.mustAs(revoker, 200, "DELETE", "/apikeys/v1/"+within["id"].(string), "")
	code, body = s.doAs(within["key"].(string), "POST", "/events/v1", `{"id":"evt-7","type":"invoice_paid","content":{}}`)
	wantError(t, code, body, 401, 117, "revoked")
	s.mustAs(admin, 200, "DELETE", "/apikeys/v1/"+users["id"].(string), "") // a token of the tenant's admin revokes any
}

// TestAPIKeyEventTypesActOnTheirOwn: a key restricted to event types
// replays, cancels and releases only dispatches of those types, and bulk
// replays only a type of its own, named in the filter: a replay sends a
// dispatch's mails and calls its functions again. Before, it was held to
// its types only to send events.
func TestAPIKeyEventTypesActOnTheirOwn(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	admin := s.admin("")
	key := func(types string) string {
		return s.mustAs(admin, 200, "POST", "/apikeys/v1", `{"name":"k","permissions":["CREATE_EVENTS","VIEW_EXECUTIONS","REPLAY_EXECUTIONS","CANCEL_EXECUTIONS"],"eventTypes":`+types+`}`)["key"].(string)
	}
	billing, users := key(`["invoice_paid"]`), key(`["user_deleted"]`)
	const id = "dispatch-evt-1" // of type user_deleted
	s.execs.add("", id)
	for _, op := range []string{"replay", "cancel", "release"} {
		code, body := s.doAs(billing, "POST", "/executions/v1/"+id+"/"+op, "")
		wantError(t, code, body, 403, 10, `may not `+op+` events of type "user_deleted"`)
		code, body = s.doAs(users, "POST", "/executions/v1/"+id+"/"+op, "")
		if code >= 300 {
			t.Fatalf("%s by a key of the dispatch's type: %d %s", op, code, body)
		}
	}
	code, body := s.doAs(billing, "POST", "/executions/v1/dispatch-unknown/replay", "")
	wantError(t, code, body, 404, 16, "dispatch-unknown")
	// A run with no type attribute goes by its event's type.
	s.execs.add("", "dispatch-evt-untyped")
	s.mustAs(users, 202, "POST", "/executions/v1/dispatch-evt-untyped/replay", "")
	code, body = s.doAs(billing, "POST", "/executions/v1/dispatch-evt-untyped/replay", "")
	wantError(t, code, body, 403, 10, `"user_deleted"`)

	code, body = s.doAs(billing, "POST", "/executions/v1/replays", `{"status":"failed"}`)
	wantError(t, code, body, 403, 10, "eventType: this API key may not replay events of every type")
	code, body = s.doAs(billing, "POST", "/executions/v1/replays", `{"eventType":"user_deleted","dryRun":true}`)
	wantError(t, code, body, 403, 10, `"user_deleted"`)
	started := s.mustAs(billing, 202, "POST", "/executions/v1/replays", `{"eventType":"invoice_paid","status":"failed"}`)
	bulk := started["id"].(string)
	s.execs.addBulk("", "bulk-replay-0123456789abcdef01234567") // of every type
	for _, op := range []string{"pause", "resume", "cancel"} {
		code, body := s.doAs(billing, "POST", "/executions/v1/replays/bulk-replay-0123456789abcdef01234567/"+op, "")
		wantError(t, code, body, 403, 10, "id: this API key may not "+op+" a bulk replay of events of every type")
		s.mustAs(admin, 202, "POST", "/executions/v1/replays/bulk-replay-0123456789abcdef01234567/"+op, "")
		s.mustAs(billing, 202, "POST", "/executions/v1/replays/"+bulk+"/"+op, "")
	}
}

// TestAPIKeyWithAuthDisabled: with authentication off, a request without
// a key may do everything, but a key is still checked and acts as itself.
func TestAPIKeyWithAuthDisabled(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{Disabled: true})
	created := s.mustAs("", 200, "POST", "/apikeys/v1", `{"name":"k","permissions":["VIEW_DISPATCHERS"]}`)
	key := created["key"].(string)
	if created["createdBy"] != "anonymous" {
		t.Fatalf("createdBy = %v, want anonymous", created["createdBy"])
	}
	s.mustAs(key, 200, "GET", "/dispatchers/v1", "")
	code, body := s.doAs(key, "GET", "/templates/v1", "")
	wantError(t, code, body, 403, 10, PermViewTemplates)
	s.mustAs("", 200, "DELETE", "/apikeys/v1/"+created["id"].(string), "")
	code, body = s.doAs(key, "GET", "/dispatchers/v1", "")
	wantError(t, code, body, 401, 117, "revoked")
	s.mustAs("not-a-key", 200, "GET", "/templates/v1", "")
}

// TestAuthDisabledAnswersOnlyLocalRequests: an API without authentication
// listens on loopback only, and still must not answer a web page of
// another origin (a form's POST needs no preflight) nor a request under
// an attacker's name that resolves to 127.0.0.1 (DNS rebinding).
func TestAuthDisabledAnswersOnlyLocalRequests(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{Disabled: true})
	for _, tt := range []struct {
		name, host, origin string
		want               int
	}{
		{"curl on loopback", "127.0.0.1:8080", "", 200},
		{"the console, same origin", "localhost:8080", "http://localhost:8080", 200},
		{"IPv6 loopback", "[::1]:8080", "", 200},
		{"a page of another origin", "127.0.0.1:8080", "https://evil.example", 403},
		{"a page of another port", "127.0.0.1:8080", "http://127.0.0.1:3000", 403},
		{"an attacker's name for 127.0.0.1", "evil.example:8080", "http://evil.example:8080", 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/apikeys/v1", strings.NewReader(`{"name":"k","permissions":["VIEW_DISPATCHERS"]}`))
			req.Host = tt.host
			req.Header.Set("Content-Type", "text/plain") // what a form may send without a preflight
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			rec := httptest.NewRecorder()
			s.engine.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("answered %d %s, want %d", rec.Code, rec.Body, tt.want)
			}
		})
	}
}

// TestAPIKeyChildExpiry: a key that expires makes none that outlives it.
// Before, a contractor's key valid for an hour could make itself a key
// that never expired.
func TestAPIKeyChildExpiry(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	expires := s.clock.Now().Add(time.Hour).UTC()
	parent := s.mustAs(s.admin(""), 200, "POST", "/apikeys/v1",
		fmt.Sprintf(`{"name":"contractor","permissions":["CREATE_APIKEYS","VIEW_DISPATCHERS"],"expiresAt":%q}`, expires.Format(time.RFC3339Nano)))["key"].(string)

	child := s.mustAs(parent, 200, "POST", "/apikeys/v1", `{"name":"child","permissions":["VIEW_DISPATCHERS"]}`)
	if child["expiresAt"] != float64(expires.UnixMilli()) {
		t.Fatalf("a key made without an expiry by a key that expires: expiresAt %v, want the parent's %d", child["expiresAt"], expires.UnixMilli())
	}
	later := expires.Add(time.Hour).Format(time.RFC3339Nano)
	code, body := s.doAs(parent, "POST", "/apikeys/v1", fmt.Sprintf(`{"name":"late","permissions":["VIEW_DISPATCHERS"],"expiresAt":%q}`, later))
	wantError(t, code, body, 403, 10, "expiresAt")

	s.clock.Advance(time.Hour)
	code, body = s.doAs(child["key"].(string), "GET", "/dispatchers/v1", "")
	wantError(t, code, body, 401, 118, "expired")
	// A token's expiry does not bound the keys it makes: that is what
	// an operator signed in for an hour makes keys for.
	open := s.mustAs(s.admin(""), 200, "POST", "/apikeys/v1", `{"name":"service","permissions":["VIEW_DISPATCHERS"]}`)
	if open["expiresAt"] != nil {
		t.Fatalf("a key made with a token expires: %v", open["expiresAt"])
	}
}

// TestAPIKeyMaxTTL: with DISPATCHER_APIKEY_MAX_TTL every key expires
// within it: one asked for without expiresAt gets it, one asked for later
// is refused naming expiresAt. Before, a key made with a token signed for
// an hour lived until revoked, whatever the deployment wanted.
func TestAPIKeyMaxTTL(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{}, func(c *Config) { c.APIKeyMaxTTL = 90 * 24 * time.Hour })
	by := s.clock.Now().Add(90 * 24 * time.Hour)
	open := s.mustAs(s.admin(""), 200, "POST", "/apikeys/v1", `{"name":"service","permissions":["VIEW_DISPATCHERS"]}`)
	if open["expiresAt"] != float64(by.UnixMilli()) {
		t.Fatalf("a key asked for without an expiry: expiresAt %v, want %d", open["expiresAt"], by.UnixMilli())
	}
	within := by.Add(-time.Hour).Format(time.RFC3339Nano)
	s.mustAs(s.admin(""), 200, "POST", "/apikeys/v1", fmt.Sprintf(`{"name":"soon","permissions":["VIEW_DISPATCHERS"],"expiresAt":%q}`, within))
	later := by.Add(time.Hour).Format(time.RFC3339Nano)
	code, body := s.doAs(s.admin(""), "POST", "/apikeys/v1", fmt.Sprintf(`{"name":"late","permissions":["VIEW_DISPATCHERS"],"expiresAt":%q}`, later))
	wantError(t, code, body, 400, 15, "expiresAt: keys here expire within 2160h0m0s")
}

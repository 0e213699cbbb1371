package api

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"
)

// TestMe: GET /auth/v1/me shows a token's or an API key's subject,
// tenant and permissions, whatever they are, and nothing to a caller
// without a valid one.
func TestMe(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	tok := s.jwtFor("acme", "ann", []string{PermViewExecutions, PermReplayExecutions}, s.clock.Now().Add(time.Hour))
	me := s.mustAs(tok, 200, "GET", "/auth/v1/me", "")
	if me["subject"] != "ann" || me["tenant"] != "acme" || me["kind"] != "token" ||
		fmt.Sprint(me["permissions"]) != "[REPLAY_EXECUTIONS VIEW_EXECUTIONS]" || me["eventTypes"] != nil {
		t.Errorf("a token's me = %v", me)
	}
	if _, named := me["name"]; named {
		t.Errorf("a token's me has a name: %v", me)
	}

	created := s.mustAs(s.admin("acme"), 200, "POST", "/apikeys/v1", `{"name":"producer","permissions":["CREATE_EVENTS"],"eventTypes":["user_deleted"]}`)
	me = s.mustAs(created["key"].(string), 200, "GET", "/auth/v1/me", "")
	if me["subject"] != "apikey:"+created["id"].(string) || me["name"] != "producer" || me["tenant"] != "acme" || me["kind"] != "apikey" ||
		fmt.Sprint(me["permissions"]) != "[CREATE_EVENTS]" || fmt.Sprint(me["eventTypes"]) != "[user_deleted]" {
		t.Errorf("an API key's me = %v", me)
	}

	none := s.jwtFor("", "bob", []string{}, s.clock.Now().Add(time.Hour))
	if me = s.mustAs(none, 200, "GET", "/auth/v1/me", ""); fmt.Sprint(me["permissions"]) != "[]" || me["tenant"] != nil {
		t.Errorf("a token without permissions: me = %v, want an empty list and no tenant", me)
	}
	code, body := s.doAs("", "GET", "/auth/v1/me", "")
	wantError(t, code, body, 401, 104, "bearer token")
}

// TestAnswersAreNotStored: the API's answers, which hold configuration
// and events' content, are kept by no browser or proxy, nor sniffed; the
// console's files are revalidated on each load instead.
func TestAnswersAreNotStored(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	for path, want := range map[string]string{"/dispatchers/v1": "no-store", "/auth/v1/me": "no-store", "/health": "no-store", "/console/": "no-cache"} {
		req := httptest.NewRequest("GET", path, nil)
		req.Host = "localhost"
		req.Header.Set("Authorization", "Bearer "+s.admin(""))
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, req)
		if got := rec.Header().Get("Cache-Control"); got != want || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s (%d): Cache-Control %q, X-Content-Type-Options %q; want %q, nosniff", path, rec.Code, got, rec.Header().Get("X-Content-Type-Options"), want)
		}
	}
}

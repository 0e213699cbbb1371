package main

import (
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Tenants on the real binary: the same names and the same event id in two
// tenants are two configurations and two dispatches, each tenant's event
// runs its own dispatchers only, and neither can read, replay or cancel
// the other's dispatches or configuration (404, as for what does not
// exist).
func TestEndToEndTenants(t *testing.T) {
	s := startSystem(t)
	admin := s.token
	as := func(tenant string) string {
		return strings.TrimSpace(s.run("token", "--admin", "--subject", "ops-"+tenant, "--tenant", tenant))
	}
	tokens := map[string]string{"acme": as("acme"), "globex": as("globex")}
	sinks := map[string]*functionSink{}
	dispatchers := map[string]string{}
	for tenant, tok := range tokens {
		s.token = tok
		sinks[tenant] = &functionSink{}
		srv := httptest.NewServer(sinks[tenant])
		t.Cleanup(srv.Close)
		// The same names in both tenants.
		s.call("POST", "/functions/v1", map[string]any{"name": "erase", "url": srv.URL + "/erase"}, 200)
		dispatchers[tenant] = s.call("POST", "/dispatchers/v1", map[string]any{"name": "gdpr", "eventType": "user_deleted",
			"actions": []any{map[string]any{"type": "task", "name": "erase", "functionName": "erase"}}}, 200)["id"].(string)
	}

	ev := map[string]any{"id": "evt-1", "type": "user_deleted", "content": map[string]any{"userId": 42}}
	ids := map[string]string{}
	for tenant, tok := range tokens {
		s.token = tok
		acc := s.call("POST", "/events/v1", ev, 202)
		if acc["duplicate"] != false || acc["workflowId"] != tenant+":dispatch-evt-1" {
			t.Fatalf("%s: accepted = %v, want a dispatch of its own", tenant, acc)
		}
		ids[tenant] = acc["workflowId"].(string)
		if res, failed := s.result(ids[tenant], acc["runId"].(string)); failed || len(res.Outcomes) != 1 {
			t.Fatalf("%s: dispatch failed=%v outcomes=%+v", tenant, failed, res.Outcomes)
		}
	}
	for tenant, sink := range sinks {
		if n := sink.count(); n != 1 {
			t.Errorf("%s's function was called %d times, want once: by its own event only", tenant, n)
		}
	}
	// The implicit tenant has no dispatchers: its event of the same id
	// runs nothing of theirs.
	s.token = admin
	if acc := s.call("POST", "/events/v1", ev, 202); acc["workflowId"] != "dispatch-evt-1" || acc["duplicate"] != false {
		t.Fatalf("the implicit tenant's event: %v", acc)
	}

	// globex cannot reach acme's.
	s.token = tokens["globex"]
	acme := url.PathEscape(ids["acme"])
	s.call("GET", "/executions/v1/"+acme, nil, 404)
	s.call("GET", "/executions/v1/"+acme+"/history", nil, 404)
	s.call("POST", "/executions/v1/"+acme+"/replay", map[string]any{"actions": []string{"x"}}, 404)
	s.call("POST", "/executions/v1/"+acme+"/cancel", nil, 404)
	s.call("GET", "/dispatchers/v1/"+dispatchers["acme"], nil, 404)
	s.call("DELETE", "/dispatchers/v1/"+dispatchers["acme"], nil, 404)
	s.call("POST", "/executions/v1/"+acme+"/release", nil, 404)
	s.poll("globex's listing to show its dispatch", func() bool {
		return slices.Equal(s.listIDs("eventId=evt-1"), []string{ids["globex"]})
	})
	// A bulk replay of globex's matches its own dispatch only, not acme's
	// (completed ones, with an action named: without, only those that
	// skipped a dispatcher).
	if dry := s.call("POST", "/executions/v1/replays", map[string]any{"status": "completed", "eventId": "evt-1", "actions": []string{"0123456789abcdef01234567"}, "dryRun": true}, 200); dry["matched"] != 1.0 {
		t.Fatalf("globex's dry run matched %v, want its own dispatch only", dry)
	}
	s.token = tokens["acme"]
	bulk := s.call("POST", "/executions/v1/replays", map[string]any{"status": "completed", "eventId": "evt-1", "actions": []string{"0123456789abcdef01234567"}, "dryRun": true}, 200)
	if bulk["matched"] != 1.0 {
		t.Fatalf("acme's dry run matched %v, want its own dispatch only", bulk)
	}
	s.token = tokens["globex"]
	s.token = tokens["acme"]
	if d := s.call("GET", "/executions/v1/"+acme, nil, 200); d["workflowId"] != ids["acme"] {
		t.Fatalf("acme's own dispatch: %v", d)
	}
	// Named without its tenant, it is the caller's tenant's. Before, a
	// 404: the implicit tenant's, which no tenant's token sees.
	if d := s.call("GET", "/executions/v1/dispatch-evt-1", nil, 200); d["workflowId"] != ids["acme"] {
		t.Fatalf("acme's own dispatch, named without its tenant: %v", d)
	}
	// So is a bulk replay (of an action acme's dispatcher has: one of
	// none replays nothing, and starts nothing). Before, a 404.
	action := s.call("GET", "/dispatchers/v1/"+dispatchers["acme"], nil, 200)["actions"].([]any)[0].(map[string]any)["id"].(string)
	started := s.call("POST", "/executions/v1/replays", map[string]any{"status": "completed", "eventId": "evt-1", "actions": []string{action}}, 202)
	bulkID := started["id"].(string)
	_, bare, _ := strings.Cut(bulkID, ":")
	if !strings.HasPrefix(bulkID, "acme:") || s.call("GET", "/executions/v1/replays/"+bare, nil, 200)["id"] != bulkID {
		t.Fatalf("acme's bulk replay %s, named without its tenant as %s", bulkID, bare)
	}
	// Support staff name the event by its id, whatever their tenant: the
	// CLI finds the tenant's dispatch of it.
	if out := s.cli("executions", "show", "evt-1"); !strings.Contains(out, ids["acme"]) {
		t.Errorf("acme's `executions show evt-1` does not show %s:\n%s", ids["acme"], out)
	}
	s.token = admin
	s.poll("the implicit tenant's listing to show its dispatch only", func() bool {
		return slices.Equal(s.listIDs("eventId=evt-1"), []string{"dispatch-evt-1"})
	})
}

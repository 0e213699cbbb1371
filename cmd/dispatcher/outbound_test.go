package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestOutboundSettings: no task queue is open to temporal functions until
// set, and never the dispatcher's own, whose workers fail the function's
// workflow (before, it was the default: a dispatch of such a function
// waited for good); a malformed allow entry stops the process, naming the
// setting and the entry.
func TestOutboundSettings(t *testing.T) {
	cfg := configFrom(t, map[string]string{"DISPATCHER_TASK_QUEUE": "dispatch-eu"})
	if q := cfg.Outbound.TaskQueues(); len(q) != 0 {
		t.Errorf("default task queues = %v, want none", q)
	}
	if _, err := loadConfig(func(k string) string {
		return map[string]string{"DISPATCHER_TASK_QUEUE": "dispatch-eu", "DISPATCHER_FUNCTION_TASK_QUEUES": "jobs,dispatch-eu"}[k]
	}); err == nil || !strings.Contains(err.Error(), `"dispatch-eu" is one of the dispatcher's own task queues`) {
		t.Errorf("the dispatcher's own queue for functions: %v, want it refused", err)
	}
	if _, err := loadConfig(func(k string) string {
		return map[string]string{"DISPATCHER_TASK_QUEUE": "dispatch-eu", "DISPATCHER_FUNCTION_TASK_QUEUES": "acme=dispatch-eu"}[k]
	}); err == nil || !strings.Contains(err.Error(), `"dispatch-eu" is one of the dispatcher's own task queues`) {
		t.Errorf("the dispatcher's own queue for one tenant's functions: %v, want it refused", err)
	}
	// Nor its bulk replays': before, accepted (security probe).
	if _, err := loadConfig(func(k string) string {
		return map[string]string{"DISPATCHER_TASK_QUEUE": "dispatch-eu", "DISPATCHER_FUNCTION_TASK_QUEUES": "dispatch-eu-replays"}[k]
	}); err == nil || !strings.Contains(err.Error(), `"dispatch-eu-replays" is one of the dispatcher's own task queues`) {
		t.Errorf("the bulk replays' queue for functions: %v, want it refused", err)
	}
	cfg = configFrom(t, map[string]string{"DISPATCHER_FUNCTION_TASK_QUEUES": " pii, billing ,", "DISPATCHER_OUTBOUND_ALLOW": "10.0.0.0/8, billing.internal:8443"})
	if q := cfg.Outbound.TaskQueues(); strings.Join(q, ",") != "pii,billing" {
		t.Errorf("task queues = %q", q)
	}
	if !cfg.Outbound.AllowsHostPort("billing.internal", "8443") {
		t.Error("billing.internal:8443 is not allowed")
	}
	_, err := loadConfig(func(k string) string {
		return map[string]string{"DISPATCHER_OUTBOUND_ALLOW": "10.0.0.0/8,10.1.2.3/40"}[k]
	})
	if err == nil || !strings.Contains(err.Error(), "DISPATCHER_OUTBOUND_ALLOW") || !strings.Contains(err.Error(), "10.1.2.3/40") {
		t.Fatalf("err = %v, want one naming DISPATCHER_OUTBOUND_ALLOW and the entry", err)
	}
}

// TestEndToEndOutboundSafety runs the real binary: a function aimed at the
// metadata address, or at a task queue not configured, is refused when
// saved; one that redirects there fails as OutboundRefused; and what
// support sees of a failed call (the executions API, the logs) holds its
// status and a reason, never the answer's body nor the URL's token.
func TestEndToEndOutboundSafety(t *testing.T) {
	s := startSystem(t) // DISPATCHER_OUTBOUND_ALLOW=127.0.0.0/8: the sinks run on loopback

	res := s.call("POST", "/functions/v1", map[string]any{"name": "meta", "url": "http://169.254.169.254/latest/meta-data/"}, 400)
	if msg := res["message"].(string); !strings.HasPrefix(msg, "url: host 169.254.169.254 is a cloud metadata address") ||
		!strings.Contains(msg, "DISPATCHER_OUTBOUND_ALLOW") {
		t.Errorf("metadata URL: %v", res)
	}
	res = s.call("POST", "/functions/v1", map[string]any{"name": "Refund", "kind": "temporal", "taskQueue": "payments"}, 400)
	if msg := res["message"].(string); !strings.HasPrefix(msg, `taskQueue: no task queue is open to temporal functions; set DISPATCHER_FUNCTION_TASK_QUEUES`) {
		t.Errorf("task queue: %v", res)
	}

	const body = "AccessKeyId=AKIAIOSFODNN7EXAMPLE"
	leaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(leaky.Close)
	redirecting := httptest.NewServer(http.RedirectHandler("http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect))
	t.Cleanup(redirecting.Close)
	s.call("POST", "/functions/v1", map[string]any{"name": "leaky", "url": leaky.URL + "/hook?token=s3cr3t"}, 200)
	s.call("POST", "/functions/v1", map[string]any{"name": "redirecting", "url": redirecting.URL + "/hook?token=s3cr3t"}, 200)
	s.call("POST", "/dispatchers/v1", map[string]any{"name": "outbound", "eventType": "outbound", "actions": []any{
		map[string]any{"type": "task", "name": "leaky", "functionName": "leaky"},
		map[string]any{"type": "task", "name": "redirecting", "functionName": "redirecting"},
	}}, 200)
	acc := s.call("POST", "/events/v1", map[string]any{"id": "outbound-1", "type": "outbound"}, 202)
	if _, failed := s.result(acc["workflowId"].(string), acc["runId"].(string)); !failed {
		t.Fatal("the dispatch did not fail")
	}

	x := s.call("GET", "/executions/v1/"+acc["workflowId"].(string), nil, 200)
	want := map[string][2]string{
		"leaky":       {"HTTPPermanent", `function "leaky" answered 403 Forbidden (the function refused the call's credentials)`},
		"redirecting": {"OutboundRefused", "refused a redirect from " + redirecting.URL + " to http://169.254.169.254: another host"},
	}
	for _, a := range x["actions"].([]any) {
		a := a.(map[string]any)
		last, _ := a["lastError"].(map[string]any)
		w := want[a["actionName"].(string)]
		if last == nil || last["class"] != w[0] || !strings.Contains(last["message"].(string), w[1]) || a["attempts"] != 1.0 {
			t.Errorf("action %v: want class %s, one attempt and a message with %q", a, w[0], w[1])
		}
		if msg, _ := last["message"].(string); strings.Contains(msg, "AKIA") || strings.Contains(msg, "s3cr3t") {
			t.Errorf("the failure message shows the answer or the token: %q", msg)
		}
	}
	if logs := s.logs.String(); strings.Contains(logs, "AKIA") || strings.Contains(logs, "s3cr3t") {
		t.Errorf("the logs show the answer or the token:\n%s", logs)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// idempotentFunction is a task function behind an idempotency layer, as
// careful receivers have: a request whose Idempotency-Key is in flight is
// answered 409; one whose key completed gets its answer again. It counts
// what it does, and each call takes as long as hold lets it.
type idempotentFunction struct {
	hold func(key string) // blocks while the call is "working"

	mu        sync.Mutex
	inFlight  map[string]bool
	applied   map[string]int // effects by key
	conflicts int            // 409s answered
	received  chan string    // each key when its call starts working
}

func newIdempotentFunction(hold func(key string)) *idempotentFunction {
	return &idempotentFunction{hold: hold, inFlight: map[string]bool{}, applied: map[string]int{}, received: make(chan string, 100)}
}

func (f *idempotentFunction) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	switch {
	case f.inFlight[key]:
		f.conflicts++
		f.mu.Unlock()
		http.Error(w, "a request with this key is in progress", http.StatusConflict)
		return
	case f.applied[key] > 0:
		f.mu.Unlock()
		return // the stored answer: 200
	}
	f.inFlight[key] = true
	f.mu.Unlock()
	f.received <- key
	f.hold(key)
	f.mu.Lock()
	delete(f.inFlight, key)
	f.applied[key]++
	f.mu.Unlock()
}

func (f *idempotentFunction) counts() (applied map[string]int, conflicts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, n := range f.applied {
		out[k] = n
	}
	return out, f.conflicts
}

// dispatchOne configures a dispatcher of eventType with one task action
// calling the function h, sends one event and returns its workflow ID.
func (s *system) dispatchOne(h http.Handler, name, eventType, eventID string) string {
	s.t.Helper()
	srv := httptest.NewServer(h)
	s.t.Cleanup(srv.Close)
	s.call("POST", "/functions/v1", map[string]any{"name": name, "url": srv.URL, "timeoutSeconds": 10}, 200)
	s.call("POST", "/dispatchers/v1", map[string]any{"eventType": eventType,
		"actions": []any{map[string]any{"type": "task", "name": name, "functionName": name}}}, 200)
	return s.call("POST", "/events/v1", map[string]any{"id": eventID, "type": eventType, "content": map[string]any{}}, 202)["workflowId"].(string)
}

// TestEndToEndExactlyOnce: the promise under slowness and cancels, on the
// real binary, with the first attempt's local budget (1 s) shorter than
// the calls.
func TestEndToEndExactlyOnce(t *testing.T) {
	s := startSystem(t, withEnv("DISPATCHER_LOCAL_ATTEMPT_TIMEOUT=1s"))

	t.Run("a function slower than the local budget is called once", func(t *testing.T) {
		// Before: the first attempt was cut off at the budget and the
		// retry sent at once, overlapping it; the receiver's 409 failed
		// the action for good although its effect happened.
		slow := newIdempotentFunction(func(string) { time.Sleep(2 * time.Second) })
		wid := s.dispatchOne(slow, "slow", "slow_event", "slow-1")
		res, failed := s.result(wid, "")
		applied, conflicts := slow.counts()
		if failed || len(res.Outcomes) != 1 || res.Outcomes[0].Status != "succeeded" || res.Outcomes[0].Attempts != 1 {
			t.Fatalf("outcomes = %+v (failed %v)", res.Outcomes, failed)
		}
		if len(applied) != 1 || conflicts != 0 {
			t.Fatalf("the function applied %v and answered %d conflicts; want one call", applied, conflicts)
		}
	})

	t.Run("a cancel waits for the call in flight, which then counts", func(t *testing.T) {
		// Before, the dispatch ended at once with the action "canceled"
		// while its call went on to complete, and a replay sent it again.
		release := make(chan struct{})
		blocked := newIdempotentFunction(func(string) { <-release })
		wid := s.dispatchOne(blocked, "blocked", "blocked_event", "blocked-1")
		<-blocked.received
		s.call("POST", "/executions/v1/"+wid+"/cancel", nil, 202)
		// The call is still being served: the dispatch waits for it.
		// Before, it ended canceled at once, the call completing unseen.
		if x := s.call("GET", "/executions/v1/"+wid, nil, 200); x["status"] != "running" {
			t.Fatalf("the canceled dispatch closed while its call ran: %v", x["status"])
		}
		close(release)
		s.poll("the dispatch to close", func() bool {
			return s.call("GET", "/executions/v1/"+wid, nil, 200)["status"] != "running"
		})
		// Every action took effect, so the dispatch completed: the cancel
		// came too late to stop anything (the audit trail keeps it).
		x := s.call("GET", "/executions/v1/"+wid, nil, 200)
		actions := x["actions"].([]any)
		if x["status"] != "completed" || len(actions) != 1 || actions[0].(map[string]any)["status"] != "succeeded" {
			t.Fatalf("after the cancel: status %v, actions %v; want the action succeeded", x["status"], actions)
		}
		if audit := x["audit"].([]any); len(audit) != 1 || audit[0].(map[string]any)["operation"] != "cancel" {
			t.Fatalf("audit = %v, want the cancel", audit)
		}
		// Nothing failed, so a default replay has nothing to send again.
		if msg := s.call("POST", "/executions/v1/"+wid+"/replay", nil, 409)["message"].(string); !strings.Contains(msg, "no action failed") {
			t.Fatalf("replay after the cancel: %s", msg)
		}
		if applied, _ := blocked.counts(); len(applied) != 1 {
			t.Fatalf("the function applied %v, want once", applied)
		}
	})

	t.Run("an Idempotency-Key gets the same replay", func(t *testing.T) {
		f := newIdempotentFunction(func(string) {})
		wid := s.dispatchOne(f, "keyed", "keyed_event", "keyed-1")
		s.result(wid, "")
		actionID := s.call("GET", "/executions/v1/"+wid, nil, 200)["actions"].([]any)[0].(map[string]any)["actionId"].(string)
		replay := func(key string, want int, config ...string) map[string]any {
			t.Helper()
			body, _ := json.Marshal(map[string]any{"actions": []string{actionID}, "config": strings.Join(config, "")})
			req, _ := http.NewRequest("POST", s.url+"/executions/v1/"+wid+"/replay", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+s.token)
			req.Header.Set("Idempotency-Key", key)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			raw, _ := io.ReadAll(res.Body)
			if res.StatusCode != want {
				t.Fatalf("replay with key %q = %d %s, want %d", key, res.StatusCode, raw, want)
			}
			var out map[string]any
			_ = json.Unmarshal(raw, &out)
			return out
		}
		first := replay("k-1", 202)
		again := replay("k-1", 202)
		if again["runId"] != first["runId"] || again["alreadyStarted"] != true {
			t.Fatalf("the same key again = %v, want the first replay %v", again, first["runId"])
		}
		s.result(wid, first["runId"].(string))
		// Once that replay is done, the key still answers with it.
		if later := replay("k-1", 202); later["runId"] != first["runId"] {
			t.Fatalf("the key after the replay ended = %v, want %v", later["runId"], first["runId"])
		}
		if bad := replay(strings.Repeat("k", 300), 400); !strings.Contains(bad["message"].(string), "Idempotency-Key") {
			t.Fatalf("an overlong key: %v", bad)
		}
		// The key of another request: refused, not answered as if it had
		// started what it asks.
		if other := replay("k-1", 400, "current"); !strings.Contains(other["message"].(string), "Idempotency-Key: already used") {
			t.Fatalf("another request under the key: %v", other)
		}
		if applied, _ := f.counts(); len(applied) != 2 {
			t.Fatalf("the function applied %v; want the dispatch and one replay", applied)
		}
	})

	t.Run("CloudEvents from two sources with one id are two events", func(t *testing.T) {
		// Before, the second was dropped as a duplicate of the first.
		f := newIdempotentFunction(func(string) {})
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		s.call("POST", "/functions/v1", map[string]any{"name": "ce", "url": srv.URL}, 200)
		s.call("POST", "/dispatchers/v1", map[string]any{"eventType": "ce_event",
			"actions": []any{map[string]any{"type": "task", "functionName": "ce"}}}, 200)
		send := func(source string) map[string]any {
			t.Helper()
			body, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": "same-id", "source": source, "type": "ce_event", "data": map[string]any{}})
			req, _ := http.NewRequest("POST", s.url+"/events/v1", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+s.token)
			req.Header.Set("Content-Type", "application/cloudevents+json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var out map[string]any
			if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 202 {
				t.Fatalf("CloudEvent from %s: %d %v %v", source, res.StatusCode, out, err)
			}
			return out
		}
		a, b := send("/billing"), send("/crm")
		if a["duplicate"] != false || b["duplicate"] != false || a["workflowId"] == b["workflowId"] {
			t.Fatalf("two sources, one id: %v and %v; want two dispatches", a, b)
		}
		if again := send("/crm"); again["duplicate"] != true || again["workflowId"] != b["workflowId"] {
			t.Fatalf("the same source and id again: %v, want a duplicate of %v", again, b["workflowId"])
		}
		s.result(a["workflowId"].(string), "")
		s.result(b["workflowId"].(string), "")
		if applied, _ := f.counts(); len(applied) != 2 {
			t.Fatalf("the function applied %v, want two events", applied)
		}
		ids := s.listIDs("eventId=same-id")
		if len(ids) != 2 {
			t.Fatalf("listing by the event id finds %v, want both dispatches", ids)
		}
	})
}

// TestEndToEndOrderedTerminatedReplayKeepsKeys: an ordered dispatch loads
// its configuration in its first workflow task, where its first attempts
// run too. Terminated from the Temporal CLI while that task makes a call,
// it recorded neither; replayed with the current configuration (what the
// API asks for a run without one), the call goes again under the key it
// had, which the receiver recognises. Before, it went under a new key:
// made twice (operator probe).
func TestEndToEndOrderedTerminatedReplayKeepsKeys(t *testing.T) {
	s := startSystem(t)
	release := make(chan struct{})
	f := newIdempotentFunction(func(string) { <-release })
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	s.call("POST", "/functions/v1", map[string]any{"name": "ordered", "url": srv.URL, "timeoutSeconds": 20}, 200)
	s.call("POST", "/dispatchers/v1", map[string]any{"eventType": "ordered_event", "ordering": map[string]any{"key": "content.userId"},
		"actions": []any{map[string]any{"type": "task", "name": "ordered", "functionName": "ordered"}}}, 200)
	acc := s.call("POST", "/events/v1", map[string]any{"id": "ordered-1", "type": "ordered_event", "content": map[string]any{"userId": "u1"}}, 202)
	wid := acc["workflowId"].(string)
	first := <-f.received
	if err := s.temporal.TerminateWorkflow(context.Background(), wid, "", "an operator, from the CLI"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if x := s.call("GET", "/executions/v1/"+wid, nil, 200); x["config"] != nil {
		t.Fatalf("the first task completed before the terminate (config %v): the test needs it lost", x["config"])
	}
	res := s.call("POST", "/executions/v1/"+wid+"/replay", map[string]any{"config": "current"}, 202)
	if _, failed := s.result(wid, res["runId"].(string)); failed {
		t.Fatal("the replay failed")
	}
	applied, _ := f.counts()
	if len(applied) != 1 || applied[first] != 1 {
		t.Fatalf("the function applied %v; want the one call under its first key %s", applied, first)
	}
}

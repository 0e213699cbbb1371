package main

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher"
)

// sinks registers a function per name, each a functionSink on loopback.
func (s *system) sinks(names ...string) map[string]*functionSink {
	s.t.Helper()
	out := map[string]*functionSink{}
	for _, name := range names {
		f := &functionSink{}
		srv := httptest.NewServer(f)
		s.t.Cleanup(srv.Close)
		s.call("POST", "/functions/v1", map[string]any{"name": name, "url": srv.URL}, 200)
		out[name] = f
	}
	return out
}

// outcomesByDispatcher returns the action outcomes of a dispatch's detail
// by the name of their dispatcher (one action each).
func outcomesByDispatcher(x map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, a := range x["actions"].([]any) {
		o := a.(map[string]any)
		out[fmt.Sprint(o["dispatcherName"])] = o
	}
	return out
}

// TestEndToEndFilters: a dispatcher whose filter is true for an event
// runs; one whose filter is false is skipped with the reason "filter";
// one whose filter fails for the event (a field it lacks) is skipped with
// "filter-error" and the error, and the dispatch still completes; a
// filter that does not compile is refused when it is saved, naming the
// field and the position.
func TestEndToEndFilters(t *testing.T) {
	s := startSystem(t)
	fns := s.sinks("big", "small", "vip")
	task := func(fn string) []any { return []any{map[string]any{"type": "task", "name": fn, "functionName": fn}} }
	for _, d := range []map[string]any{
		{"name": "big", "eventType": "order_paid", "filter": `event.content.amount > 100 && event.source == ""`, "actions": task("big")},
		{"name": "small", "eventType": "order_paid", "filter": "event.content.amount < 10", "actions": task("small")},
		{"name": "vip", "eventType": "order_paid", "filter": "event.content.customer.vip == true", "actions": task("vip")},
	} {
		if got := s.call("POST", "/dispatchers/v1", d, 200); got["filter"] != d["filter"] || got["enabled"] != true {
			t.Fatalf("created %v", got)
		}
	}
	bad := s.call("POST", "/dispatchers/v1", map[string]any{"name": "bad", "eventType": "order_paid", "filter": "event.content.amount >> 3"}, 400)
	if msg := fmt.Sprint(bad["message"]); !strings.HasPrefix(msg, "filter: line 1, column 23: Syntax error") {
		t.Fatalf("a filter that does not compile: %v", bad)
	}

	acc := s.call("POST", "/events/v1", map[string]any{"id": "order-1", "type": "order_paid", "content": map[string]any{"amount": 150}}, 202)
	wid := acc["workflowId"].(string)
	res, failed := s.result(wid, acc["runId"].(string))
	if failed {
		t.Fatalf("a dispatch whose filters skipped dispatchers failed: %+v", res.Outcomes)
	}
	if fns["big"].count() != 1 || fns["small"].count() != 0 || fns["vip"].count() != 0 {
		t.Fatalf("calls: big %d, small %d, vip %d; want 1, 0, 0", fns["big"].count(), fns["small"].count(), fns["vip"].count())
	}

	x := s.call("GET", "/executions/v1/"+wid, nil, 200)
	o := outcomesByDispatcher(x)
	if o["big"]["status"] != dispatcher.OutcomeSucceeded {
		t.Errorf("the matching dispatcher: %v", o["big"])
	}
	if o["small"]["status"] != dispatcher.OutcomeSkipped || o["small"]["skipReason"] != dispatcher.SkipFilter || o["small"]["lastError"] != nil {
		t.Errorf("the dispatcher whose filter is false: %v", o["small"])
	}
	if v := o["vip"]; v["status"] != dispatcher.OutcomeSkipped || v["skipReason"] != dispatcher.SkipFilterError ||
		!strings.Contains(fmt.Sprint(v["skipDetail"]), "no such key: customer") {
		t.Errorf("the dispatcher whose filter failed: %v", v)
	}
	skipped := x["config"].(map[string]any)["skipped"].([]any)
	if len(skipped) != 2 || x["status"] != "completed" || x["skipReason"] != dispatcher.SkipFilterError {
		t.Fatalf("detail: status %v, skipReason %v, skipped %v", x["status"], x["skipReason"], skipped)
	}
	// The most actionable reason finds it; the other does not.
	s.poll("the dispatch listed by skip reason", func() bool { return strings.Join(s.listIDs("skipReason=filter-error"), ",") == wid })
	if ids := s.listIDs("skipReason=filter"); len(ids) != 0 {
		t.Fatalf("skipReason=filter lists %v", ids)
	}
	if out := s.cli("executions", "list", "--skip-reason", "filter-error"); !strings.Contains(out, wid) {
		t.Fatalf("executions list --skip-reason:\n%s", out)
	}
	if out := s.cli("executions", "show", wid); !strings.Contains(out, "skipped (filter-error): filter: no such key: customer") {
		t.Fatalf("executions show:\n%s", out)
	}

	// A filter changed later decides for later events only: the recorded
	// dispatch keeps what it decided.
	smallID := fmt.Sprint(o["small"]["dispatcherId"])
	s.call("PUT", "/dispatchers/v1/"+smallID, map[string]any{"filter": "event.content.amount > 1"}, 200)
	acc = s.call("POST", "/events/v1", map[string]any{"id": "order-2", "type": "order_paid", "content": map[string]any{"amount": 150}}, 202)
	if _, failed := s.result(acc["workflowId"].(string), acc["runId"].(string)); failed || fns["small"].count() != 1 {
		t.Fatalf("after widening the filter: failed %v, small called %d times", failed, fns["small"].count())
	}
	if o := outcomesByDispatcher(s.call("GET", "/executions/v1/"+wid, nil, 200)); o["small"]["status"] != dispatcher.OutcomeSkipped {
		t.Fatalf("the first dispatch's record changed: %v", o["small"])
	}
}

// TestEndToEndPauseAndReplay: a paused dispatcher's events are recorded
// as skipped while the others run; once it is enabled again, a bulk
// replay by skipReason=paused dispatches them, and only them.
func TestEndToEndPauseAndReplay(t *testing.T) {
	s := startSystem(t)
	fns := s.sinks("notify", "audit")
	var pausedID string
	for _, name := range []string{"notify", "audit"} {
		d := s.call("POST", "/dispatchers/v1", map[string]any{"name": name, "eventType": "user_created",
			"actions": []any{map[string]any{"type": "task", "name": name, "functionName": name}}}, 200)
		if name == "notify" {
			pausedID = d["id"].(string)
		}
	}
	s.call("PUT", "/dispatchers/v1/"+pausedID, map[string]any{"enabled": false}, 200)
	if got := s.call("GET", "/dispatchers/v1?eq(enabled,false)", nil, 200)["data"].([]any); len(got) != 1 || got[0].(map[string]any)["id"] != pausedID {
		t.Fatalf("paused dispatchers: %v", got)
	}

	const n = 3
	var wids []string
	for i := range n {
		acc := s.call("POST", "/events/v1", map[string]any{"id": fmt.Sprintf("user-%d", i), "type": "user_created", "content": map[string]any{}}, 202)
		wid := acc["workflowId"].(string)
		if res, failed := s.result(wid, acc["runId"].(string)); failed {
			t.Fatalf("a dispatch that skipped a paused dispatcher failed: %+v", res.Outcomes)
		}
		wids = append(wids, wid)
	}
	if fns["notify"].count() != 0 || fns["audit"].count() != n {
		t.Fatalf("while paused: notify called %d times, audit %d; want 0, %d", fns["notify"].count(), fns["audit"].count(), n)
	}
	x := s.call("GET", "/executions/v1/"+wids[0], nil, 200)
	if o := outcomesByDispatcher(x)["notify"]; o["status"] != dispatcher.OutcomeSkipped || o["skipReason"] != dispatcher.SkipPaused {
		t.Fatalf("the paused dispatcher's outcome: %v", o)
	}
	dry := map[string]any{"skipReason": "paused", "dryRun": true}
	var got map[string]any
	s.poll("the paused dispatches in visibility", func() bool {
		got = s.call("POST", "/executions/v1/replays", dry, 200)
		return got["matched"] == float64(n)
	})
	// The dry run says what the bulk replay would do: skip them all.
	// Before, it counted them as to be replayed.
	if got["stillPaused"] != float64(n) || len(got["sample"].([]any)) != 0 {
		t.Fatalf("a dry run while the dispatcher is still paused: %v", got)
	}
	// Their skipped actions run again only with the current configuration.
	s.call("POST", "/executions/v1/replays", map[string]any{"skipReason": "paused", "config": "original"}, 400)
	if res := s.call("POST", "/executions/v1/"+wids[0]+"/replay", nil, 409); !strings.Contains(fmt.Sprint(res["message"]), `only with config "current"`) {
		t.Fatalf("a default replay of a paused dispatch: %v", res)
	}

	// Not while the dispatcher is still paused: each replay would skip
	// its actions again, and count as succeeded.
	if res := s.call("POST", "/executions/v1/replays", map[string]any{"skipReason": "paused", "dispatcherId": pausedID}, 409); !strings.Contains(fmt.Sprint(res["message"]), "is still paused") {
		t.Fatalf("a bulk replay of a dispatcher still paused: %v", res)
	}
	// A dry run of the same counts them, starting nothing.
	if got := s.call("POST", "/executions/v1/replays", map[string]any{"skipReason": "paused", "dispatcherId": pausedID, "dryRun": true}, 200); got["stillPaused"] != float64(n) {
		t.Fatalf("a dry run of a dispatcher still paused: %v", got)
	}

	s.call("PUT", "/dispatchers/v1/"+pausedID, map[string]any{"enabled": true}, 200)
	if got := s.call("POST", "/executions/v1/replays", dry, 200); got["stillPaused"] != float64(0) || len(got["sample"].([]any)) != n {
		t.Fatalf("a dry run once the dispatcher is resumed: %v", got)
	}
	b := s.call("POST", "/executions/v1/replays", map[string]any{"skipReason": "paused"}, 202)
	if b["config"] != "current" || b["filter"].(map[string]any)["skipReason"] != "paused" {
		t.Fatalf("bulk replay: %v", b)
	}
	id := b["id"].(string)
	var progress map[string]any
	s.poll("the bulk replay to finish", func() bool {
		got := s.call("GET", "/executions/v1/replays/"+id, nil, 200)
		progress = got["progress"].(map[string]any)
		return got["status"] == "completed"
	})
	if progress["replayed"] != float64(n) || progress["succeeded"] != float64(n) {
		t.Fatalf("bulk replay progress: %v", progress)
	}
	if fns["notify"].count() != n || fns["audit"].count() != n {
		t.Fatalf("after the replay: notify called %d times, audit %d; want %d each (audit had succeeded)", fns["notify"].count(), fns["audit"].count(), n)
	}
	for _, wid := range wids {
		x := s.call("GET", "/executions/v1/"+wid, nil, 200)
		o := outcomesByDispatcher(x)
		if x["status"] != "completed" || x["replay"] == nil || len(o) != 1 || o["notify"]["status"] != dispatcher.OutcomeSucceeded || x["skipReason"] != nil {
			t.Fatalf("the replay of %s: %v", wid, x)
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// cli runs a support command (executions, replay) against the system's
// API with its admin token, as support staff would.
func (s *system) cli(args ...string) string {
	s.t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(s.env, "DISPATCHER_URL="+s.url, "DISPATCHER_TOKEN="+s.token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("dispatcher %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// pollFor is poll with a deadline of its own, for waits longer than
// poll's.
func (s *system) pollFor(d time.Duration, what string, cond func() bool, detail ...*string) {
	s.t.Helper()
	testenv.Eventually(s.t, d, func() string {
		if cond() {
			return ""
		}
		var last string
		for _, d := range detail {
			last += *d
		}
		return fmt.Sprintf("waiting for %s %s\nlogs:\n%s", what, last, s.logs)
	})
}

// listIDs returns the workflow IDs GET /executions/v1?query lists.
func (s *system) listIDs(query string) []string {
	s.t.Helper()
	var ids []string
	for _, x := range s.call("GET", "/executions/v1?"+query, nil, 200)["data"].([]any) {
		ids = append(ids, x.(map[string]any)["workflowId"].(string))
	}
	return ids
}

func (f *functionSink) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, h := range f.headers {
		out = append(out, h.Get("Idempotency-Key"))
	}
	return out
}

// TestEndToEndPartialReplay: support replays one of two failed actions
// from the CLI; the replay's run carries the other, failed still, so the
// dispatch stays among the failed ones (hidden replayed runs and all)
// and `executions show` and the console say which run left it so; a replay of the
// latest run then makes it, under a new key (its function had answered).
func TestEndToEndPartialReplay(t *testing.T) {
	s := startSystem(t)
	erase, notify := &functionSink{statuses: []int{404}}, &functionSink{statuses: []int{404}} // broken once, then fixed
	for name, h := range map[string]http.Handler{"erase": erase, "notify": notify} {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		s.call("POST", "/functions/v1", map[string]any{"name": name, "url": srv.URL}, 200)
	}
	d := s.call("POST", "/dispatchers/v1", map[string]any{"name": "gdpr", "eventType": "user_deleted", "actions": []any{
		map[string]any{"type": "task", "name": "erase", "functionName": "erase"},
		map[string]any{"type": "task", "name": "notify", "functionName": "notify"},
	}}, 200)
	eraseID := d["actions"].([]any)[0].(map[string]any)["id"].(string)
	acc := s.call("POST", "/events/v1", map[string]any{"id": "evt-p", "type": "user_deleted", "content": map[string]any{}}, 202)
	wid, firstRun := acc["workflowId"].(string), acc["runId"].(string)
	if _, failed := s.result(wid, firstRun); !failed {
		t.Fatal("the dispatch with two failing functions did not fail")
	}

	if out := s.cli("replay", "evt-p", "--actions", eraseID); !strings.Contains(out, "started as run") {
		t.Fatalf("replay --actions:\n%s", out)
	}
	var x map[string]any
	s.poll("the replay to fail with what it carries", func() bool {
		x = s.call("GET", "/executions/v1/"+wid, nil, 200)
		return x["runId"] != firstRun && x["status"] == "failed"
	})
	actions := x["actions"].([]any)
	if a, c := actions[0].(map[string]any), actions[1].(map[string]any); a["status"] != "succeeded" || c["status"] != "failed" ||
		c["carriedFrom"] != firstRun || c["httpStatus"] != 404.0 {
		t.Fatalf("the replay's actions: %v", actions)
	}
	s.poll("the dispatch among the failed, replayed runs hidden", func() bool {
		return strings.Join(s.listIDs("status=failed&hideReplayed=true&eventId=evt-p"), ",") == wid
	})
	if out := s.cli("executions", "show", wid); !strings.Contains(out, "not run by this replay: as run "+firstRun+" left it") {
		t.Fatalf("executions show of the replay:\n%s", out)
	}
	b := startBrowser(t, s.url)
	b.signIn(s.token)
	b.open("/executions/" + wid)
	b.waitText("#actions-table", "Not run by this replay: as run "+firstRun+" left it")
	b.checkProblems()

	// Moments after the first, the latest run is named: unnamed, it would
	// be taken for the first request sent again (a double click).
	if out := s.cli("replay", "evt-p", "--run-id", x["runId"].(string)); !strings.Contains(out, "started as run") {
		t.Fatalf("replay of the latest run:\n%s", out)
	}
	s.poll("the second replay to complete", func() bool {
		x = s.call("GET", "/executions/v1/"+wid, nil, 200)
		return x["status"] == "completed"
	})
	if keys := erase.keys(); len(keys) != 2 {
		t.Errorf("erase called with %q, want twice: first, then by the first replay", keys)
	}
	if keys := notify.keys(); len(keys) != 2 || !strings.HasPrefix(keys[1], keys[0]+"/replay-") {
		t.Errorf("notify called with %q, want the first key, then a replay's", keys)
	}
}

// TestEndToEndExecutions: a permanently failing function makes the
// dispatch Failed; support finds it by status, dispatcher and error
// class and in the failures summary, fixes the function and replays only
// the failed action (no mail is sent again); a scheduled dispatch is
// canceled before its task runs. Who did what is in the audit trail.
func TestEndToEndExecutions(t *testing.T) {
	s := startSystem(t)
	erase := &functionSink{statuses: []int{404}} // broken once, then fixed
	later := &functionSink{}
	for name, h := range map[string]http.Handler{"erase": erase, "later": later} {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		s.call("POST", "/functions/v1", map[string]any{"name": name, "url": srv.URL}, 200)
	}
	tmpl := s.call("POST", "/templates/v1", map[string]any{"name": "bye", "subject": "Bye", "text": "Bye"}, 200)["id"].(string)
	d := s.call("POST", "/dispatchers/v1", map[string]any{
		"name": "gdpr", "eventType": "user_deleted",
		"actions": []any{
			map[string]any{"type": "mail", "name": "mail", "templateId": tmpl, "recipients": map[string]any{"to": []string{"ann@example.com"}}},
			map[string]any{"type": "task", "name": "erase", "functionName": "erase"},
		},
	}, 200)
	dispatcherID := d["id"].(string)
	taskID := d["actions"].([]any)[1].(map[string]any)["id"].(string)
	due := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	s.call("POST", "/dispatchers/v1", map[string]any{
		"name": "trial reminder", "eventType": "trial_started",
		"actions": []any{map[string]any{"type": "task", "functionName": "later", "startTimestamp": due.Format(time.RFC3339)}},
	}, 200)

	acc := s.call("POST", "/events/v1", map[string]any{"id": "evt-1", "type": "user_deleted", "content": map[string]any{}}, 202)
	wid, firstRun := acc["workflowId"].(string), acc["runId"].(string)
	if _, failed := s.result(wid, firstRun); !failed {
		t.Fatal("the dispatch with a failing function did not fail")
	}

	// Found by status, dispatcher and error class; not among completed ones.
	q := "status=failed&dispatcherId=" + dispatcherID + "&errorClass=HTTPPermanent"
	s.poll("the failed dispatch in the list", func() bool { return strings.Join(s.listIDs(q), ",") == wid })
	if ids := s.listIDs("status=completed"); len(ids) != 0 {
		t.Fatalf("completed dispatches: %v", ids)
	}
	if ids := s.listIDs("status=failed&errorClass=SMTPPermanent"); len(ids) != 0 {
		t.Fatalf("dispatches failed with SMTPPermanent: %v", ids)
	}
	if out := s.cli("executions", "list", "--status", "failed", "--event-type", "user_deleted"); !strings.Contains(out, wid) || !strings.Contains(out, "HTTPPermanent") {
		t.Fatalf("executions list:\n%s", out)
	}
	// A dispatcher by its name, as support staff know it: before, "not a
	// valid id".
	if out := s.cli("executions", "list", "--dispatcher-id", "gdpr"); !strings.Contains(out, wid) {
		t.Fatalf("executions list --dispatcher-id gdpr:\n%s", out)
	}

	// The failures summary names the cause and the dispatcher.
	groups := s.call("GET", "/executions/v1/failures", nil, 200)["groups"].([]any)
	if len(groups) != 1 {
		t.Fatalf("failure groups: %v", groups)
	}
	g := groups[0].(map[string]any)
	if g["errorClass"] != "HTTPPermanent" || g["dispatcherId"] != dispatcherID || g["count"] != 1.0 ||
		!strings.Contains(g["summary"].(string), "1 × HTTPPermanent") || !strings.Contains(g["summary"].(string), "404") ||
		!strings.Contains(g["summary"].(string), "dispatcher gdpr") {
		t.Fatalf("failure group: %v", g)
	}

	if out := s.cli("executions", "failures"); !strings.Contains(out, "1 failed dispatch (and 0 failed runs, replayed since)") || !strings.Contains(out, "1 × HTTPPermanent") {
		t.Fatalf("executions failures:\n%s", out)
	}

	// The detail: event, configuration, each action's outcome.
	x := s.call("GET", "/executions/v1/"+wid, nil, 200)
	actions := x["actions"].([]any)
	mail, task := actions[0].(map[string]any), actions[1].(map[string]any)
	if x["status"] != "failed" || x["event"].(map[string]any)["id"] != "evt-1" || len(x["runs"].([]any)) != 1 ||
		x["config"].(map[string]any)["dispatchers"].([]any)[0].(map[string]any)["name"] != "gdpr" {
		t.Fatalf("detail: %v", x)
	}
	if mail["status"] != "succeeded" || mail["messageId"] == nil || task["status"] != "failed" || task["httpStatus"] != 404.0 ||
		task["lastError"].(map[string]any)["class"] != "HTTPPermanent" || task["attempts"] != 1.0 {
		t.Fatalf("outcomes: mail %v, task %v", mail, task)
	}
	if h := s.call("GET", "/executions/v1/"+wid+"/history", nil, 200); len(h["events"].([]any)) < 5 || h["runId"] != firstRun {
		t.Fatalf("history: %v", h)
	}

	// The function is fixed: a replay calls it, and only it, once more.
	if out := s.cli("replay", "evt-1"); !strings.Contains(out, "started as run") || !strings.Contains(out, taskID) {
		t.Fatalf("replay:\n%s", out)
	}
	var replay map[string]any
	s.poll("the replay to complete", func() bool {
		replay = s.call("GET", "/executions/v1/"+wid, nil, 200)
		return replay["runId"] != firstRun && replay["status"] == "completed"
	})
	keys := erase.keys()
	if len(keys) != 2 || !strings.HasPrefix(keys[1], keys[0]+"/replay-") {
		t.Fatalf("function calls with Idempotency-Keys %q: want the first call and one replay of it", keys)
	}
	if n := len(s.smtp.Mails()); n != 1 {
		t.Fatalf("%d mails; the replay must not send the mail that succeeded again", n)
	}
	if r := replay["replay"].(map[string]any); r["of"] != firstRun || r["requestedBy"] != "admin" || len(replay["runs"].([]any)) != 2 {
		t.Fatalf("replay run: %v", replay)
	}
	if a := replay["audit"].([]any); len(a) != 1 || a[0].(map[string]any)["actor"] != "admin" || a[0].(map[string]any)["newRunId"] != replay["runId"] {
		t.Fatalf("audit: %v", a)
	}
	// A list of failed dispatches says which a replay has superseded since:
	// before, it showed them as any other, while the failures summary
	// left them out.
	s.poll("the failed run listed as replayed", func() bool {
		for _, x := range s.call("GET", "/executions/v1?status=failed&eventId=evt-1", nil, 200)["data"].([]any) {
			if x := x.(map[string]any); x["runId"] == firstRun {
				return x["replayedAs"] == replay["runId"]
			}
		}
		return false
	})
	if out := s.cli("executions", "list", "--status", "failed", "--event-id", "evt-1"); !strings.Contains(out, "failed (replayed since)") {
		t.Fatalf("executions list of a replayed failure:\n%s", out)
	}
	if out := s.cli("executions", "list", "--status", "failed", "--event-id", "evt-1", "--hide-replayed"); !strings.Contains(out, "no dispatches match") {
		t.Fatalf("executions list --hide-replayed of a replayed failure:\n%s", out)
	}
	// The runs by their run IDs: before, each line repeated the workflow ID.
	if out := s.cli("executions", "show", wid); !strings.Contains(out, "\n"+firstRun+" ") || !strings.Contains(out, "\n"+replay["runId"].(string)+" ") {
		t.Fatalf("executions show after the replay:\n%s", out)
	}
	// The same request moments after, naming no run, is answered as it
	// was (a double click); nothing failed any more: a default replay of
	// the latest run is refused.
	if res := s.call("POST", "/executions/v1/"+wid+"/replay", nil, 202); res["alreadyStarted"] != true || res["runId"] != replay["runId"] {
		t.Fatalf("the replay asked for again moments after: %v", res)
	}
	if res := s.call("POST", "/executions/v1/"+wid+"/replay", map[string]any{"runId": replay["runId"]}, 409); !strings.Contains(res["message"].(string), "no action failed") {
		t.Fatalf("second replay: %v", res)
	}
	// The replayed failure has left the summary.
	s.poll("the failure to leave the summary", func() bool {
		return len(s.call("GET", "/executions/v1/failures", nil, 200)["groups"].([]any)) == 0
	})

	// An operator resets the first run from Temporal's Web UI or CLI
	// after the replay: the reset run makes nothing, since the replay may
	// have made its actions under its own keys, and says so. Before, it
	// called the function again under the first run's key.
	ctx := context.Background()
	var firstTask int64
	for it := s.temporal.GetWorkflowHistory(ctx, wid, firstRun, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT); firstTask == 0 && it.HasNext(); {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			firstTask = ev.GetEventId()
		}
	}
	res, err := s.temporal.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{Namespace: "default",
		WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: wid, RunId: firstRun}, Reason: "e2e", WorkflowTaskFinishEventId: firstTask, RequestId: "e2e-reset"})
	if err != nil {
		t.Fatal(err)
	}
	var reset map[string]any
	s.poll("the reset run to end", func() bool {
		reset = s.call("GET", "/executions/v1/"+wid+"?runId="+res.GetRunId(), nil, 200)
		return reset["status"] != "running"
	})
	if reset["status"] != "failed" {
		t.Fatalf("the reset run %v, want it failed", reset)
	}
	for _, a := range reset["actions"].([]any) {
		if e, _ := a.(map[string]any)["lastError"].(map[string]any); e == nil || e["class"] != "Superseded" {
			t.Fatalf("action of the reset run %v, want it not made (Superseded)", a)
		}
	}
	if keys := erase.keys(); len(keys) != 2 || len(s.smtp.Mails()) != 1 {
		t.Fatalf("after the reset: calls %q and %d mails, want the 2 calls and 1 mail of before", keys, len(s.smtp.Mails()))
	}

	// A dispatch waiting for its startTimestamp is canceled: its task never runs.
	sched := s.call("POST", "/events/v1", map[string]any{"id": "trial-1", "type": "trial_started", "content": map[string]any{}}, 202)["workflowId"].(string)
	s.poll("the scheduled dispatch in the list", func() bool { return strings.Join(s.listIDs("status=scheduled"), ",") == sched })
	// A dispatcher named with a space: before, the CLI sent it as a +.
	if out := s.cli("executions", "list", "--dispatcher-id", "trial reminder"); !strings.Contains(out, sched) {
		t.Fatalf("executions list --dispatcher-id 'trial reminder':\n%s", out)
	}
	// It says when it runs: before, nothing did.
	if a := s.call("GET", "/executions/v1/"+sched, nil, 200)["actions"].([]any)[0].(map[string]any); a["status"] != "scheduled" || a["dueTimestamp"] != float64(due.UnixMilli()) {
		t.Fatalf("scheduled action %v, want dueTimestamp %d", a, due.UnixMilli())
	}
	// By the event's id, with the CLI: before, the CLI had no cancel.
	if out := s.cli("executions", "cancel", "trial-1"); !strings.Contains(out, "asked "+sched+" to cancel") {
		t.Fatalf("executions cancel:\n%s", out)
	}
	var canceled map[string]any
	s.poll("the dispatch to be canceled", func() bool {
		canceled = s.call("GET", "/executions/v1/"+sched, nil, 200)
		return canceled["status"] == "canceled"
	})
	if a := canceled["actions"].([]any)[0].(map[string]any); a["status"] != "canceled" || later.count() != 0 {
		t.Fatalf("canceled action %v; function called %d times", a, later.count())
	} else if a["dueTimestamp"] != float64(due.UnixMilli()) {
		t.Fatalf("canceled action %v, want it to say when it was due, %d", a, due.UnixMilli())
	}
	if a := canceled["audit"].([]any); len(a) != 1 || a[0].(map[string]any)["operation"] != "cancel" {
		t.Fatalf("audit: %v", a)
	}
	s.call("POST", "/executions/v1/"+sched+"/cancel", nil, 409)
	if out := s.cli("executions", "show", sched); !strings.Contains(out, "canceled") || !strings.Contains(out, "Audit trail") {
		t.Fatalf("executions show:\n%s", out)
	}
}

// TestEndToEndBulkReplayWorkerCrash: 50 failed dispatches; a dry run
// counts them and starts nothing; a bulk replay, interrupted by killing
// the worker, ends with every dispatch replayed exactly once.
func TestEndToEndBulkReplayWorkerCrash(t *testing.T) {
	s := startSystem(t, splitProcesses)
	const n = 50
	statuses := make([]int, n)
	for i := range statuses {
		statuses[i] = 404
	}
	erase := &functionSink{statuses: statuses} // fails the first 50 calls, then works
	srv := httptest.NewServer(erase)
	t.Cleanup(srv.Close)
	s.call("POST", "/functions/v1", map[string]any{"name": "erase", "url": srv.URL}, 200)
	tmpl := s.call("POST", "/templates/v1", map[string]any{"name": "bye", "subject": "Bye", "text": "Bye"}, 200)["id"].(string)
	dispatcherID := s.call("POST", "/dispatchers/v1", map[string]any{
		"name": "gdpr", "eventType": "user_deleted",
		"actions": []any{
			map[string]any{"type": "mail", "templateId": tmpl, "recipients": map[string]any{"to": []string{"ann@example.com"}}},
			map[string]any{"type": "task", "functionName": "erase"},
		},
	}, 200)["id"].(string)
	// Before anything failed, a bulk replay has nothing to replay: it says
	// so, naming the filters, starts nothing and exits 0 (cli fails on
	// another status). Before, it started a bulk replay of nothing.
	if out := s.cli("replay", "--status", "failed", "--dispatcher-id", dispatcherID); !strings.Contains(out,
		`nothing to replay: no dispatch matches the filter (dispatcherId "`+dispatcherID+`", status "failed"); no bulk replay was started`) {
		t.Fatalf("a bulk replay of nothing:\n%s", out)
	}
	for i := range n {
		s.call("POST", "/events/v1", map[string]any{"id": fmt.Sprintf("bulk-%d", i), "type": "user_deleted", "content": map[string]any{}}, 202)
	}
	dry := map[string]any{"status": "failed", "dispatcherId": dispatcherID, "dryRun": true}
	s.pollFor(60*time.Second, "50 failed dispatches", func() bool {
		return s.call("POST", "/executions/v1/replays", dry, 200)["matched"] == float64(n)
	})
	mails := len(s.smtp.Mails())

	// A dry run counts and starts nothing.
	// It says which configuration runs: after a fix, the original fails
	// again (before, only a single replay said so).
	if out := s.cli("replay", "--status", "failed", "--dispatcher-id", dispatcherID, "--dry-run"); !strings.Contains(out, "dry run: 50 dispatches would be replayed") ||
		!strings.Contains(out, "replay with --config current") {
		t.Fatalf("dry run:\n%s", out)
	}
	if erase.count() != n || len(s.listIDs("status=completed")) != 0 {
		t.Fatalf("the dry run started something: %d calls, completed %v", erase.count(), s.listIDs("status=completed"))
	}

	// The bulk replay runs in the CLI, which follows it to the end.
	out := &testenv.Buffer{}
	cmd := exec.Command(s.bin, "replay", "--status", "failed", "--dispatcher-id", dispatcherID, "--rate", "10")
	cmd.Env = append(s.env, "DISPATCHER_URL="+s.url, "DISPATCHER_TOKEN="+s.token)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	started := regexp.MustCompile(`bulk replay (bulk-replay-[0-9a-f]{24}) started`)
	var id string
	s.poll("the bulk replay to start", func() bool {
		m := started.FindStringSubmatch(out.String())
		if m != nil {
			id = m[1]
		}
		return id != ""
	})

	// progress is the bulk replay's progress; nil while no worker
	// answers for it.
	progress := func() map[string]any {
		b := s.call("GET", "/executions/v1/replays/"+id, nil, 200)
		if b["progressUnknown"] == true {
			return nil
		}
		return b["progress"].(map[string]any)
	}
	s.pollFor(30*time.Second, "15 replays", func() bool {
		p := progress()
		return p != nil && p["replayed"].(float64) >= 15
	})

	// Support staff pause it from the CLI part-way; the worker crashes,
	// and the bulk replay is still paused under a new one, until resumed.
	if out := s.cli("replay", "--pause", id); !strings.Contains(out, "bulk replay "+id+": paused") {
		t.Fatalf("dispatcher replay --pause:\n%s", out)
	}
	var replayed float64
	s.poll("the bulk replay to pause", func() bool {
		p := progress()
		if p != nil {
			replayed = p["replayed"].(float64)
		}
		return p != nil && p["paused"] == true
	})
	if replayed >= n {
		t.Fatalf("paused with %v of %d replayed: the pause came too late to test", replayed, n)
	}
	// Listed as paused. Before, as running.
	if out := s.cli("replay", "--list"); !regexp.MustCompile(id + `\s+paused\s`).MatchString(out) {
		t.Fatalf("dispatcher replay --list while it is paused:\n%s", out)
	}
	s.crashWorker()
	// With no worker to answer, its progress is unknown, and said so.
	// Before, it was a progress of zeros: paused false, 0 of 0.
	if p := progress(); p != nil {
		t.Fatalf("no worker, yet a progress: %v", p)
	}
	s.startWorker()
	s.poll("the new worker to answer", func() bool { return progress() != nil })
	if p := progress(); p["paused"] != true || p["replayed"].(float64) != replayed {
		t.Fatalf("after the worker's crash: %v, want still paused at %v replayed", p, replayed)
	}
	if out := s.cli("replay", "--resume", id); !strings.Contains(out, "bulk replay "+id+": resumed") {
		t.Fatalf("dispatcher replay --resume:\n%s", out)
	}

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dispatcher replay: %v\n%s", err, out)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("the bulk replay did not finish:\n%s\nlogs:\n%s", out, s.logs)
	}
	want := fmt.Sprintf("bulk replay %s completed: 50/50 processed: 50 replayed, 0 skipped; 50 succeeded, 0 failed, 0 pending", id)
	if !strings.Contains(out.String(), want) {
		t.Fatalf("the CLI's last words are not %q:\n%s", want, out)
	}
	// Listed, once visibility has its close.
	s.poll("the bulk replay listed as completed", func() bool {
		return regexp.MustCompile(id + `\s+completed\s+admin\s`).MatchString(s.cli("replay", "--list"))
	})

	// Exactly one replay per dispatch: one replay key each, two runs each.
	replays := map[string]map[string]bool{} // workflow ID → its replay keys
	for _, k := range erase.keys() {
		if strings.Contains(k, "/replay-") {
			wid := strings.SplitN(k, "/", 2)[0]
			if replays[wid] == nil {
				replays[wid] = map[string]bool{}
			}
			replays[wid][k] = true
		}
	}
	if len(replays) != n {
		t.Fatalf("%d dispatches replayed, want %d: %v", len(replays), n, replays)
	}
	for wid, keys := range replays {
		if len(keys) != 1 {
			t.Errorf("%s was replayed under %d keys, want one replay: %v", wid, len(keys), keys)
		}
	}
	// A crashed worker may run a replay's task again (at least once,
	// same Idempotency-Key); what must not happen is a second replay.
	completed := s.call("GET", "/executions/v1?status=completed&limit=100", nil, 200)["data"].([]any)
	if len(completed) != n {
		t.Fatalf("%d completed runs, want %d replays", len(completed), n)
	}
	seen := map[string]bool{}
	for _, c := range completed {
		x := c.(map[string]any)
		r, _ := x["replay"].(map[string]any)
		if r == nil || r["bulkReplayId"] != id || seen[x["workflowId"].(string)] {
			t.Fatalf("completed run %v: want one replay of the bulk replay per dispatch", x)
		}
		seen[x["workflowId"].(string)] = true
	}
	if got := len(s.smtp.Mails()); got != mails {
		t.Fatalf("%d mails after the bulk replay, %d before: a mail that succeeded was sent again", got, mails)
	}

	// Support staff page through them behind a load balancer, each page
	// from another API process: a token one handed out is good in the
	// other, which signs with the same key.
	apis := []string{s.url, s.startProcess("api").url}
	defer func(u string) { s.url = u }(s.url)
	paged := map[string]bool{}
	for i, token := 0, ""; i == 0 || token != ""; i++ {
		s.url = apis[i%2]
		page := s.call("GET", "/executions/v1?status=completed&limit=20&pageToken="+url.QueryEscape(token), nil, 200)
		for _, c := range page["data"].([]any) {
			paged[c.(map[string]any)["workflowId"].(string)] = true
		}
		token, _ = page["page"].(map[string]any)["nextPageToken"].(string)
	}
	if len(paged) != n {
		t.Fatalf("paging by 20 through two API processes found %d dispatches, want %d", len(paged), n)
	}
	// One it did not hand out is refused at once, naming the parameter.
	if code, body := s.request("GET", "/executions/v1?pageToken=bm90LWEtdG9rZW4", nil); code != 400 || !strings.Contains(string(body), "pageToken: is not a token this API handed out") {
		t.Fatalf("a made-up page token = %d %s, want 400 naming pageToken", code, body)
	}
}

// While an action retries, its dispatch's detail shows the attempt it is
// at and the last attempt's error, as the Temporal Web UI does. Before, it
// showed "running, 1 attempt" and no error until the action ended, however
// many attempts had failed: support staff could not tell a failing action
// from a slow one.
func TestEndToEndExecutionShowsRetries(t *testing.T) {
	s := startSystem(t)
	failing := &functionSink{statuses: slices.Repeat([]int{503}, 200)}
	srv := httptest.NewServer(failing)
	t.Cleanup(srv.Close)
	s.call("POST", "/functions/v1", map[string]any{"name": "flaky", "url": srv.URL}, 200)
	s.call("POST", "/dispatchers/v1", map[string]any{"name": "flaky", "eventType": "flaky_event", "actions": []any{
		map[string]any{"type": "task", "functionName": "flaky",
			"retryPolicy": map[string]any{"maximumAttempts": 100, "initialIntervalMs": 1000, "backoffCoefficient": 1}}}}, 200)
	acc := s.call("POST", "/events/v1", map[string]any{"id": "flaky-1", "type": "flaky_event", "content": map[string]any{}}, 202)
	wid := acc["workflowId"].(string)

	var last string
	s.poll("the detail to show the third attempt and the last error", func() bool {
		d := s.call("GET", "/executions/v1/"+url.PathEscape(wid), nil, 200)
		b, _ := json.Marshal(d["actions"])
		last = string(b)
		var o struct {
			Status    string
			Attempts  int
			LastError struct{ Message, Class string }
		}
		var os []json.RawMessage
		if json.Unmarshal([]byte(last), &os) == nil && len(os) == 1 {
			_ = json.Unmarshal(os[0], &o)
		}
		return d["status"] == "running" && o.Status == "running" && o.Attempts >= 3 &&
			o.LastError.Class == "HTTPTemporary" && strings.Contains(o.LastError.Message, "503")
	}, &last)
	var shown struct{ Attempts int }
	var os []json.RawMessage
	if json.Unmarshal([]byte(last), &os) == nil && len(os) == 1 {
		_ = json.Unmarshal(os[0], &shown)
	}
	// Attempts made, and at most one in flight: never more than were.
	if n := failing.count(); n < shown.Attempts-1 {
		t.Errorf("the function was called %d times, and the detail said %d attempts", n, shown.Attempts)
	}
	s.call("POST", "/executions/v1/"+url.PathEscape(wid)+"/cancel", nil, 202)
}

package workflows_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// The versions the recorder files its histories under: the newest of each
// workflow (versions.go). Bump them with the workflows' latest versions.
const (
	recordDispatchVersion   = "v23"
	recordBulkReplayVersion = "v6"
	recordSequenceVersion   = "v9"
	recordGateVersion       = "v3"
)

// TestRecordHistories runs real dispatches and bulk replays on a dev
// server, with the real activities against an SMTP and an HTTP sink on
// loopback, through every path the workflows take, and saves their
// histories to testdata/histories for TestReplay. A history that exists is
// never rewritten: a change to workflow code is a new version with new
// histories beside the old ones. It runs only when asked:
// DISPATCHER_RECORD_HISTORY=1 (make record-histories).
func TestRecordHistories(t *testing.T) {
	if os.Getenv("DISPATCHER_RECORD_HISTORY") != "1" {
		t.Skip("set DISPATCHER_RECORD_HISTORY=1 (make record-histories) to record histories into testdata")
	}
	r := newRecorder(t)
	dir := filepath.Join("testdata", "histories", "dispatch", recordDispatchVersion)
	// First, so that its startTimestamp is still ahead: an action waiting
	// on a timer.
	scheduled := r.dispatch("scheduled", false)
	// The same run by an intake of version 17, which a worker of version
	// 18 lets complete the task that made the call before it closes, from
	// the marker keep-local-results.
	scheduled17 := r.dispatchPinned(17, "scheduled", "record-scheduled-v17", false)
	// A cancel while a scheduled action's call is made (dispatchV18): the
	// task that made it completes with a 1 ms timer, and the run closes
	// in the next, the action succeeded.
	canceledLater := r.dispatch("canceled-later", false)
	r.cancelWhen(canceledLater, func() bool { return r.calls("/hold-local") > 0 })
	r.save(canceledLater.WorkflowID, canceledLater.RunID, filepath.Join(dir, "canceled-later-task.json"))

	// The happy path: a mail, an HTTP task and a child workflow, each
	// first attempt local, the child's payload rendered by a local activity.
	completed := r.dispatch("completed", true)
	r.save(completed.WorkflowID, completed.RunID, filepath.Join(dir, "completed.json"))
	// The same reset to its first workflow task (the Web UI's Reset): its
	// child, which completed, is awaited rather than run again
	// (dispatchV13).
	reset := resetToFirstTask(t, r.c, completed.WorkflowID, completed.RunID)
	r.wait(completed.WorkflowID, reset)
	r.save(completed.WorkflowID, reset, filepath.Join(dir, "reset.json"))
	// The same, started without its configuration (by an older API): the
	// workflow loads it and upserts its search attributes.
	loaded, err := r.bare.Start(r.ctx(), dispatcher.Event{ID: "record-loaded", Type: "completed", Time: time.Now().UTC(), Source: "record",
		Content: json.RawMessage(`{"name":"Ann","email":"ann@example.com","userId":42}`)})
	if err != nil {
		t.Fatal(err)
	}
	r.wait(loaded.WorkflowID, loaded.RunID)
	r.save(loaded.WorkflowID, loaded.RunID, filepath.Join(dir, "completed-config-loaded.json"))
	// Two children whose data is templated: each payload is paced by its
	// bound, then by what it is (dispatchV9), so the second waits for a
	// workflow task of its own.
	children := r.dispatch("children", true)
	r.save(children.WorkflowID, children.RunID, filepath.Join(dir, "children-templated.json"))
	// A permanent failure and a template error.
	failed := r.dispatch("failed", true)
	r.save(failed.WorkflowID, failed.RunID, filepath.Join(dir, "failed.json"))
	// The same started by an intake of version 18, which a worker of
	// version 19 lets complete the task the call failed in before it
	// starts the task_failed event, from the marker emit-after-commit.
	failed18 := r.dispatchPinned(18, "failed", "record-failed-v18", true)
	r.requireMarker(failed18.WorkflowID, failed18.RunID, "emit-after-commit")
	r.save(failed18.WorkflowID, failed18.RunID, filepath.Join("testdata", "histories", "dispatch", "v18", "emit-after-commit.json"))
	// A first attempt that fails retryably with a Retry-After: a timer,
	// then a regular activity.
	handoff := r.dispatch("handoff", true)
	r.save(handoff.WorkflowID, handoff.RunID, filepath.Join(dir, "handoff.json"))
	// An action that fails for good while another retries: its failure
	// upserted when the other begins to retry (dispatchV17).
	failedRetrying := r.dispatch("failed-retrying", true)
	r.save(failedRetrying.WorkflowID, failedRetrying.RunID, filepath.Join(dir, "failed-while-retrying.json"))
	// A call longer than the local call limit: regular from the start.
	regular := r.dispatch("regular", true)
	r.save(regular.WorkflowID, regular.RunID, filepath.Join(dir, "regular.json"))
	r.wait(scheduled.WorkflowID, scheduled.RunID)
	r.save(scheduled.WorkflowID, scheduled.RunID, filepath.Join(dir, "scheduled.json"))
	r.wait(scheduled17.WorkflowID, scheduled17.RunID)
	r.requireMarker(scheduled17.WorkflowID, scheduled17.RunID, "keep-local-results")
	r.save(scheduled17.WorkflowID, scheduled17.RunID, filepath.Join("testdata", "histories", "dispatch", "v17", "keep-local-results.json"))
	// A cancel while an action waits, and one while a call is in flight.
	canceled := r.dispatch("canceled", false)
	r.cancelWhen(canceled, func() bool { return r.status(canceled) == dispatcher.ExecutionScheduled })
	r.save(canceled.WorkflowID, canceled.RunID, filepath.Join(dir, "canceled.json"))
	// An action that fails while another waits for its startTimestamp:
	// its failure upserted at once (dispatchV10), then the cancel.
	failedWaiting := r.dispatch("failed-waiting", false)
	r.cancelWhen(failedWaiting, func() bool {
		d, err := r.ex.Get(r.ctx(), failedWaiting.WorkflowID, failedWaiting.RunID)
		return err == nil && d.Status == dispatcher.ExecutionScheduled && len(d.FailedActionIDs) == 1
	})
	r.save(failedWaiting.WorkflowID, failedWaiting.RunID, filepath.Join(dir, "failed-while-scheduled.json"))
	// The same with a function that does not exist: it fails before the
	// other action begins to wait, which upserts it.
	// An action that retries while another waits (dispatchV20): not
	// scheduled while it retries, scheduled once it succeeded; then the
	// cancel.
	retryingWaiting := r.dispatch("retrying-waiting", false)
	// The same started by an intake of version 19, which shows it
	// scheduled throughout, on a worker of version 20.
	retrying19 := r.dispatchPinned(19, "retrying-waiting", "record-retrying-waiting-v19", false)
	for run, path := range map[dispatcher.StartResult]string{
		retryingWaiting: filepath.Join(dir, "retrying-while-scheduled.json"),
		retrying19:      filepath.Join("testdata", "histories", "dispatch", "v19", "retrying-while-scheduled.json"),
	} {
		r.cancelWhen(run, func() bool {
			d, err := r.ex.Get(r.ctx(), run.WorkflowID, run.RunID)
			return err == nil && d.Status == dispatcher.ExecutionScheduled && d.Outcomes[0].Status == dispatcher.OutcomeSucceeded
		})
		r.save(run.WorkflowID, run.RunID, path)
	}
	missingWaiting := r.dispatch("missing-waiting", false)
	r.cancelWhen(missingWaiting, func() bool {
		d, err := r.ex.Get(r.ctx(), missingWaiting.WorkflowID, missingWaiting.RunID)
		return err == nil && d.Status == dispatcher.ExecutionScheduled && len(d.FailedActionIDs) == 1
	})
	r.save(missingWaiting.WorkflowID, missingWaiting.RunID, filepath.Join(dir, "failed-before-scheduled.json"))
	inFlight := r.dispatch("inflight", false)
	r.cancelWhen(inFlight, func() bool { return r.calls("/hold") > 0 })
	r.save(inFlight.WorkflowID, inFlight.RunID, filepath.Join(dir, "canceled-in-flight.json"))
	// The replay of a call that timed out: it keeps the first run's key
	// (dispatchV14), and times out again.
	timedOut := r.dispatch("timeout", true)
	kept, err := r.ex.Replay(r.ctx(), dispatcher.ReplayRequest{WorkflowID: timedOut.WorkflowID, Actor: "recorder"})
	if err != nil {
		t.Fatal(err)
	}
	r.wait(kept.WorkflowID, kept.RunID)
	r.save(kept.WorkflowID, kept.RunID, filepath.Join(dir, "replay-kept-key.json"))
	// A cancel while a child workflow that ignores it runs: the dispatch
	// ends without waiting for the child (dispatchV8).
	withChild := r.dispatch("canceled-child", false)
	child := workflows.IdempotencyKey(withChild.WorkflowID, "d-canceled-child", "t1", "")
	r.cancelWhen(withChild, func() bool {
		d, err := r.c.DescribeWorkflowExecution(r.ctx(), child, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING
	})
	r.save(withChild.WorkflowID, withChild.RunID, filepath.Join(dir, "canceled-child.json"))
	if err := r.c.SignalWorkflow(r.ctx(), child, "", "finish", nil); err != nil {
		t.Fatal(err)
	}
	// A replay of the failed dispatch, with its original configuration.
	replay, err := r.ex.Replay(r.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "recorder"})
	if err != nil {
		t.Fatal(err)
	}
	r.wait(replay.WorkflowID, replay.RunID)
	r.save(replay.WorkflowID, replay.RunID, filepath.Join(dir, "replay.json"))
	// A replay of one of its failed actions: it carries the other, as the
	// run left it (dispatchV23).
	some := r.dispatchID("failed", "record-failed-carried", true)
	carried, err := r.ex.Replay(r.ctx(), dispatcher.ReplayRequest{WorkflowID: some.WorkflowID, Actions: []string{"t1"}, Actor: "recorder"})
	if err != nil {
		t.Fatal(err)
	}
	r.wait(carried.WorkflowID, carried.RunID)
	r.save(carried.WorkflowID, carried.RunID, filepath.Join(dir, "replay-carried.json"))

	// Dispatchers skipped: one paused, one whose filter is false.
	skipped := r.dispatch("skipped", true)
	r.save(skipped.WorkflowID, skipped.RunID, filepath.Join(dir, "skipped.json"))

	r.recordSequence()
	r.recordResetRelease(dir)
	r.recordGated(dir)
	r.recordBoundedGate()
	r.recordIdleOpenGate()
	r.recordMovedGate()
	r.recordRateHeldGate()
	c, unread := unreadGate(t)
	(&recorder{t: t, c: c}).save(unread.GetID(), unread.GetRunID(), filepath.Join("testdata", "histories", "gate", recordGateVersion, "unread.json"))

	// A bulk replay of two failed dispatches that continues as new after
	// each replay.
	bulkDir := filepath.Join("testdata", "histories", "bulk-replay", recordBulkReplayVersion)
	r.dispatch("bulk", true)
	r.dispatchID("bulk", "record-bulk-2", true)
	run, err := r.c.ExecuteWorkflow(r.ctx(), client.StartWorkflowOptions{ID: dispatcher.BulkReplayIDPrefix + "0123456789abcdef01234567", TaskQueue: recordQueue},
		workflows.WorkflowBulkReplay, workflows.BulkReplayInput{
			Filter: dispatcher.ExecutionFilter{EventType: "bulk", Status: dispatcher.ExecutionFailed},
			Rate:   50, Actor: "recorder", PageSize: 1, ReplaysPerRun: 1,
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.c.GetWorkflow(r.ctx(), run.GetID(), "").Get(r.ctx(), nil); err != nil {
		t.Fatalf("the bulk replay: %v", err)
	}
	last, err := r.c.DescribeWorkflowExecution(r.ctx(), run.GetID(), "")
	if err != nil {
		t.Fatal(err)
	}
	r.save(run.GetID(), run.GetRunID(), filepath.Join(bulkDir, "continue-as-new-first.json"))
	r.save(run.GetID(), last.GetWorkflowExecutionInfo().GetExecution().GetRunId(), filepath.Join(bulkDir, "continue-as-new-last.json"))
	r.recordPausedBulkReplay(bulkDir)
	r.recordDroppedSignals(bulkDir)
}

// recordResetRelease records an ordered dispatch that failed and blocked
// its key, reset to its first workflow task once its function was fixed:
// the reset run makes its call and signals its Sequence to release the
// key (changeResetRelease).
func (r *recorder) recordResetRelease(dir string) {
	r.t.Helper()
	res, err := r.s.Start(r.ctx(), dispatcher.Event{ID: "record-reset-release", Type: "ordered-reset", Time: time.Now().UTC(),
		Source: "record", Content: json.RawMessage(`{"userId":47}`)})
	if err != nil || !res.Sequenced {
		r.t.Fatalf("the ordered event: %+v, %v", res, err)
	}
	seqID := dispatcher.Sequence{Field: "content.userId", Key: "47"}.WorkflowID("")
	blockedBy := func() string {
		v, err := r.c.QueryWorkflow(r.ctx(), seqID, "", workflows.QuerySequence)
		var st workflows.SequenceState
		if err != nil || v.Get(&st) != nil {
			return "?"
		}
		return st.Blocked
	}
	testenv.Eventually(r.t, 30*time.Second, func() string {
		if blockedBy() != res.WorkflowID {
			return "waiting for the failed dispatch to block its key"
		}
		return ""
	})
	reset := resetToFirstTask(r.t, r.c, res.WorkflowID, "")
	r.wait(res.WorkflowID, reset)
	testenv.Eventually(r.t, 30*time.Second, func() string {
		if b := blockedBy(); b != "" {
			return "waiting for the reset run to release the key (blocked by " + b + ")"
		}
		return ""
	})
	r.requireMarker(res.WorkflowID, reset, "reset-release")
	r.save(res.WorkflowID, reset, filepath.Join(dir, "reset-release.json"))
}

// recordDroppedSignals records a Sequence, a Gate and a bulk replay each
// sent signals whose payloads do not decode, as `temporal workflow
// signal` with garbage input sends them: each drops them
// (changeSignalDropped) and goes on.
func (r *recorder) recordDroppedSignals(bulkDir string) {
	r.t.Helper()
	garbage := func(id string, signals ...string) {
		for _, name := range signals {
			if err := r.c.SignalWorkflow(r.ctx(), id, "", name, 42); err != nil { // no signal of theirs takes a number
				r.t.Fatal(err)
			}
		}
	}

	// A key blocked by its first event, sent garbage, then released: the
	// second event runs.
	for seq := 1; seq <= 2; seq++ {
		if res, err := r.s.Start(r.ctx(), dispatcher.Event{ID: fmt.Sprint("record-dropped-", seq), Type: "ordered", Time: time.Now().UTC(),
			Source: "record", Content: json.RawMessage(fmt.Sprintf(`{"userId":46,"seq":%d}`, seq))}); err != nil || !res.Sequenced {
			r.t.Fatalf("ordered event %d: %+v, %v", seq, res, err)
		}
	}
	seqID := dispatcher.Sequence{Field: "content.userId", Key: "46"}.WorkflowID("")
	testenv.Eventually(r.t, 30*time.Second, func() string {
		v, err := r.c.QueryWorkflow(r.ctx(), seqID, "", workflows.QuerySequence)
		var st workflows.SequenceState
		if err == nil && v.Get(&st) == nil && st.Blocked == dispatcher.WorkflowID("record-dropped-1") && len(st.Queue) == 1 {
			return ""
		}
		return "waiting for the key's first dispatch to block it"
	})
	garbage(seqID, workflows.SignalSequenceEvent, workflows.SignalSequenceRelease)
	if _, err := r.ex.Release(r.ctx(), dispatcher.WorkflowID("record-dropped-1"), "recorder"); err != nil {
		r.t.Fatal(err)
	}
	r.wait(dispatcher.WorkflowID("record-dropped-2"), "")
	r.requireMarker(seqID, "", "signal-dropped")
	r.save(seqID, "", filepath.Join("testdata", "histories", "sequence", recordSequenceVersion, "signal-dropped.json"))

	// An idle Gate sent garbage once it waits (signals that come with its
	// first task are taken by ReceiveAsync, which drops them alone): it
	// completes idle a minute later.
	gate, err := r.c.ExecuteWorkflow(r.ctx(), client.StartWorkflowOptions{ID: dispatcher.GateWorkflowID("", "dropped"), TaskQueue: recordQueue},
		workflows.WorkflowGate, workflows.GateInput{Function: "dropped", State: &workflows.GateState{FlowRead: time.Now().UTC()}})
	if err != nil {
		r.t.Fatal(err)
	}
	waitForEvent(r.t, r.c, gate.GetID(), gate.GetRunID(), enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, "waiting for the gate's first workflow task")
	garbage(gate.GetID(), workflows.SignalGateRequest)
	garbage(gate.GetID(), workflows.SignalGateDone)

	// A bulk replay of two new failed dispatches sent a garbage pause
	// while it waits for its second replay's turn (a signal there before
	// its first page is taken by ReceiveAsync, which drops it alone).
	bulk := r.bulkReplayOf("0123456789abcdef01234569", "record-bulk-5", "record-bulk-6")
	testenv.Eventually(r.t, 30*time.Second, func() string {
		v, err := r.c.QueryWorkflow(r.ctx(), bulk.GetID(), "", workflows.QueryProgress)
		var p dispatcher.BulkReplayProgress
		if err == nil && v.Get(&p) == nil && p.Processed == 1 {
			return ""
		}
		return "waiting for the bulk replay's first replay"
	})
	garbage(bulk.GetID(), workflows.SignalPause)
	var p dispatcher.BulkReplayProgress
	if err := bulk.Get(r.ctx(), &p); err != nil || p.Replayed != 2 {
		r.t.Fatalf("the bulk replay sent garbage ended with %+v, %v; want 2 replays", p, err)
	}
	r.requireMarker(bulk.GetID(), bulk.GetRunID(), "signal-dropped")
	r.save(bulk.GetID(), bulk.GetRunID(), filepath.Join(bulkDir, "signal-dropped.json"))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := gate.Get(ctx, nil); err != nil {
		r.t.Fatalf("the gate sent garbage: %v", err)
	}
	r.requireMarker(gate.GetID(), "", "signal-dropped")
	r.save(gate.GetID(), "", filepath.Join("testdata", "histories", "gate", recordGateVersion, "signal-dropped.json"))
}

// recordPausedBulkReplay records a bulk replay of two new failed
// dispatches that is paused at once and resumed once its progress says
// it is paused.
func (r *recorder) recordPausedBulkReplay(dir string) {
	r.t.Helper()
	run := r.bulkReplayOf("0123456789abcdef01234568", "record-bulk-3", "record-bulk-4")
	if err := r.c.SignalWorkflow(r.ctx(), run.GetID(), "", workflows.SignalPause, true); err != nil {
		r.t.Fatal(err)
	}
	testenv.Eventually(r.t, 30*time.Second, func() string {
		v, err := r.c.QueryWorkflow(r.ctx(), run.GetID(), "", workflows.QueryProgress)
		var p dispatcher.BulkReplayProgress
		if err == nil && v.Get(&p) == nil && p.Paused {
			return ""
		}
		return "waiting for the bulk replay to say it is paused"
	})
	if err := r.c.SignalWorkflow(r.ctx(), run.GetID(), "", workflows.SignalPause, false); err != nil {
		r.t.Fatal(err)
	}
	var p dispatcher.BulkReplayProgress
	if err := run.Get(r.ctx(), &p); err != nil || p.Replayed != 2 || p.Paused {
		r.t.Fatalf("the paused bulk replay ended with %+v, %v; want 2 replays", p, err)
	}
	r.save(run.GetID(), run.GetRunID(), filepath.Join(dir, "paused.json"))
}

// bulkReplayOf starts the bulk replay dispatcher.BulkReplayIDPrefix+id,
// at a replay a second, of the failed dispatches of new events, made
// first.
func (r *recorder) bulkReplayOf(id string, events ...string) client.WorkflowRun {
	r.t.Helper()
	since := time.Now().UTC()
	for _, ev := range events {
		r.dispatchID("bulk", ev, true)
	}
	run, err := r.c.ExecuteWorkflow(r.ctx(), client.StartWorkflowOptions{ID: dispatcher.BulkReplayIDPrefix + id, TaskQueue: recordQueue},
		workflows.WorkflowBulkReplay, workflows.BulkReplayInput{
			Filter: dispatcher.ExecutionFilter{EventType: "bulk", Status: dispatcher.ExecutionFailed, From: since},
			Rate:   1, Actor: "recorder",
		})
	if err != nil {
		r.t.Fatal(err)
	}
	return run
}

const recordQueue = "dispatch-record"

// recorder is a dev server with workers running the real workflows and
// activities, the configuration below in memory, and the executions
// service on top.
type recorder struct {
	t     *testing.T
	c     client.Client
	s     dispatch.Starter
	bare  dispatch.Starter // starts dispatches without their configuration
	ex    *dispatch.Executions
	store *testenv.MemStore

	mu      sync.Mutex
	callsBy map[string]int // by function path
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{t: t, c: testenv.TemporalClient(t), callsBy: map[string]int{}}
	var flaky sync.Map
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.callsBy[req.URL.Path]++
		r.mu.Unlock()
		switch req.URL.Path {
		case "/gone":
			http.Error(w, "no such user", http.StatusNotFound)
		case "/flaky": // the first call of each action: busy, come back in a second
			if _, seen := flaky.LoadOrStore(req.Header.Get("Idempotency-Key"), true); !seen {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "busy", http.StatusServiceUnavailable)
			}
		case "/guarded": // the first two calls fail: they open the circuit
			r.mu.Lock()
			n := r.callsBy[req.URL.Path]
			r.mu.Unlock()
			if n <= 2 {
				http.Error(w, "down", http.StatusServiceUnavailable)
			}
		case "/hold", "/hold-local": // long enough to be canceled while in flight
			time.Sleep(2 * time.Second)
		case "/linger": // goes on after its caller gives up, as a slow server does
			time.Sleep(5 * time.Second)
		case "/fails-once": // fails its first call for good: fixed before a reset
			if _, seen := flaky.LoadOrStore("once/"+req.Header.Get("Idempotency-Key"), true); !seen {
				http.Error(w, "no such user", http.StatusNotFound)
			}
		case "/first-fails": // fails the first event of an ordered key
			var body struct{ Data struct{ Seq json.Number } }
			if json.NewDecoder(req.Body).Decode(&body) == nil && body.Data.Seq == "1" {
				http.Error(w, "no such user", http.StatusNotFound)
			}
		}
	}))
	t.Cleanup(fn.Close)

	later := time.Now().Add(time.Hour).UTC()
	soon := time.Now().Add(3 * time.Second).UTC()
	task := func(id, fn string) dispatcher.Action {
		return dispatcher.Action{ID: id, Type: dispatcher.ActionTask, FunctionName: fn}
	}
	store := &testenv.MemStore{
		Dispatchers: []dispatcher.Dispatcher{
			{ID: "d-completed", EventType: "completed", Actions: []dispatcher.Action{
				{ID: "m1", Type: dispatcher.ActionMail, TemplateID: "tpl", Recipients: dispatcher.Recipients{To: []string{"{{ .event.content.email }}"}}},
				{ID: "t1", Type: dispatcher.ActionTask, FunctionName: "ok", Data: json.RawMessage(`{"userId":"{{ .event.content.userId }}"}`)},
				{ID: "c1", Type: dispatcher.ActionTask, FunctionName: "child", Data: json.RawMessage(`{"userId":"{{ .event.content.userId }}"}`)},
			}},
			{ID: "d-failed-1", EventType: "failed", Actions: []dispatcher.Action{
				{ID: "m1", Type: dispatcher.ActionMail, TemplateID: "tpl", Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}}},
				task("t1", "gone"),
			}},
			{ID: "d-failed-2", EventType: "failed", Actions: []dispatcher.Action{
				{ID: "m2", Type: dispatcher.ActionMail, TemplateID: "bad", Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}}},
			}},
			{ID: "d-handoff", EventType: "handoff", Actions: []dispatcher.Action{task("t1", "flaky")}},
			{ID: "d-failed-retrying", EventType: "failed-retrying", Actions: []dispatcher.Action{task("t1", "missing"), task("t2", "flaky")}},
			{ID: "d-regular", EventType: "regular", Actions: []dispatcher.Action{task("t1", "patient")}},
			{ID: "d-scheduled", EventType: "scheduled", Actions: []dispatcher.Action{
				{ID: "t1", Type: dispatcher.ActionTask, FunctionName: "ok", StartTimestamp: &soon},
			}},
			{ID: "d-canceled-later", EventType: "canceled-later", Actions: []dispatcher.Action{
				{ID: "t1", Type: dispatcher.ActionTask, FunctionName: "hold-local", StartTimestamp: &soon},
			}},
			{ID: "d-canceled", EventType: "canceled", Actions: []dispatcher.Action{
				{ID: "t1", Type: dispatcher.ActionTask, FunctionName: "ok", StartTimestamp: &later},
			}},
			{ID: "d-inflight", EventType: "inflight", Actions: []dispatcher.Action{task("t1", "hold")}},
			{ID: "d-timeout", EventType: "timeout", Actions: []dispatcher.Action{
				{ID: "t1", Type: dispatcher.ActionTask, FunctionName: "hold-1s", RetryPolicy: &dispatcher.RetryPolicy{MaximumAttempts: 1}},
			}},
			{ID: "d-failed-waiting", EventType: "failed-waiting", Actions: []dispatcher.Action{
				task("t1", "gone"),
				{ID: "t2", Type: dispatcher.ActionTask, FunctionName: "ok", StartTimestamp: &later},
			}},
			{ID: "d-retrying-waiting", EventType: "retrying-waiting", Actions: []dispatcher.Action{
				task("t1", "flaky"),
				{ID: "t2", Type: dispatcher.ActionTask, FunctionName: "ok", StartTimestamp: &later},
			}},
			{ID: "d-missing-waiting", EventType: "missing-waiting", Actions: []dispatcher.Action{
				task("t1", "missing"),
				{ID: "t2", Type: dispatcher.ActionTask, FunctionName: "ok", StartTimestamp: &later},
			}},
			{ID: "d-canceled-child", EventType: "canceled-child", Actions: []dispatcher.Action{task("t1", "stubborn")}},
			{ID: "d-children", EventType: "children", Actions: []dispatcher.Action{
				{ID: "c1", Type: dispatcher.ActionTask, FunctionName: "child", Data: json.RawMessage(`{"name":"{{ .event.content.name }}"}`)},
				{ID: "c2", Type: dispatcher.ActionTask, FunctionName: "child", Data: json.RawMessage(`{"user":"{{ .event.content.userId }}"}`)},
			}},
			{ID: "d-bulk", EventType: "bulk", Actions: []dispatcher.Action{task("t1", "gone")}},
			{ID: "d-paused", EventType: "skipped", Paused: true, Actions: []dispatcher.Action{task("t1", "ok")}},
			{ID: "d-filtered", EventType: "skipped", Filter: `event.content.userId == 7`, Actions: []dispatcher.Action{task("t1", "ok")}},
			{ID: "d-runs", EventType: "skipped", Filter: `event.content.userId == 42`, Actions: []dispatcher.Action{task("t1", "ok")}},
			{ID: "d-gated", EventType: "gated", Actions: []dispatcher.Action{{ID: "t1", Type: dispatcher.ActionTask, FunctionName: "guarded",
				RetryPolicy: &dispatcher.RetryPolicy{MaximumAttempts: 5, InitialInterval: time.Second}}}},
			{ID: "d-ordered-slow", EventType: "ordered-slow", Ordering: &dispatcher.Ordering{Key: "content.userId", OnFailure: dispatcher.OrderingBlock},
				Actions: []dispatcher.Action{task("t1", "linger")}},
			{ID: "d-ordered-reset", EventType: "ordered-reset", Ordering: &dispatcher.Ordering{Key: "content.userId", OnFailure: dispatcher.OrderingBlock},
				Actions: []dispatcher.Action{task("t1", "fails-once")}},
			{ID: "d-ordered", EventType: "ordered", Ordering: &dispatcher.Ordering{Key: "content.userId", OnFailure: dispatcher.OrderingBlock},
				Actions: []dispatcher.Action{{ID: "t1", Type: dispatcher.ActionTask, FunctionName: "first-fails",
					Data: json.RawMessage(`{"seq":"{{ .event.content.seq }}"}`)}}},
		},
		Templates: map[string]dispatcher.Template{
			"tpl": {ID: "tpl", Subject: "Goodbye {{ .content.name }}", Text: "Bye"},
			"bad": {ID: "bad", Subject: "Hi {{ .event.content.nope }}"},
		},
		Functions: map[string]dispatcher.Function{
			"ok":          {Name: "ok", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/ok", Timeout: 5 * time.Second},
			"gone":        {Name: "gone", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/gone", Timeout: 5 * time.Second},
			"flaky":       {Name: "flaky", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/flaky", Timeout: 5 * time.Second},
			"patient":     {Name: "patient", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/ok", Timeout: 5 * time.Minute},
			"hold":        {Name: "hold", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/hold", Timeout: 2 * time.Minute},
			"hold-1s":     {Name: "hold-1s", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/hold", Timeout: time.Second},
			"hold-local":  {Name: "hold-local", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/hold-local", Timeout: 30 * time.Second},
			"linger":      {Name: "linger", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/linger", Timeout: time.Minute},
			"child":       {Name: "child", Kind: dispatcher.FunctionTemporal, TaskQueue: recordQueue},
			"stubborn":    {Name: "stubborn", Kind: dispatcher.FunctionTemporal, TaskQueue: recordQueue},
			"fails-once":  {Name: "fails-once", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/fails-once", Timeout: 5 * time.Second},
			"first-fails": {Name: "first-fails", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/first-fails", Timeout: 5 * time.Second},
			"rate-held": {Name: "rate-held", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/ok", Timeout: 5 * time.Second,
				Flow: dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 1, Burst: 1}}},
			"guarded": {Name: "guarded", Kind: dispatcher.FunctionHTTP, URL: fn.URL + "/guarded", Timeout: 5 * time.Second,
				Flow: dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 10, Burst: 1}, MaxConcurrency: 1,
					CircuitBreaker: &dispatcher.CircuitBreaker{Failures: 2, Window: time.Minute, ProbeInterval: 3 * time.Second}}},
		},
	}
	r.store = store
	outbound, err := dispatcher.NewOutbound([]string{"127.0.0.0/8"}, []string{recordQueue}) // the sink, the child
	if err != nil {
		t.Fatal(err)
	}
	effects, err := activities.New(activities.Options{Store: store, SMTPURL: "smtp://" + testenv.SMTP(t).Addr, MailFrom: "no-reply@example.com",
		Outbound: outbound})
	if err != nil {
		t.Fatal(err)
	}
	if r.ex, err = dispatch.NewExecutions(dispatch.ExecutionsOptions{Client: r.c, TaskQueue: recordQueue,
		Audit: testenv.Store(t), Dispatchers: store}); err != nil {
		t.Fatal(err)
	}
	w := worker.New(r.c, recordQueue, worker.Options{})
	register(w, effects, dispatch.NewReplayActivities(r.ex), r.c)
	w.RegisterWorkflowWithOptions(func(workflow.Context, dispatcher.TaskPayload) error { return nil },
		workflow.RegisterOptions{Name: "child"})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context, _ dispatcher.TaskPayload) error {
		ctx, _ = workflow.NewDisconnectedContext(ctx) // it ignores a cancel
		workflow.GetSignalChannel(ctx, "finish").Receive(ctx, nil)
		return nil
	}, workflow.RegisterOptions{Name: "stubborn"})
	rw := worker.New(r.c, workflows.ReplayTaskQueue(recordQueue), worker.Options{})
	rw.RegisterActivity(dispatch.NewReplayActivities(r.ex))
	for _, w := range []worker.Worker{w, rw} {
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	// The intake hands each dispatch its configuration, as the API does;
	// bare is a starter that does not (an API of an older version).
	r.s = dispatch.Starter{Client: r.c, TaskQueue: recordQueue, Eager: true, Configs: activities.NewCache(store)}
	r.bare = dispatch.Starter{Client: r.c, TaskQueue: recordQueue, Eager: true}
	return r
}

// recordGated records two dispatches of a gated function (dispatchV4)
// whose first calls fail and open its circuit: their retries wait for
// their permits, without spending attempts, until the probe succeeds and
// closes it. Then the Gate that served them, once it completed idle.
func (r *recorder) recordGated(dir string) {
	r.t.Helper()
	var runs []dispatcher.StartResult
	for _, id := range []string{"record-gated-1", "record-gated-2"} {
		runs = append(runs, r.dispatchID("gated", id, false))
	}
	for i, run := range runs {
		r.wait(run.WorkflowID, run.RunID)
		r.save(run.WorkflowID, run.RunID, filepath.Join(dir, fmt.Sprintf("gated-%d.json", i+1)))
	}
	gate := dispatcher.GateWorkflowID("", "guarded")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // it completes a minute after its last call
	defer cancel()
	if err := r.c.GetWorkflow(ctx, gate, "").Get(ctx, nil); err != nil {
		r.t.Fatalf("the gate: %v", err)
	}
	r.save(gate, "", filepath.Join("testdata", "histories", "gate", recordGateVersion, "served.json"))
}

// recordBoundedGate records a Gate that starts over both of its byte
// bounds (gateSizeV1), as long event ids take it: it grants nothing while
// its permits out take all their room, and refuses a request over its
// waiting bytes. Saved while it runs, then terminated.
func (r *recorder) recordBoundedGate() {
	r.t.Helper()
	now := time.Now().UTC()
	st := overBounds(r.t, now, now.Add(time.Hour))
	id := dispatcher.GateWorkflowID("", "bounded")
	if _, err := r.c.ExecuteWorkflow(r.ctx(), client.StartWorkflowOptions{ID: id, TaskQueue: recordQueue},
		workflows.WorkflowGate, workflows.GateInput{Function: "bounded", State: st}); err != nil {
		r.t.Fatal(err)
	}
	if err := r.c.SignalWorkflow(r.ctx(), id, "", workflows.SignalGateRequest, workflows.PermitRequest{ID: "over", WorkflowID: "dispatch-over", Lease: time.Hour}); err != nil {
		r.t.Fatal(err)
	}
	testenv.Eventually(r.t, 30*time.Second, func() string {
		signaled, handled := false, false
		it := r.c.GetWorkflowHistory(r.ctx(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				return err.Error()
			}
			signaled = signaled || e.GetEventType() == enums.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
			handled = handled || signaled && e.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
		}
		if !handled {
			return "waiting for the gate to handle the request"
		}
		return ""
	})
	v, err := r.c.QueryWorkflow(r.ctx(), id, "", workflows.QueryGate)
	var fs dispatcher.FlowState
	if err == nil {
		err = v.Get(&fs)
	}
	if err != nil || fs.Waiting != len(st.Waiting) || fs.InFlight != len(st.Leases) {
		r.t.Fatalf("the bounded gate: %+v, %v; want %d waiting and %d in flight, as it started", fs, err, len(st.Waiting), len(st.Leases))
	}
	r.save(id, "", filepath.Join("testdata", "histories", "gate", recordGateVersion, "bounded.json.gz"))
	if err := r.c.TerminateWorkflow(r.ctx(), id, "", "recorded"); err != nil {
		r.t.Fatal(err)
	}
}

// recordIdleOpenGate records a Gate whose circuit is open with no call
// left to probe it (gateIdleOpenV1): it waits for the probe's time,
// forgets the circuit, and completes idle a minute later.
func (r *recorder) recordIdleOpenGate() {
	r.t.Helper()
	now := time.Now().UTC()
	id := dispatcher.GateWorkflowID("", "idle-open")
	st := &workflows.GateState{FlowRead: now, Open: true, OpenedAt: now.Add(-time.Minute), NextProbe: now.Add(3 * time.Second),
		Flow: dispatcher.Flow{CircuitBreaker: &dispatcher.CircuitBreaker{Failures: 3, Window: time.Minute, ProbeInterval: time.Minute}}}
	run, err := r.c.ExecuteWorkflow(r.ctx(), client.StartWorkflowOptions{ID: id, TaskQueue: recordQueue},
		workflows.WorkflowGate, workflows.GateInput{Function: "idle-open", State: st})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := run.Get(ctx, nil); err != nil {
		r.t.Fatalf("the idle open gate: %v", err)
	}
	r.save(id, "", filepath.Join("testdata", "histories", "gate", recordGateVersion, "idle-open.json"))
}

// recordMovedGate records Gates whose request comes again from another
// run of its dispatch, as a reset's does (gateRunV1), each completing idle
// a minute after its last permit:
//   - moved: paused, its waiting request points at the new run, whose
//     permit, once the pause ends, does not arrive (no such run) and is
//     reclaimed; then the first run asks late, which changes nothing;
//   - moved-lease: its permit is out to a run (a workflow of the
//     recorder's own stands in for the dispatch) when the new run asks:
//     the new run waits for the lease (gate-moved-waits), which ends when
//     the first run reports; the permit goes to the new run, does not
//     arrive, and the lease ends. (Gate v2's moved-lease was recorded
//     before: the lease moved at once.)
func (r *recorder) recordMovedGate() {
	r.t.Helper()
	now := time.Now().UTC()
	until := now.Add(3 * time.Second)
	gone1, gone2 := "4f0c1e52-6a1b-4c3e-9d2a-000000000001", "4f0c1e52-6a1b-4c3e-9d2a-000000000002"
	ask := func(run client.WorkflowRun, id, workflowID, runID string) {
		if err := r.c.SignalWorkflow(r.ctx(), run.GetID(), "", workflows.SignalGateRequest,
			workflows.PermitRequest{ID: id, WorkflowID: workflowID, RunID: runID, Lease: time.Hour}); err != nil {
			r.t.Fatal(err)
		}
	}
	moved := r.startGate("moved", &workflows.GateState{FlowRead: now, Flow: dispatcher.Flow{PausedUntil: &until}})
	ask(moved, "moved", "dispatch-moved", gone1)
	ask(moved, "moved", "dispatch-moved", gone2)
	ask(moved, "moved", "dispatch-moved", gone1)

	target := r.startGate("moved-target", &workflows.GateState{FlowRead: now})
	lease := r.startGate("moved-lease", &workflows.GateState{FlowRead: now, Flow: dispatcher.Flow{MaxConcurrency: 1}})
	ask(lease, "moved-lease", target.GetID(), target.GetRunID())
	waitForEvent(r.t, r.c, lease.GetID(), lease.GetRunID(), enums.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED, "waiting for the permit to reach its run")
	ask(lease, "moved-lease", target.GetID(), gone2)
	// The run the permit reached reports its call (gate-moved-waits: the
	// new run's request waited for it), and the permit goes to the new run.
	if err := r.c.SignalWorkflow(r.ctx(), lease.GetID(), "", workflows.SignalGateDone,
		workflows.PermitDone{RequestID: "moved-lease", Result: workflows.PermitOK, RunID: target.GetRunID()}); err != nil {
		r.t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, run := range []client.WorkflowRun{moved, lease, target} {
		if err := run.Get(ctx, nil); err != nil {
			r.t.Fatalf("gate %s: %v", run.GetID(), err)
		}
	}
	r.save(moved.GetID(), "", filepath.Join("testdata", "histories", "gate", recordGateVersion, "moved.json"))
	r.save(lease.GetID(), "", filepath.Join("testdata", "histories", "gate", recordGateVersion, "moved-lease.json"))
}

// recordRateHeldGate records a Gate whose rate is raised from 1 to 5 a
// second while its requests wait and the permits it granted at the old
// rate wait for their slots (gate-rate, gate-rate-held): the new rate's
// first slot follows the last of them. Another Gate stands in for the
// dispatch the permits go to. Saved once both completed idle.
func (r *recorder) recordRateHeldGate() {
	r.t.Helper()
	now := time.Now().UTC()
	target := r.startGate("rate-held-target", &workflows.GateState{FlowRead: now})
	gate := r.startGate("rate-held", &workflows.GateState{FlowRead: now, Flow: dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 1, Burst: 1}}})
	for i := range 20 {
		if err := r.c.SignalWorkflow(r.ctx(), gate.GetID(), "", workflows.SignalGateRequest,
			workflows.PermitRequest{ID: fmt.Sprint("rate-held-", i), WorkflowID: target.GetID(), RunID: target.GetRunID(), Lease: time.Second}); err != nil {
			r.t.Fatal(err)
		}
	}
	// Read at the gate's next refresh (10 s), with permits out ahead.
	r.store.UpdateFunction("rate-held", func(f *dispatcher.Function) {
		f.Flow.RateLimit = &dispatcher.RateLimit{PerSecond: 5, Burst: 1}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, run := range []client.WorkflowRun{gate, target} {
		if err := run.Get(ctx, nil); err != nil {
			r.t.Fatalf("gate %s: %v", run.GetID(), err)
		}
	}
	r.requireMarker(gate.GetID(), gate.GetRunID(), "gate-rate-held")
	r.save(gate.GetID(), "", filepath.Join("testdata", "histories", "gate", recordGateVersion, "rate-held.json"))
}

// startGate starts the Gate of function with st.
func (r *recorder) startGate(function string, st *workflows.GateState) client.WorkflowRun {
	r.t.Helper()
	run, err := r.c.ExecuteWorkflow(r.ctx(), client.StartWorkflowOptions{ID: dispatcher.GateWorkflowID("", function), TaskQueue: recordQueue},
		workflows.WorkflowGate, workflows.GateInput{Function: function, State: st})
	if err != nil {
		r.t.Fatal(err)
	}
	return run
}

// recordSequence records a Sequence: two events of one key, the first of
// which fails and blocks the key until it is released, then the second.
func (r *recorder) recordSequence() {
	r.t.Helper()
	dir := filepath.Join("testdata", "histories", "sequence", recordSequenceVersion)
	var first dispatcher.StartResult
	for seq := 1; seq <= 2; seq++ {
		res, err := r.s.Start(r.ctx(), dispatcher.Event{ID: fmt.Sprint("record-ordered-", seq), Type: "ordered", Time: time.Now().UTC(),
			Source: "record", Content: json.RawMessage(fmt.Sprintf(`{"userId":42,"seq":%d}`, seq))})
		if err != nil || !res.Sequenced {
			r.t.Fatalf("ordered event %d: %+v, %v", seq, res, err)
		}
		if seq == 1 {
			first = res
		}
	}
	seqID := dispatcher.Sequence{Field: "content.userId", Key: "42"}.WorkflowID("")
	blocked := func() bool {
		v, err := r.c.QueryWorkflow(r.ctx(), seqID, "", workflows.QuerySequence)
		var st workflows.SequenceState
		return err == nil && v.Get(&st) == nil && st.Blocked == first.WorkflowID && len(st.Queue) == 1
	}
	testenv.Eventually(r.t, 30*time.Second, func() string {
		if !blocked() {
			return "waiting for the first ordered dispatch to block its key"
		}
		return ""
	})
	r.save(seqID, "", filepath.Join(dir, "blocked.json"))
	if _, err := r.ex.Release(r.ctx(), first.WorkflowID, "recorder"); err != nil {
		r.t.Fatal(err)
	}
	r.wait(dispatcher.WorkflowID("record-ordered-2"), "")
	r.save(seqID, "", filepath.Join(dir, "released.json"))
	r.recordCanceledSequence(dir)
	r.recordCanceledOverflow(dir)
	r.recordOverflow(dir)
	recordLongHead(r.t, dir)
	c, atOnce := suggestedAtOnce(r.t)
	(&recorder{t: r.t, c: c}).save(suggestedAtOnceID, atOnce, filepath.Join(dir, "suggested-at-once.json"))
	c, dup := duplicateStillRunning(r.t)
	(&recorder{t: r.t, c: c}).save(dup.GetID(), dup.GetRunID(), filepath.Join(dir, "duplicate.json"))
}

// recordCanceledSequence records the Sequence of a key blocked by its
// first event, with two waiting behind it, canceled: it dispatches the two
// as refused (sequenceCancelV1) and closes canceled.
func (r *recorder) recordCanceledSequence(dir string) {
	r.t.Helper()
	for seq := 1; seq <= 3; seq++ {
		res, err := r.s.Start(r.ctx(), dispatcher.Event{ID: fmt.Sprint("record-canceled-", seq), Type: "ordered", Time: time.Now().UTC(),
			Source: "record", Content: json.RawMessage(fmt.Sprintf(`{"userId":43,"seq":%d}`, seq))})
		if err != nil || !res.Sequenced {
			r.t.Fatalf("ordered event %d: %+v, %v", seq, res, err)
		}
	}
	seqID := dispatcher.Sequence{Field: "content.userId", Key: "43"}.WorkflowID("")
	testenv.Eventually(r.t, 30*time.Second, func() string {
		v, err := r.c.QueryWorkflow(r.ctx(), seqID, "", workflows.QuerySequence)
		var st workflows.SequenceState
		if err == nil && v.Get(&st) == nil && st.Blocked != "" && len(st.Queue) == 2 {
			return ""
		}
		return "waiting for the key's first dispatch to block it, two events behind"
	})
	if err := r.c.CancelWorkflow(r.ctx(), seqID, ""); err != nil {
		r.t.Fatal(err)
	}
	var canceled *temporal.CanceledError
	if err := r.c.GetWorkflow(r.ctx(), seqID, "").Get(r.ctx(), nil); !errors.As(err, &canceled) {
		r.t.Fatalf("the canceled Sequence ended with %v", err)
	}
	r.wait(dispatcher.WorkflowID("record-canceled-3"), "")
	r.save(seqID, "", filepath.Join(dir, "canceled.json"))
}

// recordCanceledOverflow records the Sequence of a key whose first
// dispatch's call is in flight, with 7 events of 200 KiB waiting, canceled
// while that dispatch winds down; an event that comes meanwhile does not
// fit, and is dispatched as an overflow (sequenceCanceledOverflowV1).
func (r *recorder) recordCanceledOverflow(dir string) {
	r.t.Helper()
	pad := strings.Repeat("x", 200<<10)
	seqID := dispatcher.Sequence{Field: "content.userId", Key: "45"}.WorkflowID("")
	send := func(seq int, pad string) {
		res, err := r.s.Start(r.ctx(), dispatcher.Event{ID: fmt.Sprint("record-canceled-overflow-", seq), Type: "ordered-slow", Time: time.Now().UTC(),
			Source: "record", Content: json.RawMessage(fmt.Sprintf(`{"userId":45,"seq":%d,"pad":%q}`, seq, pad))})
		if err != nil || !res.Sequenced {
			r.t.Fatalf("ordered event %d: %+v, %v", seq, res, err)
		}
	}
	send(1, "")
	testenv.Eventually(r.t, 30*time.Second, func() string {
		if r.calls("/linger") == 0 {
			return "waiting for the key's first dispatch to call its function"
		}
		return ""
	})
	for seq := 2; seq <= 8; seq++ {
		send(seq, pad)
	}
	testenv.Eventually(r.t, 30*time.Second, func() string {
		v, err := r.c.QueryWorkflow(r.ctx(), seqID, "", workflows.QuerySequence)
		var st workflows.SequenceState
		if err == nil && v.Get(&st) == nil && len(st.Queue) == 7 {
			return ""
		}
		return "waiting for 7 events to wait behind the first"
	})
	run := r.c.GetWorkflow(r.ctx(), seqID, "").GetRunID()
	if err := r.c.CancelWorkflow(r.ctx(), seqID, run); err != nil {
		r.t.Fatal(err)
	}
	send(9, pad)
	var canceled *temporal.CanceledError
	if err := r.c.GetWorkflow(r.ctx(), seqID, run).Get(r.ctx(), nil); !errors.As(err, &canceled) {
		r.t.Fatalf("the canceled Sequence ended with %v", err)
	}
	last := dispatcher.WorkflowID("record-canceled-overflow-9")
	r.wait(last, "")
	// Dispatched as an overflow by the canceled run, it failed; had the
	// run closed before it came, a new run would have run it.
	if d, err := r.c.DescribeWorkflowExecution(r.ctx(), last, ""); err != nil || d.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_FAILED {
		r.t.Fatalf("the event sent after the cancel: %v, %v; want its dispatch failed as an overflow", d.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	r.save(seqID, run, filepath.Join(dir, "canceled-overflow.json.gz"))
}

// recordLongHead records the Sequence of longHead (its own dev server,
// which suggests continuing as new early): the run that hands its running
// head over as it continues as new, and the run in which the head ends,
// awaited by ActivityAwaitDispatch.
func recordLongHead(t *testing.T, dir string) {
	c, first := longHead(t, 60)
	r := &recorder{t: t, c: c}
	r.save(longHeadID, first, filepath.Join(dir, "handed-over.json"))
	runs, err := c.ListWorkflow(r.ctx(), &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowId = '" + longHeadID + "'"})
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range runs.GetExecutions() {
		it := c.GetWorkflowHistory(r.ctx(), longHeadID, run.GetExecution().GetRunId(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			if e.GetActivityTaskCompletedEventAttributes() != nil {
				r.save(longHeadID, run.GetExecution().GetRunId(), filepath.Join(dir, "awaited.json"))
				return
			}
		}
	}
	t.Fatal("no run of the Sequence saw its head's end")
}

// recordOverflow records a Sequence whose key is blocked while more
// events arrive than it can carry (SequenceQueueBytes): 7 of 200 KiB
// wait, the next 2 are dispatched at once as overflows. Their events'
// padding compresses, so the histories are saved gzipped.
func (r *recorder) recordOverflow(dir string) {
	r.t.Helper()
	pad := strings.Repeat("x", 200<<10)
	seqID := dispatcher.Sequence{Field: "content.userId", Key: "43"}.WorkflowID("")
	for seq := 1; seq <= 10; seq++ {
		res, err := r.s.Start(r.ctx(), dispatcher.Event{ID: fmt.Sprint("record-overflow-", seq), Type: "ordered", Time: time.Now().UTC(),
			Source: "record", Content: json.RawMessage(fmt.Sprintf(`{"userId":43,"seq":%d,"pad":%q}`, seq, pad))})
		if err != nil || !res.Sequenced {
			r.t.Fatalf("ordered event %d: %+v, %v", seq, res, err)
		}
		if seq > 1 {
			continue
		}
		// The first holds the key before the others come: taken in one
		// workflow task with them, it would wait in the queue too.
		testenv.Eventually(r.t, 30*time.Second, func() string {
			v, err := r.c.QueryWorkflow(r.ctx(), seqID, "", workflows.QuerySequence)
			var st workflows.SequenceState
			if err == nil && v.Get(&st) == nil && st.Blocked == dispatcher.WorkflowID("record-overflow-1") {
				return ""
			}
			return "waiting for the key's first dispatch to block it"
		})
	}
	over := dispatcher.WorkflowID("record-overflow-10")
	testenv.Eventually(r.t, 30*time.Second, func() string {
		d, err := r.c.DescribeWorkflowExecution(r.ctx(), over, "")
		if err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_FAILED {
			return ""
		}
		return "waiting for the overflow dispatch to fail"
	})
	r.save(over, "", filepath.Join("testdata", "histories", "dispatch", recordDispatchVersion, "overflow.json.gz"))
	testenv.Eventually(r.t, 30*time.Second, func() string {
		v, err := r.c.QueryWorkflow(r.ctx(), seqID, "", workflows.QuerySequence)
		var st workflows.SequenceState
		if err == nil && v.Get(&st) == nil && st.Blocked == dispatcher.WorkflowID("record-overflow-1") && len(st.Queue) == 7 {
			return ""
		}
		return fmt.Sprintf("waiting for the key to block with 7 events waiting (blocked %q, %d waiting)", st.Blocked, len(st.Queue))
	})
	r.save(seqID, "", filepath.Join(dir, "overflow.json.gz"))
}

func (r *recorder) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	r.t.Cleanup(cancel)
	return ctx
}

// dispatch sends an event of eventType (id "record-<eventType>") and, when
// wait, waits for its dispatch to close.
func (r *recorder) dispatch(eventType string, wait bool) dispatcher.StartResult {
	return r.dispatchID(eventType, "record-"+eventType, wait)
}

// dispatchPinned is dispatchID by an intake of Dispatch version v, as
// during a rolling upgrade.
func (r *recorder) dispatchPinned(v int, eventType, id string, wait bool) dispatcher.StartResult {
	r.t.Helper()
	if err := workflows.PinDispatchVersion(v); err != nil {
		r.t.Fatal(err)
	}
	defer func() {
		if err := workflows.PinDispatchVersion(workflows.NewestDispatchVersion); err != nil {
			r.t.Fatal(err)
		}
	}()
	return r.dispatchID(eventType, id, wait)
}

func (r *recorder) dispatchID(eventType, id string, wait bool) dispatcher.StartResult {
	r.t.Helper()
	res, err := r.s.Start(r.ctx(), dispatcher.Event{ID: id, Type: eventType, Time: time.Now().UTC(), Source: "record",
		Content: json.RawMessage(`{"name":"Ann","email":"ann@example.com","userId":42}`)})
	if err != nil {
		r.t.Fatalf("%s: start: %v", eventType, err)
	}
	if wait {
		r.wait(res.WorkflowID, res.RunID)
	}
	return res
}

// wait waits for a run to close, however it ends (a failed dispatch
// ends with an error).
func (r *recorder) wait(workflowID, runID string) {
	r.t.Helper()
	if err := r.c.GetWorkflow(r.ctx(), workflowID, runID).Get(r.ctx(), nil); err != nil {
		r.t.Logf("%s ended: %v", workflowID, err)
	}
}

// cancelWhen cancels a dispatch once ready holds, and waits for it to close.
func (r *recorder) cancelWhen(run dispatcher.StartResult, ready func() bool) {
	r.t.Helper()
	testenv.Eventually(r.t, 30*time.Second, func() string {
		if !ready() {
			return "waiting for " + run.WorkflowID + " to be ready for its cancel"
		}
		return ""
	})
	if _, err := r.ex.Cancel(r.ctx(), run.WorkflowID, "recorder"); err != nil {
		r.t.Fatal(err)
	}
	r.wait(run.WorkflowID, run.RunID)
}

func (r *recorder) status(run dispatcher.StartResult) string {
	d, err := r.ex.Get(r.ctx(), run.WorkflowID, run.RunID)
	if err != nil {
		return ""
	}
	return d.Status
}

func (r *recorder) calls(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.callsBy[path]
}

// requireMarker fails the recording unless the run's history holds the
// version marker of change: a path recorded for a marker that its timing
// missed (a signal that came with a task that drained it by ReceiveAsync)
// would replay without testing it.
func (r *recorder) requireMarker(workflowID, runID, change string) {
	r.t.Helper()
	want, err := converter.GetDefaultDataConverter().ToPayload(change)
	if err != nil {
		r.t.Fatal(err)
	}
	it := r.c.GetWorkflowHistory(r.ctx(), workflowID, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			r.t.Fatalf("history of %s: %v", workflowID, err)
		}
		for _, p := range e.GetMarkerRecordedEventAttributes().GetDetails()["change-id"].GetPayloads() {
			if bytes.Equal(p.GetData(), want.GetData()) {
				return
			}
		}
	}
	r.t.Fatalf("the history of %s holds no marker %q: recorded so, it would not test it", workflowID, change)
}

// save writes the history of a run to path, unless a history is there:
// recorded histories are never rewritten.
func (r *recorder) save(workflowID, runID, path string) {
	r.t.Helper()
	if _, err := os.Stat(path); err == nil {
		r.t.Logf("%s exists: kept as recorded", path)
		return
	}
	var h historypb.History
	it := r.c.GetWorkflowHistory(r.ctx(), workflowID, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			r.t.Fatalf("history of %s: %v", workflowID, err)
		}
		h.Events = append(h.Events, e)
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(&h)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		r.t.Fatal(err)
	}
	b = append(b, '\n')
	if strings.HasSuffix(path, ".gz") {
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		if _, err := w.Write(b); err != nil || w.Close() != nil {
			r.t.Fatal("gzip", err)
		}
		b = z.Bytes()
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.t.Logf("recorded %d events of %s into %s", len(h.Events), workflowID, path)
}

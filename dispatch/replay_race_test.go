package dispatch_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// Replays that race for one run start one replay: before, each got a
// random replay ID, and a replay that finished in milliseconds let the
// next request start another, under other Idempotency-Keys.
func TestConcurrentReplaysStartOne(t *testing.T) {
	e := newExecutionsEnv(t)
	failed := e.dispatch("ev-race", "signup", true)
	wf := failed.WorkflowID
	e.broken.Store(false)

	const n = 12
	results := make([]dispatcher.ReplayResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: wf, RunID: failed.RunID,
				Actions: []string{"t1"}, Actor: fmt.Sprint("user-", i)})
		})
	}
	wg.Wait()
	started := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if results[i].RunID != results[0].RunID || results[i].ReplayID != results[0].ReplayID {
			t.Fatalf("request %d got run %s, request 0 run %s: two replays", i, results[i].RunID, results[0].RunID)
		}
		if !results[i].AlreadyStarted {
			started++
		}
	}
	if started != 1 {
		t.Errorf("%d answers say they started the replay, want 1", started)
	}
	e.wait(wf, results[0].RunID)
	// m2, not replayed, is carried: the replay fails with it.
	e.list(dispatcher.ExecutionFilter{EventID: "ev-race", Status: dispatcher.ExecutionFailed, ErrorClass: dispatcher.FailureHTTPPermanent}, wf)
	e.list(dispatcher.ExecutionFilter{EventID: "ev-race", Status: dispatcher.ExecutionFailed, ErrorClass: dispatcher.FailureTemplate}, wf, wf)
	d, err := e.ex.Get(e.ctx(), wf, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Runs) != 2 || len(d.Audit) != 1 {
		t.Fatalf("%d runs and audit %+v; want the dispatch and one replay, recorded once", len(d.Runs), d.Audit)
	}
	e.mu.Lock()
	keys := slices.Clone(e.keys)
	e.mu.Unlock()
	if want := []string{wf + "/d1/t1", wf + "/d1/t1/replay-" + results[0].ReplayID}; !slices.Equal(keys, want) {
		t.Fatalf("function calls %q, want %q", keys, want)
	}
}

// A replay asked for while another's run is still running, as a second
// support person's CLI does once it read that run as the latest, says a
// replay runs: "wait, then replay" had them replay that replay once it
// finished, though it may well succeed.
func TestReplayWhileAReplayRuns(t *testing.T) {
	e := newExecutionsEnv(t)
	failed := e.dispatch("ev-replaying", "signup", true)
	e.store.Update("d1", func(d *dispatcher.Dispatcher) {
		for i := range d.Actions {
			if d.Actions[i].ID == "t1" {
				d.Actions[i].FunctionName = "slow"
			}
		}
	})
	r, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "bob",
		Actions: []string{"t1"}, Config: dispatcher.ReplayConfigCurrent})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.called:
	case <-time.After(30 * time.Second):
		d, err := e.ex.Get(e.ctx(), failed.WorkflowID, r.RunID)
		t.Fatalf("the replay's call did not come: %+v %v", d.Outcomes, err)
	}
	_, err = e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, RunID: r.RunID, Actor: "ann"})
	if want := "run " + r.RunID + ", a replay of run " + failed.RunID + ", is still running; follow it"; dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		!strings.Contains(err.Error(), want) {
		t.Errorf("replay during bob's: %v, want ESTATE saying %q", err, want)
	}
	// Bob's request sent again while its replay runs (a double click) is
	// answered as it was; before, it was refused as "being replayed".
	again, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "bob",
		Actions: []string{"t1"}, Config: dispatcher.ReplayConfigCurrent})
	if err != nil || !again.AlreadyStarted || again.RunID != r.RunID {
		t.Errorf("bob's request again during his replay: %+v, %v; want run %s, already started", again, err, r.RunID)
	}
	close(e.release)
	e.wait(failed.WorkflowID, r.RunID)
}

// A replay request without a runId that comes again once the replay it
// started has failed (a double click, a client's retry) gets the first
// one's answer, and another requester's is refused: it would replay that
// replay, another call under another key (concurrency probe: 6 double
// clicks of 10 made two replays). Naming the run replays it.
func TestReplayRequestSentAgain(t *testing.T) {
	e := newExecutionsEnv(t)
	failed := e.dispatch("ev-twice", "signup", true)
	first, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	e.wait(failed.WorkflowID, first.RunID) // it fails again: the function is still broken
	again, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "bob"})
	if err != nil || !again.AlreadyStarted || again.RunID != first.RunID || again.ReplayOf != failed.RunID {
		t.Fatalf("the request sent again: %+v, %v; want run %s, already started", again, err, first.RunID)
	}
	_, err = e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "ann"})
	if want := fmt.Sprintf(`was replayed moments ago: run %s, a replay of run %s (asked for by bob), is failed already; a request without a runId sent again would replay that replay. To replay it, name it: {"runId": %q}`,
		first.RunID, failed.RunID, first.RunID); dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(err.Error(), want) {
		t.Fatalf("another requester's: %v, want ESTATE saying %q", err, want)
	}
	named, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, RunID: first.RunID, Actor: "bob"})
	if err != nil || named.AlreadyStarted || named.RunID == first.RunID {
		t.Fatalf("the replay of the replay, named: %+v, %v; want a new run", named, err)
	}
	e.wait(failed.WorkflowID, named.RunID)
}

// A replay started whose record in the audit trail failed (a blip of the
// database: the answer was 503, "try again") is answered, sent again, as
// the replay it started, and recorded then. Before, the retry was
// refused: the replay's run had made every action, and support was told
// to name the actions, another call of each under a new key (a probe).
func TestReplayRequestSentAgainAfterItsRecordFailed(t *testing.T) {
	e := newExecutionsEnv(t)
	failed := e.dispatch("ev-unrecorded", "signup", true)
	e.broken.Store(false)
	e.store.Update("d2", func(d *dispatcher.Dispatcher) { d.Actions[0].TemplateID = "tpl" })
	req := dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "bob", Config: dispatcher.ReplayConfigCurrent}
	e.auditDown.Store(true)
	if _, err := e.ex.Replay(e.ctx(), req); dispatcher.ErrorCode(err) != dispatcher.EUNAVAILABLE {
		t.Fatalf("replay with the audit trail's write failing: %v, want EUNAVAILABLE", err)
	}
	d, err := e.ex.Get(e.ctx(), failed.WorkflowID, "")
	if err != nil || len(d.Runs) != 2 || d.Audit[0].NewRunID != "" {
		t.Fatalf("%d runs, audit %+v, %v; want the replay started and not recorded", len(d.Runs), d.Audit, err)
	}
	started := d.RunID
	e.wait(failed.WorkflowID, started) // it succeeds: nothing is left to replay
	again, err := e.ex.Replay(e.ctx(), req)
	if err != nil || again.RunID != started || !again.AlreadyStarted {
		t.Fatalf("sent again: %+v, %v; want run %s, already started", again, err, started)
	}
	if d, err = e.ex.Get(e.ctx(), failed.WorkflowID, ""); err != nil || len(d.Audit) != 1 || d.Audit[0].NewRunID != started {
		t.Errorf("audit %+v, %v; want the replay recorded with run %s", d.Audit, err, started)
	}
}

// A request that loses the claim of a replay to another one, which has
// not started it yet, starts the replay the claim records: its actions
// with its configuration. Before, it ran the claim's actions with its
// own configuration (here the current one, whose template works), and
// the audit trail said the original one ran. It is refused then, naming
// that replay: it asked for another, which did not run (before, a 202
// "already started" read as done).
func TestReplayLosingTheClaimStartsTheClaimedReplay(t *testing.T) {
	e := newExecutionsEnv(t)
	failed := e.dispatch("ev-claimed", "signup", true) // t1 answers 404, m2's template is bad
	e.broken.Store(false)
	e.store.Update("d2", func(d *dispatcher.Dispatcher) { d.Actions[0].TemplateID = "tpl" })
	// What a request that stopped after its claim leaves: the ID every
	// request derives from the run (replayIDOf), its entry, no run.
	sum := sha256.Sum256([]byte("replay\x00" + failed.WorkflowID + "\x00" + failed.RunID))
	replayID := hex.EncodeToString(sum[:12])
	if _, err := e.audit.RecordAudit(e.ctx(), dispatcher.AuditEntry{ID: dispatcher.NewID(time.Now()), WorkflowID: failed.WorkflowID,
		Ref: replayID, Operation: dispatcher.AuditReplay, RunID: failed.RunID, Actor: "bob", Actions: []string{"m2"},
		Config: dispatcher.ReplayConfigOriginal, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "ann", Config: dispatcher.ReplayConfigCurrent})
	if dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(err.Error(), "was replayed already") ||
		!strings.Contains(err.Error(), "of actions m2 with the original configuration: not what this request asks") {
		t.Errorf("ann's replay = %v; want ESTATE naming bob's: m2 with the original configuration", err)
	}
	d, err := e.ex.Get(e.ctx(), failed.WorkflowID, "")
	if err != nil || len(d.Audit) != 1 || d.Audit[0].NewRunID == "" || d.Audit[0].Actor != "bob" {
		t.Fatalf("audit = %+v, %v; want bob's claim, with the run", d.Audit, err)
	}
	e.wait(failed.WorkflowID, d.Audit[0].NewRunID)
	run, err := e.ex.Get(e.ctx(), failed.WorkflowID, d.Audit[0].NewRunID)
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomeSummary(run.Outcomes); got != "m2:failed:TemplateError t1:failed:HTTPPermanent" {
		t.Errorf("the replay's run: %s, want m2 failed again with the original (bad) template, t1 carried", got)
	}
}

// A request sent again is recognised also when its replay began long
// after it was claimed (its first request stalled, or stopped and a retry
// started it): the window runs from the later of the two. Before, from
// the claim alone: the retry replayed the replay (diff review).
func TestReplayRequestSentAgainAfterALateStart(t *testing.T) {
	e := newExecutionsEnv(t)
	failed := e.dispatch("ev-late", "signup", true)
	sum := sha256.Sum256([]byte("replay\x00" + failed.WorkflowID + "\x00" + failed.RunID))
	if _, err := e.audit.RecordAudit(e.ctx(), dispatcher.AuditEntry{ID: dispatcher.NewID(time.Now()), WorkflowID: failed.WorkflowID,
		Ref: hex.EncodeToString(sum[:12]), Operation: dispatcher.AuditReplay, RunID: failed.RunID, Actor: "bob", Actions: []string{"t1", "m2"},
		Config: dispatcher.ReplayConfigOriginal, At: time.Now().Add(-40 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	first, _ := e.replay(dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "bob"}) // finishes the claim; fails again
	again, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "bob"})
	if err != nil || !again.AlreadyStarted || again.RunID != first.RunID {
		t.Fatalf("the request sent again: %+v, %v; want run %s, already started", again, err, first.RunID)
	}
}

// A request that loses the claim of a replay to a paused bulk replay does
// not start it behind the pause: the bulk replay does once resumed.
func TestReplayClaimedByAPausedBulkReplayWaits(t *testing.T) {
	e := newExecutionsEnv(t)
	failed := e.dispatch("ev-claimed-bulk", "signup", true)
	sum := sha256.Sum256([]byte("replay\x00" + failed.WorkflowID + "\x00" + failed.RunID))
	const bulk = "bulk-replay-0123456789abcdef01234567"
	for _, a := range []dispatcher.AuditEntry{
		{ID: dispatcher.NewID(time.Now()), WorkflowID: failed.WorkflowID, Ref: hex.EncodeToString(sum[:12]), Operation: dispatcher.AuditReplay,
			RunID: failed.RunID, Actor: "bob", Config: dispatcher.ReplayConfigOriginal, BulkReplayID: bulk, At: time.Now()},
		{ID: dispatcher.NewID(time.Now()), WorkflowID: bulk, Ref: "pause-1", Operation: dispatcher.AuditPause, Actor: "bob", At: time.Now()},
	} {
		if _, err := e.audit.RecordAudit(e.ctx(), a); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, Actor: "ann"})
	if dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(err.Error(), "is claimed by bulk replay "+bulk) {
		t.Fatalf("replay: %v, want ESTATE naming the paused bulk replay", err)
	}
	if d, err := e.ex.Get(e.ctx(), failed.WorkflowID, ""); err != nil || len(d.Runs) != 1 {
		t.Errorf("runs %+v, %v; want the dispatch alone", d.Runs, err)
	}
}

// A claim of a bulk replay canceled before it started the replay (its
// worker died with the start in flight; the cancel holds the retry) is
// started by the next request for the run, by hand or by another bulk
// replay, as the claim has it: the audit trail's record of who asked, and
// the canceled bulk replay, which counts it. Before, every request was
// refused for ever, naming the canceled bulk replay, and the failed
// dispatch could not be replayed.
func TestReplayClaimedByACanceledBulkReplayIsStarted(t *testing.T) {
	e := newExecutionsEnv(t)
	const canceled, other = "bulk-replay-0123456789abcdef01234567", "bulk-replay-76543210fedcba9876543210"
	for _, tt := range []struct{ event, bulk string }{{"ev-canceled-bulk", ""}, {"ev-canceled-bulk-2", other}} {
		failed := e.dispatch(tt.event, "signup", true)
		sum := sha256.Sum256([]byte("replay\x00" + failed.WorkflowID + "\x00" + failed.RunID))
		for _, a := range []dispatcher.AuditEntry{
			{ID: dispatcher.NewID(time.Now()), WorkflowID: failed.WorkflowID, Ref: hex.EncodeToString(sum[:12]), Operation: dispatcher.AuditReplay,
				RunID: failed.RunID, Actor: "bob", Actions: []string{"t1", "m2"}, Config: dispatcher.ReplayConfigOriginal, BulkReplayID: canceled, At: time.Now()},
			{ID: dispatcher.NewID(time.Now()), WorkflowID: canceled, Ref: "cancel-" + tt.event, Operation: dispatcher.AuditCancel, Actor: "bob", At: time.Now()},
		} {
			if _, err := e.audit.RecordAudit(e.ctx(), a); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 { // and sent again: the same answer
			res, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: failed.WorkflowID, RunID: failed.RunID, Actor: "ann", BulkReplayID: tt.bulk})
			if err != nil || res.RunID == "" || res.BulkReplayID != canceled || !res.AlreadyStarted {
				t.Fatalf("replay by %q: %+v, %v; want the canceled bulk replay's claim started", tt.bulk, res, err)
			}
		}
		d, err := e.ex.Get(e.ctx(), failed.WorkflowID, "")
		if err != nil || len(d.Runs) != 2 || d.Replay.BulkReplayID != canceled || d.Replay.RequestedBy != "bob" {
			t.Errorf("the latest run: %+v, %v; want the replay, of the canceled bulk replay, asked for by bob", d.Execution, err)
		}
		if len(d.Audit) != 1 || d.Audit[0].NewRunID != d.RunID || d.Audit[0].BulkReplayID != canceled {
			t.Errorf("audit %+v; want the claim, with its run", d.Audit)
		}
	}
}

// The replay start leans on Temporal answering a repeated start with the
// same request ID by the run it started, also once that run closed, while
// it is the workflow ID's latest: a requester that claimed a replay and
// stopped before recording its run may be followed by another.
func TestStartWithRequestIDIsDeduplicated(t *testing.T) {
	e := newExecutionsEnv(t)
	first := e.dispatch("ev-dedup", "signup", true) // a closed run to reuse the ID of
	start := func() string {
		t.Helper()
		res, err := e.c.WorkflowService().StartWorkflowExecution(e.ctx(), &workflowservice.StartWorkflowExecutionRequest{
			Namespace: "default", WorkflowId: first.WorkflowID, RequestId: "replay-test-request",
			WorkflowType:             &commonpb.WorkflowType{Name: workflows.WorkflowDispatch},
			TaskQueue:                &taskqueuepb.TaskQueue{Name: "executions-test", Kind: enums.TASK_QUEUE_KIND_NORMAL},
			WorkflowIdReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			WorkflowIdConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
			Input:                    mustPayloads(t, workflows.DispatchInput{Event: dispatcher.Event{ID: "ev-dedup", Type: "nothing", Time: time.Now()}}),
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetRunId()
	}
	run := start()
	e.wait(first.WorkflowID, run)
	if again := start(); again != run || again == first.RunID {
		t.Fatalf("the same request ID after the run closed started %s, want %s", again, run)
	}
}

// A run Temporal no longer knows does not fail a bulk replay's check of
// its replays: it counts as failed.
func TestRunStatusesToleratesUnknownRuns(t *testing.T) {
	e := newExecutionsEnv(t)
	st, err := e.ex.RunStatuses(e.ctx(), []dispatcher.RunRef{{WorkflowID: "dispatch-gone", RunID: "01a22ffc-0000-0000-0000-000000000000"}})
	if err != nil || !slices.Equal(st, []string{dispatcher.ExecutionFailed}) {
		t.Fatalf("RunStatuses = %v, %v; want failed", st, err)
	}
}

func mustPayloads(t *testing.T, v any) *commonpb.Payloads {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayloads(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A request naming a run replayed already gets that replay's answer only
// when that replay made what it asks for: one for another action, or the
// other configuration, is refused, naming the replay and the latest run.
// Before, it was answered 202 "already started" with the replay of other
// actions, and support took the mail it asked for as sent (support probe).
func TestReplayOfARunReplayedForAnotherRequest(t *testing.T) {
	e := newExecutionsEnv(t)
	refused := func(r dispatcher.ReplayRequest, first dispatcher.ReplayResult, actions string) {
		t.Helper()
		_, err := e.ex.Replay(e.ctx(), r)
		want := fmt.Sprintf("run %s of dispatch %s was replayed already, as run %s, of actions %s with the original configuration: not what this request asks; to run that, replay the latest run, %s, naming its actions",
			first.ReplayOf, r.WorkflowID, first.RunID, actions, first.RunID)
		if dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(err.Error(), want) {
			t.Errorf("%v %s: %v, want ESTATE saying %q", r.Actions, r.Config, err, want)
		}
	}
	answered := func(r dispatcher.ReplayRequest, first dispatcher.ReplayResult) {
		t.Helper()
		again, err := e.ex.Replay(e.ctx(), r)
		if err != nil || !again.AlreadyStarted || again.RunID != first.RunID {
			t.Errorf("%v: %+v, %v; want run %s, already started", r.Actions, again, err, first.RunID)
		}
	}
	// Its failed actions, t1 and m2, replayed: asking for one of them, or
	// for them all again, is answered as that replay; the current
	// configuration is not what it ran.
	all := e.dispatch("ev-all", "signup", true)
	first, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: all.WorkflowID, RunID: all.RunID, Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	e.wait(all.WorkflowID, first.RunID)
	answered(dispatcher.ReplayRequest{WorkflowID: all.WorkflowID, RunID: all.RunID, Actions: []string{"t1"}, Actor: "ann"}, first)
	answered(dispatcher.ReplayRequest{WorkflowID: all.WorkflowID, RunID: all.RunID, Actor: "ann"}, first)
	refused(dispatcher.ReplayRequest{WorkflowID: all.WorkflowID, RunID: all.RunID, Actions: []string{"t1"}, Config: dispatcher.ReplayConfigCurrent, Actor: "ann"}, first, "t1,m2")

	// t1 alone replayed: m2, named or among the failed, is not.
	one := e.dispatch("ev-one", "signup", true)
	first, err = e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: one.WorkflowID, RunID: one.RunID, Actions: []string{"t1"}, Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	e.wait(one.WorkflowID, first.RunID)
	answered(dispatcher.ReplayRequest{WorkflowID: one.WorkflowID, RunID: one.RunID, Actions: []string{"t1"}, Actor: "ann"}, first)
	refused(dispatcher.ReplayRequest{WorkflowID: one.WorkflowID, RunID: one.RunID, Actions: []string{"m2"}, Actor: "ann"}, first, "t1")
	refused(dispatcher.ReplayRequest{WorkflowID: one.WorkflowID, RunID: one.RunID, Actor: "ann"}, first, "t1")
	// Nor is a request under the key of one that named t1 alone, asking
	// for every failed action: before, it was answered as that replay.
	keyed := e.dispatch("ev-keyed", "signup", true)
	if _, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: keyed.WorkflowID, RunID: keyed.RunID, Actions: []string{"t1"},
		IdempotencyKey: "k1", Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: keyed.WorkflowID, RunID: keyed.RunID, IdempotencyKey: "k1", Actor: "bob"}); dispatcher.ErrorCode(err) != dispatcher.EINVALID ||
		!strings.Contains(err.Error(), "Idempotency-Key: already used for another replay") {
		t.Errorf("every failed action under the key of t1's replay: %v, want EINVALID saying the key was used", err)
	}
	// With the current configuration a replay naming none asks for the
	// actions skipped too: m2, its dispatcher paused then.
	e.store.SetPaused("d2", true)
	paused := e.dispatch("ev-paused", "signup", true)
	e.store.SetPaused("d2", false)
	current, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: paused.WorkflowID, RunID: paused.RunID, Actions: []string{"t1"},
		Config: dispatcher.ReplayConfigCurrent, Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	e.wait(paused.WorkflowID, current.RunID)
	if _, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: paused.WorkflowID, RunID: paused.RunID, Config: dispatcher.ReplayConfigCurrent, Actor: "ann"}); dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		!strings.Contains(err.Error(), "of actions t1 with the current configuration: not what this request asks") {
		t.Errorf("the current configuration's every action after t1's replay: %v, want ESTATE naming it", err)
	}
	// Nor, moments after, is the same requester's request without a run
	// for every failed action answered as its request for t1 alone.
	recent := e.dispatch("ev-recent", "signup", true)
	first2, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: recent.WorkflowID, Actions: []string{"t1"}, Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	e.wait(recent.WorkflowID, first2.RunID)
	if again, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: recent.WorkflowID, Actions: []string{"t1"}, Actor: "bob"}); err != nil || !again.AlreadyStarted {
		t.Errorf("t1 again, moments after: %+v, %v; want t1's replay, already started", again, err)
	}
	if _, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: recent.WorkflowID, Actor: "bob"}); dispatcher.ErrorCode(err) != dispatcher.ESTATE ||
		!strings.Contains(err.Error(), "was replayed moments ago") {
		t.Errorf("every failed action, moments after t1's replay: %v, want ESTATE saying it was replayed moments ago", err)
	}
	// As the refusal says: the latest run, naming the action.
	m2, err := e.ex.Replay(e.ctx(), dispatcher.ReplayRequest{WorkflowID: one.WorkflowID, RunID: first.RunID, Actions: []string{"m2"}, Actor: "ann"})
	if err != nil || m2.AlreadyStarted || !slices.Equal(m2.Actions, []string{"m2"}) {
		t.Fatalf("the latest run's replay of m2: %+v, %v; want a new run of m2", m2, err)
	}
	e.wait(one.WorkflowID, m2.RunID)
}

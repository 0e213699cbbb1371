package dispatch_test

import (
	"fmt"
	"slices"
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
	e.list(dispatcher.ExecutionFilter{EventID: "ev-race", Status: dispatcher.ExecutionCompleted}, wf)
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

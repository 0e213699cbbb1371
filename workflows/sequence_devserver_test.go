package workflows_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// A burst of overflows that one workflow task takes in at once (30 events
// of 200 KiB that arrived while no worker polled, behind a full queue) is
// started over several tasks. Before, the one task's completion carried
// the 30 events, 6 MiB, past Temporal's 4 MiB message limit: it failed,
// was retried with the same commands and failed again, for good, and the
// key was stuck with none of the overflow dispatches started.
func TestSequenceOverflowBurstOnRealServer(t *testing.T) {
	c := testenv.TemporalClient(t)
	pad := strings.Repeat("x", 200<<10)
	event := func(i int) workflows.SequencedDispatch {
		id := fmt.Sprint("burst-", i)
		d := workflows.SequencedDispatch{WorkflowID: id, Block: true, Input: workflows.DispatchInput{
			Event:   dispatcher.Event{ID: id, Type: "t", Content: []byte(fmt.Sprintf(`{"pad":%q}`, pad))},
			Version: workflows.DispatchVersion}}
		d.Size = workflows.SequencedSize(d)
		return d
	}
	var queue []workflows.SequencedDispatch
	for i := range 7 {
		queue = append(queue, event(i))
	}
	const seqID, queueName = "sequence-burst", "sequence-burst"
	// No worker yet: the start and every signal wait in the history.
	if _, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: seqID, TaskQueue: queueName}, workflows.WorkflowSequence,
		workflows.SequenceInput{State: &workflows.SequenceState{Blocked: "burst-blocker", Queue: queue}}); err != nil {
		t.Fatal(err)
	}
	for i := 7; i < 37; i++ {
		if err := c.SignalWorkflow(t.Context(), seqID, "", workflows.SignalSequenceEvent, event(i)); err != nil {
			t.Fatal(err)
		}
	}
	w := worker.New(c, queueName, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.Sequence, workflow.RegisterOptions{Name: workflows.WorkflowSequence})
	w.RegisterWorkflowWithOptions(func(workflow.Context, workflows.DispatchInput) error { return nil }, workflow.RegisterOptions{Name: workflows.WorkflowDispatch})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	testenv.Eventually(t, time.Minute, func() string {
		for i := 7; i < 37; i++ {
			if _, err := c.DescribeWorkflowExecution(t.Context(), fmt.Sprint("burst-", i), ""); err != nil {
				return fmt.Sprintf("waiting for the overflow dispatch of event %d: %v", i, err)
			}
		}
		return ""
	})
	it := c.GetWorkflowHistory(t.Context(), seqID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		// An unhandled command is a task that ended while events arrived
		// (a child started): retried at once, as Temporal means it.
		if f := e.GetWorkflowTaskFailedEventAttributes(); f != nil && f.Cause != enums.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND {
			t.Fatalf("a workflow task of the Sequence failed: %v %.200s", f.Cause, f.GetFailure().GetMessage())
		}
	}
	d, err := c.DescribeWorkflowExecution(t.Context(), seqID, "")
	if err != nil || d.WorkflowExecutionInfo.Status != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("the Sequence is %v (%v), want running, still blocked", d.GetWorkflowExecutionInfo().GetStatus(), err)
	}
}

// A Sequence whose head dispatch runs while more events arrive than its
// history may hold continues as new, hands the running dispatch over and
// waits for it in the next run, then runs every waiting event in order.
// The server here suggests continuing as new at 40 history events and
// terminates a run at 150. Before, the Sequence waited on its child while
// its history grew, and the server terminated it with all 120 waiting
// events.
func TestSequenceContinuesAsNewWhileItsHeadRunsOnRealServer(t *testing.T) {
	longHead(t, 120)
}

// longHeadID is the Sequence of longHead.
const longHeadID = "sequence-long-head"

// longHead runs a Sequence on a dev server that suggests continuing as new
// at 40 history events and terminates a run at 150: a head dispatch that
// runs until told, then waiting more events behind it, then the head's
// end. It checks that every dispatch ran, in order, and returns the
// client and the first run's ID.
func longHead(t *testing.T, waiting int) (client.Client, string) {
	c := testenv.TemporalClient(t,
		"--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=40",
		"--dynamic-config-value", "limit.historyCount.error=150")
	const queueName = "sequence-long-head"
	ran := sequenceWorker(t, c, queueName, func(ctx workflow.Context, in workflows.DispatchInput) {
		if in.Event.ID == "head" { // as one waiting for an action's startTimestamp
			workflow.GetSignalChannel(ctx, "finish").Receive(ctx, nil)
		}
	})

	first, err := c.SignalWithStartWorkflow(t.Context(), longHeadID, workflows.SignalSequenceEvent, sequenced("head"),
		client.StartWorkflowOptions{ID: longHeadID, TaskQueue: queueName}, workflows.WorkflowSequence, workflows.SequenceInput{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"head"}
	for i := range waiting {
		id := fmt.Sprint("e", i)
		want = append(want, id)
		if err := c.SignalWorkflow(t.Context(), longHeadID, "", workflows.SignalSequenceEvent, sequenced(id)); err != nil {
			t.Fatalf("event %d: %v (the Sequence is gone)", i, err)
		}
	}
	testenv.Eventually(t, time.Minute, func() string {
		v, err := c.QueryWorkflow(t.Context(), longHeadID, "", workflows.QuerySequence)
		var st workflows.SequenceState
		if err != nil || v.Get(&st) != nil {
			return fmt.Sprint("querying the Sequence: ", err)
		}
		if st.Running == nil || st.Running.WorkflowID != "head" || len(st.Queue) != waiting {
			return fmt.Sprintf("waiting for the head to be handed over with %d events waiting: running %+v, %d waiting", waiting, st.Running, len(st.Queue))
		}
		return ""
	})
	if d, err := c.DescribeWorkflowExecution(t.Context(), longHeadID, ""); err != nil || d.WorkflowExecutionInfo.Execution.RunId == first.GetRunID() {
		t.Fatalf("the Sequence did not continue as new: %v", err)
	}
	if err := c.SignalWorkflow(t.Context(), "head", "", "finish", nil); err != nil {
		t.Fatal(err)
	}
	ranInOrder(t, ran, want)
	return c, first.GetRunID()
}

// A Sequence on a server that suggests continuing as new from each run's
// first task on (a history size limit below what a run carries) still
// runs its events, in order, a few per run. Before sequenceMinRunV1 each
// run continued as new at once, and none ran.
func TestSequenceSuggestedFromItsFirstTaskOnRealServer(t *testing.T) {
	suggestedAtOnce(t)
}

// suggestedAtOnceID is the Sequence of suggestedAtOnce.
const suggestedAtOnceID = "sequence-suggested-at-once"

// suggestedAtOnce runs a Sequence of 10 events on a dev server that
// suggests continuing as new from the first task of every run, checks
// that they ran in order, and returns the client and the first run's ID.
func suggestedAtOnce(t *testing.T) (client.Client, string) {
	c := testenv.TemporalClient(t, "--dynamic-config-value", "limit.historySize.suggestContinueAsNew=1")
	const queueName, events = "sequence-suggested-at-once", 10
	ran := sequenceWorker(t, c, queueName, nil)
	var want []string
	var first string
	for i := range events {
		id := fmt.Sprint("e", i)
		want = append(want, id)
		run, err := c.SignalWithStartWorkflow(t.Context(), suggestedAtOnceID, workflows.SignalSequenceEvent, sequenced(id),
			client.StartWorkflowOptions{ID: suggestedAtOnceID, TaskQueue: queueName}, workflows.WorkflowSequence, workflows.SequenceInput{})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = run.GetRunID()
		}
	}
	ranInOrder(t, ran, want)
	return c, first
}

// sequenced is the dispatch of event id, holding its key.
func sequenced(id string) workflows.SequencedDispatch {
	return workflows.SequencedDispatch{WorkflowID: id, Block: true, Input: workflows.DispatchInput{
		Event: dispatcher.Event{ID: id, Type: "t", Content: []byte(`{}`)}, Version: workflows.DispatchVersion}}
}

// sequenceWorker runs a worker of the Sequence on queueName, with
// AwaitDispatch (a run may hand its running head over) and a dispatch
// that runs hold, when not nil, and records its event's id; ran returns
// the ids recorded, in order.
func sequenceWorker(t *testing.T, c client.Client, queueName string, hold func(workflow.Context, workflows.DispatchInput)) (ran func() []string) {
	var mu sync.Mutex
	var ids []string
	w := worker.New(c, queueName, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.Sequence, workflow.RegisterOptions{Name: workflows.WorkflowSequence})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context, in workflows.DispatchInput) error {
		if !workflow.IsReplaying(ctx) {
			mu.Lock()
			ids = append(ids, in.Event.ID)
			mu.Unlock()
		}
		if hold != nil {
			hold(ctx, in)
		}
		return nil
	}, workflow.RegisterOptions{Name: workflows.WorkflowDispatch})
	w.RegisterActivity(dispatch.NewSequenceActivities(c))
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ids)
	}
}

// ranInOrder waits until the dispatches of want ran, and checks they ran
// in that order.
func ranInOrder(t *testing.T, ran func() []string, want []string) {
	t.Helper()
	testenv.Eventually(t, time.Minute, func() string {
		if n := len(ran()); n < len(want) {
			return fmt.Sprintf("%d of %d dispatches ran", n, len(want))
		}
		return ""
	})
	if got := ran(); !slices.Equal(got, want) {
		t.Fatalf("dispatches ran in the order %v, want %v", got, want)
	}
}

// A Sequence canceled before a worker took its run, a run that holds the
// dispatch an earlier one handed over (SequenceState.Running), cancels
// that dispatch: the cancel is in the run's first task, so the run never
// awaits it. Before, the dispatch went on, dropped from the key.
func TestSequenceCanceledBeforeItsRunAwaitedOnRealServer(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "sequence-canceled-early"
	// The handed-over dispatch: a workflow that waits to be canceled, on a
	// queue of its own that no worker polls.
	head, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "dispatch-early-head", TaskQueue: queue + "-head"}, workflows.WorkflowDispatch,
		workflows.DispatchInput{Event: dispatcher.Event{ID: "early-head", Type: "t"}, Version: workflows.DispatchVersion})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "sequence-canceled-early", TaskQueue: queue}, workflows.WorkflowSequence,
		workflows.SequenceInput{State: &workflows.SequenceState{Running: &workflows.RunningDispatch{WorkflowID: head.GetID(), RunID: head.GetRunID(), Block: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CancelWorkflow(t.Context(), seq.GetID(), seq.GetRunID()); err != nil {
		t.Fatal(err)
	}
	sequenceWorker(t, c, queue, nil)
	var canceled *temporal.CanceledError
	if err := seq.Get(t.Context(), nil); !errors.As(err, &canceled) {
		t.Fatalf("the Sequence ended with %v, want canceled", err)
	}
	replays(t, c, seq)
	it := c.GetWorkflowHistory(t.Context(), head.GetID(), head.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.GetEventType() == enums.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED {
			return
		}
	}
	t.Error("the dispatch handed over was not asked to cancel")
}

// An event whose dispatch is already running when its turn comes (it was
// also sent while its dispatcher was not yet ordered, and so started at
// once) holds the events after it until that dispatch closes. Before, the
// Sequence took the taken workflow ID as done and ran the next event
// beside it.
func TestSequenceWaitsForADuplicateStillRunningOnRealServer(t *testing.T) {
	c, seq := duplicateStillRunning(t)
	replays(t, c, seq)
}

// A Sequence canceled while it waits for a dispatch started outside it
// leaves that dispatch alone: it was not the Sequence's to cancel. The
// event behind it is dispatched as refused, as a cancel does.
func TestSequenceCanceledLeavesADuplicateAloneOnRealServer(t *testing.T) {
	c, seq, _ := awaitingDuplicate(t)
	if err := c.CancelWorkflow(t.Context(), seq.GetID(), ""); err != nil {
		t.Fatal(err)
	}
	var canceled *temporal.CanceledError
	if err := c.GetWorkflow(t.Context(), seq.GetID(), "").Get(t.Context(), nil); !errors.As(err, &canceled) {
		t.Fatalf("the Sequence ended with %v, want canceled", err)
	}
	it := c.GetWorkflowHistory(t.Context(), "outside", "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.GetEventType() == enums.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED {
			t.Fatal("the Sequence's cancel canceled the dispatch it did not start")
		}
	}
	if d, err := c.DescribeWorkflowExecution(t.Context(), "outside", ""); err != nil || d.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("the outside dispatch is %v (%v), want running", d.GetWorkflowExecutionInfo().GetStatus(), err)
	}
}

// duplicateStillRunning runs a Sequence whose head's dispatch was started
// outside it and still runs, with an event behind it: it checks that the
// event waits until the head's dispatch ends, and returns the Sequence.
func duplicateStillRunning(t *testing.T) (client.Client, client.WorkflowRun) {
	c, seq, ran := awaitingDuplicate(t)
	if err := c.SignalWorkflow(t.Context(), "outside", "", "finish", nil); err != nil {
		t.Fatal(err)
	}
	ranInOrder(t, ran, []string{"outside", "after"})
	return c, seq
}

// awaitingDuplicate starts a Sequence whose head's dispatch, "outside",
// was started outside it and runs until signalled "finish", with an event
// behind it, and returns once the Sequence awaits it, "after" not run.
func awaitingDuplicate(t *testing.T) (client.Client, client.WorkflowRun, func() []string) {
	c := testenv.TemporalClient(t)
	const queue = "sequence-duplicate"
	ran := sequenceWorker(t, c, queue, func(ctx workflow.Context, in workflows.DispatchInput) {
		if in.Event.ID == "outside" {
			workflow.GetSignalChannel(ctx, "finish").Receive(ctx, nil)
		}
	})
	outside := sequenced("outside")
	if _, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: outside.WorkflowID, TaskQueue: queue},
		workflows.WorkflowDispatch, outside.Input); err != nil {
		t.Fatal(err)
	}
	seq, err := c.SignalWithStartWorkflow(t.Context(), "sequence-duplicate", workflows.SignalSequenceEvent, outside,
		client.StartWorkflowOptions{ID: "sequence-duplicate", TaskQueue: queue}, workflows.WorkflowSequence, workflows.SequenceInput{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SignalWorkflow(t.Context(), seq.GetID(), "", workflows.SignalSequenceEvent, sequenced("after")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, func() string {
		if got := ran(); slices.Contains(got, "after") {
			t.Fatalf("the next event ran beside the duplicate still running: %v", got)
		}
		var st workflows.SequenceState
		v, err := c.QueryWorkflow(t.Context(), seq.GetID(), "", workflows.QuerySequence)
		if err != nil || v.Get(&st) != nil || st.Running == nil {
			return fmt.Sprintf("waiting for the Sequence to await the duplicate: %+v %v", st, err)
		}
		if st.Running.WorkflowID != "outside" {
			t.Fatalf("the Sequence awaits %+v, want the duplicate, outside", st.Running)
		}
		if len(st.Queue) != 1 {
			return fmt.Sprintf("waiting for the next event to wait: %+v", st.Queue)
		}
		return ""
	})
	return c, seq, ran
}

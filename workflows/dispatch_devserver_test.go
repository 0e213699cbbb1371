package workflows_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// An event near DISPATCHER_MAX_EVENT_BYTES for a dispatcher with many
// task actions: every regular activity's input carries the event, and
// those one workflow task schedules are paced so that its completion stays
// under Temporal's 4 MiB message limit. Before, 20 actions of a 250 KiB
// event scheduled together (calls longer than the local call limit, or
// first attempts that failed and were handed off after the same delay)
// made a 5 MiB completion, which failed on every retry of the task: the
// dispatch ran none of its calls and stayed open for ever.
func TestDispatchLargeEventManyActionsOnRealServer(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue, actions = "dispatch-large", 20
	var calls atomic.Int32
	w := worker.New(c, queue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivityWithOptions(func(context.Context, dispatcher.TaskInput) (dispatcher.TaskResult, error) {
		calls.Add(1)
		return dispatcher.TaskResult{StatusCode: 200, Attempt: 1}, nil
	}, activity.RegisterOptions{Name: workflows.ActivityCallFunction})
	w.RegisterActivityWithOptions(func(context.Context, dispatcher.TaskInput) (dispatcher.TaskResult, error) {
		return dispatcher.TaskResult{}, temporal.NewApplicationError("function answered 503", dispatcher.FailureHTTPTemporary)
	}, activity.RegisterOptions{Name: workflows.LocalCallFunction})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	content, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 250<<10)})
	for _, tt := range []struct {
		name    string
		timeout time.Duration
	}{
		{"calls longer than the local limit", 2 * time.Minute},
		{"first attempts handed off together", 30 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls.Store(0)
			var as []dispatcher.Action
			for i := range actions {
				as = append(as, dispatcher.Action{ID: fmt.Sprint("a", i), Type: dispatcher.ActionTask, Name: fmt.Sprint("a", i), FunctionName: "f"})
			}
			run := dispatchLarge(t, c, queue, "dispatch-"+strings.ReplaceAll(tt.name, " ", "-"), content, as,
				dispatcher.FunctionRef{Name: "f", Kind: dispatcher.FunctionHTTP, Timeout: tt.timeout})
			if n := calls.Load(); n != actions {
				t.Errorf("%d calls made, want %d", n, actions)
			}
			// The pacing replays: a worker that restarts mid-dispatch
			// takes the same decisions.
			replays(t, c, run)
		})
	}
}

// The same for the child workflows of a temporal function: each child's
// payload, which the PrepareTask local activity renders, lands in the
// workflow task's completion as the activity's marker. Before
// (dispatchV8), 20 children of a 220 KiB event rendered their payloads in
// one task, whose 5 MiB completion failed on every retry; and data whose
// templates copy a small event again and again resolves to up to
// MaxResolvedBytes.
func TestDispatchLargeEventManyChildrenOnRealServer(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "dispatch-large-children"
	var children sync.Map
	w := worker.New(c, queue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivityWithOptions(func(_ context.Context, in dispatcher.TaskInput) (dispatcher.TaskPayload, error) {
		payload := map[string]any{"event": in.Event}
		if bytes.Contains(in.Data, []byte("{{")) { // as the templates copy the event, up to the bound
			payload["copies"] = strings.Repeat("x", dispatcher.MaxTaskPayloadBytes-len(in.Event.Content)-4<<10)
		}
		data, err := json.Marshal(payload)
		return dispatcher.TaskPayload{TaskID: in.IdempotencyKey, FunctionName: in.FunctionName, Data: data}, err
	}, activity.RegisterOptions{Name: workflows.ActivityPrepareTask})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context, _ dispatcher.TaskPayload) error {
		children.Store(workflow.GetInfo(ctx).WorkflowExecution.ID, true)
		return nil
	}, workflow.RegisterOptions{Name: "f"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	for _, tt := range []struct {
		name    string
		actions int
		event   int
		data    string
	}{
		{"a large event", 20, 220 << 10, ""},
		{"templated data", 5, 10 << 10, `{"copy":"{{ .event.content }}"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			content, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", tt.event)})
			var as []dispatcher.Action
			for i := range tt.actions {
				a := dispatcher.Action{ID: fmt.Sprint("a", i), Type: dispatcher.ActionTask, Name: fmt.Sprint("a", i), FunctionName: "f"}
				if tt.data != "" {
					a.Data = json.RawMessage(tt.data)
				}
				as = append(as, a)
			}
			id := "dispatch-children-" + strings.ReplaceAll(tt.name, " ", "-")
			run := dispatchLarge(t, c, queue, id, content, as, dispatcher.FunctionRef{Name: "f", Kind: dispatcher.FunctionTemporal, TaskQueue: queue})
			n := 0
			children.Range(func(k, _ any) bool {
				if strings.HasPrefix(k.(string), id+"/") {
					n++
				}
				return true
			})
			if n != tt.actions {
				t.Errorf("%d children ran, want %d", n, tt.actions)
			}
			replays(t, c, run)
		})
	}
}

// dispatchLarge runs a dispatch of an event with content to the actions
// as, which call fn, and waits a minute at most for it to complete.
func dispatchLarge(t *testing.T, c client.Client, queue, id string, content json.RawMessage, as []dispatcher.Action, fn dispatcher.FunctionRef) client.WorkflowRun {
	t.Helper()
	cfg := dispatcher.Config{Version: 1, Dispatchers: []dispatcher.Dispatcher{{ID: "d1", Name: "d1", EventType: "large", Actions: as}},
		Functions: []dispatcher.FunctionRef{fn}}
	in := workflows.DispatchInput{Event: dispatcher.Event{ID: id, Type: "large", Content: content}, Config: &cfg, Version: workflows.DispatchVersion}
	run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: queue}, workflows.WorkflowDispatch, in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := run.Get(ctx, nil); err != nil {
		t.Errorf("the dispatch did not complete: %v", err)
	}
	return run
}

// replays checks that the history of run has no failed workflow task (but
// the one a reset fails, and one Temporal refused for events that came
// meanwhile) and replays on the current code.
func replays(t *testing.T, c client.Client, run client.WorkflowRun) {
	t.Helper()
	h := &historypb.History{}
	it := c.GetWorkflowHistory(t.Context(), run.GetID(), run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if f := e.GetWorkflowTaskFailedEventAttributes(); f != nil && f.GetCause() != enums.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW &&
			f.GetCause() != enums.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND { // a cancel or signal came during the task
			t.Fatalf("a workflow task failed: %v %.200s", f.Cause, f.GetFailure().GetMessage())
		}
		h.Events = append(h.Events, e)
	}
	r := worker.NewWorkflowReplayer()
	workflows.Register(r)
	if err := r.ReplayWorkflowHistoryWithOptions(nil, h, worker.ReplayWorkflowHistoryOptions{
		OriginalExecution: workflow.Execution{ID: run.GetID(), RunID: run.GetRunID()}}); err != nil {
		t.Errorf("the history does not replay: %v", err)
	}
}

// A dispatch canceled before any worker took it (the workers were down or
// behind, and support canceled what was queued) runs none of its actions
// when a worker comes: the cancel is in its first workflow task. Before
// (dispatchV6), the local first attempts ran all the same, on the
// context a cancel waits on, and the mails went out.
func TestDispatchCanceledBeforeAWorkerTookIt(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "dispatch-canceled-early"
	cfg := dispatcher.Config{Version: 1, Dispatchers: []dispatcher.Dispatcher{{ID: "d1", Name: "d1", EventType: "early", Actions: []dispatcher.Action{
		{ID: "a1", Type: dispatcher.ActionMail, Name: "mail", TemplateID: "t1", Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}}},
		{ID: "a2", Type: dispatcher.ActionTask, Name: "call", FunctionName: "f"}}}},
		Functions: []dispatcher.FunctionRef{{Name: "f", Kind: dispatcher.FunctionHTTP, Timeout: 10 * time.Second}}}
	in := workflows.DispatchInput{Event: dispatcher.Event{ID: "early", Type: "early"}, Config: &cfg, Version: workflows.DispatchVersion}
	run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "dispatch-canceled-early", TaskQueue: queue}, workflows.WorkflowDispatch, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CancelWorkflow(t.Context(), run.GetID(), run.GetRunID()); err != nil {
		t.Fatal(err)
	}

	var calls atomic.Int32
	w := worker.New(c, queue, worker.Options{})
	workflows.Register(w)
	registerCounted(w, &calls)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	res := canceledResult(t, run)
	for _, o := range res.Outcomes {
		if o.Status != dispatcher.OutcomeCanceled {
			t.Errorf("action %s ended %s, want %s", o.ActionID, o.Status, dispatcher.OutcomeCanceled)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d mails and calls made for a dispatch canceled before it ran, want none", n)
	}
	replays(t, c, run)
}

// A cancel that comes while the run's first workflow task makes the first
// attempts: Temporal refuses that task's completion (the run is to close
// with a cancel unseen) and drops the local attempts' results with it,
// though the call was made. The run goes on in a new task, canceled from
// its start, and says that the action may have been made (Unanswered, so
// that its replay keeps its key). Before, it said canceled with 0
// attempts, nothing done, and support replayed it as never called.
func TestDispatchCanceledDuringItsFirstTask(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "dispatch-canceled-first-task"
	started, release := make(chan struct{}, 1), make(chan struct{})
	var calls atomic.Int32
	w := worker.New(c, queue, worker.Options{})
	workflows.Register(w)
	registerHeld(w, &calls, started, release)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	in := gatedInput("first-task")
	in.Config.Functions[0].Gated = false
	run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "dispatch-canceled-first-task", TaskQueue: queue}, workflows.WorkflowDispatch, in)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the first attempt did not begin")
	}
	if err := c.CancelWorkflow(t.Context(), run.GetID(), run.GetRunID()); err != nil {
		t.Fatal(err)
	}
	// The cancel is recorded once CancelWorkflow returns (buffered until
	// the task completes, so not yet in the history).
	close(release) // the call answers 200 within the first task

	res := canceledResult(t, run)
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
	// The call returned after the cancel was recorded: the task's
	// completion, with the attempt's result, is refused
	// (UnhandledCommand, which replays lets pass).
	if o := res.Outcomes[0]; o.Status != dispatcher.OutcomeCanceled || !o.Unanswered || !strings.Contains(o.Error, "may have been made") {
		t.Errorf("the action made ended %s (unanswered %v): %q; want canceled, maybe made", o.Status, o.Unanswered, o.Error)
	}
	replays(t, c, run)
}

// A cancel that comes while a later workflow task makes a call's local
// first attempt: as the action's startTimestamp came, or so long into the
// first task's call that the SDK heartbeated the task. Temporal refuses
// the completion of a task that would close the run past the cancel, and
// the attempt's result with it; from dispatchV18 the run lets that task
// complete first (keepLocalResults), and the call that was made counts:
// the dispatch, its one action done, completes. Before, the action ended
// canceled, "0 attempts" or "canceled before it finished", and a replay
// called it again as never made.
func TestDispatchCanceledDuringALaterTask(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "dispatch-canceled-later-task"
	started, release := make(chan struct{}, 1), make(chan struct{}, 1)
	var calls atomic.Int32
	w := worker.New(c, queue, worker.Options{})
	workflows.Register(w)
	registerHeld(w, &calls, started, release)
	w.RegisterActivityWithOptions(func(context.Context, dispatcher.ResolveFunctionInput) (dispatcher.FunctionRef, error) {
		return dispatcher.FunctionRef{Name: "f", Kind: dispatcher.FunctionHTTP, Timeout: 20 * time.Second}, nil
	}, activity.RegisterOptions{Name: workflows.ActivityResolveFunction})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	for _, tt := range []struct {
		name      string
		scheduled bool
		version   int
	}{
		{"as its startTimestamp came", true, workflows.DispatchVersion},
		{"late in a heartbeated first task", false, workflows.DispatchVersion},
		// Started by an older intake: from the marker keep-local-results.
		{"as its startTimestamp came, of version 17", true, 17},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls.Store(0)
			id := "dispatch-canceled-later-" + strings.NewReplacer(" ", "-", ",", "").Replace(tt.name)
			in := gatedInput(id)
			in.Version = tt.version
			in.Config.Functions[0].Gated, in.Config.Functions[0].Timeout = false, 20*time.Second
			if tt.scheduled {
				due := time.Now().Add(time.Second)
				in.Config.Dispatchers[0].Actions[0].StartTimestamp = &due
			}
			run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: queue}, workflows.WorkflowDispatch, in)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-started:
			case <-time.After(30 * time.Second):
				t.Fatal("the first attempt did not begin")
			}
			if !tt.scheduled {
				// The SDK heartbeats a task whose local activity runs past
				// 80 % of its 10 s timeout: a completed task while the
				// call goes on.
				waitForEvent(t, c, run.GetID(), run.GetRunID(), enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, "the first task was not heartbeated")
			}
			if err := c.CancelWorkflow(t.Context(), run.GetID(), run.GetRunID()); err != nil {
				t.Fatal(err)
			}
			release <- struct{}{} // the call answers 200 after the cancel came

			// Its one action done, the dispatch completes (finish).
			var res workflows.DispatchResult
			if err := run.Get(t.Context(), &res); err != nil {
				t.Fatalf("the dispatch ended with %v, want completed", err)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("%d calls, want 1", n)
			}
			if o := res.Outcomes[0]; o.Status != dispatcher.OutcomeSucceeded || o.Attempts != 1 {
				t.Errorf("the action whose call was made ended %s after %d attempts: %q; want succeeded", o.Status, o.Attempts, o.Error)
			}
			replays(t, c, run)
		})
	}
}

// A task action that fails for good in the run's first workflow task has
// one task_failed event however many times that task runs: the event is
// started from the task after it, which replays when the action began as
// recorded. The test has Temporal refuse the completion of the task that
// starts the event (a signal comes while it runs, and the task would
// close the run), as when a worker dies before completing it. Before,
// the first task started the event, and the next, which made the call
// again later, another, under an id derived from its own time.
func TestDispatchTaskFailedOnceWhenItsTaskIsLost(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "dispatch-task-failed-lost-task"
	var (
		mu  sync.Mutex
		ids = map[string]bool{}
	)
	emitting, release := make(chan struct{}, 1), make(chan struct{}, 1)
	w := worker.New(c, queue, worker.Options{})
	workflows.Register(w)
	for _, name := range []string{workflows.LocalCallFunction, workflows.ActivityCallFunction} {
		w.RegisterActivityWithOptions(func(context.Context, dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			return dispatcher.TaskResult{}, temporal.NewNonRetryableApplicationError("422", dispatcher.FailureHTTPPermanent, nil)
		}, activity.RegisterOptions{Name: name})
	}
	w.RegisterActivityWithOptions(func(_ context.Context, f dispatcher.TaskFailure) (bool, error) {
		mu.Lock()
		first := len(ids) == 0
		ids[f.TaskFailedEvent().ID] = true
		mu.Unlock()
		if first { // held until the signal has come: the task's completion is refused
			emitting <- struct{}{}
			<-release
		}
		return true, nil
	}, activity.RegisterOptions{Name: workflows.ActivityEmitTaskFailed})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	for _, version := range []int{workflows.DispatchVersion, 18} { // 18: from the marker emit-after-commit
		t.Run(fmt.Sprintf("version %d", version), func(t *testing.T) {
			clear(ids)
			id := fmt.Sprintf("dispatch-task-failed-lost-task-%d", version)
			in := gatedInput(id)
			in.Version = version
			in.Config.Functions[0].Gated = false
			run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: queue}, workflows.WorkflowDispatch, in)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-emitting:
			case <-time.After(30 * time.Second):
				t.Fatal("the task_failed event was not started")
			}
			if err := c.SignalWorkflow(t.Context(), run.GetID(), run.GetRunID(), "unheard", nil); err != nil {
				t.Fatal(err)
			}
			release <- struct{}{}
			var appErr *temporal.ApplicationError
			if err := run.Get(t.Context(), nil); !errors.As(err, &appErr) || appErr.Type() != dispatcher.FailureDispatch {
				t.Fatalf("the dispatch ended with %v, want failed", err)
			}
			waitForEvent(t, c, run.GetID(), run.GetRunID(), enums.EVENT_TYPE_WORKFLOW_TASK_FAILED, "no completion was refused")
			mu.Lock()
			defer mu.Unlock()
			if len(ids) != 1 {
				t.Errorf("one failure started %d task_failed events: %v", len(ids), ids)
			}
			replays(t, c, run)
		})
	}
}

// An action whose time came while no worker ran, in the task that also
// brings the cancel, was not made: it says so. Before, a history longer
// than a first task's had it say "may have been made".
func TestDispatchCanceledWhenItsTimeCame(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "dispatch-canceled-when-due"
	var calls atomic.Int32
	newWorker := func() worker.Worker {
		w := worker.New(c, queue, worker.Options{})
		workflows.Register(w)
		registerCounted(w, &calls)
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := newWorker()
	in := gatedInput("when-due")
	in.Config.Functions[0].Gated = false
	due := time.Now().Add(2 * time.Second)
	in.Config.Dispatchers[0].Actions[0].StartTimestamp = &due
	run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "dispatch-canceled-when-due", TaskQueue: queue}, workflows.WorkflowDispatch, in)
	if err != nil {
		t.Fatal(err)
	}
	waitForEvent(t, c, run.GetID(), run.GetRunID(), enums.EVENT_TYPE_TIMER_STARTED, "the action does not wait yet")
	w.Stop()
	waitForEvent(t, c, run.GetID(), run.GetRunID(), enums.EVENT_TYPE_TIMER_FIRED, "its time has not come yet")
	if err := c.CancelWorkflow(t.Context(), run.GetID(), run.GetRunID()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(newWorker().Stop)
	res := canceledResult(t, run)
	if o := res.Outcomes[0]; o.Status != dispatcher.OutcomeCanceled || o.Unanswered || calls.Load() != 0 {
		t.Errorf("the action ended %s (unanswered %v: %q) after %d calls, want canceled, not made", o.Status, o.Unanswered, o.Error, calls.Load())
	}
	// The Web UI names the timer's action; before, it showed none.
	var summary string
	it := c.GetWorkflowHistory(t.Context(), run.GetID(), run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetEventType() == enums.EVENT_TYPE_TIMER_STARTED {
			_ = converter.GetDefaultDataConverter().FromPayload(ev.GetUserMetadata().GetSummary(), &summary)
		}
	}
	if want := `startTimestamp of task "call" of dispatcher "d1"`; summary != want {
		t.Errorf("the timer's summary is %q, want %q", summary, want)
	}
	replays(t, c, run)
}

// A regular attempt running when its dispatch is canceled, whose call then
// fails for now (a 503 after the cancel came: the call runs to its end),
// ends its action canceled, keeping that failure as its last: Temporal
// retries no attempt past a cancel. Before, the action ended failed
// (HTTPTemporary, 1 of 10 attempts), as if its retries had run out, as
// support reads it.
func TestDispatchCanceledDuringARegularAttempt(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue, id = "dispatch-canceled-regular", "canceled-regular"
	started := make(chan struct{}, 1)
	w := worker.New(c, queue, worker.Options{MaxHeartbeatThrottleInterval: 200 * time.Millisecond})
	workflows.Register(w)
	w.RegisterActivityWithOptions(func(ctx context.Context, _ dispatcher.TaskInput) (dispatcher.TaskResult, error) {
		started <- struct{}{}
		for ctx.Err() == nil { // the cancel comes by heartbeat
			activity.RecordHeartbeat(ctx, 1)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		return dispatcher.TaskResult{}, temporal.NewApplicationErrorWithOptions(`function "f" answered 503`, dispatcher.FailureHTTPTemporary,
			temporal.ApplicationErrorOptions{Details: []any{dispatcher.FailureDetails{Attempt: 1, StatusCode: 503}}})
	}, activity.RegisterOptions{Name: workflows.ActivityCallFunction})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	for _, tt := range []struct {
		name     string
		attempts int
		status   string
		class    string
	}{
		{"attempts left", 0, dispatcher.OutcomeCanceled, dispatcher.FailureCanceled},
		// Its last attempt, which Temporal reports canceled all the same:
		// its retries ran out.
		{"its last attempt", 1, dispatcher.OutcomeFailed, dispatcher.FailureHTTPTemporary},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := gatedInput(id + "-" + strings.ReplaceAll(tt.name, " ", "-"))
			in.Config.Functions[0].Gated = false
			in.Config.Dispatchers[0].Actions[0].RetryPolicy = &dispatcher.RetryPolicy{MaximumAttempts: tt.attempts}
			in.LocalCallLimit = time.Second // a call of 10 s goes as a regular activity at once
			run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: in.Event.ID, TaskQueue: queue}, workflows.WorkflowDispatch, in)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-started:
			case <-time.After(30 * time.Second):
				t.Fatal("the regular attempt did not begin")
			}
			if err := c.CancelWorkflow(t.Context(), run.GetID(), run.GetRunID()); err != nil {
				t.Fatal(err)
			}
			res := canceledResult(t, run)
			if len(res.Outcomes) != 1 {
				t.Fatalf("outcomes %+v", res.Outcomes)
			}
			o := res.Outcomes[0]
			if o.Status != tt.status || o.ErrorClass != tt.class || !strings.Contains(o.Error, "answered 503") || o.Attempts != 1 || o.HTTPStatus != 503 {
				t.Errorf("the action ended %s (%s, HTTP %d) after %d attempts: %q; want %s (%s, 503) after 1, naming its last failure",
					o.Status, o.ErrorClass, o.HTTPStatus, o.Attempts, o.Error, tt.status, tt.class)
			}
			replays(t, c, run)
		})
	}
}

// canceledResult waits for run to end canceled and returns its result.
func canceledResult(t *testing.T, run client.WorkflowRun) workflows.DispatchResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var canceled *temporal.CanceledError
	if err := run.Get(ctx, nil); !errors.As(err, &canceled) {
		t.Fatalf("the dispatch ended with %v, want canceled", err)
	}
	var res workflows.DispatchResult
	if err := canceled.Details(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

// First attempts that wait for a local-activity slot of a busy worker
// (DISPATCHER_MAX_CONCURRENT_LOCAL_ACTIVITIES) keep the whole of their
// time once they start. Before, the SDK counted an attempt's time from
// when the dispatch asked for it: the third of three calls began with 9 of
// its 12 s, so a call slower than that was cut short while the receiver
// went on and the regular attempt called again; and the payload of a
// temporal function, prepared once in 10 s, failed the action for good
// after waiting 11 s behind a slow call, without a try.
func TestFirstAttemptsQueuedForASlotKeepTheirTime(t *testing.T) {
	c := testenv.TemporalClient(t)
	run := func(t *testing.T, queue string, as []dispatcher.Action, fns []dispatcher.FunctionRef, call func(context.Context) error) workflows.DispatchResult {
		w := worker.New(c, queue, worker.Options{MaxConcurrentLocalActivityExecutionSize: 1})
		workflows.Register(w)
		w.RegisterActivityWithOptions(func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			return dispatcher.TaskResult{StatusCode: 200, Attempt: 1}, call(ctx)
		}, activity.RegisterOptions{Name: workflows.LocalCallFunction})
		w.RegisterActivityWithOptions(func(context.Context, dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			t.Error("a call was made again as a regular activity")
			return dispatcher.TaskResult{StatusCode: 200, Attempt: 2}, nil
		}, activity.RegisterOptions{Name: workflows.ActivityCallFunction})
		w.RegisterActivityWithOptions(func(_ context.Context, in dispatcher.TaskInput) (dispatcher.TaskPayload, error) {
			return dispatcher.TaskPayload{TaskID: in.IdempotencyKey, FunctionName: in.FunctionName}, nil
		}, activity.RegisterOptions{Name: workflows.ActivityPrepareTask})
		w.RegisterWorkflowWithOptions(func(workflow.Context, dispatcher.TaskPayload) error { return nil }, workflow.RegisterOptions{Name: "child-fn"})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		cfg := dispatcher.Config{Version: 1, Dispatchers: []dispatcher.Dispatcher{{ID: "d1", Name: "d1", EventType: "busy", Actions: as}}, Functions: fns}
		in := workflows.DispatchInput{Event: dispatcher.Event{ID: queue, Type: "busy"}, Config: &cfg, Version: workflows.DispatchVersion}
		r, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "dispatch-" + queue, TaskQueue: queue}, workflows.WorkflowDispatch, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.DispatchResult
		if err := r.Get(t.Context(), &res); err != nil {
			t.Fatalf("the dispatch failed: %v", err)
		}
		return res
	}

	t.Run("calls", func(t *testing.T) {
		t.Parallel()
		const timeout = 2 * time.Second // an attempt may take 12 s
		var mu sync.Mutex
		var left []time.Duration
		var as []dispatcher.Action
		for i := range 3 {
			as = append(as, dispatcher.Action{ID: fmt.Sprint("a", i), Name: fmt.Sprint("a", i), Type: dispatcher.ActionTask, FunctionName: "f"})
		}
		run(t, "busy-calls", as, []dispatcher.FunctionRef{{Name: "f", Kind: dispatcher.FunctionHTTP, Timeout: timeout}}, func(ctx context.Context) error {
			deadline, _ := ctx.Deadline()
			mu.Lock()
			left = append(left, time.Until(deadline))
			mu.Unlock()
			time.Sleep(1500 * time.Millisecond) // holds the slot
			return nil
		})
		if len(left) != 3 {
			t.Fatalf("%d first attempts, want 3", len(left))
		}
		for i, l := range left {
			if l < 11*time.Second {
				t.Errorf("first attempt %d began with %v of its 12 s", i+1, l.Round(100*time.Millisecond))
			}
		}
	})
	t.Run("temporal function", func(t *testing.T) {
		t.Parallel()
		as := []dispatcher.Action{
			{ID: "http", Name: "http", Type: dispatcher.ActionTask, FunctionName: "slow"},
			{ID: "child", Name: "child", Type: dispatcher.ActionTask, FunctionName: "child-fn"},
		}
		res := run(t, "busy-prepare", as, []dispatcher.FunctionRef{
			{Name: "slow", Kind: dispatcher.FunctionHTTP, Timeout: 30 * time.Second},
			{Name: "child-fn", Kind: dispatcher.FunctionTemporal, TaskQueue: "busy-prepare"},
		}, func(context.Context) error {
			time.Sleep(11 * time.Second) // longer than the payload's 10 s
			return nil
		})
		for _, o := range res.Outcomes {
			if o.Status != dispatcher.OutcomeSucceeded {
				t.Errorf("action %s: %s %s %s", o.ActionID, o.Status, o.ErrorClass, o.Error)
			}
		}
	})
}

// The payload of a temporal function is rendered by a local activity
// that, in a reset run, first asks the store whether a replay superseded
// the run. A store that did not answer for the step's one attempt (10 s)
// failed the action for good; the step now retries while the failure is
// temporary, as a function's look-up does, and a template error still
// fails the action at once.
func TestPrepareTaskWaitsOutAStoreOutage(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "dispatch-prepare-outage"
	var calls sync.Map // dispatch ID → *atomic.Int32
	w := worker.New(c, queue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivityWithOptions(func(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskPayload, error) {
		id := activity.GetInfo(ctx).WorkflowExecution.ID
		n, _ := calls.LoadOrStore(id, new(atomic.Int32))
		if n.(*atomic.Int32).Add(1) < 3 {
			if strings.Contains(id, "template") {
				return dispatcher.TaskPayload{}, temporal.NewNonRetryableApplicationError("bad template", dispatcher.FailureTemplate, nil)
			}
			return dispatcher.TaskPayload{}, temporal.NewApplicationError("the database is unavailable", dispatcher.FailureStore)
		}
		return dispatcher.TaskPayload{TaskID: in.IdempotencyKey, FunctionName: in.FunctionName, Data: json.RawMessage(`{}`)}, nil
	}, activity.RegisterOptions{Name: workflows.ActivityPrepareTask})
	w.RegisterActivityWithOptions(func(context.Context, dispatcher.TaskFailure) (bool, error) { return true, nil },
		activity.RegisterOptions{Name: workflows.ActivityEmitTaskFailed})
	w.RegisterWorkflowWithOptions(func(workflow.Context, dispatcher.TaskPayload) error { return nil }, workflow.RegisterOptions{Name: "f"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	for _, tt := range []struct {
		name      string
		wantCalls int32
		completes bool
	}{
		{"store-outage", 3, true},
		{"template-error", 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := "dispatch-prepare-" + tt.name
			cfg := dispatcher.Config{Version: 1, Dispatchers: []dispatcher.Dispatcher{{ID: "d1", Name: "d1", EventType: "prepare",
				Actions: []dispatcher.Action{{ID: "a1", Name: "a1", Type: dispatcher.ActionTask, FunctionName: "f"}}}},
				Functions: []dispatcher.FunctionRef{{Name: "f", Kind: dispatcher.FunctionTemporal, TaskQueue: queue}}}
			in := workflows.DispatchInput{Event: dispatcher.Event{ID: id, Type: "prepare"}, Config: &cfg, Version: workflows.DispatchVersion}
			run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: queue}, workflows.WorkflowDispatch, in)
			if err != nil {
				t.Fatal(err)
			}
			if err := run.Get(t.Context(), nil); (err == nil) != tt.completes {
				t.Errorf("the dispatch ended with %v, want it to complete: %v", err, tt.completes)
			}
			if n, _ := calls.Load(id); n.(*atomic.Int32).Load() != tt.wantCalls {
				t.Errorf("%d renderings, want %d", n.(*atomic.Int32).Load(), tt.wantCalls)
			}
			replays(t, c, run)
		})
	}
}

// A dispatch reset from the Web UI or the CLI (to its first workflow
// task: run it again) does not run again the child workflow of a temporal
// function that completed, nor start one beside a child still running:
// the action's outcome is that child's. A child that did not complete,
// before the reset or while the reset run awaits it, runs again, which is
// what the reset is for. Before (dispatchV13), a completed child ran a
// second time, and a running one failed the action as Unexpected.
func TestResetDispatchRunsAChildOnce(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "dispatch-reset-child"
	var runs sync.Map  // child workflow ID → runs
	var modes sync.Map // child workflow ID → how its first run ends: "ok", "fail", or "wait" for the signal "finish" to say
	w := worker.New(c, queue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivity(dispatch.NewSequenceActivities(c))
	w.RegisterActivityWithOptions(func(_ context.Context, in dispatcher.TaskInput) (dispatcher.TaskPayload, error) {
		return dispatcher.TaskPayload{TaskID: in.IdempotencyKey, FunctionName: in.FunctionName, Data: json.RawMessage(`{}`)}, nil
	}, activity.RegisterOptions{Name: workflows.ActivityPrepareTask})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context, _ dispatcher.TaskPayload) error {
		id := workflow.GetInfo(ctx).WorkflowExecution.ID
		n, _ := runs.LoadOrStore(id, new(atomic.Int32))
		if n.(*atomic.Int32).Add(1) > 1 {
			return nil // runs again: succeeds
		}
		mode, _ := modes.Load(id)
		if mode == "wait" {
			workflow.GetSignalChannel(ctx, "finish").Receive(ctx, &mode)
		}
		if mode == "fail" {
			return temporal.NewNonRetryableApplicationError("the task failed", "TaskError", nil)
		}
		return nil
	}, workflow.RegisterOptions{Name: "f"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	for _, tt := range []struct {
		name, mode string
		then       string // for "wait": how the first child ends once the reset run awaits it
		wantRuns   int32
	}{
		{"completed", "ok", "", 1},
		{"failed", "fail", "", 2},
		{"running-then-completed", "wait", "ok", 1},
		{"running-then-failed", "wait", "fail", 2},
		// A cancel of the reset run reaches the child it awaits: the
		// child is not its own to the SDK, which passes cancels on to
		// its own children only.
		{"running-then-canceled", "wait", "cancel", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := "dispatch-reset-" + tt.name
			child := id + "/d1/a1"
			modes.Store(child, tt.mode)
			cfg := dispatcher.Config{Version: 1, Dispatchers: []dispatcher.Dispatcher{{ID: "d1", Name: "d1", EventType: "reset", Actions: []dispatcher.Action{
				{ID: "a1", Type: dispatcher.ActionTask, Name: "a1", FunctionName: "f", RetryPolicy: &dispatcher.RetryPolicy{MaximumAttempts: 1}}}}},
				Functions: []dispatcher.FunctionRef{{Name: "f", Kind: dispatcher.FunctionTemporal, TaskQueue: queue}}}
			in := workflows.DispatchInput{Event: dispatcher.Event{ID: id, Type: "reset"}, Config: &cfg, Version: workflows.DispatchVersion}
			first, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: queue}, workflows.WorkflowDispatch, in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.mode == "wait" {
				testenv.Eventually(t, 30*time.Second, func() string {
					if n, _ := runs.Load(child); n == nil {
						return "the child has not run yet"
					}
					return ""
				})
			} else if err := first.Get(t.Context(), nil); (err != nil) != (tt.mode == "fail") {
				t.Fatalf("the first run ended with %v", err)
			}

			second := c.GetWorkflow(t.Context(), id, resetToFirstTask(t, c, id, first.GetRunID()))
			if tt.mode == "wait" {
				// Once the reset run awaits it.
				testenv.Eventually(t, 30*time.Second, func() string {
					p, err := c.DescribeWorkflowExecution(t.Context(), id, second.GetRunID())
					if err != nil || len(p.GetPendingActivities()) == 0 {
						return fmt.Sprintf("the reset run does not await the child yet (%v)", err)
					}
					return ""
				})
				if tt.then == "cancel" {
					if err := c.CancelWorkflow(t.Context(), id, second.GetRunID()); err != nil {
						t.Fatal(err)
					}
					var canceled *temporal.CanceledError
					if err := second.Get(t.Context(), nil); !errors.As(err, &canceled) {
						t.Fatalf("the reset run ended with %v, want it canceled", err)
					}
					waitForEvent(t, c, child, "", enums.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED, "the child was not asked to cancel")
					_ = c.SignalWorkflow(t.Context(), child, "", "finish", "ok")
					replays(t, c, second)
					return
				}
				if err := c.SignalWorkflow(t.Context(), child, "", "finish", tt.then); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			if err := second.Get(ctx, nil); err != nil {
				t.Fatalf("the reset run ended with %v, want it completed", err)
			}
			if n, _ := runs.Load(child); n == nil || n.(*atomic.Int32).Load() != tt.wantRuns {
				t.Fatalf("the child ran %v times, want %d", n, tt.wantRuns)
			}
			replays(t, c, second)
		})
	}
}

// resetToFirstTask resets the run to its first workflow task, as the Web
// UI's "Reset" to the first workflow task does, and returns the new run's
// ID.
func resetToFirstTask(t *testing.T, c client.Client, id, runID string) string {
	return testenv.ResetToTask(t, c, id, runID, false)
}

// A cancel that reaches a dispatch in the workflow task that also brings
// its gated call's permit (both sent while no worker ran it) makes no
// call, and gives the permit back. An await whose condition holds
// returns without looking at the cancel, and the call's local attempt
// runs on a disconnected context; what keeps the call from going out is
// the order in which the SDK runs coroutines: the action's, created
// before the one that takes permits (listenForPermits), sees the cancel
// before the permit is taken. This holds that order to account.
func TestDispatchCanceledWithItsPermit(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "dispatch-canceled-permit"
	requests := make(chan workflows.PermitRequest, 10)
	var calls atomic.Int32
	newWorker := func() worker.Worker { return permitWorker(t, c, queue, requests, &calls) }
	first := newWorker()
	run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "dispatch-canceled-permit", TaskQueue: queue}, workflows.WorkflowDispatch, gatedInput("gated"))
	if err != nil {
		t.Fatal(err)
	}
	var req workflows.PermitRequest
	select {
	case req = <-requests:
	case <-time.After(30 * time.Second):
		t.Fatal("the dispatch asked for no permit")
	}
	// Once the task that asked has completed, the dispatch waits.
	waitForEvent(t, c, run.GetID(), run.GetRunID(), enums.EVENT_TYPE_MARKER_RECORDED, "the permit request is not recorded yet")
	first.Stop()

	if err := c.SignalWorkflow(t.Context(), run.GetID(), run.GetRunID(), workflows.SignalPermit, workflows.PermitGrant{RequestID: req.ID}); err != nil {
		t.Fatal(err)
	}
	if err := c.CancelWorkflow(t.Context(), run.GetID(), run.GetRunID()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(newWorker().Stop)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var canceled *temporal.CanceledError
	if err := run.Get(ctx, nil); !errors.As(err, &canceled) {
		t.Fatalf("the dispatch ended with %v, want canceled", err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d calls made after the cancel, want none", n)
	}
	released := false
	it := c.GetWorkflowHistory(t.Context(), run.GetID(), run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetSignalExternalWorkflowExecutionInitiatedEventAttributes(); a != nil && a.GetSignalName() == workflows.SignalGateDone {
			var done workflows.PermitDone
			if err := converter.GetDefaultDataConverter().FromPayloads(a.GetInput(), &done); err != nil {
				t.Fatal(err)
			}
			// Naming the run, so that a gate tells it from a reset run's
			// request of the same id (gate-done-run).
			released = done.RequestID == req.ID && done.Result == workflows.PermitReleased && done.RunID == run.GetRunID()
		}
	}
	if !released {
		t.Error("the permit was not given back to the gate by the run")
	}
	replays(t, c, run)
}

// A reset run does not take the permit of the run it ends, which the
// reset copies into it with that run's other signals: the permit was used
// and given back, and the function may be paused or at its concurrency
// since. The reset run asks again and calls once its own permit comes.
// Before, it called at once on the old one.
func TestResetDispatchAsksForAPermitOfItsOwn(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue = "dispatch-reset-permit"
	calls, grant := testGate(t, c, queue, "dispatch-reset-permit")
	run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "dispatch-reset-permit", TaskQueue: queue}, workflows.WorkflowDispatch, gatedInput("reset-permit"))
	if err != nil {
		t.Fatal(err)
	}
	grant(run.GetRunID())
	if err := run.Get(t.Context(), nil); err != nil || calls.Load() != 1 {
		t.Fatalf("first run: %v, %d calls; want it completed after one", err, calls.Load())
	}

	second := resetToFirstTask(t, c, run.GetID(), run.GetRunID())
	// Its first task asks again and ends waiting, without a call.
	waitForEvent(t, c, run.GetID(), second, enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, "the reset run's first task has not completed")
	if n := calls.Load(); n != 1 {
		t.Fatalf("the reset run called on the old run's permit: %d calls, want 1", n)
	}
	grant(second)
	if err := c.GetWorkflow(t.Context(), run.GetID(), second).Get(t.Context(), nil); err != nil || calls.Load() != 2 {
		t.Fatalf("reset run: %v, %d calls; want it completed after its own permit", err, calls.Load())
	}
	replays(t, c, c.GetWorkflow(t.Context(), run.GetID(), second))

	// Reset to its last task, the first run's permit is among the events
	// the new run replays as its own: taken then, it is taken again.
	// (Compared with the run's own ID, it was not: the task failed as
	// non-deterministic, again and again.)
	third := c.GetWorkflow(t.Context(), run.GetID(), testenv.ResetToTask(t, c, run.GetID(), run.GetRunID(), true))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := third.Get(ctx, nil); err != nil {
		t.Fatalf("the run reset to its last task: %v, want it completed", err)
	}
	replays(t, c, third)
}

// A run reset to the workflow task that took its permit keeps the
// permit's request (its marker names the run it ends) and that run's
// permit, used and given back long ago: it asks again, and calls once its
// own comes (dispatchV16). Before, it called at once on the old one,
// past the function's concurrency, pause or open circuit.
func TestResetAfterAPermitRequestAsksAgain(t *testing.T) {
	c := testenv.TemporalClient(t)
	const queue, id = "dispatch-reset-after-request", "dispatch-reset-after-request"
	calls, grant := testGate(t, c, queue, id)
	run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: queue}, workflows.WorkflowDispatch, gatedInput("reset-after-request"))
	if err != nil {
		t.Fatal(err)
	}
	grant(run.GetRunID())
	if err := run.Get(t.Context(), nil); err != nil || calls.Load() != 1 {
		t.Fatalf("first run: %v, %d calls; want it completed after one", err, calls.Load())
	}
	// The task that took the permit: the first to complete after it came.
	var signaled bool
	var took int64
	it := c.GetWorkflowHistory(t.Context(), id, run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() && took == 0 {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ev.GetWorkflowExecutionSignaledEventAttributes().GetSignalName() == workflows.SignalPermit:
			signaled = true
		case signaled && ev.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			took = ev.GetEventId()
		}
	}
	reset, err := c.ResetWorkflowExecution(t.Context(), &workflowservice.ResetWorkflowExecutionRequest{
		Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: run.GetRunID()},
		Reason: "test", WorkflowTaskFinishEventId: took, RequestId: "reset-after-request"})
	if err != nil {
		t.Fatal(err)
	}
	second := reset.GetRunId()
	grant(second) // it asks again, without a call
	if err := c.GetWorkflow(t.Context(), id, second).Get(t.Context(), nil); err != nil || calls.Load() != 2 {
		t.Fatalf("reset run: %v, %d calls; want it completed after its own permit, 2 calls in all", err, calls.Load())
	}
	replays(t, c, c.GetWorkflow(t.Context(), id, second))
}

// testGate starts a worker on queue whose permit requests the test
// answers, as the gate: grant waits for run runID of dispatch id to ask,
// and sends it its permit. calls counts the calls made.
func testGate(t *testing.T, c client.Client, queue, id string) (calls *atomic.Int32, grant func(runID string)) {
	requests := make(chan workflows.PermitRequest, 10)
	calls = new(atomic.Int32)
	t.Cleanup(permitWorker(t, c, queue, requests, calls).Stop)
	return calls, func(runID string) {
		t.Helper()
		var req workflows.PermitRequest
		select {
		case req = <-requests:
		case <-time.After(30 * time.Second):
			t.Fatalf("run %s asked for no permit (%d calls)", runID, calls.Load())
		}
		if req.RunID != runID {
			t.Fatalf("the request came from run %q, want %q", req.RunID, runID)
		}
		if err := c.SignalWorkflow(t.Context(), id, runID, workflows.SignalPermit, workflows.PermitGrant{RequestID: req.ID, RunID: runID}); err != nil {
			t.Fatal(err)
		}
	}
}

// waitForEvent polls the history of a run until it holds an event of typ;
// what says what is missing meanwhile.
func waitForEvent(t *testing.T, c client.Client, id, runID string, typ enums.EventType, what string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() string {
		it := c.GetWorkflowHistory(t.Context(), id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return err.Error()
			}
			if ev.GetEventType() == typ {
				return ""
			}
		}
		return what
	})
}

// registerHeld registers the call activities, local and regular: each
// call is counted, says on started that it began, and answers 200 once
// release lets it.
func registerHeld(w worker.Worker, calls *atomic.Int32, started chan<- struct{}, release <-chan struct{}) {
	for _, name := range []string{workflows.LocalCallFunction, workflows.ActivityCallFunction} {
		w.RegisterActivityWithOptions(func(context.Context, dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			calls.Add(1)
			started <- struct{}{}
			<-release
			return dispatcher.TaskResult{StatusCode: 200, Attempt: 1}, nil
		}, activity.RegisterOptions{Name: name})
	}
}

// gatedInput is the input of the dispatch of event eventID to one call of
// the gated HTTP function f.
func gatedInput(eventID string) workflows.DispatchInput {
	cfg := dispatcher.Config{Version: 1, Dispatchers: []dispatcher.Dispatcher{{ID: "d1", Name: "d1", EventType: "gated", Actions: []dispatcher.Action{
		{ID: "a1", Type: dispatcher.ActionTask, Name: "call", FunctionName: "f"}}}},
		Functions: []dispatcher.FunctionRef{{Name: "f", Kind: dispatcher.FunctionHTTP, Timeout: 10 * time.Second, Gated: true}}}
	return workflows.DispatchInput{Event: dispatcher.Event{ID: eventID, Type: "gated"}, Config: &cfg, Version: workflows.DispatchVersion}
}

// permitWorker starts a worker on queue whose permit requests go to
// requests (no gate answers them) and whose calls are counted.
func permitWorker(t *testing.T, c client.Client, queue string, requests chan<- workflows.PermitRequest, calls *atomic.Int32) worker.Worker {
	t.Helper()
	w := worker.New(c, queue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivityWithOptions(func(_ context.Context, in workflows.RequestPermitInput) (string, error) {
		requests <- in.Request
		return in.Request.RunID, nil
	}, activity.RegisterOptions{Name: workflows.ActivityRequestPermit})
	registerCounted(w, calls)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	return w
}

// registerCounted registers mail and call activities, local and regular,
// that succeed and count their calls.
func registerCounted(w worker.Worker, calls *atomic.Int32) {
	for _, name := range []string{workflows.LocalSendMail, workflows.ActivitySendMail} {
		w.RegisterActivityWithOptions(func(context.Context, dispatcher.MailInput) (dispatcher.MailResult, error) {
			calls.Add(1)
			return dispatcher.MailResult{}, nil
		}, activity.RegisterOptions{Name: name})
	}
	for _, name := range []string{workflows.LocalCallFunction, workflows.ActivityCallFunction} {
		w.RegisterActivityWithOptions(func(context.Context, dispatcher.TaskInput) (dispatcher.TaskResult, error) {
			calls.Add(1)
			return dispatcher.TaskResult{StatusCode: 200, Attempt: 1}, nil
		}, activity.RegisterOptions{Name: name})
	}
}

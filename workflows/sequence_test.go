package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// sequenceEnv runs a Sequence whose dispatches are a stand-in that takes
// a minute each (a failure for the event ids in fail), and records when
// each ran.
type sequenceEnv struct {
	*testsuite.TestWorkflowEnvironment
	fail  map[string]bool
	runs  []string // event ids, in the order their dispatches started
	spans map[string][2]time.Time
	// overflows are the inputs of the dispatches started as overflows,
	// which run nothing.
	overflows []workflows.DispatchInput
	pad       string // sent in every event's content
	// windDown is how long a dispatch takes to close once canceled, as
	// a real one waits for its attempts in flight.
	windDown time.Duration
	// overflowTakes is how long an overflow dispatch takes to fail;
	// canceledOverflows counts those canceled meanwhile.
	overflowTakes     time.Duration
	canceledOverflows int
}

func newSequenceEnv(t *testing.T) *sequenceEnv {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	e := &sequenceEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment(), fail: map[string]bool{}, spans: map[string][2]time.Time{}}
	e.SetStartTime(t0)
	e.RegisterWorkflowWithOptions(workflows.Sequence, workflow.RegisterOptions{Name: workflows.WorkflowSequence})
	e.RegisterWorkflowWithOptions(func(ctx workflow.Context, in workflows.DispatchInput) (workflows.DispatchResult, error) {
		id, start := in.Event.ID, workflow.Now(ctx)
		if in.Overflow != "" {
			if err := workflow.Sleep(ctx, e.overflowTakes); err != nil {
				record(func() { e.canceledOverflows++ })
				return workflows.DispatchResult{}, err
			}
			record(func() { e.overflows = append(e.overflows, in) })
			return workflows.DispatchResult{}, temporal.NewNonRetryableApplicationError("overflow", dispatcher.FailureDispatch, nil)
		}
		record(func() { e.runs = append(e.runs, id) })
		if want := content(id, e.pad); string(in.Event.Content) != want {
			return workflows.DispatchResult{}, fmt.Errorf("event %s came with the content %.40s…, want %.40s…", id, in.Event.Content, want)
		}
		if err := workflow.Sleep(ctx, time.Minute); err != nil {
			if e.windDown > 0 {
				dctx, _ := workflow.NewDisconnectedContext(ctx)
				_ = workflow.Sleep(dctx, e.windDown)
			}
			return workflows.DispatchResult{}, err
		}
		record(func() { e.spans[id] = [2]time.Time{start, workflow.Now(ctx)} })
		if e.fail[id] {
			return workflows.DispatchResult{}, temporal.NewNonRetryableApplicationError("1 of 1 actions failed", dispatcher.FailureDispatch, nil)
		}
		return workflows.DispatchResult{}, nil
	}, workflow.RegisterOptions{Name: workflows.WorkflowDispatch})
	return e
}

// send signals the Sequence the dispatch of event id after d.
func (e *sequenceEnv) send(d time.Duration, block bool, ids ...string) {
	e.RegisterDelayedCallback(func() {
		for _, id := range ids {
			e.SignalWorkflow(workflows.SignalSequenceEvent, workflows.SequencedDispatch{
				WorkflowID: dispatcher.WorkflowID(id), Block: block,
				Input: workflows.DispatchInput{Event: dispatcher.Event{ID: id, Type: "user_deleted", Content: json.RawMessage(content(id, e.pad))},
					Version: workflows.DispatchVersion},
			})
		}
	}, d)
}

// suggest makes Temporal suggest continuing as new after d, to a run
// whose history is long enough to (sequenceMinRun).
func (e *sequenceEnv) suggest(d time.Duration) {
	e.RegisterDelayedCallback(e.suggestNow, d)
}

func (e *sequenceEnv) suggestNow() {
	e.SetCurrentHistoryLength(100)
	e.SetContinueAsNewSuggested(true)
}

func content(id, pad string) string {
	if pad == "" {
		return `{"id":"` + id + `"}`
	}
	return `{"id":"` + id + `","pad":"` + pad + `"}`
}

func (e *sequenceEnv) run(t *testing.T, in workflows.SequenceInput) error {
	t.Helper()
	e.ExecuteWorkflow(workflows.WorkflowSequence, in)
	if !e.IsWorkflowCompleted() {
		t.Fatal("the sequence did not complete")
	}
	return e.GetWorkflowError()
}

// The dispatches of a key run one at a time, in the order their events
// arrived, each with its own event (events that arrived together once
// shared their content's bytes); one that arrives twice while it waits
// runs once; an idle Sequence completes.
func TestSequenceRunsOneAfterAnother(t *testing.T) {
	e := newSequenceEnv(t)
	e.send(0, true, "e1", "e2", "e1", "e3")
	e.send(90*time.Second, true, "e4")
	if err := e.run(t, workflows.SequenceInput{}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"e1", "e2", "e3", "e4"}; !slices.Equal(e.runs, want) {
		t.Fatalf("dispatches ran %v, want %v", e.runs, want)
	}
	for i := 1; i < len(e.runs); i++ {
		if prev, cur := e.spans[e.runs[i-1]], e.spans[e.runs[i]]; cur[0].Before(prev[1]) {
			t.Errorf("%s started at %v, before %s ended at %v", e.runs[i], cur[0], e.runs[i-1], prev[1])
		}
	}
}

// A failed dispatch that blocks holds the key until released; with skip,
// the key goes on.
func TestSequenceBlocksUntilReleased(t *testing.T) {
	for _, block := range []bool{true, false} {
		t.Run(fmt.Sprint("block=", block), func(t *testing.T) {
			e := newSequenceEnv(t)
			e.fail["e1"] = true
			e.send(0, block, "e1", "e2")
			e.RegisterDelayedCallback(func() {
				if block {
					var st workflows.SequenceState
					if v, err := e.QueryWorkflow(workflows.QuerySequence); err != nil || v.Get(&st) != nil || st.Blocked != dispatcher.WorkflowID("e1") {
						t.Errorf("state while blocked: %+v (%v)", st, err)
					}
				}
				e.SignalWorkflow(workflows.SignalSequenceRelease, dispatcher.WorkflowID("other"))
				e.SignalWorkflow(workflows.SignalSequenceRelease, dispatcher.WorkflowID("e1"))
			}, time.Hour)
			if err := e.run(t, workflows.SequenceInput{}); err != nil {
				t.Fatal(err)
			}
			started := e.spans["e2"][0]
			if want := t0.Add(time.Minute); !block && !started.Equal(want) {
				t.Errorf("with skip, e2 started at %v, want right after e1 (%v)", started, want)
			}
			if block && started.Before(t0.Add(time.Hour)) {
				t.Errorf("e2 started at %v, before e1 was released", started)
			}
		})
	}
}

// A failed dispatch holds its key as its event type's ordering says when
// it fails, whatever it said when the event was accepted: onFailure
// changed to skip (or ordering removed) lets the key go on, changed to
// block holds it; an ordering that cannot be read keeps the accepted one.
// So for a dispatch a run handed over. Before, the accepted policy
// decided: a key kept blocking after onFailure became skip (a probe).
func TestSequenceFailedDispatchHoldsItsKeyAsItsOrderingSaysNow(t *testing.T) {
	for _, tc := range []struct {
		name            string
		accepted        bool
		now             bool
		unread, running bool
		held            bool
	}{
		{name: "block, then skip", accepted: true, now: false, held: false},
		{name: "skip, then block", accepted: false, now: true, held: true},
		{name: "block, unread", accepted: true, unread: true, held: true},
		{name: "skip, unread", accepted: false, unread: true, held: false},
		{name: "handed over: block, then skip", accepted: true, now: false, running: true, held: false},
		{name: "handed over: skip, then block", accepted: false, now: true, running: true, held: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newSequenceEnv(t)
			var asked []string
			e.RegisterActivityWithOptions(func(_ context.Context, eventType string) (bool, error) {
				record(func() { asked = append(asked, eventType) })
				if tc.unread {
					return false, temporal.NewNonRetryableApplicationError("the store is down", dispatcher.FailureStore, nil)
				}
				return tc.now, nil
			}, activity.RegisterOptions{Name: workflows.ActivityOrderingBlocks})
			e.RegisterDelayedCallback(func() {
				e.SignalWorkflow(workflows.SignalSequenceRelease, dispatcher.WorkflowID("e1"))
			}, time.Hour)
			var in workflows.SequenceInput
			if tc.running {
				e.RegisterActivityWithOptions(func(context.Context, workflows.AwaitDispatchInput) (workflows.DispatchClosed, error) {
					return workflows.DispatchClosed{Status: workflows.ClosedFailed, Failure: "1 of 1 actions failed"}, nil
				}, activity.RegisterOptions{Name: workflows.ActivityAwaitDispatch})
				in.State = &workflows.SequenceState{Running: &workflows.RunningDispatch{WorkflowID: dispatcher.WorkflowID("e1"), RunID: "run-1", Block: tc.accepted, EventType: "user_deleted"}}
				e.send(0, tc.accepted, "e2")
			} else {
				e.fail["e1"] = true
				e.send(0, tc.accepted, "e1", "e2")
			}
			if err := e.run(t, in); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(asked, []string{"user_deleted"}) {
				t.Errorf("the ordering was read for %v, want for e1's type once", asked)
			}
			if started := e.spans["e2"][0]; tc.held != !started.Before(t0.Add(time.Hour)) {
				t.Errorf("e2 started at %v; held by e1 until released at %v: %v", started, t0.Add(time.Hour), tc.held)
			}
		})
	}
}

// A signal whose payload does not decode (garbage sent from the CLI) is
// dropped without holding up the Sequence: the release that follows is
// taken. Before, the Sequence waited in the event channel's Receive for
// the next valid event, and the key stayed blocked.
func TestSequenceDropsGarbageSignals(t *testing.T) {
	e := newSequenceEnv(t)
	e.fail["e1"] = true
	e.send(0, true, "e1", "e2")
	e.RegisterDelayedCallback(func() {
		e.SignalWorkflow(workflows.SignalSequenceEvent, "junk")
		e.SignalWorkflow(workflows.SignalSequenceRelease, 42)
	}, time.Hour)
	e.RegisterDelayedCallback(func() {
		e.SignalWorkflow(workflows.SignalSequenceRelease, dispatcher.WorkflowID("e1"))
	}, 2*time.Hour)
	if err := e.run(t, workflows.SequenceInput{}); err != nil {
		t.Fatal(err)
	}
	if started := e.spans["e2"][0]; started.Before(t0.Add(2*time.Hour)) || started.After(t0.Add(2*time.Hour+time.Minute)) {
		t.Errorf("e2 started at %v, want once e1 was released, at %v", started, t0.Add(2*time.Hour))
	}
}

// A long Sequence continues as new with what is still queued.
func TestSequenceContinuesAsNew(t *testing.T) {
	e := newSequenceEnv(t)
	ids := make([]string, 203)
	for i := range ids {
		ids[i] = fmt.Sprint("e", i)
	}
	e.send(0, true, ids...)
	next := continuedWith[workflows.SequenceInput](t, e.run(t, workflows.SequenceInput{}))
	if len(e.runs) != 200 || next.State == nil || len(next.State.Queue) != 3 || next.State.Queue[0].Input.Event.ID != "e200" {
		t.Fatalf("%d ran, carried %+v", len(e.runs), next.State)
	}
}

// A blocked Sequence continues as new, still blocked and with its queue,
// when Temporal suggests it. Before, it waited for its release however
// long its history grew with the events that waited, until the server
// terminated it and they were lost.
func TestSequenceContinuesAsNewWhileBlocked(t *testing.T) {
	e := newSequenceEnv(t)
	e.fail["e1"] = true
	e.send(0, true, "e1", "e2")
	e.suggest(time.Hour)
	e.send(time.Hour+time.Minute, true, "e3")
	next := continuedWith[workflows.SequenceInput](t, e.run(t, workflows.SequenceInput{}))
	var queued []string
	for _, q := range next.State.Queue {
		queued = append(queued, q.Input.Event.ID)
	}
	if next.State.Blocked != dispatcher.WorkflowID("e1") || !slices.Equal(queued, []string{"e2", "e3"}) || !slices.Equal(e.runs, []string{"e1"}) {
		t.Fatalf("ran %v, carried blocked=%q queue=%v; want e1 ran, blocked by e1, e2 and e3 queued", e.runs, next.State.Blocked, queued)
	}
}

// A Sequence whose history grows while the dispatch at its head runs
// (one that waits days for an action's startTimestamp, while the events
// behind it arrive) continues as new when Temporal suggests it, handing
// the running dispatch over. Before, it waited on its child however long
// its history grew, until the server terminated it and the waiting events
// were lost.
func TestSequenceContinuesAsNewWhileItsHeadRuns(t *testing.T) {
	e := newSequenceEnv(t)
	e.send(0, true, "e1", "e2")
	e.suggest(10 * time.Second)
	e.send(20*time.Second, true, "e3")
	next := continuedWith[workflows.SequenceInput](t, e.run(t, workflows.SequenceInput{}))
	var queued []string
	for _, q := range next.State.Queue {
		queued = append(queued, q.Input.Event.ID)
	}
	r := next.State.Running
	if r == nil || r.WorkflowID != dispatcher.WorkflowID("e1") || r.RunID == "" || !r.Block || !slices.Equal(queued, []string{"e2", "e3"}) {
		t.Fatalf("carried running=%+v queue=%v; want e1 running (with its run ID), e2 and e3 queued", r, queued)
	}
}

// A run that decided, before sequenceAwaitV1, to wait on its child while
// Temporal suggested continuing as new (its history says so: no marker)
// keeps waiting on it, as the older code did, when a newer worker replays
// it: the handover is only for runs whose marker says sequenceAwaitV1.
func TestSequenceHandsOverOnlyFromItsVersion(t *testing.T) {
	e := newSequenceEnv(t)
	e.OnGetVersion("sequence-await", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	e.send(0, true, "e1", "e2")
	e.suggest(10 * time.Second)
	e.send(20*time.Second, true, "e3")
	next := continuedWith[workflows.SequenceInput](t, e.run(t, workflows.SequenceInput{}))
	// e1 ran to its end as a child; then, still suggested, the run
	// continued as new before the next dispatch, with nothing handed over.
	if next.State.Running != nil || !slices.Equal(e.runs, []string{"e1"}) || len(next.State.Queue) != 2 {
		t.Fatalf("ran %v, carried running=%+v and %d waiting; want e1 ran as a child, e2 and e3 waiting", e.runs, next.State.Running, len(next.State.Queue))
	}
	if got := e.spans["e1"]; got[1].IsZero() {
		t.Fatal("e1 did not run to its end before the run continued as new")
	}
}

// The next run waits for the dispatch handed over (ActivityAwaitDispatch)
// before it runs the queue, and treats its end as that of a child: a
// failure blocks the key until released, anything else lets it go on.
func TestSequenceAwaitsTheDispatchItWasHandedOver(t *testing.T) {
	for _, closed := range []workflows.DispatchClosed{{Status: workflows.ClosedCompleted}, {Status: workflows.ClosedCanceled, Failure: "canceled"},
		{Status: workflows.ClosedNotFound}, {Status: workflows.ClosedFailed, Failure: "1 of 1 actions failed"},
		{Status: workflows.ClosedTerminated, Failure: "terminated"}, {Status: workflows.ClosedTimedOut, Failure: "timed out"}} {
		t.Run(closed.Status, func(t *testing.T) {
			e := newSequenceEnv(t)
			var awaited []workflows.AwaitDispatchInput
			e.RegisterActivityWithOptions(func(_ context.Context, in workflows.AwaitDispatchInput) (workflows.DispatchClosed, error) {
				record(func() { awaited = append(awaited, in) })
				return closed, nil
			}, activity.RegisterOptions{Name: workflows.ActivityAwaitDispatch})
			held := closed.Status == workflows.ClosedFailed || closed.Status == workflows.ClosedTerminated || closed.Status == workflows.ClosedTimedOut
			e.RegisterDelayedCallback(func() {
				var st workflows.SequenceState
				if v, err := e.QueryWorkflow(workflows.QuerySequence); err != nil || v.Get(&st) != nil {
					t.Errorf("query: %v", err)
				} else if blocked := st.Blocked == dispatcher.WorkflowID("e1"); blocked != held || st.Running != nil {
					t.Errorf("state after the await: %+v; want blocked by e1 %v, nothing running", st, held)
				}
				e.SignalWorkflow(workflows.SignalSequenceRelease, dispatcher.WorkflowID("e1"))
			}, time.Hour)
			in := workflows.SequenceInput{State: &workflows.SequenceState{
				Running: &workflows.RunningDispatch{WorkflowID: dispatcher.WorkflowID("e1"), RunID: "run-1", Block: true}}}
			e.send(0, true, "e2")
			if err := e.run(t, in); err != nil {
				t.Fatal(err)
			}
			want := workflows.AwaitDispatchInput{WorkflowID: dispatcher.WorkflowID("e1"), RunID: "run-1"}
			if len(awaited) != 1 || awaited[0] != want || !slices.Equal(e.runs, []string{"e2"}) {
				t.Fatalf("awaited %+v and ran %v; want %+v awaited, then e2", awaited, e.runs, want)
			}
			if started := e.spans["e2"][0]; held != !started.Before(t0.Add(time.Hour)) {
				t.Errorf("e2 started at %v; blocked until released at %v: %v", started, t0.Add(time.Hour), held)
			}
		})
	}
}

// A run does not continue as new before its history holds sequenceMinRun
// events, even when Temporal suggests it from its first task on (a size
// limit set below what it carries): it would otherwise start run after
// run doing nothing else. Here it awaits the dispatch handed over, then
// runs the one waiting, and completes once idle.
func TestSequenceAwaitDoesNotContinueAsNewAtOnce(t *testing.T) {
	e := newSequenceEnv(t)
	e.RegisterActivityWithOptions(func(context.Context, workflows.AwaitDispatchInput) (workflows.DispatchClosed, error) {
		return workflows.DispatchClosed{Status: workflows.ClosedCompleted}, nil
	}, activity.RegisterOptions{Name: workflows.ActivityAwaitDispatch})
	e.SetContinueAsNewSuggested(true)
	e.send(0, true, "e2")
	in := workflows.SequenceInput{State: &workflows.SequenceState{
		Running: &workflows.RunningDispatch{WorkflowID: dispatcher.WorkflowID("e1"), RunID: "run-1", Block: true}}}
	if err := e.run(t, in); err != nil || !slices.Equal(e.runs, []string{"e2"}) {
		t.Fatalf("ended with %v, ran %v; want e2 ran after the await, and an idle end", err, e.runs)
	}
}

// The same holds for a blocked key (it waits for its release) and for
// its queue (it runs it), from sequenceMinRunV1 on. Before, each new run
// continued as new at once, and the key never moved.
func TestSequenceDoesNotContinueAsNewAtOnce(t *testing.T) {
	queue := func(ids ...string) []workflows.SequencedDispatch {
		var q []workflows.SequencedDispatch
		for _, id := range ids {
			q = append(q, workflows.SequencedDispatch{WorkflowID: dispatcher.WorkflowID(id), Block: true,
				Input: workflows.DispatchInput{Event: dispatcher.Event{ID: id, Type: "user_deleted", Content: json.RawMessage(content(id, ""))},
					Version: workflows.DispatchVersion}})
		}
		return q
	}
	for _, blocked := range []string{"", dispatcher.WorkflowID("e0")} {
		e := newSequenceEnv(t)
		e.SetContinueAsNewSuggested(true)
		e.RegisterDelayedCallback(func() { e.SignalWorkflow(workflows.SignalSequenceRelease, dispatcher.WorkflowID("e0")) }, time.Hour)
		in := workflows.SequenceInput{State: &workflows.SequenceState{Blocked: blocked, Queue: queue("e1", "e2")}}
		if err := e.run(t, in); err != nil || !slices.Equal(e.runs, []string{"e1", "e2"}) {
			t.Fatalf("blocked=%q: ended with %v, ran %v; want e1 and e2 ran, and an idle end", blocked, err, e.runs)
		}
		if blocked != "" && e.spans["e1"][0].Before(t0.Add(time.Hour)) {
			t.Fatalf("e1 ran at %v, before its key was released", e.spans["e1"][0])
		}
	}
}

// A run whose history has more than doubled in bytes since its first
// task (large events arrived) has grown enough to follow the suggestion,
// however few its events.
func TestSequenceContinuesAsNewOnceGrown(t *testing.T) {
	e := newSequenceEnv(t)
	e.SetContinueAsNewSuggested(true)
	e.SetCurrentHistorySize(1000)
	e.RegisterDelayedCallback(func() { e.SetCurrentHistorySize(2000) }, time.Hour)
	e.send(time.Hour+time.Minute, true, "e2")
	e.RegisterDelayedCallback(func() { e.SetCurrentHistorySize(2001) }, 2*time.Hour)
	e.send(2*time.Hour+time.Minute, true, "e3")
	in := workflows.SequenceInput{State: &workflows.SequenceState{Blocked: dispatcher.WorkflowID("e0")}}
	next := continuedWith[workflows.SequenceInput](t, e.run(t, in))
	var queued []string
	for _, q := range next.State.Queue {
		queued = append(queued, q.Input.Event.ID)
	}
	if next.State.Blocked != dispatcher.WorkflowID("e0") || !slices.Equal(queued, []string{"e2", "e3"}) {
		t.Fatalf("carried blocked=%q queue=%v; want still blocked, e2 and e3 (at twice the bytes it began with, not yet)", next.State.Blocked, queued)
	}
}

// A run that continued as new at once, before sequenceMinRunV1 (its
// history has no marker), does so again when a newer worker replays it.
func TestSequenceContinuesAsNewAtOnceBeforeItsVersion(t *testing.T) {
	e := newSequenceEnv(t)
	e.OnGetVersion("sequence-min-run", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	e.SetContinueAsNewSuggested(true)
	e.send(0, true, "e1")
	next := continuedWith[workflows.SequenceInput](t, e.run(t, workflows.SequenceInput{}))
	if len(e.runs) != 0 || len(next.State.Queue) != 1 {
		t.Fatalf("ran %v, carried %d waiting; want nothing ran, e1 carried", e.runs, len(next.State.Queue))
	}
}

// A release of the dispatch the Sequence awaits, which comes while it
// runs (a replay of its failed run came first), keeps its failure from
// blocking the key.
func TestSequenceAwaitedDispatchReleased(t *testing.T) {
	e := newSequenceEnv(t)
	released := make(chan struct{})
	e.RegisterActivityWithOptions(func(context.Context, workflows.AwaitDispatchInput) (workflows.DispatchClosed, error) {
		<-released // the release is in the Sequence's history before the await ends
		return workflows.DispatchClosed{Status: workflows.ClosedFailed, Failure: "1 of 1 actions failed"}, nil
	}, activity.RegisterOptions{Name: workflows.ActivityAwaitDispatch})
	e.RegisterDelayedCallback(func() {
		e.SignalWorkflow(workflows.SignalSequenceRelease, dispatcher.WorkflowID("e1"))
		close(released)
	}, time.Second)
	e.send(0, true, "e2")
	in := workflows.SequenceInput{State: &workflows.SequenceState{
		Running: &workflows.RunningDispatch{WorkflowID: dispatcher.WorkflowID("e1"), RunID: "run-1", Block: true}}}
	if err := e.run(t, in); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.runs, []string{"e2"}) || e.spans["e2"][0].After(t0.Add(time.Minute)) {
		t.Fatalf("ran %v (e2 at %v); want e2 right after the released e1", e.runs, e.spans["e2"][0])
	}
}

// A release that the Sequence has not read when it continues as new is
// carried over: here the release of e1 is already waiting when e1 fails
// and blocks the key, in a workflow task in which Temporal suggests
// continuing as new. Before, it was lost, and the key stayed blocked
// until released again.
func TestSequenceReleaseCarriedOverContinueAsNew(t *testing.T) {
	e := newSequenceEnv(t)
	e.fail["e1"] = true
	e.send(0, true, "e1", "e2")
	// DispatchBlocked as upserted last: the next run inherits it. A
	// Sequence upserts no other attribute, and an unset shows as none.
	blocked := ""
	e.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil).Run(func(args mock.Arguments) {
		blocked, _ = args.Get(0).(temporal.SearchAttributes).GetKeyword(workflows.AttrBlocked)
	})
	e.RegisterDelayedCallback(func() {
		e.suggestNow()
		e.SignalWorkflow(workflows.SignalSequenceRelease, dispatcher.WorkflowID("e1"))
	}, 30*time.Second) // while e1 runs
	next := continuedWith[workflows.SequenceInput](t, e.run(t, workflows.SequenceInput{}))
	if blocked != "" {
		t.Errorf("the run continued as new with DispatchBlocked = %q", blocked)
	}
	if next.State.Blocked != "" || len(next.State.Queue) != 1 || !slices.Equal(e.runs, []string{"e1"}) {
		t.Fatalf("ran %v, carried blocked=%q and %d waiting; want e1 ran, unblocked, e2 waiting", e.runs, next.State.Blocked, len(next.State.Queue))
	}
}

// continuedWith checks that err is a ContinueAsNew and returns its input.
func continuedWith[In any](t *testing.T, err error) In {
	t.Helper()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("error %v, want ContinueAsNew", err)
	}
	var in In
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &in); err != nil {
		t.Fatal(err)
	}
	return in
}

// A key holds at most SequenceQueueBytes of waiting events. One more is
// dispatched at once as an overflow, which runs nothing and is kept for a
// replay; the others run in order once the key is released. Before, the
// queue grew without a bound, and a Sequence continuing as new with more
// than Temporal's blob limit was terminated by the server, losing every
// event it held.
func TestSequenceOverflow(t *testing.T) {
	e := newSequenceEnv(t)
	e.pad = strings.Repeat("x", 400<<10) // 4 fit in SequenceQueueBytes
	e.fail["e1"] = true
	e.send(0, true, "e1")
	e.send(time.Hour, true, "e2", "e3", "e4", "e5", "e6")
	var carried int
	e.RegisterDelayedCallback(func() {
		var st workflows.SequenceState
		if v, err := e.QueryWorkflow(workflows.QuerySequence); err != nil || v.Get(&st) != nil {
			t.Errorf("query: %v", err)
		}
		b, _ := json.Marshal(workflows.SequenceInput{State: &st})
		carried = len(b)
		e.SignalWorkflow(workflows.SignalSequenceRelease, dispatcher.WorkflowID("e1"))
	}, 2*time.Hour)
	if err := e.run(t, workflows.SequenceInput{}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"e1", "e2", "e3", "e4"}; !slices.Equal(e.runs, want) {
		t.Errorf("dispatches ran %v, want %v", e.runs, want)
	}
	var over []string
	for _, in := range e.overflows {
		over = append(over, in.Event.ID)
		if in.Version != workflows.DispatchVersion || !strings.Contains(in.Overflow, "3 waiting events") || in.Event.Type != "user_deleted" {
			t.Errorf("overflow of %s: version %d, reason %q", in.Event.ID, in.Version, in.Overflow)
		}
	}
	// Started together, the overflow dispatches run in either order.
	if slices.Sort(over); !slices.Equal(over, []string{"e5", "e6"}) {
		t.Errorf("overflows %v, want e5 and e6", over)
	}
	if carried > workflows.SequenceQueueBytes+1024 {
		t.Errorf("a ContinueAsNew would carry %d bytes, more than the %d bound", carried, workflows.SequenceQueueBytes)
	}
}

// A Sequence continuing as new waits for its overflow dispatches to have
// started: a child whose parent closed before its start is never started,
// and its event would be lost.
func TestSequenceOverflowStartsBeforeContinueAsNew(t *testing.T) {
	e := newSequenceEnv(t)
	e.pad = strings.Repeat("x", 400<<10)
	e.fail["e1"] = true
	e.send(0, true, "e1")
	e.send(time.Hour, true, "e2", "e3", "e4", "e5")
	e.suggest(2 * time.Hour)
	e.send(2*time.Hour+time.Minute, true, "e6")
	next := continuedWith[workflows.SequenceInput](t, e.run(t, workflows.SequenceInput{}))
	var queued []string
	for _, q := range next.State.Queue {
		queued = append(queued, q.Input.Event.ID)
	}
	if !slices.Equal(queued, []string{"e2", "e3", "e4"}) || len(e.overflows) != 2 {
		t.Fatalf("carried %v with %d overflows started; want e2 e3 e4, and e5 e6 started", queued, len(e.overflows))
	}
}

// A Sequence canceled while it continues as new (waiting for its overflow
// dispatches to start) is canceled, not carried over: a cancel does not
// reach the next run. Before, the next run went on with the key's queue
// as if no one had asked.
func TestSequenceCanceledWhileContinuingAsNew(t *testing.T) {
	e := newSequenceEnv(t)
	e.pad = strings.Repeat("x", 400<<10)
	e.fail["e1"] = true
	// The cancel comes with the start of e6's overflow dispatch, which
	// the run waits for before it continues as new.
	e.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		if info.WorkflowExecution.ID == dispatcher.WorkflowID("e6") {
			e.CancelWorkflow()
		}
	})
	e.send(0, true, "e1")
	e.send(time.Hour, true, "e2", "e3", "e4", "e5")
	e.suggest(2 * time.Hour)
	e.send(2*time.Hour+time.Minute, true, "e6")
	e.canceledRefusing(t, "e2", "e3", "e4", "e5", "e6")
}

// A canceled Sequence loses none of its waiting events: the dispatch in
// flight is canceled with it, each event still waiting is dispatched at
// once as one that runs none of its actions (found and replayed as any
// failure), and the Sequence closes canceled. Before, every waiting
// event's child was canceled before it started, and the Sequence
// completed as if it had run them.
func TestSequenceCanceledDispatchesItsWaitingEvents(t *testing.T) {
	for _, blocked := range []bool{false, true} {
		t.Run(fmt.Sprintf("blocked=%v", blocked), func(t *testing.T) {
			e := newSequenceEnv(t)
			cancelAt := 30 * time.Second
			if blocked {
				e.fail["e1"] = true // blocks the key, which waits for a release
				cancelAt = time.Hour
			}
			// More than one workflow task starts (overflowStarts).
			waiting := ids("e", 151)[2:]
			e.send(0, true, append([]string{"e1"}, waiting...)...)
			e.RegisterDelayedCallback(e.CancelWorkflow, cancelAt)
			err := e.run(t, workflows.SequenceInput{})
			var canceled *temporal.CanceledError
			if !errors.As(err, &canceled) {
				t.Fatalf("the Sequence ended with %v, want canceled", err)
			}
			if want := []string{"e1"}; !slices.Equal(e.runs, want) {
				t.Errorf("dispatches ran %v, want %v", e.runs, want)
			}
			var refused []string
			for _, in := range e.overflows {
				refused = append(refused, in.Event.ID)
				if !strings.Contains(in.Overflow, "was canceled before its turn") {
					t.Errorf("%s refused for %q", in.Event.ID, in.Overflow)
				}
			}
			slices.Sort(refused)
			if slices.Sort(waiting); !slices.Equal(refused, waiting) {
				t.Errorf("dispatched as refused: %d events %v…, want the %d waiting", len(refused), refused[:min(3, len(refused))], len(waiting))
			}
		})
	}
}

// canceledRefusing runs the Sequence, which is to end canceled having
// dispatched the events ids as refused: the waiting ones and the
// overflows.
func (e *sequenceEnv) canceledRefusing(t *testing.T, ids ...string) {
	t.Helper()
	var canceled *temporal.CanceledError
	if err := e.run(t, workflows.SequenceInput{}); !errors.As(err, &canceled) {
		t.Fatalf("the Sequence ended with %v, want canceled", err)
	}
	var refused []string
	for _, in := range e.overflows {
		refused = append(refused, in.Event.ID)
	}
	if slices.Sort(refused); !slices.Equal(refused, ids) {
		t.Errorf("dispatched as refused %v, want %v: the waiting events, and the overflows", refused, ids)
	}
}

// An event that overflows a canceled Sequence while its dispatch in
// flight winds down is dispatched as an overflow, as before the cancel.
// Before, its dispatch was started on the canceled context, which starts
// nothing: the producer had its 202, and the event was neither run nor
// found as a failure to replay.
func TestSequenceCanceledOverflowsWhileItsDispatchWindsDown(t *testing.T) {
	e := newSequenceEnv(t)
	e.pad = strings.Repeat("x", 400<<10) // 3 wait, a 4th overflows
	e.windDown = 5 * time.Minute
	e.send(0, true, "e1")
	e.send(time.Second, true, "e2", "e3", "e4")
	e.RegisterDelayedCallback(e.CancelWorkflow, 30*time.Second)
	e.send(time.Minute, true, "e5", "e6") // e1 still winds down
	e.canceledRefusing(t, "e2", "e3", "e4", "e5", "e6")
}

// An overflow dispatch started just before its Sequence is canceled is
// not canceled with it: it fails as an overflow, to be found and replayed
// as one. Before, it was canceled, maybe before its first task.
func TestSequenceCancelLeavesItsOverflowsAlone(t *testing.T) {
	e := newSequenceEnv(t)
	e.pad = strings.Repeat("x", 400<<10) // 3 wait, a 4th overflows
	e.overflowTakes = time.Minute
	e.send(0, true, "e1")
	e.send(time.Second, true, "e2", "e3", "e4")
	e.send(2*time.Second, true, "e5") // overflows
	e.RegisterDelayedCallback(e.CancelWorkflow, 10*time.Second)
	e.canceledRefusing(t, "e2", "e3", "e4", "e5")
	if e.canceledOverflows != 0 {
		t.Errorf("%d overflow dispatches canceled with their Sequence, want none", e.canceledOverflows)
	}
}

// A Sequence canceled while it awaits the dispatch an earlier run handed
// over cancels that dispatch too, as it does a dispatch of its own run
// (a child, canceled with it). Before, the handed-over dispatch went on,
// and might run its actions days later, after its key was refused.
func TestSequenceCanceledCancelsTheDispatchHandedOver(t *testing.T) {
	e := newSequenceEnv(t)
	e.RegisterActivityWithOptions(func(context.Context, workflows.AwaitDispatchInput) (workflows.DispatchClosed, error) {
		return workflows.DispatchClosed{}, errors.New("still running") // as the real one says, to be retried
	}, activity.RegisterOptions{Name: workflows.ActivityAwaitDispatch})
	var canceledRuns []string
	e.OnRequestCancelExternalWorkflow(mock.Anything, mock.Anything, mock.Anything).Return(func(_, id, runID string) error {
		canceledRuns = append(canceledRuns, id+"/"+runID)
		return nil
	})
	e.RegisterDelayedCallback(e.CancelWorkflow, time.Minute)
	in := workflows.SequenceInput{State: &workflows.SequenceState{
		Running: &workflows.RunningDispatch{WorkflowID: dispatcher.WorkflowID("e1"), RunID: "run-1", Block: true}}}
	var canceled *temporal.CanceledError
	if err := e.run(t, in); !errors.As(err, &canceled) {
		t.Fatalf("the Sequence ended with %v, want canceled", err)
	}
	if want := []string{dispatcher.WorkflowID("e1") + "/run-1"}; !slices.Equal(canceledRuns, want) {
		t.Errorf("cancel requested of %v, want %v", canceledRuns, want)
	}
}

package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

const bulkID = "bulk-replay-0123456789abcdef01234567"

// bulkFake plays the executions service for a bulk replay: pages of
// targets, replays that succeed unless refused, and replay outcomes.
type bulkFake struct {
	env     *testsuite.TestWorkflowEnvironment
	pages   [][]dispatcher.RunRef
	refuse  map[string]bool   // workflow IDs whose replay is refused
	hold    map[string]int    // workflow IDs whose start is held (paused), so many times
	outcome map[string]string // final status of a replay, by workflow ID; default completed
	// scheduled are the workflow IDs whose replays wait for their
	// startTimestamp, running for as long as the test does.
	scheduled map[string]bool
	// runningChecks is how many outcome checks see every replay still
	// running, to make the workflow wait.
	runningChecks int
	// expired is how many closed replays have left visibility (the
	// namespace's retention) by the time they are counted.
	expired int

	filters  []dispatcher.ExecutionFilter
	requests []dispatcher.ReplayRequest
	startAt  []time.Time // workflow time of each replay start
	// earlier are the requests of the runs this one continues: their
	// replays carry the bulk replay's ID too.
	earlier []dispatcher.ReplayRequest
}

// closed counts the replays started so far by how they ended, as the
// visibility count by the bulk replay's ID does.
func (f *bulkFake) closed() workflows.ReplayCounts {
	var c workflows.ReplayCounts
	for _, r := range append(slices.Clone(f.earlier), f.requests...) {
		if f.refuse[r.WorkflowID] {
			continue
		}
		if f.scheduled[r.WorkflowID] {
			c.Running++
			c.Scheduled++
			continue
		}
		switch f.outcome[r.WorkflowID] {
		case dispatcher.ExecutionFailed:
			c.Failed++
		case dispatcher.ExecutionCanceled:
			c.Canceled++
		default:
			c.Completed++
		}
	}
	return c
}

func targets(n int, prefix string) []dispatcher.RunRef {
	out := make([]dispatcher.RunRef, n)
	for i := range out {
		out[i] = dispatcher.RunRef{WorkflowID: fmt.Sprintf("dispatch-%s%d", prefix, i), RunID: fmt.Sprintf("run-%s%d", prefix, i)}
	}
	return out
}

// continuedAs returns how the bulk replay env ran continued as new, and
// the input it handed the next run; when is when it should have.
func continuedAs(t *testing.T, env *testsuite.TestWorkflowEnvironment, when string) (*workflow.ContinueAsNewError, workflows.BulkReplayInput) {
	t.Helper()
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("error = %v, want ContinueAsNew %s", err, when)
	}
	var next workflows.BulkReplayInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	return can, next
}

func newBulkEnv(t *testing.T, f *bulkFake) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: bulkID})
	register(env, nil, nil, nil)
	f.env = env
	total := 0
	for _, p := range f.pages {
		total += len(p)
	}
	env.OnActivity(workflows.ActivityCountExecutions, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.CountExecutionsInput) (int64, error) {
			record(func() { f.filters = append(f.filters, in.Filter) })
			return int64(total), nil
		})
	env.OnActivity(workflows.ActivityListExecutions, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.ListExecutionsInput) (workflows.ListExecutionsResult, error) {
			record(func() { f.filters = append(f.filters, in.Filter) })
			i := 0
			if len(in.PageToken) > 0 {
				fmt.Sscan(string(in.PageToken), &i)
			}
			res := workflows.ListExecutionsResult{Runs: f.pages[i]}
			if i+1 < len(f.pages) {
				res.NextPageToken = []byte(fmt.Sprint(i + 1))
			}
			return res, nil
		})
	env.OnActivity(workflows.ActivityReplayExecution, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.ReplayExecutionInput) (dispatcher.ReplayResult, error) {
			r := in.Request
			record(func() {
				f.requests = append(f.requests, r)
				f.startAt = append(f.startAt, env.Now())
			})
			held := false
			record(func() {
				if held = f.hold[r.WorkflowID] > 0; held {
					f.hold[r.WorkflowID]--
				}
			})
			if held {
				return dispatcher.ReplayResult{}, temporal.NewNonRetryableApplicationError("paused", workflows.FailureReplayHeld, nil)
			}
			if f.refuse[r.WorkflowID] {
				return dispatcher.ReplayResult{}, temporal.NewNonRetryableApplicationError("nothing failed", workflows.FailureReplayRefused, nil)
			}
			return dispatcher.ReplayResult{WorkflowID: r.WorkflowID, RunID: "replay-of-" + r.RunID, ReplayOf: r.RunID, ReplayID: "r-" + r.RunID, BulkReplayID: r.BulkReplayID}, nil
		})
	env.OnActivity(workflows.ActivityCountReplays, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.CountReplaysInput) (workflows.ReplayCounts, error) {
			var c workflows.ReplayCounts
			record(func() {
				if in.BulkReplayID != bulkID {
					panic("counted the replays of another bulk replay: " + in.BulkReplayID)
				}
				if f.runningChecks > 0 {
					f.runningChecks--
					all := f.closed()
					c.Running = all.Completed + all.Failed + all.Canceled
					return
				}
				c = f.closed()
				c.Completed -= min(f.expired, c.Completed)
			})
			return c, nil
		})
	env.OnActivity(workflows.ActivityReplayOutcomes, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.ReplayOutcomesInput) (workflows.ReplayOutcomesResult, error) {
			var res workflows.ReplayOutcomesResult
			record(func() {
				running := f.runningChecks > 0
				f.runningChecks--
				for _, r := range in.Runs {
					status := dispatcher.ExecutionCompleted
					if s, ok := f.outcome[r.WorkflowID]; ok {
						status = s
					}
					if running {
						status = dispatcher.ExecutionRunning
					}
					res.Statuses = append(res.Statuses, status)
				}
			})
			return res, nil
		})
	return env
}

func bulkProgress(t *testing.T, env *testsuite.TestWorkflowEnvironment) dispatcher.BulkReplayProgress {
	t.Helper()
	v, err := env.QueryWorkflow(workflows.QueryProgress)
	if err != nil {
		t.Fatalf("progress query: %v", err)
	}
	var p dispatcher.BulkReplayProgress
	if err := v.Get(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBulkReplayThrottlesAndCountsOutcomes(t *testing.T) {
	all := targets(5, "e")
	f := &bulkFake{
		pages:         [][]dispatcher.RunRef{all[:3], all[3:]},
		refuse:        map[string]bool{all[2].WorkflowID: true},
		outcome:       map[string]string{all[4].WorkflowID: dispatcher.ExecutionFailed},
		runningChecks: 2,
	}
	env := newBulkEnv(t, f)
	var midway dispatcher.BulkReplayProgress
	env.RegisterDelayedCallback(func() { midway = bulkProgress(t, env) }, 2500*time.Millisecond)
	env.ExecuteWorkflow(workflows.WorkflowBulkReplay, workflows.BulkReplayInput{
		Filter: dispatcher.ExecutionFilter{Status: dispatcher.ExecutionFailed, DispatcherID: "d1"},
		Config: dispatcher.ReplayConfigOriginal, Rate: 1, Actor: "ann", PageSize: 3,
	})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed %v, error %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var got dispatcher.BulkReplayProgress
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}

	// One replay per second: the throttle waits on timers, which the test
	// environment skips.
	if len(f.startAt) != 5 {
		t.Fatalf("%d replays started, want 5", len(f.startAt))
	}
	for i := 1; i < len(f.startAt); i++ {
		if gap := f.startAt[i].Sub(f.startAt[i-1]); gap < time.Second {
			t.Errorf("replay %d started %v after the one before; the rate is 1/s", i, gap)
		}
	}
	if midway.Processed != 3 || midway.Matched != 5 || midway.Remaining != 2 {
		t.Errorf("progress at 2.5 s = %+v, want 3 of 5 processed", midway)
	}
	want := dispatcher.BulkReplayProgress{Matched: 5, Processed: 5, Replayed: 4, Skipped: 1, Succeeded: 3, Failed: 1}
	if got.Matched != want.Matched || got.Processed != want.Processed || got.Replayed != want.Replayed || got.Skipped != want.Skipped ||
		got.Succeeded != want.Succeeded || got.Failed != want.Failed || got.Pending != 0 || got.Remaining != 0 {
		t.Errorf("progress = %+v, want %+v", got, want)
	}
	if len(got.Errors) != 2 || !strings.Contains(got.Errors[0], "skipped: nothing failed") || !strings.Contains(got.Errors[1], "replays failed or canceled: 1:") || !strings.Contains(got.Errors[1], "--bulk-replay-id "+bulkID) {
		t.Errorf("errors = %q", got.Errors)
	}

	// Every replay carries the bulk replay's ID and names the run it
	// replays.
	for i, r := range f.requests {
		if r.BulkReplayID != bulkID || r.RunID != all[i].RunID || r.Actor != "ann" || r.Config != "original" {
			t.Errorf("request %d = %+v", i, r)
		}
	}
	// The filter is bounded to runs started before the bulk replay, so
	// its own replays never match.
	for _, fl := range f.filters {
		if !fl.To.Equal(t0) || fl.DispatcherID != "d1" || fl.Status != dispatcher.ExecutionFailed {
			t.Errorf("filter %+v: want To = the start (%v) and the request's fields", fl, t0)
		}
	}
}

func TestBulkReplayCancel(t *testing.T) {
	f := &bulkFake{pages: [][]dispatcher.RunRef{targets(10, "c")}}
	env := newBulkEnv(t, f)
	env.RegisterDelayedCallback(env.CancelWorkflow, 3500*time.Millisecond)
	env.ExecuteWorkflow(workflows.WorkflowBulkReplay, workflows.BulkReplayInput{Rate: 1})
	err := env.GetWorkflowError()
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("error = %v, want canceled", err)
	}
	var p dispatcher.BulkReplayProgress
	if err := canceled.Details(&p); err != nil {
		t.Fatal(err)
	}
	// Replays at 0, 1, 2 and 3 s; none after the cancellation.
	if len(f.requests) != 4 || p.Processed != 4 || p.Replayed != 4 || p.Remaining != 6 {
		t.Fatalf("%d replays started, progress %+v; want 4 before the cancellation at 3.5 s", len(f.requests), p)
	}
}

// Replays that closed and left visibility before the bulk replay counted
// them (a retention shorter than the replays took) cannot keep it waiting
// for ever: it ends once none runs. Before, it waited for closed counts
// that could never reach the replays started.
func TestBulkReplayEndsWhenReplaysLeftVisibility(t *testing.T) {
	f := &bulkFake{pages: [][]dispatcher.RunRef{targets(3, "e")}, runningChecks: 2, expired: 2}
	env := newBulkEnv(t, f)
	env.ExecuteWorkflow(workflows.WorkflowBulkReplay, workflows.BulkReplayInput{Rate: 50})
	if !env.IsWorkflowCompleted() {
		t.Fatal("the bulk replay is still waiting")
	}
	var p dispatcher.BulkReplayProgress
	if err := env.GetWorkflowResult(&p); err != nil {
		t.Fatal(err)
	}
	if p.Replayed != 3 || p.Succeeded != 1 || p.Pending != 0 {
		t.Fatalf("progress %+v; want 3 replayed, 1 seen succeeded, none pending", p)
	}
}

// A bulk replay ends once its replays still running only wait for their
// startTimestamp, and says how many. Before, it waited for them: a year,
// for reminders due in a year, holding one of its tenant's bulk replays.
func TestBulkReplayEndsWithReplaysScheduled(t *testing.T) {
	all := targets(3, "s")
	f := &bulkFake{pages: [][]dispatcher.RunRef{all}, scheduled: map[string]bool{all[1].WorkflowID: true}}
	env := newBulkEnv(t, f)
	env.SetTestTimeout(30 * time.Second) // waiting, it would wait for ever
	env.ExecuteWorkflow(workflows.WorkflowBulkReplay, workflows.BulkReplayInput{Rate: 50})
	if !env.IsWorkflowCompleted() {
		t.Fatal("the bulk replay is still waiting for the scheduled replay")
	}
	var p dispatcher.BulkReplayProgress
	if err := env.GetWorkflowResult(&p); err != nil {
		t.Fatal(err)
	}
	if p.Replayed != 3 || p.Succeeded != 2 || p.Pending != 1 || p.Scheduled != 1 {
		t.Fatalf("progress %+v; want 3 replayed, 2 succeeded, 1 pending and scheduled", p)
	}
}

func TestBulkReplayContinuesAsNew(t *testing.T) {
	all := targets(3, "n")
	f := &bulkFake{pages: [][]dispatcher.RunRef{all}}
	env := newBulkEnv(t, f)
	env.ExecuteWorkflow(workflows.WorkflowBulkReplay, workflows.BulkReplayInput{Rate: 50, ReplaysPerRun: 2, Actor: "ann"})
	can, next := continuedAs(t, env, "after ReplaysPerRun replays")
	st := next.State
	if can.WorkflowType.Name != workflows.WorkflowBulkReplay || next.Actor != "ann" || st == nil {
		t.Fatalf("continued as %s with %+v", can.WorkflowType.Name, next)
	}
	if st.Progress.Processed != 2 || st.Progress.Matched != 3 || len(st.Targets) != 1 || st.Targets[0] != all[2] ||
		!st.Exhausted || st.Version != 6 || !st.Snapshot.Equal(t0) || st.Next.IsZero() {
		t.Fatalf("carried state = %+v", st)
	}

	// The next run picks up where it stopped: one replay, no new count.
	f2 := &bulkFake{pages: [][]dispatcher.RunRef{nil}, earlier: f.requests}
	env2 := newBulkEnv(t, f2)
	env2.ExecuteWorkflow(workflows.WorkflowBulkReplay, next)
	var p dispatcher.BulkReplayProgress
	if err := env2.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if err := env2.GetWorkflowResult(&p); err != nil {
		t.Fatal(err)
	}
	if len(f2.requests) != 1 || f2.requests[0].WorkflowID != all[2].WorkflowID || p.Processed != 3 || p.Replayed != 3 || p.Succeeded != 3 {
		t.Fatalf("second run: requests %+v, progress %+v", f2.requests, p)
	}
	if len(f2.filters) != 0 {
		t.Errorf("the second run listed or counted again: %+v", f2.filters)
	}
}

// TestBulkReplayContinuesAsNewOverEmptyPages: pages of runs a replay has
// superseded start no replay, so ReplaysPerRun never ends the run; it
// continues as new when Temporal suggests it, where it stopped. Before
// (bulkReplayV3), it listed page after page in one history until Temporal
// ended it at its history limit.
func TestBulkReplayContinuesAsNewOverEmptyPages(t *testing.T) {
	f := &bulkFake{pages: [][]dispatcher.RunRef{targets(1, "a"), nil, targets(1, "b")}}
	env := newBulkEnv(t, f)
	env.SetContinueAsNewSuggested(true)
	env.ExecuteWorkflow(workflows.WorkflowBulkReplay, workflows.BulkReplayInput{Rate: 50, ReplaysPerRun: 100})
	_, next := continuedAs(t, env, "after the first page")
	if st := next.State; st == nil || string(st.PageToken) != "1" || st.Exhausted || len(st.Targets) != 0 || st.Progress.Processed != 1 {
		t.Fatalf("carried state = %+v", st)
	}
	if len(f.requests) != 1 {
		t.Errorf("replays %+v, want the first page's", f.requests)
	}
}

// TestBulkReplayPauses: a pause signal stops the replays until a resume;
// the progress says it is paused; a pause carries over ContinueAsNew and a
// canceled paused bulk replay ends.
func TestBulkReplayPauses(t *testing.T) {
	f := &bulkFake{pages: [][]dispatcher.RunRef{targets(6, "p")}}
	env := newBulkEnv(t, f)
	var paused dispatcher.BulkReplayProgress
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.SignalPause, true) }, 2500*time.Millisecond)
	env.RegisterDelayedCallback(func() { paused = bulkProgress(t, env) }, time.Hour)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.SignalPause, false) }, 2*time.Hour)
	env.ExecuteWorkflow(workflows.WorkflowBulkReplay, workflows.BulkReplayInput{Rate: 1})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if !paused.Paused || paused.Processed != 3 || paused.Remaining != 3 {
		t.Errorf("progress while paused = %+v, want paused after 3 of 6", paused)
	}
	if len(f.startAt) != 6 {
		t.Fatalf("%d replays started, want 6", len(f.startAt))
	}
	for i, at := range f.startAt {
		if d := at.Sub(t0); i >= 3 && d < 2*time.Hour || i < 3 && d > 2500*time.Millisecond {
			t.Errorf("replay %d started at %v: none may start between the pause (2.5 s) and the resume (2 h)", i, d)
		}
	}
	var p dispatcher.BulkReplayProgress
	if err := env.GetWorkflowResult(&p); err != nil {
		t.Fatal(err)
	}
	if p.Paused || p.Processed != 6 {
		t.Errorf("final progress = %+v", p)
	}

	// Paused when it continued as new: the next run waits, and a cancel
	// ends it.
	f2 := &bulkFake{pages: [][]dispatcher.RunRef{nil}}
	env2 := newBulkEnv(t, f2)
	env2.RegisterDelayedCallback(env2.CancelWorkflow, time.Hour)
	env2.ExecuteWorkflow(workflows.WorkflowBulkReplay, workflows.BulkReplayInput{Rate: 1, State: &workflows.BulkReplayState{
		Snapshot: t0, Version: 3, Paused: true, Targets: targets(2, "q"), Exhausted: true,
		Progress: dispatcher.BulkReplayProgress{Matched: 2}}})
	var canceled *temporal.CanceledError
	if err := env2.GetWorkflowError(); !errors.As(err, &canceled) {
		t.Fatalf("error = %v, want canceled", err)
	}
	if len(f2.requests) != 0 {
		t.Errorf("a paused bulk replay started %d replays", len(f2.requests))
	}
}

// A pause signal whose payload does not decode (garbage sent from the
// CLI) is dropped, and the replays go on at their rate. Before, the bulk
// replay waited in the pause channel's Receive for the next valid pause
// signal: no replay started until then.
func TestBulkReplayDropsGarbageSignals(t *testing.T) {
	f := &bulkFake{pages: [][]dispatcher.RunRef{targets(4, "g")}}
	env := newBulkEnv(t, f)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.SignalPause, "yes") }, 1500*time.Millisecond)
	env.ExecuteWorkflow(workflows.WorkflowBulkReplay, workflows.BulkReplayInput{Rate: 1})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(f.startAt) != 4 {
		t.Fatalf("%d replays started, want 4", len(f.startAt))
	}
	if d := f.startAt[3].Sub(t0); d > 10*time.Second {
		t.Errorf("the last replay started at %v: the garbage signal held the bulk replay up", d)
	}
}

// A start its worker took up once the bulk replay was paused (a crash,
// or no worker for a while) is held, not made: it starts again later, and
// counts once. Before, it started a minute after the pause.
func TestBulkReplayStartsHeldOnesAgain(t *testing.T) {
	f := &bulkFake{pages: [][]dispatcher.RunRef{targets(3, "h")}, hold: map[string]int{"dispatch-h1": 2}}
	env := newBulkEnv(t, f)
	env.ExecuteWorkflow(workflows.WorkflowBulkReplay, workflows.BulkReplayInput{Rate: 10})
	var p dispatcher.BulkReplayProgress
	if err := env.GetWorkflowResult(&p); err != nil {
		t.Fatal(err)
	}
	if p.Processed != 3 || p.Replayed != 3 || p.Failed != 0 || p.Skipped != 0 || len(p.Errors) != 0 {
		t.Errorf("progress = %+v, want each of 3 replayed once", p)
	}
	var h1 []time.Time
	for i, r := range f.requests {
		if r.WorkflowID == "dispatch-h1" {
			h1 = append(h1, f.startAt[i])
		}
	}
	if len(h1) != 3 || h1[2].Sub(h1[0]) < 2*time.Second {
		t.Errorf("dispatch-h1 asked at %v, want 3 times, a second apart at least", h1)
	}
}

// TestBulkReplayBacksOffWhileHeld: a start held again and again (the
// audit trail says paused, and the pause signal never came) is asked for
// after waits that double up to a minute. Before, once a second: a held
// bulk replay grew its history by some 3 events a second until Temporal's
// limit.
func TestBulkReplayBacksOffWhileHeld(t *testing.T) {
	f := &bulkFake{pages: [][]dispatcher.RunRef{targets(1, "h")}, hold: map[string]int{"dispatch-h0": 9}}
	env := newBulkEnv(t, f)
	env.ExecuteWorkflow(workflows.WorkflowBulkReplay, workflows.BulkReplayInput{Rate: 10})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var gaps []time.Duration
	for i := 1; i < len(f.startAt); i++ {
		gaps = append(gaps, f.startAt[i].Sub(f.startAt[i-1]).Round(time.Second))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, time.Minute, time.Minute, time.Minute}
	if len(gaps) != len(want) {
		t.Fatalf("asked %d times, %v apart; want 10, %v apart", len(f.startAt), gaps, want)
	}
	for i := range want {
		if gaps[i] < want[i] {
			t.Errorf("asked %v apart, want at least %v", gaps, want)
			break
		}
	}
}

// TestBulkReplayHeldContinuesAsNew: a bulk replay whose replays the API
// holds (its pause signal lost) continues as new when Temporal suggests
// it, carrying the held run. Before (bulkReplayV4), it waited a minute at
// a time in one history until Temporal ended it at its history limit.
func TestBulkReplayHeldContinuesAsNew(t *testing.T) {
	f := &bulkFake{pages: [][]dispatcher.RunRef{targets(2, "h")}, hold: map[string]int{"dispatch-h0": 1000}}
	env := newBulkEnv(t, f)
	env.RegisterDelayedCallback(func() { env.SetContinueAsNewSuggested(true) }, 10*time.Minute)
	env.ExecuteWorkflow(workflows.WorkflowBulkReplay, workflows.BulkReplayInput{Rate: 10})
	_, next := continuedAs(t, env, "while held")
	if st := next.State; st == nil || len(st.Targets) != 1 || st.Targets[0].WorkflowID != "dispatch-h0" || st.Progress.Processed != 1 || st.Version != 6 {
		t.Fatalf("carried state = %+v, want the held run still to replay, the other replayed", st)
	}
	if n := len(f.startAt); n < 10 || n > 20 {
		t.Errorf("asked %d times in the first 10 minutes, want a dozen or so (a minute apart at most)", n)
	}
}

// TestBulkReplayRefusesANewerVersion: a run continued as new by a newer
// worker never runs on an older one: its workflow task fails, which
// Temporal retries until a worker that knows the version takes it.
func TestBulkReplayRefusesANewerVersion(t *testing.T) {
	f := &bulkFake{pages: [][]dispatcher.RunRef{nil}}
	env := newBulkEnv(t, f)
	env.ExecuteWorkflow(workflows.WorkflowBulkReplay, workflows.BulkReplayInput{Rate: 1, State: &workflows.BulkReplayState{
		Snapshot: t0, Version: 1000, Targets: targets(2, "n"), Exhausted: true,
		Progress: dispatcher.BulkReplayProgress{Matched: 2}}})
	var panicked *temporal.PanicError
	if err := env.GetWorkflowError(); !errors.As(err, &panicked) || !strings.Contains(err.Error(), "upgrade every worker") {
		t.Fatalf("error %v, want the workflow task to fail for the version", err)
	}
	if len(f.requests) != 0 {
		t.Errorf("started %d replays with older code", len(f.requests))
	}
}

// TestBulkReplayBursts: at 10 per second the replays start in bursts of
// at most a second's worth, never ahead of the rate, and without a timer
// per replay.
func TestBulkReplayBursts(t *testing.T) {
	f := &bulkFake{pages: [][]dispatcher.RunRef{targets(30, "b")}}
	env := newBulkEnv(t, f)
	env.ExecuteWorkflow(workflows.WorkflowBulkReplay, workflows.BulkReplayInput{Rate: 10})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(f.startAt) != 30 {
		t.Fatalf("%d replays started, want 30", len(f.startAt))
	}
	const interval = 100 * time.Millisecond
	for i, at := range f.startAt {
		// A bucket of 10 tokens: replay i may start once i-9 intervals passed.
		if earliest := t0.Add(time.Duration(i-9) * interval); at.Before(earliest) {
			t.Errorf("replay %d started at %v, before %v: faster than 10/s", i, at.Sub(t0), earliest.Sub(t0))
		}
	}
	if last := f.startAt[29].Sub(t0); last > 2100*time.Millisecond {
		t.Errorf("the last replay started after %v; at 10/s with a burst of 10 it is due at 2 s", last)
	}
}

package workflows

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher"
)

// Bulk replay defaults and limits.
const (
	defaultReplayPage    = 100 // runs listed per page
	defaultReplaysPerRun = 500 // replays per workflow run before ContinueAsNew
	maxProgressErrors    = 20  // reasons kept in the progress's Errors
)

// BulkReplayInput is the input of the BulkReplay workflow.
type BulkReplayInput struct {
	// Filter selects the runs to replay. Only closed runs qualify, so the
	// set cannot change under the bulk replay's feet; the workflow also
	// bounds it to runs started before the bulk replay (Snapshot), which
	// keeps out the replays it starts itself.
	Filter  dispatcher.ExecutionFilter
	Actions []string // see dispatcher.ReplayRequest
	Config  string
	Rate    float64 // replays per second; 0 means dispatcher.DefaultReplayRate
	Actor   string
	// PageSize and ReplaysPerRun tune paging and ContinueAsNew; 0 means
	// the defaults.
	PageSize      int
	ReplaysPerRun int
	// State carries the progress over ContinueAsNew; nil on the first run.
	State *BulkReplayState
}

// BulkReplayState is where a bulk replay is, carried over ContinueAsNew.
type BulkReplayState struct {
	Snapshot time.Time // runs started at or after it are never matched
	// Progress holds the counts the bulk replay keeps itself: matched,
	// processed, replayed, skipped, replays that could not start (in
	// Failed) and the latest reasons; CurrentProgress adds the replays'
	// outcomes.
	Progress  dispatcher.BulkReplayProgress
	Targets   []dispatcher.RunRef // the rest of the current page
	PageToken []byte              // the next page
	Exhausted bool                // no page after Targets
	// Version is the version of the bulk replay's code (versions.go),
	// decided by its first run and kept by the runs it continues as.
	Version workflow.Version
	// Closed counts the replays it started that have closed, by how, as
	// visibility last said (from bulkReplayV1).
	Closed ReplayCounts
	// Pending lists the replays started that have not closed yet (before
	// bulkReplayV1, which counts them instead).
	Pending []dispatcher.RunRef
	// Next is when the throttle lets the next replay start (from
	// bulkReplayV2).
	Next time.Time
	// Paused is true while SignalPause holds it (from bulkReplayV3).
	Paused bool
}

// ReplayCounts counts the replays of a bulk replay by state, as
// visibility says.
type ReplayCounts struct {
	// Completed counts those that completed, and those of named actions
	// that failed only with the failures they carry of others
	// (DispatchInput.Carried): they made what they were asked.
	Completed int
	Failed    int // failed, terminated or timed out; or scheduled beside (named) actions failed for good
	Canceled  int
	Running   int // read from bulkReplayV2 on; those counted Failed left out
	// Scheduled counts, of Running, those whose actions left only wait for
	// their startTimestamp, none failed for good (those are Failed):
	// waited for no more from bulkReplayV6 on.
	Scheduled int
}

func (c ReplayCounts) total() int { return c.Completed + c.Failed + c.Canceled }

// CurrentProgress is the progress s stands for.
func (s *BulkReplayState) CurrentProgress() dispatcher.BulkReplayProgress {
	p := s.Progress
	switch {
	case s.Version < bulkReplayV1:
		p.Pending = len(s.Pending)
	case s.Version < bulkReplayV2:
		p.Succeeded = s.Closed.Completed
		p.Failed += s.Closed.Failed + s.Closed.Canceled
		p.Pending = max(p.Replayed-s.Closed.total(), 0)
	default:
		p.StartFailed = p.Failed
		p = WithClosed(p, s.Closed)
	}
	p.Remaining = max(p.Matched-p.Processed, 0)
	p.Paused = s.Paused
	return p
}

// WithClosed returns p with what became of its replays as c, counted by
// visibility, says: the progress query counts them only as often as the
// bulk replay does (each page of targets), the API afresh.
func WithClosed(p dispatcher.BulkReplayProgress, c ReplayCounts) dispatcher.BulkReplayProgress {
	p.Succeeded = c.Completed
	p.Failed = p.StartFailed + c.Failed + c.Canceled
	p.Pending = min(c.Running, max(p.Replayed-c.total(), 0))
	p.Scheduled = min(c.Scheduled, p.Pending)
	return p
}

// ReplayTaskQueue is the task queue of the activities of the bulk
// replays that run on queue: their own, so that thousands of replay
// starts never wait in front of the dispatches.
func ReplayTaskQueue(queue string) string { return queue + "-replays" }

// The activities of a bulk replay, which package dispatch implements on
// the Temporal client: one input struct each.

// CountExecutionsInput is the input of CountExecutions.
type CountExecutionsInput struct {
	Filter dispatcher.ExecutionFilter
}

// ListExecutionsInput is the input of ListExecutions.
type ListExecutionsInput struct {
	Filter    dispatcher.ExecutionFilter
	PageSize  int
	PageToken []byte
	// Actions are those the bulk replay names: a replay's run that made
	// them all is passed over, as one a replay superseded.
	Actions []string `json:",omitempty"`
}

// ListExecutionsResult is one page of runs.
type ListExecutionsResult struct {
	Runs          []dispatcher.RunRef
	NextPageToken []byte // empty after the last page
	// Superseded counts the runs of the pages read that a replay has
	// superseded already, left out of Runs.
	Superseded int
}

// ReplayExecutionInput is the input of ReplayExecution.
type ReplayExecutionInput struct {
	Request dispatcher.ReplayRequest
}

// CountReplaysInput is the input of CountReplays.
type CountReplaysInput struct {
	BulkReplayID string
	// Actions are those the bulk replay names: a replay that made them
	// all but carries the failures of others is counted Completed.
	Actions []string `json:",omitempty"`
}

// ReplayOutcomesInput is the input of ReplayOutcomes (before
// bulkReplayV1).
type ReplayOutcomesInput struct {
	Runs []dispatcher.RunRef
}

// ReplayOutcomesResult holds the execution status of each run, in order.
type ReplayOutcomesResult struct {
	Statuses []string
}

// replayStartOptions: starting a replay reads one history and writes one
// audit row. The start heartbeats, so a worker that dies mid-start is
// noticed within the heartbeat timeout, the dispatch actions' (3 s left a
// heartbeat every 2 s, throttled to 2.4 s, 0.6 s to reach a loaded
// server); the retry finds the replay if it started.
var replayStartOptions = workflow.ActivityOptions{
	StartToCloseTimeout: time.Minute,
	HeartbeatTimeout:    heartbeatTimeout,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        time.Minute,
		MaximumAttempts:        20,
		NonRetryableErrorTypes: []string{FailureReplayRefused},
	},
}

// listOptions: visibility calls; Temporal being away for a while only
// delays the bulk replay.
var listOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
	},
}

// BulkReplay replays every run its filter matches, at most Rate per
// second (in bursts of up to a second's worth), each through the
// ReplayExecution activity, which replays a run at most once however often
// it is retried. It then waits for the replays to close, counting how
// many succeeded. Canceling it stops further replays; those started run
// on. SignalPause pauses and resumes it. Its progress is the
// QueryProgress query.
func BulkReplay(ctx workflow.Context, in BulkReplayInput) (dispatcher.BulkReplayProgress, error) {
	info := workflow.GetInfo(ctx)
	b := &bulkReplay{in: in, id: info.WorkflowExecution.ID, queue: info.TaskQueueName}
	b.defaults()
	if b.st == nil {
		// The first run decides; the runs it continues as keep its
		// version in the state, without a marker of their own.
		b.version = workflow.GetVersion(ctx, changeBulkReplay, workflow.DefaultVersion, bulkReplayLatest)
	} else {
		b.version = b.st.Version
		if b.version > bulkReplayLatest {
			// A newer worker continued it as new: fail the workflow task,
			// which Temporal retries until a worker that knows the version
			// takes it, rather than run it with older code that a newer
			// worker's replay of this history would not match.
			panic(fmt.Sprintf("bulk replay version %d is newer than this worker's %d: upgrade every worker", b.version, bulkReplayLatest))
		}
		if b.version >= bulkReplayV2 {
			b.next = b.st.Next
		}
	}
	if b.version >= bulkReplayV3 {
		b.pause = workflow.GetSignalChannel(ctx, SignalPause)
	}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (dispatcher.BulkReplayProgress, error) {
		return b.progress(), nil
	}); err != nil {
		return dispatcher.BulkReplayProgress{}, err
	}
	lctx := workflow.WithActivityOptions(ctx, b.activityOptions(listOptions))
	err := b.run(ctx, lctx)
	var can *workflow.ContinueAsNewError
	switch {
	case errors.As(err, &can):
		return b.progress(), err
	case errors.Is(ctx.Err(), workflow.ErrCanceled):
		workflow.GetLogger(ctx).Info("Bulk replay canceled", "Processed", b.progress().Processed)
		return b.progress(), temporal.NewCanceledError(b.progress())
	}
	return b.progress(), err
}

// run replays page after page, then waits for the replays to close.
func (b *bulkReplay) run(ctx, lctx workflow.Context) error {
	if b.st == nil {
		b.st = &BulkReplayState{Snapshot: workflow.Now(ctx), Version: b.version}
		var n int64
		if err := workflow.ExecuteActivity(lctx, ActivityCountExecutions, CountExecutionsInput{Filter: b.filter()}).Get(ctx, &n); err != nil {
			return err
		}
		b.st.Progress.Matched = int(n)
		workflow.GetLogger(ctx).Info("Bulk replay matched", "Count", n, "Actor", b.in.Actor)
	}
	started, pages, holds := 0, 0, 0
	for {
		if len(b.st.Targets) == 0 {
			if b.st.Exhausted {
				break
			}
			if b.version >= bulkReplayV4 && pages > 0 && workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
				return b.continueAsNew(ctx)
			}
			if err := b.nextPage(ctx, lctx); err != nil {
				return err
			}
			pages++
			continue
		}
		if started >= b.in.ReplaysPerRun {
			return b.continueAsNew(ctx)
		}
		n, err := b.throttle(ctx)
		if err != nil {
			return err
		}
		n = min(n, len(b.st.Targets), b.in.ReplaysPerRun-started)
		held := b.replay(ctx, b.st.Targets[:n])
		b.st.Targets = append(held, b.st.Targets[n:]...)
		started += n - len(held)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(held) == 0 {
			holds = 0
			continue
		}
		// The pause is in its signal, which the next throttle applies; a
		// wait, in case it never comes (the API recorded a pause whose
		// signal failed): a second, doubling to a minute, so that the
		// history grows slowly while the trail says paused and the run
		// does not. Only a timer's duration: a replay compares none.
		if b.version >= bulkReplayV5 && workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return b.continueAsNew(ctx) // held for days, it would outgrow its history
		}
		if err := b.sleep(ctx, min(time.Second<<min(holds, 6), time.Minute)); err != nil {
			return err
		}
		holds++
	}
	b.st.Progress.Matched = b.st.Progress.Processed // the true count, whatever Count said
	return b.waitForReplays(ctx, lctx)
}

// continueAsNew hands the state to a fresh run, which keeps the history
// short however many runs match.
func (b *bulkReplay) continueAsNew(ctx workflow.Context) error {
	b.receivePauses(ctx) // the next run would not see them
	in := b.in
	in.State = b.st
	in.State.Next = b.next
	return workflow.NewContinueAsNewError(ctx, WorkflowBulkReplay, in)
}

// bulkReplay is the state of one BulkReplay run.
type bulkReplay struct {
	in      BulkReplayInput
	id      string
	queue   string           // the workflow's task queue
	version workflow.Version // of this bulk replay's code, see versions.go
	st      *BulkReplayState
	next    time.Time // the throttle: when the next replay may start
	// pause receives SignalPause; nil before bulkReplayV3.
	pause workflow.ReceiveChannel
}

// activityOptions returns o for this bulk replay's activities: from
// bulkReplayV1 on a task queue of their own.
func (b *bulkReplay) activityOptions(o workflow.ActivityOptions) workflow.ActivityOptions {
	if b.version >= bulkReplayV1 {
		o.TaskQueue = ReplayTaskQueue(b.queue)
	}
	return o
}

func (b *bulkReplay) defaults() {
	if b.in.Rate <= 0 {
		b.in.Rate = dispatcher.DefaultReplayRate
	}
	if b.in.PageSize <= 0 {
		b.in.PageSize = defaultReplayPage
	}
	if b.in.ReplaysPerRun <= 0 {
		b.in.ReplaysPerRun = defaultReplaysPerRun
	}
	b.st, b.in.State = b.in.State, nil
}

// filter is the input's filter bounded to runs started before the
// snapshot.
func (b *bulkReplay) filter() dispatcher.ExecutionFilter {
	f := b.in.Filter
	if f.To.IsZero() || f.To.After(b.st.Snapshot) {
		f.To = b.st.Snapshot
	}
	return f
}

func (b *bulkReplay) progress() dispatcher.BulkReplayProgress {
	if b.st == nil {
		return dispatcher.BulkReplayProgress{}
	}
	return b.st.CurrentProgress()
}

// nextPage lists the next page of targets and, while at it, checks the
// replays started so far.
func (b *bulkReplay) nextPage(ctx, lctx workflow.Context) error {
	var page ListExecutionsResult
	err := workflow.ExecuteActivity(lctx, ActivityListExecutions, ListExecutionsInput{
		Filter: b.filter(), PageSize: b.in.PageSize, PageToken: b.st.PageToken, Actions: b.in.Actions,
	}).Get(ctx, &page)
	if err != nil {
		return err
	}
	b.st.Targets, b.st.PageToken = page.Runs, page.NextPageToken
	b.st.Exhausted = len(page.NextPageToken) == 0
	// Runs replayed already are not matched, as the dry run counts them
	// apart: before, they stayed in Matched until the last page, and a
	// paused or canceled bulk replay said that many more remained.
	p := &b.st.Progress
	p.Matched = max(p.Matched-page.Superseded, p.Processed+len(page.Runs))
	if b.version < bulkReplayV1 {
		if len(b.st.Pending) > 0 {
			return b.checkReplaysV0(ctx, lctx)
		}
		return nil
	}
	if b.st.Progress.Replayed > 0 {
		return b.countReplays(ctx, lctx)
	}
	return nil
}

// receivePauses applies the pause signals received so far, the last one
// winning.
func (b *bulkReplay) receivePauses(ctx workflow.Context) {
	if b.pause == nil {
		return
	}
	var paused bool
	for b.pause.ReceiveAsync(&paused) {
		b.setPaused(ctx, paused)
	}
}

// awaitResume applies the pause signals received and, while paused,
// waits for one that resumes it. A paused bulk replay holds no timer and
// adds nothing to its history until then; canceled, it ends.
func (b *bulkReplay) awaitResume(ctx workflow.Context) error {
	b.receivePauses(ctx)
	for b.st.Paused {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(b.pause, func(c workflow.ReceiveChannel, _ bool) {
			var paused bool
			if receive(ctx, c, &paused) {
				b.setPaused(ctx, paused)
			}
		})
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		sel.Select(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (b *bulkReplay) setPaused(ctx workflow.Context, paused bool) {
	if b.st.Paused != paused {
		msg := "Bulk replay paused" // before, a resume said so too
		if !paused {
			msg = "Bulk replay resumed"
		}
		workflow.GetLogger(ctx).Info(msg, "Paused", paused, "Processed", b.st.Progress.Processed)
	}
	b.st.Paused = paused
}

// throttle waits until at least one replay may start and returns how
// many may: a token bucket that fills at Rate per second and holds one
// second's worth. Starting the allowed replays together, rather than one
// per timer, keeps the rate when timers fire late (Temporal's fire up to
// a second late) and costs one timer per burst instead of per replay.
// replay spends the tokens.
func (b *bulkReplay) throttle(ctx workflow.Context) (int, error) {
	interval := time.Duration(float64(time.Second) / b.in.Rate)
	burst := max(1, int(math.Ceil(b.in.Rate)))
	for {
		if err := b.awaitResume(ctx); err != nil {
			return 0, err
		}
		now := workflow.Now(ctx)
		if floor := now.Add(-time.Duration(burst-1) * interval); b.next.Before(floor) {
			b.next = floor
		}
		if !b.next.After(now) {
			return int(now.Sub(b.next)/interval) + 1, nil
		}
		if err := b.sleep(ctx, b.next.Sub(now)); err != nil {
			return 0, err
		}
	}
}

// sleep waits for d to pass or, from bulkReplayV3, for a pause signal,
// whichever comes first: at a slow rate a pause holds at once, not after
// the wait.
func (b *bulkReplay) sleep(ctx workflow.Context, d time.Duration) error {
	if b.pause == nil {
		return workflow.Sleep(ctx, d)
	}
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel() // the timer, when the signal came first
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(workflow.NewTimer(tctx, d), func(workflow.Future) {})
	sel.AddReceive(b.pause, func(c workflow.ReceiveChannel, _ bool) {
		var paused bool
		if receive(ctx, c, &paused) {
			b.setPaused(ctx, paused)
		}
	})
	sel.Select(ctx)
	return ctx.Err()
}

// replay starts the replays of targets together and counts what became
// of each. A cancellation of the bulk replay lets the starts in flight
// finish, so the counts stay exact; but a start that its worker takes up
// once the bulk replay is paused or canceled (a crash, or no worker for a
// while) is not made: it returns held, to start after the resume.
func (b *bulkReplay) replay(ctx workflow.Context, targets []dispatcher.RunRef) (held []dispatcher.RunRef) {
	b.next = b.next.Add(time.Duration(len(targets)) * time.Duration(float64(time.Second)/b.in.Rate))
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	actx := workflow.WithActivityOptions(dctx, b.activityOptions(replayStartOptions))
	futures := make([]workflow.Future, len(targets))
	for i, t := range targets {
		futures[i] = workflow.ExecuteActivity(actx, ActivityReplayExecution, ReplayExecutionInput{Request: dispatcher.ReplayRequest{
			WorkflowID: t.WorkflowID, RunID: t.RunID, Actions: b.in.Actions, Config: b.in.Config,
			Actor: b.in.Actor, BulkReplayID: b.id,
		}})
	}
	for i, f := range futures {
		var res dispatcher.ReplayResult
		err := f.Get(actx, &res)
		if appErr := (*temporal.ApplicationError)(nil); errors.As(err, &appErr) && appErr.Type() == FailureReplayHeld {
			held = append(held, targets[i])
			continue
		}
		b.count(targets[i], res, err)
	}
	return held
}

// count records what became of the replay of one target.
func (b *bulkReplay) count(target dispatcher.RunRef, res dispatcher.ReplayResult, err error) {
	p := &b.st.Progress
	p.Processed++
	var appErr *temporal.ApplicationError
	switch {
	case err == nil && b.version >= bulkReplayV1 && res.AlreadyStarted && res.BulkReplayID != b.id:
		// Another replay (by hand, or another bulk replay) replayed this
		// run first: it is counted there, not here.
		p.Skipped++
		b.note(fmt.Sprintf("%s: skipped: run %s was already replayed as run %s", target.WorkflowID, target.RunID, res.RunID))
	case err == nil:
		p.Replayed++
		if b.version < bulkReplayV1 {
			b.st.Pending = append(b.st.Pending, dispatcher.RunRef{WorkflowID: res.WorkflowID, RunID: res.RunID})
		}
	case errors.As(err, &appErr) && appErr.Type() == FailureReplayRefused:
		p.Skipped++
		b.note(fmt.Sprintf("%s: skipped: %s", target.WorkflowID, appErr.Message()))
	default:
		p.Failed++
		b.note(fmt.Sprintf("%s: the replay could not be started: %v", target.WorkflowID, err))
	}
}

// countReplays counts, by visibility, the replays this bulk replay
// started that have closed, and notes where to find those that failed.
func (b *bulkReplay) countReplays(ctx, lctx workflow.Context) error {
	var c ReplayCounts
	if err := workflow.ExecuteActivity(lctx, ActivityCountReplays, CountReplaysInput{BulkReplayID: b.id, Actions: b.in.Actions}).Get(ctx, &c); err != nil {
		return err
	}
	if bad := c.Failed + c.Canceled; bad > b.st.Closed.Failed+b.st.Closed.Canceled {
		// One note, kept up to date: before, one more each time, each
		// "so far" still after the end.
		p := &b.st.Progress
		p.Errors = slices.DeleteFunc(p.Errors, func(e string) bool { return strings.HasPrefix(e, failedNote) })
		b.note(fmt.Sprintf("%s %d: dispatcher executions list --bulk-replay-id %s --status failed (or canceled; GET /executions/v1?bulkReplayId=%s&status=failed) lists them",
			failedNote, bad, b.id, b.id))
	}
	b.st.Closed = c
	return nil
}

// failedNote begins the note that counts the replays that failed.
const failedNote = "replays failed or canceled:"

// waitForReplays waits until every replay started has closed, or from
// bulkReplayV6 only waits for its startTimestamp, counting them with
// backoff from 1 s to a minute.
func (b *bulkReplay) waitForReplays(ctx, lctx workflow.Context) error {
	if b.version < bulkReplayV1 {
		return b.waitForReplaysV0(ctx, lctx)
	}
	wait, idle := time.Second, 0
	for {
		err := b.countReplays(ctx, lctx)
		c := b.st.Closed
		if b.version < bulkReplayV6 {
			c.Scheduled = 0 // waited for, as before
		}
		if err != nil || c.total()+c.Scheduled >= b.st.Progress.Replayed {
			return err
		}
		if b.version >= bulkReplayV2 {
			// Twice, a wait apart: a replay just started may not be
			// visible as running yet.
			if idle = idle + 1; c.Running > c.Scheduled {
				idle = 0
			}
			if idle == 2 {
				return nil
			}
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return b.continueAsNew(ctx)
		}
		if err := workflow.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, time.Minute)
	}
}

func (b *bulkReplay) note(reason string) {
	p := &b.st.Progress
	p.Errors = append(p.Errors, reason)
	if len(p.Errors) > maxProgressErrors {
		p.Errors = p.Errors[len(p.Errors)-maxProgressErrors:]
	}
}

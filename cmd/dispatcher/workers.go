package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/models"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// workers are the process's Temporal workers. They start in the
// background, as soon as Temporal answers: a process started while
// Temporal is down (a cluster restarting, a pod scheduled before it)
// stays up, answers /healthz, says on /readyz that its worker is down,
// and polls once Temporal is back, instead of exiting into a restart loop.
type workers struct {
	cancel context.CancelFunc
	done   chan struct{} // closed once the start has ended, started or not
	once   sync.Once     // of stop

	mu      sync.Mutex
	running []runningWorker
	err     error // why they are not running yet
	log     *slog.Logger
}

// runningWorker is a started worker, with its task queue, how a retry
// of its activities keeps their effects once, and how many run.
type runningWorker struct {
	worker.Worker
	queue, does string
	running     *inFlight
}

// inFlight counts the activities a worker runs, its first attempts (local
// activities) among them.
type inFlight struct {
	interceptor.WorkerInterceptorBase
	n atomic.Int64
}

func (f *inFlight) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	a := &countedActivity{n: &f.n}
	a.Next = next
	return a
}

type countedActivity struct {
	interceptor.ActivityInboundInterceptorBase
	n *atomic.Int64
}

func (a *countedActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	a.n.Add(1)
	defer a.n.Add(-1)
	return a.Next.ExecuteActivity(ctx, in)
}

// Backoff between attempts to start the workers while Temporal is down.
const (
	firstStartRetry = time.Second
	maxStartRetry   = 30 * time.Second
)

// startWorkers starts, in the background, the worker of the dispatches on
// the task queue and one for the activities of bulk replays on a queue of
// their own (workflows.ReplayTaskQueue), with few slots: thousands of
// replay starts never wait in front of the dispatches, nor take all of a
// worker. It fails at once only for what waiting cannot mend: the
// activities' own settings. A worker that stops for good later (the SDK
// gives up on an error that persists, such as a deleted namespace) calls
// fatal: polling nothing, the process must not go on looking ready.
func (p process) startWorkers(ctx context.Context, tc client.Client, store *models.Store, configs *activities.Cache, executions *dispatch.Executions,
	starter dispatch.Starter, fatal func(error)) (*workers, error) {
	effects, err := activities.New(activities.Options{Store: store, SMTPURL: p.cfg.SMTPURL, MailFrom: p.cfg.MailFrom,
		Outbound: p.cfg.Outbound, WrapTransport: tracingTransport(p.tracer), Now: time.Now, Cache: configs,
		LaterReplay: executions.LaterReplay, FirstCallSlots: firstCallSlots(p.cfg)})
	if err != nil {
		return nil, err
	}
	replays := dispatch.NewReplayActivities(executions)
	// For the process, before any worker starts.
	worker.SetStickyWorkflowCacheSize(int(p.cfg.Temporal.CacheSize))
	start := func() ([]runningWorker, error) {
		if err := dispatch.RegisterSearchAttributes(ctx, tc, p.cfg.TemporalNS); err != nil {
			return nil, err
		}
		opts, replayOpts := workerOptions(p.cfg, fatal), replayWorkerOptions(p.cfg, fatal)
		running, replaying := &inFlight{}, &inFlight{}
		opts.Interceptors, replayOpts.Interceptors = append(opts.Interceptors, running), append(replayOpts.Interceptors, replaying)
		w := worker.New(tc, p.cfg.TaskQueue, opts)
		workflows.Register(w)
		w.RegisterActivity(effects)
		w.RegisterActivity(dispatch.NewGateActivities(tc))       // flow control: permit requests
		w.RegisterActivity(dispatch.NewSequenceActivities(tc))   // ordering and resets: runs an earlier run started
		w.RegisterActivity(replays)                              // bulk replays from before they had a queue of their own
		w.RegisterActivity(dispatch.NewEventActivities(starter)) // task_failed events
		rw := worker.New(tc, workflows.ReplayTaskQueue(p.cfg.TaskQueue), replayOpts)
		rw.RegisterActivity(replays)
		if err := w.Start(); err != nil {
			return nil, fmt.Errorf("start worker: %w", err)
		}
		if err := rw.Start(); err != nil {
			w.Stop()
			return nil, fmt.Errorf("start bulk replay worker: %w", err)
		}
		return []runningWorker{
			{w, p.cfg.TaskQueue, "each mail or call under the same Message-ID or Idempotency-Key", running},
			{rw, workflows.ReplayTaskQueue(p.cfg.TaskQueue), "", replaying},
		}, nil
	}

	ctx, cancel := context.WithCancel(ctx)
	ws := &workers{cancel: cancel, done: make(chan struct{}), err: errors.New("starting"), log: p.log}
	go func() {
		defer close(ws.done)
		for wait := firstStartRetry; ; wait = min(2*wait, maxStartRetry) {
			running, err := start()
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			ws.mu.Lock()
			ws.running, ws.err = running, err
			ws.mu.Unlock()
			if err == nil {
				p.announce(fmt.Sprintf("dispatcher worker polling task queue %q on %s", p.cfg.TaskQueue, p.cfg.TemporalAddr))
				return
			}
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, dispatch.ErrSearchAttributesRefused) {
				fatal(err) // waiting cannot mend it
				return
			}
			p.log.Warn(waitingForTemporalLog, "address", p.cfg.TemporalAddr, "namespace", p.cfg.TemporalNS, "retry_in", wait, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}()
	return ws, nil
}

// waitingForTemporalLog is logged after each failed start of the workers.
const waitingForTemporalLog = "the worker is waiting for Temporal"

// ready is the workers' readiness check: down until they poll.
func (ws *workers) ready(context.Context) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.err
}

// stop ends a start still waiting for Temporal, and stops the running
// workers, side by side: each waits for what it runs up to its stop
// timeout (workerStopTimeout); unfinished activities are retried
// elsewhere. A second call waits for the first.
func (ws *workers) stop() {
	ws.once.Do(func() {
		ws.cancel()
		<-ws.done
		var wg sync.WaitGroup
		for _, w := range ws.running {
			wg.Go(func() {
				w.Stop()
				// The SDK says nothing when it gives up waiting for them:
				// before, a stop that left calls running was silent.
				if n := w.running.n.Load(); n > 0 {
					msg := "the worker stopped with activities still running past its stop timeout: Temporal retries them on another worker"
					if w.does != "" {
						msg += ", " + w.does
					}
					ws.log.Warn(msg, "task_queue", w.queue, "activities", n)
				}
			})
		}
		wg.Wait()
	})
}

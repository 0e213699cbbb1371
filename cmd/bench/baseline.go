package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher/internal/proc"
)

// Names of the bare workflows, their activity and their task queue.
const (
	bareQueue        = "bench-bare"
	bareWorkflowName = "BareWorkflow"
	refWorkflowName  = "ReferenceWorkflow"
	noopActivity     = "Noop"
)

// bareWorkflow is the baseline: what a team writes first by hand. It runs
// n no-op regular activities with default options, concurrently as the
// dispatcher runs an event's actions, and waits for them all.
func bareWorkflow(ctx workflow.Context, n int) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	futures := make([]workflow.Future, n)
	for i := range futures {
		futures[i] = workflow.ExecuteActivity(ctx, noopActivity, i)
	}
	return getAll(ctx, futures)
}

// referenceWorkflow is bareWorkflow with local activities: started
// eagerly it completes in one workflow task, the shape the dispatcher is
// built for and the most a workflow gets out of this server.
func referenceWorkflow(ctx workflow.Context, n int) error {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Minute})
	futures := make([]workflow.Future, n)
	for i := range futures {
		futures[i] = workflow.ExecuteLocalActivity(ctx, noopActivity, i)
	}
	return getAll(ctx, futures)
}

func getAll(ctx workflow.Context, futures []workflow.Future) error {
	for _, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// shape is one way of writing and driving the bare workflows.
type shape struct {
	name     string
	workflow string
	// eager starts the workflows with EnableEagerStart, on the worker's
	// client; the baseline does not.
	eager bool
	// awaitGet waits for each run with GetWorkflow(...).Get, as the
	// baseline is specified; otherwise a caller waits until all the run's
	// activities ran, as the dispatcher's callers wait for the sinks.
	awaitGet bool
}

// benchBare measures bare workflows of shape s on a fresh dev server,
// with the worker in this process.
func benchBare(ctx context.Context, p params, dir string, prog *progress, s shape) (phase, error) {
	srv, err := proc.StartDevServer(ctx, proc.DevServerOptions{CLI: p.TemporalCLI, LogPath: filepath.Join(dir, "temporal-"+s.name+".log"),
		ExtraArgs: deployedDynamicConfig})
	if err != nil {
		return phase{Name: s.name}, err
	}
	defer srv.Stop(syscall.SIGINT, 10*time.Second)
	return runBare(ctx, p, prog, temporalTarget{Addr: srv.Addr, Pid: srv.Pid()}, s, bareQueue, nil)
}

// runBare measures bare workflows of shape s on the server at target,
// with a worker in this process polling queue. With stats it also counts
// what the measured runs wrote to PostgreSQL.
func runBare(ctx context.Context, p params, prog *progress, target temporalTarget, s shape, queue string, stats *pgStats) (phase, error) {
	var cl cleanups
	defer cl.run()
	res := phase{Name: s.name}
	tc, err := target.dial()
	if err != nil {
		return res, err
	}
	cl.add(tc.Close)
	tr := newTracker(p.Actions)
	w := worker.New(tc, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(bareWorkflow, workflow.RegisterOptions{Name: bareWorkflowName})
	w.RegisterWorkflowWithOptions(referenceWorkflow, workflow.RegisterOptions{Name: refWorkflowName})
	w.RegisterActivityWithOptions(func(ctx context.Context, _ int) error {
		if !s.awaitGet {
			tr.arrived(activity.GetInfo(ctx).WorkflowExecution.ID)
		}
		return nil
	}, activity.RegisterOptions{Name: noopActivity})
	if err := w.Start(); err != nil {
		return res, err
	}
	cl.add(w.Stop)
	prog.note("%s: worker polling %q on %s", s.name, queue, target.Addr)

	r := newRuns(p.Warmup + p.N)
	do := func(ctx context.Context, seq int) (time.Duration, time.Duration, error) {
		id := fmt.Sprintf("%s-%06d", queue, seq)
		var done <-chan struct{}
		if !s.awaitGet {
			done = tr.expect(id)
		}
		t0 := time.Now()
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: id, TaskQueue: queue, EnableEagerStart: s.eager,
		}, s.workflow, p.Actions)
		intake := time.Since(t0)
		if err != nil {
			return 0, 0, err
		}
		r.wf[seq], r.run[seq] = run.GetID(), run.GetRunID()
		if s.awaitGet {
			if err := run.Get(ctx, nil); err != nil {
				return 0, 0, err
			}
		} else {
			select {
			case <-done:
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			}
		}
		return intake, time.Since(t0), nil
	}
	if p.Warmup > 0 {
		if _, err := drive(ctx, s.name+" warm-up", 0, p.Warmup, p.Concurrency, do, prog); err != nil {
			return res, err
		}
	}
	var dbBefore pgSnapshot
	if stats != nil {
		if dbBefore, err = stats.flushedSnapshot(ctx, prog, time.Now()); err != nil {
			return res, err
		}
	}
	res.LoadAvg = loadAverage1()
	before := cpuSnapshot(target.Pid, nil, stats.pids())
	if res.Load, err = drive(ctx, s.name, p.Warmup, p.N, p.Concurrency, do, prog); err != nil {
		return res, err
	}
	res.CPU = cpuSnapshot(target.Pid, nil, stats.pids()).since(before)
	res.CPU.Worker, res.CPU.Driver = res.CPU.Driver, 0 // one process: worker and load generator
	if stats != nil {
		after, err := stats.flushedSnapshot(ctx, prog, time.Now())
		if err != nil {
			return res, err
		}
		res.DB = after.since(dbBefore, p.N)
		res.Conns = &after.Conns
	}
	if err := waitClosed(ctx, tc, s.workflow, queue, p.Warmup+p.N); err != nil {
		return res, err
	}
	if res.History, err = historyLengths(ctx, tc, sample(r.wf[p.Warmup:], r.run[p.Warmup:], p.Sample)); err != nil {
		return res, err
	}
	if res.Memory, err = readMemory(os.Getpid()); err != nil {
		return res, err
	}
	res.ServerMemory, _ = readMemory(target.Pid)
	return res, nil
}

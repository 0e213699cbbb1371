package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// phase is what one row measured.
type phase struct {
	Name   string
	Layout string // the dispatcher processes: "serve", "api + worker", "serve ×4"; "" for bare workflows
	Procs  int    // dispatcher processes (0: the worker is this process)
	Load   load
	CPU    cpuUse
	// DB is what the measured runs cost PostgreSQL; nil when not measured.
	DB *dbUse
	// Conns are PostgreSQL's connections right after the run, while the
	// processes still hold their pools; nil when not measured.
	Conns   *pgConns
	History history
	// Memory is the dispatcher process with the highest peak (or this
	// process for bare workflows); Memories each one of them.
	Memory       memory
	Memories     []memory
	ServerMemory memory // the Temporal server's
	// LoadAvg is the machine's 1-minute load average when the measured
	// run began: the rows run one after the other, and other work on the
	// machine moves them.
	LoadAvg string
	// SeparateDriver is true when the load generator (and the sinks) ran
	// in another process than the worker, so CPU.Driver is its own.
	SeparateDriver bool
	Notes          []string
}

// cpuUse is the CPU time each part used during the measured run.
type cpuUse struct {
	Server, Worker, Driver time.Duration
	// Postgres is PostgreSQL's: of the backends connected to the run's
	// databases and of its background processes (WAL writer,
	// checkpointer, autovacuum, ...), not other sessions' backends; 0
	// when not measured.
	Postgres time.Duration
	// Broker is the message broker's of a row whose events go through
	// one (RabbitMQ, NATS), when the bench found its process; 0
	// otherwise.
	Broker time.Duration
}

// cpuSample is the CPU time used so far by each part.
type cpuSample struct {
	cpuUse
	pg map[int]time.Duration // by PostgreSQL process
}

// cpuSnapshot reads the CPU time so far of the server, the dispatcher
// processes (none: the worker is this process), this process (the
// driver) and the PostgreSQL processes pg lists (nil: none).
func cpuSnapshot(server int, workers []int, pg func() []int) cpuSample {
	var c cpuSample
	c.Server, _ = cpuTime(server)
	for _, w := range workers {
		t, _ := cpuTime(w)
		c.Worker += t
	}
	c.Driver, _ = cpuTime(os.Getpid())
	if pg != nil {
		c.pg = map[int]time.Duration{}
		for _, pid := range pg() {
			if t, err := cpuTime(pid); err == nil {
				c.pg[pid] = t
			}
		}
	}
	return c
}

// since is the CPU time used between before and c. A PostgreSQL process
// that started in between counts whole; one that exited in between is
// missing (the run's backends are pooled connections, which stay).
func (c cpuSample) since(before cpuSample) cpuUse {
	u := cpuUse{Server: c.Server - before.Server, Worker: c.Worker - before.Worker, Driver: c.Driver - before.Driver}
	for pid, t := range c.pg {
		u.Postgres += t - before.pg[pid]
	}
	return u
}

// history sums up the history lengths of sampled runs.
type history struct {
	Samples, Min, Max int
	Mean              float64
}

type execution struct{ workflowID, runID string }

// sample picks up to k runs spread evenly over the measured ones.
func sample(wfIDs, runIDs []string, k int) []execution {
	var out []execution
	if k <= 0 || len(wfIDs) == 0 {
		return out
	}
	step := max(1, len(wfIDs)/k)
	for i := 0; i < len(wfIDs) && len(out) < k; i += step {
		out = append(out, execution{wfIDs[i], runIDs[i]})
	}
	return out
}

// historyLengths counts the events in the history of each execution.
func historyLengths(ctx context.Context, tc client.Client, execs []execution) (history, error) {
	h := history{Samples: len(execs)}
	total := 0
	for i, e := range execs {
		it := tc.GetWorkflowHistory(ctx, e.workflowID, e.runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		n := 0
		for it.HasNext() {
			if _, err := it.Next(); err != nil {
				return h, fmt.Errorf("history of %s: %w", e.workflowID, err)
			}
			n++
		}
		if i == 0 || n < h.Min {
			h.Min = n
		}
		h.Max = max(h.Max, n)
		total += n
	}
	if len(execs) > 0 {
		h.Mean = float64(total) / float64(len(execs))
	}
	return h, nil
}

package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// phase is what one side of the comparison measured.
type phase struct {
	Name    string
	Load    load
	CPU     cpuUse
	History history
	Memory  memory
	// SeparateDriver is true when the load generator (and the sinks) ran
	// in another process than the worker, so CPU.Driver is its own.
	SeparateDriver bool
	Notes          []string
}

// cpuUse is the CPU time each process used during the measured run.
type cpuUse struct {
	Server, Worker, Driver time.Duration
}

// cpuSnapshot reads the CPU time so far of the server, the worker and
// this process (the driver); worker 0 means the worker is this process.
func cpuSnapshot(server, worker int) cpuUse {
	var c cpuUse
	c.Server, _ = cpuTime(server)
	if worker != 0 {
		c.Worker, _ = cpuTime(worker)
	}
	c.Driver, _ = cpuTime(os.Getpid())
	return c
}

func (c cpuUse) since(before cpuUse) cpuUse {
	return cpuUse{Server: c.Server - before.Server, Worker: c.Worker - before.Worker, Driver: c.Driver - before.Driver}
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

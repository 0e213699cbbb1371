package main

import (
	"context"
	"fmt"
	"time"
)

// settlePoll is how often settle looks, sayEvery how often it says why
// the run is not over yet.
const (
	settlePoll = 2 * time.Second
	sayEvery   = 10 * time.Second
)

// settle waits until the run is over: no dispatch of type chaos runs or
// waits, every accepted event has a closed run, nothing is in flight at
// the sinks, and the count of applied effects held still since the last
// look. It returns the latest run of each event. When ctx ends first it
// returns what it can still read, and why the run is not over.
func settle(ctx context.Context, api *apiClient, led *ledger, n int, prog *progress) (map[string]execution, string) {
	prevApplied := -1
	why := "nothing read yet"
	said := time.Now()
	for {
		latest, reason := look(ctx, api, led, n)
		applied := led.counts().Applied
		switch {
		case reason == "" && applied == prevApplied:
			return latest, ""
		case reason == "":
			why = "effects are still being applied"
		default:
			why = reason
		}
		prevApplied = applied
		if time.Since(said) >= sayEvery {
			prog.note("settling: %s", why)
			said = time.Now()
		}
		select {
		case <-ctx.Done():
			// The run's time is up; read the verdict's inputs anyway.
			rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			all, err := api.executions(rctx, "", 0)
			if err != nil {
				return nil, fmt.Sprintf("%s; listing the executions failed: %v", why, err)
			}
			return latestRuns(all), why
		case <-time.After(settlePoll):
		}
	}
}

// look reports why the run is not over yet ("" when it is) and, once no
// dispatch runs, the latest run of each event.
func look(ctx context.Context, api *apiClient, led *ledger, n int) (map[string]execution, string) {
	if c := led.counts(); c.InFlight > 0 {
		return nil, fmt.Sprintf("%d deliveries in flight at the sinks", c.InFlight)
	}
	for _, status := range []string{"running", "scheduled"} {
		xs, err := api.executions(ctx, status, 1)
		if err != nil {
			return nil, fmt.Sprintf("listing %s dispatches: %v", status, err)
		}
		if len(xs) > 0 {
			return nil, fmt.Sprintf("dispatches still %s (e.g. %s)", status, xs[0].WorkflowID)
		}
	}
	all, err := api.executions(ctx, "", 0)
	if err != nil {
		return nil, fmt.Sprintf("listing the dispatches: %v", err)
	}
	latest := latestRuns(all)
	open := 0
	for seq := 1; seq <= n; seq++ {
		if x, ok := latest[eventID(seq)]; !ok || !closed(x.Status) {
			open++
		}
	}
	if open > 0 {
		return latest, fmt.Sprintf("%d events have no closed run yet", open)
	}
	return latest, ""
}

// latestRuns keeps, per event, the run that started last.
func latestRuns(all []execution) map[string]execution {
	out := map[string]execution{}
	for _, x := range all {
		if have, ok := out[x.EventID]; !ok || x.StartTimestamp > have.StartTimestamp {
			out[x.EventID] = x
		}
	}
	return out
}

// closed reports whether an execution status is final.
func closed(status string) bool {
	return status == "completed" || status == "failed" || status == "canceled"
}

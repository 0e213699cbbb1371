package main

import (
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestEndToEndStopKeepsFirstAttempts: a worker stopped (SIGTERM: a deploy,
// a scale-down) while a first attempt's call runs waits for the call, and
// its result is recorded. Before, the worker gave up on the workflow task
// at DISPATCHER_SHUTDOWN_TIMEOUT although a local attempt may take the
// local call limit, the call's result was dropped, and the next worker
// made the call again. A hang-up (SIGHUP: its terminal closed) stops it
// alike; before, it killed the process at once.
func TestEndToEndStopKeepsFirstAttempts(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) { stopKeepsFirstAttempts(t, sig) })
	}
}

func stopKeepsFirstAttempts(t *testing.T, sig syscall.Signal) {
	s := startSystem(t, splitProcesses, withEnv("DISPATCHER_SHUTDOWN_TIMEOUT=1s"))
	var mu sync.Mutex
	calls := map[string]int{}
	started := make(chan struct{}, 10)
	fn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		started <- struct{}{}
		// Three times the shutdown timeout; the worker stops meanwhile.
		time.Sleep(3 * time.Second)
	})
	wid := s.dispatchOne(fn, "slow", "slow_event", "stop-1")
	<-started
	_ = s.worker.cmd.Process.Signal(sig)
	<-s.worker.exited
	if s.worker.err != nil {
		t.Fatalf("the worker did not exit cleanly: %v\n%s", s.worker.err, s.logs)
	}
	s.startWorker() // to finish the dispatch, had the stopped one not
	res, failed := s.result(wid, "")
	if failed || len(res.Outcomes) != 1 || res.Outcomes[0].Status != "succeeded" || res.Outcomes[0].Attempts != 1 {
		t.Fatalf("outcomes = %+v (failed %v)", res.Outcomes, failed)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 {
		t.Fatalf("calls by key %v, want one key", calls)
	}
	for key, n := range calls {
		if n != 1 {
			t.Fatalf("%s called %d times, want once", key, n)
		}
	}
}

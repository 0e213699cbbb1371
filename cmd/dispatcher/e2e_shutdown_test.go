package main

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
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
	s := startSystem(t, splitProcesses, withEnv("DISPATCHER_SHUTDOWN_TIMEOUT=1s", "DISPATCHER_LOG_LEVEL=info"))
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
	// The same signal again at once, as a closed terminal delivers its
	// SIGHUP twice: the first, delivered twice, not a second asking to
	// stop at once.
	s.poll("the worker to say it is draining", func() bool { return strings.Contains(s.logs.String(), "a second signal stops at once") })
	_ = s.worker.cmd.Process.Signal(sig)
	<-s.worker.exited
	if s.worker.err != nil {
		t.Fatalf("the worker did not exit cleanly: %v\n%s", s.worker.err, s.logs)
	}
	// Its call ended within the stop: nothing is said to be cut off.
	if strings.Contains(s.logs.String(), "activities still running") {
		t.Errorf("a stop that waited for its call says it cut activities off:\n%s", s.logs)
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

// TestEndToEndStopPastItsTimeoutSaysSo: a worker whose regular attempt's
// call outlasts its stop timeout says, as it exits, that the attempt is
// retried elsewhere. Before, nothing: the SDK logs its giving up only at
// trace level (a probe).
func TestEndToEndStopPastItsTimeoutSaysSo(t *testing.T) {
	// Every attempt regular (a function's attempt is its 10 s and 10 s,
	// past the 1 s local limit); the stop waits 6 s (1 s and 5 s).
	s := startSystem(t, splitProcesses, withEnv("DISPATCHER_LOCAL_ATTEMPT_TIMEOUT=1s", "DISPATCHER_SHUTDOWN_TIMEOUT=1s", "DISPATCHER_LOG_LEVEL=info"))
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	s.dispatchOne(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	}), "hung", "hung_event", "hung-1")
	t.Cleanup(func() { close(release) }) // before the function's server closes
	<-started
	_ = s.worker.cmd.Process.Signal(syscall.SIGTERM)
	<-s.worker.exited
	// The dispatches' worker, its one call: not the bulk replays' worker,
	// whose stop takes as long with nothing running.
	if !regexp.MustCompile(`the worker stopped with activities still running past its stop timeout[^\n]*task_queue=dispatcher activities=1`).MatchString(s.logs.String()) {
		t.Errorf("the worker left a call running and said nothing of it:\n%s", s.logs)
	}
}

// TestEndToEndSecondSignalStopsAtOnce: a process draining a call that
// does not end stops at once on the next signal (Ctrl-C pressed again).
// Before, later signals went nowhere: it drained until the call's
// timeout, up to minutes, whatever the operator sent.
func TestEndToEndSecondSignalStopsAtOnce(t *testing.T) {
	s := startSystem(t, splitProcesses, withEnv("DISPATCHER_LOG_LEVEL=info")) // it says it stops
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	s.dispatchOne(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release // past the function's 10 s timeout
	}), "hung", "hung_event", "hung-1")
	t.Cleanup(func() { close(release) }) // before the function's server closes
	<-started
	_ = s.worker.cmd.Process.Signal(syscall.SIGTERM)
	s.poll("the worker to say it is draining", func() bool { return strings.Contains(s.logs.String(), "a second signal stops at once") })
	// Again until it exits: the first signal's handler lets go of the
	// signals a moment after the log says so.
	deadline := time.After(5 * time.Second)
	for stopped := false; !stopped; {
		_ = s.worker.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.worker.exited:
			stopped = true
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the worker draining a hung call did not stop within 5 s of a second SIGTERM\n%s", s.logs)
		}
	}
	var exit *exec.ExitError
	if !errors.As(s.worker.err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("the worker exited %v, want killed by the second SIGTERM", s.worker.err)
	}
}

// TestEndToEndStopAnswersRequestsInFlight: a request still waiting for
// the database when the process is stopped is answered 503 before the
// shutdown period ends, and the process exits 0. Before, its connection
// was closed without an answer once the period had passed (the request's
// own budget is longer), and the process exited 1.
func TestEndToEndStopAnswersRequestsInFlight(t *testing.T) {
	u, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.NewProxy(t, u.Host)
	u.Host = db.Addr
	s := startSystem(t, splitProcesses, withEnv("DATABASE_URL="+u.String(), "DISPATCHER_REQUEST_TIMEOUT=60s", "DISPATCHER_SHUTDOWN_TIMEOUT=4s"))
	api := s.startProcess("api")
	db.Stall()
	t.Cleanup(db.Resume) // before the system's checks, which read the database
	type answer struct {
		code int
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("GET", api.url+"/dispatchers/v1", nil)
		req.Header.Set("Authorization", "Bearer "+s.token)
		res, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		answered <- answer{code: res.StatusCode, body: string(b)}
	}()
	s.poll("the request to reach the database", func() bool { return db.Dropped() > 0 })
	stopped := time.Now()
	_ = api.cmd.Process.Signal(syscall.SIGTERM)
	a := <-answered
	if a.err != nil || a.code != 503 {
		t.Fatalf("the request in flight: %d %s %v, want 503", a.code, a.body, a.err)
	}
	<-api.exited
	if api.err != nil || time.Since(stopped) > 10*time.Second {
		t.Fatalf("the API exited after %v: %v, want 0 within its shutdown period\n%s", time.Since(stopped).Round(time.Millisecond), api.err, s.logs)
	}
}

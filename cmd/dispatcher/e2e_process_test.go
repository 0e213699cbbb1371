package main

import (
	"bufio"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
)

// systemOptions change how startSystem runs the dispatcher.
type systemOptions struct {
	// split runs `api` and `worker` as two processes instead of `serve`,
	// so a test can kill and restart the worker alone.
	split bool
	env   []string // extra KEY=value settings
	// temporal, when set, starts the Temporal server instead of
	// testenv.Temporal and returns its address and a client of it.
	temporal func(t *testing.T) (addr string, c client.Client)
}

type systemOption func(*systemOptions)

// splitProcesses runs the API and the worker as separate processes.
func splitProcesses(o *systemOptions) { o.split = true }

// withEnv adds settings (KEY=value) to the processes' environment.
func withEnv(kv ...string) systemOption {
	return func(o *systemOptions) { o.env = append(o.env, kv...) }
}

// proc is one running dispatcher process.
type proc struct {
	cmd     *exec.Cmd
	url     string        // where it listens
	polling chan struct{} // closed once its worker polls (serve, worker)
	exited  chan struct{} // closed once it has exited
	err     error         // its exit error, once exited
}

var (
	listeningLine = regexp.MustCompile(`dispatcher (?:API|worker health and metrics) listening on (http://[^\s"]+)`)
	pollingLine   = regexp.MustCompile(`dispatcher worker polling task queue`)
)

// startProcess runs `dispatcher <command>` with the system's environment
// and returns once it listens and, for a worker, polls. At the end of the
// test it is stopped with SIGTERM and must exit cleanly, unless the test
// killed it.
func (s *system) startProcess(command string) *proc {
	s.t.Helper()
	p := s.launch(command)
	if command == "api" {
		return p
	}
	select {
	case <-p.polling:
	case <-p.exited:
		s.t.Fatalf("dispatcher %s exited before its worker polled: %v\n%s", command, p.err, s.logs)
	case <-time.After(60 * time.Second):
		s.t.Fatalf("dispatcher %s did not poll:\n%s", command, s.logs)
	}
	return p
}

// launch runs `dispatcher <command>` as startProcess does, but returns as
// soon as it listens, whether or not its worker polls yet.
func (s *system) launch(command string) *proc {
	s.t.Helper()
	p := &proc{cmd: exec.Command(s.bin, command), polling: make(chan struct{}), exited: make(chan struct{})}
	p.cmd.Env = s.env
	p.cmd.Stderr = s.logs
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	listening := make(chan string, 1)
	go func() {
		polled := false
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case listening <- m[1]:
				default:
				}
			}
			if !polled && pollingLine.MatchString(sc.Text()) {
				polled = true
				close(p.polling)
			}
		}
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	s.t.Cleanup(func() {
		select {
		case <-p.exited:
			return // killed by the test
		default:
		}
		// A graceful stop: SIGTERM, then a clean exit.
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.exited
		if p.err != nil {
			s.t.Errorf("dispatcher %s did not exit cleanly on SIGTERM: %v\n%s", command, p.err, s.logs)
		}
	})
	select {
	case p.url = <-listening:
	case <-p.exited:
		s.t.Fatalf("dispatcher %s exited before it started: %v\n%s", command, p.err, s.logs)
	case <-time.After(60 * time.Second):
		s.t.Fatalf("dispatcher %s did not start:\n%s", command, s.logs)
	}
	return p
}

// crashWorker kills the worker process with SIGKILL, as a crash would:
// no graceful stop, in-flight activities and workflow tasks are lost.
func (s *system) crashWorker() {
	s.t.Helper()
	if s.worker == nil {
		s.t.Fatal("crashWorker needs startSystem(t, splitProcesses)")
	}
	_ = s.worker.cmd.Process.Kill()
	<-s.worker.exited
}

// startWorker starts a new worker process after crashWorker.
func (s *system) startWorker() {
	s.t.Helper()
	s.worker = s.startProcess("worker")
}

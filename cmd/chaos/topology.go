package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/proc"
)

// readyWithin bounds how long a started or restarted process may take to
// answer /readyz: a process that needs longer counts as not recovering.
const readyWithin = 90 * time.Second

// topology is the production shape under test: a Temporal server on a
// file, `dispatcher api` and `dispatcher worker` as separate processes.
// Each can be killed and started again on the same address, as an
// orchestrator restarts a crashed container.
type topology struct {
	dir, bin   string
	env        []string // of the dispatcher processes, without the address
	apiAddr    string
	workerAddr string
	prog       *progress

	mu       sync.Mutex
	temporal *proc.DevServer
	procs    map[string]*proc.Child // api and worker
	starts   map[string]int         // incarnations, for log names
	down     map[string]bool        // killed on purpose and not back yet
	crashes  []string               // exits nobody planned
}

// startTopology starts Temporal, then the worker and the API, and waits
// until each is ready.
func startTopology(ctx context.Context, p params, dir string, env []string, prog *progress) (*topology, error) {
	t := &topology{dir: dir, bin: p.Dispatcher, prog: prog,
		procs: map[string]*proc.Child{}, starts: map[string]int{}, down: map[string]bool{}}
	t.starts[compTemporal] = 1
	srv, err := proc.StartDevServer(ctx, proc.DevServerOptions{
		CLI: p.TemporalCLI, LogPath: filepath.Join(dir, "temporal-1.log"), DBFile: filepath.Join(dir, "temporal.db"),
	})
	if err != nil {
		return nil, err
	}
	t.temporal = srv
	t.env = append(env, "TEMPORAL_ADDRESS="+srv.Addr)
	for _, c := range []string{compWorker, compAPI} {
		if err := t.startFirst(ctx, c); err != nil {
			t.stop()
			return nil, err
		}
	}
	return t, nil
}

// startFirst starts comp for the first time, on a free port, which its
// restarts keep. FreePort only says the port was free when it looked: when
// another process took it first (a dev server's own listeners, another
// test's), comp is started again on another.
func (t *topology) startFirst(ctx context.Context, comp string) error {
	addr := &t.apiAddr
	if comp == compWorker {
		addr = &t.workerAddr
	}
	var err error
	for range 3 {
		port, perr := proc.FreePort()
		if perr != nil {
			return perr
		}
		*addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = t.start(ctx, comp); err == nil {
			return nil
		}
		t.mu.Lock()
		c := t.procs[comp]
		t.mu.Unlock()
		if c == nil || !strings.Contains(c.LogTail(), "address already in use") {
			return err
		}
		c.Stop(syscall.SIGKILL, time.Second)
	}
	return err
}

// apiURL is the API's base URL; it stays the same across restarts.
func (t *topology) apiURL() string { return "http://" + t.apiAddr }

// temporalAddr is the Temporal frontend's address.
func (t *topology) temporalAddr() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.temporal.Addr
}

// start starts comp (again) and waits until it is ready. A restarted
// Temporal must be answered to by the API and the worker again.
func (t *topology) start(ctx context.Context, comp string) error {
	t.mu.Lock()
	t.starts[comp]++
	n := t.starts[comp]
	t.mu.Unlock()
	if comp == compTemporal {
		t.mu.Lock()
		opts := t.temporal.Options
		t.mu.Unlock()
		opts.LogPath = filepath.Join(t.dir, fmt.Sprintf("temporal-%d.log", n))
		srv, err := proc.StartDevServer(ctx, opts)
		if err != nil {
			return fmt.Errorf("restart temporal on port %d: %w", opts.Port, err)
		}
		t.mu.Lock()
		t.temporal = srv
		t.down[comp] = false
		t.mu.Unlock()
		return t.ready(ctx)
	}
	addr := t.apiAddr
	if comp == compWorker {
		addr = t.workerAddr
	}
	cmd := exec.Command(t.bin, comp)
	cmd.Env = append(append([]string(nil), t.env...), "DISPATCHER_HTTP_ADDR="+addr)
	c, err := proc.Start("dispatcher "+comp, cmd, filepath.Join(t.dir, fmt.Sprintf("%s-%d.log", comp, n)))
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.procs[comp] = c
	t.down[comp] = false
	t.mu.Unlock()
	return c.WaitHTTP(ctx, "http://"+addr+"/readyz", readyWithin)
}

// ready waits until the API and the worker answer /readyz, which they
// do only while their database and Temporal answer them.
func (t *topology) ready(ctx context.Context) error {
	for _, comp := range []string{compWorker, compAPI} {
		t.mu.Lock()
		c := t.procs[comp]
		t.mu.Unlock()
		addr := t.apiAddr
		if comp == compWorker {
			addr = t.workerAddr
		}
		if err := c.WaitHTTP(ctx, "http://"+addr+"/readyz", readyWithin); err != nil {
			return fmt.Errorf("after a restart: %w", err)
		}
	}
	return nil
}

// kill SIGKILLs comp's process group and returns its pid once it is gone.
func (t *topology) kill(comp string) int {
	t.mu.Lock()
	t.down[comp] = true
	c := t.procs[comp]
	if comp == compTemporal {
		c = t.temporal.Child
	}
	t.mu.Unlock()
	c.Kill()
	return c.Pid()
}

// watch restarts a process that exited without being killed, and notes
// it: the product must not crash by itself, but the run goes on so the
// verdict still says what that cost.
func (t *topology) watch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		for _, comp := range []string{compWorker, compAPI} {
			t.mu.Lock()
			c, down := t.procs[comp], t.down[comp]
			t.mu.Unlock()
			select {
			case <-c.Exited():
			default:
				continue
			}
			if down {
				continue
			}
			note := fmt.Sprintf("dispatcher %s (pid %d) exited on its own: %v; log %s:\n%s", comp, c.Pid(), c.Err(), c.LogPath, c.LogTail())
			t.mu.Lock()
			t.crashes = append(t.crashes, note)
			t.down[comp] = true
			t.mu.Unlock()
			t.prog.note("!! %s; starting it again", note)
			if err := t.start(ctx, comp); err != nil && ctx.Err() == nil {
				t.prog.note("!! could not start %s again: %v", comp, err)
			}
		}
	}
}

// unplannedExits are the exits watch saw.
func (t *topology) unplannedExits() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.crashes...)
}

// stop ends the API, the worker and then Temporal, gracefully.
func (t *topology) stop() {
	t.mu.Lock()
	for _, c := range []string{compWorker, compAPI, compTemporal} {
		t.down[c] = true // an exit is planned from now on
	}
	api, worker, temporal := t.procs[compAPI], t.procs[compWorker], t.temporal
	t.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range []*proc.Child{api, worker} {
		if c != nil {
			wg.Go(func() { c.Stop(syscall.SIGTERM, 25*time.Second) })
		}
	}
	wg.Wait()
	if temporal != nil {
		temporal.Stop(syscall.SIGINT, 10*time.Second)
	}
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/dispatcherhq/dispatcher"
)

// temporalTarget is the Temporal server a row runs against.
type temporalTarget struct {
	Addr string
	Pid  int // for its CPU time and memory
}

// dial returns a client of the server with a silent logger (the SDK logs
// every reconnection otherwise).
func (t temporalTarget) dial() (client.Client, error) {
	return client.Dial(client.Options{HostPort: t.Addr, Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))})
}

// stack is what dispatcher rows run against: a Temporal server, a store,
// the sinks that count the side effects, and the secret the processes
// verify tokens with. The rows of one stack share its store, configured
// through the API of the first row's first process.
type stack struct {
	p          params
	dir        string
	prog       *progress
	temporal   temporalTarget
	tc         client.Client
	storeURL   string
	stats      *pgStats // nil: the databases' counters are not read
	tr         *tracker
	smtp       *smtpSink
	fn         *functionSink
	secret     string
	token      string
	configured bool
	// ordering is the bench dispatcher's ordering key ("": none), set
	// before the first deploy configures the store.
	ordering string
	cl       cleanups
}

func newStack(p params, dir string, prog *progress, target temporalTarget, storeURL string, stats *pgStats) (*stack, error) {
	s := &stack{p: p, dir: dir, prog: prog, temporal: target, storeURL: storeURL, stats: stats,
		tr: newTracker(p.Actions), secret: randomHex(32)}
	var err error
	if s.smtp, err = startSMTPSink(s.tr); err != nil {
		return nil, err
	}
	s.cl.add(s.smtp.close)
	if s.fn, err = startFunctionSink(s.tr); err != nil {
		s.close()
		return nil, err
	}
	s.cl.add(s.fn.close)
	if s.tc, err = target.dial(); err != nil {
		s.close()
		return nil, err
	}
	s.cl.add(s.tc.Close)
	return s, nil
}

func (s *stack) close() { s.cl.run() }

// env is the environment of the dispatcher processes of a row whose
// dispatches run on taskQueue.
func (s *stack) env(taskQueue string) []string {
	return append(os.Environ(),
		"DATABASE_URL="+s.storeURL,
		"DISPATCHER_JWT_SECRET="+s.secret,
		"TEMPORAL_ADDRESS="+s.temporal.Addr,
		"DISPATCHER_TASK_QUEUE="+taskQueue,
		"DISPATCHER_HTTP_ADDR=127.0.0.1:0",
		"DISPATCHER_SMTP_URL=smtp://"+s.smtp.addr,
		"DISPATCHER_OUTBOUND_ALLOW=127.0.0.0/8", // the function sink
		"DISPATCHER_MAIL_FROM=bench@example.com",
		"DISPATCHER_LOG_LEVEL="+s.p.LogLevel,
		// Only the rows that name a broker take events from one, whatever
		// the bench's own environment says.
		"DISPATCHER_AMQP_URL=", "DISPATCHER_NATS_URL=",
		// It measures capacity, which the rate limits would cap on a
		// machine faster than their defaults.
		"DISPATCHER_RATE_LIMIT=0", "DISPATCHER_TENANT_RATE_LIMIT=0",
		"DISPATCHER_INTAKE_RATE_LIMIT=0", "DISPATCHER_TENANT_INTAKE_RATE_LIMIT=0",
	)
}

// layout is how the dispatcher is deployed in a row.
type layout struct {
	serve int      // `dispatcher serve` processes, each an intake and a worker
	split bool     // one `dispatcher api` and one `dispatcher worker` instead
	env   []string // settings of the processes beyond the stack's (a broker's)
}

// deployment is the dispatcher processes of a row, running.
type deployment struct {
	st      *stack
	name    string
	queue   string
	intakes []*dispatcherProc // where events go, round-robin
	procs   []*dispatcherProc // all of them
	sent    int               // events sent so far, all of them dispatches on queue
	// publish sends an event through a broker instead of the intakes'
	// POST /events/v1; nil: through the intakes.
	publish func(ctx context.Context, id string, c content) (accepted, error)
	// keys spreads the events' userId over this many values, the
	// ordering keys of an ordered dispatcher; 0: a userId per event.
	keys int
	// brokerPid is the broker's process, whose CPU time the row counts;
	// 0: none, or not found.
	brokerPid int
	retried   atomic.Int64 // events the producer had to send more than once
}

// deploy starts the processes of layout l, each on a port of its own and
// all polling the task queue bench-<name>, and waits until each is ready.
// The worker of a split layout starts first: it registers the search
// attributes the API's starts use.
func (s *stack) deploy(ctx context.Context, name string, l layout) (*deployment, error) {
	d := &deployment{st: s, name: name, queue: "bench-" + name}
	modes := []string{"worker", "api"}
	if !l.split {
		modes = nil
		for range l.serve {
			modes = append(modes, "serve")
		}
	}
	env := append(s.env(d.queue), l.env...)
	for i, mode := range modes {
		s.prog.note("%s: starting dispatcher %s (%d of %d) on task queue %s, Temporal at %s", name, mode, i+1, len(modes), d.queue, s.temporal.Addr)
		dp, err := startDispatcher(ctx, s.p.Dispatcher, mode, env, filepath.Join(s.dir, fmt.Sprintf("%s-%s-%d.log", name, mode, i+1)))
		if err != nil {
			d.stop()
			return nil, err
		}
		d.procs = append(d.procs, dp)
		if mode != "worker" {
			d.intakes = append(d.intakes, dp)
		}
	}
	if s.token == "" {
		var err error
		if s.token, err = mintToken(ctx, s.p.Dispatcher, env, s.p.Timeout+time.Hour); err != nil {
			d.stop()
			return nil, err
		}
	}
	for _, in := range d.intakes {
		in.token = s.token
	}
	if !s.configured {
		if err := d.intakes[0].configure(ctx, s.p.Actions, s.fn.url, s.ordering); err != nil {
			d.stop()
			return nil, err
		}
		s.configured = true
	}
	return d, nil
}

// stop ends the processes gracefully, all at once.
func (d *deployment) stop() {
	var wg sync.WaitGroup
	for _, p := range d.procs {
		wg.Go(func() { p.Stop(syscall.SIGTERM, 20*time.Second) })
	}
	wg.Wait()
}

func (d *deployment) pids() []int {
	pids := make([]int, len(d.procs))
	for i, p := range d.procs {
		pids[i] = p.Pid()
	}
	return pids
}

// withLog adds the log tails of the processes to err.
func (d *deployment) withLog(ctx context.Context, err error) error {
	for _, p := range d.procs {
		err = p.WithLog(ctx, err)
	}
	return err
}

// runs records the workflow and run ids of the events of a phase.
type runs struct{ wf, run []string }

func newRuns(n int) *runs { return &runs{wf: make([]string, n), run: make([]string, n)} }

// content is the content of bench event seq. The userId is the
// ordering key of an ordered dispatcher.
func (d *deployment) content(seq int) content {
	user := seq
	if d.keys > 0 {
		user = seq % d.keys
	}
	return content{Name: "Ann <b>", UserID: user, Email: fmt.Sprintf("user%d@example.com", seq)}
}

// op sends event seq (label-seq) to an intake, round-robin, or through
// the broker, and waits until it is done. With -await temporal an event
// without a run to await yet (one sent through a broker, or sequenced
// behind its ordering key) is done when the sinks say so.
func (d *deployment) op(label string, r *runs) op {
	st := d.st
	return func(ctx context.Context, seq int) (time.Duration, time.Duration, error) {
		id := fmt.Sprintf("bench-%s-%06d", label, seq)
		done := st.tr.expect(id)
		t0 := time.Now()
		var acc accepted
		var err error
		if d.publish != nil {
			acc, err = d.publish(ctx, id, d.content(seq))
		} else {
			acc, err = d.intakes[seq%len(d.intakes)].sendEvent(ctx, id, d.content(seq))
		}
		intake := time.Since(t0)
		if err != nil {
			return 0, 0, err
		}
		if acc.Duplicate {
			return 0, 0, fmt.Errorf("event %s was taken for a duplicate", id)
		}
		if d.keys > 0 && !acc.Sequenced {
			return 0, 0, fmt.Errorf("event %s was dispatched at once, not sequenced behind its key: the ordering did not apply", id)
		}
		if acc.Attempts > 1 {
			d.retried.Add(1)
		}
		if acc.WorkflowID == "" {
			acc.WorkflowID = dispatcher.WorkflowID(id)
		}
		r.wf[seq], r.run[seq] = acc.WorkflowID, acc.RunID // the latest run when ""
		switch {
		case st.p.Await == "temporal" && acc.RunID != "":
			if err := st.tc.GetWorkflow(ctx, acc.WorkflowID, acc.RunID).Get(ctx, nil); err != nil {
				return 0, 0, fmt.Errorf("dispatch %s: %w", acc.WorkflowID, err)
			}
		default:
			select {
			case <-done:
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			}
		}
		return intake, time.Since(t0), nil
	}
}

// measure sends warm-up events, then n measured ones with closed-loop
// callers, and checks that every dispatch completed. With withDB (a stack
// on PostgreSQL) it also counts what the measured events wrote to the
// databases.
func (d *deployment) measure(ctx context.Context, label string, n int, withDB bool) (phase, error) {
	st, p := d.st, d.st.p
	res := phase{Name: d.name, Layout: d.String(), Procs: len(d.procs), SeparateDriver: true}
	sinks := st.tr.counts()
	r := newRuns(p.Warmup + n)
	do := d.op(label, r)
	if p.Warmup > 0 {
		if _, err := drive(ctx, d.name+" warm-up", 0, p.Warmup, p.Concurrency, do, st.prog); err != nil {
			return res, d.withLog(ctx, err)
		}
	}
	var dbBefore pgSnapshot
	if withDB {
		var err error
		if dbBefore, err = st.stats.flushedSnapshot(ctx, st.prog, time.Now()); err != nil {
			return res, err
		}
	}
	res.LoadAvg = loadAverage1()
	before := cpuSnapshot(st.temporal.Pid, d.pids(), st.stats.pids())
	brokerBefore := brokerCPU(d.brokerPid)
	var err error
	res.Load, err = drive(ctx, d.name, p.Warmup, n, p.Concurrency, do, st.prog)
	if err != nil {
		return res, d.withLog(ctx, err)
	}
	res.CPU = cpuSnapshot(st.temporal.Pid, d.pids(), st.stats.pids()).since(before)
	res.CPU.Broker = brokerCPU(d.brokerPid) - brokerBefore
	d.sent += p.Warmup + n
	switch {
	case withDB:
		after, err := st.stats.flushedSnapshot(ctx, st.prog, time.Now())
		if err != nil {
			return res, err
		}
		res.DB = after.since(dbBefore, n)
		res.Conns = &after.Conns
	case st.stats != nil:
		after, err := st.stats.snapshot(ctx)
		if err != nil {
			return res, err
		}
		res.Conns = &after.Conns
	}
	if err := d.finish(ctx, &res, r, p.Warmup, sinks); err != nil {
		return res, err
	}
	return res, nil
}

// openPhase is what the open-loop row measured.
type openPhase struct {
	Name   string
	Layout string
	Load   openLoad
	CPU    cpuUse
}

// openLoop sends n events at rate per second, round-robin to the
// intakes, each whatever the earlier ones do, and checks that every
// dispatch completed.
func (d *deployment) openLoop(ctx context.Context, label string, n int, rate float64) (openPhase, error) {
	st := d.st
	res := openPhase{Name: d.name, Layout: d.String()}
	sinks := st.tr.counts()
	r := newRuns(n)
	before := cpuSnapshot(st.temporal.Pid, d.pids(), st.stats.pids())
	var err error
	res.Load, err = pace(ctx, fmt.Sprintf("%s at %.0f/s", label, rate), 0, n, rate, d.op(label, r), st.prog)
	if err != nil {
		return res, d.withLog(ctx, err)
	}
	res.CPU = cpuSnapshot(st.temporal.Pid, d.pids(), st.stats.pids()).since(before)
	d.sent += n
	var ph phase
	if err := d.finish(ctx, &ph, r, 0, sinks); err != nil {
		return res, err
	}
	return res, nil
}

// finish checks that every dispatch sent so far completed and adds what
// the sinks saw, the history lengths and the memory of the processes.
func (d *deployment) finish(ctx context.Context, res *phase, r *runs, measuredFrom int, sinks sinkCounts) error {
	st := d.st
	// Every dispatch must have completed: a failed or hanging one would
	// make the figures meaningless.
	if err := waitClosed(ctx, st.tc, "Dispatch", d.queue, d.sent); err != nil {
		return d.withLog(ctx, err)
	}
	got := st.tr.counts().since(sinks)
	if n := d.retried.Load(); n > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("the producer sent %d events more than once (a retryable publish failure)", n))
	}
	if got.strays > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d side effects arrived twice or for unknown events (at-least-once retries)", got.strays))
	}
	res.Notes = append(res.Notes, fmt.Sprintf("the sinks received %d mails over %d SMTP connections and %d function calls",
		got.mails, got.smtpConns, got.calls))
	var err error
	if res.History, err = historyLengths(ctx, st.tc, sample(r.wf[measuredFrom:], r.run[measuredFrom:], st.p.Sample)); err != nil {
		return err
	}
	for _, p := range d.procs {
		m, err := readMemory(p.Pid())
		if err != nil {
			return err
		}
		res.Memories = append(res.Memories, m)
		if m.HWM > res.Memory.HWM {
			res.Memory = m
		}
	}
	res.ServerMemory, _ = readMemory(st.temporal.Pid)
	return nil
}

// String names the layout of the deployment's processes.
func (d *deployment) String() string {
	modes := make([]string, len(d.procs))
	for i, p := range d.procs {
		modes[i] = p.mode
	}
	if len(modes) > 1 && modes[0] == modes[len(modes)-1] {
		return fmt.Sprintf("%s ×%d", modes[0], len(modes))
	}
	return strings.Join(modes, " + ")
}

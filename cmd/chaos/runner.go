package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/proc"
)

// runner holds one run's parts while it goes through its steps.
type runner struct {
	p      params
	args   []string
	dir    string
	prog   *progress
	stdout io.Writer
	cl     cleanups

	ledger *ledger
	topo   *topology
	api    *apiClient
	prod   *producer
	kills  []killed
	struck atomic.Int64 // kills carried out so far, for progress lines
}

// do sets the stage, produces the events under fire, waits for the dust
// to settle, and judges.
func (r *runner) do(ctx context.Context) (verdict, error) {
	if err := r.setUp(ctx); err != nil {
		return verdict{}, err
	}
	start := time.Now()
	if err := r.produce(ctx); err != nil {
		return verdict{}, fmt.Errorf("%w (logs in %s)", err, r.dir)
	}
	r.prog.note("all %d events accepted; waiting for every dispatch to end", r.p.Events)
	latest, notOver := settle(ctx, r.api, r.ledger, r.p.Events, r.prog)
	snap := r.ledger.snapshot()
	v := judge(snap, latest, r.p.Events)
	v.Duration = time.Since(start)
	v.Kills = len(r.kills)
	r.report(v, snap, notOver)
	return v, nil
}

// setUp starts the sinks, the database schema, the processes, and
// configures the chaos dispatcher.
func (r *runner) setUp(ctx context.Context) error {
	p := r.p
	if p.Dispatcher == "" {
		r.prog.note("building the dispatcher into %s", r.dir)
		var err error
		if p.Dispatcher, err = proc.BuildDispatcher(ctx, p.root, r.dir); err != nil {
			return err
		}
		r.p.Dispatcher = p.Dispatcher
	}
	r.ledger = newLedger()
	mail, err := startSMTPSink(r.ledger, p.Seed, mailSlowDelay)
	if err != nil {
		return err
	}
	r.cl.add(mail.close)
	fns, err := startHTTPSink(r.ledger, p.Slow)
	if err != nil {
		return err
	}
	r.cl.add(fns.close)
	dbURL, drop, err := freshSchema(ctx, p.PostgresURL)
	if err != nil {
		return err
	}
	r.cl.add(drop)

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	env := append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"DISPATCHER_AUTO_MIGRATE=true",
		"DISPATCHER_JWT_SECRET="+hex.EncodeToString(secret),
		"DISPATCHER_AUTH_DISABLED=false",
		"DISPATCHER_SMTP_URL=smtp://"+mail.addr,
		"DISPATCHER_OUTBOUND_ALLOW=127.0.0.0/8", // the HTTP sink
		"DISPATCHER_MAIL_FROM=chaos@example.com",
		"DISPATCHER_LOG_LEVEL="+p.LogLevel,
		"DISPATCHER_LOG_FORMAT=text",
		// -rate 0 offers events as fast as the API takes them: no 429.
		"DISPATCHER_INTAKE_RATE_LIMIT=0", "DISPATCHER_TENANT_INTAKE_RATE_LIMIT=0",
	)
	r.prog.note("starting Temporal (state in %s), then dispatcher worker and api (%s)", r.dir, p.Dispatcher)
	if r.topo, err = startTopology(ctx, p, r.dir, env, r.prog); err != nil {
		return err
	}
	r.cl.add(r.topo.stop)
	r.prog.note("Temporal at %s, API at %s, worker at %s; functions at %s, SMTP at %s",
		r.topo.temporalAddr(), r.topo.apiURL(), r.topo.workerAddr, fns.url, mail.addr)

	token, err := mintToken(ctx, p.Dispatcher, env, p.Timeout+time.Hour)
	if err != nil {
		return err
	}
	r.api = newAPIClient(r.topo.apiURL(), token)
	if err := r.api.configure(ctx, fns.url); err != nil {
		return fmt.Errorf("configure the chaos dispatcher: %w", err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watching sync.WaitGroup
	watching.Go(func() { r.topo.watch(watchCtx) })
	// Runs before the processes are stopped, so their planned exits are
	// not taken for crashes.
	r.cl.add(func() { stopWatch(); watching.Wait() })
	return nil
}

// mintToken asks the binary for an admin token, as an operator would.
func mintToken(ctx context.Context, bin string, env []string, ttl time.Duration) (string, error) {
	cmd := exec.CommandContext(ctx, bin, "token", "--admin", "--ttl", ttl.String())
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("dispatcher token: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// produce sends the events while the kills strike, and returns once both
// are done.
func (r *runner) produce(ctx context.Context) error {
	r.prod = &producer{api: r.api, n: r.p.Events, conc: r.p.Producers, rate: r.p.Rate}
	ks := plan(r.p.Seed, r.p.Kills, r.p.Events)
	for _, k := range ks {
		r.prog.note("plan: SIGKILL %s at %d accepted events, down %.1fs", k.Comp, k.At, k.Down.Seconds())
	}
	stopStatus := r.prog.every(5*time.Second, r.status)
	defer stopStatus()

	kctx, cancelKills := context.WithCancel(ctx)
	defer cancelKills()
	kerr := make(chan error, 1)
	go func() {
		var err error
		r.kills, err = strike(kctx, r.topo, ks, func() int { return int(r.prod.accepted.Load()) }, &r.struck, r.prog)
		kerr <- err
	}()
	if err := r.prod.run(ctx); err != nil {
		cancelKills()
		<-kerr
		return fmt.Errorf("producing: %w", err)
	}
	return <-kerr
}

// status is a progress line.
func (r *runner) status() string {
	c := r.ledger.counts()
	return fmt.Sprintf("accepted %d/%d events (%d attempts, %d retried), kills %d/%d, effects applied %d/%d, %d in flight",
		r.prod.accepted.Load(), r.p.Events, r.prod.attempts.Load(), r.prod.retried.Load(),
		r.struck.Load(), len(r.p.Kills), c.Applied, 3*r.p.Events, c.InFlight)
}

// Command bench measures the dispatcher end to end and compares it with
// the Temporal workflows a team would first write by hand.
//
// It runs two sections, one after the other, and reports them together.
//
// On Temporal dev servers (in memory, headless, one fresh server per row)
// it measures the real dispatcher binary (`dispatcher serve`, auth on,
// configured through its HTTP API, events through POST /events/v1, mail
// and task calls to an SMTP and an HTTP sink on loopback), then as many
// bare workflows with no-op regular activities (the baseline) and with
// local activities started eagerly (the reference), with a worker in this
// process. Then the same dispatcher taking its events from RabbitMQ and
// from NATS JetStream (published with the producer package), and with
// ordering per key (content.userId) on its HTTP intake, each compared
// with the HTTP row.
//
// In the production layout, a Temporal server on PostgreSQL with SQL
// visibility (scripts/temporal-pg.sh) and the store on PostgreSQL, it
// measures `dispatcher serve`, then the same events at half its rate (an
// open loop, for the intake latency), `dispatcher api` + `dispatcher
// worker` as separate processes, the bare baseline workflow, and serve
// scaled out to several processes. It counts what each run costs the
// Temporal server, the dispatcher and PostgreSQL.
//
// It prints a markdown report whose last line is machine-readable, and
// with -out writes the report into a marked section of a markdown page.
//
//	go run ./cmd/bench [-n 1000] [-concurrency 32] [-actions 2] [-production=false] [-out docs/benchmarks.md]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/proc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first Ctrl-C the bench stops its children in order; a
		// second one kills it at once (and the kernel its children; the
		// Temporal server on PostgreSQL stops by its watchdog).
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run is the whole benchmark: every row, the report, and the clean-up of
// every child process, also when ctx ends early (each row stops its own).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	p, err := parseParams(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "dispatcher-bench-") // logs, the SQLite store, a built binary, the cluster's config
	if err != nil {
		return err
	}
	if p.Keep {
		defer fmt.Fprintf(stderr, "bench: the logs are in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	if p.Dev && p.Brokers {
		if err := checkBrokers(ctx, p); err != nil {
			return err
		}
	}
	m := describeMachine(p.TemporalCLI)
	prog := newProgress(stderr)
	if p.Dispatcher == "" {
		prog.note("building the dispatcher into %s", dir)
		if p.Dispatcher, err = proc.BuildDispatcher(ctx, p.root, dir); err != nil {
			return err
		}
	}

	res := report{Machine: m, Params: p, Started: time.Now()}
	if p.Dev {
		if err := benchDev(ctx, p, dir, prog, &res); err != nil {
			return err
		}
	}
	if p.Production {
		if res.Production, err = benchProduction(ctx, p, filepath.Join(dir, "production"), prog); err != nil {
			return timeoutHint(ctx, p, fmt.Errorf("production layout: %w", err))
		}
	}
	res.Finished, res.EndLoad = time.Now(), loadAverages()
	text := res.markdown()
	fmt.Fprint(stdout, text)
	fmt.Fprintln(stdout, res.summaryLine())
	if p.Out != "" {
		if err := writeSection(p.Out, text+"\n```\n"+res.summaryLine()+"\n```\n"); err != nil {
			return err
		}
		prog.note("wrote the report into %s", p.Out)
	}
	return nil
}

// benchDev measures the rows on dev servers, each on a fresh one.
func benchDev(ctx context.Context, p params, dir string, prog *progress, res *report) error {
	var err error
	if res.Dispatcher, err = benchDevRow(ctx, p, dir, prog, devRow{name: "dispatcher"}); err != nil {
		return timeoutHint(ctx, p, fmt.Errorf("dispatcher: %w", err))
	}
	if !p.SkipBase {
		res.Baseline, err = benchBare(ctx, p, dir, prog, shape{name: "baseline", workflow: bareWorkflowName, awaitGet: true})
		if err != nil {
			return timeoutHint(ctx, p, fmt.Errorf("baseline: %w", err))
		}
	}
	if p.Reference {
		res.Reference, err = benchBare(ctx, p, dir, prog, shape{name: "reference", workflow: refWorkflowName, eager: true, awaitGet: p.Await == "temporal"})
		if err != nil {
			return timeoutHint(ctx, p, fmt.Errorf("reference: %w", err))
		}
	}
	// After the rows of the targets, so that the dispatcher and the
	// baseline stay side by side in time.
	for _, row := range devRows(p) {
		if *row.result(res), err = benchDevRow(ctx, p, dir, prog, row); err != nil {
			return timeoutHint(ctx, p, fmt.Errorf("%s: %w", row.name, err))
		}
	}
	return nil
}

func timeoutHint(ctx context.Context, p params, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (the run hit -timeout %s)", err, p.Timeout)
	}
	return err
}

// cleanups runs the clean-ups it was given, last first.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
